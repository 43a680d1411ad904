"""Keras losses that skreg adds to Keras' own."""

from ._tensorflow import keras, tf

__all__ = ["PoissonLogLink", "poisson_log_link"]


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
