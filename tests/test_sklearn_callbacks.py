"""scikit-learn's callback protocol (sklearn.callback, scikit-learn >= 1.9):
a fit is a task, its epochs are subtasks, on the program and on Keras' fit."""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skreg import RegularizedMLPClassifier, RegularizedMLPClassifierCV
from skreg._estimators.sklearn_callbacks import SKLEARN_CALLBACKS

needs_callbacks = pytest.mark.skipif(not SKLEARN_CALLBACKS, reason="scikit-learn < 1.9")


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=120, n_features=8, random_state=0)
    return X.astype(np.float32), y


class Recorder:
    """Records (estimator, task, hook) of every call; stops after ``stop_after`` epochs."""

    def __init__(self, stop_after=None):
        self.calls, self.stop_after, self.epochs = [], stop_after, 0

    def setup(self, estimator, context):
        self.calls.append((type(estimator).__name__, context.task_name, "setup"))

    def teardown(self, estimator, context):
        self.calls.append((type(estimator).__name__, context.task_name, "teardown"))

    def on_fit_task_begin(self, estimator, context, *, X=None, y=None):
        self.calls.append((type(estimator).__name__, context.task_name, "begin"))

    def on_fit_task_end(self, estimator, context, *, X=None, y=None, fitted_estimator=None):
        self.calls.append((type(estimator).__name__, context.task_name, "end"))
        if context.task_name == "epoch" and fitted_estimator is not None:
            self.epochs += 1
            # The estimator as it stands after the epoch predicts.
            assert fitted_estimator.predict(X).shape == (len(X),)
            return self.stop_after is not None and self.epochs >= self.stop_after
        return False


class PropagatedRecorder(Recorder):
    max_propagation_depth = None


def _epochs(recorder, estimator_name="RegularizedMLPClassifier"):
    return sum(1 for name, task, hook in recorder.calls
               if (name, task, hook) == (estimator_name, "epoch", "end"))  # fmt: skip


@needs_callbacks
@pytest.mark.parametrize("on", ["program", "keras"])
def test_a_fit_reports_its_epochs_as_subtasks_and_a_callback_stops_it(data, on):
    X, y = data
    clf = RegularizedMLPClassifier(epochs=4, random_state=0)
    if on == "keras":
        clf.set_params(compile__jit_compile=False)  # trained by Keras' fit
    recorder = Recorder()
    clf.set_callbacks(recorder).fit(X, y)
    assert recorder.calls[:2] == [("RegularizedMLPClassifier", "fit", "setup"),
                                  ("RegularizedMLPClassifier", "fit", "begin")]  # fmt: skip
    assert recorder.calls[-2:] == [("RegularizedMLPClassifier", "fit", "end"),
                                   ("RegularizedMLPClassifier", "fit", "teardown")]  # fmt: skip
    assert _epochs(recorder) == 4 == clf.n_iter_
    stopper = Recorder(stop_after=2)
    stopped = RegularizedMLPClassifier(epochs=10, random_state=0).set_callbacks(stopper)
    if on == "keras":
        stopped.set_params(compile__jit_compile=False)
    stopped.fit(X, y)
    assert stopped.n_iter_ == 2 == _epochs(stopper)


@needs_callbacks
def test_callbacks_change_nothing_in_the_result(data):
    X, y = data
    plain = RegularizedMLPClassifier(epochs=3, dropout=0.2, random_state=0).fit(X, y)
    watched = RegularizedMLPClassifier(epochs=3, dropout=0.2, random_state=0)
    watched.set_callbacks(Recorder()).fit(X, y)
    np.testing.assert_allclose(watched.predict_proba(X), plain.predict_proba(X), rtol=1e-6)


@needs_callbacks
def test_scoring_monitor_scores_each_epoch(data):
    from sklearn.callback import ScoringMonitor

    X, y = data
    monitor = ScoringMonitor(scoring="accuracy")
    RegularizedMLPClassifier(epochs=5, random_state=0).set_callbacks(monitor).fit(X, y)
    rows = [row for row in monitor.get_logs().data if row["task_name"] == "epoch"]
    assert len(rows) == 5
    assert all(0.0 <= row["accuracy"] <= 1.0 for row in rows)
    assert rows[-1]["accuracy"] > 0.6  # it learns


@needs_callbacks
def test_callbacks_propagate_from_a_grid_search_over_a_pipeline(data):
    X, y = data
    recorder = PropagatedRecorder()
    pipe = make_pipeline(StandardScaler(), RegularizedMLPClassifier(epochs=2, random_state=0))
    search = GridSearchCV(pipe, {"regularizedmlpclassifier__l2": [0.0, 1e-3]}, cv=2)
    search.set_callbacks(recorder).fit(X, y)
    # 2 candidates x 2 folds + the refit, each fit 2 epochs.
    assert _epochs(recorder) == (2 * 2 + 1) * 2


@needs_callbacks
def test_callbacks_reach_every_fit_of_cross_validate(data):
    from sklearn.model_selection import cross_validate

    X, y = data
    for estimator in (RegularizedMLPClassifier(epochs=2, random_state=0),
                      make_pipeline(StandardScaler(),
                                    RegularizedMLPClassifier(epochs=2, random_state=0))):  # fmt: skip
        recorder = PropagatedRecorder()
        cross_validate(estimator.set_callbacks(recorder), X, y, cv=3)
        assert _epochs(recorder) == 3 * 2  # 3 folds, 2 epochs each


@needs_callbacks
def test_progress_bar_under_a_grid_search_over_a_pipeline(data, capsys):
    pytest.importorskip("rich")
    from sklearn.callback import ProgressBar

    X, y = data
    pipe = make_pipeline(StandardScaler(), RegularizedMLPClassifier(epochs=2, random_state=0))
    search = GridSearchCV(pipe, {"regularizedmlpclassifier__l2": [0.0, 1e-3]}, cv=2)
    search.set_callbacks(ProgressBar()).fit(X, y)
    assert search.best_estimator_[-1].n_iter_ == 2
    # And on a CV estimator: its groups of towers run two at a time.
    cv = RegularizedMLPClassifierCV(param_grid={"l2": [0.0, 1e-3]}, cv=3, epochs=2,
                                    random_state=0)  # fmt: skip
    assert cv.set_callbacks(ProgressBar()).fit(X, y).best_estimator_.n_iter_ == 2


@needs_callbacks
def test_a_cv_estimator_reports_its_groups_epochs_and_its_refits(data):
    X, y = data
    recorder = PropagatedRecorder()
    search = RegularizedMLPClassifierCV(param_grid={"l2": [0.0, 1e-3]}, cv=2, epochs=3,
                                        random_state=0)  # fmt: skip
    search.set_callbacks(recorder).fit(X, y)
    tasks = [(name, task, hook) for name, task, hook in recorder.calls if hook != "setup"]
    assert ("RegularizedMLPClassifierCV", "search", "end") in tasks
    # A group of towers per fold, each reporting its 3 epochs; the refit's 3.
    assert tasks.count(("RegularizedMLPClassifierCV", "group", "end")) == 2
    assert _epochs(recorder, "RegularizedMLPClassifierCV") == 2 * 3
    assert _epochs(recorder) == 3
    assert tasks[-2:] == [("RegularizedMLPClassifierCV", "fit", "end"),
                          ("RegularizedMLPClassifierCV", "fit", "teardown")]  # fmt: skip


@needs_callbacks
def test_a_halving_search_reports_its_rungs_their_groups_and_epochs(data):
    X, y = data
    recorder = PropagatedRecorder()
    search = RegularizedMLPClassifierCV(param_grid={"l2": [0.0, 1e-3, 1e-2, 1e-1]}, factor=2,
                                        cv=2, epochs=4, random_state=0)  # fmt: skip
    search.set_callbacks(recorder).fit(X, y)
    assert search.n_candidates_ == [4, 2, 1] and search.n_resources_ == [1, 2, 4]
    tasks = [(task, hook) for name, task, hook in recorder.calls
             if name == "RegularizedMLPClassifierCV" and hook in ("begin", "end")]  # fmt: skip
    assert tasks.count(("rung", "end")) == 3
    # A group per fold in each rung, each reporting the rung's epochs: 1, 1 and 2.
    assert tasks.count(("group", "end")) == 3 * 2
    assert _epochs(recorder, "RegularizedMLPClassifierCV") == (1 + 1 + 2) * 2
    # The rungs run in order, each holding its groups.
    rung_events = [event for event in tasks if event[0] == "rung"]
    assert rung_events == [("rung", "begin"), ("rung", "end")] * 3
    assert _epochs(recorder) == 4  # the refit's


def test_without_sklearn_callback_the_fit_runs_as_before(data, monkeypatch):
    """scikit-learn 1.6-1.8 has no sklearn.callback: skreg's names fall back
    to doing nothing (simulated by hiding the module)."""
    import importlib
    import sys

    from skreg._estimators import sklearn_callbacks as _sklearn_callbacks

    X, y = data
    supported = _sklearn_callbacks.SKLEARN_CALLBACKS  # by this scikit-learn
    monkeypatch.setitem(sys.modules, "sklearn.callback", None)
    try:
        importlib.reload(_sklearn_callbacks)
        assert not _sklearn_callbacks.SKLEARN_CALLBACKS
        assert _sklearn_callbacks.with_callbacks(len) is len
        clf = RegularizedMLPClassifier(epochs=2, random_state=0).fit(X, y)
        assert clf.n_iter_ == 2 and not hasattr(clf, "_callback_fit_ctx")
    finally:
        monkeypatch.undo()
        importlib.reload(_sklearn_callbacks)
    assert _sklearn_callbacks.SKLEARN_CALLBACKS == supported
