"""The regularizers, one class each: the Keras form (what
:func:`skreg.build_mlp` puts in a layer, the estimators in the optimizer or
the loss), how the planner reads it back from a compiled model, and the
tower form (what the program does with each tower's own factor).

Each factor is a per-tower number of the same name
(:data:`~skreg._engine.numbers.PER_TOWER_NUMBERS`), shaped to the weight
it acts on; 0 (``max_norm``: infinity) leaves a tower as it is.
"""

import math

from .._backend.losses import (SmoothedSparseCategoricalCrossentropy,
                       smoothed_sparse_categorical_crossentropy)
from .._backend.tensorflow import keras, tf, weight_decay_exclusions

__all__ = ["L1Penalty", "L2Penalty", "LabelSmoothing", "MaxNorm", "Unreadable", "WeightDecay",
           "kernel_regularizer"]


class Unreadable(Exception):
    """The model has a form of the regularizer the program does not do."""


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


class _Penalty:
    """A penalty of the hidden kernels, added to the loss; Keras' form is
    :func:`kernel_regularizer`."""

    name = None

    @classmethod
    def read(cls, layer):
        return _read_penalties(layer)[cls.name]


class L1Penalty(_Penalty):
    """``l1 * sum |w|`` added to the loss, for each hidden kernel."""

    name = "l1"

    @staticmethod
    def gradient(weight, factor):
        return factor * tf.sign(weight)

    @staticmethod
    def terms(weight, factor):
        return factor * tf.abs(weight)


class L2Penalty(_Penalty):
    """``l2 * sum w**2`` added to the loss, for each hidden kernel."""

    name = "l2"

    @staticmethod
    def gradient(weight, factor):
        return 2.0 * factor * weight

    @staticmethod
    def terms(weight, factor):
        return factor * tf.square(weight)


class WeightDecay:
    """Decoupled weight decay (AdamW's; any Keras optimizer's
    ``weight_decay``): before each update every trained weight loses
    ``weight_decay * learning_rate`` of itself."""

    name = "weight_decay"

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

    @staticmethod
    def decayed(weight, factor):
        """``factor``: the tower's decay times its learning rate now."""
        return weight - weight * factor


class MaxNorm:
    """Keras' ``MaxNorm`` constraint on each hidden kernel: after each
    update, each unit's incoming weights are scaled back to a norm of at
    most ``max_norm`` (the dropout paper's companion)."""

    name = "max_norm"

    @staticmethod
    def keras_form(max_norm):
        return None if max_norm is None else keras.constraints.MaxNorm(max_norm, axis=0)

    @staticmethod
    def read(layer):
        constraint = layer.kernel_constraint
        if constraint is None:
            return math.inf
        config = constraint.get_config() if type(constraint) is keras.constraints.MaxNorm else {}
        if config.get("axis") not in (0, [0], (0,)):
            raise Unreadable(f"layer {layer.name!r} has a kernel constraint other than "
                             "MaxNorm(axis=0)")  # fmt: skip
        return float(config["max_value"])

    @staticmethod
    def constrained(weight, max_norm, axis):
        """``weight`` with each unit's norm (along ``axis``) capped; towers
        at infinity unchanged."""
        norms = tf.sqrt(tf.reduce_sum(tf.square(weight), axis=axis, keepdims=True))
        scale = tf.clip_by_value(norms, 0.0, max_norm) / (keras.config.epsilon() + norms)
        return weight * tf.where(tf.math.is_inf(max_norm), 1.0, scale)


class LabelSmoothing:
    """Keras' label smoothing of a classifier's cross-entropy: the targets
    move ``label_smoothing`` of the way to the uniform distribution."""

    name = "label_smoothing"

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
