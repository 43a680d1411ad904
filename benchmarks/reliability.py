"""How reliable the CV estimator's scores are next to GridSearchCV's.

Issue 20's workload: IMDB star ratings as 8 classes (MultiHotVectorizer,
10,000 words, the 25,000 training reviews), 16-16, l2 in [0, 1e-4, 1e-3,
1e-2, 1e-1], 3 stratified folds (the same for every contender and seed), 10
epochs of 256; one fresh process per contender and seed. For each candidate:
its mean held-out accuracy averaged over the seeds, and its standard
deviation across the seeds.

Contenders: ``cv`` (RegularizedMLPClassifierCV) and ``grid`` (GridSearchCV
over RegularizedMLPClassifier).

    python benchmarks/reliability.py [--seeds 0,1,2,3,4] [--output BENCHMARKS.md]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

GRID = {"l2": [0.0, 1e-4, 1e-3, 1e-2, 1e-1]}
CONTENDERS = ("cv", "grid")


def worker(contender, seed, data_home):
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from skreg import MultiHotVectorizer, RegularizedMLPClassifier, RegularizedMLPClassifierCV
    from skreg.datasets import load_imdb

    texts, ratings = load_imdb("train", target="rating", data_home=data_home, return_X_y=True)
    X = MultiHotVectorizer(max_tokens=10_000).fit_transform(texts)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    common = dict(hidden_layer_sizes=(16, 16), epochs=10, batch_size=256, random_state=seed)
    start = time.perf_counter()
    if contender == "grid":
        search = GridSearchCV(RegularizedMLPClassifier(**common), GRID, cv=cv, refit=False)
    else:
        search = RegularizedMLPClassifierCV(param_grid=GRID, cv=cv, refit=False, **common)
    search.fit(X, ratings)
    return {"seconds": time.perf_counter() - start,
            "scores": search.cv_results_["mean_test_score"].tolist()}  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--data-home", default=str(Path(__file__).resolve().parents[2]
                                                   / "shared" / "data"))  # fmt: skip
    parser.add_argument("--output", default=str(Path(__file__).resolve().parents[1]
                                                / "BENCHMARKS.md"))  # fmt: skip
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        contender, seed = args.worker.split(":")
        print(json.dumps(worker(contender, int(seed), args.data_home)))
        return
    seeds = [int(s) for s in args.seeds.split(",")]
    scores = {c: [] for c in CONTENDERS}
    seconds = {c: [] for c in CONTENDERS}
    for seed in seeds:  # contenders in turn, so that the machine's drift hits all alike
        for contender in CONTENDERS:
            done = subprocess.run(
                [sys.executable, __file__, "--worker", f"{contender}:{seed}",
                 "--data-home", args.data_home],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            result = json.loads(done.stdout.strip().splitlines()[-1])
            scores[contender].append(result["scores"])
            seconds[contender].append(result["seconds"])
            print(contender, seed, result, flush=True)
    grid = np.array(scores["grid"])
    lines = [
        "## Reliability of the CV estimator's scores: IMDB ratings as 8 classes, 16-16, "
        "5 l2 x 3 folds, 10 epochs of 256\n",
        f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"`python benchmarks/reliability.py --seeds {args.seeds}`; a fresh process per "
        "contender and seed, in turn.\n",
        "Per candidate (l2 = 0, 1e-4, 1e-3, 1e-2, 1e-1): the mean held-out accuracy averaged "
        f"over {len(seeds)} seeds, its standard deviation across the seeds, and both against "
        "GridSearchCV's.\n",
        "| contender | mean over seeds | - GridSearchCV's | std over seeds | / GridSearchCV's "
        "| median s |",
        "|---|---|---|---|---|---|",
    ]
    for contender in CONTENDERS:
        a = np.array(scores[contender])
        mean, std = a.mean(axis=0), a.std(axis=0, ddof=1)
        lines.append(
            f"| {contender} | {' '.join(f'{v:.4f}' for v in mean)} "
            f"| {' '.join(f'{v:+.4f}' for v in mean - grid.mean(axis=0))} "
            f"| {' '.join(f'{v:.4f}' for v in std)} "
            f"| {' '.join(f'{v:.2f}' for v in std / grid.std(axis=0, ddof=1))} "
            f"| {np.median(seconds[contender]):.1f} |"
        )
    print("\n".join(lines))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import splice_sections

    output = Path(args.output)
    old = output.read_text() if output.exists() else ""
    output.write_text(splice_sections(old, {"reliability": lines}))
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
