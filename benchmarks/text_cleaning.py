"""MultiHotVectorizer's HTML stripping on hostile documents and on IMDB,
against another checkout's ``skreg/text.py`` (a baseline), alternating in one
process (the vectorizer is pure Python and regular expressions, so the two
see the same machine). Records a table in BENCHMARKS.md (section ``text``).

Usage::

    git worktree add /tmp/baseline <commit>
    python benchmarks/text_cleaning.py --baseline /tmp/baseline --runs 5

Hostile documents: unclosed tags (``"<a " * n``) and white space after a
"<" (``"<" + " " * n + "1>"``) of 15 kB, 60 kB (one run: the baseline's time
grows with the square of the size) and 1 MB (the current code only).
IMDB: fit_transform of the 25,000 training reviews, 10,000 words.
"""

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = {
    "unclosed tags": lambda n: "<a " * (n // 3),
    "spaces after '<'": lambda n: "<" + " " * n + "1>",
}


def _text_module(checkout, name):
    """``skreg/text.py`` of ``checkout`` as a module of its own."""
    spec = importlib.util.spec_from_file_location(name, Path(checkout) / "skreg" / "text.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _seconds(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _vectorize(module, documents):
    return module.MultiHotVectorizer(max_tokens=10_000).fit_transform(documents)


def _cell(values):
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", required=True, help="a checkout of skreg")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    modules = {"baseline": _text_module(args.baseline, "baseline_text"),
               "current": _text_module(ROOT, "current_text")}  # fmt: skip
    rows = []
    for name, make in HOSTILE.items():
        for size in (15_000, 60_000, 1_000_000):
            document = [make(size), "a good film"]
            times = {label: [] for label in modules}
            for _ in range(args.runs if size < 60_000 else 1):
                for label, module in modules.items():
                    if label == "baseline" and size > 60_000:
                        continue  # minutes: quadratic
                    times[label].append(_seconds(lambda m=module: _vectorize(m, document)))
            rows.append((f"{name}, {size / 1000:g} kB", *(
                _cell(t) if t else "not run (quadratic)" for t in times.values())))
            print(rows[-1], flush=True)
    sys.path.insert(0, str(ROOT))
    from skreg.datasets import load_imdb

    texts = load_imdb("train", return_X_y=True)[0]
    times = {label: [] for label in modules}
    for _ in range(args.runs):
        for label, module in modules.items():
            times[label].append(_seconds(lambda m=module: _vectorize(m, texts)))
    rows.append(("IMDB 25,000 reviews, fit_transform", *(_cell(t) for t in times.values())))
    lines = [
        f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, `python "
        f"benchmarks/text_cleaning.py --baseline <checkout> --runs {args.runs}`; one "
        "process, the two alternating; seconds, median (range) of the runs (60 kB and 1 MB: "
        "one run).\n",
        "| document | baseline | current |",
        "|---|---|---|",
        *(f"| {' | '.join(row)} |" for row in rows),
    ]
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from run import record_section

        block = "## Text cleaning: hostile documents and IMDB\n\n" + table + "\n"
        record_section("text", block.splitlines())


if __name__ == "__main__":
    main()
