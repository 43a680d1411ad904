"""The tower program: some more epochs of a group of towers from a state,
traced once per :class:`~skreg._engine.structure.TowerStructure`."""

import functools

from .partition import STEPS_PER_PARTITION, PartitionedBatches
from .._backend.tensorflow import keras, tf
from . import batches
from .batches import DenseBatch, SparseBatch, SparseHeldOut
from .losses import per_sample_accuracy, per_sample_loss
from .numbers import TowerNumbers
from .regularizers import REGULARIZERS, LabelSmoothing, of_stage
from .rules import rule_of
from .shapes import per_tower, tower_sums
from .structure import optimizer_slots, trainable_positions, weight_layout
from .updates import (WeightFactors, clip_factor, first_kernel_update, penalised_gradient,
                      uniform_per_tower, weight_update)

__all__ = ["TowerProgram", "learning_rate_schedule", "make_program"]


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
        if training:
            # A stream per layer and forward stage (its place among them
            # all, so that a tower's draws do not depend on its group's).
            for stream, regularizer in enumerate(of_stage("forward")):
                if structure.makes(regularizer):
                    uniform = uniform_per_tower(tf.shape(h)[1:], seed + [0, 2 * i + stream],
                                                numbers["key"])  # fmt: skip
                    h = regularizer.forward(h, numbers[regularizer.name][:, None, None], uniform)
    outputs = (_tower_matmul(h, weights[at["output_kernel", None]])
               + weights[at["output_bias", None]])
    return outputs, moving


def _losses(structure, outputs, y, smoothing=None):
    """[K, rows]: the per-sample loss of every tower (Keras' loss functions),
    with each tower's label smoothing (``smoothing`` [K], or None)."""
    n_towers, n_rows = tf.shape(outputs)[0], tf.shape(outputs)[1]
    flat = tf.reshape(outputs, [n_towers * n_rows, -1])
    flat.set_shape([None, None])
    per_row = None if smoothing is None else tf.repeat(smoothing, n_rows)
    losses = per_sample_loss(structure.loss, flat, tf.tile(y, [n_towers, 1]), per_row)
    return tf.reshape(losses, [n_towers, n_rows])


def _penalties(structure, layout, weights, numbers):
    """[K]: each tower's penalties on the weights they act on (Keras adds
    them to the loss it reports, validation loss included)."""
    n_towers = tf.shape(numbers["learning_rate"])[0]
    total = tf.zeros([n_towers])
    for p, (kind, _) in enumerate(layout):
        for penalty in of_stage("penalty", structure.regularizers):
            if penalty.acts_on(kind):
                total += tower_sums(penalty.terms(weights[p], 1.0), n_towers) * numbers[
                    penalty.name]
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
    index = tf.TensorSpec([None], tf.int64)
    # data, y, row weights [K, n], membership [K, n], evaluation blocks (rows,
    # row splits, tower bounds; the held-out matrix, or the sparse rows'
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
    numbers = TowerNumbers.signature(rule_of(structure.optimizer).number_names)
    return (data, matrix, matrix, matrix, evaluation, weights, slots,
            tf.TensorSpec([2], tf.int64), numbers, index, tf.TensorSpec([5], tf.int64))  # fmt: skip


class _Call:
    """One call's inputs, and what the traced steps derive from them once,
    outside the loops (each weight's per-tower factors: in the step they
    were ~200 of its ~670 ops, traced, optimised and run every step again
    for the same values). The trace adds, as it reaches them: the call's
    ``weight_factors``, ``first_epoch`` and ``narrow`` (:meth:`TowerProgram.run`),
    and each epoch's ``step_table``, ``order``, ``position`` and
    ``augmentation`` (:meth:`TowerProgram._epoch`), read by the steps
    traced inside that epoch."""

    def __init__(self, program, data, y, row_weight, member, evaluation, numbers, train_rows,
                 settings):  # fmt: skip
        structure = program.structure
        self.data, self.y, self.row_weight, self.member = data, y, row_weight, member
        self.evaluation, self.numbers, self.train_rows = evaluation, numbers, train_rows
        # The settings: epochs, batch size, shuffle seed, dropout seed, milliseconds.
        self.batch_size, self.shuffle_seed, self.dropout_seed = (settings[i] for i in (1, 2, 3))
        self.n_rows = tf.shape(y, out_type=tf.int64)[0]
        self.n_towers = tf.shape(numbers["learning_rate"])[0]
        # The batches are cut from train_rows (a fold's training rows); the
        # other rows are only scored (its held-out rows).
        self.n_train = tf.shape(train_rows, out_type=tf.int64)[0]
        self.n_steps = (self.n_train + self.batch_size - 1) // self.batch_size
        self.input_changes = (
            numbers["input_dropout"] if structure.with_input_dropout else None,
            numbers["input_noise"] if structure.with_input_noise else None,
        )
        # Input dropout scales the kept values by 1 / (1 - rate).
        self.input_scale = (1.0 / (1.0 - self.input_changes[0])
                            if structure.with_input_dropout else None)  # fmt: skip
        # The one regularizer of the targets: the loss functions take it.
        self.smoothing = (numbers[LabelSmoothing.name] if structure.makes(LabelSmoothing)
                          else None)  # fmt: skip
        if structure.sparse:
            self.sparse_batches = PartitionedBatches(*data, binary=structure.binary)
            # The held-out rows' non-zeros, gathered by the trainer (see
            # SparseHeldOut); their values are empty where all are 1.
            self.held_out = SparseHeldOut(*evaluation[3:])
            self.steps_per_part = tf.constant(STEPS_PER_PARTITION, tf.int64)
        else:
            self.steps_per_part = self.n_steps

    def factors(self, program, weights):
        """{position: WeightFactors} of the trained weights, at a rate scale of 1."""
        structure, numbers, layout = program.structure, self.numbers, program.layout
        rate = numbers["learning_rate"]
        on_weights = [r for r in REGULARIZERS if structure.makes(r)
                      and r.stage in ("penalty", "decay", "constraint")]  # fmt: skip
        factors = {}
        for p in program.trainable:
            weight = weights[p]
            factors[p] = WeightFactors(
                per_tower(rate, weight),
                {r.name: r.weight_factor(numbers[r.name], rate, weight)
                 for r in on_weights if r.acts_on(layout[p][0])},
                # Global-norm clipping makes its own factors (_globally_clipped).
                clip=(clip_factor(structure.clipping, numbers["clip"], weight)
                      if structure.clipping in ("clipnorm", "clipvalue") else None),
            )  # fmt: skip
        return factors

    def held_out_product(self, structure, kernel, begin, end):
        """``x @ kernel`` for the evaluation rows ``begin`` to ``end``."""
        if structure.sparse:
            return self.held_out.product(kernel, begin, end)
        return tf.matmul(tf.gather(self.evaluation[3], self.evaluation[0][begin:end]), kernel)


class TowerProgram:
    """Some more epochs of a group of towers from a state, as one traced
    TensorFlow function per :class:`~skreg._engine.structure.TowerStructure`."""

    def __init__(self, structure):
        self.structure = structure
        self.layout = weight_layout(structure)
        self.trainable = trainable_positions(structure)
        self.rule = rule_of(structure.optimizer)
        self.schedule = learning_rate_schedule(structure.schedule)

    def traced(self):
        return tf.function(self.run, input_signature=_signature(self.structure, len(self.layout)),
                           autograph=False)  # fmt: skip

    def run(self, data, y, row_weight, member, evaluation, weights, slots, counters, numbers,
            train_rows, settings):  # fmt: skip
        call = _Call(self, data, y, row_weight, member, evaluation, numbers, train_rows, settings)
        call.weight_factors = call.factors(self, weights)
        first_epoch, end_epoch = counters[0], counters[0] + settings[0]
        # The call ends after the first epoch that ends past its time, so
        # that Python (Ctrl-C, progress, the caller's loop) gets control back
        # often; the counters say how many epochs it trained.
        deadline = tf.timestamp() + tf.cast(settings[4], tf.float64) / 1000.0
        call.first_epoch = first_epoch
        if self.structure.sparse:
            # The group's first layer, all towers' units: a lone network's is
            # mostly narrow, a search's wide (see batches.NARROW_WIDTH).
            call.narrow = tf.shape(weights[0])[1] < batches.NARROW_WIDTH

        def more_epochs(epoch, *_):
            return tf.logical_and(
                epoch < end_epoch,
                tf.logical_or(epoch == first_epoch, tf.timestamp() < deadline),
            )

        epoch, iteration, weights, slots, logs, outputs = tf.while_loop(
            more_epochs, functools.partial(self._epoch, call),
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

    def _epoch(self, call, epoch, iteration, weights, slots, logs, outputs):
        structure = self.structure
        call.step_table = self._step_table(call, iteration)
        # The order of a separate fit on the training rows alone.
        shuffled = tf.random.stateless_uniform([call.n_train],
                                               tf.stack([call.shuffle_seed, epoch]))  # fmt: skip
        call.order = tf.gather(call.train_rows, tf.argsort(shuffled))
        if structure.sparse:
            # Each row's place in the order; the others' a place no partition reaches.
            never = (call.n_steps + STEPS_PER_PARTITION) * call.batch_size
            call.position = tf.tensor_scatter_nd_update(
                tf.fill([call.n_rows], never), call.order[:, None], tf.range(call.n_train)
            )
            # An epoch's input changes, drawn once for all its batches
            # (a second stream: the seed's second number is negative).
            call.augmentation = (call.sparse_batches.augmentation(
                tf.stack([call.dropout_seed, -1 - epoch]), *call.input_changes,
                column_order=~call.narrow,
            ) if any(c is not None for c in call.input_changes) else None)  # fmt: skip
        zeros = tf.zeros([call.n_towers])
        _, iteration, weights, slots, loss_sum, correct_sum = tf.while_loop(
            lambda first_step, *_: first_step < call.n_steps,
            functools.partial(self._part, call),
            (tf.constant(0, tf.int64), iteration, weights, slots, zeros, zeros),
            parallel_iterations=1,
        )  # fmt: skip
        # Keras' epoch loss: the batch losses weighted by their sizes.
        n_trained = tf.reduce_sum(call.member, axis=1)
        at = tf.cast(epoch - call.first_epoch, tf.int32)
        logs = {
            "loss": logs["loss"].write(at, tf.math.divide_no_nan(loss_sum, n_trained)),
            "accuracy": logs["accuracy"].write(at, tf.math.divide_no_nan(correct_sum, n_trained)),
            "penalty": logs["penalty"].write(
                at, _penalties(structure, self.layout, weights, call.numbers)),
        }  # fmt: skip
        return (epoch + 1, iteration, weights, slots, logs,
                outputs.write(at, self._evaluate(call, weights)))  # fmt: skip

    def _part(self, call, first_step, iteration, weights, slots, loss_sum, correct_sum):
        """The steps from first_step on whose batches one partition places."""
        if self.structure.sparse:
            partition = call.sparse_batches.partition(
                call.position, call.batch_size, first_step, call.n_train, call.augmentation,
                column_order=~call.narrow,
            )  # fmt: skip

            def batch(step):
                return SparseBatch(partition, step - first_step, call.sparse_batches.n_features,
                                   call.sparse_batches.split, call.input_scale,
                                   narrow=call.narrow)  # fmt: skip

        else:

            def batch(step):
                end = tf.minimum((step + 1) * call.batch_size, call.n_train)
                return DenseBatch(call.data[0], call.order[step * call.batch_size : end])

        _, iteration, weights, slots, loss_sum, correct_sum = tf.while_loop(
            lambda step, *_: step < tf.minimum(first_step + call.steps_per_part, call.n_steps),
            lambda step, *loop: self._train_step(call, batch(step), step, *loop),
            (first_step, iteration, weights, slots, loss_sum, correct_sum),
            parallel_iterations=1,
        )  # fmt: skip
        return (first_step + call.steps_per_part, iteration, weights, slots, loss_sum,
                correct_sum)  # fmt: skip

    def _train_step(self, call, batch, step, iteration, weights, slots, loss_sum, correct_sum):
        structure = self.structure
        seed = tf.stack([call.dropout_seed, iteration * 1024])
        if any(c is not None for c in call.input_changes) and not structure.sparse:
            # The towers share the batch, so they share its changes.
            batch = batch.augmented(seed + [0, 1021], *call.input_changes)
        y_batch = tf.gather(call.y, batch.rows)
        w_batch = tf.gather(call.row_weight, batch.rows, axis=1)
        m_batch = tf.gather(call.member, batch.rows, axis=1)
        # The first layer's product is taken off the tape: its kernel
        # gradient is the batch's own x.T @ (gradient of the product).
        first_product = batch.product(weights[0])
        watched = [first_product] + [weights[p] for p in self.trainable[1:]]
        with tf.GradientTape() as tape:
            tape.watch(watched)
            outputs, moving = _forward(structure, self.layout, weights, first_product,
                                       call.numbers, member=m_batch, seed=seed)  # fmt: skip
            # Keras' "sum_over_batch_size", each tower over its own rows.
            count = tf.reduce_sum(m_batch, axis=1)
            data_losses = tf.math.divide_no_nan(tf.reduce_sum(
                _losses(structure, outputs, y_batch, call.smoothing) * w_batch, axis=1), count)
            # The towers share no weight: the sum's gradient is each one's own.
            total = tf.reduce_sum(data_losses)
        product_gradient, *gradients = tape.gradient(total, watched)
        gradients = [batch.kernel_gradient(product_gradient), *gradients]
        weights, slots, penalty_sums = self._updated(call, weights, slots, gradients, step)
        for p, value in moving.items():
            weights[p] = value
        if structure.classifies:
            # Keras' compiled accuracy: training outputs, rows not weighted.
            hits = per_sample_accuracy(structure.loss, outputs, y_batch)
            correct_sum += tf.reduce_sum(hits * m_batch, axis=1)
        return (step + 1, iteration + 1, weights, slots,
                loss_sum + (data_losses + penalty_sums) * count, correct_sum)  # fmt: skip

    def _step_table(self, call, iteration):
        """The epoch's per-step values: the rule's
        (:meth:`~skreg._engine.rules.UpdateRule.step_table`) and the
        schedule's rate (Keras' schedule at each step), for every step at
        once; each step takes its row."""
        iterations = iteration + tf.range(call.n_steps)
        table = self.rule.step_table(call.numbers["optimizer"], iterations)
        if self.schedule is not None:
            table["rate_scale"] = tf.vectorized_map(
                lambda step: tf.cast(self.schedule(step), tf.float32), iterations)
        return table

    def _updated(self, call, weights, slots, gradients, step_index):
        """(weights, slots) after one step's updates (the epoch's
        ``step_index``-th), and each tower's penalty before it (Keras
        reports the loss it took the gradient of)."""
        structure, n_slots = self.structure, self.rule.n_slots
        factors = call.weight_factors
        step = {**call.numbers["optimizer"],
                **{name: values[step_index] for name, values in call.step_table.items()}}
        if self.schedule is not None:  # this step's rate, Keras' schedule at the iteration
            scale = step.pop("rate_scale")
            factors = {p: f.scaled(scale) for p, f in factors.items()}
        if structure.clipping == "global_clipnorm":
            factors = self._globally_clipped(call, factors, weights, gradients)
        new_weights, new_slots = list(weights), list(slots)
        penalty_sums = tf.zeros([call.n_towers])
        for j, (p, gradient) in enumerate(zip(self.trainable, gradients)):
            update = (functools.partial(first_kernel_update, structure.fused_update) if p == 0
                      else weight_update)  # fmt: skip
            own = slice(j * n_slots, (j + 1) * n_slots)
            new_weights[p], new_slots[own], sums = update(
                structure.optimizer, weights[p], slots[own], gradient, factors[p].as_dict(), step,
                structure.clipping if structure.clipping != "global_clipnorm" else None,
            )  # fmt: skip
            if sums is not None:
                if p == 0:
                    sums = tf.reduce_sum(tf.reshape(sums, [call.n_towers, -1]), axis=1)
                penalty_sums += sums
        return new_weights, new_slots, penalty_sums

    def _globally_clipped(self, call, factors, weights, gradients):
        """The factors with each tower's global-norm clipping factor (Keras'
        ``global_clipnorm``: of all its penalised gradients together)."""
        squares = tf.zeros([call.n_towers])
        for p, gradient in zip(self.trainable, gradients):
            if isinstance(gradient, (list, tuple)):
                gradient = tf.concat(list(gradient), axis=0)
            penalised, _ = penalised_gradient(weights[p], gradient, factors[p].regularizers)
            squares += tower_sums(tf.square(penalised), call.n_towers)
        norm, clip = tf.sqrt(squares), call.numbers["clip"]
        # Keras' factor: NaN where the norm is not finite.
        scale = clip * tf.minimum(1.0 / norm, 1.0 / clip) + (norm - norm)
        return {p: f.replace(clip=None, gradient_scale=per_tower(scale, weights[p]))
                for p, f in factors.items()}  # fmt: skip

    def _evaluate(self, call, weights):
        """Each block's towers on the block's rows (a fold's held-out rows),
        inference mode; flattened [rows, towers, outputs] blocks, concatenated."""
        structure = self.structure
        _, row_splits, tower_bounds = call.evaluation[:3]
        n_units = tf.shape(weights[0], out_type=tf.int64)[1] // tf.cast(call.n_towers, tf.int64)

        def block_body(block, outputs):
            first, last = tower_bounds[2 * block], tower_bounds[2 * block + 1]
            block_weights = [
                weight[:, first * n_units : last * n_units] if p == 0 else weight[first:last]
                for p, weight in enumerate(weights)
            ]
            block_end = row_splits[block + 1]

            def chunk_body(start, outputs):
                end = tf.minimum(start + batches.EVALUATION_BATCH_SIZE, block_end)
                product = call.held_out_product(structure, block_weights[0], start, end)
                batch, _ = _forward(structure, self.layout, block_weights, product, call.numbers)
                flat = tf.reshape(tf.transpose(batch, [1, 0, 2]), [-1])
                return end, outputs.write(outputs.size(), flat)

            _, outputs = tf.while_loop(
                lambda start, _: start < block_end, chunk_body,
                (row_splits[block], outputs), parallel_iterations=1,
            )  # fmt: skip
            return block + 1, outputs

        _, outputs = tf.while_loop(
            lambda block, _: block < tf.shape(tower_bounds, out_type=tf.int64)[0] // 2,
            block_body,
            (tf.constant(0, tf.int64),
             # Flat blocks of any size, and none at all (a fit without validation).
             tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False,
                            element_shape=tf.TensorShape([None]))),
            parallel_iterations=1,
        )  # fmt: skip
        return outputs.concat()


def learning_rate_schedule(schedule):
    """The Keras schedule of a structure's ``schedule`` (its class name and
    config items, hashable), or None."""
    if schedule is None:
        return None
    class_name, items = schedule
    config = {name: list(value) if isinstance(value, tuple) else value for name, value in items}
    return keras.optimizers.schedules.deserialize({"class_name": class_name, "config": config})


def make_program(structure):
    """The traced :class:`TowerProgram` of ``structure``."""
    return TowerProgram(structure).traced()
