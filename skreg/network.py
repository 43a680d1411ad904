"""The regularized multi-layer perceptron as a Keras model.

:func:`build_mlp` is the one place where skreg's networks are defined. The
estimators call it, and it also works as the ``model=`` of a scikeras
``KerasClassifier`` / ``KerasRegressor`` (it then reads the shapes from
scikeras' ``meta`` dict).
"""

import numbers

import numpy as np
from sklearn.utils import check_random_state

from ._engine.regularizers import HiddenNoise, MaxNorm, kernel_regularizer
from ._backend.tensorflow import keras, tf

__all__ = ["InputAugmentation", "SparseInputDense", "build_mlp"]

# Below this width TensorFlow's sparse_dense_matmul (with its built-in
# gradient) is fastest; above it the segment-sum kernels win by 3-5x
# (measured per batch of 512 IMDB-like rows: 16 units 1.2 vs 12.7 ms,
# 64 units 28 vs 14 ms, 1024 units 258 vs 54 ms).
_SEGMENT_SUM_MIN_UNITS = 64


def _segment_sum_matmul(x, kernel):
    """``x @ kernel`` for a SparseTensor ``x``, in fused gather-and-sum kernels.

    Both directions cost in proportion to the non-zeros, not to the input
    width: the forward pass sums the kernel rows each sample switches on,
    and the gradient with respect to the kernel sums the output gradients of
    the samples that switch each row on (``x.T @ dout``), which TensorFlow
    would otherwise compute through a scatter that is several times slower.
    The sums treat every stored value as 1; values other than 1 (none on
    multi-hot text) add their excess over 1 through a gather and a scatter
    over just those entries. No branch on the values: a tf.cond here would
    leave its branch functions in TensorFlow's eager context after each fit.
    """
    rows = tf.cast(x.indices[:, 0], tf.int32)
    cols = x.indices[:, 1]
    n_rows = tf.cast(x.dense_shape[0], tf.int32)
    not_one = tf.where(tf.not_equal(x.values, 1))[:, 0]
    excess = tf.gather(x.values, not_one)[:, None] - 1
    excess_rows = tf.gather(rows, not_one)
    excess_cols = tf.gather(cols, not_one)

    @tf.custom_gradient
    def matmul(k):
        def grad(dout):
            # The stored values other than 1 add their excess as extra
            # entries (rows past the batch), so that one segment sum makes
            # the whole gradient: a scatter onto it would copy the kernel-sized
            # result each step.
            data = tf.concat([dout, tf.gather(dout, excess_rows) * excess], axis=0)
            n_excess = tf.shape(excess_rows)[0]
            entry_rows = tf.concat([rows, n_rows + tf.range(n_excess)], axis=0)
            entry_cols = tf.concat([cols, excess_cols], axis=0)
            # The entries in column order (segment sums need sorted ids); a
            # stable argsort is ~25% cheaper than tf.sparse.reorder.
            by_column = tf.argsort(entry_cols, stable=True)
            return tf.sparse.segment_sum(
                data,
                tf.gather(entry_rows, by_column),
                tf.cast(tf.gather(entry_cols, by_column), tf.int32),
                num_segments=tf.shape(k)[0],
            )

        out = tf.sparse.segment_sum(k, cols, rows, num_segments=n_rows)
        out += tf.math.unsorted_segment_sum(
            tf.gather(k, excess_cols) * excess, excess_rows, num_segments=n_rows
        )
        return out, grad

    return matmul(kernel)


def uses_segment_sums(units):
    """Whether a sparse first layer of ``units`` units multiplies by segment sums."""
    return units >= _SEGMENT_SUM_MIN_UNITS


def sparse_dense_product(x, kernel, wide):
    """``x @ kernel`` for a SparseTensor ``x``, by the kernels fastest for a
    ``wide`` kernel (see :func:`uses_segment_sums`) or a narrow one."""
    if wide:
        return _segment_sum_matmul(x, kernel)
    return tf.sparse.sparse_dense_matmul(x, kernel)


@keras.saving.register_keras_serializable(package="skreg")
class SparseInputDense(keras.layers.Dense):
    """A ``Dense`` layer that multiplies sparse input at the cost of its non-zeros.

    On dense input it is exactly ``keras.layers.Dense``. On a
    ``tf.SparseTensor`` it avoids Keras' generic sparse path
    (``fill_empty_rows`` plus ``embedding_lookup_sparse``), which dominates
    the time of a training step on multi-hot text.
    """

    def call(self, inputs, training=None):
        if not isinstance(inputs, tf.SparseTensor):
            return super().call(inputs, training=training)
        outputs = sparse_dense_product(
            inputs, tf.convert_to_tensor(self.kernel), uses_segment_sums(self.units)
        )
        if self.use_bias:
            outputs = outputs + self.bias
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs


@keras.saving.register_keras_serializable(package="skreg")
class InputAugmentation(keras.layers.Layer):
    """Random changes to the input while training: data augmentation.

    In training (``training=True``) each batch is changed afresh; at
    inference the layer passes its input through unchanged.

    - ``dropout``: each input value is dropped (set to 0) with this
      probability, and the kept ones are scaled by ``1 / (1 - dropout)`` as
      Keras' ``Dropout`` does, so that the expected input is unchanged. On
      multi-hot text this deletes words at random. A sparse batch stays
      sparse: dropped entries are removed from it.
    - ``noise``: standard deviation of Gaussian noise added to the input
      (Keras' ``GaussianNoise``). On a sparse batch only the stored values
      get noise; the zeros that are not stored stay zero.
    - ``image_shape`` with ``shift``, ``rotation``, ``flip``: the features
      are the pixels of images of that shape (``(height, width)`` or
      ``(height, width, channels)``, row-major as ``reshape`` lays them),
      moved by up to ``shift`` of their height and width, turned by up to
      ``rotation`` degrees and flipped left-right with probability 1/2
      (Keras' ``RandomTranslation``, ``RandomRotation``, ``RandomFlip``),
      with zeros filled in where the image moved away. Dense input only.
    """

    def __init__(self, *, dropout=0.0, noise=0.0, image_shape=None, shift=0.0,
                 rotation=0.0, flip=False, seed=None, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.dropout = float(dropout)
        self.noise = float(noise)
        self.image_shape = None if image_shape is None else tuple(int(d) for d in image_shape)
        self.shift = float(shift)
        self.rotation = float(rotation)
        self.flip = bool(flip)
        self.seed = seed
        self._seed_generator = keras.random.SeedGenerator(seed)
        self._image_layers = self._make_image_layers(seed)

    def _make_image_layers(self, seed):
        seeds = _layer_seeds(seed, 3)
        layers = []
        if self.shift > 0:
            layers.append(keras.layers.RandomTranslation(
                self.shift, self.shift, fill_mode="constant", seed=seeds[0]))  # fmt: skip
        if self.rotation > 0:
            layers.append(keras.layers.RandomRotation(
                self.rotation / 360.0, fill_mode="constant", seed=seeds[1]))  # fmt: skip
        if self.flip:
            layers.append(keras.layers.RandomFlip("horizontal", seed=seeds[2]))
        return layers

    def _image_batch_shape(self):
        shape = self.image_shape if len(self.image_shape) == 3 else (*self.image_shape, 1)
        return (-1, *shape)

    def build(self, input_shape):
        for layer in self._image_layers:
            layer.build((None, *self._image_batch_shape()[1:]))
        self.built = True

    def call(self, inputs, training=None):
        if not training:
            return inputs
        if isinstance(inputs, tf.SparseTensor):
            return self._augment_sparse(inputs)
        x = inputs
        if self._image_layers:
            flat_shape = tf.shape(x)
            x = tf.reshape(x, self._image_batch_shape())
            for layer in self._image_layers:
                x = layer(x, training=True)
            x = tf.reshape(x, flat_shape)
        if self.dropout > 0:
            x = keras.random.dropout(x, self.dropout, seed=self._seed_generator)
        if self.noise > 0:
            x = x + keras.random.normal(
                tf.shape(x), stddev=self.noise, dtype=x.dtype, seed=self._seed_generator
            )
        return x

    def _augment_sparse(self, x):
        if self._image_layers:
            raise ValueError("Image transforms work on dense images only; the input is sparse.")
        if self.dropout > 0:
            keep = keras.random.uniform(tf.shape(x.values), seed=self._seed_generator)
            x = tf.sparse.retain(x, keep >= self.dropout)
            x = tf.SparseTensor(x.indices, x.values / (1.0 - self.dropout), x.dense_shape)
        if self.noise > 0:
            noise = keras.random.normal(
                tf.shape(x.values), stddev=self.noise, dtype=x.values.dtype,
                seed=self._seed_generator,
            )  # fmt: skip
            x = tf.SparseTensor(x.indices, x.values + noise, x.dense_shape)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "dropout": self.dropout,
            "noise": self.noise,
            "image_shape": self.image_shape,
            "shift": self.shift,
            "rotation": self.rotation,
            "flip": self.flip,
            "seed": self.seed,
        }


def _layer_seeds(random_state, n):
    """``n`` integer seeds for Keras initializers and dropout, or Nones."""
    if random_state is None:
        return [None] * n
    rng = check_random_state(random_state)
    return [int(s) for s in rng.randint(np.iinfo(np.int32).max, size=n)]


def _shape_from_scikeras_meta(meta):
    """(n_features_in, n_outputs, output_activation) from scikeras' meta."""
    target_type = meta.get("target_type_")
    if target_type == "binary":
        return meta["n_features_in_"], 1, "sigmoid"
    if target_type == "multiclass":
        return meta["n_features_in_"], meta["n_classes_"], "softmax"
    if target_type == "multilabel-indicator":
        return meta["n_features_in_"], meta["n_outputs_expected_"], "sigmoid"
    n_outputs = meta.get("n_outputs_expected_") or 1
    return meta["n_features_in_"], n_outputs, None


def build_mlp(
    n_features_in=None,
    n_outputs=None,
    *,
    hidden_layer_sizes=(16, 16),
    activation="relu",
    l1=0.0,
    l2=0.0,
    dropout=0.0,
    hidden_noise=0.0,
    max_norm=None,
    batch_norm=False,
    output_activation=None,
    input_dropout=0.0,
    input_noise=0.0,
    image_shape=None,
    image_shift=0.0,
    image_rotation=0.0,
    image_flip=False,
    sparse_input=False,
    random_state=None,
    meta=None,
):
    """Build an (uncompiled) regularized multi-layer perceptron.

    The layers are, for each hidden size: ``Dense`` (with an L1/L2 kernel
    penalty when ``l1`` or ``l2`` is positive), ``BatchNormalization`` when
    ``batch_norm``, the activation, ``Dropout`` when ``dropout > 0`` and
    ``GaussianNoise`` when ``hidden_noise > 0``; then a ``Dense`` output
    layer without penalty.

    Parameters
    ----------
    n_features_in : int
        Width of the input. Read from ``meta`` when called by scikeras.
    n_outputs : int
        Number of output units. Read from ``meta`` when called by scikeras.
    hidden_layer_sizes : sequence of int, default=(16, 16)
        Units of each hidden layer.
    activation : str, default="relu"
        Activation of the hidden layers (any Keras activation name).
    l1, l2 : float, default=0.0
        Penalty factors on the hidden layers' kernels; both positive gives
        the elastic net ``l1 * sum|w| + l2 * sum w**2``.
    dropout : float, default=0.0
        Fraction of each hidden layer's outputs dropped while training.
    hidden_noise : float in [0, 1], default=0.0
        Standard deviation of the Gaussian noise added to each hidden
        layer's outputs while training (Keras' ``GaussianNoise``).
    max_norm : float or None, default=None
        Largest norm of each hidden unit's incoming weights (Keras'
        ``MaxNorm(max_norm, axis=0)`` kernel constraint, applied after each update).
    batch_norm : bool, default=False
        Put ``BatchNormalization`` between each hidden ``Dense`` and its
        activation (the ``Dense`` then has no bias: the normalization's
        offset replaces it).
    output_activation : str or None, default=None
        Activation of the output layer. ``None`` gives logits (linear), as
        the estimators use; scikeras callers get ``"sigmoid"``/``"softmax"``
        chosen from ``meta`` when left at ``None``.
    input_dropout : float, default=0.0
        Probability of dropping each input value while training (kept values
        scaled by ``1 / (1 - input_dropout)``, as Keras' ``Dropout`` does).
    input_noise : float, default=0.0
        Standard deviation of Gaussian noise added to the inputs while
        training (on sparse input: to the stored values only).
    image_shape : tuple of int or None, default=None
        The features are the pixels of images of this shape.
    image_shift, image_rotation, image_flip : float, float, bool
        Random shifts (fraction of height and width), rotations (degrees)
        and left-right flips of those images while training.
        All input changes are made by an :class:`~skreg.network.InputAugmentation` layer,
        which passes the input unchanged at inference.
    sparse_input : bool, default=False
        Declare the input as ``tf.SparseTensor`` (scipy sparse data).
    random_state : int, RandomState instance or None, default=None
        Seeds every initializer and dropout layer, so that the same seed
        gives the same network without touching TensorFlow's global seed.
    meta : dict, default=None
        Filled in by scikeras; not for direct use.

    Returns
    -------
    model : keras.Model
        The network, not yet compiled.

    Examples
    --------
    >>> from skreg import build_mlp
    >>> model = build_mlp(10_000, 1, hidden_layer_sizes=(16, 16), l2=1e-3)
    >>> model.output_shape
    (None, 1)
    """
    if meta is not None:
        n_features_in, n_outputs, meta_activation = _shape_from_scikeras_meta(meta)
        if output_activation is None:
            output_activation = meta_activation
    if n_features_in is None or n_outputs is None:
        raise TypeError("build_mlp needs n_features_in and n_outputs.")
    _check_network_params(hidden_layer_sizes, l1, l2, dropout)
    # A sparse Input also takes dense batches: sparse data is refused image
    # transforms where the data is known (the estimators), or by the layer.
    check_augmentation(n_features_in, sparse=False, input_dropout=input_dropout,
                       input_noise=input_noise, image_shape=image_shape, image_shift=image_shift,
                       image_rotation=image_rotation, image_flip=image_flip)  # fmt: skip

    if max_norm is not None and not (isinstance(max_norm, numbers.Real) and max_norm > 0):
        raise ValueError(f"max_norm must be a positive number or None, got {max_norm!r}.")
    if not (isinstance(hidden_noise, numbers.Real) and 0 <= hidden_noise <= 1):
        raise ValueError(f"hidden_noise must be in [0, 1] (Keras' GaussianNoise), got "
                         f"{hidden_noise!r}.")  # fmt: skip
    regularizer = kernel_regularizer(l1, l2)
    # One seed per layer in the order drawn before augmentation and hidden
    # noise existed (the output layer's, then augmentation's, then the noise
    # layers'), so that a network without them is unchanged.
    n_layers = len(hidden_layer_sizes)
    seeds = _layer_seeds(random_state, 3 * n_layers + 2)
    inputs = keras.Input(shape=(n_features_in,), sparse=sparse_input, name="features")
    x = inputs
    if input_dropout or input_noise or image_shift or image_rotation or image_flip:
        x = InputAugmentation(
            dropout=input_dropout, noise=input_noise, image_shape=image_shape,
            shift=image_shift, rotation=image_rotation, flip=image_flip,
            seed=seeds[2 * n_layers + 1], name="augmentation",
        )(x)  # fmt: skip
    for i, units in enumerate(hidden_layer_sizes):
        dense = SparseInputDense if i == 0 else keras.layers.Dense
        x = dense(
            int(units),
            use_bias=not batch_norm,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seeds[2 * i]),
            kernel_regularizer=regularizer,
            kernel_constraint=MaxNorm.keras_form(max_norm),
            name=f"dense_{i}",
        )(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(name=f"batch_norm_{i}")(x)
        x = keras.layers.Activation(activation, name=f"activation_{i}")(x)
        if dropout > 0:
            x = keras.layers.Dropout(dropout, seed=seeds[2 * i + 1], name=f"dropout_{i}")(x)
        noise = HiddenNoise.keras_form(hidden_noise, seed=seeds[2 * n_layers + 2 + i],
                                       name=f"noise_{i}")  # fmt: skip
        if noise is not None:
            x = noise(x)
    outputs = keras.layers.Dense(
        int(n_outputs),
        activation=output_activation,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seeds[2 * n_layers]),
        name="output",
    )(x)
    return keras.Model(inputs, outputs, name="regularized_mlp")


def check_augmentation(n_features_in, sparse, *, input_dropout, input_noise, image_shape,
                       image_shift, image_rotation, image_flip):  # fmt: skip
    """Refuse input augmentation that cannot work, naming why."""
    if not (isinstance(input_dropout, numbers.Real) and 0 <= input_dropout < 1):
        raise ValueError(f"input_dropout must be in [0, 1), got {input_dropout!r}.")
    if not (isinstance(input_noise, numbers.Real) and input_noise >= 0):
        raise ValueError(f"input_noise must be a non-negative number, got {input_noise!r}.")
    if not (isinstance(image_shift, numbers.Real) and 0 <= image_shift < 1):
        raise ValueError(f"image_shift must be in [0, 1), got {image_shift!r}.")
    if not (isinstance(image_rotation, numbers.Real) and 0 <= image_rotation <= 180):
        raise ValueError(f"image_rotation must be in [0, 180] degrees, got {image_rotation!r}.")
    transforms = [name for name, on in (("image_shift", image_shift),
                                        ("image_rotation", image_rotation),
                                        ("image_flip", image_flip)) if on]  # fmt: skip
    if image_shape is None:
        if transforms:
            raise ValueError(
                f"{' and '.join(transforms)} {'needs' if len(transforms) == 1 else 'need'} "
                "image_shape: the (height, width) or "
                "(height, width, channels) of the images whose pixels are the features."
            )
        return
    shape = tuple(np.atleast_1d(image_shape).tolist())
    if len(shape) not in (2, 3) or not all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0 for d in shape
    ):
        raise ValueError(
            "image_shape must be (height, width) or (height, width, channels) of "
            f"positive integers, got {image_shape!r}."
        )
    if int(np.prod(shape)) != n_features_in:
        raise ValueError(
            f"image_shape {shape} holds {int(np.prod(shape))} pixels, but the data has "
            f"{n_features_in} features."
        )
    if sparse and transforms:
        raise ValueError(
            f"{' and '.join(transforms)} {'works' if len(transforms) == 1 else 'work'} on "
            "dense images only; the input is sparse. "
            "Pass a dense array (images are rarely sparse), or use input_dropout / "
            "input_noise, which keep sparse input sparse."
        )


def _check_network_params(hidden_layer_sizes, l1, l2, dropout):
    """Errors that name the problem, for callers that bypass the estimators."""
    sizes = list(np.atleast_1d(hidden_layer_sizes)) if hidden_layer_sizes is not None else []
    if not sizes or not all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in sizes
    ):
        raise ValueError(
            "hidden_layer_sizes must be a non-empty sequence of positive integers, "
            f"got {hidden_layer_sizes!r}."
        )
    for name, value in (("l1", l1), ("l2", l2)):
        if not isinstance(value, numbers.Real) or not value >= 0:
            raise ValueError(f"{name} must be a non-negative number, got {value!r}.")
    if not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
