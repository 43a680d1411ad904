"""A script's first search against its second, and against the peers.

Issue 20's workload: IMDB star ratings as 8 classes (MultiHotVectorizer,
10,000 words, the 25,000 training reviews), 16-16, l2 (alpha) in [0, 1e-4,
1e-3, 1e-2, 1e-1], 3 stratified folds, 10 epochs of 256, with the refit.
Each process loads the data, then runs the same search twice, each timed:
the first pays skreg's one-time tracing (as a script's only search does),
the second finds its programs traced. Contenders, in turn, one fresh
process each per run:

- ``cv``: RegularizedMLPClassifierCV;
- ``grid``: GridSearchCV over RegularizedMLPClassifier;
- ``mlp``: GridSearchCV over scikit-learn's MLPClassifier (max_iter=10).

    python benchmarks/first_search.py [--runs 3] [--no-write]
"""

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

GRID = [0.0, 1e-4, 1e-3, 1e-2, 1e-1]
CONTENDERS = {
    "cv": "RegularizedMLPClassifierCV",
    "grid": "GridSearchCV(RegularizedMLPClassifier)",
    "mlp": "GridSearchCV(MLPClassifier)",
}


def worker(contender):
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from skreg import MultiHotVectorizer, RegularizedMLPClassifier, RegularizedMLPClassifierCV
    from skreg.datasets import load_imdb

    texts, ratings = load_imdb("train", target="rating", return_X_y=True)
    X = MultiHotVectorizer(max_tokens=10_000).fit_transform(texts)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    common = dict(hidden_layer_sizes=(16, 16), batch_size=256, random_state=0)
    if contender == "cv":
        search = RegularizedMLPClassifierCV(param_grid={"l2": GRID}, cv=cv, epochs=10, **common)
    elif contender == "grid":
        search = GridSearchCV(RegularizedMLPClassifier(epochs=10, **common), {"l2": GRID}, cv=cv)
    else:
        from sklearn.neural_network import MLPClassifier

        search = GridSearchCV(MLPClassifier(max_iter=10, **common), {"alpha": GRID}, cv=cv)
    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLPClassifier's ConvergenceWarning at max_iter
            fitted = clone(search).fit(X, ratings)
        seconds.append(time.perf_counter() - start)
    return {"first": seconds[0], "second": seconds[1],
            "best_score": float(fitted.best_score_)}  # fmt: skip


def run(contender):
    from run import script_worker

    return script_worker(__file__, contender)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return
    results = {name: [] for name in CONTENDERS}
    for _ in range(args.runs):
        for name in CONTENDERS:
            results[name].append(run(name))
            print(name, results[name][-1], flush=True)

    def cell(values):
        return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"

    cv_first = statistics.median(r["first"] for r in results["cv"])
    lines = [
        "## A script's first search: IMDB star ratings as 8 classes, 5 l2 x 3 folds",
        "",
        f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"`python benchmarks/first_search.py --runs {args.runs}`; {args.runs} fresh processes "
        "per contender, in turn, each timed after its imports and the data, searching twice "
        "(with the refit); median (range) in seconds.",
        "",
        "| contender | 1st search | 2nd search | 1st - 2nd | 1st search vs skreg CV's | "
        "best mean CV accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in CONTENDERS.items():
        firsts = [r["first"] for r in results[name]]
        seconds = [r["second"] for r in results[name]]
        gaps = [r["first"] - r["second"] for r in results[name]]
        lines.append(f"| {label} | {cell(firsts)} | {cell(seconds)} | {cell(gaps)} | "
                     f"{statistics.median(firsts) / cv_first:.2f}x | "
                     f"{statistics.median(r['best_score'] for r in results[name]):.4f} |")  # fmt: skip
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        from run import record_section

        record_section("first_search", lines)


if __name__ == "__main__":
    main()
