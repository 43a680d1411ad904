"""Every example runs, in its quick mode."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NEEDS_IMDB = {"imdb_study.py", "grid_search_penalty.py", "rating_regression.py",
              "cv_search_penalty.py", "halving_search_penalty.py", "recipe_search.py"}


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_runs_in_quick_mode(script, tmp_path, request):
    env = dict(os.environ)
    if script in NEEDS_IMDB:
        env["SKREG_DATA_HOME"] = str(request.getfixturevalue("imdb_home"))
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--quick"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip()
