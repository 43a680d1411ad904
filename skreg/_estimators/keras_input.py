"""Keras' input for the fits that Keras' ``Model.fit`` trains: a
``tf.data`` pipeline of mini-batches cut inside TensorFlow from data copied
into it once (see :mod:`skreg._engine.partition`), with no Python per batch."""

import numpy as np
import scipy.sparse as sp

from .._backend.tensorflow import tf
from .._engine.partition import csr_tensors, sparse_row_gatherer

__all__ = ["make_dataset", "n_batches"]


def _sparse_row_gatherer(X):
    """A graph function: row numbers -> ``tf.SparseTensor`` of those rows."""
    return sparse_row_gatherer(*csr_tensors(X))


def _dense_row_gatherer(X):
    table = tf.constant(X)
    return lambda rows: tf.gather(table, rows)


def make_dataset(X, y=None, sample_weight=None, *, batch_size, shuffle=False, seed=None):
    """A ``tf.data.Dataset`` of ``(X_batch, y_batch[, w_batch])`` tuples.

    Parameters
    ----------
    X : ndarray or scipy CSR matrix with sorted indices, float32
    y, sample_weight : ndarray or None
    batch_size : int
    shuffle : bool
        Draw a new order of the rows at every pass (epoch).
    seed : int or None
        Seed of that order; the same seed gives the same sequence of epochs.
    """
    gather_x = _sparse_row_gatherer(X) if sp.issparse(X) else _dense_row_gatherer(X)
    others = [tf.constant(a) for a in (y, sample_weight) if a is not None]

    def gather(rows):
        x = gather_x(rows)
        if not others:
            return (x,)
        return (x, *(tf.gather(a, rows) for a in others))

    n_samples = X.shape[0]
    rows = tf.data.Dataset.range(n_samples)
    if shuffle:
        rows = rows.shuffle(n_samples, seed=seed, reshuffle_each_iteration=True)
    # One producer thread cutting batches ahead of the training step: on the
    # 2-core machines measured it gave steadier epochs than AUTOTUNE, whose
    # ramp-up made epochs 2-4 twice as slow (0.27 vs 0.33 s median, IMDB-sized).
    return rows.batch(batch_size).map(gather, num_parallel_calls=1, deterministic=True).prefetch(4)


def n_batches(n_samples, batch_size):
    return int(np.ceil(n_samples / batch_size))
