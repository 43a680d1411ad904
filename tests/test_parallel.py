"""Fits in parallel: threads, worker processes, a Dask cluster."""

import threading
import time
import types

import numpy as np
import pytest
import scipy.sparse as sp
from joblib import Parallel, delayed, parallel_backend
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skreg import RegularizedMLPClassifier


def test_fits_in_threads_equal_sequential_fits():
    rng = np.random.RandomState(0)
    X = rng.rand(300, 20).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 1).astype(int)

    def fit(l2):
        clf = RegularizedMLPClassifier(epochs=5, l2=l2, dropout=0.2, random_state=0)
        return clf.fit(X, y).predict_proba(X)

    penalties = [0.0, 1e-4, 1e-3, 1e-2]
    sequential = [fit(l2) for l2 in penalties]
    threaded = Parallel(n_jobs=4, backend="threading")(delayed(fit)(l2) for l2 in penalties)
    for one, other in zip(sequential, threaded):
        np.testing.assert_array_equal(one, other)


def test_grid_search_in_worker_processes_on_a_memory_mapped_csr():
    """joblib hands a matrix over 1 MB to worker processes as read-only memory maps."""
    rng = np.random.RandomState(0)
    columns = rng.randint(0, 5000, size=(3000, 60))
    X = sp.csr_matrix((np.ones(columns.size, np.float32), columns.ravel(),
                       np.arange(0, columns.size + 1, 60)), shape=(3000, 5000))  # fmt: skip
    X.sum_duplicates()
    assert X.data.nbytes + X.indices.nbytes + X.indptr.nbytes > 1e6
    y = (np.asarray(X[:, :2500].sum(axis=1)).ravel() > 30).astype(int)
    grid = {"l2": [0.0, 1e-3]}
    estimator = RegularizedMLPClassifier(epochs=2, random_state=0)
    one = GridSearchCV(estimator, grid, cv=2).fit(X, y)
    two = GridSearchCV(estimator, grid, cv=2, n_jobs=2).fit(X, y)
    np.testing.assert_allclose(two.cv_results_["mean_test_score"],
                               one.cv_results_["mean_test_score"], atol=1e-12)  # fmt: skip


def test_grid_search_on_a_dask_cluster_of_two_worker_processes():
    distributed = pytest.importorskip("distributed")
    X, y = load_breast_cancer(return_X_y=True)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), RegularizedMLPClassifier(epochs=5, random_state=0)),
        {"regularizedmlpclassifier__l2": [0.0, 1e-3, 1e-1]},
        cv=3,
    )
    local = search.fit(X, y).cv_results_["mean_test_score"]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:  # fmt: skip
        with distributed.Client(cluster), parallel_backend("dask"):
            on_cluster = search.fit(X, y).cv_results_["mean_test_score"]
    np.testing.assert_allclose(on_cluster, local, atol=0.01)


def test_cv_search_groups_as_tasks_on_a_dask_cluster_and_in_worker_processes():
    """A search's tower groups run as joblib tasks, a task per group and
    rung, the survivors' state going back and forth: the same scores as in
    this process, with halving."""
    distributed = pytest.importorskip("distributed")
    from scipy.stats import loguniform

    from skreg import RegularizedMLPClassifierCV

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    search = RegularizedMLPClassifierCV(
        param_distributions={"l2": loguniform(1e-5, 1e-1), "dropout": [0.0, 0.3]}, n_iter=6,
        factor=2, cv=3, epochs=4, random_state=0, refit=False,
    )  # fmt: skip
    local = search.fit(X, y).cv_results_
    in_workers = clone(search).set_params(n_jobs=2).fit(X, y).cv_results_
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:  # fmt: skip
        with distributed.Client(cluster), parallel_backend("dask"):
            on_cluster = clone(search).fit(X, y)
    assert on_cluster.n_candidates_ == [6, 3, 2]
    for results in (in_workers, on_cluster.cv_results_):
        assert results["params"] == local["params"]
        np.testing.assert_allclose(results["mean_test_score"], local["mean_test_score"],
                                   atol=0.01)  # fmt: skip


def test_fused_updates_of_fits_in_threads_take_turns(monkeypatch):
    """Large first kernels are updated by one XLA-compiled function, which
    XLA:CPU (TensorFlow 2.21) cannot first run in two threads at once (a
    CV search's two groups in flight segfaulted about once in 30
    processes). Its runs hold one process-wide lock: fits started together
    in four threads, each on a newly compiled kernel shape, equal
    sequential fits, and the traced program locks around the fused update."""
    from skreg._engine import updates
    from skreg._engine.cache import _programs, clear_training_cache

    rng = np.random.RandomState(0)
    X = sp.csr_matrix((rng.rand(64, 1200) < 0.05).astype(np.float32))
    y = np.arange(64) % 2
    monkeypatch.setattr(updates, "FUSED_UPDATE_MIN_SIZE", 0)  # read when traced
    clear_training_cache()
    try:

        def fit(units, start=None):
            if start is not None:
                start.wait()
            clf = RegularizedMLPClassifier(hidden_layer_sizes=(units,), epochs=2, batch_size=32,
                                           l2=1e-3, random_state=0)  # fmt: skip
            return clf.fit(X, y).predict_proba(X)

        for units in (16, 17, 18):  # each a new kernel shape: a new compiled update
            start = threading.Barrier(4)
            together = Parallel(n_jobs=4, backend="threading")(
                delayed(fit)(units, start) for _ in range(4)
            )  # fmt: skip
            alone = fit(units)
            for proba in together:
                np.testing.assert_array_equal(proba, alone)
        (program,) = _programs.values()
        library = program.get_concrete_function().graph.as_graph_def().library
        assert any(node.op == "MutexLock" for f in library.function for node in f.node_def)
    finally:
        clear_training_cache()


def test_a_fit_in_another_thread_waits_for_a_first_run_as_it_starts(monkeypatch):
    """A fit that asks for a program while another thread is starting its
    background first run waits for that run (it once found the run's
    thread listed but not started, and joining it raised)."""
    from skreg._engine import cache

    errors = []

    def wait():
        try:
            cache.wait_until_ready("key")
        except RuntimeError as error:
            errors.append(error)

    waiter = threading.Thread(target=wait)

    class SlowToStart(threading.Thread):
        def start(self):
            waiter.start()  # the other fit asks while this thread starts
            time.sleep(0.2)
            super().start()

    monkeypatch.setattr(cache, "threading", types.SimpleNamespace(Thread=SlowToStart))
    ran = threading.Event()
    cache.readied_in_background("key", ran.set)
    waiter.join()
    assert not errors, errors
    assert ran.is_set()
    assert "key" not in cache._readying  # the waiter took it off
