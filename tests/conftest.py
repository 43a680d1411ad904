import os
from pathlib import Path

import pytest

# The labeled IMDB archive shipped beside the project (never inside it).
_SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def imdb_home():
    """Folder holding aclImdb_v1.tar.gz: SKREG_DATA_HOME, else ../shared/data."""
    for candidate in (os.environ.get("SKREG_DATA_HOME"), _SHARED_DATA):
        if candidate and (Path(candidate) / "aclImdb_v1.tar.gz").is_file():
            return Path(candidate)
    pytest.skip("the IMDB archive is not available (set SKREG_DATA_HOME)")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Parsed-data caches go to a per-session folder, not the user's home."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
