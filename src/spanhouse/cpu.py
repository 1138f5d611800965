"""One thread for the CPU-bound Python work of the hot path: decoding, processors, insert encoding.

Python runs one thread at a time (the GIL). Native calls that release it (RE2 in `genai_redact`, for
instance, many times per span) pay dearly when other threads are busy in Python: each release hands
the interpreter to a busy thread, and getting it back waits out that thread's switch interval.
Measured here: redaction fell from about 12,900 spans/s to about 110 with one decoding thread beside
it. Running all such work on one thread removes the contention; receiver threads keep doing their
I/O, and ClickHouse inserts (which release the GIL for long stretches) keep running on their own
threads, on the other core.

`run(fn, ...)` calls `fn` on that thread and returns its result (or raises its exception); called
from that thread itself, it calls `fn` directly. Work done there must never wait for another `run`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_worker = threading.local()


def _mark() -> None:
    _worker.active = True


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spanhouse-cpu", initializer=_mark)
        return _executor


def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)`, run on the CPU thread."""
    if getattr(_worker, "active", False):
        return fn(*args, **kwargs)
    return _pool().submit(fn, *args, **kwargs).result()
