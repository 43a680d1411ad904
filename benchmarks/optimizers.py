"""Issue 34's targets: every optimizer, option and regularizer on the
program, timed against the default fit, and CV searches over the modern
defences against GridSearchCV over skreg. Prints a table and records it in
BENCHMARKS.md (section ``optimizers``).

Usage::

    python benchmarks/optimizers.py --runs 5

- ``fits``: breast_cancer (StandardScaler, 16-16, 20 epochs of 32) and the
  IMDB 16-16 epoch (25,000 x 10,000 multi-hot, batch 512; seconds an epoch
  as (4-epoch fit - 1-epoch fit) / 3). Per setting, in one process: the
  default and the setting fitted once (their programs traced), then
  ``runs`` rounds of a default fit and a fit of the setting in turn; the
  setting's median and the median of the rounds' ratios. (Cycling through
  all the settings in turn would time retracing: the process keeps the
  programs of the 8 structures used last.)
- ``searches``: RegularizedMLPClassifierCV over ``weight_decay``,
  ``max_norm``, ``label_smoothing`` or ``hidden_noise`` (3 values, 5 folds, 20 epochs of 32,
  no refit) against GridSearchCV over RegularizedMLPClassifier on the same
  grid and folds; the second search of each in the process, ``runs``
  rounds in turn; and the largest difference of their mean scores.
"""

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))


def _settings():
    from skreg._backend.tensorflow import keras

    def cosine():  # a new optimizer each fit (the estimator copies it anyway)
        return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(
            1e-3, decay_steps=1000, warmup_target=3e-3, warmup_steps=100))  # fmt: skip

    return {
        "default (rmsprop)": {},
        "adam": {"optimizer": "adam"},
        "adamw": {"optimizer": "adamw"},
        "nadam": {"optimizer": "nadam"},
        "adagrad": {"optimizer": "adagrad"},
        "sgd, nesterov momentum": {"optimizer": "sgd", "optimizer__momentum": 0.9,
                                   "optimizer__nesterov": True},
        "adam, weight_decay=1e-4": {"optimizer": "adam", "weight_decay": 1e-4},
        "adam, clipnorm=1.0": {"optimizer": "adam", "optimizer__clipnorm": 1.0},
        "adam, cosine schedule with warmup": {"optimizer": cosine},
        "max_norm=1": {"max_norm": 1.0},
        "label_smoothing=0.1": {"label_smoothing": 0.1},
        "hidden_noise=0.3": {"hidden_noise": 0.3},
    }  # fmt: skip


def _resolved(params):
    return {k: v() if callable(v) else v for k, v in params.items()}


def _timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _fit_rows(name, X, y, runs, *, common, seconds):
    """Per setting: its median seconds over ``runs`` rounds, each a fit of
    the default and one of the setting in turn (two programs in the cache,
    both traced before), and the median of the rounds' ratios."""
    from skreg import RegularizedMLPClassifier

    rows = []
    for label, params in _settings().items():
        paths = []
        for p in ({}, params):  # each program traced once
            paths.append(RegularizedMLPClassifier(**common, **_resolved(p)).fit(X, y))
        path = paths[1].training_path_
        times = {"default": [], "setting": []}
        for _ in range(runs):
            for key, p in (("default", {}), ("setting", params)):
                times[key].append(seconds(lambda p=p: RegularizedMLPClassifier(
                    **common, **_resolved(p))))  # fmt: skip
        ratios = [t / d for t, d in zip(times["setting"], times["default"])]
        own = times["setting"]
        rows.append(f"| {name} | {label} | {path} | "
                    f"{statistics.median(own):.3f} ({min(own):.3f}-{max(own):.3f}) | "
                    f"{statistics.median(ratios):.2f}x |")  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def cancer_fits(runs):
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return _fit_rows("breast_cancer, 20 epochs", X, y, runs,
                     common=dict(epochs=20, batch_size=32, random_state=0),
                     seconds=lambda make: _timed(lambda: make().fit(X, y)))  # fmt: skip


def fits(runs):
    from skreg import MultiHotVectorizer
    from skreg.datasets import load_imdb

    rows = cancer_fits(runs)
    texts, labels = load_imdb("train", return_X_y=True)
    X_imdb = MultiHotVectorizer(max_tokens=10_000).fit_transform(texts)

    def epoch_seconds(make):
        four = _timed(lambda: make().set_params(epochs=4).fit(X_imdb, labels))
        one = _timed(lambda: make().set_params(epochs=1).fit(X_imdb, labels))
        return (four - one) / 3

    rows += _fit_rows("IMDB 16-16, an epoch", X_imdb, labels, runs,
                      common=dict(epochs=1, batch_size=512, random_state=0),
                      seconds=epoch_seconds)  # fmt: skip
    return rows


def searches(runs):
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    from skreg import RegularizedMLPClassifier, RegularizedMLPClassifierCV

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    grids = {
        "weight_decay (adamw)": ({"weight_decay": [None, 1e-2, 1e-1]}, {"optimizer": "adamw"}),
        "max_norm (dropout 0.3)": ({"max_norm": [None, 1.0, 0.3]}, {"dropout": 0.3}),
        "label_smoothing": ({"label_smoothing": [0.0, 0.1, 0.3]}, {}),
        "hidden_noise": ({"hidden_noise": [0.0, 0.3, 1.0]}, {}),
    }  # fmt: skip
    rows = []
    for label, (grid, settings) in grids.items():
        common = dict(epochs=20, batch_size=32, random_state=0, **settings)

        def ours():
            return RegularizedMLPClassifierCV(param_grid=grid, cv=folds, refit=False,
                                              **common).fit(X, y)  # fmt: skip

        def theirs():
            return GridSearchCV(RegularizedMLPClassifier(**common), grid, cv=folds,
                                refit=False).fit(X, y)  # fmt: skip

        path = ours().training_path_
        difference = np.max(np.abs(ours().cv_results_["mean_test_score"]
                                   - theirs().cv_results_["mean_test_score"]))  # fmt: skip
        times = {"ours": [], "theirs": []}
        for _ in range(runs):
            times["ours"].append(_timed(ours))
            times["theirs"].append(_timed(theirs))
        ratio = statistics.median(t / o for o, t in zip(times["ours"], times["theirs"]))
        cells = [f"{statistics.median(v):.3f} ({min(v):.3f}-{max(v):.3f})" for v in times.values()]
        rows.append(f"| {label} | {path} | {cells[0]} | {cells[1]} | {ratio:.2f}x | "
                    f"{difference:.4f} |")  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cases", default="fits,searches",
                        help="fits, searches, or cancer_fits (the breast_cancer fits alone: "
                             "cheap enough for many rounds)")  # fmt: skip
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    cases = args.cases.split(",")
    lines = ["## Optimizers and regularizers on the program (issue 34)", "",
             f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"`python benchmarks/optimizers.py --runs {args.runs} --cases {args.cases}`; "
             "one process, the "
             "settings in turn; median (range) of the rounds.", ""]  # fmt: skip
    for case, rows in (("fits", fits), ("cancer_fits", cancer_fits)):
        if case in cases:
            lines += ["| data | setting | trained by | seconds | vs the default fit |",
                      "|---|---|---|---|---|", *rows(args.runs), ""]  # fmt: skip
    if "searches" in cases:
        lines += ["| CV search over (breast_cancer, 3 values x 5 folds, 20 epochs) | "
                  "trained by | RegularizedMLPClassifierCV (s) | GridSearchCV over skreg (s) | "
                  "speed-up | largest mean-score difference |",
                  "|---|---|---|---|---|---|", *searches(args.runs), ""]  # fmt: skip
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        from run import record_section

        record_section("optimizers" + ("" if set(cases) == {"fits", "searches"} else
                                       "_" + "_".join(cases)), lines)  # fmt: skip


if __name__ == "__main__":
    main()
