"""The benchmark script's quick mode runs every contender (so it cannot rot)."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


def test_benchmark_quick_mode_runs_every_contender(tmp_path):
    pytest.importorskip("scikeras")
    out = tmp_path / "BENCH.md"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    table = out.read_text()
    assert "error" not in table, table
    for label in ("skreg (sparse)", "skreg (dense)", "raw Keras (dense, book)", "scikeras (CSR)",
                  "sklearn MLPClassifier (CSR)", "StratifiedKFold", "MB per fit",
                  "skreg MultiHotVectorizer"):  # fmt: skip
        assert label in table
