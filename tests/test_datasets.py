"""load_imdb on the real archive, and on tiny archives built here for the error paths."""

import hashlib
import http.server
import io
import os
import pickle
import tarfile
import threading

import numpy as np
import pytest

from skreg import datasets
from skreg.datasets import load_imdb


def _make_archive(path, reviews):
    """A tiny aclImdb_v1.tar.gz with {(subset, label, id, rating): text}."""
    with tarfile.open(path, "w:gz") as archive:
        for (subset, label, review_id, rating), text in reviews.items():
            data = text.encode()
            info = tarfile.TarInfo(f"aclImdb/{subset}/{label}/{review_id}_{rating}.txt")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


TINY = {
    ("train", "pos", 0, 9): "Loved it.<br />Great.",
    ("train", "neg", 1, 2): "Hated it.",
    ("train", "pos", 2, 7): "Quite good.",
    ("test", "neg", 0, 4): "Dull.",
    ("test", "pos", 1, 10): "A masterpiece.",
}


@pytest.mark.imdb
def test_real_archive_counts_labels_and_ratings(imdb_home):
    train = load_imdb("train", data_home=imdb_home)
    test = load_imdb("test", data_home=imdb_home)
    assert len(train.data) == len(test.data) == 25_000
    assert train.target.sum() == test.target.sum() == 12_500
    assert train.target_names.tolist() == ["neg", "pos"]
    ratings = load_imdb("all", target="rating", data_home=imdb_home, return_X_y=True)[1]
    assert len(ratings) == 50_000
    assert set(np.unique(ratings)) == {1, 2, 3, 4, 7, 8, 9, 10}
    # Ratings and sentiment agree, and the order is shuffled but fixed.
    assert np.array_equal(ratings[:25_000] >= 7, train.target == 1)
    assert 0.3 < train.target[:100].mean() < 0.7
    assert "Maas" in train.DESCR
    assert isinstance(train.data[0], str)


@pytest.mark.imdb
def test_second_load_comes_from_the_cache_outside_a_read_only_home(
    imdb_home, tmp_path, tmp_path_factory, monkeypatch
):
    # A read-only home of its own (the shared copy may or may not be writable):
    # a link to the real archive in a folder whose mode bits deny writing.
    home = tmp_path / "read_only_home"
    home.mkdir()
    (home / "aclImdb_v1.tar.gz").symlink_to(imdb_home / "aclImdb_v1.tar.gz")
    home.chmod(0o555)
    try:
        first = load_imdb("test", data_home=home)
        cache = tmp_path_factory.getbasetemp() / "cache" / "skreg" / "imdb_parsed.npz"
        assert cache.is_file()
        # Prove the second load reads the cache: parsing is now impossible.
        monkeypatch.setattr(datasets, "_parse", lambda source: pytest.fail("parsed again"))
        second = load_imdb("test", data_home=home)
        assert second.data == first.data and np.array_equal(second.target, first.target)
        assert [p.name for p in home.iterdir()] == ["aclImdb_v1.tar.gz"]  # left untouched
    finally:
        home.chmod(0o755)


def test_tiny_archive_and_extracted_folder(tmp_path):
    _make_archive(tmp_path / "aclImdb_v1.tar.gz", TINY)
    X, y = load_imdb("train", data_home=tmp_path, return_X_y=True)
    assert sorted(X) == sorted(["Loved it.<br />Great.", "Hated it.", "Quite good."])
    assert sorted(y) == [0, 1, 1]
    assert (tmp_path / "imdb_parsed.npz").is_file()  # writable home: cache beside the data
    rating = load_imdb("test", target="rating", data_home=tmp_path)
    assert sorted(rating.target) == [4, 10]

    folder = tmp_path / "extracted"
    with tarfile.open(tmp_path / "aclImdb_v1.tar.gz") as archive:
        archive.extractall(folder, filter="data")
    assert sorted(load_imdb("train", data_home=folder, download=False).data) == sorted(X)


def test_env_variable_is_the_default_data_home(tmp_path, monkeypatch):
    _make_archive(tmp_path / "aclImdb_v1.tar.gz", TINY)
    monkeypatch.setenv("SKREG_DATA_HOME", str(tmp_path))
    assert len(load_imdb("test").data) == 2
    monkeypatch.delenv("SKREG_DATA_HOME")
    assert datasets.get_data_home().name == "skreg_data"


def test_missing_data_offline_says_where_and_how(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError) as info:
        load_imdb(data_home=tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path) in message and datasets.IMDB_URL in message
    assert "SKREG_DATA_HOME" in message
    # With download allowed but no network (an address nothing listens on).
    monkeypatch.setattr(datasets, "IMDB_URL", "http://127.0.0.1:9/aclImdb_v1.tar.gz")
    with pytest.raises(OSError, match="download from http://127.0.0.1:9.* failed"):
        load_imdb(data_home=tmp_path)
    assert list(tmp_path.iterdir()) == []  # no partial download left behind
    # A data_home that does not exist is not created for a download that fails.
    with pytest.raises(OSError, match="download from http://127.0.0.1:9.* failed"):
        load_imdb(data_home=tmp_path / "not" / "there")
    assert list(tmp_path.iterdir()) == []


def test_corrupt_or_truncated_archive(tmp_path):
    good = _make_archive(tmp_path / "good.tar.gz", TINY).read_bytes()
    home = tmp_path / "home"
    home.mkdir()
    (home / "aclImdb_v1.tar.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(OSError, match="corrupt or truncated"):
        load_imdb(data_home=home)
    assert not list(home.glob("imdb_parsed*")) and not list(home.glob("*.part"))
    (home / "aclImdb_v1.tar.gz").write_bytes(b"not a gzip file at all")
    with pytest.raises(OSError, match="corrupt or truncated"):
        load_imdb(data_home=home)
    _make_archive(home / "aclImdb_v1.tar.gz", {("train", "pos", 0, 9): "only train"})
    with pytest.raises(OSError, match="No test reviews"):
        load_imdb(data_home=home)


def test_bad_arguments():
    with pytest.raises(ValueError, match="subset"):
        load_imdb("validation")
    with pytest.raises(ValueError, match="target"):
        load_imdb(target="stars")


@pytest.fixture
def archive_server(tmp_path):
    """A loopback HTTP server that serves a tiny archive."""
    served = tmp_path / "served"
    served.mkdir()
    payload = _make_archive(served / "aclImdb_v1.tar.gz", TINY).read_bytes()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/aclImdb_v1.tar.gz", payload
    server.shutdown()


def test_download_checks_the_checksum(tmp_path, monkeypatch, archive_server, capsys):
    url, payload = archive_server
    monkeypatch.setattr(datasets, "IMDB_URL", url)
    monkeypatch.setattr(datasets, "IMDB_SHA256", "0" * 64)
    home = tmp_path / "home"
    with pytest.raises(OSError, match="SHA-256"):
        load_imdb(data_home=home)
    assert not home.exists()  # the damaged download and the folder made for it removed

    monkeypatch.setattr(datasets, "IMDB_SHA256", hashlib.sha256(payload).hexdigest())
    assert len(load_imdb("train", data_home=home).data) == 3
    assert (home / "aclImdb_v1.tar.gz").read_bytes() == payload
    assert "Downloading IMDB" in capsys.readouterr().err


class _Planted:
    """A pickle that, when loaded, writes a file: what an attacker who can
    write the data folder would leave there."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_the_data_folder_runs_no_code(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    _make_archive(home / "aclImdb_v1.tar.gz", TINY)
    marker = tmp_path / "code_ran"
    planted = pickle.dumps({"signature": None, "reviews": _Planted(marker)})
    # The old cache's name, and the new one's holding a pickle.
    (home / "imdb_parsed.pkl").write_bytes(planted)
    (home / "imdb_parsed.npz").write_bytes(planted)
    assert len(load_imdb("train", data_home=home).data) == 3
    assert not marker.exists()
    # An .npz whose array is of objects (a pickle inside) is refused as well.
    with open(home / "imdb_parsed.npz", "wb") as f:
        np.savez(f, signature=np.array([_Planted(marker)], dtype=object))
    assert len(load_imdb("train", data_home=home).data) == 3
    assert not marker.exists()


def test_the_cache_is_plain_arrays_checked_against_the_source(tmp_path, monkeypatch):
    _make_archive(tmp_path / "aclImdb_v1.tar.gz", TINY)
    texts, ratings = load_imdb("all", target="rating", data_home=tmp_path, return_X_y=True)
    with np.load(tmp_path / "imdb_parsed.npz", allow_pickle=False) as arrays:
        assert {a.dtype.kind for a in arrays.values()} <= {"u", "i", "U"}
        saved = arrays["train_text"].tobytes() + arrays["test_text"].tobytes()
    assert saved.decode("utf-8") == "".join(texts)
    parsed = []
    parse = datasets._parse

    def counted_parse(source):
        parsed.append(source)
        return parse(source)

    monkeypatch.setattr(datasets, "_parse", counted_parse)
    assert load_imdb("all", target="rating", data_home=tmp_path, return_X_y=True)[0] == texts
    assert parsed == []  # from the cache
    # A changed source (its time) is a miss; so is a damaged cache.
    stat = (tmp_path / "aclImdb_v1.tar.gz").stat()
    os.utime(tmp_path / "aclImdb_v1.tar.gz", (stat.st_atime, stat.st_mtime + 10))
    load_imdb(data_home=tmp_path)
    assert len(parsed) == 1
    cache = tmp_path / "imdb_parsed.npz"
    with np.load(cache) as arrays:
        damaged = {**arrays, "train_ends": arrays["train_ends"][:-1]}
    with open(cache, "wb") as f:
        np.savez(f, **damaged)
    assert load_imdb("all", target="rating", data_home=tmp_path, return_X_y=True)[0] == texts
    assert len(parsed) == 2
    cache.write_bytes(cache.read_bytes()[:100])  # truncated
    assert load_imdb("all", target="rating", data_home=tmp_path, return_X_y=True)[0] == texts
    assert len(parsed) == 3


@pytest.mark.imdb
@pytest.mark.skipif(not os.environ.get("SKREG_CACHE_FROM_OTHER_ENV"),
                    reason="needs a cache written by another environment (.ci/run sets it)")
def test_a_cache_written_by_the_other_environment_is_read(imdb_home, monkeypatch):
    """.ci/run has the other environment (newest or oldest versions) load the
    archive with its cache in SKREG_CACHE_FROM_OTHER_ENV; this one reads it."""
    monkeypatch.setenv("XDG_CACHE_HOME", os.environ["SKREG_CACHE_FROM_OTHER_ENV"])
    if datasets._cache_folder(imdb_home) == imdb_home:
        pytest.skip("the data folder is writable: the cache is beside the archive")
    monkeypatch.setattr(datasets, "_parse", lambda source: pytest.fail("parsed again"))
    reviews = load_imdb("test", data_home=imdb_home)
    assert len(reviews.data) == 25_000 and reviews.target.sum() == 12_500
