"""Fold ensembles: a CV search's fold networks kept as its final model, and
FoldEnsembleClassifier / FoldEnsembleRegressor on their own."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.preprocessing import StandardScaler

from skreg import (
    FoldEnsembleClassifier,
    FoldEnsembleRegressor,
    RegularizedMLPClassifier,
    RegularizedMLPClassifierCV,
    RegularizedMLPRegressor,
    RegularizedMLPRegressorCV,
)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X)[:600], y[:600]


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def _count_fits(monkeypatch, cls):
    calls = []
    fit = cls.fit

    def counted(self, *args, **kwargs):
        calls.append(1)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(cls, "fit", counted)
    return calls


@pytest.mark.parametrize("grid", [{"l2": [0.0, 1e-2]},
                                  {"hidden_layer_sizes": [(8,), (16,)], "dropout": [0.0, 0.3]}],
                         ids=["penalties", "structures"])  # fmt: skip
def test_the_fold_networks_are_what_each_fold_s_fit_learns(digits, monkeypatch, grid):
    """Each member is the best candidate's tower on its fold, kept as a
    network of its own: the same predictions as the plain fit of that
    candidate on the fold's training rows. No refit is trained."""
    X, y = digits
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    fits = _count_fits(monkeypatch, RegularizedMLPClassifier)
    search = RegularizedMLPClassifierCV(param_grid=grid, cv=folds, epochs=4, random_state=0,
                                        fold_ensemble=True).fit(X, y)  # fmt: skip
    assert fits == []
    ensemble = search.best_estimator_
    assert isinstance(ensemble, FoldEnsembleClassifier) and len(ensemble.estimators_) == 3
    monkeypatch.undo()
    for member, (train, _) in zip(ensemble.estimators_, folds.split(X, y)):
        own = RegularizedMLPClassifier(epochs=4, random_state=0, **search.best_params_)
        own.fit(X[train], y[train])
        np.testing.assert_allclose(member.predict_proba(X), own.predict_proba(X), atol=1e-4)
        assert member.n_iter_ == 4 and len(member.loss_curve_) == 4
        np.testing.assert_allclose(member.loss_curve_, own.loss_curve_, rtol=1e-4)
    proba = np.mean([member.predict_proba(X) for member in ensemble.estimators_], axis=0)
    np.testing.assert_allclose(search.predict_proba(X), proba)
    np.testing.assert_array_equal(search.predict(X), search.classes_[proba.argmax(axis=1)])
    assert search.score(X, y) == np.mean(search.predict(X) == y)
    restored = pickle.loads(pickle.dumps(search))
    np.testing.assert_array_equal(restored.predict_proba(X), search.predict_proba(X))


def test_a_fit_by_fit_search_keeps_its_fits_as_they_would_be_alone(digits):
    X, y = digits
    search = RegularizedMLPClassifierCV(param_grid={"l2": [0.0, 1e-2]}, cv=KFold(2),
                                        epochs=2, optimizer="adadelta", random_state=0,
                                        fold_ensemble=True).fit(X, y)  # fmt: skip
    assert search.training_path_ == "fit by fit"
    for member in search.best_estimator_.estimators_:
        params = member.get_params()
        assert "fit__callbacks" not in params  # the search's recorder is gone
        assert params["epochs"] == 2 and params["warm_start"] is False
    pickle.loads(pickle.dumps(search))


def test_the_regressor_averages_its_fold_networks(diabetes):
    X, y = diabetes
    search = RegularizedMLPRegressorCV(param_grid={"l2": [0.0, 1e-2]}, cv=3, epochs=3,
                                       random_state=0, fold_ensemble=True).fit(X, y)  # fmt: skip
    ensemble = search.best_estimator_
    assert isinstance(ensemble, FoldEnsembleRegressor)
    np.testing.assert_allclose(search.predict(X),
                               np.mean([m.predict(X) for m in ensemble.estimators_], axis=0))
    assert np.isfinite(search.score(X, y))


@pytest.mark.parametrize("params, match", [
    ({"refit": False}, "refit=False"),
    ({"select_epochs": True}, "select_epochs=True"),
])  # fmt: skip
def test_fold_ensemble_clear_errors(digits, params, match):
    X, y = digits
    with pytest.raises(ValueError, match=match):
        RegularizedMLPClassifierCV(fold_ensemble=True, epochs=1, cv=2, **params).fit(X, y)


def test_the_ensemble_fits_on_its_own_and_places_missing_classes(digits):
    """Fitted on its own (as cross_validate would, after clone), a member
    per fold; a fold without a class counts 0 for it."""
    X, y = digits
    y = y.copy()
    y[y == 9] = 8
    y[:3] = 9  # class 9 only in the first rows: KFold(3)'s first fold holds it out
    ensemble = FoldEnsembleClassifier(RegularizedMLPClassifier(epochs=2, random_state=0),
                                      cv=KFold(3))  # fmt: skip
    clone(ensemble).fit(X, y)
    ensemble.fit(X, y)
    assert [len(m.classes_) for m in ensemble.estimators_] == [9, 10, 10]
    np.testing.assert_array_equal(ensemble.classes_, np.arange(10))
    proba = ensemble.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    first = ensemble.estimators_[0].predict_proba(X)
    expected_9 = (0.0 + sum(m.predict_proba(X)[:, 9] for m in ensemble.estimators_[1:])) / 3
    np.testing.assert_allclose(proba[:, 9], expected_9, rtol=1e-6)
    np.testing.assert_allclose(proba[:, :9], (first + sum(
        m.predict_proba(X)[:, :9] for m in ensemble.estimators_[1:])) / 3, rtol=1e-6)
    np.testing.assert_array_equal(np.argmax(ensemble.decision_function(X), axis=1),
                                  ensemble.predict(X))  # fmt: skip


def test_binary_decision_function_agrees_with_predict():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    ensemble = FoldEnsembleClassifier(RegularizedMLPClassifier(epochs=2, random_state=0),
                                      cv=2).fit(X, y)  # fmt: skip
    scores = ensemble.decision_function(X)
    assert scores.shape == (len(y),)
    np.testing.assert_array_equal(ensemble.classes_[(scores > 0).astype(int)],
                                  ensemble.predict(X))  # fmt: skip
    regressor = FoldEnsembleRegressor(RegularizedMLPRegressor(epochs=2, random_state=0), cv=2)
    assert regressor.fit(X, y.astype(float)).predict(X).shape == (len(y),)
