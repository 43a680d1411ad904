"""The losses the program computes, recognised from a model's compiled
Keras loss, and Keras' own per-sample loss and accuracy functions."""

import numpy as np

from .._backend.losses import (PoissonLogLink, SmoothedSparseCategoricalCrossentropy,
                               poisson_log_link)
from .._backend.tensorflow import huber_delta, keras, tf
from .regularizers import LabelSmoothing

__all__ = ["loss_kind", "per_sample_accuracy", "per_sample_loss"]


def loss_kind(loss):
    """The loss as the program computes it (a tuple, part of the program's
    key), from a compiled Keras loss; None when the program does not do it."""
    if not isinstance(loss, keras.losses.Loss):
        return None
    config = loss.get_config()
    if config.get("reduction") != "sum_over_batch_size":
        return None
    if type(loss) is keras.losses.BinaryCrossentropy:
        if config["from_logits"] and config["axis"] == -1:
            return ("binary",)
    elif type(loss) is keras.losses.SparseCategoricalCrossentropy:
        if config["from_logits"] and config.get("ignore_class") is None:
            return ("categorical",)
    elif type(loss) is SmoothedSparseCategoricalCrossentropy:
        return ("categorical",)
    elif type(loss) is keras.losses.MeanSquaredError:
        return ("squared_error",)
    elif type(loss) is keras.losses.MeanAbsoluteError:
        return ("absolute_error",)
    elif type(loss) is keras.losses.Huber:
        delta = huber_delta(loss)
        return None if delta is None else ("huber", delta)
    elif type(loss) is PoissonLogLink:
        return ("poisson",)
    return None


def per_sample_loss(kind, outputs, y, smoothing=None):
    """Keras' own loss functions, per sample (the compiled loss before
    reduction); a classifier's with each row's label ``smoothing`` (a
    vector, or None: none)."""
    if kind[0] == "binary":
        if smoothing is not None:
            y = LabelSmoothing.binary_targets(y, smoothing[:, None])
        return keras.losses.binary_crossentropy(y, outputs, from_logits=True)
    if kind[0] == "categorical":
        if smoothing is not None:
            return LabelSmoothing.categorical_loss(y[:, 0], outputs, smoothing)
        return keras.losses.sparse_categorical_crossentropy(
            tf.cast(y[:, 0], tf.int32), outputs, from_logits=True
        )
    if kind[0] == "huber":
        return keras.losses.huber(y, outputs, delta=kind[1])
    if kind[0] == "poisson":
        return poisson_log_link(y, outputs)
    return {"squared_error": keras.losses.mean_squared_error,
            "absolute_error": keras.losses.mean_absolute_error}[kind[0]](y, outputs)  # fmt: skip


def per_sample_accuracy(kind, outputs, y):
    """Keras' accuracy metrics per sample, on logits (threshold 0), for the
    classifiers' losses: outputs [..., rows, n_outputs] and y [rows, n_columns],
    numpy arrays (scoring held-out outputs) or tensors (in the program)."""
    if isinstance(outputs, np.ndarray):
        if kind[0] == "binary":
            return np.mean((outputs > 0) == (y > 0.5), axis=-1)
        return (np.argmax(outputs, axis=-1) == y[:, 0]).astype(np.float32)
    if kind[0] == "binary":
        hits = tf.equal(outputs > 0, y > 0.5)
        return tf.reduce_mean(tf.cast(hits, tf.float32), axis=-1)
    return tf.cast(tf.equal(tf.argmax(outputs, axis=-1), tf.cast(y[:, 0], tf.int64)), tf.float32)
