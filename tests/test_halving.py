"""Sampled candidates and successive halving in the CV estimators
(skreg._search.schedule and the rungs of skreg.search)."""

import warnings

import numpy as np
import pytest
from scipy.stats import loguniform, uniform
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import ParameterSampler
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from skreg import RegularizedMLPClassifierCV
from skreg._search.schedule import halving_rungs, survivors

DISTRIBUTIONS = {"l2": loguniform(1e-5, 1e-1), "dropout": uniform(0, 0.5)}


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X)[:300], y[:300]


@pytest.mark.parametrize(
    "n_candidates, epochs, factor, min_epochs, expected",
    [
        # The workload: the last rung ends at the budget.
        (27, 20, 3, "auto", [(27, 2), (9, 6), (3, 20)]),
        # scikit-learn's rungs when the first has 1 epoch.
        (27, 20, 3, 1, [(27, 1), (9, 3), (3, 9)]),
        # Epochs run out before the candidates: fewer rungs, several at the end.
        (81, 8, 3, "auto", [(81, 2), (27, 8)]),
        (10, 12, 2, "auto", [(10, 1), (5, 3), (3, 6), (2, 12)]),
        (4, 6, 4, 2, [(4, 2)]),
    ],
)
def test_rungs_as_data(n_candidates, epochs, factor, min_epochs, expected):
    rungs = halving_rungs(n_candidates, epochs, factor=factor, min_epochs=min_epochs)
    assert [(r.n_candidates, r.epochs) for r in rungs] == expected
    assert [r.number for r in rungs] == list(range(len(rungs)))


@pytest.mark.parametrize("n_candidates, max_epochs, min_epochs", [(27, 3, 1), (20, 4, 2),
                                                                  (9, 9, 1), (30, 12, 4)])
def test_aggressive_elimination_gives_scikit_learn_s_rungs(n_candidates, max_epochs, min_epochs):
    """The rungs of HalvingGridSearchCV(aggressive_elimination=True) with the
    epochs as the resource (a cheap estimator stands in for the network)."""
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import HalvingGridSearchCV

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    theirs = HalvingGridSearchCV(
        LogisticRegression(), {"C": np.logspace(-3, 3, n_candidates)}, factor=3,
        resource="max_iter", min_resources=min_epochs, max_resources=max_epochs,
        aggressive_elimination=True, cv=2,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LogisticRegression's ConvergenceWarning
        theirs.fit(X, y)
    rungs = halving_rungs(n_candidates, max_epochs, factor=3, min_epochs=min_epochs,
                          aggressive_elimination=True)  # fmt: skip
    assert [r.n_candidates for r in rungs] == theirs.n_candidates_
    assert [r.epochs for r in rungs] == theirs.n_resources_


def test_aggressive_elimination_prunes_again_without_training(cancer):
    X, y = cancer
    search = RegularizedMLPClassifierCV(
        param_distributions=DISTRIBUTIONS, n_iter=9, factor=3, min_epochs=1, epochs=3, cv=2,
        aggressive_elimination=True, random_state=0, refit=False,
    ).fit(X, y)  # fmt: skip
    assert search.n_candidates_ == [9, 3, 1] and search.n_resources_ == [1, 1, 3]
    results = search.cv_results_
    first, second = results["iter"] == 0, results["iter"] == 1
    # The repeated rung trains nothing: its rows keep their first-rung scores.
    by_params = {repr(p): score for p, score, i in zip(results["params"],
                 results["mean_test_score"], results["iter"]) if i == 0}  # fmt: skip
    for params, score in zip(np.asarray(results["params"])[second],
                             results["mean_test_score"][second]):  # fmt: skip
        assert by_params[repr(params)] == score
    assert first.sum() == 9 and second.sum() == 3


def test_survivors_are_the_best_in_their_order_nan_last_ties_to_the_first():
    assert survivors([4, 7, 9, 2], [0.5, 0.9, 0.7, 0.1], 2) == [7, 9]
    assert survivors([0, 1, 2], [np.nan, 0.2, 0.2], 3) == [1]
    assert survivors([0, 1, 2, 3, 4], [0.3, np.nan, 0.3, 0.1, 0.3], 2) == [0, 2, 4]


def test_sampled_candidates_as_randomized_search_draws_them(cancer):
    X, y = cancer
    search = RegularizedMLPClassifierCV(param_distributions=DISTRIBUTIONS, n_iter=5, cv=2,
                                        epochs=2, random_state=3).fit(X, y)  # fmt: skip
    expected = list(ParameterSampler(DISTRIBUTIONS, 5, random_state=3))
    assert search.cv_results_["params"] == expected
    assert search.test_score_curves_.shape == (5, 2)
    assert "iter" not in search.cv_results_  # without halving: RandomizedSearchCV's table
    assert search.best_params_ == expected[search.best_index_]


def test_halving_keeps_training_the_survivors_as_the_full_search_trains_them(cancer):
    """Pruning changes nothing for the survivors: their curves are those of
    the full search at the same epochs, and the others stop at their rung."""
    X, y = cancer
    kwargs = dict(param_distributions=DISTRIBUTIONS, n_iter=9, cv=3, epochs=9, random_state=0,
                  batch_size=32)  # fmt: skip
    full = RegularizedMLPClassifierCV(**kwargs).fit(X, y)
    halving = RegularizedMLPClassifierCV(factor=3, **kwargs).fit(X, y)
    assert halving.n_candidates_ == [9, 3, 1] and halving.n_resources_ == [1, 3, 9]
    trained = np.isfinite(halving.test_loss_curves_).sum(axis=1)
    assert sorted(trained) == [1] * 6 + [3] * 2 + [9]
    assert np.isnan(halving.test_loss_curves_[trained == 1, 1:]).all()
    mask = np.isfinite(halving.test_loss_curves_)
    np.testing.assert_allclose(halving.test_loss_curves_[mask], full.test_loss_curves_[mask],
                               rtol=1e-4, atol=1e-6)  # fmt: skip
    np.testing.assert_allclose(halving.train_loss_curves_[mask], full.train_loss_curves_[mask],
                               rtol=1e-4, atol=1e-6)  # fmt: skip
    # Each rung's survivors are the best of the rung before.
    results = halving.cv_results_

    def without_epochs(rows):
        return sorted(str({k: v for k, v in results["params"][i].items() if k != "epochs"})
                      for i in rows)  # fmt: skip

    for rung in (0, 1):
        rows = np.flatnonzero(results["iter"] == rung)
        survived = np.flatnonzero(results["iter"] == rung + 1)
        best = rows[np.argsort(-results["mean_test_score"][rows], kind="stable")]
        assert without_epochs(best[: len(survived)]) == without_epochs(survived)


def test_halving_under_a_memory_budget_of_one_tower_per_group(cancer):
    """Groups cut under the budget are pruned group by group (the empty ones
    let go): the same curves as one group per fold."""
    X, y = cancer
    kwargs = dict(param_distributions=DISTRIBUTIONS, n_iter=6, cv=2, epochs=4, factor=2,
                  random_state=0, refit=False)  # fmt: skip
    together = RegularizedMLPClassifierCV(**kwargs).fit(X, y)
    apart = RegularizedMLPClassifierCV(**kwargs, memory_budget=1e-6).fit(X, y)
    assert apart.n_candidates_ == together.n_candidates_ == [6, 3, 2]
    np.testing.assert_allclose(apart.test_loss_curves_, together.test_loss_curves_, rtol=1e-4,
                               atol=1e-6)  # fmt: skip
    assert apart.cv_results_["params"] == together.cv_results_["params"]


def test_halving_results_as_scikit_learn_halving_gives_them(cancer):
    pd = pytest.importorskip("pandas")
    X, y = cancer
    search = RegularizedMLPClassifierCV(param_grid={"l2": [0.0, 1e-4, 1e-3, 1e-2, 1e-1]},
                                        factor=2, cv=2, epochs=8, random_state=0)  # fmt: skip
    search.fit(X, y)
    table = pd.DataFrame(search.cv_results_)
    assert search.n_iterations_ == 3 and search.n_candidates_ == [5, 3, 2]
    assert search.n_resources_ == [2, 4, 8] and search.n_remaining_candidates_ == 2
    assert (search.min_resources_, search.max_resources_) == (2, 8)
    # As scikit-learn's: 1 + floor(log_2(5)) rungs to bring 5 down to one,
    # 1 + log_2(8 / 2) that the epochs allow.
    assert (search.n_required_iterations_, search.n_possible_iterations_) == (3, 3)
    assert len(table) == 10
    assert list(table["iter"]) == [0] * 5 + [1] * 3 + [2] * 2
    assert list(table["n_resources"]) == [2] * 5 + [4] * 3 + [8] * 2
    # Each row's params carry the epochs it was scored at; the refit trains them.
    assert [p["epochs"] for p in table["params"]] == list(table["n_resources"])
    last = table[table["iter"] == 2]
    assert search.best_index_ == last["mean_test_score"].idxmax()
    assert search.best_estimator_.epochs == 8
    assert search.best_estimator_.l2 == search.best_params_["l2"]
    splits = table[["split0_test_score", "split1_test_score"]].to_numpy()
    np.testing.assert_allclose(table["mean_test_score"], splits.mean(axis=1))
    assert table["rank_test_score"].min() == 1


def test_halving_with_select_epochs_scores_each_row_at_its_best_epoch(cancer):
    X, y = cancer
    search = RegularizedMLPClassifierCV(param_grid={"l2": [0.0, 1e-3, 1e-1]}, factor=3, cv=2,
                                        epochs=6, select_epochs=True, random_state=0)  # fmt: skip
    search.fit(X, y)
    results = search.cv_results_
    for params, n_resources in zip(results["params"], results["n_resources"]):
        assert 1 <= params["epochs"] <= n_resources
    assert search.best_estimator_.epochs == search.best_params_["epochs"]


def test_halving_one_fit_at_a_time_goes_on_training_the_survivors(cancer):
    """Settings the towers do not cover (here a Keras callback) search fit
    by fit: a survivor goes on from its network (warm start)."""
    from keras.callbacks import Callback

    class Epochs(Callback):
        def __init__(self):
            super().__init__()
            self.count = 0

        def on_epoch_end(self, epoch, logs=None):
            self.count += 1

    X, y = cancer
    counter = Epochs()
    search = RegularizedMLPClassifierCV(param_grid={"l2": [0.0, 1e-3, 1e-2]}, factor=3, cv=2,
                                        epochs=3, random_state=0, refit=False,
                                        fit__callbacks=[counter])  # fmt: skip
    search.fit(X, y)
    assert search.n_candidates_ == [3, 1] and search.n_resources_ == [1, 3]
    # 3 candidates x 2 folds x 1 epoch, then the survivor's 2 more on each fold.
    assert counter.count == 3 * 2 * 1 + 1 * 2 * 2
    trained = np.isfinite(search.test_score_curves_).sum(axis=1)
    assert sorted(trained) == [1, 1, 3]


def test_halving_prints_a_line_per_rung(cancer, capsys):
    X, y = cancer
    RegularizedMLPClassifierCV(param_grid={"l2": [0.0, 1e-3, 1e-2]}, factor=3, cv=2, epochs=3,
                               random_state=0, verbose=1, refit=False).fit(X, y)  # fmt: skip
    lines = [line for line in capsys.readouterr().out.splitlines() if "rung" in line]
    assert len(lines) == 2
    assert lines[0].startswith("[RegularizedMLPClassifierCV] rung 1/2: 3 candidates trained "
                               "to epoch 1")  # fmt: skip
    assert "best mean held-out score" in lines[1] and "l2=" in lines[1]


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"param_grid": {"l2": [0.0]}, "param_distributions": {"l2": [0.0]}}, ValueError,
         "exclusive"),
        ({"param_distributions": {"l2": 0.1}}, TypeError, "scipy.stats distribution"),
        ({"param_distributions": {"l3": [0.1]}}, ValueError, "Did you mean 'l2'"),
        ({"param_distributions": {"epochs": [2, 3]}}, ValueError, "select_epochs"),
        ({"factor": 1}, InvalidParameterError, "factor"),
        ({"n_iter": 0}, InvalidParameterError, "n_iter"),
        ({"min_epochs": "exhaust"}, InvalidParameterError, "min_epochs"),
        ({"factor": 2, "min_epochs": 5}, ValueError, "min_epochs=5 is more than epochs=3"),
    ],
)  # fmt: skip
def test_clear_errors(cancer, params, error, match):
    X, y = cancer
    with pytest.raises(error, match=match):
        RegularizedMLPClassifierCV(**params, epochs=3, cv=2).fit(X, y)
