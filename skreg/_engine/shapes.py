"""A group's per-tower values shaped to its weights' layout (see
:func:`~skreg._engine.structure.weight_layout`): the first kernel holds the
towers side by side ([n_features, K * units]), the other weights stack
them ([K, ...])."""

from .._backend.tensorflow import tf

__all__ = ["per_tower", "tower_sums"]


def per_tower(vector, weight):
    """A [K] vector shaped to multiply a weight elementwise: the first
    kernel [n_features, K * units] (rank 2) or a stacked [K, ...] one."""
    if weight.shape.rank == 2:
        units = tf.shape(weight)[1] // tf.shape(vector)[0]
        return tf.repeat(vector, units)[None, :]
    return vector[:, None, None]


def tower_sums(values, n_towers):
    """[K]: the sums of each tower's part of a weight-shaped tensor."""
    if values.shape.rank == 2:  # [n_features, K * units]
        return tf.reduce_sum(tf.reshape(tf.reduce_sum(values, axis=0), [n_towers, -1]), axis=1)
    return tf.reduce_sum(values, axis=[1, 2])
