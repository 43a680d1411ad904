"""The network's outputs computed in float64, the same for a row in any batch.

TensorFlow's float32 matrix product (Eigen's, with or without oneDNN) rounds
a row's dot products differently depending on where the row sits in the
batch and on how many rows there are (a one-row product takes another
kernel): the same sample could get outputs 1e-7 apart in two calls, which
scikit-learn's invariance checks reject. The forward pass here reads the
trained float32 weights, widened exactly to float64, and multiplies in
float64, where any blocking of the product changes a result by ~1e-16 at
most. It runs eagerly, so no prediction program is traced for a new model.
"""

import numpy as np
import scipy.sparse as sp

from .._backend.tensorflow import keras, tf
from ..network import InputAugmentation

__all__ = ["predict_float64"]


def _as_float64(variable):
    return tf.cast(tf.convert_to_tensor(variable), tf.float64)


def _csr_to_sparse_tensor(X):
    rows = np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr))
    return tf.SparseTensor(
        np.column_stack([rows, X.indices.astype(np.int64)]), X.data, X.shape
    )


def _dense(layer, x):
    if isinstance(x, tf.SparseTensor):
        # The sparse layer's own float32 kernels already sum each row alone,
        # in CSR order (sparse_dense_matmul, segment sums), so they give a row
        # the same value in any batch, at float32 speed.
        return tf.cast(layer.call(x), tf.float64)
    out = tf.matmul(x, _as_float64(layer.kernel))
    if layer.use_bias:
        out += _as_float64(layer.bias)
    return out if layer.activation is None else layer.activation(out)


def _batch_normalization(layer, x):
    # Inference-mode normalization with the moving statistics, as Keras does.
    scale = tf.math.rsqrt(_as_float64(layer.moving_variance) + layer.epsilon)
    if layer.scale:
        scale *= _as_float64(layer.gamma)
    out = (x - _as_float64(layer.moving_mean)) * scale
    return out + _as_float64(layer.beta) if layer.center else out


def _layer_output(layer, x):
    if isinstance(layer, keras.layers.InputLayer):
        return x
    if isinstance(layer, keras.layers.Dense):
        return _dense(layer, x)
    if isinstance(layer, keras.layers.BatchNormalization) and layer.axis in (-1, [-1], 1, [1]):
        return _batch_normalization(layer, x)
    if isinstance(layer, keras.layers.Activation):
        return layer.activation(x)
    if isinstance(layer, (keras.layers.Dropout, InputAugmentation)):
        return x  # inactive at inference
    # Any other layer (a user's edit of the network): its own float32 call.
    return tf.cast(layer(tf.cast(x, layer.compute_dtype), training=False), tf.float64)


def predict_float64(model, X, batch_size):
    """Outputs of ``model`` (a chain of layers, as :func:`build_mlp` makes) on ``X``.

    Parameters
    ----------
    model : keras.Model
    X : ndarray or scipy CSR matrix
    batch_size : int
        Rows per pass, which bounds the memory of the hidden activations.

    Returns
    -------
    outputs : ndarray of shape (n_samples, n_outputs), float64
    """
    chunks = []
    for start in range(0, X.shape[0], batch_size):
        block = X[start : start + batch_size]
        x = (
            _csr_to_sparse_tensor(block)
            if sp.issparse(block)
            else tf.constant(block, dtype=tf.float64)
        )
        for layer in model.layers:
            x = _layer_output(layer, x)
        chunks.append(x.numpy())
    return np.concatenate(chunks)
