"""skreg against other checkouts of skreg (baselines), case by case, in
fresh processes run in turn (baseline, current, baseline, ...), so that the
machine's drift reaches all alike. Prints medians and ranges and records
them in BENCHMARKS.md (section ``trainer``).

Usage::

    git worktree add /tmp/baseline <commit>
    python benchmarks/trainer_compare.py --baseline /tmp/baseline --runs 5
    # several baselines: --baseline A --label a --baseline B --label b

Cases (each a fresh process, timed after its imports):

- ``tiny``: fits of 300 x 20, 10 epochs: the first (tracing) and the median
  of 20 more; a 25-fit GridSearchCV on breast_cancer (StandardScaler, 16-16,
  5 l2 x 5 folds, 20 epochs of 32) twice in the process.
- ``imdb_fit``: IMDB multi-hot (25,000 x 10,000), 16-16, batch 512, plain
  and with token dropout (input_dropout=0.4): the first 4-epoch fit, and
  seconds an epoch as (5-epoch fit - 1-epoch fit) / 4, median of 3.
- ``progress``: breast_cancer 16-16, 20 epochs of 32: median of 5 fits
  silent, at verbose=1 and with an EarlyStopping callback.
- ``cv_cancer``, ``cv_imdb``: RegularizedMLPClassifierCV with its refit,
  5 l2 values, first search in the process and the same search again
  (breast_cancer: 5 folds, 20 epochs of 32; IMDB: 3 folds, 20 epochs of 512).
- ``first_imdb8``: a process's one-time cost in issue 20's search (IMDB
  star ratings as 8 classes, 16-16, 5 l2 x 3 folds, batches of 256, with
  the refit) at 2 epochs, three searches in the process: the first minus
  the mean of the other two; then the same for RegularizedMLPRegressorCV
  on the ratings as numbers (another program, traced anew). The short
  searches keep the machine's drift, which grows with a search's length,
  from hiding the one-time cost.
- ``interrupt``: Ctrl-C (SIGINT to the process, from a timer) 3 s into a
  silent fit and a silent CV search of 64-64 networks on 20,000 x 50
  (make_classification; the fit: 400 epochs, the search: 3 l2 x 3 folds,
  100 epochs): seconds from the signal to the KeyboardInterrupt; and the
  same fit uninterrupted at 20 epochs (after a warm-up fit), for what
  calls of about half a second cost.
- ``study``: ``skreg study`` on IMDB (the book's 20 epochs of 512, scored on
  the 25,000 test reviews after each epoch) with its per-epoch progress
  lines, its files and figures, for the variants other than ``bigger``
  (bound by its 1024-wide arithmetic); and each variant's final val_loss.
"""

import argparse
import contextlib
import io
import json
import os
import signal
import statistics
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

CASES = ("tiny", "imdb_fit", "progress", "cv_cancer", "cv_imdb", "first_imdb8", "interrupt",
         "study")
STUDY_VARIANTS = ("original", "smaller", "l2", "l1", "l1_l2", "dropout", "batch_norm",
                  "token_dropout")  # fmt: skip


def _breast_cancer():
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _imdb():
    from skreg import MultiHotVectorizer
    from skreg.datasets import load_imdb

    texts, y = load_imdb("train", return_X_y=True)
    return MultiHotVectorizer(max_tokens=10_000).fit_transform(texts), y


def _timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _ctrl_c_latency(fit, after):
    """Seconds from a SIGINT sent ``after`` seconds into ``fit()`` to its
    KeyboardInterrupt (NaN if the fit ended first)."""
    sent = []

    def interrupt():
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(after, interrupt)
    timer.start()
    try:
        fit()
    except KeyboardInterrupt:
        return time.perf_counter() - sent[0]
    finally:
        timer.cancel()
    return float("nan")


def _interrupt_case():
    from sklearn.datasets import make_classification

    from skreg import RegularizedMLPClassifier, RegularizedMLPClassifierCV

    X, y = make_classification(n_samples=20_000, n_features=50, n_informative=20,
                               random_state=0)  # fmt: skip
    X = X.astype(np.float32)
    common = dict(hidden_layer_sizes=(64, 64), random_state=0)
    out = {}
    RegularizedMLPClassifier(epochs=1, **common).fit(X, y)  # warm-up: the trace
    out["64-64 fit on 20,000 x 50, 20 epochs, uninterrupted (s)"] = statistics.median(
        _timed(lambda: RegularizedMLPClassifier(epochs=20, **common).fit(X, y))
        for _ in range(3))
    out["Ctrl-C 3 s into a 400-epoch 64-64 fit: seconds to stop"] = _ctrl_c_latency(
        lambda: RegularizedMLPClassifier(epochs=400, **common).fit(X, y), after=3.0)
    search = RegularizedMLPClassifierCV(param_grid={"l2": [0.0, 1e-4, 1e-3]}, cv=3, epochs=100,
                                        **common)  # fmt: skip
    out["Ctrl-C 3 s into a 64-64 CV search: seconds to stop"] = _ctrl_c_latency(
        lambda: search.fit(X, y), after=3.0)
    return out


def worker(case):
    """One process's numbers for ``case`` (dict of seconds)."""
    from sklearn.model_selection import GridSearchCV

    from skreg import RegularizedMLPClassifier, RegularizedMLPClassifierCV

    out = {}
    if case == "interrupt":
        return _interrupt_case()
    if case == "tiny":
        rng = np.random.RandomState(0)
        X = rng.rand(300, 20).astype(np.float32)
        y = (X[:, 0] + X[:, 1] > 1).astype(int)
        times = [_timed(lambda: RegularizedMLPClassifier(epochs=10, random_state=0).fit(X, y))
                 for _ in range(21)]  # fmt: skip
        out["tiny fit, first (s)"], out["tiny fit, later (s)"] = times[0], statistics.median(
            times[1:]
        )
        X, y = _breast_cancer()
        for i in (1, 2):
            estimator = RegularizedMLPClassifier(epochs=20, batch_size=32, random_state=0)
            grid = GridSearchCV(estimator, {"l2": [0, 1e-4, 1e-3, 1e-2, 1e-1]}, cv=5)
            out[f"breast_cancer GridSearchCV(skreg), search {i} (s)"] = _timed(
                lambda: grid.fit(X, y)
            )
        out["breast_cancer GridSearchCV(skreg), search 1 - search 2 (s)"] = (
            out["breast_cancer GridSearchCV(skreg), search 1 (s)"]
            - out["breast_cancer GridSearchCV(skreg), search 2 (s)"])
    elif case == "imdb_fit":
        X, y = _imdb()
        for name, params in (("plain", {}), ("token dropout 0.4", {"input_dropout": 0.4})):

            def fit(n_epochs, params=params):
                RegularizedMLPClassifier(hidden_layer_sizes=(16, 16), batch_size=512,
                                         epochs=n_epochs, random_state=0, **params).fit(X, y)  # fmt: skip

            out[f"IMDB 16-16 {name}: first fit, 4 epochs (s)"] = _timed(lambda: fit(4))
            per_epoch = [(_timed(lambda: fit(5)) - _timed(lambda: fit(1))) / 4 for _ in range(3)]
            out[f"IMDB 16-16 {name}: s/epoch"] = statistics.median(per_epoch)
    elif case == "progress":
        from skreg._backend.tensorflow import keras

        X, y = _breast_cancer()
        variants = {
            "silent": {},
            "verbose=1": {"verbose": 1},
            "EarlyStopping callback": {
                "fit__callbacks": [keras.callbacks.EarlyStopping(monitor="loss", patience=50)]
            },
        }
        for name, params in variants.items():

            def fit(params=params):
                RegularizedMLPClassifier(epochs=20, batch_size=32, random_state=0,
                                         **params).fit(X, y)  # fmt: skip

            with contextlib.redirect_stdout(io.StringIO()):
                fit()
                times = [_timed(fit) for _ in range(5)]
            out[f"breast_cancer fit, {name} (s)"] = statistics.median(times)
    elif case in ("cv_cancer", "cv_imdb"):
        X, y = _breast_cancer() if case == "cv_cancer" else _imdb()
        settings = (dict(cv=5, batch_size=32) if case == "cv_cancer"
                    else dict(cv=3, batch_size=512))  # fmt: skip
        name = "breast_cancer" if case == "cv_cancer" else "IMDB"
        for i in (1, 2):
            search = RegularizedMLPClassifierCV(param_grid={"l2": [0, 1e-4, 1e-3, 1e-2, 1e-1]},
                                                epochs=20, random_state=0, **settings)  # fmt: skip
            out[f"{name} RegularizedMLPClassifierCV, search {i} (s)"] = _timed(
                lambda: search.fit(X, y)
            )
        # The one-time cost, per process (the two searches share its drift).
        out[f"{name} RegularizedMLPClassifierCV, search 1 - search 2 (s)"] = (
            out[f"{name} RegularizedMLPClassifierCV, search 1 (s)"]
            - out[f"{name} RegularizedMLPClassifierCV, search 2 (s)"])
    elif case == "first_imdb8":
        from sklearn.base import clone
        from sklearn.model_selection import KFold, StratifiedKFold

        from skreg import MultiHotVectorizer, RegularizedMLPRegressorCV
        from skreg.datasets import load_imdb

        texts, ratings = load_imdb("train", target="rating", return_X_y=True)
        X = MultiHotVectorizer(max_tokens=10_000).fit_transform(texts)
        search = RegularizedMLPClassifierCV(
            param_grid={"l2": [0, 1e-4, 1e-3, 1e-2, 1e-1]},
            cv=StratifiedKFold(3, shuffle=True, random_state=0), epochs=2,
            hidden_layer_sizes=(16, 16), batch_size=256, random_state=0,
        )  # fmt: skip
        times = [_timed(lambda: clone(search).fit(X, ratings)) for _ in range(3)]
        name = "IMDB 8 classes RegularizedMLPClassifierCV, 2 epochs"
        out[f"{name}: search 1 (s)"] = times[0]
        out[f"{name}: searches 2 and 3 (s)"] = (times[1] + times[2]) / 2
        out[f"{name}: one-time cost (s)"] = times[0] - (times[1] + times[2]) / 2
        # The regressor's program is another structure (its loss): the
        # same searches on the star ratings as numbers, traced anew.
        regressor = RegularizedMLPRegressorCV(
            param_grid={"l2": [0, 1e-4, 1e-3, 1e-2, 1e-1]},
            cv=KFold(3, shuffle=True, random_state=0), epochs=2,
            hidden_layer_sizes=(16, 16), batch_size=256, random_state=0,
        )  # fmt: skip
        stars = ratings.astype(np.float64)
        times = [_timed(lambda: clone(regressor).fit(X, stars)) for _ in range(3)]
        out["IMDB ratings RegularizedMLPRegressorCV, 2 epochs: one-time cost (s)"] = (
            times[0] - (times[1] + times[2]) / 2)
    elif case == "study":
        import tempfile

        from skreg.cli import main

        with tempfile.TemporaryDirectory() as folder:
            argv = ["study", "--variants", ",".join(STUDY_VARIANTS), "--output", folder]
            with contextlib.redirect_stdout(io.StringIO()):  # its progress lines
                out["skreg study, the variants but bigger (s)"] = _timed(lambda: main(argv))
            with open(Path(folder) / "histories.json") as f:
                histories = json.load(f)
        for name in STUDY_VARIANTS:
            out[f"study {name}: final val_loss"] = histories[name]["val_loss"][-1]
    else:
        raise ValueError(case)
    return out


def run(case, checkout):
    """``case`` in a fresh process importing skreg from ``checkout``."""
    from run import script_worker

    try:
        return script_worker(__file__, case, env={**os.environ, "PYTHONPATH": str(checkout)})
    except RuntimeError as error:
        raise RuntimeError(f"in {checkout}: {error}") from None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", action="append", default=[],
                        help="a checkout of skreg to compare with (repeatable)")
    parser.add_argument("--label", action="append", default=[],
                        help="each baseline's name in the table, in their order")
    parser.add_argument("--runs", type=int, default=5, help="processes per case and checkout")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        warnings.simplefilter("ignore")
        print(json.dumps(worker(args.worker)))
        return
    labels = args.label + [f"baseline {i + 1}" for i in range(len(args.label),
                                                               len(args.baseline))]  # fmt: skip
    checkouts = {**{label: Path(path) for label, path in zip(labels, args.baseline)},
                 "current": ROOT}  # fmt: skip
    lines = [
        f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"`python benchmarks/trainer_compare.py --runs {args.runs}"
        + "".join(f" --label {label}" for label in labels[: len(args.baseline)]) + "`"
        + f"; {args.runs} fresh processes per case and checkout, in turn; median (range).\n",
        "| measure | " + " | ".join(checkouts) + " |",
        "|---|" + "---|" * len(checkouts),
    ]
    for case in args.cases.split(","):
        results = {name: [] for name in checkouts}
        for _ in range(args.runs):
            for name, checkout in checkouts.items():
                results[name].append(run(case, checkout))
        for measure in results["current"][0]:
            cells = []
            for name in checkouts:
                values = [r[measure] for r in results[name]]
                cells.append(f"{statistics.median(values):.3f} "
                             f"({min(values):.3f}-{max(values):.3f})")  # fmt: skip
            lines.append(f"| {measure} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        from run import record_section

        block = "## Trainer: this checkout against earlier ones\n\n" + table + "\n"
        record_section("trainer", block.splitlines())


if __name__ == "__main__":
    main()
