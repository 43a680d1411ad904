"""A whole fit in one call into TensorFlow, traced once per network structure.

Keras' ``Model.fit`` traces a train function for every new model (~0.7 s on a
small network) and runs Python around every epoch. A grid search makes many
models of one structure that differ only in numbers (penalties, dropout
rates, learning rate, epochs, seeds), so skreg compiles the training of such
a network into one TensorFlow program: the epoch loop, the shuffling, the
mini-batches (cut from the data in-graph), the per-epoch training and
validation losses, early stopping and its best weights all run inside one
call. The program reads and updates the Keras model's own variables (and its
optimizer's), passed in as resource handles, so the model is trained in
place and no weights are copied. What a search varies are run-time inputs,
so the program is traced once per structure and kept in a small cache.

It covers the networks :func:`skreg.build_mlp` makes and Keras' RMSprop,
Adam and SGD with a constant learning rate. Anything else (image
transforms, other optimizers, schedules, callbacks, progress output) is
trained by ``Model.fit``, as before; :func:`plan_training` says which.
"""

import collections
import functools
import threading

import numpy as np
import scipy.sparse as sp

from ._batching import csr_tensors, sparse_row_gatherer
from ._losses import PoissonLogLink, poisson_log_link
from ._optimizers import FusedAdam, FusedRMSprop
from ._tensorflow import keras, tf
from .network import InputAugmentation, sparse_dense_product, uses_segment_sums

__all__ = ["clear_training_cache", "plan_training", "training_cache_info"]

# Validation rows scored per pass: bounds the memory of the hidden activations.
_VALIDATION_BATCH_SIZE = 4096
# Traced programs kept, least recently used first out. One per network
# structure (depth, batch norm, activation, optimizer, loss, dense or sparse
# input, with or without validation); widths do not count.
_CACHE_SIZE = 8

_programs = collections.OrderedDict()
_cache_lock = threading.Lock()
_cache_stats = {"hits": 0, "misses": 0}


def clear_training_cache():
    """Forget the traced training programs, freeing their memory.

    skreg traces one TensorFlow program per network structure and reuses it
    for every later fit of that structure in the process (up to 8 programs;
    the least recently used goes first). Emptying the cache only costs the
    next fit of each structure its tracing time (~1 s).
    """
    with _cache_lock:
        _programs.clear()
        _cache_stats.update(hits=0, misses=0)


def training_cache_info():
    """``{"hits", "misses", "size"}`` of the program cache since it was last cleared."""
    with _cache_lock:
        return {**_cache_stats, "size": len(_programs)}


# -- what a model's training needs: a plan ------------------------------------------


class TrainingPlan:
    """How the program trains one Keras model: the static structure (the cache
    key) and the model's variables and numbers in the order the program reads them."""

    def __init__(self, key, weights, trainable, slots, iterations, numbers):
        self.key = key
        self.weights = weights
        self.trainable = trainable
        self.slots = slots
        self.iterations = iterations
        self.numbers = numbers


def _penalty_factors(regularizer):
    if regularizer is None:
        return 0.0, 0.0
    if type(regularizer) not in (keras.regularizers.L1, keras.regularizers.L2,
                                 keras.regularizers.L1L2):  # fmt: skip
        return None
    config = regularizer.get_config()
    return float(config.get("l1", 0.0)), float(config.get("l2", 0.0))


def _plain(layer, *names):
    return all(getattr(layer, name, None) is None for name in names)


def _layer_steps(model):
    """(steps, weights, trainable positions, numbers) of a build_mlp network, or None."""
    steps, weights, trainable = [], [], []
    numbers = {"l1": [], "l2": [], "rates": [], "augmentation": [0.0, 0.0]}

    def add(variable):
        weights.append(variable)
        if variable.trainable:
            trainable.append(len(weights) - 1)
        return len(weights) - 1

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    for position, layer in enumerate(layers):
        if isinstance(layer, InputAugmentation):
            if position != 0 or layer._image_layers:
                return None
            if layer.dropout or layer.noise:
                # Which of the two is on is structure (each costs a random
                # draw over the batch); their values are run-time inputs.
                steps.append(("augmentation", layer.dropout > 0, layer.noise > 0))
                numbers["augmentation"] = [layer.dropout, layer.noise]
        elif isinstance(layer, keras.layers.Dense):
            factors = _penalty_factors(layer.kernel_regularizer)
            if (
                factors is None
                or layer.activation is not keras.activations.linear
                or not _plain(layer, "bias_regularizer", "activity_regularizer",
                              "kernel_constraint", "bias_constraint")  # fmt: skip
                or getattr(layer, "lora_enabled", False)
                or layer.dtype_policy.name != "float32"
            ):
                return None
            numbers["l1"].append(factors[0])
            numbers["l2"].append(factors[1])
            bias = add(layer.bias) if layer.use_bias else -1
            # Only the first layer can see sparse input; its width picks the kernel.
            wide = not _has_dense(steps) and uses_segment_sums(layer.units)
            steps.append(("dense", add(layer.kernel), bias, len(numbers["l1"]) - 1, wide))
        elif isinstance(layer, keras.layers.BatchNormalization):
            if (
                layer.axis not in (-1, 1, [-1], [1])
                or getattr(layer, "synchronized", False)
                or not _plain(layer, "beta_regularizer", "gamma_regularizer",
                              "beta_constraint", "gamma_constraint")  # fmt: skip
            ):
                return None
            gamma = add(layer.gamma) if layer.scale else -1
            beta = add(layer.beta) if layer.center else -1
            steps.append(("batch_norm", gamma, beta, add(layer.moving_mean),
                          add(layer.moving_variance), float(layer.momentum),
                          float(layer.epsilon)))  # fmt: skip
        elif isinstance(layer, keras.layers.Activation):
            name = keras.activations.serialize(layer.activation)
            if not isinstance(name, str):
                return None
            # Every activation has a dropout rate, 0 without a Dropout layer,
            # so that a search over dropout (0 included) uses one program.
            numbers["rates"].append(0.0)
            steps.append(("activation", name, len(numbers["rates"]) - 1))
        elif isinstance(layer, keras.layers.Dropout):
            if not steps or steps[-1][0] != "activation" or layer.noise_shape is not None:
                return None
            numbers["rates"][steps[-1][2]] = float(layer.rate)
        else:
            return None
    return tuple(steps), weights, trainable, numbers


def _has_dense(steps):
    return any(step[0] == "dense" for step in steps)


def optimizer_kind(optimizer):
    """(kind, [learning rate and three numbers]) of an optimizer the programs
    update with Keras' formulas, or None."""
    if any(
        getattr(optimizer, name, None)
        for name in ("clipnorm", "clipvalue", "global_clipnorm", "weight_decay", "use_ema",
                     "loss_scale_factor", "gradient_accumulation_steps")
    ) or isinstance(optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        return None
    learning_rate = float(optimizer.learning_rate.numpy())
    if type(optimizer) is FusedRMSprop and not optimizer.centered:
        return ("rmsprop", optimizer.momentum > 0), [
            learning_rate, optimizer.rho, optimizer.momentum, optimizer.epsilon]  # fmt: skip
    if type(optimizer) is FusedAdam and not optimizer.amsgrad:
        return ("adam",), [learning_rate, optimizer.beta_1, optimizer.beta_2, optimizer.epsilon]
    if type(optimizer) is keras.optimizers.SGD:
        momentum = optimizer.momentum > 0
        return ("sgd", momentum, momentum and bool(optimizer.nesterov)), [
            learning_rate, optimizer.momentum, 0.0, 0.0]  # fmt: skip
    return None


def _optimizer_steps(optimizer, variables):
    """(kind, slots, hyperparameters) for the fused update of ``optimizer``, or None."""
    recognised = optimizer_kind(optimizer)
    if recognised is None:
        return None
    kind, hyperparameters = recognised
    index = [optimizer._get_variable_index(v) for v in variables]
    if kind[0] == "rmsprop":
        # The fused kernel always keeps a momentum buffer (see FusedRMSprop).
        momentums = optimizer._momentums if kind[1] else optimizer._fused_steps
        slots = [s for i in index for s in (optimizer._velocities[i], momentums[i])]
    elif kind[0] == "adam":
        slots = [s for i in index for s in (optimizer._momentums[i], optimizer._velocities[i])]
    else:
        slots = [optimizer.momentums[i] for i in index] if kind[1] else []
    return ("rmsprop",) if kind[0] == "rmsprop" else kind, slots, hyperparameters


def _loss_kind(loss):
    """The loss as the program computes it, from the model's compiled loss."""
    if not isinstance(loss, keras.losses.Loss):
        return None
    config = loss.get_config()
    if config.get("reduction") != "sum_over_batch_size":
        return None
    if type(loss) is keras.losses.BinaryCrossentropy:
        if config["from_logits"] and not config["label_smoothing"] and config["axis"] == -1:
            return ("binary",)
    elif type(loss) is keras.losses.SparseCategoricalCrossentropy:
        if config["from_logits"] and config.get("ignore_class") is None:
            return ("categorical",)
    elif type(loss) is keras.losses.MeanSquaredError:
        return ("squared_error",)
    elif type(loss) is keras.losses.MeanAbsoluteError:
        return ("absolute_error",)
    elif type(loss) is keras.losses.Huber:
        return ("huber", float(loss._fn_kwargs.get("delta", 1.0)))
    elif type(loss) is PoissonLogLink:
        return ("poisson",)
    return None


def plan_training(model, *, sparse, with_accuracy, validation_sparse=None):
    """The :class:`TrainingPlan` of a compiled build_mlp model, or None when
    the model has something the program does not do (then Keras trains it).

    ``sparse`` says whether the training data is sparse, ``validation_sparse``
    the same of the validation data (None: no validation data).
    """
    if model.optimizer is None or not model.built:
        return None
    layer_steps = _layer_steps(model)
    loss = _loss_kind(model.loss)
    if layer_steps is None or loss is None:
        return None
    steps, weights, trainable, numbers = layer_steps
    optimizer = _optimizer_steps(model.optimizer, [weights[i] for i in trainable])
    if optimizer is None or not _has_dense(steps):
        return None
    kind, slots, hyperparameters = optimizer
    numbers["optimizer"] = hyperparameters
    validation = None if validation_sparse is None else bool(validation_sparse)
    key = (steps, kind, bool(sparse), loss, bool(with_accuracy), validation)
    return TrainingPlan(key, weights, trainable, slots, model.optimizer.iterations, numbers)


# -- the program ---------------------------------------------------------------------


def _read(handle):
    return tf.raw_ops.ReadVariableOp(resource=handle, dtype=tf.float32)


def _assign(handle, value):
    return tf.raw_ops.AssignVariableOp(resource=handle, value=value)


def per_sample_loss(loss, outputs, y):
    """Keras' own loss functions, per sample (the compiled loss before reduction)."""
    if loss[0] == "binary":
        return keras.losses.binary_crossentropy(y, outputs, from_logits=True)
    if loss[0] == "categorical":
        return keras.losses.sparse_categorical_crossentropy(
            tf.cast(y[:, 0], tf.int32), outputs, from_logits=True
        )
    if loss[0] == "huber":
        return keras.losses.huber(y, outputs, delta=loss[1])
    if loss[0] == "poisson":
        return poisson_log_link(y, outputs)
    return {"squared_error": keras.losses.mean_squared_error,
            "absolute_error": keras.losses.mean_absolute_error}[loss[0]](y, outputs)  # fmt: skip


def _per_sample_accuracy(loss, outputs, y):
    """Keras' accuracy metrics, per sample, on logits (threshold 0)."""
    if loss[0] == "binary":
        return keras.metrics.binary_accuracy(y, outputs, threshold=0.0)
    return keras.metrics.sparse_categorical_accuracy(tf.cast(y[:, 0], tf.int32), outputs)


def _penalty(steps, values, l1, l2):
    total = tf.constant(0.0)
    for step in steps:
        if step[0] == "dense":
            kernel, at = values[step[1]], step[3]
            total += l1[at] * tf.reduce_sum(tf.abs(kernel)) + l2[at] * tf.reduce_sum(
                tf.square(kernel)
            )
    return total


def _augment(x, step, augmentation, seed):
    """Input dropout and noise, as :class:`skreg.network.InputAugmentation` does."""
    _, with_dropout, with_noise = step
    dropout, noise = augmentation[0], augmentation[1]
    if isinstance(x, tf.SparseTensor):
        if with_dropout:
            keep = tf.random.stateless_uniform(tf.shape(x.values), seed) >= dropout
            x = tf.sparse.retain(x, keep)
            x = tf.SparseTensor(x.indices, x.values / (1.0 - dropout), x.dense_shape)
        if with_noise:
            values = x.values + tf.random.stateless_normal(tf.shape(x.values), seed + 1) * noise
            x = tf.SparseTensor(x.indices, values, x.dense_shape)
        return x
    if with_dropout:
        keep = tf.random.stateless_uniform(tf.shape(x), seed) >= dropout
        x = tf.where(keep, x / (1.0 - dropout), 0.0)
    if with_noise:
        x += tf.random.stateless_normal(tf.shape(x), seed + 1) * noise
    return x


def _forward(steps, values, handles, x, numbers, *, training, seed=None):
    """The network's outputs; in training also dropout, augmentation and the
    batch-norm statistics' updates (returned as ops to run)."""
    updates = []
    for position, step in enumerate(steps):
        kind = step[0]
        # A distinct stateless seed for each random op of each step.
        op_seed = None if seed is None else seed + [0, 2 * position]
        if kind == "augmentation":
            if training:
                x = _augment(x, step, numbers["augmentation"], op_seed)
        elif kind == "dense":
            kernel = values[step[1]]
            if isinstance(x, tf.SparseTensor):
                x = sparse_dense_product(x, kernel, wide=step[4])
            else:
                x = tf.matmul(x, kernel)
            if step[2] >= 0:
                x = tf.nn.bias_add(x, values[step[2]])
        elif kind == "batch_norm":
            _, gamma, beta, mean_at, variance_at, momentum, epsilon = step
            if training:
                mean, variance = tf.nn.moments(x, axes=[0])
                for at, batch_value in ((mean_at, mean), (variance_at, variance)):
                    moving = values[at] * momentum + batch_value * (1.0 - momentum)
                    updates.append(_assign(handles[at], moving))
            else:
                mean, variance = values[mean_at], values[variance_at]
            x = tf.nn.batch_normalization(
                x, mean, variance,
                values[beta] if beta >= 0 else None,
                values[gamma] if gamma >= 0 else None,
                epsilon,
            )  # fmt: skip
        elif kind == "activation":
            x = keras.activations.get(step[1])(x)
            if training:
                rate = numbers["rates"][step[2]]
                keep = tf.random.stateless_uniform(tf.shape(x), op_seed) >= rate
                x = tf.where(keep, x / (1.0 - rate), 0.0)
    # Weights read from handles have no static shape; Keras' losses need the rank.
    x.set_shape([None, None])
    return x, updates


def _apply_updates(kind, handles, slots, gradients, iterations, hyper):
    learning_rate = hyper[0]
    ops = []
    if kind[0] == "rmsprop":
        for i, (var, gradient) in enumerate(zip(handles, gradients)):
            ops.append(tf.raw_ops.ResourceApplyRMSProp(
                var=var, ms=slots[2 * i], mom=slots[2 * i + 1], lr=learning_rate,
                rho=hyper[1], momentum=hyper[2], epsilon=hyper[3], grad=gradient))  # fmt: skip
    elif kind[0] == "adam":
        step = tf.cast(iterations + 1, tf.float32)
        beta_1_power, beta_2_power = tf.pow(hyper[1], step), tf.pow(hyper[2], step)
        for i, (var, gradient) in enumerate(zip(handles, gradients)):
            ops.append(tf.raw_ops.ResourceApplyAdam(
                var=var, m=slots[2 * i], v=slots[2 * i + 1], beta1_power=beta_1_power,
                beta2_power=beta_2_power, lr=learning_rate, beta1=hyper[1], beta2=hyper[2],
                epsilon=hyper[3], grad=gradient, use_nesterov=False))  # fmt: skip
    elif kind[1]:  # SGD with momentum, Keras' formula
        for i, (var, gradient) in enumerate(zip(handles, gradients)):
            ops.append(tf.raw_ops.ResourceApplyKerasMomentum(
                var=var, accum=slots[i], lr=learning_rate, grad=gradient,
                momentum=hyper[1], use_nesterov=kind[2]))  # fmt: skip
    else:
        for var, gradient in zip(handles, gradients):
            ops.append(tf.raw_ops.ResourceApplyGradientDescent(
                var=var, alpha=learning_rate, delta=gradient))  # fmt: skip
    return ops


def _signature(plan):
    steps, _, sparse, _, _, validation_sparse = plan.key
    resource = tf.TensorSpec([], tf.resource)

    def labelled(sparse):
        data = (
            (tf.TensorSpec([None], tf.int64), tf.TensorSpec([None], tf.int64),
             tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int64))
            if sparse
            else (tf.TensorSpec([None, None], tf.float32),)
        )  # fmt: skip
        return data, tf.TensorSpec([None, None], tf.float32)

    numbers = {name: tf.TensorSpec([len(values)], tf.float32)
               for name, values in plan.numbers.items()}  # fmt: skip
    return (
        [resource] * len(plan.weights),
        [resource] * len(plan.slots),
        resource,
        (*labelled(sparse), tf.TensorSpec([None], tf.float32)),
        () if validation_sparse is None else labelled(validation_sparse),
        numbers,
        # epochs, batch size, patience, early stopping (0/1), seeds (2)
        tf.TensorSpec([6], tf.int64),
    )


def _make_program(plan):
    steps, kind, _, loss, with_accuracy, validation_sparse = plan.key
    with_validation = validation_sparse is not None
    trainable = list(plan.trainable)

    def gatherer(data):
        if len(data) > 1:  # CSR arrays
            return sparse_row_gatherer(*data)
        return lambda rows: tf.gather(data[0], rows)

    def evaluate(handles, data, y, numbers):
        """Mean loss (with penalties) and accuracy over ``data``, inference mode."""
        values = [_read(h) for h in handles]
        gather = gatherer(data)
        n_rows = tf.shape(y, out_type=tf.int64)[0]

        def body(start, loss_sum, correct_sum):
            rows = tf.range(start, tf.minimum(start + _VALIDATION_BATCH_SIZE, n_rows))
            outputs, _ = _forward(steps, values, handles, gather(rows), numbers, training=False)
            y_batch = tf.gather(y, rows)
            correct = (
                tf.reduce_sum(_per_sample_accuracy(loss, outputs, y_batch))
                if with_accuracy
                else 0.0
            )
            return (start + _VALIDATION_BATCH_SIZE,
                    loss_sum + tf.reduce_sum(per_sample_loss(loss, outputs, y_batch)),
                    correct_sum + correct)  # fmt: skip

        _, loss_sum, correct_sum = tf.while_loop(
            lambda start, *_: start < n_rows, body,
            (tf.constant(0, tf.int64), tf.constant(0.0), tf.constant(0.0)),
            parallel_iterations=1,
        )  # fmt: skip
        n = tf.cast(n_rows, tf.float32)
        penalty = _penalty(steps, values, numbers["l1"], numbers["l2"])
        return loss_sum / n + penalty, correct_sum / n

    def program(handles, slots, iterations, train, validation, numbers, settings):
        epochs, batch_size, patience = settings[0], settings[1], settings[2]
        early_stopping = settings[3] > 0
        shuffle_seed, dropout_seed = settings[4], settings[5]
        data, y, weight = train
        gather = gatherer(data)
        n_rows = tf.shape(y, out_type=tf.int64)[0]
        n_steps = (n_rows + batch_size - 1) // batch_size
        trainable_handles = [handles[i] for i in trainable]

        def train_step(order, step, loss_sum, correct_sum):
            rows = order[step * batch_size : tf.minimum((step + 1) * batch_size, n_rows)]
            x, y_batch, w_batch = gather(rows), tf.gather(y, rows), tf.gather(weight, rows)
            # Read after the previous step's updates, which ``step`` waits for.
            with tf.control_dependencies([step]):
                iteration = tf.raw_ops.ReadVariableOp(resource=iterations, dtype=tf.int64)
                values = [_read(h) for h in handles]
            with tf.GradientTape() as tape:
                tape.watch([values[i] for i in trainable])
                outputs, updates = _forward(
                    steps, values, handles, x, numbers, training=True,
                    seed=tf.stack([dropout_seed, iteration * 1024]),
                )  # fmt: skip
                size = tf.cast(tf.shape(rows)[0], tf.float32)
                # Keras' "sum_over_batch_size": weighted sum over the batch size.
                batch_loss = tf.reduce_sum(
                    per_sample_loss(loss, outputs, y_batch) * w_batch
                ) / size + _penalty(steps, values, numbers["l1"], numbers["l2"])
            gradients = tape.gradient(batch_loss, [values[i] for i in trainable])
            updates += _apply_updates(kind, trainable_handles, slots, gradients,
                                      iteration, numbers["optimizer"])  # fmt: skip
            updates.append(tf.raw_ops.AssignAddVariableOp(
                resource=iterations, value=tf.constant(1, tf.int64)))  # fmt: skip
            # Keras' compiled metrics are not weighted (only weighted_metrics are).
            correct = (
                tf.reduce_sum(_per_sample_accuracy(loss, outputs, y_batch))
                if with_accuracy
                else 0.0
            )
            # The next step's reads wait for this step's updates through the counter.
            with tf.control_dependencies(updates):
                return (step + 1, loss_sum + batch_loss * size, correct_sum + correct)

        def train_epoch(epoch):
            order = tf.argsort(
                tf.random.stateless_uniform([n_rows], tf.stack([shuffle_seed, epoch]))
            )
            order = tf.cast(order, tf.int64)
            _, loss_sum, correct_sum = tf.while_loop(
                lambda step, *_: step < n_steps, functools.partial(train_step, order),
                (tf.constant(0, tf.int64), tf.constant(0.0), tf.constant(0.0)),
                parallel_iterations=1,
            )  # fmt: skip
            n = tf.cast(n_rows, tf.float32)
            return loss_sum / n, correct_sum / n

        def epoch_body(epoch, stop, history, best_loss, wait, best_values):
            train_loss, train_accuracy = train_epoch(epoch)
            record = [train_loss, train_accuracy]
            if with_validation:
                with tf.control_dependencies([train_loss]):
                    val_loss, val_accuracy = evaluate(handles, *validation, numbers)
                record += [val_loss, val_accuracy]
                # Keras' EarlyStopping: the first epoch's weights, then each better one.
                improved = val_loss < best_loss
                take = tf.logical_or(improved, tf.equal(epoch, 0))
                with tf.control_dependencies([val_loss]):
                    current = [_read(h) for h in handles]
                best_values = [tf.where(take, now, best) for now, best in zip(current, best_values)]
                best_loss = tf.where(improved, val_loss, best_loss)
                wait = tf.where(improved, tf.constant(0, tf.int64), wait + 1)
                stop = tf.logical_and(early_stopping,
                                      tf.logical_and(wait >= patience, epoch > 0))  # fmt: skip
            # A loss that is not finite ends training; the caller reports it.
            stop = tf.logical_or(stop, tf.logical_not(tf.math.is_finite(train_loss)))
            history = [h.write(tf.cast(epoch, tf.int32), v) for h, v in zip(history, record)]
            with tf.control_dependencies([*record, *best_values]):
                return epoch + 1, stop, history, best_loss, wait, best_values

        n_records = 4 if with_validation else 2
        start_values = [_read(h) for h in handles] if with_validation else []
        epochs_run, _, history, _, _, best_values = tf.while_loop(
            lambda epoch, stop, *_: tf.logical_and(epoch < epochs, tf.logical_not(stop)),
            epoch_body,
            (tf.constant(0, tf.int64), tf.constant(False),
             [tf.TensorArray(tf.float32, size=0, dynamic_size=True) for _ in range(n_records)],
             tf.constant(np.inf, tf.float32), tf.constant(0, tf.int64), start_values),
            parallel_iterations=1,
        )  # fmt: skip
        restored = []
        if with_validation:
            # Keras restores the best epoch's weights when training ends.
            restored = [
                _assign(h, tf.where(early_stopping, best, _read(h)))
                for h, best in zip(handles, best_values)
            ]
        with tf.control_dependencies(restored):
            return epochs_run, [h.stack() for h in history]

    return tf.function(program, input_signature=_signature(plan), autograph=False)


def cached_program(key, make_program):
    """The traced program of ``key`` from the cache, made by ``make_program()`` on a miss."""
    with _cache_lock:
        program = _programs.get(key)
        if program is not None:
            _programs.move_to_end(key)
            _cache_stats["hits"] += 1
            return program
        _cache_stats["misses"] += 1
        program = _programs[key] = make_program()
        while len(_programs) > _CACHE_SIZE:
            _programs.popitem(last=False)
        return program


def data_tensors(X):
    return csr_tensors(X) if sp.issparse(X) else (tf.constant(X, dtype=tf.float32),)


def label_tensor(y):
    y = np.asarray(y, dtype=np.float32)
    return tf.constant(y.reshape(len(y), -1))


def train_in_one_call(plan, X, y, sample_weight, validation, *, epochs, batch_size,
                      early_stopping, patience, seeds):  # fmt: skip
    """Train the planned model in place; its history as Keras' ``fit`` reports it.

    Parameters
    ----------
    plan : TrainingPlan
    X : ndarray or canonical CSR matrix, float32
    y : ndarray (encoded labels or targets)
    sample_weight : ndarray or None
    validation : tuple (X_val, y_val) or None
    epochs, batch_size, patience : int
    early_stopping : bool
    seeds : pair of int
        Seeds of the batch order and of the dropout masks.
    """
    weight = np.ones(X.shape[0], np.float32) if sample_weight is None else sample_weight
    program = cached_program(plan.key, functools.partial(_make_program, plan))
    epochs_run, history = program(
        [v.handle for v in plan.weights],
        [v.handle for v in plan.slots],
        plan.iterations.handle,
        (data_tensors(X), label_tensor(y), tf.constant(weight, tf.float32)),
        () if validation is None else (data_tensors(validation[0]), label_tensor(validation[1])),
        {name: tf.constant(values, tf.float32) for name, values in plan.numbers.items()},
        tf.constant([epochs, batch_size, patience, int(early_stopping), *seeds], tf.int64),
    )
    names = ["loss", "accuracy", "val_loss", "val_accuracy"]
    with_accuracy = plan.key[4]
    return {
        name: values.numpy().tolist()
        for name, values in zip(names, history)
        if with_accuracy or "accuracy" not in name
    }
