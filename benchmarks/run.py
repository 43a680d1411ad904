"""Speed and memory of skreg against its peers; prints a table, writes BENCHMARKS.md.

Every measurement runs in a fresh Python process (``--worker``), so that peak
memory and one-off costs (imports, tracing) are each contender's own.

    python benchmarks/run.py            # the full suite (~35 minutes on 2 cores)
    python benchmarks/run.py --quick    # tiny data, every contender: a smoke run

Contenders, on the same data, network, optimizer (rmsprop; adam for
MLPClassifier, which has no rmsprop) and batch size:

- skreg (sparse): RegularizedMLPClassifier on the scipy CSR matrix
- skreg (dense): RegularizedMLPClassifier on the dense float32 array
- raw Keras (dense): the book's code, Sequential Dense layers on a dense array
- scikeras: KerasClassifier(model=skreg.build_mlp) on the CSR matrix
- sklearn MLPClassifier on the CSR matrix, timed two ways: one partial_fit per
  epoch (which adds partial_fit's per-call input checks), and fit(max_iter=k)
  ((k-epoch fit - 1-epoch fit) / (k - 1)).

skreg trains a whole fit in one call into TensorFlow, so its epoch time is
measured the same way as fit(max_iter=k): (k-epoch fit - 1-epoch fit) / (k - 1),
both after the process's first fit (which traces the training program and is
the "fit s" column).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import halving  # noqa: E402  (the section's workers and table)
import recipe  # noqa: E402  (the section's workers and tables)
SECTIONS = ("vectorizer", "train", "tiny", "memory", "grid", "search", "cv", "progress",
            "augmentation",
            "predict", "halving", "recipe")  # fmt: skip
CONTENDERS = ["skreg_sparse", "skreg_dense", "keras_dense", "scikeras", "sklearn_mlp",
              "sklearn_mlp_fit"]  # fmt: skip
LABELS = {
    "skreg_sparse": "skreg (sparse)",
    "skreg_dense": "skreg (dense)",
    "keras_dense": "raw Keras (dense, book)",
    "scikeras": "scikeras (CSR)",
    "sklearn_mlp": "sklearn MLPClassifier (CSR, partial_fit)",
    "sklearn_mlp_fit": "sklearn MLPClassifier (CSR, fit(max_iter=k))",
}


# -- data ------------------------------------------------------------------------


def synthetic_sparse(n_train, n_test, n_features, nnz_per_row, seed=0):
    """IMDB-shaped multi-hot data with labels from a sparse linear rule."""
    rng = np.random.RandomState(seed)
    n = n_train + n_test
    # Zipf-like column popularity, as in text.
    popularity = 1.0 / np.arange(1, n_features + 1)
    columns = rng.choice(n_features, size=(n, nnz_per_row), p=popularity / popularity.sum())
    X = sp.csr_matrix(
        (np.ones(columns.size, np.float32), columns.ravel(), np.arange(0, columns.size + 1, nnz_per_row)),
        shape=(n, n_features),
    )
    X.sum_duplicates()
    X.data[:] = 1
    weights = rng.randn(n_features) * (rng.rand(n_features) < 0.2)
    score = X @ weights
    y = (score > np.median(score)).astype(np.int64)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def imdb_multi_hot(n_features=10_000):
    from skreg import MultiHotVectorizer
    from skreg.datasets import load_imdb

    train, test = load_imdb("train"), load_imdb("test")
    vectorizer = MultiHotVectorizer(max_tokens=n_features)
    return (vectorizer.fit_transform(train.data), train.target,
            vectorizer.transform(test.data), test.target)  # fmt: skip


def save_data(path, X, y, X_test, y_test):
    np.savez(path, indptr=X.indptr, indices=X.indices, shape=X.shape, y=y,
             t_indptr=X_test.indptr, t_indices=X_test.indices, t_shape=X_test.shape,
             y_test=y_test)  # fmt: skip


def load_data(path):
    d = np.load(path)

    def csr(prefix):
        indptr, indices = d[prefix + "indptr"], d[prefix + "indices"]
        return sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr),
                             shape=tuple(d[prefix + "shape"]))  # fmt: skip

    return csr(""), d["y"], csr("t_"), d["y_test"]


# -- workers (each in its own process) ----------------------------------------------


def peak_rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb():
    import resource

    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def keras_book_model(n_features, units, sparse=False):
    from skreg._backend.tensorflow import keras

    model = keras.Sequential([
        keras.Input((n_features,), sparse=sparse),
        keras.layers.Dense(units, activation="relu"),
        keras.layers.Dense(units, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])  # fmt: skip
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def epoch_timer():
    from skreg._backend.tensorflow import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self._start)

    return EpochTimer()


def train_worker(contender, data_path, units, epochs, batch_size, seed=0, params=None):
    """One fit; ``params`` are extra estimator parameters (skreg contenders)."""
    X, y, X_test, y_test = load_data(data_path)
    hidden = (units, units)
    epoch_times = []
    start = time.perf_counter()
    if contender in ("skreg_sparse", "skreg_dense"):
        from skreg import RegularizedMLPClassifier

        if contender == "skreg_dense":
            X, X_test = X.toarray(), X_test.toarray()

        def make(n_epochs):
            return RegularizedMLPClassifier(hidden_layer_sizes=hidden, batch_size=batch_size,
                                            epochs=n_epochs, random_state=seed,
                                            **(params or {}))  # fmt: skip

        model = make(epochs).fit(X, y)  # the first fit: traces the training program
        fit_seconds = time.perf_counter() - start
        epoch_times = [_per_epoch(lambda n: make(n).fit(X, y), epochs)]
        predict = model.predict
    elif contender == "keras_dense":
        # The book: float arrays from vectorize_sequences, Sequential model, fit.
        from skreg._backend.tensorflow import keras

        X, X_test = X.toarray(), X_test.toarray()
        keras.utils.set_random_seed(seed)  # this worker process's own global seed
        model = keras_book_model(X.shape[1], units)
        timer = epoch_timer()
        model.fit(X, y.astype(np.float32), batch_size=batch_size, epochs=epochs, verbose=0,
                  callbacks=[timer])  # fmt: skip
        epoch_times = timer.times

        def predict(data):
            return (model.predict(data, batch_size=4096, verbose=0)[:, 0] > 0.5).astype(int)
    elif contender == "scikeras":
        from scikeras.wrappers import KerasClassifier

        from skreg import build_mlp

        timer = epoch_timer()
        model = KerasClassifier(model=build_mlp, hidden_layer_sizes=hidden, sparse_input=True,
                                loss="binary_crossentropy", optimizer="rmsprop",
                                batch_size=batch_size, epochs=epochs, verbose=0,
                                callbacks=[timer], random_state=seed)  # fmt: skip
        model.fit(X, y)
        epoch_times = timer.times
        predict = model.predict
    elif contender == "sklearn_mlp":
        from sklearn.neural_network import MLPClassifier

        model = MLPClassifier(hidden_layer_sizes=hidden, batch_size=batch_size, random_state=seed)
        for _ in range(epochs):
            epoch_start = time.perf_counter()
            model.partial_fit(X, y, classes=[0, 1])
            epoch_times.append(time.perf_counter() - epoch_start)
        predict = model.predict
    elif contender == "sklearn_mlp_fit":
        import warnings

        from sklearn.neural_network import MLPClassifier

        def fit(n_epochs):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
                return MLPClassifier(hidden_layer_sizes=hidden, batch_size=batch_size,
                                     max_iter=n_epochs, random_state=seed).fit(X, y)  # fmt: skip

        model = fit(epochs)
        fit_seconds = time.perf_counter() - start
        epoch_times = [_per_epoch(fit, epochs)]
        predict = model.predict
    else:
        raise ValueError(contender)
    if contender not in ("skreg_sparse", "skreg_dense", "sklearn_mlp_fit"):
        fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    accuracy = float(np.mean(predict(X_test) == y_test))
    predict_seconds = time.perf_counter() - start
    return {
        "epoch_seconds": statistics.median(epoch_times[1:] or epoch_times),
        "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
        "peak_rss_mb": peak_rss_mb(),
        "val_accuracy": accuracy,
    }


def _per_epoch(fit, epochs):
    """Seconds an epoch of ``fit(n_epochs)``: (k-epoch fit - 1-epoch fit) / (k - 1)."""
    start = time.perf_counter()
    fit(1)
    one = time.perf_counter() - start
    start = time.perf_counter()
    fit(epochs)
    return (time.perf_counter() - start - one) / (epochs - 1)


def tiny_worker(contender, n_fits, epochs, mode):
    """Fixed cost of a fit on 300 x 20 (median of n_fits after one warm-up),
    or, with mode="memory", RSS growth per fit over n_fits fits."""
    import gc

    rng = np.random.RandomState(0)
    X = rng.rand(300, 20).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 1).astype(np.int64)

    if contender == "skreg":
        from skreg import RegularizedMLPClassifier

        def fit():
            RegularizedMLPClassifier(batch_size=32, epochs=epochs, random_state=0).fit(X, y).predict(X)
    elif contender == "keras":
        def fit():
            model = keras_book_model(20, 16)
            model.fit(X, y.astype(np.float32), batch_size=32, epochs=epochs, verbose=0)
            model.predict(X, verbose=0)
    elif contender == "scikeras":
        from scikeras.wrappers import KerasClassifier

        from skreg import build_mlp

        def fit():
            KerasClassifier(model=build_mlp, loss="binary_crossentropy", optimizer="rmsprop",
                            batch_size=32, epochs=epochs, verbose=0).fit(X, y).predict(X)  # fmt: skip
    elif contender == "sklearn_mlp":
        from sklearn.neural_network import MLPClassifier

        def fit():
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                MLPClassifier((16, 16), batch_size=32, max_iter=epochs,
                              random_state=0).fit(X, y).predict(X)  # fmt: skip
    else:
        raise ValueError(contender)

    fit()  # warm-up: imports and first-use costs are not per fit
    if mode in ("memory", "memory_collected"):
        # "memory" is a plain loop, as a grid search runs: a Keras model is
        # cyclic garbage, freed when Python's cycle collector next runs, so RSS
        # includes the models not collected yet. "memory_collected" collects
        # after each fit: what stays there is what fits retain.
        gc.collect()
        before = current_rss_mb()
        for _ in range(n_fits):
            fit()
            if mode == "memory_collected":
                gc.collect()
        gc.collect()
        return {"growth_mb_per_fit": (current_rss_mb() - before) / n_fits}
    times = []
    for _ in range(n_fits):
        start = time.perf_counter()
        fit()
        times.append(time.perf_counter() - start)
    return {"fit_seconds": statistics.median(times)}


def vectorizer_worker(contender, n_documents, repeats):
    """fit_transform time of the IMDB training reviews, median of repeats."""
    from sklearn.feature_extraction.text import CountVectorizer

    from skreg import MultiHotVectorizer
    from skreg.datasets import load_imdb

    if n_documents:
        texts = [f"review {i} with some words<br />and more words {i % 97}" for i in range(n_documents)]
    else:
        texts = load_imdb("train").data
    make = {
        "skreg": lambda: MultiHotVectorizer(max_tokens=10_000),
        "countvectorizer": lambda: CountVectorizer(binary=True, max_features=10_000,
                                                   dtype=np.float32),  # fmt: skip
    }[contender]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        X = make().fit_transform(texts)
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "shape": list(X.shape), "nnz": int(X.nnz)}


def grid_worker(contender, data_path, epochs, cv):
    from sklearn.model_selection import GridSearchCV

    X, y, _, _ = load_data(data_path)
    if contender == "skreg":
        from skreg import RegularizedMLPClassifier

        estimator = RegularizedMLPClassifier(batch_size=512, epochs=epochs, random_state=0)
        grid = {"l2": [0.0, 1e-4, 1e-3, 1e-2]}
    else:
        from scikeras.wrappers import KerasClassifier

        from skreg import build_mlp

        estimator = KerasClassifier(model=build_mlp, sparse_input=True, l2=0.0,
                                    loss="binary_crossentropy", optimizer="rmsprop",
                                    batch_size=512, epochs=epochs, verbose=0, random_state=0)  # fmt: skip
        grid = {"model__l2": [0.0, 1e-4, 1e-3, 1e-2]}
    start = time.perf_counter()
    search = GridSearchCV(estimator, grid, cv=cv).fit(X, y)
    return {"seconds": time.perf_counter() - start, "best_score": float(search.best_score_),
            "cv_class": type(search.cv).__name__ if not isinstance(search.cv, int) else
            _cv_class(estimator, y)}  # fmt: skip


def search_worker(contender, epochs, folds):
    """The 25-fit breast_cancer grid: StandardScaler + 16-16, 5 penalties x 5 folds."""
    import warnings

    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    penalties = [0.0, 1e-4, 1e-3, 1e-2, 1e-1]
    if contender == "skreg":
        from skreg import RegularizedMLPClassifier

        estimator = RegularizedMLPClassifier(batch_size=32, epochs=epochs, random_state=0)
        grid = {"l2": penalties}
    elif contender == "sklearn_mlp":
        from sklearn.neural_network import MLPClassifier

        estimator = MLPClassifier((16, 16), batch_size=32, max_iter=epochs, random_state=0)
        grid = {"alpha": penalties}
    else:
        from scikeras.wrappers import KerasClassifier

        from skreg import build_mlp

        estimator = KerasClassifier(model=build_mlp, l2=0.0, loss="binary_crossentropy",
                                    optimizer="rmsprop", batch_size=32, epochs=epochs,
                                    verbose=0, random_state=0)  # fmt: skip
        grid = {"model__l2": penalties}
    grid = {f"{type(estimator).__name__.lower()}__{name}": values for name, values in grid.items()}
    search = GridSearchCV(make_pipeline(StandardScaler(), estimator), grid,
                          cv=StratifiedKFold(folds))  # fmt: skip
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLPClassifier's ConvergenceWarning at max_iter
        search.fit(X, y)
    return {"seconds": time.perf_counter() - start, "best_score": float(search.best_score_)}


def cv_worker(contender, dataset, data_path, epochs, folds, searches=2, verbose=0, refit=True):
    """A penalty search, 5 l2 values (alpha for MLPClassifier) x ``folds``
    stratified folds: RegularizedMLPClassifierCV (every fit as towers of one
    program) or GridSearchCV over RegularizedMLPClassifier / MLPClassifier;
    run ``searches`` times in the process: the first pays skreg's tracing,
    the later ones find their programs traced, as in a notebook session.
    ``verbose`` and ``refit`` are RegularizedMLPClassifierCV's."""
    import warnings

    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    if dataset == "breast_cancer":
        from sklearn.datasets import load_breast_cancer
        from sklearn.preprocessing import StandardScaler

        X, y = load_breast_cancer(return_X_y=True)
        X = StandardScaler().fit_transform(X)
        batch_size = 32
    else:
        X, y, _, _ = load_data(data_path)
        batch_size = 512
    penalties = [0.0, 1e-4, 1e-3, 1e-2, 1e-1]
    cv = StratifiedKFold(folds)
    common = dict(hidden_layer_sizes=(16, 16), batch_size=batch_size, random_state=0)
    if contender == "skreg_cv":
        from skreg import RegularizedMLPClassifierCV

        search = RegularizedMLPClassifierCV(param_grid={"l2": penalties}, cv=cv, epochs=epochs,
                                            verbose=verbose, refit=refit, **common)  # fmt: skip
    elif contender == "skreg_grid":
        from skreg import RegularizedMLPClassifier

        search = GridSearchCV(RegularizedMLPClassifier(epochs=epochs, **common),
                              {"l2": penalties}, cv=cv)  # fmt: skip
    else:
        from sklearn.neural_network import MLPClassifier

        search = GridSearchCV(MLPClassifier(max_iter=epochs, **common),
                              {"alpha": penalties}, cv=cv)  # fmt: skip
    base_rss = current_rss_mb()
    seconds = []
    for _ in range(searches):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLPClassifier's ConvergenceWarning at max_iter
            search = clone(search).fit(X, y)
        seconds.append(time.perf_counter() - start)
    return {"seconds": seconds[0], "later_seconds": seconds[1:],
            "scores": search.cv_results_["mean_test_score"].tolist(),
            "best_index": int(search.best_index_),
            "data_mb": (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes if hasattr(X, "indptr")
                        else X.nbytes) / 2**20,
            "peak_rss_mb": peak_rss_mb(), "rss_before_mb": base_rss}  # fmt: skip


def _cv_class(estimator, y):
    from sklearn.base import is_classifier
    from sklearn.model_selection import check_cv

    return type(check_cv(3, y, classifier=is_classifier(estimator))).__name__


def predict_worker(case, n_rows, repeats):
    """skreg's float64 prediction vs Keras' own model_.predict, same fitted network.

    First call (Keras traces its predict function then) and the median and
    range of ``repeats`` further calls, in seconds.
    """
    from skreg import RegularizedMLPClassifier
    from skreg._estimators.keras_input import make_dataset
    from skreg._estimators.base import PREDICT_BATCH_SIZE

    rng = np.random.RandomState(0)
    if case.startswith("sparse"):
        X, _, _, _ = synthetic_sparse(n_rows, 1, 10_000, 135)
    else:
        X = rng.randn(n_rows, 30 if n_rows < 1000 else 100).astype(np.float32)
    hidden = {"sparse 16-16": (16, 16), "sparse 1024-1024": (1024, 1024),
              "dense 16-16": (16, 16), "dense 256-256": (256, 256)}[case]  # fmt: skip
    y = np.arange(X.shape[0]) % 2
    n_fit = min(X.shape[0], 2000)
    clf = RegularizedMLPClassifier(hidden_layer_sizes=hidden, epochs=1, random_state=0)
    clf.fit(X[:n_fit], y[:n_fit])
    X = clf._validate_X(X, reset=False)

    def keras_predict():
        clf.model_.predict(make_dataset(X, batch_size=PREDICT_BATCH_SIZE), verbose=0)

    def skreg_predict():
        clf.decision_function(X)

    result = {}
    for name, predict in (("keras", keras_predict), ("skreg", skreg_predict)):
        start = time.perf_counter()
        predict()
        result[f"{name}_first"] = time.perf_counter() - start
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            predict()
            times.append(time.perf_counter() - start)
        result[name] = times
    return result


WORKERS = {"train": train_worker, "tiny": tiny_worker, "grid": grid_worker,
           "search": search_worker, "cv": cv_worker, "vectorizer": vectorizer_worker,
           "predict": predict_worker, "halving": halving.halving_worker,
           "recipe": recipe.recipe_worker}  # fmt: skip


def run_worker(args):
    spec = json.loads(args.worker)
    kind = spec.pop("kind")
    result = WORKERS[kind](**spec)
    print(json.dumps(result))


# -- the driver ----------------------------------------------------------------------


_INLINE = False  # --quick: run the workers in this process (a smoke run, no isolation)


def in_process(spec, timeout=3600):
    if _INLINE:
        spec = dict(spec)
        kind = spec.pop("kind")
        try:
            return WORKERS[kind](**spec)
        except Exception as error:  # reported in the table like a failed process
            return {"error": f"{type(error).__name__}: {error}"}
    done = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def script_worker(script, name, env=None, timeout=3600):
    """The JSON result of ``python script --worker name``, a fresh process
    run from /tmp (``env``: its environment, default this one's); a failed
    process raises with the end of its stderr."""
    done = subprocess.run(
        [sys.executable, str(script), "--worker", name], cwd="/tmp",
        env=dict(os.environ) if env is None else env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine_summary():
    from importlib.metadata import PackageNotFoundError, version

    import sklearn

    from skreg._backend.tensorflow import keras, tf  # the quiet TensorFlow import

    versions = {"python": platform.python_version(), "numpy": np.__version__,
                "scikit-learn": sklearn.__version__, "keras": keras.__version__,
                "tensorflow": tf.__version__}  # fmt: skip
    try:
        versions["scikeras"] = version("scikeras")
    except PackageNotFoundError:
        versions["scikeras"] = "not installed"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores ({cpu}); " + ", ".join(f"{k} {v}" for k, v in versions.items())


def median_result(results):
    """One row from the results of several processes: each number's median."""
    ok = [r for r in results if "error" not in r]
    if not ok:
        return results[0]
    row = {key: statistics.median(r[key] for r in ok) for key in ok[0]}
    row["epoch_seconds_all"] = [r["epoch_seconds"] for r in ok]
    row["val_accuracy_all"] = [r["val_accuracy"] for r in ok]
    return row


def medians_over_processes(runs, key, report_failure):
    """{name: median of ``key``} over each name's process results; a name whose
    processes all failed is reported with the first error and left out."""
    medians = {}
    for name, results in runs.items():
        values = [r[key] for r in results if key in r]
        if values:
            medians[name] = statistics.median(values)
        else:
            report_failure(name, results[0].get("error"))
    return medians


def fmt(value, pattern):
    return "error" if value is None else pattern.format(value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and fits: a smoke run")
    parser.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--nets", default="16,1024", help="hidden widths of the training tables")
    parser.add_argument("--repeats", type=int, default=3,
                        help="processes (seeds 0, 1, ...) per contender for networks up to 64 wide")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {','.join(SECTIONS)}")  # fmt: skip
    args = parser.parse_args()
    if args.worker:
        return run_worker(args)
    sections = args.sections.split(",")
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    global _INLINE
    _INLINE = args.quick
    repeats = 1 if args.quick else args.repeats
    blocks = {}  # section name -> its lines, spliced into BENCHMARKS.md by name
    current = "header"

    def say(text=""):
        print(text, flush=True)
        blocks.setdefault(current, []).append(text)

    def heading(text):
        say(text)
        say(run_line + "\n")

    command = "python benchmarks/run.py" + (" --quick" if args.quick else "")
    if set(sections) != set(SECTIONS):
        command += f" --sections {args.sections}"
    if args.nets != parser.get_default("nets") and "train" in sections:
        command += f" --nets {args.nets}"
    if args.repeats != parser.get_default("repeats") and "train" in sections:
        command += f" --repeats {args.repeats}"
    run_line = (f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, `{command}`; "
                + ("quick mode: all in one process, numbers not comparable." if args.quick
                   else "every row is a fresh process."))  # fmt: skip

    tmp = Path(tempfile.mkdtemp(prefix="skreg-bench-"))
    datasets = {}
    if args.quick:
        datasets["synthetic (1,000 x 1,000)"] = lambda: synthetic_sparse(1000, 500, 1000, 30)
        nets, epochs, tiny_fits, memory_fits, grid_epochs = [16], 2, 1, 2, 1
        augmentation_runs = 1
    else:
        datasets["IMDB multi-hot (25,000 x 10,000)"] = imdb_multi_hot
        datasets["synthetic (25,000 x 10,000, ~130 ones/row)"] = lambda: synthetic_sparse(
            25_000, 25_000, 10_000, 135
        )
        nets = [int(units) for units in args.nets.split(",")]
        epochs, tiny_fits, memory_fits, grid_epochs = 5, 5, 100, 4
        augmentation_runs = 5
    paths = {}
    if {"train", "grid", "cv", "augmentation", "halving", "recipe"} & set(sections):  # these read the data
        for name, make in datasets.items():
            paths[name] = tmp / f"{len(paths)}.npz"
            save_data(paths[name], *make())

    say(f"# Benchmarks{' (quick mode)' if args.quick else ''}\n")
    say(f"Machine: {machine_summary()}.  ")
    say("Each section below is the current table of one benchmark, with when and by which "
        "command it was last run: `make bench` (`benchmarks/run.py`) writes its sections, "
        "`--sections` re-runs some and leaves the others in place; the other scripts of "
        "`benchmarks/` write their own. The notes of earlier runs and sessions are in git's "
        "history of this file.\n")  # fmt: skip

    if "vectorizer" in sections:
        current = "vectorizer"
        n_documents = 2000 if args.quick else 0
        heading("## Vectorizing: fit_transform of the "
            + ("2,000 generated reviews" if args.quick else "25,000 IMDB training reviews")
            + ", 10,000 words, median of 3\n")  # fmt: skip
        say("| vectorizer | seconds | shape | non-zeros |")
        say("|---|---|---|---|")
        results = {c: in_process({"kind": "vectorizer", "contender": c,
                                  "n_documents": n_documents, "repeats": 3})
                   for c in ("skreg", "countvectorizer")}  # fmt: skip
        for c, label in (("skreg", "skreg MultiHotVectorizer"),
                         ("countvectorizer", "CountVectorizer(binary=True, max_features=10000)")):
            r = results[c]
            say(f"| {label} | {fmt(r.get('seconds'), '{:.2f}')} | {r.get('shape', r.get('error'))} "
                f"| {r.get('nnz', '')} |")  # fmt: skip
        if results["skreg"].get("seconds") and results["countvectorizer"].get("seconds"):
            say(f"\nskreg / CountVectorizer time: "
                f"{results['skreg']['seconds'] / results['countvectorizer']['seconds']:.2f}x "
                "(skreg also strips HTML tags and ranks the vocabulary deterministically).")
        say()

    if "train" in sections:
        current = "train"
        heading("## Training: seconds per epoch and memory\n")
        say("s/epoch: Keras and scikeras, the median over epochs 2+ (an epoch callback); "
            "skreg and MLPClassifier fit(max_iter=k), (k-epoch fit - 1-epoch fit) / (k - 1) "
            "after a first fit; MLPClassifier partial_fit, the median of its calls after the "
            "first. fit = the process's first whole fit incl. set-up and tracing; predict = the "
            "held-out half; peak RSS of the process (incl. the data); accuracy on the held-out half. "
            "rmsprop, batch 512 (sklearn: adam).\n")  # fmt: skip
        if repeats > 1:
            say(f"Networks up to 64 wide: {repeats} processes per contender with seeds "
                f"0-{repeats - 1}, run in turn (contender by contender, then again), so that the "
                "machine's drift reaches all alike; each cell is the median over them, s/epoch "
                "also shows their range. Wider networks: one process, seed 0.\n")  # fmt: skip
        for units in nets:
            n_epochs = epochs if units <= 64 else max(2, epochs - 2)
            n_runs = repeats if units <= 64 else 1
            for name, path in paths.items():
                say(f"### {units}-{units} network, {name}, {n_epochs} epochs\n")
                say("| contender | s/epoch | fit s | predict s | peak RSS MB | accuracy |")
                say("|---|---|---|---|---|---|")
                runs = {contender: [] for contender in CONTENDERS}
                for seed in range(n_runs):
                    for contender in CONTENDERS:
                        runs[contender].append(in_process({"kind": "train", "contender": contender,
                            "data_path": str(path), "units": units, "epochs": n_epochs,
                            "batch_size": 512, "seed": seed}))  # fmt: skip
                rows = {}
                for contender in CONTENDERS:
                    rows[contender] = r = median_result(runs[contender])
                    if "error" in r:
                        say(f"| {LABELS[contender]} | error: {r['error'][:80]} | | | | |")
                        continue
                    spread = (f" ({min(r['epoch_seconds_all']):.3f}-{max(r['epoch_seconds_all']):.3f})"
                              if n_runs > 1 else "")  # fmt: skip
                    say(f"| {LABELS[contender]} | {r['epoch_seconds']:.3f}{spread} | {r['fit_seconds']:.1f} | "
                        f"{r['predict_seconds']:.2f} | {r['peak_rss_mb']:.0f} | {r['val_accuracy']:.4f} |")
                ours = rows["skreg_sparse"].get("epoch_seconds")
                ratios = []
                for other in ("keras_dense", "scikeras", "sklearn_mlp", "sklearn_mlp_fit"):
                    theirs = rows[other].get("epoch_seconds")
                    if ours and theirs:
                        ratios.append(f"{LABELS[other]} {theirs / ours:.2f}x")
                if ratios:
                    say("\nskreg (sparse) epoch speed-up over: " + ", ".join(ratios) + ".  ")
                dense_rss = rows["keras_dense"].get("peak_rss_mb")
                if ours and dense_rss:
                    say(f"Peak RSS skreg (sparse) / raw Keras (dense): "
                        f"{rows['skreg_sparse']['peak_rss_mb'] / dense_rss:.2f}.  ")
                ours_acc, theirs_acc = rows["skreg_sparse"], rows["keras_dense"]
                if ours_acc.get("val_accuracy") and theirs_acc.get("val_accuracy"):
                    per_seed = "; ".join(
                        f"{label} " + ", ".join(f"{a:.4f}" for a in r["val_accuracy_all"])
                        for label, r in (("skreg", ours_acc), ("raw Keras", theirs_acc))
                    )
                    say(f"Accuracy skreg (sparse) - raw Keras (dense): "
                        f"{ours_acc['val_accuracy'] - theirs_acc['val_accuracy']:+.4f}"
                        + (f" (accuracies over seeds: {per_seed})" if n_runs > 1 else "") + ".")  # fmt: skip
                say()

    if "tiny" in sections:
        current = "tiny"
        heading("## Fixed cost of one fit (300 x 20, 16-16, 10 epochs of batch 32)\n")
        say(f"Median of {tiny_fits} fits after a warm-up fit, each a new estimator; includes predict.\n")
        say("| contender | s per fit | vs raw Keras |")
        say("|---|---|---|")
        results = {c: in_process({"kind": "tiny", "contender": c, "n_fits": tiny_fits,
                                  "epochs": 10, "mode": "time"})
                   for c in ("skreg", "keras", "scikeras", "sklearn_mlp")}  # fmt: skip
        base = results["keras"].get("fit_seconds")
        for c, r in results.items():
            s = r.get("fit_seconds")
            say(f"| {c} | {fmt(s, '{:.3f}')} | {fmt(s / base if s and base else None, '{:.2f}x')} |")
        say()

    if "memory" in sections:
        current = "memory"
        heading(f"## Memory growth over {memory_fits} consecutive fits (300 x 20)\n")
        say("RSS growth per fit after a warm-up fit; each fit is a new estimator (model) on "
            "300 x 20, 2 epochs, then predict. *Plain loop*: fits back to back, as in a grid "
            "search, one gc.collect() at the end. *Collected*: gc.collect() after every fit, "
            "so only what fits retain remains (a separate process).\n")  # fmt: skip
        say("| contender | MB per fit, plain loop | MB per fit, collected |")
        say("|---|---|---|")
        for c in ("skreg", "keras", "scikeras"):
            plain, collected = (
                in_process({"kind": "tiny", "contender": c, "n_fits": memory_fits, "epochs": 2,
                            "mode": mode})  # fmt: skip
                for mode in ("memory", "memory_collected")
            )
            say(f"| {c} | {fmt(plain.get('growth_mb_per_fit'), '{:.2f}')} "
                f"| {fmt(collected.get('growth_mb_per_fit'), '{:.2f}')} |")
        say()

    if "grid" in sections:
        current = "grid"
        name, path = next(iter(paths.items()))
        heading(f"## GridSearchCV: 4 values of l2 x 3 folds, {name}, {grid_epochs} epochs of batch 512\n")
        say("| contender | wall s | best CV accuracy | CV splitter chosen |")
        say("|---|---|---|---|")
        for c in ("skreg", "scikeras"):
            r = in_process({"kind": "grid", "contender": c, "data_path": str(path),
                            "epochs": grid_epochs, "cv": 3})  # fmt: skip
            say(f"| {c} | {fmt(r.get('seconds'), '{:.1f}')} | {fmt(r.get('best_score'), '{:.4f}')} "
                f"| {r.get('cv_class', r.get('error', ''))} |")
        say()

    if "search" in sections:
        current = "search"
        search_epochs, folds, search_runs = (2, 2, 1) if args.quick else (20, 5, 3)
        heading(f"## Grid search on a small table: breast_cancer, StandardScaler + 16-16, "
                f"5 penalties x {folds} folds, {search_epochs} epochs of batch 32\n")  # fmt: skip
        say(f"GridSearchCV wall time (including the refit), {search_runs} processes per "
            "contender run in turn; median and range. skreg and scikeras search l2 "
            "(rmsprop), MLPClassifier searches alpha (adam) with max_iter = epochs.\n")
        say("| contender | median wall s | range | vs MLPClassifier | best CV accuracy |")
        say("|---|---|---|---|---|")
        labels = {"skreg": "skreg RegularizedMLPClassifier", "sklearn_mlp": "sklearn MLPClassifier",
                  "scikeras": "scikeras KerasClassifier(model=skreg.build_mlp)"}
        runs = {c: [] for c in labels}
        for _ in range(search_runs):
            for c in labels:
                runs[c].append(in_process({"kind": "search", "contender": c,
                                           "epochs": search_epochs, "folds": folds}))
        medians = medians_over_processes(
            runs, "seconds", lambda c, error: say(f"| {labels[c]} | failed: {error} | | | |")
        )
        for c in medians:
            times = [r["seconds"] for r in runs[c] if "seconds" in r]
            ratio = medians[c] / medians["sklearn_mlp"] if "sklearn_mlp" in medians else None
            say(f"| {labels[c]} | {medians[c]:.2f} | {min(times):.2f}-{max(times):.2f} "
                f"| {fmt(ratio, '{:.2f}x')} | {runs[c][0]['best_score']:.4f} |")
        if "skreg" in medians and "scikeras" in medians:
            say(f"\nskreg is {medians['scikeras'] / medians['skreg']:.1f}x faster than scikeras.")
        say()

    if "cv" in sections:
        current = "cv"
        name, path = next(iter(paths.items()))
        cv_epochs = 2 if args.quick else 20
        heading(f"## Cross-validated search in one program: RegularizedMLPClassifierCV, "
                f"16-16, 5 penalties, {cv_epochs} epochs\n")  # fmt: skip
        say("Wall time of the whole search including the refit, each contender in its "
            "own process, in turn. `skreg CV`: RegularizedMLPClassifierCV (candidates x "
            "folds trained as towers of one TensorFlow program); `skreg GridSearchCV`: "
            "GridSearchCV over RegularizedMLPClassifier; `MLPClassifier`: GridSearchCV over "
            "sklearn's MLPClassifier searching alpha with max_iter = epochs. Same stratified "
            "folds. Scores: mean CV accuracy of the 5 candidates (l2 or alpha 0, 1e-4, 1e-3, "
            "1e-2, 1e-1). Each process runs the search twice: `median wall s` is the first "
            "search of a fresh process (skreg traces its programs then), `2nd search` the "
            "same search again in that process, with the programs traced (a notebook "
            "session's later searches); its ratio is against skreg CV's 2nd search. Peak "
            "RSS is the process's over both, data included.\n")
        say("| data | contender | runs | median wall s | range | vs skreg CV | 2nd search s "
            "| vs skreg CV | mean CV accuracy per candidate | best | peak RSS MB |")
        say("|---|---|---|---|---|---|---|---|---|---|---|")
        labels = {"skreg_cv": "skreg CV", "skreg_grid": "skreg GridSearchCV",
                  "sklearn_mlp": "MLPClassifier GridSearchCV"}
        cases = [("breast_cancer", None, 5, 1 if args.quick else 5),
                 (name, str(path), 3, 1 if args.quick else 3)]
        for dataset, data_path, folds, n_runs in cases:
            runs = {c: [] for c in labels}
            for _ in range(n_runs):
                for c in labels:
                    runs[c].append(in_process({"kind": "cv", "contender": c, "dataset": dataset,
                                               "data_path": data_path, "epochs": cv_epochs,
                                               "folds": folds}))  # fmt: skip
            medians = medians_over_processes(
                runs, "seconds",
                lambda c, error: say(f"| {dataset} | {labels[c]} | failed: {error} |||||||||"),
            )
            later = {c: statistics.median(t for r in runs[c] for t in r.get("later_seconds", []))
                     for c in medians if any(r.get("later_seconds") for r in runs[c])}  # fmt: skip
            for c in medians:
                ok = [r for r in runs[c] if "seconds" in r]
                times = [r["seconds"] for r in ok]
                ratio = medians[c] / medians["skreg_cv"] if "skreg_cv" in medians else None
                later_ratio = (later[c] / later["skreg_cv"]
                               if c in later and "skreg_cv" in later else None)  # fmt: skip
                scores = ", ".join(f"{v:.4f}" for v in ok[0]["scores"])
                say(f"| {dataset} ({folds} folds) | {labels[c]} | {len(ok)} | {medians[c]:.2f} "
                    f"| {min(times):.2f}-{max(times):.2f} | {fmt(ratio, '{:.2f}x')} "
                    f"| {fmt(later.get(c), '{:.2f}')} | {fmt(later_ratio, '{:.2f}x')} | {scores} "
                    f"| {ok[0]['best_index'] + 1} | {max(r['peak_rss_mb'] for r in ok):.0f} |")
        say()

    if "progress" in sections:
        current = "progress"
        progress_epochs, n_runs = (2, 1) if args.quick else (20, 5)
        heading(f"## Progress output of the CV search: breast_cancer, RegularizedMLPClassifierCV "
                f"16-16, 5 l2 x 5 folds, {progress_epochs} epochs of 32, verbose=0 vs 1\n")
        say(f"{n_runs} processes per setting, run in turn; each searches twice, and the cells "
            "are medians (range) of the 2nd search (programs traced). At verbose=1 the towers "
            "train in calls of about half a second (an epoch a call where epochs are slower) "
            "and the search prints a line after each; the refit of the best candidate is a "
            "plain fit, which at verbose=1 still goes through Keras' Model.fit (its progress "
            "bar), so the search is timed with and without it.\n")
        say("| refit | verbose=0 s | verbose=1 s | verbose=1 / verbose=0 |")
        say("|---|---|---|---|")
        for refit in (False, True):
            runs = {0: [], 1: []}
            for _ in range(n_runs):
                for verbose in runs:
                    runs[verbose].append(in_process({
                        "kind": "cv", "contender": "skreg_cv", "dataset": "breast_cancer",
                        "data_path": None, "epochs": progress_epochs, "folds": 5,
                        "verbose": verbose, "refit": refit}))  # fmt: skip
            later = {verbose: [t for r in results for t in r.get("later_seconds", [])]
                     for verbose, results in runs.items()}  # fmt: skip
            if not all(later.values()):
                errors = [r["error"] for results in runs.values() for r in results if "error" in r]
                say(f"| {refit} | error: {errors[0][:80] if errors else 'no time'} | | |")
                continue
            quiet, loud = (statistics.median(later[v]) for v in (0, 1))
            say(f"| {refit} | {quiet:.3f} ({min(later[0]):.3f}-{max(later[0]):.3f}) "
                f"| {loud:.3f} ({min(later[1]):.3f}-{max(later[1]):.3f}) | {loud / quiet:.2f}x |")
        say()

    if "augmentation" in sections:
        current = "augmentation"
        name, path = next(iter(paths.items()))
        heading(f"## Input dropout's cost: skreg 16-16 on {name}, {epochs} epochs of batch 512\n")
        say(f"Each process's median s/epoch (epochs 2+); {augmentation_runs} processes "
            "(seeds 0, 1, ...) per setting, run in turn so that the machine's drift hits "
            "every setting alike. Target: input_dropout at most 15% over none.\n")  # fmt: skip
        say("| input_dropout | median s/epoch | range over processes | vs none | test accuracy |")
        say("|---|---|---|---|---|")
        settings = {"none": {}, "0.2": {"input_dropout": 0.2}, "0.4": {"input_dropout": 0.4},
                    "0.5": {"input_dropout": 0.5}}
        runs = {setting: [] for setting in settings}
        for seed in range(augmentation_runs):
            for setting, params in settings.items():
                runs[setting].append(in_process({
                    "kind": "train", "contender": "skreg_sparse", "data_path": str(path),
                    "units": 16, "epochs": epochs, "batch_size": 512, "seed": seed,
                    "params": params}))  # fmt: skip
        medians = medians_over_processes(
            runs, "epoch_seconds", lambda setting, error: say(f"| {setting} | failed: {error} | | | |")
        )
        for setting in medians:
            results = runs[setting]
            times = [r["epoch_seconds"] for r in results if "epoch_seconds" in r]
            accuracy = statistics.median(r["val_accuracy"] for r in results if "val_accuracy" in r)
            ratio = medians[setting] / medians["none"] if "none" in medians else None
            say(f"| {setting} | {medians[setting]:.3f} | {min(times):.3f}-{max(times):.3f} "
                f"| {fmt(ratio, '{:.2f}x')} | {accuracy:.4f} |")
        say()

    if "predict" in sections:
        current = "predict"
        repeats = 1 if args.quick else 5
        heading("## Prediction: skreg (float64, row-invariant) vs the network's own "
                "model_.predict (float32)\n")  # fmt: skip
        say(f"The same fitted network, one process per case; median and range of {repeats} "
            "calls after the first. Keras traces its predict function in the first call of "
            "each new model (a grid search pays it every fit); skreg traces nothing.\n")
        say("| case | rows | Keras first call | Keras s | skreg first call | skreg s | skreg / Keras |")
        say("|---|---|---|---|---|---|---|")
        cases = ([("sparse 16-16", 1000), ("dense 16-16", 143)] if args.quick else
                 [("sparse 16-16", 25_000), ("sparse 1024-1024", 5000), ("dense 16-16", 143),
                  ("dense 256-256", 20_000)])  # fmt: skip
        for case, n_rows in cases:
            r = in_process({"kind": "predict", "case": case, "n_rows": n_rows,
                            "repeats": repeats})  # fmt: skip
            if "error" in r:
                say(f"| {case} | {n_rows:,} | failed: {r['error']} | | | | |")
                continue
            keras_s, skreg_s = statistics.median(r["keras"]), statistics.median(r["skreg"])
            say(f"| {case} | {n_rows:,} | {r['keras_first']:.4f} "
                f"| {keras_s:.4f} ({min(r['keras']):.4f}-{max(r['keras']):.4f}) "
                f"| {r['skreg_first']:.4f} "
                f"| {skreg_s:.4f} ({min(r['skreg']):.4f}-{max(r['skreg']):.4f}) "
                f"| {skreg_s / keras_s:.2f}x |")
        say()

    if "halving" in sections:
        current = "halving"
        halving.run_section(say, heading, in_process, next(iter(paths.values())),
                            runs=1 if args.quick else 3, quick=args.quick)  # fmt: skip

    if "recipe" in sections:
        current = "recipe"
        recipe.run_section(say, heading, in_process, next(iter(paths.values())),
                           runs=1 if args.quick else 3, quick=args.quick)  # fmt: skip

    if not args.no_write:
        output = Path(args.output)
        old = output.read_text() if output.exists() and not args.quick else ""
        output.write_text(splice_sections(old, blocks))
        print(f"wrote {output}")


def record_section(name, lines):
    """Splice ``lines`` into the project's BENCHMARKS.md as section ``name``
    (what every benchmark script records)."""
    path = ROOT / "BENCHMARKS.md"
    path.write_text(splice_sections(path.read_text(), {name: lines}))


def splice_sections(old_text, blocks):
    """old_text with each named block replaced (or appended); text outside
    the markers, such as hand-written notes, is kept."""
    text = old_text
    for name, block_lines in blocks.items():
        block = f"<!-- begin {name} -->\n" + "\n".join(block_lines).rstrip() + f"\n<!-- end {name} -->\n"
        begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->\n"
        if begin in text and end in text:
            start = text.index(begin)
            text = text[:start] + block + text[text.index(end, start) + len(end):]
        else:
            text = text.rstrip("\n") + ("\n\n" if text.strip() else "") + block
    return text


if __name__ == "__main__":
    main()
