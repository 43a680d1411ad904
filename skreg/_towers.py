"""Many networks of one shape trained side by side in one TensorFlow program.

A cross-validated search over penalties trains candidates x folds networks
that differ only in numbers. On small networks a training step costs
TensorFlow's per-op overhead more than arithmetic, so K such networks
("towers") stacked along a leading axis cost little more a step than one.
The towers see the same shuffled batches of all the rows; each learns only
from its own fold's training rows (its row weights are 0 on the others) and
has its own penalties, dropout rate and learning rate. After each epoch the
program computes each tower's outputs on its fold's held-out rows, which
the caller scores.

Layout of the weights of K towers (the ``build_mlp`` network, stacked):

- first hidden kernel: ``[n_features, K * units]``, the towers' kernels side
  by side, so that sparse input is multiplied once for all of them;
- other kernels: ``[K, in, out]`` (batched matmuls); biases and batch-norm
  vectors: ``[K, 1, units]``.

Everything is a loop variable of the program (no Keras model, no resource
variables). A call trains some more epochs from a :class:`TowerState`
(weights, optimizer slots, epochs and steps trained) and returns the state
after them, so training goes on across calls exactly as in one call, and a
subset of the towers can be taken out and trained on (what successive
halving needs). :class:`TowerTrainer` makes the calls; its caller's loop
over them is where Python runs between epochs.
"""

import functools

import numpy as np
import scipy.sparse as sp

from ._batching import (
    STEPS_PER_PARTITION,
    PartitionedBatches,
    column_major,
    csr_tensors,
    gradient_split,
)
from ._tensorflow import keras, tf
from ._training import cached_program, label_tensor, per_sample_loss

__all__ = ["TowerEpochs", "TowerState", "TowerStructure", "TowerTrainer", "fuses_update",
           "initial_weights", "is_binary", "optimizer_slots", "tower_bytes", "tower_data",
           "trainable_positions"]

# Keras' BatchNormalization defaults, which build_mlp uses.
_BATCH_NORM_MOMENTUM = 0.99
_BATCH_NORM_EPSILON = 1e-3
# Rows per evaluation pass: bounds the memory of the hidden activations.
_EVALUATION_BATCH_SIZE = 4096


class TowerStructure:
    """The static structure of a group of towers: the key of its traced program.

    Widths and the number of towers are not part of it (they are shapes of
    run-time inputs); what changes the ops traced is.
    """

    def __init__(self, *, n_hidden, activation, batch_norm, loss, optimizer, sparse,
                 binary, fused_update, with_l1, with_l2, with_dropout):  # fmt: skip
        self.n_hidden = n_hidden
        self.activation = activation
        self.batch_norm = batch_norm
        self.loss = loss
        self.optimizer = optimizer
        self.sparse = sparse
        self.binary = binary
        self.fused_update = fused_update
        self.with_l1 = with_l1
        self.with_l2 = with_l2
        self.with_dropout = with_dropout

    @property
    def key(self):
        return ("towers", *sorted(vars(self).items()))


def optimizer_slots(kind):
    """Optimizer buffers per trainable weight for an optimizer ``kind``."""
    if kind[0] == "adam" or kind == ("rmsprop", True):
        return 2
    return 1 if kind[0] == "rmsprop" or kind[1] else 0


def is_binary(X):
    """Whether ``X`` is sparse with every stored value 1 (multi-hot)."""
    return sp.issparse(X) and bool(np.all(X.data == 1))


def tower_data(X, batch_size, *, binary):
    """The data as the tower program takes it (made once for all groups):
    a CSR matrix's arrays, its non-zeros in column order and the column
    at which kernel gradients are cut (:func:`~skreg._batching.column_major`,
    :func:`~skreg._batching.gradient_split`), or the dense array.
    ``binary``: :func:`is_binary` of ``X``, as the structure holds it."""
    if sp.issparse(X):
        return (*csr_tensors(X), *column_major(X, binary=binary),
                tf.constant(gradient_split(X, batch_size), tf.int64))  # fmt: skip
    return (tf.constant(X, dtype=tf.float32),)


def tower_bytes(n_features, hidden_layer_sizes, n_outputs, *, n_rows, batch_size,
                epochs, n_slots):  # fmt: skip
    """Estimated memory of one tower in a group: its weights with their
    gradients, optimizer buffers and copies in the training loop, its share of
    the activations, and its outputs on every row after every epoch."""
    widths = [n_features, *hidden_layer_sizes, n_outputs]
    n_weights = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
    units = sum(hidden_layer_sizes) + n_outputs
    activations = (batch_size + _EVALUATION_BATCH_SIZE) * units * 6
    return 4 * (n_weights * (5 + n_slots) + activations + epochs * n_rows * n_outputs)


def initial_weights(n_features, hidden_layer_sizes, n_outputs, *, n_towers, batch_norm,
                    random_state):  # fmt: skip
    """The towers' starting weights, as numpy arrays in the program's order.

    Keras' initializers of build_mlp's layers (Glorot-uniform kernels, zero
    biases, batch norm's ones and zeros); every tower starts from the same
    draw, so candidates differ by their parameters only, as in a grid search
    with a fixed ``random_state``.
    """
    weights = []
    widths = [n_features, *hidden_layer_sizes]
    for i, (fan_in, units) in enumerate(zip(widths[:-1], widths[1:])):
        kernel = _glorot_uniform(random_state, fan_in, units)
        if i == 0:
            weights.append(np.tile(kernel, (1, n_towers)))
        else:
            weights.append(np.broadcast_to(kernel, (n_towers, fan_in, units)))
        vectors = ([1.0, 0.0, 0.0, 1.0] if batch_norm else [0.0])  # gamma, beta, mean, variance
        weights += [np.full((n_towers, 1, units), value, np.float32) for value in vectors]
    kernel = _glorot_uniform(random_state, widths[-1], n_outputs)
    weights += [np.broadcast_to(kernel, (n_towers, widths[-1], n_outputs)),
                np.zeros((n_towers, 1, n_outputs), np.float32)]  # fmt: skip
    return weights


def _glorot_uniform(random_state, fan_in, fan_out):
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return random_state.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)


def _layout(structure):
    """Per weight position: (kind, hidden layer); kinds kernel, bias, gamma,
    beta, mean, variance (the last two not trained), output_kernel, output_bias."""
    layout = []
    for i in range(structure.n_hidden):
        layout.append(("kernel", i))
        names = ("gamma", "beta", "mean", "variance") if structure.batch_norm else ("bias",)
        layout += [(name, i) for name in names]
    return layout + [("output_kernel", None), ("output_bias", None)]


def fuses_update(n_features, n_columns):
    """Whether the first kernel's update is compiled by XLA (large kernels)."""
    return n_features * n_columns >= _FUSED_UPDATE_MIN_SIZE


class _DenseBatch:
    """A batch of dense rows: the first layer's product and kernel gradient."""

    def __init__(self, table, rows):
        self.rows = rows
        self.x = tf.gather(table, rows)

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


class _SparseHeldOut:
    """The held-out rows of every evaluation block, gathered once per fit
    (they are the same at every epoch): their non-zeros' rows (counted over
    all blocks' rows), columns and values (None if all 1)."""

    def __init__(self, indptr, indices, values, rows, binary):
        def flat(data):
            return tf.gather(tf.RaggedTensor.from_row_splits(data, indptr, validate=False), rows)

        columns = flat(indices)
        self.starts = columns.row_splits
        self.rows = tf.cast(columns.value_rowids(), tf.int32)
        self.columns = tf.cast(columns.flat_values, tf.int32)
        self.values = None if binary else flat(values).flat_values

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


class _SparseBatch:
    """A batch of sparse rows (see PartitionedBatches): the first layer's
    product by half-batches, the kernel gradient by two column ranges, each
    pair computed concurrently."""

    def __init__(self, partition, step, n_features, split):
        self.rows = partition.batch_rows(step)
        self.halves = [partition.half(step, second) for second in (0, 1)]
        self.by_column = partition.by_column(step)
        self.n_features = n_features
        self.split = split

    def product(self, kernel):
        return _halves_product(kernel, self.halves)

    def kernel_gradient(self, output_gradient):
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


def _per_tower(vector, kind, layer, weight):
    """A [K] vector shaped to multiply a weight of the given kind elementwise."""
    if kind == "kernel" and layer == 0:  # [n_features, K * units]
        units = tf.shape(weight)[1] // tf.shape(vector)[0]
        return tf.repeat(vector, units)[None, :]
    return vector[:, None, None]


def _penalised_update(kind, weight, slots, gradient, rate, l1, l2, hyper, iteration):
    """The update of one weight with its penalties' gradients added
    (``l1 * sign(w) + 2 * l2 * w``; l1, l2 None for unpenalised weights);
    (weight, slots, per-tower penalty sums before the update). ``gradient``
    may be a list of its parts along the first axis."""
    if isinstance(gradient, (list, tuple)):
        gradient = tf.concat(list(gradient), axis=0)
    sums = None
    if l1 is not None:
        gradient += l1 * tf.sign(weight)
        sums = l1 * tf.abs(weight)
    if l2 is not None:
        gradient += 2.0 * l2 * weight
        sums = l2 * tf.square(weight) if sums is None else sums + l2 * tf.square(weight)
    if sums is not None:
        # [K * units] for the first kernel, [K] for the others.
        sums = tf.reduce_sum(sums, axis=0 if weight.shape.rank == 2 else [1, 2])
    weight, slots = _update(kind, weight, slots, gradient, rate, hyper, iteration)
    return weight, slots, sums


# The same, as one XLA-compiled loop over the weight: for a large first
# kernel (IMDB, 15 towers: 10,000 x 240) the ~12 elementwise passes of
# plain ops cost 20 ms a step, the fused loop 8-10 ms. It is compiled once
# per kernel shape in the process (~0.3 s), so small kernels use plain ops.
_fused_penalised_update = tf.function(_penalised_update, jit_compile=True)
_FUSED_UPDATE_MIN_SIZE = 2**18


def _forward(structure, layout, weights, first_product, numbers, *, member=None, seed=None):
    """[K, rows, outputs] from the first layer's product ``x @ kernel``
    ([rows, K * units]); in training (``member`` given: [K, rows], 1 where a
    row is in the tower's training fold) also dropout and batch norm's
    statistics over each tower's own rows, returned as {position: new value}."""
    training = member is not None
    n_towers = tf.shape(weights[-1])[0]
    moving = {}
    at = {entry: position for position, entry in enumerate(layout)}
    h = None
    for i in range(structure.n_hidden):
        if i == 0:
            h = tf.reshape(first_product, [tf.shape(first_product)[0], n_towers, -1])
            h = tf.transpose(h, [1, 0, 2])
        else:
            h = tf.matmul(h, weights[at["kernel", i]])
        if structure.batch_norm:
            gamma, beta = weights[at["gamma", i]], weights[at["beta", i]]
            if training:
                rows = member[:, :, None]
                count = tf.reduce_sum(rows, axis=1, keepdims=True)
                mean = tf.math.divide_no_nan(tf.reduce_sum(h * rows, 1, keepdims=True), count)
                variance = tf.math.divide_no_nan(
                    tf.reduce_sum(tf.square(h - mean) * rows, 1, keepdims=True), count
                )
                for name, batch_value in (("mean", mean), ("variance", variance)):
                    position = at[name, i]
                    moving[position] = weights[position] * _BATCH_NORM_MOMENTUM + batch_value * (
                        1.0 - _BATCH_NORM_MOMENTUM
                    )
            else:
                mean, variance = weights[at["mean", i]], weights[at["variance", i]]
            h = tf.nn.batch_normalization(h, mean, variance, beta, gamma, _BATCH_NORM_EPSILON)
        else:
            h = h + weights[at["bias", i]]
        h = keras.activations.get(structure.activation)(h)
        if training and structure.with_dropout:
            rate = numbers["dropout"][:, None, None]
            keep = _uniform_per_tower(tf.shape(h)[1:], seed + [0, 2 * i], numbers["key"]) >= rate
            h = tf.where(keep, h / (1.0 - rate), 0.0)
    outputs = tf.matmul(h, weights[at["output_kernel", None]]) + weights[at["output_bias", None]]
    return outputs, moving


def _mix(x):
    """A 32-bit integer hash (two multiply-xorshift rounds) of uint32 values;
    unsigned products wrap around, as the hash wants."""
    sixteen, multiplier = tf.constant(16, tf.uint32), tf.constant(0x45D9F3B, tf.uint32)
    for _ in range(2):
        x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, sixteen)) * multiplier
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, sixteen))


def _uniform_per_tower(shape, seed, keys):
    """[K, rows, units] uniform draws in [0, 1), each tower's from its own
    ``keys[k]``: a tower's dropout masks do not depend on the towers that
    train beside it (a group's size, a memory budget, the survivors of a
    pruning). A counter-based hash of (seed, key, row, unit): one pass of
    elementwise ops for all towers, where a random op per tower would cost
    K ops a layer and step (measured 1.4x the time of a breast_cancer search
    with dropout)."""
    seed, keys = tf.cast(seed, tf.uint32), tf.cast(keys, tf.uint32)
    step = _mix(seed[0] * tf.constant(0x3C6EF35F, tf.uint32) + seed[1])
    towers = _mix(keys * tf.constant(0x27D4EB2F, tf.uint32) + step)
    cells = tf.cast(tf.reshape(tf.range(shape[0] * shape[1]), shape), tf.uint32)
    bits = _mix(tf.bitwise.bitwise_xor(towers[:, None, None], cells[None]))
    # The top 24 bits: exact in float32.
    return tf.cast(tf.bitwise.right_shift(bits, tf.constant(8, tf.uint32)), tf.float32) * (
        1.0 / 2**24
    )


def _losses(structure, outputs, y):
    """[K, rows]: the per-sample loss of every tower (Keras' loss functions)."""
    n_towers, n_rows = tf.shape(outputs)[0], tf.shape(outputs)[1]
    flat = tf.reshape(outputs, [n_towers * n_rows, -1])
    flat.set_shape([None, None])
    losses = per_sample_loss(structure.loss, flat, tf.tile(y, [n_towers, 1]))
    return tf.reshape(losses, [n_towers, n_rows])


def _update(kind, weight, slots, gradient, learning_rate, hyper, iteration):
    """Keras' update formulas with a learning rate per tower; (weight, slots)."""
    if kind[0] == "rmsprop":
        rho, momentum, epsilon = hyper[0], hyper[1], hyper[2]
        velocity = rho * slots[0] + (1.0 - rho) * tf.square(gradient)
        increment = learning_rate * gradient / tf.sqrt(velocity + epsilon)
        if kind[1]:
            step = momentum * slots[1] + increment
            return weight - step, [velocity, step]
        return weight - increment, [velocity]
    if kind[0] == "adam":
        beta_1, beta_2, epsilon = hyper[0], hyper[1], hyper[2]
        t = tf.cast(iteration + 1, tf.float32)
        first = beta_1 * slots[0] + (1.0 - beta_1) * gradient
        second = beta_2 * slots[1] + (1.0 - beta_2) * tf.square(gradient)
        alpha = learning_rate * tf.sqrt(1.0 - tf.pow(beta_2, t)) / (1.0 - tf.pow(beta_1, t))
        return weight - alpha * first / (tf.sqrt(second) + epsilon), [first, second]
    if kind[1]:  # SGD with momentum
        velocity = hyper[0] * slots[0] - learning_rate * gradient
        step = hyper[0] * velocity - learning_rate * gradient if kind[2] else velocity
        return weight + step, [velocity]
    return weight - learning_rate * gradient, []


def _signature(structure, n_weights):
    data = (
        (tf.TensorSpec([None], tf.int64), tf.TensorSpec([None], tf.int64),
         tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int64),
         tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int32),
         tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int64))
        if structure.sparse
        else (tf.TensorSpec([None, None], tf.float32),)
    )  # fmt: skip
    matrix, vector = tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None], tf.float32)
    weights = [tf.TensorSpec([None, None], tf.float32)]
    weights += [tf.TensorSpec([None, None, None], tf.float32)] * (n_weights - 1)
    numbers = {name: vector for name in ("l1", "l2", "dropout", "learning_rate")}
    numbers["optimizer"] = tf.TensorSpec([3], tf.float32)
    numbers["key"] = tf.TensorSpec([None], tf.int64)
    index = tf.TensorSpec([None], tf.int64)
    # data, y, row weights [K, n], membership [K, n], evaluation blocks (rows,
    # row splits, tower splits), the state (weights, optimizer slots shaped as
    # the trainable weights, counters: epochs and steps trained), numbers,
    # settings: epochs to train, batch size, shuffle seed, dropout seed
    slots = [weights[p] for p in trainable_positions(structure)
             for _ in range(optimizer_slots(structure.optimizer))]  # fmt: skip
    return (data, matrix, matrix, matrix, (index, index, index), weights, slots,
            tf.TensorSpec([2], tf.int64), numbers, tf.TensorSpec([4], tf.int64))  # fmt: skip


def trainable_positions(structure):
    """Positions of the trained weights in the program's order (all but
    batch norm's moving statistics)."""
    return [p for p, (kind, _) in enumerate(_layout(structure)) if kind not in ("mean", "variance")]


def _make_program(structure):
    layout = _layout(structure)
    trainable = trainable_positions(structure)
    n_slots = optimizer_slots(structure.optimizer)

    def program(data, y, row_weight, member, evaluation, weights, slots, counters, numbers,
                settings):  # fmt: skip
        epochs, batch_size, shuffle_seed, dropout_seed = (settings[i] for i in range(4))
        first_epoch, end_epoch = counters[0], counters[0] + epochs
        n_rows = tf.shape(y, out_type=tf.int64)[0]
        n_towers = tf.shape(numbers["l2"])[0]
        n_steps = (n_rows + batch_size - 1) // batch_size
        rates = {
            p: _per_tower(numbers["learning_rate"], *layout[p], weights[p]) for p in trainable
        }
        if structure.sparse:
            batches = PartitionedBatches(*data, binary=structure.binary)
            held_out = _SparseHeldOut(*data[:3], evaluation[0], structure.binary)
            steps_per_part = tf.constant(STEPS_PER_PARTITION, tf.int64)
        else:
            steps_per_part = n_steps

        def held_out_product(kernel, begin, end):
            """``x @ kernel`` for the evaluation rows ``begin`` to ``end``."""
            if structure.sparse:
                return held_out.product(kernel, begin, end)
            return tf.matmul(tf.gather(data[0], evaluation[0][begin:end]), kernel)

        def train_step(batch, step, iteration, weights, slots, loss_sum):
            y_batch = tf.gather(y, batch.rows)
            w_batch = tf.gather(row_weight, batch.rows, axis=1)
            m_batch = tf.gather(member, batch.rows, axis=1)
            # The first layer's product is taken off the tape: its kernel
            # gradient is the batch's own x.T @ (gradient of the product).
            first_product = batch.product(weights[0])
            watched = [first_product] + [weights[p] for p in trainable[1:]]
            with tf.GradientTape() as tape:
                tape.watch(watched)
                outputs, moving = _forward(
                    structure, layout, weights, first_product, numbers, member=m_batch,
                    seed=tf.stack([dropout_seed, iteration * 1024]),
                )  # fmt: skip
                # Keras' "sum_over_batch_size", each tower over its own rows.
                count = tf.reduce_sum(m_batch, axis=1)
                data_losses = tf.math.divide_no_nan(
                    tf.reduce_sum(_losses(structure, outputs, y_batch) * w_batch, axis=1), count
                )
                # The towers share no weight: the sum's gradient is each one's own.
                total = tf.reduce_sum(data_losses)
            product_gradient, *gradients = tape.gradient(total, watched)
            gradients = [batch.kernel_gradient(product_gradient), *gradients]
            new_weights, new_slots = list(weights), list(slots)
            tower_losses = data_losses
            for j, (p, gradient) in enumerate(zip(trainable, gradients)):
                kind, layer = layout[p]
                penalised = kind == "kernel"
                l1, l2 = (
                    (_per_tower(numbers[name], kind, layer, weights[p]) if penalised and on
                     else None)
                    for name, on in (("l1", structure.with_l1), ("l2", structure.with_l2))
                )  # fmt: skip
                update = (
                    _fused_penalised_update
                    if p == 0 and structure.fused_update
                    else _penalised_update
                )
                new_weights[p], new_slots[j * n_slots : (j + 1) * n_slots], sums = update(
                    structure.optimizer, weights[p], slots[j * n_slots : (j + 1) * n_slots],
                    gradient, rates[p], l1, l2, numbers["optimizer"], iteration,
                )  # fmt: skip
                if sums is not None:
                    if layer == 0:
                        sums = tf.reduce_sum(tf.reshape(sums, [n_towers, -1]), axis=1)
                    tower_losses += sums
            for p, value in moving.items():
                new_weights[p] = value
            return (step + 1, iteration + 1, new_weights, new_slots,
                    loss_sum + tower_losses * count)  # fmt: skip

        def evaluate(weights):
            """Each block's towers on the block's rows (a fold's held-out rows),
            inference mode; flattened [rows, towers, outputs] blocks, concatenated."""
            _, row_splits, tower_splits = evaluation
            n_units = tf.shape(weights[0], out_type=tf.int64)[1] // tf.cast(n_towers, tf.int64)

            def block_body(block, outputs):
                first, last = tower_splits[block], tower_splits[block + 1]
                block_weights = [
                    weight[:, first * n_units : last * n_units] if p == 0 else weight[first:last]
                    for p, weight in enumerate(weights)
                ]
                block_end = row_splits[block + 1]

                def chunk_body(start, outputs):
                    end = tf.minimum(start + _EVALUATION_BATCH_SIZE, block_end)
                    product = held_out_product(block_weights[0], start, end)
                    batch, _ = _forward(structure, layout, block_weights, product, numbers)
                    flat = tf.reshape(tf.transpose(batch, [1, 0, 2]), [-1])
                    return end, outputs.write(outputs.size(), flat)

                _, outputs = tf.while_loop(
                    lambda start, _: start < block_end, chunk_body,
                    (row_splits[block], outputs), parallel_iterations=1,
                )  # fmt: skip
                return block + 1, outputs

            _, outputs = tf.while_loop(
                lambda block, _: block < tf.shape(tower_splits, out_type=tf.int64)[0] - 1,
                block_body,
                (tf.constant(0, tf.int64),
                 tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False)),
                parallel_iterations=1,
            )  # fmt: skip
            return outputs.concat()

        def epoch_body(epoch, iteration, weights, slots, losses, outputs):
            order = tf.cast(
                tf.argsort(tf.random.stateless_uniform([n_rows], tf.stack([shuffle_seed, epoch]))),
                tf.int64,
            )
            if structure.sparse:
                position = tf.math.invert_permutation(order)

            def part_body(first_step, iteration, weights, slots, loss_sum):
                """The steps from first_step on whose batches one partition places."""
                if structure.sparse:
                    partition = batches.partition(position, batch_size, first_step)

                    def batch(step):
                        return _SparseBatch(partition, step - first_step, batches.n_features,
                                            batches.split)  # fmt: skip

                else:

                    def batch(step):
                        end = tf.minimum((step + 1) * batch_size, n_rows)
                        return _DenseBatch(data[0], order[step * batch_size : end])

                _, iteration, weights, slots, loss_sum = tf.while_loop(
                    lambda step, *_: step < tf.minimum(first_step + steps_per_part, n_steps),
                    lambda step, *loop: train_step(batch(step), step, *loop),
                    (first_step, iteration, weights, slots, loss_sum),
                    parallel_iterations=1,
                )  # fmt: skip
                return first_step + steps_per_part, iteration, weights, slots, loss_sum

            _, iteration, weights, slots, loss_sum = tf.while_loop(
                lambda first_step, *_: first_step < n_steps, part_body,
                (tf.constant(0, tf.int64), iteration, weights, slots, tf.zeros([n_towers])),
                parallel_iterations=1,
            )  # fmt: skip
            # Keras' epoch loss: the batch losses weighted by their sizes.
            loss = tf.math.divide_no_nan(loss_sum, tf.reduce_sum(member, axis=1))
            at = tf.cast(epoch - first_epoch, tf.int32)
            return (epoch + 1, iteration, weights, slots, losses.write(at, loss),
                    outputs.write(at, evaluate(weights)))  # fmt: skip

        epoch, iteration, weights, slots, losses, outputs = tf.while_loop(
            lambda epoch, *_: epoch < end_epoch, epoch_body,
            (first_epoch, counters[1], weights, slots,
             tf.TensorArray(tf.float32, size=0, dynamic_size=True),
             tf.TensorArray(tf.float32, size=0, dynamic_size=True)),
            parallel_iterations=1,
        )  # fmt: skip
        return weights, slots, tf.stack([epoch, iteration]), losses.stack(), outputs.stack()

    return tf.function(
        program, input_signature=_signature(structure, len(layout)), autograph=False
    )


class TowerState:
    """What a group of towers has learned: the state the program takes and
    returns, so that training goes on where a call stopped.

    Parameters
    ----------
    weights : list of tf.Tensor
        In the program's order (the layout of the module docstring).
    slots : list of tf.Tensor
        The optimizer's buffers: :func:`optimizer_slots` per trained weight
        (:func:`trainable_positions`), each shaped as its weight.
    epoch, iteration : int
        Epochs and steps trained. They continue the batch order, the
        dropout masks and Adam's bias correction where they stopped.
    """

    def __init__(self, weights, slots, *, epoch, iteration):
        self.weights = list(weights)
        self.slots = list(slots)
        self.epoch = epoch
        self.iteration = iteration

    @classmethod
    def start(cls, structure, weights):
        """Untrained towers: ``weights`` (from :func:`initial_weights`), zero slots."""
        weights = [tf.constant(w, tf.float32) for w in weights]
        slots = [tf.zeros_like(weights[p]) for p in trainable_positions(structure)
                 for _ in range(optimizer_slots(structure.optimizer))]  # fmt: skip
        return cls(weights, slots, epoch=0, iteration=0)

    @property
    def n_towers(self):
        return int(self.weights[-1].shape[0])

    def select(self, towers):
        """The state of the towers ``towers`` (positions in this group) alone,
        to be trained on as a smaller group."""
        towers = np.asarray(towers, np.int64)
        n_units = int(self.weights[0].shape[1]) // self.n_towers
        # The first kernel holds the towers side by side; the others stack them.
        columns = (towers[:, None] * n_units + np.arange(n_units)).ravel()

        def take(tensor):
            if tensor.shape.rank == 2:
                return tf.gather(tensor, columns, axis=1)
            return tf.gather(tensor, towers)

        return TowerState([take(w) for w in self.weights], [take(s) for s in self.slots],
                          epoch=self.epoch, iteration=self.iteration)  # fmt: skip


class TowerEpochs:
    """Epochs of a group of towers: the ``state`` after them, the training
    ``losses`` [epochs, K], and ``outputs``: per evaluation block, its
    towers' outputs on its rows after each epoch [epochs, rows, towers, n_outputs]."""

    def __init__(self, state, losses, outputs):
        self.state = state
        self.losses = losses
        self.outputs = outputs


class TowerTrainer:
    """A group of K towers in training: the program's inputs, made once, and
    the :class:`TowerState` that each :meth:`train` call advances. The
    caller's loop over calls is where it can act between epochs (score,
    report, stop, take some towers out).

    Parameters
    ----------
    structure : TowerStructure
    data : tuple of tensors
        From :func:`tower_data`.
    y : ndarray of shape (n_rows,) or (n_rows, n_columns)
        Encoded labels or targets.
    row_weight : ndarray of shape (K, n_rows)
        Each tower's weight of each row: 0 outside its training fold.
    member : ndarray of shape (K, n_rows)
        1 where a row is in the tower's training fold, else 0.
    blocks : list of (rows, first tower, end tower)
        The towers ``first:end`` are scored on ``rows`` after each epoch.
    state : TowerState
        Where training starts (or goes on).
    numbers : dict
        ``l1``, ``l2``, ``dropout``, ``learning_rate``: [K] each;
        ``optimizer``: the optimizer's three other numbers; ``key``: [K]
        integers, each tower's own stream of dropout masks.
    batch_size : int
    seeds : pair of int
        Seeds of the batch order and of the dropout masks.
    """

    def __init__(self, structure, data, y, row_weight, member, blocks, state, numbers, *,
                 batch_size, seeds):  # fmt: skip
        self._program = cached_program(structure.key, functools.partial(_make_program, structure))
        rows = np.concatenate([block_rows for block_rows, _, _ in blocks])
        row_splits = np.cumsum([0] + [len(block_rows) for block_rows, _, _ in blocks])
        tower_splits = [blocks[0][1]] + [end for _, _, end in blocks]
        self._inputs = (
            data,
            label_tensor(y),
            tf.constant(row_weight, tf.float32),
            tf.constant(member, tf.float32),
            tuple(tf.constant(v, tf.int64) for v in (rows, row_splits, tower_splits)),
        )
        self._numbers = {name: tf.constant(values, tf.int64 if name == "key" else tf.float32)
                         for name, values in numbers.items()}  # fmt: skip
        self._blocks = blocks
        self._settings = [batch_size, *seeds]
        self.state = state

    def train(self, epochs):
        """Train ``epochs`` more epochs in one call; their :class:`TowerEpochs`."""
        weights, slots, counters, losses, outputs = self._program(
            *self._inputs, self.state.weights, self.state.slots,
            tf.constant([self.state.epoch, self.state.iteration], tf.int64), self._numbers,
            tf.constant([epochs, *self._settings], tf.int64),
        )  # fmt: skip
        epoch, iteration = (int(n) for n in counters.numpy())
        self.state = TowerState(weights, slots, epoch=epoch, iteration=iteration)
        n_outputs = int(weights[-1].shape[-1])
        outputs = outputs.numpy()
        by_block, offset = [], 0
        for block_rows, first, end in self._blocks:
            size = len(block_rows) * (end - first) * n_outputs
            by_block.append(outputs[:, offset : offset + size].reshape(
                epochs, len(block_rows), end - first, n_outputs))  # fmt: skip
            offset += size
        return TowerEpochs(self.state, losses.numpy(), by_block)
