"""Sampled penalty searches with and without successive halving (issue 21).

Each contender runs in a fresh process, timed after its imports, the wall
time including the refit; the contenders run in turn, ``--runs`` rounds.

- IMDB multi-hot (MultiHotVectorizer 10,000 words, the 25,000 training
  reviews), 16-16, 27 candidates sampled from ``l2 ~ loguniform(1e-6, 1e-1)``
  and ``dropout ~ uniform(0, 0.6)`` (MLPClassifier: ``alpha ~
  loguniform(1e-6, 1e-1)``), 3 stratified folds, up to 20 epochs of 512:
  ``skreg_halving`` (RegularizedMLPClassifierCV, factor=3; its last rung
  trains 20 epochs), ``skreg_halving_min1`` (min_epochs=1: the rungs of
  scikit-learn's halving here, 1, 3 and 9 epochs), ``skreg_full``
  (the same 27 candidates trained for every epoch), ``sklearn_random``
  (RandomizedSearchCV(MLPClassifier, n_iter=27, max_iter=20)) and
  ``sklearn_halving`` (HalvingRandomSearchCV(MLPClassifier,
  n_candidates=27, resource="max_iter", max_resources=20, factor=3)). The
  refitted winner is scored on the 25,000 test reviews.
- breast_cancer (StandardScaler), the same 27-candidate budget, 5 folds,
  20 epochs of 32: ``skreg_halving`` against ``sklearn_halving``.

Usage::

    SKREG_DATA_HOME=... python benchmarks/halving.py --runs 3
    python benchmarks/run.py --sections halving     # the same, into BENCHMARKS.md
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

CONTENDERS = {
    "imdb": ("skreg_halving", "skreg_halving_min1", "skreg_full", "sklearn_halving",
             "sklearn_random"),
    "breast_cancer": ("skreg_halving", "sklearn_halving"),
}
LABELS = {
    "skreg_halving": "skreg CV, halving (factor 3)",
    "skreg_halving_min1": "skreg CV, halving, min_epochs=1 (scikit-learn's rungs)",
    "skreg_full": "skreg CV, every candidate every epoch",
    "sklearn_halving": "HalvingRandomSearchCV(MLPClassifier)",
    "sklearn_random": "RandomizedSearchCV(MLPClassifier)",
}
N_CANDIDATES, FACTOR = 27, 3


def halving_worker(contender, dataset, data_path, epochs, folds):
    """One search of ``contender``, timed after the imports; its winner's
    test accuracy (IMDB) and the process's peak RSS."""
    import numpy as np
    from scipy.stats import loguniform, uniform
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import (
        HalvingRandomSearchCV,
        RandomizedSearchCV,
        StratifiedKFold,
    )
    from sklearn.neural_network import MLPClassifier

    from run import load_data, peak_rss_mb
    from skreg import RegularizedMLPClassifierCV

    if dataset == "breast_cancer":
        from sklearn.datasets import load_breast_cancer
        from sklearn.preprocessing import StandardScaler

        X, y = load_breast_cancer(return_X_y=True)
        X, X_test, y_test = StandardScaler().fit_transform(X), None, None
        batch_size = 32
    else:
        X, y, X_test, y_test = load_data(data_path)
        batch_size = 512
    cv = StratifiedKFold(folds)
    common = dict(hidden_layer_sizes=(16, 16), batch_size=batch_size, random_state=0)
    if contender.startswith("skreg"):
        search = RegularizedMLPClassifierCV(
            param_distributions={"l2": loguniform(1e-6, 1e-1), "dropout": uniform(0, 0.6)},
            n_iter=N_CANDIDATES, factor=None if contender == "skreg_full" else FACTOR,
            min_epochs=1 if contender == "skreg_halving_min1" else "auto",
            cv=cv, epochs=epochs, **common,
        )  # fmt: skip
    elif contender == "sklearn_random":
        search = RandomizedSearchCV(
            MLPClassifier(max_iter=epochs, **common), {"alpha": loguniform(1e-6, 1e-1)},
            n_iter=N_CANDIDATES, cv=cv, random_state=0,
        )  # fmt: skip
    else:
        search = HalvingRandomSearchCV(
            MLPClassifier(**common), {"alpha": loguniform(1e-6, 1e-1)},
            n_candidates=N_CANDIDATES, resource="max_iter", max_resources=epochs,
            factor=FACTOR, cv=cv, random_state=0,
        )  # fmt: skip
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLPClassifier's ConvergenceWarning at max_iter
        search.fit(X, y)
    seconds = time.perf_counter() - start
    result = {"seconds": seconds, "best_params": {k: float(v) for k, v in
                                                   search.best_params_.items()},
              "best_score": float(search.best_score_), "peak_rss_mb": peak_rss_mb()}  # fmt: skip
    if hasattr(search, "n_candidates_"):
        result["n_candidates"] = [int(n) for n in search.n_candidates_]
        result["n_resources"] = [int(n) for n in search.n_resources_]
    if X_test is not None:
        result["test_accuracy"] = float(np.mean(search.predict(X_test) == y_test))
    return result


def run_section(say, heading, in_process, data_path, *, runs, quick=False):
    """The runs, in turn, and their table (``say`` writes a line, ``heading``
    the section's title)."""
    epochs = 2 if quick else 20
    cases = [("imdb", str(data_path), 3), ("breast_cancer", None, 5)]
    heading(f"## Successive halving: 27 sampled candidates, up to {epochs} epochs, factor 3\n")
    say("Wall time of the whole search including the refit, each contender in a fresh "
        "process timed after its imports, the contenders in turn. skreg samples `l2 ~ "
        "loguniform(1e-6, 1e-1)` and `dropout ~ uniform(0, 0.6)`, MLPClassifier `alpha ~ "
        "loguniform(1e-6, 1e-1)`; 16-16, same stratified folds. IMDB: 3 folds, batches "
        "of 512, test accuracy of the refitted winner on the 25,000 test reviews. "
        "breast_cancer: 5 folds, batches of 32. `rungs` is candidates @ epochs trained "
        "by the end of each rung.\n")  # fmt: skip
    say("| data | contender | runs | median s | range | vs skreg halving | rungs "
        "| best mean CV score | test accuracy | peak RSS MB |")
    say("|---|---|---|---|---|---|---|---|---|---|")
    for dataset, path, folds in cases:
        results = {c: [] for c in CONTENDERS[dataset]}
        for _ in range(runs):
            for contender in CONTENDERS[dataset]:
                results[contender].append(in_process(
                    {"kind": "halving", "contender": contender, "dataset": dataset,
                     "data_path": path, "epochs": epochs, "folds": folds}))  # fmt: skip
        ok = {c: [r for r in rs if "seconds" in r] for c, rs in results.items()}
        medians = {c: statistics.median(r["seconds"] for r in rs) for c, rs in ok.items() if rs}
        for contender, rs in ok.items():
            if not rs:
                say(f"| {dataset} | {LABELS[contender]} | failed: "
                    f"{results[contender][0].get('error')} |||||||")  # fmt: skip
                continue
            times = [r["seconds"] for r in rs]
            ratio = (f"{medians[contender] / medians['skreg_halving']:.2f}x"
                     if "skreg_halving" in medians else "")  # fmt: skip
            rungs = (", ".join(f"{n} @ {e}" for n, e in zip(rs[0]["n_candidates"],
                                                            rs[0]["n_resources"]))
                     if "n_candidates" in rs[0] else f"{N_CANDIDATES} @ {epochs}")  # fmt: skip
            accuracy = ", ".join(f"{r['test_accuracy']:.4f}" for r in rs if "test_accuracy" in r)
            say(f"| {dataset} | {LABELS[contender]} | {len(rs)} | {medians[contender]:.1f} "
                f"| {min(times):.1f}-{max(times):.1f} | {ratio} | {rungs} "
                f"| {statistics.median(r['best_score'] for r in rs):.4f} | {accuracy or '-'} "
                f"| {max(r['peak_rss_mb'] for r in rs):.0f} |")
    say()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import run

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "imdb.npz"
        run.save_data(path, *run.imdb_multi_hot())
        run_section(print, print, run.in_process, path, runs=args.runs, quick=args.quick)
    print(json.dumps({"done": True}))


if __name__ == "__main__":
    main()
