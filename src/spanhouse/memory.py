"""Memory that can be given back on demand, so `memory_limiter` refuses data for live data, not caches.

The embedded ClickHouse engine's allocator keeps freed pages for a while after every insert (hundreds of
MiB at a sustained insert rate); they count in the process's resident memory that `memory_limiter`
measures, but nothing uses them. Components that hold such memory register a releaser; the limiter
calls `release()` before it decides to refuse data.

The Python heap is one of them, registered here: a collection frees what only cycles held (collected
rarely under `gcpolicy`'s thresholds), then glibc's `malloc_trim` gives back the free pages its arenas
keep, which are many after the requests of dozens of receiver threads have come and gone.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

_lock = threading.Lock()
_releasers: dict[int, tuple[str, Callable[[], None]]] = {}


def register(owner: object, name: str, release_fn: Callable[[], None]) -> None:
    """Call `release_fn` when memory is short, until `unregister(owner)`."""
    with _lock:
        _releasers[id(owner)] = (name, release_fn)


def unregister(owner: object) -> None:
    with _lock:
        _releasers.pop(id(owner), None)


def release() -> int:
    """Run every registered releaser; a failing one is logged and skipped. Returns how many ran."""
    with _lock:
        items = list(_releasers.values())
    done = 0
    for name, fn in items:
        try:
            fn()
            done += 1
        except Exception as exc:
            log.debug("releasing memory of %s failed: %s", name, exc)
    return done


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim this way
        return None


_trim = _malloc_trim()


def _release_python_heap() -> None:
    gc.collect()
    if _trim is not None:
        _trim(0)


register(_release_python_heap, "the Python heap", _release_python_heap)
