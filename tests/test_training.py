"""The traced training program (skreg._training) against Keras' Model.fit."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_classification, make_regression
from sklearn.model_selection import GridSearchCV

from skreg import RegularizedMLPClassifier, RegularizedMLPRegressor, clear_training_cache
from skreg._training import plan_training, training_cache_info


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=120, n_features=8, n_informative=5, n_classes=3,
                               random_state=0)  # fmt: skip
    return X.astype(np.float32), y


def _with_keras(estimator):
    """The same estimator trained by Model.fit: a routed fit option forces it."""
    return estimator.set_params(fit__callbacks=[])


def _weights(estimator):
    return [w.numpy() for w in estimator.model_.weights]


# One batch (batch_size = n_samples) and no dropout: both trainers see the same
# numbers, so they must agree to float32 rounding, update after update.
EQUIVALENT_SETTINGS = [
    dict(),
    dict(l2=1e-2, l1=1e-3),
    dict(l1=1e-3),
    dict(optimizer="adam", learning_rate=0.01),
    dict(optimizer="sgd", learning_rate=0.05),
    dict(optimizer="sgd", learning_rate=0.05, optimizer__momentum=0.9,
         optimizer__nesterov=True),  # fmt: skip
    dict(optimizer="rmsprop", optimizer__momentum=0.5, optimizer__rho=0.8),
    dict(batch_norm=True, activation="tanh"),
    dict(hidden_layer_sizes=(70,)),  # the wide sparse kernel (segment sums)
]


@pytest.mark.parametrize("settings", EQUIVALENT_SETTINGS)
@pytest.mark.parametrize("sparse", [False, True])
def test_one_call_training_equals_keras_fit(data, settings, sparse):
    X, y = data
    if sparse:
        X = sp.csr_matrix(np.where(X > 0, X, 0))
    params = dict(batch_size=len(y), epochs=8, random_state=0, **settings)
    ours = RegularizedMLPClassifier(**params).fit(X, y)
    keras_fit = _with_keras(RegularizedMLPClassifier(**params)).fit(X, y)
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(ours.history_[key], keras_fit.history_[key],
                                   rtol=1e-4, atol=1e-6)  # fmt: skip
    for a, b in zip(_weights(ours), _weights(keras_fit)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    assert ours.model_.optimizer.iterations.numpy() == keras_fit.model_.optimizer.iterations.numpy()


@pytest.mark.parametrize("loss", ["squared_error", "absolute_error", "huber", "poisson"])
def test_regression_losses_and_validation_equal_keras_fit(loss):
    X, y = make_regression(n_samples=100, n_features=6, n_targets=2, noise=5, random_state=0)
    y = y / 100
    if loss == "poisson":  # counts
        y = np.round(np.exp(y))
    X_val, y_val = X[:30], y[:30] + 0.1
    params = dict(loss=loss, batch_size=100, epochs=6, learning_rate=0.01, l2=1e-3,
                  random_state=0)  # fmt: skip
    ours = RegularizedMLPRegressor(**params).fit(X, y, validation_data=(X_val, y_val))
    keras_fit = _with_keras(RegularizedMLPRegressor(**params)).fit(
        X, y, validation_data=(X_val, y_val)
    )
    assert set(ours.history_) == set(keras_fit.history_) == {"loss", "val_loss"}
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(ours.history_[key], keras_fit.history_[key], rtol=1e-4)


def test_sparse_training_with_dense_validation_data(data):
    X, y = data
    X_sparse = sp.csr_matrix(np.where(X > 0, X, 0))
    params = dict(batch_size=len(y), epochs=4, random_state=0)
    ours = RegularizedMLPClassifier(**params).fit(X_sparse, y, validation_data=(X[:30], y[:30]))
    keras_fit = _with_keras(RegularizedMLPClassifier(**params)).fit(
        X_sparse, y, validation_data=(X[:30], y[:30])
    )
    np.testing.assert_allclose(ours.history_["val_loss"], keras_fit.history_["val_loss"],
                               rtol=1e-4)  # fmt: skip


def test_early_stopping_stops_and_restores_as_keras_does(data):
    X, y = data
    # A large learning rate makes the validation loss turn up early.
    params = dict(batch_size=len(y), epochs=60, learning_rate=0.05, early_stopping=True,
                  n_iter_no_change=3, random_state=0)  # fmt: skip
    ours = RegularizedMLPClassifier(**params).fit(X, y, validation_data=(X[:40], y[:40]))
    keras_fit = _with_keras(RegularizedMLPClassifier(**params)).fit(
        X, y, validation_data=(X[:40], y[:40])
    )
    assert ours.n_iter_ == keras_fit.n_iter_ < 60
    assert ours.best_epoch_ == keras_fit.best_epoch_ < ours.n_iter_
    np.testing.assert_allclose(ours.history_["val_loss"], keras_fit.history_["val_loss"],
                               rtol=1e-4)  # fmt: skip
    for a, b in zip(_weights(ours), _weights(keras_fit)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_sample_weights_enter_the_loss_not_the_accuracy_as_in_keras(data):
    X, y = data
    weight = np.linspace(0.1, 2.0, len(y))
    params = dict(batch_size=len(y), epochs=5, random_state=0, class_weight={0: 2.0})
    ours = RegularizedMLPClassifier(**params).fit(X, y, sample_weight=weight)
    keras_fit = _with_keras(RegularizedMLPClassifier(**params)).fit(X, y, sample_weight=weight)
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(ours.history_[key], keras_fit.history_[key], rtol=1e-4)


def test_a_search_over_the_numbers_traces_one_program(data):
    X, y = data
    clear_training_cache()
    GridSearchCV(
        RegularizedMLPClassifier(epochs=3, random_state=0),
        {"l2": [0.0, 1e-3], "dropout": [0.0, 0.3], "learning_rate": [1e-3, 1e-2]},
        cv=2,
    ).fit(X, y)
    info = training_cache_info()
    # 8 candidates x 2 folds + the refit, all one structure.
    assert info == {"hits": 16, "misses": 1, "size": 1}
    clear_training_cache()
    assert training_cache_info() == {"hits": 0, "misses": 0, "size": 0}


def test_results_are_the_same_from_a_fresh_and_a_reused_program(data):
    X, y = data
    params = dict(dropout=0.3, input_dropout=0.2, l2=1e-3, epochs=4, random_state=3)
    clear_training_cache()
    fresh = RegularizedMLPClassifier(**params).fit(X, y)
    reused = RegularizedMLPClassifier(**params).fit(X, y)
    assert training_cache_info()["hits"] == 1
    for a, b in zip(_weights(fresh), _weights(reused)):
        np.testing.assert_array_equal(a, b)
    assert fresh.history_ == reused.history_


def test_what_the_program_does_not_do_is_left_to_keras(data):
    X, y = data
    clf = RegularizedMLPClassifier(epochs=1, random_state=0).fit(X, y)
    assert plan_training(clf.model_, sparse=False, with_accuracy=True)
    images = RegularizedMLPClassifier(epochs=1, image_shape=(2, 4), image_flip=True,
                                      random_state=0).fit(X, y)  # fmt: skip
    assert plan_training(images.model_, sparse=False, with_accuracy=True) is None
    clipped = RegularizedMLPClassifier(epochs=1, optimizer__clipnorm=1.0, random_state=0).fit(X, y)
    assert plan_training(clipped.model_, sparse=False, with_accuracy=True) is None


def test_the_cache_keeps_the_most_recently_used_programs(data, monkeypatch):
    from skreg import _training

    X, y = data
    monkeypatch.setattr(_training, "_CACHE_SIZE", 2)
    clear_training_cache()
    for depth in (1, 2, 3, 1):  # three structures, then the first again
        RegularizedMLPClassifier(hidden_layer_sizes=(4,) * depth, epochs=1).fit(X, y)
    # The first was evicted by the third, so its second fit traced it anew.
    assert training_cache_info() == {"hits": 0, "misses": 4, "size": 2}
    RegularizedMLPClassifier(hidden_layer_sizes=(9, 9, 9), epochs=1).fit(X, y)  # still there
    assert training_cache_info()["hits"] == 1
    clear_training_cache()


def test_a_width_change_reuses_the_program_of_the_same_depth(data):
    X, y = data
    clear_training_cache()
    for width in (4, 8, 32):
        RegularizedMLPClassifier(hidden_layer_sizes=(width, width), epochs=1).fit(X, y)
    assert training_cache_info() == {"hits": 2, "misses": 1, "size": 1}


def test_keras_continues_a_warm_start_from_the_programs_optimizer_state(data):
    X, y = data
    params = dict(epochs=3, batch_size=len(y), warm_start=True, random_state=0)
    ours = RegularizedMLPClassifier(**params).fit(X, y).fit(X, y)
    mixed = RegularizedMLPClassifier(**params).fit(X, y)
    _with_keras(mixed).fit(X, y)  # the second fit through Model.fit
    assert mixed.model_.optimizer.iterations.numpy() == ours.model_.optimizer.iterations.numpy()
    np.testing.assert_allclose(mixed.history_["loss"], ours.history_["loss"], rtol=1e-4)
    np.testing.assert_allclose(mixed.decision_function(X), ours.decision_function(X),
                               rtol=1e-4, atol=1e-5)  # fmt: skip
