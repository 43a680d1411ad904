"""Whole-recipe searches: capacity beside the penalties (issue 35).

27 candidates sampled from ``hidden_layer_sizes`` in [(8, 8), (16, 16),
(64, 64)], ``l2 ~ loguniform(1e-6, 1e-1)`` and ``dropout ~ uniform(0, 0.6)``
(MLPClassifier: the same sizes and ``alpha ~ loguniform(1e-6, 1e-1)``),
stratified folds, up to 20 epochs, factor 3. Each contender runs in a fresh
process, timed after its imports (the wall time includes the refit or the
fold ensemble), the contenders in turn, ``--runs`` rounds.

- ``skreg_halving``: RegularizedMLPClassifierCV(factor=3), its default
  schedule (the last rung trains 20 epochs), refitting the winner;
  ``skreg_halving_ensemble`` the same keeping the winner's fold networks
  (``fold_ensemble=True``, no refit);
- ``skreg_halving_min1``: min_epochs=1, scikit-learn's halving rungs here
  (27 @ 1, 9 @ 3, 3 @ 9), against ``sklearn_halving``,
  HalvingRandomSearchCV(MLPClassifier, resource="max_iter");
- ``skreg_full``: every candidate every epoch, against ``skreg_random``,
  RandomizedSearchCV over RegularizedMLPClassifier (the same 27 candidates:
  one ParameterSampler draw).

IMDB: multi-hot of 10,000 words, 3 folds, batches of 512, the winner scored
on the 25,000 test reviews. digits (the multiclass corpus): StandardScaler,
70/30 stratified split per seed, 5 folds, batches of 32; the refit and the
fold ensemble over five seeds. ``--ratings``: the refit and the fold
ensemble on IMDB's star ratings as 8 classes (its own section).

Usage::

    SKREG_DATA_HOME=... python benchmarks/recipe.py --runs 3
    SKREG_DATA_HOME=... python benchmarks/recipe.py --ratings --runs 3
    python benchmarks/run.py --sections recipe     # the same, into BENCHMARKS.md
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

IMDB_CONTENDERS = ("skreg_halving", "skreg_halving_ensemble", "skreg_halving_min1",
                   "sklearn_halving", "skreg_full", "skreg_random")  # fmt: skip
DIGITS_CONTENDERS = ("skreg_halving", "skreg_halving_ensemble")
DIGITS_SEEDS = (0, 1, 2, 3, 4)
LABELS = {
    "skreg_halving": "skreg CV, halving (factor 3), refit",
    "skreg_halving_ensemble": "skreg CV, halving (factor 3), fold ensemble",
    "skreg_halving_min1": "skreg CV, halving, min_epochs=1 (scikit-learn's rungs)",
    "sklearn_halving": "HalvingRandomSearchCV(MLPClassifier)",
    "skreg_full": "skreg CV, every candidate every epoch",
    "skreg_random": "RandomizedSearchCV(RegularizedMLPClassifier)",
}
N_CANDIDATES, FACTOR = 27, 3
SIZES = [(8, 8), (16, 16), (64, 64)]


def _data(dataset, data_path, seed):
    if dataset == "imdb_ratings":
        from skreg import MultiHotVectorizer
        from skreg.datasets import load_imdb

        train = load_imdb("train", target="rating", return_X_y=True)
        test = load_imdb("test", target="rating", return_X_y=True)
        vectorizer = MultiHotVectorizer(max_tokens=10_000)
        X, X_test = vectorizer.fit_transform(train[0]), vectorizer.transform(test[0])
        return X, train[1], X_test, test[1], 512
    if dataset == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler

        X, y = load_digits(return_X_y=True)
        X, X_test, y, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                random_state=seed)  # fmt: skip
        scaler = StandardScaler().fit(X)
        return scaler.transform(X), y, scaler.transform(X_test), y_test, 32
    from run import load_data

    return (*load_data(data_path), 512)


def _search(contender, epochs, cv, batch_size, seed, n_candidates=N_CANDIDATES):
    from scipy.stats import loguniform, uniform
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingRandomSearchCV, RandomizedSearchCV
    from sklearn.neural_network import MLPClassifier

    from skreg import RegularizedMLPClassifier, RegularizedMLPClassifierCV

    space = {"hidden_layer_sizes": SIZES, "l2": loguniform(1e-6, 1e-1),
             "dropout": uniform(0, 0.6)}  # fmt: skip
    common = dict(batch_size=batch_size, random_state=seed)
    if contender == "sklearn_halving":
        return HalvingRandomSearchCV(
            MLPClassifier(**common), {"hidden_layer_sizes": SIZES,
                                      "alpha": loguniform(1e-6, 1e-1)},
            n_candidates=n_candidates, resource="max_iter", max_resources=epochs,
            factor=FACTOR, cv=cv, random_state=seed,
        )  # fmt: skip
    if contender == "skreg_random":
        return RandomizedSearchCV(RegularizedMLPClassifier(epochs=epochs, **common), space,
                                  n_iter=n_candidates, cv=cv, random_state=seed)  # fmt: skip
    return RegularizedMLPClassifierCV(
        param_distributions=space, n_iter=n_candidates,
        factor=None if contender == "skreg_full" else FACTOR,
        min_epochs=1 if contender == "skreg_halving_min1" else "auto",
        fold_ensemble=contender == "skreg_halving_ensemble", cv=cv, epochs=epochs, **common,
    )  # fmt: skip


def recipe_worker(contender, dataset, data_path, epochs, folds, seed=0,
                  n_candidates=N_CANDIDATES):  # fmt: skip
    """One search of ``contender``, timed after the imports: its winner,
    test accuracy, refit seconds and the process's peak RSS."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    from run import peak_rss_mb

    X, y, X_test, y_test, batch_size = _data(dataset, data_path, seed)
    search = _search(contender, epochs, StratifiedKFold(folds), batch_size, seed, n_candidates)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLPClassifier's ConvergenceWarning at max_iter
        search.fit(X, y)
    seconds = time.perf_counter() - start
    result = {"seconds": seconds, "best_params": {k: f"{v:.3g}" if isinstance(v, float)
                                                   else repr(v)
                                                   for k, v in search.best_params_.items()},
              "best_score": float(search.best_score_), "peak_rss_mb": peak_rss_mb(),
              "refit_seconds": float(search.refit_time_),
              "test_accuracy": float(np.mean(search.predict(X_test) == y_test)),
              "n_searched": n_candidates}  # fmt: skip
    if hasattr(search, "n_candidates_"):
        result["n_candidates"] = [int(n) for n in search.n_candidates_]
        result["n_resources"] = [int(n) for n in search.n_resources_]
    if hasattr(search, "training_path_"):
        result["training_path"] = search.training_path_
    return result


def _row(say, dataset, contender, rs, medians, reference, epochs):
    times = [r["seconds"] for r in rs]
    ratio = (f"{medians[contender] / medians[reference]:.2f}x"
             if reference in medians else "")  # fmt: skip
    rungs = (", ".join(f"{n} @ {e}" for n, e in zip(rs[0]["n_candidates"],
                                                    rs[0]["n_resources"]))
             if "n_candidates" in rs[0] else f"{rs[0]['n_searched']} @ {epochs}")  # fmt: skip
    accuracy = ", ".join(sorted({f"{r['test_accuracy']:.4f}" for r in rs}))
    winner = rs[0]["best_params"].get("hidden_layer_sizes", "")
    say(f"| {dataset} | {LABELS[contender]} | {len(rs)} | {medians[contender]:.1f} "
        f"| {min(times):.1f}-{max(times):.1f} | {ratio} | {rungs} | {winner} "
        f"| {statistics.median(r['best_score'] for r in rs):.4f} | {accuracy} "
        f"| {statistics.median(r['refit_seconds'] for r in rs):.2f} "
        f"| {max(r['peak_rss_mb'] for r in rs):.0f} |")


def run_section(say, heading, in_process, data_path, *, runs, quick=False):
    """The runs, in turn, and their tables (``say`` writes a line,
    ``heading`` the section's title)."""
    epochs = 2 if quick else 20
    n_candidates = 6 if quick else N_CANDIDATES  # quick: a smoke run
    heading(f"## Whole-recipe search: 27 candidates over widths and penalties, up to {epochs} "
            "epochs, factor 3\n")  # fmt: skip
    say("Each contender in a fresh process timed after its imports (the search's wall time, "
        "its refit or fold ensemble included), the contenders in turn. Sampled: "
        "`hidden_layer_sizes` in (8, 8), (16, 16), (64, 64), `l2 ~ loguniform(1e-6, 1e-1)`, "
        "`dropout ~ uniform(0, 0.6)` (MLPClassifier: the sizes and `alpha ~ "
        "loguniform(1e-6, 1e-1)`). IMDB: multi-hot 10,000 words, 3 stratified folds, "
        "batches of 512, the winner's accuracy on the 25,000 test reviews. `vs` is the "
        "time over skreg halving's (refit). `refit s` is `refit_time_` (for the fold "
        "ensemble: making the fold networks into estimators).\n")  # fmt: skip
    say("| data | contender | runs | median s | range | vs | rungs | winner's widths "
        "| best mean CV score | test accuracy | refit s | peak RSS MB |")
    say("|---|---|---|---|---|---|---|---|---|---|---|---|")
    results = {c: [] for c in IMDB_CONTENDERS}
    for _ in range(runs):
        for contender in IMDB_CONTENDERS:
            results[contender].append(in_process(
                {"kind": "recipe", "contender": contender, "dataset": "imdb",
                 "data_path": str(data_path), "epochs": epochs, "folds": 3,
                 "n_candidates": n_candidates}))  # fmt: skip
    _table(say, "imdb", results, epochs)
    say()
    say("digits (multiclass): the refit against the fold ensemble, 5 folds, batches of 32, "
        "one run per seed (split, folds' draws, candidates and networks all from the seed); "
        "test accuracy on the seed's 30% held out.\n")  # fmt: skip
    say("| seed | refit: test accuracy | fold ensemble: test accuracy | refit: s "
        "| fold ensemble: s | winner |")
    say("|---|---|---|---|---|---|")
    for seed in DIGITS_SEEDS[:1] if quick else DIGITS_SEEDS:
        refit, ensemble = (in_process(
            {"kind": "recipe", "contender": contender, "dataset": "digits", "data_path": None,
             "epochs": epochs, "folds": 5, "seed": seed, "n_candidates": n_candidates})
            for contender in DIGITS_CONTENDERS)  # fmt: skip
        if "error" in refit or "error" in ensemble:
            say(f"| {seed} | failed: {refit.get('error') or ensemble.get('error')} |||||")
            continue
        say(f"| {seed} | {refit['test_accuracy']:.4f} | {ensemble['test_accuracy']:.4f} "
            f"| {refit['seconds']:.1f} | {ensemble['seconds']:.1f} "
            f"| {', '.join(f'{k}={v}' for k, v in sorted(refit['best_params'].items()))} |")
    say()


def _table(say, dataset, results, epochs):
    ok = {c: [r for r in rs if "seconds" in r] for c, rs in results.items()}
    medians = {c: statistics.median(r["seconds"] for r in rs) for c, rs in ok.items() if rs}
    for contender, rs in ok.items():
        if not rs:
            say(f"| {dataset} | {LABELS[contender]} | failed: "
                f"{results[contender][0].get('error')} ||||||||||")  # fmt: skip
            continue
        _row(say, dataset, contender, rs, medians, "skreg_halving", epochs)


def ratings_section(runs):
    """The refit against the fold ensemble on IMDB's star ratings as 8
    classes (a second, noisier multiclass corpus), ``runs`` rounds in fresh
    processes; the section's lines."""
    import run

    results = {c: [] for c in DIGITS_CONTENDERS}
    for _ in range(runs):
        for contender in DIGITS_CONTENDERS:
            results[contender].append(run.in_process(
                {"kind": "recipe", "contender": contender, "dataset": "imdb_ratings",
                 "data_path": None, "epochs": 20, "folds": 3}))  # fmt: skip
    lines = ["## Fold ensemble against the refit: IMDB star ratings as 8 classes", "",
             f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, `python "
             f"benchmarks/recipe.py --ratings --runs {runs}`; fresh processes, in turn. The "
             "whole-recipe halving search of the table above (27 candidates, factor 3, 3 "
             "folds, up to 20 epochs of 512) on the ratings of the 25,000 training reviews; "
             "accuracy on the 25,000 test reviews' ratings.", "",
             "| final model | runs | median s (range) | refit s | best mean CV score "
             "| test accuracy | winner |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for contender, rs in results.items():
        rs = [r for r in rs if "seconds" in r] or rs
        if "seconds" not in rs[0]:
            lines.append(f"| {LABELS[contender]} | failed: {rs[0].get('error')} ||||||")
            continue
        times = [r["seconds"] for r in rs]
        winner = ", ".join(f"{k}={v}" for k, v in sorted(rs[0]["best_params"].items()))
        lines.append(f"| {LABELS[contender]} | {len(rs)} | {statistics.median(times):.1f} "
                     f"({min(times):.1f}-{max(times):.1f}) "
                     f"| {statistics.median(r['refit_seconds'] for r in rs):.2f} "
                     f"| {rs[0]['best_score']:.4f} | {rs[0]['test_accuracy']:.4f} | {winner} |")
    return lines + [""]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ratings", action="store_true",
                        help="only the refit against the fold ensemble on IMDB's ratings, "
                             "into BENCHMARKS.md (section recipe_ratings)")
    args = parser.parse_args()
    import run

    if args.ratings:
        lines = ratings_section(args.runs)
        print("\n".join(lines))
        run.record_section("recipe_ratings", lines)
        return

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "imdb.npz"
        run.save_data(path, *run.imdb_multi_hot())
        run_section(print, print, run.in_process, path, runs=args.runs, quick=args.quick)
    print(json.dumps({"done": True}))


if __name__ == "__main__":
    main()
