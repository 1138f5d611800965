"""Time every call on spanhouse's CPU thread inside a running server, and the garbage collector.

Put this directory first on PYTHONPATH and name an output path, then run the server and load it:

    PYTHONPATH=benchmarks/cpu_thread_timing SPANHOUSE_CPU_TIMING=/tmp/cpu-timing spanhouse serve

Every 2 s, `/tmp/cpu-timing.<pid>` gets JSON: per function run through `spanhouse.cpu.run` (decoding,
the pipeline's processors, the insert encoding), [calls, wall seconds, thread CPU seconds]; and under
`__gc__`, collections and seconds per generation. Divide by the spans acknowledged for µs per span.
Without SPANHOUSE_CPU_TIMING this file does nothing.
"""

import collections
import gc
import json
import os
import threading
import time

_OUT = os.environ.get("SPANHOUSE_CPU_TIMING")

if _OUT:
    import spanhouse.cpu as cpu

    stats: dict = collections.defaultdict(lambda: [0, 0.0, 0.0])
    _run = cpu.run

    def _timed(fn, *args, **kwargs):
        def call():
            wall, used = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                s = stats[getattr(fn, "__qualname__", repr(fn))]
                s[0] += 1
                s[1] += time.perf_counter() - wall
                s[2] += time.thread_time() - used

        return _run(call)

    cpu.run = _timed
    collections_ = {"count": [0, 0, 0], "seconds": [0.0, 0.0, 0.0]}
    _gc_start = [0.0]

    def _on_gc(phase, info):
        if phase == "start":
            _gc_start[0] = time.perf_counter()
        else:
            collections_["count"][info["generation"]] += 1
            collections_["seconds"][info["generation"]] += time.perf_counter() - _gc_start[0]

    gc.callbacks.append(_on_gc)

    def _dump():
        while True:
            time.sleep(2)
            with open(f"{_OUT}.{os.getpid()}", "w") as f:
                json.dump({**stats, "__gc__": collections_}, f)

    threading.Thread(target=_dump, name="cpu-timing", daemon=True).start()
