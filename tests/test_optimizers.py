"""The fused RMSprop/Adam updates equal Keras' own, step for step."""

import numpy as np
import pytest

from skreg._backend.optimizers import FusedAdam, FusedRMSprop, fused_optimizer_class
from skreg._backend.tensorflow import keras, tf


def _train(optimizer, gradients, sparse_rows=None):
    """Weights after applying each gradient in turn, inside one tf.function."""
    rng = np.random.RandomState(0)
    variables = [
        keras.Variable(rng.normal(size=(6, 3)).astype("float32")),
        keras.Variable(rng.normal(size=(3,)).astype("float32")),
    ]
    optimizer.build(variables)

    @tf.function
    def step(kernel_gradient, bias_gradient):
        if sparse_rows is not None:  # an embedding-style gradient on the kernel
            kernel_gradient = tf.IndexedSlices(
                tf.gather(kernel_gradient, sparse_rows), sparse_rows, tf.shape(kernel_gradient)
            )
        optimizer.apply([kernel_gradient, bias_gradient], variables)

    for kernel_gradient, bias_gradient in gradients:
        step(kernel_gradient, bias_gradient)
    return [v.numpy() for v in variables]


def _gradients(n_steps=5):
    rng = np.random.RandomState(1)
    return [
        (rng.normal(size=(6, 3)).astype("float32"), rng.normal(size=(3,)).astype("float32"))
        for _ in range(n_steps)
    ]


@pytest.mark.parametrize(
    "keras_class, fused_class, config",
    [
        (keras.optimizers.RMSprop, FusedRMSprop, {}),
        (keras.optimizers.RMSprop, FusedRMSprop, {"momentum": 0.9}),
        (keras.optimizers.RMSprop, FusedRMSprop, {"centered": True, "rho": 0.8}),
        (keras.optimizers.RMSprop, FusedRMSprop, {"momentum": 0.5, "centered": True}),
        (keras.optimizers.Adam, FusedAdam, {}),
        (keras.optimizers.Adam, FusedAdam, {"beta_1": 0.5, "epsilon": 1e-3}),
        (keras.optimizers.Adam, FusedAdam, {"amsgrad": True}),
        (keras.optimizers.Adam, FusedAdam, {"clipnorm": 0.5, "weight_decay": 0.1}),
    ],
)
@pytest.mark.parametrize("sparse_rows", [None, [0, 3, 3, 5]])
def test_fused_updates_equal_keras(keras_class, fused_class, config, sparse_rows, monkeypatch):
    kernels_run = []
    for name in ("ResourceApplyRMSProp", "ResourceApplyCenteredRMSProp", "ResourceApplyAdam"):
        kernel = getattr(tf.raw_ops, name)
        monkeypatch.setattr(
            tf.raw_ops, name, lambda kernel=kernel, **kw: kernels_run.append(kernel) or kernel(**kw)
        )
    config = {"learning_rate": 0.01, **config}
    gradients = _gradients()
    rows = None if sparse_rows is None else tf.constant(sparse_rows)
    expected = _train(keras_class(**config), gradients, rows)
    assert not kernels_run
    fused = fused_class(**config)
    got = _train(fused, gradients, rows)
    # Traced once: one fused kernel for the bias, and one for the kernel unless
    # its gradient is sparse (Keras' own update then); none with amsgrad.
    expected_kernels = 0 if config.get("amsgrad") else 1 if sparse_rows else 2
    assert len(kernels_run) == expected_kernels
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    assert not np.allclose(expected[0], _train(keras_class(**config), [], rows)[0])  # it moved
    same_config = {k: v for k, v in keras_class(**config).get_config().items() if k != "name"}
    assert {k: v for k, v in fused.get_config().items() if k != "name"} == same_config


def test_only_keras_rmsprop_and_adam_are_swapped():
    assert fused_optimizer_class(keras.optimizers.RMSprop) is FusedRMSprop
    assert fused_optimizer_class(keras.optimizers.Adam) is FusedAdam
    assert fused_optimizer_class(keras.optimizers.SGD) is keras.optimizers.SGD
    assert fused_optimizer_class(keras.optimizers.AdamW) is keras.optimizers.AdamW
