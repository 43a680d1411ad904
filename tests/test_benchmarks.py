"""The benchmark script's quick mode runs every contender (so it cannot rot)."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


def _scikeras_runs_here():
    """scikeras 0.13 cannot run on scikit-learn 1.6 (its __sklearn_tags__
    calls one its bases lack there; it runs from 1.7 on): a peer's fault,
    not skreg's, which supports 1.6."""
    from scikeras.wrappers import KerasClassifier
    from sklearn.utils import get_tags

    try:
        get_tags(KerasClassifier(model=None))
    except AttributeError:
        return False
    return True


def test_benchmark_quick_mode_runs_every_contender(tmp_path):
    pytest.importorskip("scikeras")
    if not _scikeras_runs_here():
        pytest.skip("scikeras cannot run on this scikit-learn (1.6): no peer to compare with")
    out = tmp_path / "BENCH.md"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    table = out.read_text()
    assert "error" not in table, table
    for label in ("skreg (sparse)", "skreg (dense)", "raw Keras (dense, book)", "scikeras (CSR)",
                  "sklearn MLPClassifier (CSR, partial_fit)", "StratifiedKFold", "MB per fit",
                  "skreg MultiHotVectorizer", "Input dropout's cost", "skreg / Keras",
                  "fit(max_iter=k)", "Grid search on a small table", "skreg CV",
                  "Progress output of the CV search", "Successive halving",
                  "HalvingRandomSearchCV(MLPClassifier)", "Whole-recipe search",
                  "fold ensemble: test accuracy"):  # fmt: skip
        assert label in table


def _load_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("skreg_benchmarks_run", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rerunning_one_section_keeps_the_others_and_the_notes():
    splice = _load_script().splice_sections
    blocks = {"header": ["# B"], "tiny": ["## tiny", "0.9 s"], "memory": ["## memory", "6 MB"]}
    first = splice("", blocks)
    with_notes = first + "\nHand-written notes.\n"
    again = splice(with_notes, {"header": ["# B"], "memory": ["## memory", "0.1 MB"]})
    assert "0.1 MB" in again and "6 MB" not in again
    assert "0.9 s" in again and again.endswith("Hand-written notes.\n")
    assert again.index("## tiny") < again.index("## memory") < again.index("Hand-written")
    new_section = splice(again, {"grid": ["## grid"]})
    assert new_section.startswith(again.rstrip("\n")) and "## grid" in new_section
