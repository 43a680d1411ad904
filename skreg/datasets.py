"""The Large Movie Review Dataset (IMDB), read from the official archive."""

import contextlib
import hashlib
import json
import os
import re
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

__all__ = ["get_data_home", "load_imdb"]

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
IMDB_ARCHIVE = "aclImdb_v1.tar.gz"
_IMDB_FOLDER = "aclImdb"
_REVIEW_PATH = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
# The parsed reviews' cache: arrays only (UTF-8 text, offsets, ratings), read
# with allow_pickle=False, so that a cache file can hold no code and reads the
# same under every numpy. Version 1 was a pickle, never read again.
_CACHE_NAME = "imdb_parsed.npz"
_CACHE_VERSION = 2
_RATINGS = (1, 2, 3, 4, 7, 8, 9, 10)
# Keras shuffles its copy of IMDB with this seed; the fixed order mixes the
# classes so that the first n reviews are a fair sample.
_ORDER_SEED = 113

_DESCR = """Large Movie Review Dataset v1.0 (IMDB), labeled part
==========================================================

50,000 movie reviews from IMDB, 25,000 for training and 25,000 for testing,
half positive (rating >= 7 of 10) and half negative (rating <= 4); no movie
has more than 30 reviews, and train and test share no movie. The text keeps
the site's HTML line breaks (``<br />``).

target="sentiment": 1 positive, 0 negative. target="rating": the 1-10 stars
(1-4 and 7-10 only). The order is fixed (a seeded shuffle), the same on every
machine.

Maas, Daly, Pham, Huang, Ng and Potts (2011). Learning Word Vectors for
Sentiment Analysis. ACL 2011. https://ai.stanford.edu/~amaas/data/sentiment/
"""


def get_data_home(data_home=None):
    """The folder skreg reads and stores data sets in.

    ``data_home`` if given, else the environment variable ``SKREG_DATA_HOME``,
    else ``~/skreg_data``.
    """
    if data_home is None:
        data_home = os.environ.get("SKREG_DATA_HOME") or Path.home() / "skreg_data"
    return Path(data_home).expanduser()


def _cache_folder(data_home):
    """data_home when writable, else the user cache.

    A folder whose mode bits deny writing counts as read-only even for root
    (who could write anyway): a shared copy of the data is left untouched.
    """
    if data_home.is_dir() and data_home.stat().st_mode & 0o222 and os.access(data_home, os.W_OK):
        return data_home
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "skreg"


def _find_source(data_home):
    """The local archive or extracted folder, or None."""
    candidates = (
        [data_home] if data_home.is_file() else [data_home / IMDB_ARCHIVE, data_home / _IMDB_FOLDER]
    )
    for candidate in candidates:
        if candidate.is_file() or (candidate / "train").is_dir():
            return candidate
    return None


def _progress(done, total):
    if total:
        sys.stderr.write(
            f"\rDownloading IMDB: {100 * done / total:5.1f}% "
            f"({done / 2**20:.1f} of {total / 2**20:.1f} MiB)"
        )
    else:
        sys.stderr.write(f"\rDownloading IMDB: {done / 2**20:.1f} MiB")
    sys.stderr.flush()


def _download(data_home):
    """Fetch the official archive into data_home, checking its SHA-256.

    The folders on the way to data_home are made once the server answers,
    and removed again if the download fails: a failed download leaves nothing.
    """
    made = [folder for folder in (data_home, *data_home.parents) if not folder.exists()]
    try:
        with urllib.request.urlopen(IMDB_URL, timeout=60) as response:
            data_home.mkdir(parents=True, exist_ok=True)
            return _save_checked(response, data_home / IMDB_ARCHIVE)
    except BaseException:
        for folder in made:  # deepest first; only folders left empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _save_checked(response, target):
    """The response's body saved at ``target`` if its SHA-256 is the archive's."""
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".part", delete=False) as part:
        try:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(1 << 20):
                part.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                _progress(done, total)
            sys.stderr.write("\n")
            part.close()
            if digest.hexdigest() != IMDB_SHA256:
                raise OSError(
                    f"The download from {IMDB_URL} is damaged: its SHA-256 is "
                    f"{digest.hexdigest()}, expected {IMDB_SHA256}. Try again."
                )
            os.replace(part.name, target)
        finally:
            if os.path.exists(part.name):
                os.remove(part.name)
    return target


def _reviews_in_archive(path):
    with tarfile.open(path, "r:gz") as archive:
        for member in archive:
            match = _REVIEW_PATH.search(member.name)
            if match and member.isfile():
                yield match.groups(), archive.extractfile(member).read()


def _reviews_in_folder(folder):
    for subset in ("train", "test"):
        for label in ("pos", "neg"):
            for file in (folder / subset / label).glob("*_*.txt"):
                match = _REVIEW_PATH.search(file.as_posix())
                if match:
                    yield match.groups(), file.read_bytes()


def _parse(source):
    """{"train": (texts, ratings), "test": ...} in the fixed order."""
    rows = {"train": [], "test": []}
    reviews = _reviews_in_archive(source) if source.is_file() else _reviews_in_folder(source)
    try:
        for (subset, _label, review_id, rating), raw in reviews:
            rows[subset].append((int(review_id), int(rating), raw.decode("utf-8")))
    except (tarfile.TarError, EOFError, zlib.error, OSError, UnicodeDecodeError) as error:
        raise OSError(
            f"The IMDB archive {source} is corrupt or truncated ({error}). Delete it "
            f"and download it again from {IMDB_URL}."
        ) from None
    parsed = {}
    for subset, subset_rows in rows.items():
        if not subset_rows:
            raise OSError(
                f"No {subset} reviews found in {source}: it does not have the layout of "
                f"the official {IMDB_ARCHIVE} (aclImdb/{{train,test}}/{{pos,neg}}/ID_RATING.txt)."
            )
        # Negative then positive, by id; then the fixed shuffle.
        subset_rows.sort(key=lambda row: (row[1] >= 7, row[0]))
        order = np.random.RandomState(_ORDER_SEED).permutation(len(subset_rows))
        parsed[subset] = (
            [subset_rows[i][2] for i in order],
            np.array([subset_rows[i][1] for i in order], dtype=np.int64),
        )
    return parsed


def _source_signature(source):
    """What identifies the parsed source (its path, size and time), as text."""
    stat = source.stat()
    return json.dumps([str(source.resolve()), stat.st_size, int(stat.st_mtime), _CACHE_VERSION])


def _cache_arrays(signature, reviews):
    """The parsed reviews as plain arrays, for np.savez."""
    arrays = {"signature": np.array(signature)}
    for subset, (texts, ratings) in reviews.items():
        encoded = [text.encode("utf-8") for text in texts]
        # Where each review's bytes end: each is decoded on its own, as most
        # are ASCII (one text of all would be wider, and slow to slice).
        arrays[f"{subset}_ends"] = np.cumsum([len(b) for b in encoded], dtype=np.int64)
        arrays[f"{subset}_text"] = np.frombuffer(b"".join(encoded), np.uint8)
        arrays[f"{subset}_ratings"] = np.asarray(ratings, np.int64)
    return arrays


def _reviews_from_arrays(arrays):
    """{"train": (texts, ratings), "test": ...} from the cache's arrays;
    ValueError where they are not what :func:`_cache_arrays` writes."""
    reviews = {}
    for subset in ("train", "test"):
        text = arrays[f"{subset}_text"]
        ends, ratings = arrays[f"{subset}_ends"], arrays[f"{subset}_ratings"]
        starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
        if not (text.dtype == np.uint8 and ends.dtype == ratings.dtype == np.int64
                and ends.ndim == ratings.ndim == text.ndim == 1
                and len(ends) == len(ratings) > 0 and ends[-1] == len(text)
                and np.all(ends >= starts) and np.isin(ratings, _RATINGS).all()):  # fmt: skip
            raise ValueError(f"the cache's {subset} arrays do not fit together")
        data = memoryview(text)
        reviews[subset] = ([str(data[a:b], "utf-8") for a, b in zip(starts.tolist(),
                                                                    ends.tolist())], ratings)
    return reviews


def _read_cache(cache, signature):
    """The cached reviews of the source with ``signature``, or None: a
    cache that is missing, of another source or unreadable is a miss."""
    if not cache.is_file():
        return None
    try:
        with np.load(cache, allow_pickle=False) as arrays:
            if str(arrays["signature"]) != signature:
                return None
            return _reviews_from_arrays(arrays)
    # Whatever the file holds (it may have been written by anyone who can
    # write the folder), failing to read it only means parsing again.
    except Exception:  # noqa: BLE001
        return None


def _load_parsed(source, data_home):
    """The parsed reviews, from the cache when it matches the source."""
    cache = _cache_folder(data_home) / _CACHE_NAME
    signature = _source_signature(source)
    reviews = _read_cache(cache, signature)
    if reviews is not None:
        return reviews
    reviews = _parse(source)
    part = None
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache.parent, suffix=".part", delete=False) as f:
            part = f.name
            np.savez(f, **_cache_arrays(signature, reviews))
        os.replace(part, cache)
    except OSError:  # no writable cache (or a full disk): the next load parses again
        if part is not None:
            with contextlib.suppress(OSError):
                os.remove(part)
    return reviews


def load_imdb(
    subset="train", *, target="sentiment", data_home=None, download=True, return_X_y=False
):
    """Load the labeled movie reviews of the Large Movie Review Dataset.

    Reads the official archive ``aclImdb_v1.tar.gz`` (or its extracted
    ``aclImdb`` folder) from ``data_home``; when neither is there and
    ``download`` is true, downloads the official archive once and checks its
    SHA-256. The parsed reviews are cached next to the data (or in
    ``~/.cache/skreg`` when that folder is read-only), so later loads take
    about a second.

    Parameters
    ----------
    subset : {"train", "test", "all"}, default="train"
        The 25,000 training reviews, the 25,000 test reviews, or both (train first).
    target : {"sentiment", "rating"}, default="sentiment"
        1 for a positive review and 0 for a negative one, or the 1-10 star rating.
    data_home : str or path-like, default=None
        Folder holding the archive or the ``aclImdb`` folder (or the archive
        itself). Default: ``SKREG_DATA_HOME``, else ``~/skreg_data``.
    download : bool, default=True
        Download the official archive when no local copy is found.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``data`` (list of str), ``target`` (ndarray of int), ``target_names``
        and ``DESCR``. ``(data, target)`` when ``return_X_y``.

    Examples
    --------
    >>> from skreg.datasets import load_imdb
    >>> reviews = load_imdb("train")          # doctest: +SKIP
    >>> len(reviews.data), reviews.target.mean()  # doctest: +SKIP
    (25000, 0.5)
    """
    if subset not in ("train", "test", "all"):
        raise ValueError(f"subset must be 'train', 'test' or 'all', got {subset!r}.")
    if target not in ("sentiment", "rating"):
        raise ValueError(f"target must be 'sentiment' or 'rating', got {target!r}.")
    home = get_data_home(data_home)
    source = _find_source(home)
    if source is None:
        looked_in = f"{home / IMDB_ARCHIVE} and {home / _IMDB_FOLDER}"
        how = (
            f"Put the official archive ({IMDB_URL}) or its extracted {_IMDB_FOLDER} folder "
            "there, or point data_home or the environment variable SKREG_DATA_HOME "
            "at the folder that holds it."
        )
        if not download:
            raise FileNotFoundError(f"No IMDB data found (looked for {looked_in}). {how}")
        try:
            source = _download(home)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise OSError(
                f"No IMDB data found (looked for {looked_in}) and the download from "
                f"{IMDB_URL} failed ({getattr(error, 'reason', error)}). {how}"
            ) from None
    parsed = _load_parsed(source, home)
    subsets = ("train", "test") if subset == "all" else (subset,)
    texts = [text for name in subsets for text in parsed[name][0]]
    ratings = np.concatenate([parsed[name][1] for name in subsets])
    if target == "sentiment":
        y, names = (ratings >= 7).astype(np.int64), np.array(["neg", "pos"])
    else:
        y, names = ratings, np.unique(ratings)
    if return_X_y:
        return texts, y
    return Bunch(data=texts, target=y, target_names=names, DESCR=_DESCR)
