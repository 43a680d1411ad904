"""The first layer's product and kernel gradient of a batch of rows, dense
or sparse (sparse batches from :class:`skreg._engine.partition.PartitionedBatches`),
and of the held-out rows scored after each epoch."""

from .partition import either
from .._backend.tensorflow import tf

__all__ = ["EVALUATION_BATCH_SIZE", "NARROW_WIDTH", "DenseBatch", "SparseBatch",
           "SparseHeldOut"]


# Rows per evaluation pass: bounds the memory of the hidden activations.
EVALUATION_BATCH_SIZE = 4096

# First layers (all towers' units together) narrower than this multiply
# sparse batches by TensorFlow's sparse-dense matmul, both ways, from the
# non-zeros in row order, so that the partition leaves out the column order
# (about half its cost). Below 32 output columns the matmul's CPU kernel is
# a plain loop over the non-zeros: per IMDB batch of 512 reviews at 16
# columns 0.14 ms for the kernel gradient against 0.37 ms for a segment sum
# over the column order, one thread each; from 32 columns on it took 3-4x
# the segment sum's time.
NARROW_WIDTH = 32


class DenseBatch:
    """A batch of dense rows: the first layer's product and kernel gradient."""

    def __init__(self, table, rows):
        self.rows = rows
        self.x = tf.gather(table, rows)

    def augmented(self, seed, dropout, noise):
        """The batch with input dropout (rate ``dropout``, kept values scaled
        by ``1 / (1 - dropout)``) and Gaussian noise of deviation ``noise``
        (None: off), as :class:`skreg.network.InputAugmentation` makes them
        (sparse batches: :meth:`skreg._engine.partition.PartitionedBatches.augmentation`)."""
        if dropout is not None:
            keep = tf.random.stateless_uniform(tf.shape(self.x), seed) >= dropout
            self.x = tf.where(keep, self.x / (1.0 - dropout), 0.0)
        if noise is not None:
            self.x += tf.random.stateless_normal(tf.shape(self.x), seed + [0, 1]) * noise
        return self

    def product(self, kernel):
        return tf.matmul(self.x, kernel)

    def kernel_gradient(self, output_gradient):
        return [tf.matmul(self.x, output_gradient, transpose_a=True)]


def _halves_product(kernel, halves):
    """``x @ kernel`` for rows given as halves, each (its number of rows,
    (place of the row, column, value or None for all 1) of its non-zeros in
    row order); the halves run concurrently, one per core."""
    outputs = []
    for n_rows, (places, columns, values) in halves:
        # The segment sums take every value as 1; others add their excess.
        output = tf.sparse.segment_sum(kernel, columns, places, num_segments=n_rows)
        if values is not None:
            excess = tf.where(tf.not_equal(values, 1))[:, 0]
            output += tf.math.unsorted_segment_sum(
                tf.gather(kernel, tf.gather(columns, excess))
                * (tf.gather(values, excess) - 1)[:, None],
                tf.gather(places, excess), num_segments=n_rows,
            )  # fmt: skip
        outputs.append(output)
    return tf.concat(outputs, axis=0)


class SparseHeldOut:
    """The held-out rows of every evaluation block (the same at every epoch):
    where each row's non-zeros start, and the non-zeros' rows (counted over
    all blocks' rows), columns and values (empty if all 1).

    Gathered once per trainer (:meth:`arrays`, outside the program) and
    passed to each call, since the gather costs about 30 ms on IMDB's 25,000
    test reviews: a call per epoch would pay it every epoch."""

    def __init__(self, starts, rows, columns, values):
        self.starts, self.rows, self.columns, self.values = starts, rows, columns, values

    @staticmethod
    def arrays(indptr, indices, values, rows):
        """The tensors of the held-out ``rows`` of a CSR matrix, in the order
        the constructor takes them. Their values are left out where all are
        1, whatever the training rows are: held-out rows of other values
        beside multi-hot training rows keep theirs."""
        def flat(data):
            return tf.gather(tf.RaggedTensor.from_row_splits(data, indptr, validate=False), rows)

        columns, values = flat(indices), flat(values).flat_values
        if bool(tf.reduce_all(values == 1.0)):
            values = tf.zeros([0], tf.float32)
        return (columns.row_splits, tf.cast(columns.value_rowids(), tf.int32),
                tf.cast(columns.flat_values, tf.int32), values)  # fmt: skip

    def product(self, kernel, begin, end):
        """``x @ kernel`` for the held-out rows ``begin`` to ``end``."""
        middle = (begin + end) // 2
        halves = []
        for first, last in ((begin, middle), (middle, end)):
            a, b = self.starts[first], self.starts[last]
            places = self.rows[a:b] - tf.cast(first, tf.int32)
            values = None if self.values is None else self.values[a:b]
            halves.append((last - first, (places, self.columns[a:b], values)))
        return _halves_product(kernel, halves)


class SparseBatch:
    """A batch of sparse rows (see PartitionedBatches): the first layer's
    product by half-batches, the kernel gradient by two column ranges, each
    pair computed concurrently; for a ``narrow`` layer (a bool, or a bool
    tensor the program computes, see :data:`NARROW_WIDTH`) both by
    sparse-dense matmuls of the half-batches, and the partition need not
    hold the column order."""

    def __init__(self, partition, step, n_features, split, scale=None, *, narrow=False):
        self.rows = partition.batch_rows(step)
        self.halves = [partition.half(step, second) for second in (0, 1)]
        self.by_column = partition.by_column(step)
        self.n_features = n_features
        self.split = split
        # Input dropout's 1 / (1 - rate), which the partition's dropped
        # non-zeros leave out (multi-hot values stay 1), or None.
        self.scale = scale
        self.narrow = narrow

    def _scaled(self, x):
        return x if self.scale is None else x * self.scale

    def _sparse_halves(self):
        """The half-batches as ``tf.SparseTensor``s."""
        halves = []
        for n_rows, (places, columns, values) in self.halves:
            indices = tf.cast(tf.stack([places, columns], axis=1), tf.int64)
            values = tf.ones_like(places, tf.float32) if values is None else values
            halves.append(tf.SparseTensor(indices, values, tf.stack([n_rows, self.n_features])))
        return halves

    def product(self, kernel):
        def narrow():
            return tf.concat([tf.sparse.sparse_dense_matmul(half, kernel)
                              for half in self._sparse_halves()], axis=0)  # fmt: skip

        return self._scaled(
            either(self.narrow, narrow, lambda: _halves_product(kernel, self.halves))
        )

    def kernel_gradient(self, output_gradient):
        def narrow():
            first = self.halves[0][0]
            gradients = [output_gradient[:first], output_gradient[first:]]
            total = tf.add_n([tf.sparse.sparse_dense_matmul(half, gradient, adjoint_a=True)
                              for half, gradient in zip(self._sparse_halves(), gradients)])  # fmt: skip
            # As many parts as the column ranges' (the update concatenates them).
            return [total, total[:0]]

        parts = either(self.narrow, narrow, lambda: self._kernel_gradient(output_gradient))
        return [self._scaled(part) for part in parts]

    def _kernel_gradient(self, output_gradient):
        """``x.T @ output_gradient`` as its rows before and after ``split``."""
        places, columns, values = self.by_column
        split, n_features = (tf.cast(n, tf.int32) for n in (self.split, self.n_features))
        cut = tf.searchsorted(columns, tf.reshape(split, [1]))[0]
        parts = []
        for begin, end, first, last in ((0, cut, 0, split),
                                        (cut, tf.size(columns), split, n_features)):  # fmt: skip
            part = tf.sparse.segment_sum(
                output_gradient, places[begin:end], columns[begin:end] - first,
                num_segments=last - first,
            )  # fmt: skip
            if values is not None:
                excess = begin + tf.cast(tf.where(tf.not_equal(values[begin:end], 1))[:, 0],
                                         tf.int32)  # fmt: skip
                part = tf.tensor_scatter_nd_add(
                    part, (tf.gather(columns, excess) - first)[:, None],
                    tf.gather(output_gradient, tf.gather(places, excess))
                    * (tf.gather(values, excess) - 1)[:, None],
                )  # fmt: skip
            parts.append(part)
        return parts
