"""A Keras model from :func:`skreg.build_mlp` as the program trains it: one
tower (K = 1). The planner reads the structure and the numbers from the
model's layers, its optimizer and its compiled loss (the one source of
truth), or says why the program does not cover the model; the model's
variables and optimizer slots go into a :class:`TowerState` and the trained
state goes back into them, so ``model_`` stays a Keras model trained in place."""

import scipy.sparse as sp

from .._backend.tensorflow import keras, tf
from ..network import InputAugmentation
from .losses import loss_kind
from .numbers import TowerNumbers
from .regularizers import REGULARIZERS, Unreadable
from .rules import read_rule, rule_of
from .structure import TowerStructure, fuses_update, is_binary, trainable_positions
from .trainer import TowerState

__all__ = ["ModelPlan", "NotOnProgram", "optimizer_kind", "plan_model"]


class NotOnProgram(Exception):
    """The program does not train this model (the message says why); Keras' fit does."""


# Options of Keras' optimizers that the program does not apply.
_OPTIONS_OFF_PROGRAM = ("use_ema", "loss_scale_factor", "gradient_accumulation_steps", "centered",
                        "amsgrad")  # fmt: skip
# Keras' gradient clippings, which the program applies (one at most: Keras
# refuses two).
_CLIPPINGS = ("clipnorm", "clipvalue", "global_clipnorm")
# The regularizers by where a compiled model holds them.
_FROM = {source: [r for r in REGULARIZERS if r.source == source]
         for source in ("layer", "optimizer", "loss")}  # fmt: skip
# The layers of the forward stages, after a hidden activation in this order.
_FORWARD_LAYERS = {r.keras_layer: r.name for r in _FROM["layer"] if r.stage == "forward"}
_FORWARD_ORDER = list(_FORWARD_LAYERS.values())
# Keras' learning-rate schedules, which the program calls at each step.
_SCHEDULES = ("ExponentialDecay", "CosineDecay", "PiecewiseConstantDecay", "InverseTimeDecay",
              "PolynomialDecay", "CosineDecayRestarts")  # fmt: skip


def optimizer_kind(optimizer):
    """(kind, {number name: value}) of an optimizer the program updates
    with Keras' formulas (:func:`~skreg._engine.rules.read_rule`), or None."""
    try:
        reading = OptimizerReading(optimizer)
    except NotOnProgram:
        return None
    return reading.kind, reading.numbers


class OptimizerReading:
    """What the program takes of a Keras optimizer, from its config: its
    rule's ``kind`` and ``numbers``, its learning rate (1 under a schedule,
    whose factor it is), the ``schedule`` (class name and config items) or
    None, its ``clipping`` (a Keras option name or None) with its value
    ``clip``, and ``regularizers``: {name: number} of those it holds (weight
    decay); NotOnProgram naming, in Keras' names, what the program does not
    cover."""

    def __init__(self, optimizer):
        config = optimizer.get_config()
        off = [f"{name}={config[name]!r}" for name in _OPTIONS_OFF_PROGRAM if config.get(name)]
        learning_rate = config["learning_rate"]
        if isinstance(learning_rate, dict) and learning_rate.get("class_name") not in _SCHEDULES:
            off.append(f"a learning-rate schedule of type {learning_rate.get('class_name')}")
        self.regularizers = {}
        for regularizer in _FROM["optimizer"]:
            try:
                self.regularizers[regularizer.name] = regularizer.read(optimizer, config)
            except Unreadable as why:
                off.append(str(why))
        read = None if off else read_rule(optimizer, config)
        if read is None:
            name = type(optimizer).__name__.removeprefix("Fused")  # skreg's twins of Keras' own
            raise NotOnProgram(f"the optimizer {name}" + (f" with {', '.join(off)}" if off else ""))
        rule, self.numbers = read
        self.kind = rule.kind
        if isinstance(learning_rate, dict):
            self.schedule = (learning_rate["class_name"], tuple(sorted(
                (name, tuple(value) if isinstance(value, list) else value)
                for name, value in learning_rate["config"].items())))  # fmt: skip
            self.learning_rate = 1.0
        else:
            self.schedule, self.learning_rate = None, float(learning_rate)
        clippings = [name for name in _CLIPPINGS if config.get(name)]
        self.clipping = clippings[0] if clippings else None
        self.clip = float(config[self.clipping]) if clippings else 0.0


def _optimizer_slots(optimizer, kind, variables):
    """The optimizer's slot variables of ``variables``, in the program's order
    (:func:`~skreg._engine.structure.optimizer_slots` per variable)."""
    rule = rule_of(kind)
    return [slot for variable in variables for slot in rule.keras_slots(optimizer, variable)]


def _check_plain(layer, *names):
    extras = [name for name in names if getattr(layer, name, None) is not None]
    if extras:
        raise NotOnProgram(f"layer {layer.name!r} has {', '.join(extras)}")


def _check_dense(layer, *, output):
    if type(layer).__name__ not in ("Dense", "SparseInputDense"):
        raise NotOnProgram(f"layer {layer.name!r} ({type(layer).__name__}) is not a Dense layer")
    if layer.activation is not keras.activations.linear:
        raise NotOnProgram(f"layer {layer.name!r} has an activation of its own")
    if getattr(layer, "lora_enabled", False) or layer.dtype_policy.name != "float32":
        raise NotOnProgram(f"layer {layer.name!r} is not a plain float32 Dense layer")
    _check_plain(layer, "bias_regularizer", "activity_regularizer", "bias_constraint",
                 *(["kernel_regularizer", "kernel_constraint"] if output else []))  # fmt: skip


def _forward_stage(group, layer):
    """The name of the forward stage whose layer ``layer`` is, if ``group``
    takes it there (after its activation, once, in the stages' order)."""
    name = _FORWARD_LAYERS.get(type(layer))
    if name is None or "activation" not in group:
        return None
    return None if set(group) & set(_FORWARD_ORDER[_FORWARD_ORDER.index(name):]) else name


def _read_layers(model):
    """Per hidden layer its layers, the output layer, what all hidden layers
    share (activation, {name: number} of the layers' regularizers, batch
    norm's constants), and the input augmentation layer (or None)."""
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    augmentation = None
    if layers and isinstance(layers[0], InputAugmentation):
        augmentation = layers.pop(0)
        if augmentation.shift or augmentation.rotation or augmentation.flip:
            raise NotOnProgram("image transforms")
    output, hidden, group = layers[-1] if layers else None, [], None
    for layer in layers[:-1]:
        if isinstance(layer, keras.layers.Dense):
            group = {"dense": layer}
            hidden.append(group)
        elif group is None:
            raise NotOnProgram(f"layer {layer.name!r} comes before the first Dense layer")
        elif isinstance(layer, keras.layers.BatchNormalization) and set(group) == {"dense"}:
            group["batch_norm"] = layer
        elif isinstance(layer, keras.layers.Activation) and "activation" not in group:
            group["activation"] = layer
        elif (forward := _forward_stage(group, layer)) is not None:
            group[forward] = layer
        else:
            raise NotOnProgram(f"layer {layer.name!r} ({type(layer).__name__}) is not "
                               "in build_mlp's order")  # fmt: skip
    if not hidden or not isinstance(output, keras.layers.Dense):
        raise NotOnProgram("the network is not hidden Dense layers and a Dense output")
    _check_dense(output, output=True)
    if not output.use_bias:
        raise NotOnProgram("the output layer has no bias")
    shared = set()
    for group in hidden:
        dense, batch_norm = group["dense"], group.get("batch_norm")
        _check_dense(dense, output=False)
        if "activation" not in group:
            raise NotOnProgram(f"layer {dense.name!r} is not followed by an Activation")
        activation = keras.activations.serialize(group["activation"].activation)
        if not isinstance(activation, str):
            raise NotOnProgram("a custom activation")
        if dense.use_bias == (batch_norm is not None):
            raise NotOnProgram(f"layer {dense.name!r}: a bias with batch norm, or neither")
        if batch_norm is not None:
            if (batch_norm.axis not in (-1, 1, [-1], [1]) or not batch_norm.center
                    or not batch_norm.scale or getattr(batch_norm, "synchronized", False)):
                raise NotOnProgram(f"layer {batch_norm.name!r} is not a plain batch norm")
            _check_plain(batch_norm, "beta_regularizer", "gamma_regularizer",
                         "beta_constraint", "gamma_constraint")  # fmt: skip
        try:
            regularizers = tuple((r.name, r.read(group)) for r in _FROM["layer"])
        except Unreadable as why:
            raise NotOnProgram(str(why)) from None
        shared.add((
            activation,
            regularizers,
            None if batch_norm is None else (float(batch_norm.momentum),
                                             float(batch_norm.epsilon)),
        ))  # fmt: skip
    if len(shared) > 1:
        names = ", ".join(r.name for r in _FROM["layer"])
        raise NotOnProgram(f"hidden layers with different activations, batch norm or {names}")
    activation, regularizers, batch_norm = shared.pop()
    return hidden, output, (activation, dict(regularizers), batch_norm), augmentation


class ModelPlan:
    """How the program trains a Keras model: its ``structure`` (the cache
    key), its ``numbers`` (:class:`TowerNumbers` of one tower), and its
    variables and slot variables in the program's order."""

    def __init__(self, model, structure, numbers, variables, slots):
        self.model = model
        self.structure = structure
        self.numbers = numbers
        self.variables = variables
        self.slots = slots

    def learning_rate(self):
        """The optimizer's learning rate now (a callback may change it); 1
        under a schedule, which the program applies itself."""
        if self.structure.schedule is not None:
            return 1.0
        return float(self.model.optimizer.learning_rate.numpy())

    def state(self, *, epoch=0):
        """The model's weights and optimizer state as a one-tower
        :class:`TowerState` at ``epoch`` (of this fit: its batch order)."""
        # The first kernel keeps its shape ([n_features, units] is K = 1 side
        # by side); the others gain a leading tower axis, vectors also a row axis.
        weights = [
            tf.convert_to_tensor(v.value) if i == 0 else tf.reshape(v.value, [1, -1, v.shape[-1]])
            for i, v in enumerate(self.variables)
        ]
        positions = trainable_positions(self.structure)
        per_weight = len(self.slots) // max(len(positions), 1)
        slots = [tf.reshape(s.value, weights[positions[j // per_weight]].shape)
                 for j, s in enumerate(self.slots)]  # fmt: skip
        # Steps go on where the optimizer is (Adam's bias correction, dropout masks).
        iteration = int(self.model.optimizer.iterations.numpy())
        return TowerState(weights, slots, epoch=epoch, iteration=iteration)

    def write(self, state, *, weights=None):
        """Put ``state`` (with ``weights`` instead of its own, if given) into the model."""
        for variable, value in zip(self.variables, weights or state.weights):
            variable.assign(tf.reshape(value, variable.shape))
        for variable, value in zip(self.slots, state.slots):
            variable.assign(tf.reshape(value, variable.shape))
        optimizer = self.model.optimizer
        optimizer.iterations.assign(state.iteration)
        rule_of(self.structure.optimizer).write_keras(optimizer, state.iteration)


def _model_variables(hidden, output, batch_norm):
    """The model's weights in the program's order (the module docstring's layout)."""
    variables = []
    for group in hidden:
        variables.append(group["dense"].kernel)
        if batch_norm is None:
            variables.append(group["dense"].bias)
        else:
            layer = group["batch_norm"]
            variables += [layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance]
    return variables + [output.kernel, output.bias]


def plan_model(model, X, *, like=None):
    """The :class:`ModelPlan` of a compiled build_mlp ``model`` for training
    data ``X`` (validation rows keep their own values, see
    :class:`~skreg._engine.batches.SparseHeldOut`); raises
    :class:`NotOnProgram` naming what the program does not do. ``like``: the
    structure of a program to share (a CV search's, for its refit), whose
    regularizers' passes this fit then makes too, at its own numbers."""
    if model.optimizer is None or not model.built:
        raise NotOnProgram("the model is not compiled and built")
    loss = loss_kind(model.loss)
    if loss is None:
        raise NotOnProgram(f"the loss {model.loss!r}")
    optimizer = OptimizerReading(model.optimizer)
    hidden, output, (activation, regularizers, batch_norm), augmentation = _read_layers(model)
    regularizers.update(optimizer.regularizers)
    regularizers.update((r.name, r.read(model.loss)) for r in _FROM["loss"])
    input_dropout, input_noise = (
        (0.0, 0.0) if augmentation is None else (augmentation.dropout, augmentation.noise)
    )
    variables = _model_variables(hidden, output, batch_norm)
    structure = TowerStructure(
        n_hidden=len(hidden), activation=activation, batch_norm=batch_norm is not None,
        loss=loss, optimizer=optimizer.kind, sparse=sp.issparse(X), binary=is_binary(X),
        fused_update=fuses_update(X.shape[1], int(variables[0].shape[1])),
        # Penalties are in every fit's program (at 0 they cost little), so
        # that fits that differ in them share one. The others' passes cost
        # more (dropout's draws ~10% of a small network's step): only fits
        # with them, or sharing a program that has them, make them.
        regularizers=[r.name for r in REGULARIZERS if r.in_every_program
                      or r.makes_passes(regularizers[r.name])
                      or (like is not None and like.makes(r))],
        with_input_dropout=input_dropout > 0, with_input_noise=input_noise > 0,
        clipping=optimizer.clipping, schedule=optimizer.schedule,
        **({} if batch_norm is None else dict(batch_norm_momentum=batch_norm[0],
                                              batch_norm_epsilon=batch_norm[1])),
    )  # fmt: skip
    numbers = TowerNumbers(
        1, optimizer.numbers, learning_rate=optimizer.learning_rate, **regularizers,
        clip=optimizer.clip, input_dropout=input_dropout, input_noise=input_noise,
    )  # fmt: skip
    trained = [variables[p] for p in trainable_positions(structure)]
    try:
        slots = _optimizer_slots(model.optimizer, optimizer.kind, trained)
    # The slots are private attributes of Keras' optimizers (3.5 to 3.15): a
    # release that keeps them elsewhere trains with Keras' fit, as before.
    except (AttributeError, IndexError, KeyError, TypeError) as error:
        raise NotOnProgram(f"this Keras keeps the optimizer's slots elsewhere ({error})") from None
    return ModelPlan(model, structure, numbers, variables, slots)
