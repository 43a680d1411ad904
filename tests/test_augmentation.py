"""Data augmentation: input dropout, input noise and image transforms."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

from skreg import RegularizedMLPClassifier, RegularizedMLPRegressor, build_mlp
from skreg._engine.partition import PartitionedBatches
from skreg._engine import tower_data
from skreg._engine.batches import SparseBatch
from skreg._backend.tensorflow import tf
from skreg.network import InputAugmentation


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32)[:300], y[:300]


def _sparse_tensor(X):
    coo = X.tocoo()
    return tf.SparseTensor(np.column_stack([coo.row, coo.col]).astype(np.int64),
                           coo.data, coo.shape)  # fmt: skip


def test_input_dropout_on_sparse_rows_drops_words_and_keeps_them_sparse():
    X = sp.random(400, 500, density=0.1, format="csr", dtype=np.float32, random_state=0)
    X.data[:] = 1.0
    layer = InputAugmentation(dropout=0.3, seed=0)
    out = layer(_sparse_tensor(X), training=True)
    assert isinstance(out, tf.SparseTensor)
    kept = out.values.shape[0] / X.nnz
    assert abs(kept - 0.7) < 0.01  # 20,000 words: binomial sd 0.003
    np.testing.assert_allclose(out.values.numpy(), 1 / 0.7, rtol=1e-6)  # Keras' rescaling
    # Only stored words are dropped: every kept entry was a word of X.
    kept_entries = {tuple(i) for i in out.indices.numpy()}
    assert kept_entries <= set(zip(*X.nonzero()))
    # Afresh on every batch, and nothing at inference.
    again = layer(_sparse_tensor(X), training=True)
    assert {tuple(i) for i in again.indices.numpy()} != kept_entries
    assert layer(_sparse_tensor(X), training=False).values.shape[0] == X.nnz


def test_input_noise_touches_only_stored_values_of_sparse_input():
    X = sp.random(50, 80, density=0.1, format="csr", dtype=np.float32, random_state=1)
    out = InputAugmentation(noise=0.5, seed=0)(_sparse_tensor(X), training=True)
    np.testing.assert_array_equal(out.indices.numpy(), _sparse_tensor(X).indices.numpy())
    change = out.values.numpy() - X.tocoo().data
    assert 0.4 < change.std() < 0.6 and abs(change.mean()) < 0.15


def test_dense_input_dropout_and_noise():
    X = np.ones((200, 50), np.float32)
    dropped = InputAugmentation(dropout=0.5, seed=0)(X, training=True).numpy()
    assert set(np.unique(dropped)) == {0.0, 2.0} and abs((dropped == 0).mean() - 0.5) < 0.02
    noisy = InputAugmentation(noise=0.1, seed=0)(X, training=True).numpy()
    assert 0.09 < (noisy - 1).std() < 0.11


def test_image_flip_mirrors_rows_of_the_image_layout():
    """The pixels are read row-major as (height, width): a flip reverses each row."""
    images = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 12)
    layer = InputAugmentation(image_shape=(3, 4), flip=True, seed=0)
    mirrored = images.reshape(2, 3, 4)[:, :, ::-1].reshape(2, 12)
    outcomes = set()
    for _ in range(20):
        out = layer(images, training=True).numpy()
        for row, original, mirror in zip(out, images, mirrored):
            assert np.array_equal(row, original) or np.array_equal(row, mirror)
            outcomes.add(np.array_equal(row, mirror))
    assert outcomes == {True, False}


def test_image_shift_moves_pixels_and_fills_zeros():
    image = np.zeros((1, 64), np.float32)
    image[0, 3 * 8 + 3] = 1.0  # one lit pixel in an 8x8 image
    layer = InputAugmentation(image_shape=(8, 8), shift=0.25, seed=0)
    moved = [layer(image, training=True).numpy()[0] for _ in range(10)]
    assert any(np.argmax(m) != 27 for m in moved)  # moved somewhere else
    assert all(np.count_nonzero(m > 0.5) <= 1 for m in moved)  # not smeared or repeated


@pytest.mark.parametrize(
    "params",
    [
        dict(input_dropout=0.2),
        dict(input_noise=0.1),
        dict(image_shape=(8, 8), image_shift=0.125, image_rotation=10, image_flip=True),
    ],
)
def test_augmented_fits_are_seeded_and_predictions_are_not_augmented(digits, params):
    X, y = digits
    first = RegularizedMLPClassifier(epochs=3, random_state=0, **params).fit(X, y)
    second = RegularizedMLPClassifier(epochs=3, random_state=0, **params).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    other = RegularizedMLPClassifier(epochs=3, random_state=1, **params).fit(X, y)
    assert not np.array_equal(first.predict_proba(X), other.predict_proba(X))
    plain = RegularizedMLPClassifier(epochs=3, random_state=0).fit(X, y)
    assert not np.array_equal(first.predict_proba(X), plain.predict_proba(X))
    # Prediction is deterministic: no augmentation outside training.
    np.testing.assert_array_equal(first.predict_proba(X), first.predict_proba(X))
    np.testing.assert_allclose(first.model_.predict(X, verbose=0),
                               first.decision_function(X), rtol=1e-4, atol=1e-5)  # fmt: skip


def test_augmentation_is_grid_searchable_and_the_regressor_has_it(digits):
    X, y = digits
    search = GridSearchCV(
        RegularizedMLPClassifier(epochs=2, random_state=0),
        {"input_dropout": [0.0, 0.3], "input_noise": [0.0, 0.1]},
        cv=2,
    ).fit(sp.csr_matrix(X), y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    reg = RegularizedMLPRegressor(epochs=2, input_dropout=0.1, input_noise=0.1, random_state=0)
    assert reg.fit(X, y.astype(float)).predict(X).shape == (len(y),)


@pytest.mark.parametrize(
    "params, sparse, match",
    [
        (dict(image_shift=0.1), False, "image_shift needs image_shape"),
        (dict(image_rotation=5, image_flip=True), False, "image_rotation and image_flip need"),
        (dict(image_shape=(8, 9), image_flip=True), False, r"\(8, 9\) holds 72 pixels.*64"),
        (dict(image_shape=(8, 8, 2)), False, "128 pixels"),
        (dict(image_shape=(64,)), False, "image_shape must be"),
        (dict(image_shape=(8, 8), image_flip=True), True, "image_flip works on dense images"),
    ],
)
def test_augmentation_that_cannot_work_is_refused(digits, params, sparse, match):
    X, y = digits
    with pytest.raises(ValueError, match=match):
        RegularizedMLPClassifier(epochs=1, **params).fit(sp.csr_matrix(X) if sparse else X, y)


def test_build_mlp_takes_the_augmentation_options():
    model = build_mlp(64, 10, input_dropout=0.2, image_shape=(8, 8), image_rotation=15)
    layer = model.get_layer("augmentation")
    assert (layer.dropout, layer.rotation, layer.image_shape) == (0.2, 15.0, (8, 8))
    assert "augmentation" not in [layer.name for layer in build_mlp(64, 10).layers]


@pytest.mark.parametrize("narrow", [False, True], ids=["segment-sums", "matmul"])
@pytest.mark.parametrize("binary", [True, False], ids=["multi-hot", "values"])
@pytest.mark.parametrize("noise", [None, 0.1])
def test_the_programs_sparse_batch_drops_the_same_entries_in_both_orders(binary, noise, narrow):
    """The program cuts a sparse batch's non-zeros in row order (for the
    product) and in column order (for the kernel gradient): input dropout
    and noise must change the same entries in both, so the gradient is that
    of the product's input. A narrow layer's gradient comes from the row
    order (no column order): the same changes."""
    rng = np.random.RandomState(0)
    X = sp.random(40, 30, density=0.3, random_state=rng, format="csr", dtype=np.float32)
    if binary:
        X.data[:] = 1.0
    data = tower_data(X, 40, binary=binary)
    batches = PartitionedBatches(*data, binary=binary)
    augmentation = batches.augmentation(tf.constant([5, 7], tf.int64), tf.constant(0.5),
                                        None if noise is None else tf.constant(noise),
                                        column_order=not narrow)  # fmt: skip
    partition = batches.partition(tf.range(40, dtype=tf.int64), 40, tf.constant(0, tf.int64),
                                  augmentation=augmentation, column_order=not narrow)  # fmt: skip
    batch = SparseBatch(partition, 0, batches.n_features, batches.split, scale=2.0,
                        narrow=narrow)  # fmt: skip
    rows = batch.rows.numpy()
    # The changed batch as a dense matrix, from its row-order halves.
    x, offset, kept = np.zeros((len(rows), 30), np.float32), 0, 0
    for n_rows, (places, columns, values) in batch.halves:
        values = np.ones(len(places)) if values is None else values.numpy()
        x[places.numpy() + offset, columns.numpy()] = values * 2.0  # 1 / (1 - 0.5)
        offset, kept = offset + int(n_rows), kept + len(places)
    assert 0.35 < kept / X[rows].nnz < 0.65
    assert set(zip(*np.nonzero(x))) <= set(zip(*X[rows].nonzero()))  # only stored entries
    if noise is None:
        np.testing.assert_allclose(x[x != 0], 2.0 * X[rows].toarray()[x != 0], rtol=1e-6)
    else:
        assert 0.07 < np.std(x[x != 0] - 2.0 * X[rows].toarray()[x != 0]) < 0.13  # noise 0.1
    kernel = rng.normal(size=(30, 4)).astype(np.float32)
    gradient = rng.normal(size=(len(rows), 4)).astype(np.float32)
    np.testing.assert_allclose(batch.product(tf.constant(kernel)).numpy(), x @ kernel,
                               rtol=1e-5, atol=1e-5)  # fmt: skip
    by_parts = np.concatenate([part.numpy() for part in batch.kernel_gradient(gradient)])
    np.testing.assert_allclose(by_parts, x.T @ gradient, rtol=1e-5, atol=1e-5)
