"""Estimators fitted side by side (skreg._estimators.side_by_side): each learns what its
own fit learns; what cannot share a program is fitted alone."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from skreg import RegularizedMLPClassifier, RegularizedMLPRegressor
from skreg._estimators.side_by_side import fit_side_by_side
from skreg._backend.tensorflow import keras


@pytest.fixture(scope="module")
def data():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    return X[:400], y[:400], X[400:], y[400:]


def _classifier(**params):
    settings = {"hidden_layer_sizes": (8, 8), "epochs": 4, "batch_size": 64, "random_state": 0}
    return RegularizedMLPClassifier(**{**settings, **params})


def _assert_same_fit(side, alone):
    for name in alone.history_:
        np.testing.assert_allclose(side.history_[name], alone.history_[name],
                                   rtol=1e-4, atol=1e-6, err_msg=name)  # fmt: skip
    for a, b in zip(side.model_.get_weights(), alone.model_.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_networks_of_one_program_train_together_and_learn_what_their_own_fits_learn(data):
    X, y, X_val, y_val = data
    params = [{}, {"l2": 1e-2}, {"l1": 1e-3, "l2": 1e-3}, {"dropout": 0.5},
              {"learning_rate": 3e-3}, {"hidden_layer_sizes": (4, 4)}, {"batch_norm": True}]  # fmt: skip
    side = [_classifier(**p) for p in params]
    reported = []
    groups = fit_side_by_side(side, X, y, validation_data=(X_val, y_val),
                              report=lambda p, epoch, logs: reported.append((p, epoch, logs)))
    # The first five differ in numbers only; widths and batch norm change the program.
    assert [positions for positions, _ in groups] == [[0, 1, 2, 3, 4], [5], [6]]
    assert all(seconds > 0 for _, seconds in groups)
    # Each epoch of each network, the group's networks epoch by epoch.
    assert [(p, epoch) for p, epoch, _ in reported[:10]] == [
        (p, epoch) for epoch in (1, 2) for p in range(5)]  # fmt: skip
    assert len(reported) == 4 * len(params)
    for p, estimator in enumerate(side):
        alone = _classifier(**params[p]).fit(X, y, validation_data=(X_val, y_val))
        _assert_same_fit(estimator, alone)
        assert [logs["val_loss"] for q, _, logs in reported if q == p] == pytest.approx(
            estimator.history_["val_loss"])
        np.testing.assert_allclose(estimator.predict_proba(X_val), alone.predict_proba(X_val),
                                   rtol=1e-4, atol=1e-6)  # fmt: skip


def test_sparse_regressors_side_by_side():
    rng = np.random.RandomState(0)
    X = sp.random(300, 50, density=0.1, format="csr", random_state=rng, dtype=np.float32)
    X.data[:] = 1.0
    y = np.asarray(X.sum(axis=1)).ravel() + rng.rand(300)
    params = [{}, {"l2": 1e-2}, {"dropout": 0.3}]
    side = [RegularizedMLPRegressor(epochs=3, batch_size=32, random_state=1, **p) for p in params]
    groups = fit_side_by_side(side, X, y)
    assert [positions for positions, _ in groups] == [[0, 1, 2]]
    for p, estimator in enumerate(side):
        alone = RegularizedMLPRegressor(epochs=3, batch_size=32, random_state=1,
                                        **params[p]).fit(X, y)  # fmt: skip
        _assert_same_fit(estimator, alone)


def test_fits_that_need_their_own_are_fitted_alone_and_still_reported(data):
    X, y, X_val, y_val = data
    epochs_seen = []
    callback = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: epochs_seen.append(e))
    side = [_classifier(), _classifier(fit__callbacks=[callback]),
            _classifier(random_state=None), _classifier(early_stopping=True),
            _classifier(random_state=1), _classifier(class_weight={0: 1.0, 1: 5.0})]  # fmt: skip
    reported = []
    groups = fit_side_by_side(side, X, y, validation_data=(X_val, y_val),
                              report=lambda p, epoch, logs: reported.append(p))
    # random_state 0 and 1 draw other batches: two groups of one; class
    # weights are row weights of the network's own.
    assert sorted(positions for positions, _ in groups) == [[0], [1], [2], [3], [4], [5]]
    assert epochs_seen == [0, 1, 2, 3]
    assert sorted(set(reported)) == [0, 1, 2, 3, 4, 5]
    weighted = _classifier(class_weight={0: 1.0, 1: 5.0}).fit(X, y, validation_data=(X_val, y_val))
    _assert_same_fit(side[5], weighted)
    assert all(hasattr(estimator, "model_") for estimator in side)


def test_a_failing_fit_alone_leaves_the_others_as_they_were(data):
    X, y, _, _ = data
    side = [_classifier(l2=1e-3), _classifier(early_stopping=True, validation_fraction=2.0)]
    with pytest.raises(ValueError, match="validation_fraction"):
        fit_side_by_side(side, X, y)
    assert not hasattr(side[0], "model_") and not hasattr(side[1], "model_")


def test_a_failing_fit_leaves_every_estimator_as_it_was(data):
    X, y, _, _ = data
    fitted = _classifier().fit(X, y)
    weights = [w.copy() for w in fitted.model_.get_weights()]
    side = [fitted, _classifier(l2=1e-3), _classifier(learning_rate=1e30, optimizer="sgd")]
    with pytest.raises(ValueError, match="diverged"):
        fit_side_by_side(side, X * 1e6, y)
    for a, b in zip(fitted.model_.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    assert not hasattr(side[1], "model_") and not hasattr(side[2], "model_")
