"""The tower program: some more epochs of a group of towers from a state,
traced once per :class:`~skreg._engine.structure.TowerStructure`."""

import functools

from .._batching import STEPS_PER_PARTITION, PartitionedBatches
from .._tensorflow import keras, tf
from . import batches
from .batches import DenseBatch, SparseBatch, SparseHeldOut
from .losses import per_sample_accuracy, per_sample_loss
from .structure import optimizer_slots, trainable_positions, weight_layout
from .updates import first_kernel_update, penalised_update, per_tower, uniform_per_tower

__all__ = ["make_program"]


def _batch_matmul(a, b, adj_x=False, adj_y=False):
    return tf.raw_ops.BatchMatMulV3(x=a, y=b, Tout=tf.float32, adj_x=adj_x, adj_y=adj_y)


@tf.custom_gradient
def _tower_matmul(h, kernel):
    """``h @ kernel`` per tower ([K, rows, in] @ [K, in, out]), forward and
    backward by BatchMatMulV3, which TensorFlow's oneDNN builds leave to
    Eigen: they rewrite BatchMatMulV2 (tf.matmul's) to oneDNN's, whose
    fixed cost of ~50 us a call was most of a small network's step."""

    def gradient(upstream):
        return _batch_matmul(upstream, kernel, adj_y=True), _batch_matmul(h, upstream, adj_x=True)

    return _batch_matmul(h, kernel), gradient


@tf.custom_gradient
def _tower_major(first_product, n_towers):
    """The first layer's product [rows, K * units] as [K, rows, units], and
    its gradient back, by gathers: oneDNN's transpose cost ~30 us a call
    more than a gather on small batches."""
    rows = tf.shape(first_product)[0]
    units = tf.shape(first_product)[1] // n_towers
    # Place k * rows + r of the result holds row r * K + k of the flat product.
    place = tf.range(rows * n_towers)
    source = place % rows * n_towers + place // rows
    flat = tf.reshape(first_product, [rows * n_towers, units])

    def gradient(upstream):
        back = place % n_towers * rows + place // n_towers
        flat_upstream = tf.reshape(upstream, [rows * n_towers, units])
        return tf.reshape(tf.gather(flat_upstream, back), [rows, n_towers * units]), None

    return tf.reshape(tf.gather(flat, source), [n_towers, rows, units]), gradient


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
            h = _tower_major(first_product, n_towers)
        else:
            h = _tower_matmul(h, weights[at["kernel", i]])
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
                    momentum = structure.batch_norm_momentum
                    moving[position] = weights[position] * momentum + batch_value * (
                        1.0 - momentum
                    )
            else:
                mean, variance = weights[at["mean", i]], weights[at["variance", i]]
            h = tf.nn.batch_normalization(
                h, mean, variance, beta, gamma, structure.batch_norm_epsilon
            )
        else:
            h = h + weights[at["bias", i]]
        h = keras.activations.get(structure.activation)(h)
        if training and structure.with_dropout:
            rate = numbers["dropout"][:, None, None]
            keep = uniform_per_tower(tf.shape(h)[1:], seed + [0, 2 * i], numbers["key"]) >= rate
            h = tf.where(keep, h / (1.0 - rate), 0.0)
    outputs = (_tower_matmul(h, weights[at["output_kernel", None]])
               + weights[at["output_bias", None]])
    return outputs, moving


def _losses(structure, outputs, y):
    """[K, rows]: the per-sample loss of every tower (Keras' loss functions)."""
    n_towers, n_rows = tf.shape(outputs)[0], tf.shape(outputs)[1]
    flat = tf.reshape(outputs, [n_towers * n_rows, -1])
    flat.set_shape([None, None])
    losses = per_sample_loss(structure.loss, flat, tf.tile(y, [n_towers, 1]))
    return tf.reshape(losses, [n_towers, n_rows])


def _penalties(structure, layout, weights, numbers):
    """[K]: each tower's L1/L2 penalty on its hidden kernels (Keras adds it
    to the loss it reports, validation loss included)."""
    n_towers = tf.shape(numbers["l2"])[0]
    total = tf.zeros([n_towers])
    for p, (kind, layer) in enumerate(layout):
        if kind != "kernel":
            continue
        for name, on, term in (("l1", structure.with_l1, tf.abs),
                               ("l2", structure.with_l2, tf.square)):  # fmt: skip
            if on:
                if layer == 0:  # [n_features, K * units]
                    sums = tf.reduce_sum(tf.reshape(tf.reduce_sum(term(weights[p]), axis=0),
                                                    [n_towers, -1]), axis=1)  # fmt: skip
                else:
                    sums = tf.reduce_sum(term(weights[p]), axis=[1, 2])
                total += numbers[name] * sums
    return total


def _signature(structure, n_weights):
    data = (
        (tf.TensorSpec([None], tf.int64), tf.TensorSpec([None], tf.int64),
         tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int64),
         tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int32),
         tf.TensorSpec([None], tf.float32), tf.TensorSpec([None], tf.int32),
         tf.TensorSpec([], tf.int64), tf.TensorSpec([None], tf.int32))
        if structure.sparse
        else (tf.TensorSpec([None, None], tf.float32),)
    )  # fmt: skip
    matrix, vector = tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None], tf.float32)
    weights = [tf.TensorSpec([None, None], tf.float32)]
    weights += [tf.TensorSpec([None, None, None], tf.float32)] * (n_weights - 1)
    numbers = {name: vector for name in ("l1", "l2", "dropout", "learning_rate")}
    numbers["optimizer"] = tf.TensorSpec([3], tf.float32)
    numbers["key"] = tf.TensorSpec([None], tf.int64)
    numbers["input_dropout"] = numbers["input_noise"] = tf.TensorSpec([], tf.float32)
    index = tf.TensorSpec([None], tf.int64)
    # data, y, row weights [K, n], membership [K, n], evaluation blocks (rows,
    # row splits, tower splits; the held-out matrix, or the sparse rows'
    # non-zeros: see SparseHeldOut), the state (weights, optimizer slots shaped as
    # the trainable weights, counters: epochs and steps trained), numbers,
    # the rows batches are cut from, and the settings: epochs to train, batch
    # size, shuffle seed, dropout seed, milliseconds after which no epoch starts
    slots = [weights[p] for p in trainable_positions(structure)
             for _ in range(optimizer_slots(structure.optimizer))]  # fmt: skip
    # The held-out rows index a matrix of their own: a fit's validation
    # rows, or the data batches are cut from (a search's folds).
    evaluation = (index, index, index)
    if structure.sparse:
        evaluation += (index, tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int32),
                       vector)  # fmt: skip
    else:
        evaluation += (matrix,)
    return (data, matrix, matrix, matrix, evaluation, weights, slots,
            tf.TensorSpec([2], tf.int64), numbers, index, tf.TensorSpec([5], tf.int64))  # fmt: skip


def make_program(structure):
    layout = weight_layout(structure)
    trainable = trainable_positions(structure)
    n_slots = optimizer_slots(structure.optimizer)

    def program(data, y, row_weight, member, evaluation, weights, slots, counters, numbers,
                train_rows, settings):  # fmt: skip
        epochs, batch_size, shuffle_seed, dropout_seed, milliseconds = (settings[i]
                                                                        for i in range(5))
        first_epoch, end_epoch = counters[0], counters[0] + epochs
        # The call ends after the first epoch that ends past its time, so
        # that Python (Ctrl-C, progress, the caller's loop) gets control back
        # often; the counters say how many epochs it trained.
        deadline = tf.timestamp() + tf.cast(milliseconds, tf.float64) / 1000.0
        n_rows = tf.shape(y, out_type=tf.int64)[0]
        n_towers = tf.shape(numbers["l2"])[0]
        # The batches are cut from train_rows (a fold's training rows); the
        # other rows are only scored (its held-out rows).
        n_train = tf.shape(train_rows, out_type=tf.int64)[0]
        n_steps = (n_train + batch_size - 1) // batch_size
        # Each weight's per-tower numbers, shaped to it once, outside the
        # loops: in the step they were ~200 of its ~670 ops, traced, optimised
        # and run every step again for the same values.
        rates = {
            p: per_tower(numbers["learning_rate"], *layout[p], weights[p]) for p in trainable
        }
        penalty_factors = {
            p: tuple(per_tower(numbers[name], *layout[p], weights[p]) if on else None
                     for name, on in (("l1", structure.with_l1), ("l2", structure.with_l2)))
            for p in trainable if layout[p][0] == "kernel"
        }  # fmt: skip
        hyper = tf.unstack(numbers["optimizer"], num=3)
        augmenting = structure.with_input_dropout or structure.with_input_noise
        input_changes = (numbers["input_dropout"] if structure.with_input_dropout else None,
                         numbers["input_noise"] if structure.with_input_noise else None)
        # Input dropout scales the kept values by 1 / (1 - rate).
        input_scale = 1.0 / (1.0 - input_changes[0]) if structure.with_input_dropout else None
        if structure.sparse:
            sparse_batches = PartitionedBatches(*data, binary=structure.binary)
            # The held-out rows' non-zeros, gathered by the trainer (see
            # SparseHeldOut); their values are empty where all are 1.
            held_out = SparseHeldOut(*evaluation[3:])
            steps_per_part = tf.constant(STEPS_PER_PARTITION, tf.int64)
            # The group's first layer, all towers' units: a lone network's is
            # mostly narrow, a search's wide (see batches.NARROW_WIDTH).
            narrow = tf.shape(weights[0])[1] < batches.NARROW_WIDTH
        else:
            steps_per_part = n_steps

        def held_out_product(kernel, begin, end):
            """``x @ kernel`` for the evaluation rows ``begin`` to ``end``."""
            if structure.sparse:
                return held_out.product(kernel, begin, end)
            return tf.matmul(tf.gather(evaluation[3], evaluation[0][begin:end]), kernel)

        def train_step(batch, step, iteration, weights, slots, loss_sum, correct_sum):
            seed = tf.stack([dropout_seed, iteration * 1024])
            if augmenting and not structure.sparse:
                # The towers share the batch, so they share its changes.
                batch = batch.augmented(seed + [0, 1021], *input_changes)
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
                    seed=seed,
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
                layer = layout[p][1]
                l1, l2 = penalty_factors.get(p, (None, None))
                update = (
                    functools.partial(first_kernel_update, structure.fused_update)
                    if p == 0
                    else penalised_update
                )
                new_weights[p], new_slots[j * n_slots : (j + 1) * n_slots], sums = update(
                    structure.optimizer, weights[p], slots[j * n_slots : (j + 1) * n_slots],
                    gradient, rates[p], l1, l2, hyper, iteration,
                )  # fmt: skip
                if sums is not None:
                    if layer == 0:
                        sums = tf.reduce_sum(tf.reshape(sums, [n_towers, -1]), axis=1)
                    tower_losses += sums
            for p, value in moving.items():
                new_weights[p] = value
            if structure.classifies:
                # Keras' compiled accuracy: training outputs, rows not weighted.
                hits = per_sample_accuracy(structure.loss, outputs, y_batch)
                correct_sum += tf.reduce_sum(hits * m_batch, axis=1)
            return (step + 1, iteration + 1, new_weights, new_slots,
                    loss_sum + tower_losses * count, correct_sum)  # fmt: skip

        def evaluate(weights):
            """Each block's towers on the block's rows (a fold's held-out rows),
            inference mode; flattened [rows, towers, outputs] blocks, concatenated."""
            _, row_splits, tower_splits = evaluation[:3]
            n_units = tf.shape(weights[0], out_type=tf.int64)[1] // tf.cast(n_towers, tf.int64)

            def block_body(block, outputs):
                first, last = tower_splits[block], tower_splits[block + 1]
                block_weights = [
                    weight[:, first * n_units : last * n_units] if p == 0 else weight[first:last]
                    for p, weight in enumerate(weights)
                ]
                block_end = row_splits[block + 1]

                def chunk_body(start, outputs):
                    end = tf.minimum(start + batches.EVALUATION_BATCH_SIZE, block_end)
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
                 # Flat blocks of any size, and none at all (a fit without validation).
                 tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False,
                                element_shape=tf.TensorShape([None]))),
                parallel_iterations=1,
            )  # fmt: skip
            return outputs.concat()

        def epoch_body(epoch, iteration, weights, slots, logs, outputs):
            # The order of a separate fit on the training rows alone.
            shuffled = tf.random.stateless_uniform([n_train], tf.stack([shuffle_seed, epoch]))
            order = tf.gather(train_rows, tf.argsort(shuffled))
            if structure.sparse:
                # Each row's place in the order; the others' a place no partition reaches.
                never = (n_steps + STEPS_PER_PARTITION) * batch_size
                position = tf.tensor_scatter_nd_update(
                    tf.fill([n_rows], never), order[:, None], tf.range(n_train)
                )
                # An epoch's input changes, drawn once for all its batches
                # (a second stream: the seed's second number is negative).
                augmentation = (sparse_batches.augmentation(
                    tf.stack([dropout_seed, -1 - epoch]), *input_changes, column_order=~narrow
                ) if augmenting else None)  # fmt: skip

            def part_body(first_step, iteration, weights, slots, loss_sum, correct_sum):
                """The steps from first_step on whose batches one partition places."""
                if structure.sparse:
                    partition = sparse_batches.partition(position, batch_size, first_step,
                                                         n_train, augmentation,
                                                         column_order=~narrow)  # fmt: skip

                    def batch(step):
                        return SparseBatch(partition, step - first_step,
                                           sparse_batches.n_features, sparse_batches.split,
                                           input_scale, narrow=narrow)  # fmt: skip

                else:

                    def batch(step):
                        end = tf.minimum((step + 1) * batch_size, n_train)
                        return DenseBatch(data[0], order[step * batch_size : end])

                _, iteration, weights, slots, loss_sum, correct_sum = tf.while_loop(
                    lambda step, *_: step < tf.minimum(first_step + steps_per_part, n_steps),
                    lambda step, *loop: train_step(batch(step), step, *loop),
                    (first_step, iteration, weights, slots, loss_sum, correct_sum),
                    parallel_iterations=1,
                )  # fmt: skip
                return (first_step + steps_per_part, iteration, weights, slots, loss_sum,
                        correct_sum)  # fmt: skip

            zeros = tf.zeros([n_towers])
            _, iteration, weights, slots, loss_sum, correct_sum = tf.while_loop(
                lambda first_step, *_: first_step < n_steps, part_body,
                (tf.constant(0, tf.int64), iteration, weights, slots, zeros, zeros),
                parallel_iterations=1,
            )  # fmt: skip
            # Keras' epoch loss: the batch losses weighted by their sizes.
            n_trained = tf.reduce_sum(member, axis=1)
            at = tf.cast(epoch - first_epoch, tf.int32)
            logs = {
                "loss": logs["loss"].write(at, tf.math.divide_no_nan(loss_sum, n_trained)),
                "accuracy": logs["accuracy"].write(
                    at, tf.math.divide_no_nan(correct_sum, n_trained)
                ),
                "penalty": logs["penalty"].write(
                    at, _penalties(structure, layout, weights, numbers)
                ),
            }
            return (epoch + 1, iteration, weights, slots, logs,
                    outputs.write(at, evaluate(weights)))  # fmt: skip

        def more_epochs(epoch, *_):
            return tf.logical_and(
                epoch < end_epoch,
                tf.logical_or(epoch == first_epoch, tf.timestamp() < deadline),
            )

        epoch, iteration, weights, slots, logs, outputs = tf.while_loop(
            more_epochs, epoch_body,
            (first_epoch, counters[1], weights, slots,
             {name: tf.TensorArray(tf.float32, size=0, dynamic_size=True)
              for name in ("loss", "accuracy", "penalty")},
             tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False,
                            element_shape=tf.TensorShape([None]))),
            parallel_iterations=1,
        )  # fmt: skip
        # Per epoch and tower: the training loss (penalty included), accuracy
        # (classifiers) and the penalty after the epoch.
        logs = {name: log.stack() for name, log in logs.items()}
        return weights, slots, tf.stack([epoch, iteration]), logs, outputs.stack()

    return tf.function(
        program, input_signature=_signature(structure, len(layout)), autograph=False
    )
