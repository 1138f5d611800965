"""Garbage-collector settings for a serving process.

CPython's cyclic collector is triggered by allocation counts: by default a young collection every 700
container allocations, and every tenth of those an older one. Decoding, processing and encoding a
500-span request allocates tens of thousands of dicts and lists, so a busy `spanhouse serve` ran the
collector thousands of times a minute, and each full collection walked every object made at start
(price tables, mappings, the schema) as well as the data in flight: measured on the benchmark
payload, about 2.8 s of collection per 20 s of load, most of it in full collections of ~85 ms each,
every one of them holding the GIL.

Spans are dicts and lists of strings and numbers, which reference counting frees; cycles are rare.
So once the service has started, what exists is frozen (never examined again) and collections run
far less often. Cyclic garbage is still collected, later.
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 10)
"""Container allocations before a young collection; young collections per middle one; middle per full."""


def settle() -> None:
    """Call once the service has started: collect, freeze what is left, and set `THRESHOLDS`."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
