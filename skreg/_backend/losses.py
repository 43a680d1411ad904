"""Keras losses that skreg adds to Keras' own."""

from .tensorflow import keras, tf

__all__ = ["PoissonLogLink", "SmoothedSparseCategoricalCrossentropy", "poisson_log_link",
           "smoothed_sparse_categorical_crossentropy"]


def poisson_log_link(y_true, y_pred):
    """Keras' Poisson loss for a network whose outputs are log-rates:
    ``exp(z) - y * z``, per sample (the mean over the outputs).

    Keras' ``poisson(y, exp(z))`` is ``exp(z) - y * log(exp(z) + 1e-7)``:
    the same up to its epsilon, which this form does not need and which
    would cap the gradient of small rates."""
    y_true = tf.cast(y_true, y_pred.dtype)
    return tf.reduce_mean(tf.exp(y_pred) - y_true * y_pred, axis=-1)


@keras.saving.register_keras_serializable(package="skreg")
class PoissonLogLink(keras.losses.Loss):
    """The Poisson deviance loss on log-rate outputs (a log link), as
    scikit-learn's ``MLPRegressor(loss="poisson")`` and ``PoissonRegressor``
    fit it; the network's predictions are ``exp`` of its outputs."""

    def __init__(self, reduction="sum_over_batch_size", name="poisson_log_link", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return poisson_log_link(y_true, y_pred)


def smoothed_sparse_categorical_crossentropy(y_true, y_pred, label_smoothing=0.0):
    """Keras' ``categorical_crossentropy(one_hot(y), logits, from_logits=True,
    label_smoothing=...)`` from integer labels, per sample: the one-hot
    targets moved ``label_smoothing`` of the way to uniform, which is
    ``(1 - s) * -log p_y + s * mean(-log p)``."""
    labels = tf.cast(tf.reshape(y_true, [-1]), tf.int32)
    log_probabilities = tf.nn.log_softmax(y_pred, axis=-1)
    own = -tf.gather(log_probabilities, labels, axis=-1, batch_dims=1)
    uniform = -tf.reduce_mean(log_probabilities, axis=-1)
    return (1.0 - label_smoothing) * own + label_smoothing * uniform


@keras.saving.register_keras_serializable(package="skreg")
class SmoothedSparseCategoricalCrossentropy(keras.losses.Loss):
    """The cross-entropy of integer labels and logits with label smoothing,
    which Keras' ``SparseCategoricalCrossentropy`` does not take (its
    ``CategoricalCrossentropy`` does, on one-hot labels)."""

    def __init__(self, label_smoothing=0.0, reduction="sum_over_batch_size",
                 name="smoothed_sparse_categorical_crossentropy", dtype=None):  # fmt: skip
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        return smoothed_sparse_categorical_crossentropy(y_true, y_pred, self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
