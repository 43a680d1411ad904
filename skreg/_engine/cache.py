"""The traced programs of the process, one per structure, least recently
used out first."""

import collections
import threading

__all__ = ["cached_program", "clear_training_cache", "training_cache_info"]

# Programs kept. One per network structure (depth, batch norm, activation,
# optimizer, loss, dense or sparse input); widths and numbers do not count.
_CACHE_SIZE = 8

_programs = collections.OrderedDict()
_cache_lock = threading.Lock()
_cache_stats = {"hits": 0, "misses": 0}


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


def cached_program(key, make_program):
    """The traced program of ``key`` from the cache, made by ``make_program()`` on a miss."""
    with _cache_lock:
        program = _programs.get(key)
        if program is not None:
            _programs.move_to_end(key)
            _cache_stats["hits"] += 1
            return program
        _cache_stats["misses"] += 1
        program = _programs[key] = make_program()
        while len(_programs) > _CACHE_SIZE:
            _programs.popitem(last=False)
        return program
