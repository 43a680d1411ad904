"""The regularizers, one class each. A class declares everything the rest
of the engine needs of it, so that the planner, the towers' numbers, the
structure, the program and a search loop over :data:`REGULARIZERS` and
name none of them:

- its ``name``: the estimator parameter, the towers' number
  (:class:`~skreg._engine.numbers.TowerNumbers`) and, in a structure's
  ``regularizers``, its passes; ``off``, the number that leaves a tower as
  it is, and ``doc``;
- its Keras form (what :func:`skreg.build_mlp` puts in a layer, the
  estimators in the optimizer or the loss) and how the planner reads it
  back from a compiled model (``source``: a hidden layer, the optimizer or
  the loss);
- its tower form, at one of the program's places (``stage``): ``"penalty"``
  (the hidden kernels' gradient and the loss), ``"forward"`` (the hidden
  activations while training), ``"decay"`` (every trained weight, before
  the rule), ``"constraint"`` (the hidden kernels, after the rule) or
  ``"targets"`` (the classifier's loss). A new regularizer at one of these
  places is this module's class and its line in :data:`REGULARIZERS`.
"""

import math

from .._backend.losses import (SmoothedSparseCategoricalCrossentropy,
                               smoothed_sparse_categorical_crossentropy)
from .._backend.tensorflow import keras, tf, weight_decay_exclusions
from .shapes import per_tower

__all__ = ["Dropout", "HiddenNoise", "L1Penalty", "L2Penalty", "LabelSmoothing", "MaxNorm",
           "REGULARIZERS", "Regularizer", "Unreadable", "WeightDecay", "kernel_regularizer",
           "of_stage", "regularizer_named"]


class Unreadable(Exception):
    """The model has a form of the regularizer the program does not do."""


class Regularizer:
    """What every regularizer declares; the subclasses add their Keras form,
    their reading (``read``) and their tower form (the stage's methods)."""

    #: The estimator parameter, the towers' number and the structure's passes.
    name = None
    #: The number at which a tower is left as it is.
    off = 0.0
    #: What the number is.
    doc = None
    #: Where a compiled model holds it: "layer" (``read(group)``: a hidden
    #: layer's {"dense", "batch_norm", "activation", and forward stages'
    #: names: layer}), "optimizer" (``read(optimizer, config)``) or "loss"
    #: (``read(loss)``).
    source = "layer"
    #: Where the program applies it (see the module docstring).
    stage = None
    #: Whether every fit's program makes its passes, so that fits that
    #: differ only in it share one (penalties at 0 cost little); the others'
    #: passes are made by the programs of towers that have them.
    in_every_program = False
    #: Whether a parameter of None means the optimizer's own value (else
    #: ``off``).
    none_is_optimizers_own = False
    #: Whether the factor follows the learning rate (and its schedule).
    follows_rate = False

    @classmethod
    def makes_passes(cls, number):
        """Whether a tower with this ``number`` needs the passes."""
        return number != cls.off

    @classmethod
    def tower_number(cls, value, own):
        """The number of a parameter ``value`` (``own``: the optimizer's)."""
        if value is None:
            return own if cls.none_is_optimizers_own else cls.off
        return float(value)

    @classmethod
    def acts_on(cls, kind):
        """Whether it acts on a trained weight of ``kind`` (see
        :func:`~skreg._engine.structure.weight_layout`): the hidden kernels."""
        return kind == "kernel"

    @classmethod
    def weight_factor(cls, number, rate, weight):
        """Its factor for one weight ([K] ``number`` and ``rate``), as the
        stage's method takes it: shaped to multiply the weight."""
        return per_tower(number * rate if cls.follows_rate else number, weight)


def kernel_regularizer(l1, l2):
    """The Keras form of the L1 and L2 penalties of a hidden kernel (one
    object for both, Keras' ``L1L2``), or None."""
    return keras.regularizers.L1L2(l1=l1, l2=l2) if l1 or l2 else None


def _read_penalties(layer):
    regularizer = layer.kernel_regularizer
    if regularizer is None:
        return {"l1": 0.0, "l2": 0.0}
    if type(regularizer) not in (keras.regularizers.L1, keras.regularizers.L2,
                                 keras.regularizers.L1L2):  # fmt: skip
        raise Unreadable(f"a kernel regularizer of type {type(regularizer).__name__}")
    config = regularizer.get_config()
    return {"l1": float(config.get("l1", 0.0)), "l2": float(config.get("l2", 0.0))}


class _Penalty(Regularizer):
    """A penalty of the hidden kernels, added to the loss; Keras' form is
    :func:`kernel_regularizer`."""

    stage = "penalty"
    in_every_program = True

    @classmethod
    def read(cls, group):
        return _read_penalties(group["dense"])[cls.name]


class L1Penalty(_Penalty):
    """``l1 * sum |w|`` added to the loss, for each hidden kernel."""

    name = "l1"
    doc = "the L1 penalty on the hidden kernels"

    @staticmethod
    def gradient(weight, factor):
        return factor * tf.sign(weight)

    @staticmethod
    def terms(weight, factor):
        return factor * tf.abs(weight)


class L2Penalty(_Penalty):
    """``l2 * sum w**2`` added to the loss, for each hidden kernel."""

    name = "l2"
    doc = "the L2 penalty on the hidden kernels"

    @staticmethod
    def gradient(weight, factor):
        return 2.0 * factor * weight

    @staticmethod
    def terms(weight, factor):
        return factor * tf.square(weight)


class Dropout(Regularizer):
    """Keras' ``Dropout`` after each hidden activation: while training, each
    unit's output is dropped with probability ``dropout``, the kept ones
    scaled by ``1 / (1 - dropout)``; each tower draws its own masks."""

    name = "dropout"
    doc = "the hidden layers' dropout rate"
    stage = "forward"
    keras_layer = keras.layers.Dropout

    @staticmethod
    def read(group):
        layer = group.get("dropout")
        if layer is None:
            return 0.0
        if layer.noise_shape is not None:
            raise Unreadable(f"layer {layer.name!r} has a noise_shape")
        return float(layer.rate)

    @staticmethod
    def forward(h, rate, uniform):
        """``h`` [K, rows, units] with ``rate`` [K, 1, 1]; ``uniform``: draws
        shaped as ``h``, in [0, 1)."""
        return tf.where(uniform >= rate, h / (1.0 - rate), 0.0)


class HiddenNoise(Regularizer):
    """Keras' ``GaussianNoise`` after each hidden activation (and its
    dropout): while training, each unit's output gets Gaussian noise of
    standard deviation ``hidden_noise``; each tower draws its own."""

    name = "hidden_noise"
    doc = "the standard deviation of the hidden layers' Gaussian noise"
    stage = "forward"
    keras_layer = keras.layers.GaussianNoise

    @staticmethod
    def keras_form(stddev, *, seed, name):
        return keras.layers.GaussianNoise(stddev, seed=seed, name=name) if stddev else None

    @staticmethod
    def read(group):
        layer = group.get("hidden_noise")
        return 0.0 if layer is None else float(layer.stddev)

    @staticmethod
    def forward(h, stddev, uniform):
        # A standard normal draw from each uniform one u = k / 2**24: the
        # normal quantile of (k + 1/2) / 2**24, taken on the nearer tail, where
        # float32 holds it exactly (symmetric about 0, finite: TensorFlow's
        # float32 erfinv and ndtri are infinite 2**-25 from 1).
        tail = tf.minimum(uniform, (1.0 - 2.0**-24) - uniform) + 2.0**-25
        normal = tf.math.ndtri(tail)
        return h + stddev * tf.where(uniform < 0.5, normal, -normal)


class WeightDecay(Regularizer):
    """Decoupled weight decay (AdamW's; any Keras optimizer's
    ``weight_decay``): before each update every trained weight loses
    ``weight_decay * learning_rate`` of itself."""

    name = "weight_decay"
    doc = "decoupled weight decay (times the learning rate)"
    source = "optimizer"
    stage = "decay"
    none_is_optimizers_own = True
    follows_rate = True

    @staticmethod
    def keras_form(config, weight_decay):
        """The optimizer's ``config`` with the decay set (None: its own)."""
        return config if weight_decay is None else {**config, "weight_decay": weight_decay}

    @staticmethod
    def read(optimizer, config):
        """The decay of ``optimizer``, whose ``get_config()`` is ``config``."""
        if weight_decay_exclusions(optimizer):
            raise Unreadable("weight decay with exclude_from_weight_decay")
        return float(config.get("weight_decay") or 0.0)

    @classmethod
    def acts_on(cls, kind):
        return True  # every trained weight, as Keras decays them

    @staticmethod
    def decayed(weight, factor):
        """``factor``: the tower's decay times its learning rate now."""
        return weight - weight * factor


class MaxNorm(Regularizer):
    """Keras' ``MaxNorm`` constraint on each hidden kernel: after each
    update, each unit's incoming weights are scaled back to a norm of at
    most ``max_norm`` (the dropout paper's companion)."""

    name = "max_norm"
    off = math.inf
    doc = "the largest norm of a hidden unit's incoming weights"
    stage = "constraint"

    @staticmethod
    def keras_form(max_norm):
        return None if max_norm is None else keras.constraints.MaxNorm(max_norm, axis=0)

    @staticmethod
    def read(group):
        layer = group["dense"]
        constraint = layer.kernel_constraint
        if constraint is None:
            return math.inf
        config = constraint.get_config() if type(constraint) is keras.constraints.MaxNorm else {}
        if config.get("axis") not in (0, [0], (0,)):
            raise Unreadable(f"layer {layer.name!r} has a kernel constraint other than "
                             "MaxNorm(axis=0)")  # fmt: skip
        return float(config["max_value"])

    @classmethod
    def weight_factor(cls, number, rate, weight):
        return number  # [K]: constrained shapes it, after the rule

    @staticmethod
    def constrained(weight, max_norm, axis):
        """``weight`` with each unit's norm (along ``axis``) capped; towers
        at infinity unchanged."""
        max_norm = per_tower(max_norm, weight)
        norms = tf.sqrt(tf.reduce_sum(tf.square(weight), axis=axis, keepdims=True))
        scale = tf.clip_by_value(norms, 0.0, max_norm) / (keras.config.epsilon() + norms)
        return weight * tf.where(tf.math.is_inf(max_norm), 1.0, scale)


class LabelSmoothing(Regularizer):
    """Keras' label smoothing of a classifier's cross-entropy: the targets
    move ``label_smoothing`` of the way to the uniform distribution."""

    name = "label_smoothing"
    doc = "the classifier's label smoothing"
    source = "loss"
    stage = "targets"

    @staticmethod
    def read(loss):
        return float(loss.get_config().get("label_smoothing") or 0.0)

    @staticmethod
    def keras_form(loss, label_smoothing):
        """A classifier's Keras ``loss`` with label smoothing (0: as it is)."""
        if not label_smoothing:
            return loss
        if isinstance(loss, keras.losses.BinaryCrossentropy):
            return keras.losses.BinaryCrossentropy(from_logits=True,
                                                   label_smoothing=label_smoothing)  # fmt: skip
        return SmoothedSparseCategoricalCrossentropy(label_smoothing)

    @staticmethod
    def binary_targets(y, smoothing):
        return y * (1.0 - smoothing) + 0.5 * smoothing

    #: The categorical loss with smoothing, per sample, from integer labels.
    categorical_loss = staticmethod(smoothed_sparse_categorical_crossentropy)


#: Every regularizer the program applies, in the order a weight's update
#: applies those of one stage.
REGULARIZERS = (L1Penalty, L2Penalty, Dropout, HiddenNoise, WeightDecay, MaxNorm, LabelSmoothing)


def regularizer_named(name):
    """The regularizer of :data:`REGULARIZERS` called ``name``."""
    return next(r for r in REGULARIZERS if r.name == name)


def of_stage(stage, names=None):
    """The regularizers of ``stage`` (among ``names``, if given), in order."""
    return [r for r in REGULARIZERS if r.stage == stage and (names is None or r.name in names)]
