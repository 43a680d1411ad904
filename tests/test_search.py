"""RegularizedMLPClassifierCV and RegularizedMLPRegressorCV: the search's API,
its results against GridSearchCV, and the one-fit-at-a-time path."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone, is_classifier
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.exceptions import FitFailedWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from skreg import (
    RegularizedMLPClassifier,
    RegularizedMLPClassifierCV,
    RegularizedMLPRegressorCV,
)
from skreg._engine.cache import clear_training_cache, training_cache_info


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


GRID = {"l2": [0.0, 1e-3, 1e-1]}


def test_results_as_grid_search_gives_them(cancer):
    pd = pytest.importorskip("pandas")
    X, y = cancer
    search = RegularizedMLPClassifierCV(param_grid=GRID, cv=3, epochs=5, random_state=0)
    search.fit(X, y)
    assert search.training_path_ == "program" and search.training_path_reason_ is None
    table = pd.DataFrame(search.cv_results_)
    assert len(table) == 3 and search.n_splits_ == 3
    for column in ("params", "param_l2", "split0_test_score", "split2_test_score",
                   "mean_test_score", "std_test_score", "rank_test_score", "mean_fit_time",
                   "std_fit_time", "mean_score_time", "std_score_time"):  # fmt: skip
        assert column in table
    splits = table[[f"split{i}_test_score" for i in range(3)]].to_numpy()
    np.testing.assert_allclose(table["mean_test_score"], splits.mean(axis=1))
    assert search.best_index_ == int(np.argmax(table["mean_test_score"]))
    assert search.best_params_ == table["params"][search.best_index_]
    assert search.best_score_ == table["mean_test_score"].max()
    assert table["rank_test_score"].min() == 1
    # The refit is a plain estimator with the best parameters.
    best = search.best_estimator_
    assert type(best) is RegularizedMLPClassifier
    assert best.l2 == search.best_params_["l2"] and best.epochs == 5
    np.testing.assert_array_equal(search.predict(X), best.predict(X))
    np.testing.assert_array_equal(search.predict_proba(X), best.predict_proba(X))
    np.testing.assert_array_equal(search.decision_function(X), best.decision_function(X))
    assert search.score(X, y) == best.score(X, y)
    np.testing.assert_array_equal(search.classes_, [0, 1])
    assert search.test_score_curves_.shape == search.test_loss_curves_.shape == (3, 5)
    assert search.train_loss_curves_.shape == (3, 5)
    # The last epoch of the curves is what cv_results_ reports.
    np.testing.assert_allclose(search.test_score_curves_[:, -1], table["mean_test_score"])


def test_held_out_scores_are_the_estimators_score(cancer):
    """Each split score is the accuracy on that fold's held-out rows of a
    network trained on its training rows; with epochs=1 and a big batch the
    curve is short, and a custom scorer gives the same numbers."""
    X, y = cancer
    kwargs = dict(param_grid={"l2": [0.0, 1e-2]}, cv=StratifiedKFold(3), epochs=3,
                  random_state=0, refit=False)  # fmt: skip
    default = RegularizedMLPClassifierCV(**kwargs).fit(X, y)
    scored = RegularizedMLPClassifierCV(**kwargs, scoring="accuracy").fit(X, y)
    custom = RegularizedMLPClassifierCV(
        **kwargs, scoring=lambda est, X, y: accuracy_score(y, est.predict(X))
    ).fit(X, y)
    for other in (scored, custom):
        np.testing.assert_allclose(
            other.cv_results_["mean_test_score"], default.cv_results_["mean_test_score"]
        )
        np.testing.assert_allclose(other.test_score_curves_, default.test_score_curves_)
    with pytest.raises(AttributeError, match="refit=False"):
        default.predict(X)


@pytest.mark.parametrize("settings", [{}, {"dropout": 0.3, "optimizer": "adam"}])
def test_same_answers_as_grid_search(cancer, settings):
    """Each network of the search learns what the same fit in a GridSearchCV
    over the base estimator learns (the same start, batches and dropout
    masks from the same random_state), so the fold scores agree: here to the
    last row; the tolerance of two rows a fold leaves room for float32
    rounding on other CPUs."""
    X, y = cancer
    grid = {"l2": [0.0, 1e-2, 1e-1]}
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    common = dict(epochs=8, random_state=5, **settings)
    ours = RegularizedMLPClassifierCV(param_grid=grid, cv=folds, refit=False, **common)
    theirs = GridSearchCV(RegularizedMLPClassifier(**common), grid, cv=folds, refit=False)
    ours, theirs = ours.fit(X, y).cv_results_, theirs.fit(X, y).cv_results_
    for i in range(3):
        np.testing.assert_allclose(ours[f"split{i}_test_score"], theirs[f"split{i}_test_score"],
                                   atol=2 / (len(y) // 3))  # fmt: skip
    assert ours["params"] == theirs["params"]


@pytest.mark.parametrize(
    "grid, settings",
    [
        ({"weight_decay": [None, 1e-2, 1e-1]}, {"optimizer": "adamw", "learning_rate": 0.01}),
        ({"max_norm": [None, 0.5, 0.1]}, {"dropout": 0.2, "learning_rate": 0.01}),
        # None after a number: no max-norm (once the first candidate's).
        ({"max_norm": [0.05, None]}, {"learning_rate": 0.05}),
        ({"hidden_noise": [0.0, 0.3, 1.0]}, {"dropout": 0.2, "learning_rate": 0.01}),
        ({"label_smoothing": [0.0, 0.1, 0.3]}, {"optimizer": "nadam"}),
        ({"l2": [0.0, 1e-2]}, {"optimizer": "sgd", "optimizer__clipnorm": 0.5,
                               "optimizer__momentum": 0.9, "optimizer__nesterov": True}),
    ],
)
def test_searches_over_the_modern_defences_run_in_the_towers(cancer, grid, settings):
    """Weight decay, max-norm, label smoothing and clipping train as towers
    (no fit-at-a-time fallback), each network as its GridSearchCV fit."""
    X, y = cancer
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    common = dict(epochs=6, random_state=5, **settings)
    ours = RegularizedMLPClassifierCV(param_grid=grid, cv=folds, refit=False, **common).fit(X, y)
    assert ours.training_path_ == "program", ours.training_path_reason_
    theirs = GridSearchCV(RegularizedMLPClassifier(**common), grid, cv=folds, refit=False)
    ours, theirs = ours.cv_results_, theirs.fit(X, y).cv_results_
    for i in range(3):
        np.testing.assert_allclose(ours[f"split{i}_test_score"], theirs[f"split{i}_test_score"],
                                   atol=2 / (len(y) // 3))  # fmt: skip


def test_groups_reach_the_splitter_as_in_grid_search(cancer):
    """GroupKFold keeps each group in one fold; the folds, and so the
    scores, are GridSearchCV's with the same groups."""
    X, y = cancer
    groups = np.arange(len(y)) % 7
    grid = {"l2": [0.0, 1e-2]}
    common = dict(epochs=4, random_state=0)
    ours = RegularizedMLPClassifierCV(param_grid=grid, cv=GroupKFold(3), refit=False, **common)
    ours.fit(X, y, groups=groups)
    theirs = GridSearchCV(RegularizedMLPClassifier(**common), grid, cv=GroupKFold(3),
                          refit=False).fit(X, y, groups=groups)  # fmt: skip
    for i in range(3):
        np.testing.assert_allclose(ours.cv_results_[f"split{i}_test_score"],
                                   theirs.cv_results_[f"split{i}_test_score"],
                                   atol=2 / (len(y) // 3))  # fmt: skip
    with pytest.raises(ValueError, match="groups"):
        RegularizedMLPClassifierCV(cv=GroupKFold(3), epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="groups has 3 labels"):
        RegularizedMLPClassifierCV(cv=GroupKFold(3), epochs=1).fit(X, y, groups=[0, 1, 2])


def test_select_epochs_picks_the_best_epoch_and_refits_that_many(cancer):
    X, y = cancer
    search = RegularizedMLPClassifierCV(param_grid=GRID, cv=3, epochs=8, select_epochs=True,
                                        random_state=0).fit(X, y)  # fmt: skip
    curves = search.test_score_curves_
    for i, params in enumerate(search.cv_results_["params"]):
        assert params["epochs"] == int(np.argmax(curves[i])) + 1
        assert search.cv_results_["mean_test_score"][i] == pytest.approx(curves[i].max())
    assert "param_epochs" in search.cv_results_
    assert search.best_estimator_.epochs == search.best_params_["epochs"]
    assert search.best_score_ == pytest.approx(curves.max())


def test_regressor_scores_r2_and_refits(diabetes):
    X, y = diabetes
    search = RegularizedMLPRegressorCV(param_grid={"l2": [0.0, 1e-2], "learning_rate": [3e-3]},
                                       cv=3, epochs=10, random_state=0)  # fmt: skip
    search.fit(X, y)
    assert not is_classifier(search)
    assert search.n_outputs_ == 1
    assert search.cv_results_["params"][0] == {"l2": 0.0, "learning_rate": 3e-3}
    assert -1 < search.best_score_ < 1
    assert search.score(X, y) == pytest.approx(r2_score(y, search.predict(X)))
    # Multi-output targets: R^2 averaged over the outputs, as scikit-learn's.
    two = np.column_stack([y, -y])
    search.set_params(refit=False).fit(X, two)
    assert search.n_outputs_ == 2 and np.isfinite(search.best_score_)


def test_poisson_regressor_search_scores_predictions_on_the_towers(diabetes):
    """loss="poisson": the towers train log-rates and score the R^2 of their
    exponentials, as scikit-learn's r2 scorer does through predict."""
    X, _ = diabetes
    counts = np.random.RandomState(0).poisson(np.exp(1.0 + 0.6 * X[:, 2] + 0.4 * X[:, 8]))
    kwargs = dict(param_grid={"l2": [0.0, 1e-2]}, cv=KFold(3), loss="poisson",
                  learning_rate=1e-2, epochs=20, random_state=0)  # fmt: skip
    search = RegularizedMLPRegressorCV(**kwargs).fit(X, counts)
    through_predict = RegularizedMLPRegressorCV(**kwargs, scoring="r2", refit=False)
    through_predict.fit(X, counts)
    np.testing.assert_allclose(search.test_score_curves_, through_predict.test_score_curves_,
                               rtol=1e-6)  # fmt: skip
    assert search.best_score_ > 0.3  # log-rates scored as counts would be far below 0
    assert search.predict(X).min() > 0
    assert search.score(X, counts) == pytest.approx(r2_score(counts, search.predict(X)))
    with pytest.raises(ValueError, match=r"loss='poisson' needs targets >= 0.*-1"):
        search.fit(X, counts - 1.0)


def test_classifier_uses_stratified_folds_and_sparse_input(cancer):
    X, y = cancer
    X_sparse = sp.csr_matrix(np.where(X > 0.5, 1.0, 0.0))
    before = X_sparse.copy()
    search = RegularizedMLPClassifierCV(param_grid=GRID, cv=3, epochs=3, random_state=0)
    search.fit(X_sparse, y)
    # The input is not changed, and scores are those of stratified folds.
    assert (X_sparse != before).nnz == 0
    stratified = RegularizedMLPClassifierCV(param_grid=GRID, cv=StratifiedKFold(3), epochs=3,
                                            random_state=0).fit(X_sparse, y)  # fmt: skip
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"],
                                  stratified.cv_results_["mean_test_score"])  # fmt: skip


def test_random_state_gives_identical_results(cancer):
    X, y = cancer
    search = RegularizedMLPClassifierCV(param_grid=GRID, cv=3, epochs=4, dropout=0.2,
                                        random_state=3, refit=False)  # fmt: skip
    first = search.fit(X, y).cv_results_["mean_test_score"]
    second = clone(search).fit(X, y).cv_results_["mean_test_score"]
    np.testing.assert_array_equal(first, second)


def test_one_trace_for_a_search_and_the_next(cancer):
    X, y = cancer
    search = RegularizedMLPClassifierCV(param_grid={"l2": [0.0, 1e-3], "dropout": [0.0, 0.3]},
                                        cv=3, epochs=2, random_state=0, refit=False)  # fmt: skip
    search.fit(X, y)
    before = training_cache_info()
    search.set_params(param_grid={"l2": [1e-4, 1e-2], "dropout": [0.1, 0.5]}).fit(X, y)
    after = training_cache_info()
    assert after["misses"] == before["misses"] and after["hits"] > before["hits"]


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dropout", [[0.0], [0.0, 0.3]])
def test_a_search_its_refit_and_a_plain_fit_share_one_program(cancer, sparse, dropout):
    """The refit (one network, with or without dropout) and a later plain
    fit of the same network run on the program the search's towers traced."""
    X, y = cancer
    if sparse:
        X = sp.csr_matrix(np.where(X > 0, X, 0.0))
    clear_training_cache()
    search = RegularizedMLPClassifierCV(param_grid={"l2": [0.0, 1e-3], "dropout": dropout},
                                        cv=2, epochs=2, random_state=0).fit(X, y)  # fmt: skip
    assert training_cache_info()["misses"] == 1
    RegularizedMLPClassifier(epochs=2, l1=1e-4, dropout=max(dropout),
                             random_state=0).fit(X, y)  # fmt: skip
    assert training_cache_info()["misses"] == 1
    assert search.best_estimator_.n_iter_ == 2


@pytest.mark.parametrize("sparse", [False, True])
def test_the_refit_trains_on_the_data_the_towers_took(cancer, sparse, monkeypatch):
    """The refit takes the data as the search's towers took it (the same
    matrix) instead of making it again, trains to the same bits as with its
    own, and the fitted search keeps no copy of it."""
    from skreg._engine import PreparedData
    from skreg._search.runs import TowerSearch

    X, y = cancer
    if sparse:
        X = sp.csr_matrix(np.where(X > 0, X, 0.0))
    taken = []
    tensors_for = PreparedData.tensors_for
    monkeypatch.setattr(PreparedData, "tensors_for",
                        lambda self, *a, **k: taken.append(tensors_for(self, *a, **k)) or taken[-1])
    kwargs = dict(param_grid={"l2": [0.0, 1e-3]}, cv=2, epochs=3, batch_size=64, random_state=0)
    handed = RegularizedMLPClassifierCV(**kwargs).fit(X, y)
    assert len(taken) == 1 and taken[0] is not None
    assert not hasattr(handed.best_estimator_, "_prepared_data")
    monkeypatch.setattr(TowerSearch, "prepared_data", lambda self: None)
    own = RegularizedMLPClassifierCV(**kwargs).fit(X, y)
    for a, b in zip(handed.best_estimator_.model_.weights, own.best_estimator_.model_.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_memory_budget_splits_the_towers_in_groups(cancer):
    """One network per group (a tiny budget) gives the same scores and
    curves as all together, dropout included (each network draws its own
    masks): groups are an implementation detail."""
    X, y = cancer
    kwargs = dict(param_grid={**GRID, "dropout": [0.0, 0.4]}, cv=3, epochs=3, random_state=0,
                  refit=False)  # fmt: skip
    together = RegularizedMLPClassifierCV(**kwargs).fit(X, y)
    one_by_one = RegularizedMLPClassifierCV(**kwargs, memory_budget=1e-6).fit(X, y)
    np.testing.assert_allclose(one_by_one.cv_results_["mean_test_score"],
                               together.cv_results_["mean_test_score"])  # fmt: skip
    np.testing.assert_allclose(one_by_one.test_loss_curves_, together.test_loss_curves_,
                               rtol=1e-4)  # fmt: skip


def test_verbose_search_reports_each_epoch_from_the_towers(cancer, capsys):
    """verbose=1 keeps the towers (one trace, no Keras fits: no progress
    bars) and prints a line per epoch and group; the results are those of
    the silent search."""
    X, y = cancer
    kwargs = dict(param_grid=GRID, cv=3, epochs=3, random_state=0, refit=False,
                  memory_budget=0.05)  # fmt: skip
    quiet = RegularizedMLPClassifierCV(**kwargs).fit(X, y)
    assert capsys.readouterr().out == ""
    before = training_cache_info()
    loud = RegularizedMLPClassifierCV(**kwargs, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert training_cache_info()["misses"] == before["misses"]  # the same program
    lines = out.splitlines()
    assert all(line.startswith("[RegularizedMLPClassifierCV] group ") for line in lines)
    n_groups = int(lines[0].split("/")[1].split(",")[0])
    assert n_groups > 1 and n_groups * 2 <= len(lines) <= n_groups * 3
    # Each group reports its first epoch, then every epoch or every few (two
    # groups may train at a time: their lines interleave).
    for number in range(1, n_groups + 1):
        epochs = [line.split("epoch ")[1].split(",")[0] for line in lines
                  if line.startswith(f"[RegularizedMLPClassifierCV] group {number}/")]  # fmt: skip
        assert epochs[0] == "1/3" and epochs[-1] == "3/3"
    assert all("best mean held-out score" in line and "l2=" in line for line in lines)
    np.testing.assert_allclose(loud.cv_results_["mean_test_score"],
                               quiet.cv_results_["mean_test_score"])  # fmt: skip
    np.testing.assert_allclose(loud.test_loss_curves_, quiet.test_loss_curves_, rtol=1e-5)


def test_settings_the_towers_do_not_cover_are_searched_fit_by_fit(cancer):
    """Adadelta is not in the tower program: the search runs separate fits
    (with the same folds and results layout) instead."""
    X, y = cancer
    search = RegularizedMLPClassifierCV(param_grid={"l2": [0.0, 1e-2]}, cv=KFold(2), epochs=2,
                                        optimizer="adadelta", random_state=0)  # fmt: skip
    search.fit(X, y)
    assert search.test_score_curves_.shape == (2, 2)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    # It says so, and why (the default search is on the program).
    assert search.training_path_ == "fit by fit"
    assert search.training_path_reason_ == "the optimizer Adadelta"
    assert search.best_estimator_.training_path_ == "keras"
    grid = GridSearchCV(RegularizedMLPClassifier(optimizer="adadelta", epochs=2, random_state=0),
                        {"l2": [0.0, 1e-2]}, cv=KFold(2)).fit(X, y)  # fmt: skip
    # The same fits, so the same scores (Keras' path both times).
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               grid.cv_results_["mean_test_score"])  # fmt: skip


@pytest.mark.parametrize("weighting", ["class_weight", "sample_weight"])
def test_weights_reach_every_network(cancer, weighting):
    """All the weight on class 1: each network learns to answer 1, so each
    split's accuracy is the share of class 1 in its held-out fold."""
    X, y = cancer
    folds = StratifiedKFold(3)
    search = RegularizedMLPClassifierCV(
        param_grid={"l2": [0.0, 1e-3]}, cv=folds, epochs=10, learning_rate=1e-2,
        random_state=0, refit=False,
    )
    if weighting == "class_weight":
        search.set_params(class_weight={0: 0.0, 1: 1.0}).fit(X, y)
    else:
        search.fit(X, y, sample_weight=(y == 1).astype(float))
    shares = [np.mean(y[test] == 1) for _, test in folds.split(X, y)]
    for i, share in enumerate(shares):
        np.testing.assert_allclose(search.cv_results_[f"split{i}_test_score"], share)


def test_diverging_candidates_are_reported_and_rank_last(cancer):
    X, y = cancer
    search = RegularizedMLPClassifierCV(param_grid={"learning_rate": [1e-3, 1e30]}, cv=3,
                                        epochs=3, random_state=0, refit=False)  # fmt: skip
    with pytest.warns(FitFailedWarning, match="3 of 6 networks diverged"):
        search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores[0]) and np.isnan(scores[1])
    assert search.best_params_ == {"learning_rate": 1e-3}
    assert list(search.cv_results_["rank_test_score"]) == [1, 2]


@pytest.mark.parametrize("one_at_a_time", [False, True])
def test_error_score_scores_or_raises_failed_fits_as_grid_search(cancer, one_at_a_time):
    """error_score as GridSearchCV's: the failed networks' fold scores, or
    "raise"; the same in the towers and one fit at a time (Adadelta)."""
    X, y = cancer
    common = dict(param_grid={"learning_rate": [1e-3, 1e30]}, cv=3, epochs=3, random_state=0,
                  refit=False, **({"optimizer": "adadelta"} if one_at_a_time else {}))
    search = RegularizedMLPClassifierCV(error_score=-1.0, **common)
    with pytest.warns(FitFailedWarning, match="error_score=-1.0"):
        search.fit(X, y)
    assert search.training_path_ == ("fit by fit" if one_at_a_time else "program")
    assert [search.cv_results_[f"split{i}_test_score"][1] for i in range(3)] == [-1.0] * 3
    assert search.cv_results_["mean_test_score"][1] == -1.0
    assert list(search.cv_results_["rank_test_score"]) == [1, 2]
    with pytest.raises(ValueError, match="diverged"):
        RegularizedMLPClassifierCV(error_score="raise", **common).fit(X, y)


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"param_grid": {"epochs": [5, 10]}}, ValueError, "epochs.*select_epochs=True"),
        ({"param_grid": {"warm_start": [True]}}, ValueError, "start afresh"),
        ({"param_grid": {"hidden_layer_sizes": [(8,), (8, 0)]}}, ValueError, "positive integ"),
        ({"param_grid": {"l3": [0.1]}}, ValueError, "Did you mean 'l2'"),
        ({"param_grid": {"l2": [-1.0]}}, InvalidParameterError, "l2"),
        ({"param_grid": {"l2": []}}, ValueError, "non-empty sequence"),
        ({"early_stopping": True}, ValueError, "select_epochs=True"),
        ({"memory_budget": 0}, InvalidParameterError, "memory_budget"),
        ({"hidden_layer_sizes": (16, 0)}, ValueError, "positive integers"),
        ({"scoring": "accuracyy"}, InvalidParameterError, "scoring"),
    ],
)
def test_clear_errors(cancer, params, error, match):
    X, y = cancer
    with pytest.raises(error, match=match):
        RegularizedMLPClassifierCV(**params, epochs=1).fit(X, y)


def test_input_dropout_rates_train_on_towers_of_their_own(cancer, monkeypatch):
    """A group's towers share their batches' input changes: one input
    dropout rate for every candidate is one run on the towers (and its
    refit on their program); rates that differ are runs of their own,
    still on the towers, with GridSearchCV's scores."""
    from skreg._search import runs as _search_runs

    X, y = cancer
    kwargs = dict(cv=2, epochs=3, random_state=0, input_dropout=0.2)
    monkeypatch.setattr(_search_runs.OneFitAtATime, "start", None)  # not called
    clear_training_cache()
    search = RegularizedMLPClassifierCV(param_grid={"l2": [0.0, 1e-2]}, **kwargs).fit(X, y)
    assert training_cache_info()["misses"] == 1
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    grid = {"input_dropout": [0.0, 0.2], "l2": [0.0, 1e-2]}
    varied = RegularizedMLPClassifierCV(param_grid=grid, **kwargs).fit(X, y)
    assert varied.training_path_ == "program"
    expected = GridSearchCV(RegularizedMLPClassifier(epochs=3, random_state=0), grid,
                            cv=2).fit(X, y)  # fmt: skip
    np.testing.assert_allclose(varied.cv_results_["mean_test_score"],
                               expected.cv_results_["mean_test_score"], atol=1e-6)  # fmt: skip


# -- the reporting of scikit-learn's searches ------------------------------------------


@pytest.mark.parametrize("optimizer", ["rmsprop", "adadelta"], ids=["towers", "fit-by-fit"])
def test_several_metrics_and_train_scores_as_grid_search(cancer, optimizer):
    """scoring as a list with refit naming one, return_train_score: the
    columns and values GridSearchCV gives, on the towers and fit by fit."""
    X, y = cancer
    grid = {"l2": [0.0, 1e-2], "hidden_layer_sizes": [(4,), (8,)]}
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    if optimizer == "adadelta":  # Keras' fits: fewer
        grid, folds = {"l2": [0.0, 1e-2]}, StratifiedKFold(2, shuffle=True, random_state=0)
    options = dict(scoring=["accuracy", "roc_auc"], refit="roc_auc", return_train_score=True)
    search = RegularizedMLPClassifierCV(param_grid=grid, cv=folds, epochs=2, random_state=0,
                                        optimizer=optimizer, **options).fit(X, y)  # fmt: skip
    expected = GridSearchCV(RegularizedMLPClassifier(epochs=2, random_state=0,
                                                     optimizer=optimizer),
                            grid, cv=folds, **options).fit(X, y)  # fmt: skip
    assert set(search.cv_results_) == set(expected.cv_results_)
    for name, values in expected.cv_results_.items():
        if "_time" not in name and name != "params" and not name.startswith("param_"):
            np.testing.assert_allclose(search.cv_results_[name], values, atol=1e-6,
                                       err_msg=name)  # fmt: skip
    assert search.best_params_ == expected.best_params_ and search.multimetric_
    assert search.best_score_ == pytest.approx(expected.best_score_, abs=1e-6)
    assert "mean_train_roc_auc" in search.cv_results_


def test_a_callable_scoring_may_return_several_metrics(cancer):
    X, y = cancer

    def metrics(estimator, X, y):
        return {"accuracy": estimator.score(X, y),
                "errors": float(np.sum(estimator.predict(X) != y))}  # fmt: skip

    search = RegularizedMLPClassifierCV(param_grid=GRID, cv=2, epochs=2, random_state=0,
                                        scoring=metrics, refit="accuracy").fit(X, y)  # fmt: skip
    results = search.cv_results_
    np.testing.assert_array_equal(results["rank_test_accuracy"],
                                  [1 + np.sum(results["mean_test_accuracy"] > m)
                                   for m in results["mean_test_accuracy"]])  # fmt: skip
    assert search.best_score_ == results["mean_test_accuracy"].max()
    assert (results["mean_test_errors"] > 0).all()
    with pytest.raises(ValueError, match="refit must name the one"):
        RegularizedMLPClassifierCV(param_grid=GRID, cv=2, epochs=1, scoring=metrics).fit(X, y)


@pytest.mark.parametrize("params, match", [
    ({"scoring": ["accuracy", "f1"]}, "refit must name the one"),
    ({"scoring": ["accuracy", "f1"], "refit": "f2"}, "Did you mean 'f1'"),
    ({"scoring": {"acc": "accuracy"}, "refit": False}, "refit must name"),
])  # fmt: skip
def test_several_metrics_need_refit_to_name_one(cancer, params, match):
    X, y = cancer
    with pytest.raises(ValueError, match=match):
        RegularizedMLPClassifierCV(param_grid=GRID, cv=2, epochs=1, **params).fit(X, y)


def test_metadata_routing_passes_groups_to_the_search_s_splitter(cancer):
    """With scikit-learn's metadata routing on, a search inside
    cross_validate gets its groups for its own group splitter."""
    import sklearn
    from sklearn.model_selection import cross_validate

    X, y = cancer
    groups = np.arange(len(y)) % 7
    with sklearn.config_context(enable_metadata_routing=True):
        search = RegularizedMLPClassifierCV(param_grid=GRID, cv=GroupKFold(2), epochs=1,
                                            random_state=0).set_fit_request(groups=True)
        scores = cross_validate(search, X, y, params={"groups": groups}, cv=GroupKFold(2))
        assert np.isfinite(scores["test_score"]).all()
        with pytest.raises(ValueError, match="groups"):  # GroupKFold without them
            cross_validate(search.set_fit_request(groups=False), X, y,
                           params={"groups": groups}, cv=GroupKFold(2))


# -- the whole recipe: capacity and structure beside the penalties ----------------------


def test_widths_depth_and_batch_norm_are_searched_on_towers_as_grid_search(cancer):
    """Candidates of different structures train on towers of their own (one
    program per structure), with GridSearchCV's candidates and scores."""
    X, y = cancer
    grid = {"hidden_layer_sizes": [(8,), (16, 16)], "batch_norm": [False, True],
            "l2": [0.0, 1e-2]}  # fmt: skip
    folds = StratifiedKFold(2, shuffle=True, random_state=0)
    clear_training_cache()
    search = RegularizedMLPClassifierCV(param_grid=grid, cv=folds, epochs=3, random_state=0,
                                        refit=False).fit(X, y)  # fmt: skip
    assert search.training_path_ == "program", search.training_path_reason_
    assert training_cache_info()["misses"] == 4  # one program per structure
    expected = GridSearchCV(RegularizedMLPClassifier(epochs=3, random_state=0), grid,
                            cv=folds).fit(X, y)  # fmt: skip
    assert search.cv_results_["params"] == expected.cv_results_["params"]
    for name in ("split0_test_score", "mean_test_score"):
        np.testing.assert_allclose(search.cv_results_[name], expected.cv_results_[name],
                                   atol=1e-6)  # fmt: skip


def test_structures_off_the_program_are_searched_fit_by_fit_beside_the_towers(cancer, capsys):
    X, y = cancer
    grid = {"optimizer": ["adam", "adadelta"], "l2": [0.0, 1e-2]}
    search = RegularizedMLPClassifierCV(param_grid=grid, cv=KFold(2), epochs=2,
                                        random_state=0, verbose=1)  # fmt: skip
    search.fit(X, y)
    assert search.training_path_ == "program and fit by fit"
    assert search.training_path_reason_ == "optimizer='adadelta': the optimizer Adadelta"
    assert "optimizer='adadelta': the optimizer Adadelta" in capsys.readouterr().out
    expected = GridSearchCV(RegularizedMLPClassifier(epochs=2, random_state=0), grid,
                            cv=KFold(2)).fit(X, y)  # fmt: skip
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               expected.cv_results_["mean_test_score"], atol=1e-6)  # fmt: skip


def test_halving_prunes_across_structures(cancer):
    """One rung loop over every structure: each rung keeps the best third
    of all candidates, whatever their width, and the survivors go on
    training in their own towers."""
    X, y = cancer
    grid = {"hidden_layer_sizes": [(2,), (16,), (32, 32)], "l2": [0.0, 1e-3, 1e-1]}
    search = RegularizedMLPClassifierCV(param_grid=grid, factor=3, cv=3, epochs=9,
                                        random_state=0, refit=False).fit(X, y)  # fmt: skip
    assert search.n_candidates_ == [9, 3, 1]
    results = search.cv_results_
    first = results["iter"] == 0
    def described(params):
        return repr(params["hidden_layer_sizes"]) + repr(params["l2"])

    kept = {described(p) for p, i in zip(results["params"], results["iter"]) if i == 1}
    order = np.argsort(-results["mean_test_score"][first], kind="stable")[:3]
    best_three = {described(results["params"][i]) for i in np.flatnonzero(first)[order]}
    assert kept == best_three
    # A network of 2 units does not win against 16 and 32-32 on this data.
    assert search.best_params_["hidden_layer_sizes"] != (2,)


def test_the_memory_budget_holds_per_structure(cancer):
    """Wider networks are cut into smaller groups than narrow ones under one budget."""
    from skreg._search.structures import SearchRuns
    from skreg._search.scores import SearchScores

    X, y = cancer
    X = np.asarray(X, np.float32)
    search = RegularizedMLPClassifierCV(memory_budget=8, cv=2, epochs=2, random_state=0)
    base = search._base_estimator()
    candidates = [{"hidden_layer_sizes": (h,), "l2": l2} for h in (4, 512)
                  for l2 in np.linspace(0, 1e-2, 12)]  # fmt: skip
    from skreg._estimators.interface import encoded_targets
    template = clone(base)
    y_encoded = encoded_targets(template, y)
    runs = SearchRuns.plan(search, base, template, X, candidates)
    splits = list(KFold(2).split(X))
    runs.start(X, y, y_encoded, None, splits,
               SearchScores(template, None, len(candidates), 2, 2))  # fmt: skip
    narrow, wide = (max(len(g.candidates) for g in run.runner.groups) for run in runs.runs)
    assert narrow == 12 and wide < 12
    budget = 8 * 2**20
    for run in runs.runs:
        for group in run.runner.groups:
            assert (group.bytes_per_tower * len(group.candidates) <= budget
                    or len(group.candidates) == 1)  # fmt: skip
    numbers = [g.number for run in runs.runs for g in run.runner.groups]
    assert numbers == list(range(1, len(numbers) + 1))  # numbered across the structures
    runs.finish()


# -- all or nothing: a search that fails or is interrupted changes nothing ------------


def _fitted_attributes(search):
    """What a fitted search holds, in a comparable form."""
    import pickle

    return {name: pickle.dumps(value) for name, value in vars(search).items()
            if name.endswith("_") and name != "best_estimator_"}  # fmt: skip


def test_a_failed_search_leaves_the_earlier_fit(cancer):
    X, y = cancer
    X5 = X[:, :5]
    search = RegularizedMLPClassifierCV(param_grid={"l2": [0.0, 1e-3]}, cv=3, epochs=2,
                                        random_state=0).fit(X5, y)  # fmt: skip
    before, best, expected = _fitted_attributes(search), search.best_estimator_, search.predict(X5)
    # Bad data: one class, and 7 features where the first fit had 5.
    with pytest.raises(ValueError, match="one class"):
        search.fit(X[:, :7], np.zeros_like(y))
    assert _fitted_attributes(search) == before and search.best_estimator_ is best
    assert search.n_features_in_ == 5
    # A grid whose every network diverges (the search raises, as GridSearchCV
    # when all its fits fail).
    with pytest.raises(ValueError, match="Every fit"), pytest.warns(FitFailedWarning):
        search.set_params(param_grid={"learning_rate": [1e6]}, optimizer="sgd").fit(X5 * 1e6, y)
    assert _fitted_attributes(search) == before and search.best_estimator_ is best
    np.testing.assert_array_equal(search.predict(X5), expected)


@pytest.mark.parametrize("first", [True, False], ids=["first-fit", "later-fit"])
def test_an_interrupted_search_leaves_the_estimator_as_it_was(cancer, monkeypatch, first):
    from skreg._engine import trainer as trainer_module

    X, y = cancer
    search = RegularizedMLPClassifierCV(param_grid={"l2": [0.0, 1e-3]}, cv=3, epochs=3,
                                        random_state=0)  # fmt: skip
    if not first:
        search.fit(X[:, :5], y)
    before = _fitted_attributes(search)
    calls, train = [], trainer_module.TowerTrainer.train

    def interrupted_at_the_second_call(self, epochs):
        calls.append(epochs)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C, as it reaches Python between calls
        return train(self, epochs)

    monkeypatch.setattr(trainer_module.TowerTrainer, "train", interrupted_at_the_second_call)
    with pytest.raises(KeyboardInterrupt):
        search.fit(X, y)
    assert _fitted_attributes(search) == before
    if first:
        assert not [name for name in vars(search) if name.endswith("_")]
