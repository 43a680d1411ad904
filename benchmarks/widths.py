"""What a group of towers costs by width: whether narrow networks could share
a wide group (masked units) in a CV search (issue 35).

IMDB multi-hot (10,000 words, the 25,000 training reviews), a CV search of
9 l2 values, 3 folds (a group of 9 towers per fold), batches of 512, no
refit. An epoch of one fold's group is (the search of 6 epochs - the search
of 2) / 4 / 3, so that tracing, the data and the scoring's fixed costs
cancel. One process, the widths in turn, ``--runs`` rounds; writes
BENCHMARKS.md (section ``widths``).

Usage::

    SKREG_DATA_HOME=... python benchmarks/widths.py --runs 5
"""

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

WIDTHS = [(8, 8), (16, 16), (64, 64)]


def _searched(X, y, hidden, epochs):
    from skreg import RegularizedMLPClassifierCV

    search = RegularizedMLPClassifierCV(param_grid={"l2": list(np.logspace(-6, -1, 9))}, cv=3,
                                        epochs=epochs, batch_size=512, hidden_layer_sizes=hidden,
                                        refit=False, random_state=0)  # fmt: skip
    start = time.perf_counter()
    search.fit(X, y)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from skreg import MultiHotVectorizer
    from skreg.datasets import load_imdb

    train = load_imdb("train")
    X, y = MultiHotVectorizer(max_tokens=10_000).fit_transform(train.data), train.target
    for hidden in WIDTHS:
        _searched(X, y, hidden, 1)  # traces each width's program
    seconds = {hidden: [] for hidden in WIDTHS}
    for _ in range(args.runs):
        for hidden in WIDTHS:
            seconds[hidden].append((_searched(X, y, hidden, 6) - _searched(X, y, hidden, 2))
                                   / 4 / 3)  # fmt: skip
    narrowest = seconds[WIDTHS[0]]
    lines = ["## What a group of towers costs by width (issue 35)", "",
             f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"`python benchmarks/widths.py --runs {args.runs}`; one process, the widths in "
             "turn; median (range) of the rounds. IMDB multi-hot, one fold's group of 9 towers "
             "(9 l2 values), batches of 512.", "",
             "| widths | seconds per epoch of a fold's 9 towers | vs 8-8 |",
             "|---|---|---|"]  # fmt: skip
    for hidden, values in seconds.items():
        ratio = statistics.median(b / a for a, b in zip(narrowest, values))
        lines.append(f"| {hidden} | {statistics.median(values):.3f} "
                     f"({min(values):.3f}-{max(values):.3f}) | {ratio:.2f}x |")
    lines.append("")
    print("\n".join(lines))
    if not args.no_write:
        from run import record_section

        record_section("widths", lines)


if __name__ == "__main__":
    main()
