"""RMSprop and Adam updating each variable in one TensorFlow kernel.

Keras 3 writes an optimizer's update as a chain of element-wise ops (for
RMSprop: square, two multiplies, add, assign, add, sqrt, divide, assign-sub),
each one a pass over the variable. On multi-hot text the first kernel is
large (10,000 x 16 for IMDB) and the rest of the step is small, so these
passes were about a third of a training step (TF profiler, 16-16 IMDB
epoch). TensorFlow's fused training kernels (``ResourceApplyRMSProp``,
``ResourceApplyAdam``) compute the same formulas in one pass. The classes
below keep everything else of Keras' optimizers (learning-rate schedules,
clipping, weight decay, EMA, config) and only swap that inner update; the
results equal Keras' up to float rounding (tested).
"""

import functools

import numpy as np

from .tensorflow import keras, tf

__all__ = ["fused_optimizer_class"]


def _cast_all(dtype, **values):
    return {name: tf.cast(value, dtype) for name, value in values.items()}


@keras.saving.register_keras_serializable(package="skreg")
class FusedRMSprop(keras.optimizers.RMSprop):
    """``keras.optimizers.RMSprop`` whose per-variable update is one kernel."""

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        # The fused kernel always keeps a momentum buffer; with momentum 0 it
        # holds the last step, which Keras' RMSprop does not store.
        self._fused_steps = (
            [self.add_variable_from_reference(v, "fused_step") for v in var_list]
            if self.momentum == 0
            else []
        )

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        velocity = self._velocities[index]
        momentum = (self._momentums if self.momentum > 0 else self._fused_steps)[index]
        if isinstance(gradient, tf.IndexedSlices) or velocity is None or momentum is None:
            return super().update_step(gradient, variable, learning_rate)
        arguments = dict(
            var=variable.handle,
            ms=velocity.handle,
            mom=momentum.handle,
            **_cast_all(
                variable.dtype,
                lr=learning_rate,
                rho=self.rho,
                momentum=self.momentum,
                epsilon=self.epsilon,
                grad=gradient,
            ),
        )
        if self.centered:
            tf.raw_ops.ResourceApplyCenteredRMSProp(
                mg=self._average_gradients[index].handle, **arguments
            )
        else:
            tf.raw_ops.ResourceApplyRMSProp(**arguments)


@keras.saving.register_keras_serializable(package="skreg")
class FusedAdam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` whose per-variable update is one kernel."""

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        if isinstance(gradient, tf.IndexedSlices) or self.amsgrad or m is None or v is None:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=m.handle,
            v=v.handle,
            use_nesterov=False,
            **_cast_all(
                dtype,
                beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
                beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
                lr=learning_rate,
                beta1=self.beta_1,
                beta2=self.beta_2,
                epsilon=self.epsilon,
                grad=gradient,
            ),
        )


_FUSED = {keras.optimizers.RMSprop: FusedRMSprop, keras.optimizers.Adam: FusedAdam}


@functools.lru_cache(maxsize=None)
def _keeps_slots_as_expected(optimizer_class):
    """Whether a built ``optimizer_class`` keeps its slots where the fused
    update reads them: private attributes of Keras 3.5 to 3.15. A release
    that moves them trains with Keras' own update (the same results)."""
    probe = optimizer_class(name="skreg_probe")
    probe.build([keras.Variable(np.zeros(1, np.float32), name="skreg_probe")])
    return all(hasattr(probe, name) for name in ("_get_variable_index", "_velocities",
                                                 "_momentums"))  # fmt: skip


def fused_optimizer_class(optimizer_class):
    """The fused twin of Keras' own RMSprop/Adam; any other class as it is."""
    fused = _FUSED.get(optimizer_class)
    if fused is None or not _keeps_slots_as_expected(optimizer_class):
        return optimizer_class
    return fused
