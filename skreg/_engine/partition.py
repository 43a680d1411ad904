"""Mini-batches cut inside TensorFlow, from data copied into it once.

Keras' own adapters turn a scipy sparse matrix into one ``tf.SparseTensor``
per batch in Python, which costs more than the training step itself on
multi-hot text. Here the matrix (CSR arrays, or the dense array) is handed
to TensorFlow once, and each batch is gathered by a small graph function
from a shuffled stream of row numbers: no Python runs per batch, and the
sparse batch keeps only its non-zeros.
"""

import numpy as np
import scipy.sparse as sp

from .._backend.tensorflow import tf

__all__ = ["PartitionedBatches", "column_major", "csr_tensors", "either", "gradient_split",
           "row_ids_of", "sparse_row_gatherer"]

# Steps of an epoch whose batches one pass over the non-zeros places (see
# PartitionedBatches): one pass per this many steps.
STEPS_PER_PARTITION = 128


def csr_tensors(X):
    """A CSR matrix as the tensors :func:`sparse_row_gatherer` takes."""
    return (
        tf.constant(X.indptr, dtype=tf.int64),
        tf.constant(X.indices, dtype=tf.int64),
        tf.constant(X.data, dtype=tf.float32),
        tf.constant(X.shape[1], dtype=tf.int64),
    )


def sparse_row_gatherer(indptr, indices, data, n_features):
    """Row numbers -> ``tf.SparseTensor`` of those rows of a CSR matrix given
    by its int64 ``indptr`` and ``indices``, its ``data`` and its width."""
    # Ragged views of the CSR arrays: gathering rows then copies each row's
    # run of non-zeros in one piece (RaggedGather), about 30% less CPU per
    # IMDB epoch than gathering the non-zeros one by one.
    columns = tf.RaggedTensor.from_row_splits(indices, indptr, validate=False)
    values = tf.RaggedTensor.from_row_splits(data, indptr, validate=False)

    def gather(rows):
        batch_columns = tf.gather(columns, rows)
        splits = batch_columns.row_splits
        # The batch row of each non-zero: the last row start at or before
        # it, by binary search (per batch of 768 IMDB rows 1.0 ms; counting
        # row starts with bincount and cumsum took 2.5 ms).
        batch_row = (
            tf.searchsorted(splits, tf.range(splits[-1]), side="right", out_type=tf.int64) - 1
        )
        return tf.SparseTensor(
            indices=tf.stack([batch_row, batch_columns.flat_values], axis=1),
            values=tf.gather(values, rows).flat_values,
            dense_shape=tf.stack([tf.shape(rows, out_type=tf.int64)[0], n_features]),
        )

    return gather


def column_major(X, binary):
    """A CSR matrix's non-zeros in column order (by row within a column), as
    :class:`PartitionedBatches` takes them: int32 rows and columns, the
    values (none if ``binary``: all are 1), and each one's place in row
    order (input dropout draws there and reads the draws in column order)."""
    # scipy's conversion walks the rows in order: rows stay sorted in a
    # column. Converting the places in row order gives the permutation.
    places = sp.csr_matrix(
        (np.arange(X.nnz, dtype=np.int64), X.indices, X.indptr), shape=X.shape
    ).tocsc()
    columns = np.repeat(np.arange(X.shape[1], dtype=np.int32), np.diff(places.indptr))
    values = np.zeros(0, np.float32) if binary else X.data[places.data].astype(np.float32)
    return (tf.constant(places.indices, tf.int32), tf.constant(columns),
            tf.constant(values), tf.constant(places.data, tf.int32))  # fmt: skip


def gradient_split(X, batch_size):
    """The column at which the kernel gradient of a sparse layer is cut in
    two parts of about equal cost, computed concurrently (see
    :class:`PartitionedBatches`).

    A segment sum costs per non-zero and per output row it writes (~80 ns
    and ~0.8 us at 240 columns), and on text the first columns (the most
    frequent words) hold most non-zeros: the cut balances the two, from
    the non-zeros of each column and the chance that a batch holds it."""
    counts = np.bincount(X.indices, minlength=X.shape[1]).astype(np.float64)
    n_rows = max(X.shape[0], 1)
    in_batch = 1.0 - np.power(1.0 - counts / n_rows, min(batch_size, n_rows))
    cost = np.cumsum(counts / n_rows * batch_size * 0.08 + in_batch * 0.8)
    return int(np.searchsorted(cost, cost[-1] / 2)) if len(cost) else 0


class PartitionedBatches:
    """The batches of an epoch of a CSR matrix, with their non-zeros in row
    order, by half-batch (for ``x @ kernel``), and in column order (for
    ``x.T @ gradient``).

    Cutting batches from shuffled rows would need a sort of each batch's
    non-zeros by column for the kernel's gradient: per IMDB batch of 768
    rows ~10 ms, a quarter of a 15-network training step. Here a linear pass
    (``tf.dynamic_partition``, which keeps order) over all the non-zeros, in
    row order and in column order, places each in its batch, for up to
    :data:`STEPS_PER_PARTITION` steps at a time. A batch holds the rows the
    epoch's order gives it, as a shuffled cut would; it is cut in two halves
    by that order, each sorted by row. The two halves' products, and the two
    column ranges of the gradient (cut at ``split``), run concurrently, one
    per core: TensorFlow's segment sums use one thread each.

    Parameters
    ----------
    indptr, indices, values, n_features : tensors
        The CSR matrix, as :func:`csr_tensors` gives it.
    column_rows, column_indices, column_values, column_places : tensors
        Its non-zeros in column order, and their places in row order, as
        :func:`column_major` gives them.
    split : tensor
        :func:`gradient_split` of the matrix.
    binary : bool
        Whether every stored value is 1 (then the values are not placed).
    """

    def __init__(self, indptr, indices, values, n_features, column_rows, column_indices,
                 column_values, column_places, split, row_ids, *, binary):  # fmt: skip
        self.n_rows = tf.shape(indptr, out_type=tf.int64)[0] - 1
        self.n_features = n_features
        self.split = split
        self.binary = binary
        # Row, column and value of each non-zero, in row order and in column
        # order. ``row_ids``: each non-zero's row (:func:`row_ids_of`), made
        # once with the data for every call of a program (see tower_data).
        self.by_row = (row_ids, tf.cast(indices, tf.int32), values)
        self.by_column = (column_rows, column_indices, column_values)
        self.column_places = column_places

    def augmentation(self, seed, dropout, noise, column_order=True):
        """An epoch's input dropout and noise, drawn once for every non-zero
        (each is in one batch an epoch), in row order and read in column
        order, so both orders change the same ones: per order the kept
        non-zeros (or None) and the values before dropout's scale (or None).
        ``dropout``, ``noise``: tensors, or None when off; ``column_order``:
        as :meth:`partition` takes it (without it, the column order's are
        empty)."""
        n_values = tf.shape(self.by_row[0])[0]
        keep = values = None
        if dropout is not None:
            keep = tf.random.stateless_uniform([n_values], seed) >= dropout
        if noise is not None:
            # Dropout's scale 1 / (1 - dropout) multiplies the batch's
            # product and gradient, so the noise is scaled down by as much.
            scaled = noise if dropout is None else noise * (1.0 - dropout)
            draws = tf.random.stateless_normal([n_values], seed + [0, 1]) * scaled
            values = draws + (1.0 if self.binary else self.by_row[2])

        def in_column_order(v):
            return either(column_order, lambda: tf.gather(v, self.column_places),
                          lambda: tf.zeros([0], v.dtype))  # fmt: skip

        return (keep, values), tuple(None if v is None else in_column_order(v)
                                     for v in (keep, values))  # fmt: skip

    def partition(self, position, batch_size, first_step, n_ordered=None, augmentation=None,
                  column_order=True):  # fmt: skip
        """The batches of the steps ``first_step`` to ``first_step +
        STEPS_PER_PARTITION - 1`` of an epoch whose order puts row ``r`` at
        ``position[r]``; ``n_ordered`` (default: all) rows have places in
        the order, the others a place past them that no batch reaches;
        ``augmentation``: the epoch's :meth:`augmentation`, or None;
        ``column_order`` (bool, or a bool tensor): whether the non-zeros are
        placed in column order too (without it, :meth:`_Partition.by_column`
        is empty)."""
        n_ordered = self.n_rows if n_ordered is None else n_ordered
        return _Partition(self, position, batch_size, first_step, n_ordered, augmentation,
                          column_order)  # fmt: skip


def either(condition, if_true, if_false):
    """``if_true()`` or ``if_false()``: a Python bool ``condition`` picks one
    at tracing, a bool tensor at run time (``tf.cond``)."""
    if isinstance(condition, bool):
        return if_true() if condition else if_false()
    return tf.cond(condition, if_true, if_false)


def row_ids_of(X):
    """Each non-zero's row of a CSR matrix, int32 (by numpy: tf.repeat masks
    a rows x longest-row matrix)."""
    return tf.constant(np.repeat(np.arange(X.shape[0], dtype=np.int32), np.diff(X.indptr)))


def _by_group(data, keys, n_groups):
    """``data`` by group (order kept), without the last group."""
    return tf.concat(tf.dynamic_partition(data, keys, n_groups)[:-1], axis=0)


def _group_starts(keys, n_groups):
    """Where each group starts in :func:`_by_group`'s result, and its end."""
    sizes = tf.math.bincount(keys, minlength=n_groups, maxlength=n_groups, dtype=tf.int64)
    return tf.concat([[0], tf.cumsum(sizes[:-1])], axis=0)


class _Partition:
    """One partition's batches; step ``s`` counts from its first step."""

    def __init__(self, batches, position, batch_size, first_step, n_ordered, augmentation,
                 column_order):  # fmt: skip
        n_steps = STEPS_PER_PARTITION
        step = position // batch_size
        start = step * batch_size
        length = tf.minimum(batch_size, n_ordered - start)
        second = tf.cast(position - start >= length // 2, tf.int64)
        local = step - first_step
        inside = (local >= 0) & (local < n_steps)
        # Rows of other steps go to a last group, left out.
        half_group = tf.where(inside, 2 * local + second, 2 * n_steps)
        step_group = tf.where(inside, local, n_steps)

        keys = tf.cast(half_group, tf.int32)
        self.rows = _by_group(tf.range(batches.n_rows), keys, 2 * n_steps + 1)
        self.row_starts = _group_starts(keys, 2 * n_steps + 1)
        # Each row's place in its half-batch and in its batch.
        half_sizes = self.row_starts[1:] - self.row_starts[:-1]
        place = tf.scatter_nd(
            self.rows[:, None],
            tf.range(tf.shape(self.rows, out_type=tf.int64)[0])
            - tf.repeat(self.row_starts[:-1], half_sizes),
            tf.reshape(batches.n_rows, [1]),
        )
        first_half = tf.gather(half_sizes, tf.clip_by_value(2 * local, 0, 2 * n_steps - 2))
        batch_place = place + second * first_half
        # Each non-zero's place and column (and value), by group.
        changes = augmentation or ((None, None), (None, None))

        def placed(order, order_changes, group, row_place, n_groups, after=()):
            (rows, columns, values), (keep, changed) = order, order_changes
            # One order after the other: each holds copies of the non-zeros'
            # numbers while it is partitioned.
            with tf.control_dependencies(after):
                keys = tf.gather(tf.cast(group, tf.int32), rows)
                data = [tf.gather(tf.cast(row_place, tf.int32), rows), columns]
            if keep is not None:  # dropped non-zeros go to the group left out
                keys = tf.where(keep, keys, n_groups - 1)
            if changed is not None:
                data.append(changed)
            elif not batches.binary:
                data.append(values)
            return [_by_group(a, keys, n_groups) for a in data], _group_starts(keys, n_groups)

        by_row, by_row_starts = placed(batches.by_row, changes[0], half_group, place,
                                       2 * n_steps + 1)  # fmt: skip

        def placed_by_column():
            return placed(batches.by_column, changes[1], step_group, batch_place, n_steps + 1,
                          after=by_row)  # fmt: skip

        def not_placed():
            return ([tf.zeros([0], a.dtype) for a in by_row],
                    tf.zeros([n_steps + 1], tf.int64))  # fmt: skip

        by_column, by_column_starts = either(column_order, placed_by_column, not_placed)
        self.entries = [by_row, by_column]
        self.entry_starts = [by_row_starts, by_column_starts]

    def batch_rows(self, step):
        """The rows of a step's batch: its first half, then its second."""
        return self.rows[self.row_starts[2 * step] : self.row_starts[2 * step + 2]]

    def _entries(self, order, group):
        begin, end = self.entry_starts[order][group], self.entry_starts[order][group + 1]
        data = [a[begin:end] for a in self.entries[order]]
        return data[0], data[1], data[2] if len(data) > 2 else None

    def half(self, step, second):
        """A half-batch: its number of rows, and its non-zeros in row order:
        (place of the row in the half, column, value or None for all 1)."""
        group = 2 * step + second
        return self.row_starts[group + 1] - self.row_starts[group], self._entries(0, group)

    def by_column(self, step):
        """A batch's non-zeros in column order: (place of the row in the
        batch, column, value or None for all 1)."""
        return self._entries(1, step)
