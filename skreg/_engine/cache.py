"""The traced programs of the process, one per structure, least recently
used out first; and their first run started early, in the background."""

import collections
import threading

__all__ = ["cached_program", "clear_training_cache", "readied_in_background",
           "training_cache_info", "wait_until_ready"]

# Programs kept. One per network structure (depth, batch norm, activation,
# optimizer, loss, dense or sparse input); widths and numbers do not count.
_CACHE_SIZE = 8

_programs = collections.OrderedDict()
_cache_lock = threading.Lock()
_cache_stats = {"hits": 0, "misses": 0}
# Programs being traced and run once in the background: key -> thread.
_readying = {}


def clear_training_cache():
    """Forget the traced training programs, freeing their memory.

    skreg traces one TensorFlow program per network structure and reuses it
    for every later fit and search of that structure in the process (up to
    8 programs; the least recently used goes first). Emptying the cache only
    costs the next fit of each structure its tracing time (~1-2 s).
    """
    with _cache_lock:
        _programs.clear()
        _cache_stats.update(hits=0, misses=0)


def training_cache_info():
    """``{"hits", "misses", "size"}`` of the program cache since it was last cleared."""
    with _cache_lock:
        return {**_cache_stats, "size": len(_programs)}


def cached_program(key, make_program, *, counted=True):
    """The traced program of ``key`` from the cache, made by ``make_program()``
    on a miss. Misses count programs made; hits count the lookups that are
    ``counted`` (a fit's, not a background first run's)."""
    with _cache_lock:
        program = _programs.get(key)
        if program is not None:
            _programs.move_to_end(key)
            _cache_stats["hits"] += counted
            return program
        _cache_stats["misses"] += 1
        program = _programs[key] = make_program()
        while len(_programs) > _CACHE_SIZE:
            _programs.popitem(last=False)
        return program


def readied_in_background(key, first_run):
    """Start ``first_run()`` in a background thread unless the program of
    ``key`` is cached or on its way. A program's first call traces it and
    lets TensorFlow optimise its graph (about 1 s for a sparse program, paid
    once a process); ``first_run`` makes that call on tiny data while the
    caller prepares its own (the non-zeros' orders, the folds), which
    mostly runs outside the GIL."""
    with _cache_lock:
        if key in _programs or key in _readying:
            return
        thread = threading.Thread(target=first_run, name="skreg-program")
        # Started before it is listed: a fit in another thread joins the
        # listed thread, and joining one not yet started raises.
        thread.start()
        _readying[key] = thread


def wait_until_ready(key):
    """Wait for the background first run of the program of ``key``, if any
    (called before a real call, so that two first runs never compete for
    the cores)."""
    with _cache_lock:
        thread = _readying.get(key)
    if thread is None:
        return
    thread.join()
    with _cache_lock:
        _readying.pop(key, None)
