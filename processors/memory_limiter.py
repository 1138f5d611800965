"""`memory_limiter`: refuses new data with a retryable error while the process uses too much memory."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from spanhouse import memory
from spanhouse.component import ConfigIssue, Factory, Kind, Processor
from spanhouse.config import Duration
from spanhouse.errors import RetryableError

log = logging.getLogger(__name__)
_MIB = 1 << 20


def resident_bytes() -> int:
    """Resident set size of this process (the embedded ClickHouse engine included)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def total_memory_bytes() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, kw_only=True)
class MemoryLimiterConfig:
    check_interval: Duration = Duration(1.0)
    """How often memory is measured."""
    limit_mib: int = 0
    """Hard limit in MiB of resident memory. Set this or `limit_percentage`."""
    spike_limit_mib: int = 0
    """Headroom below the hard limit; data is refused above `limit - spike`. Default: 20% of the limit."""
    limit_percentage: int = 0
    """Hard limit as a percentage of the machine's memory, when `limit_mib` is 0."""
    spike_limit_percentage: int = 0
    """Headroom as a percentage of the machine's memory, with `limit_percentage`."""

    def validate(self) -> Iterator[ConfigIssue]:
        if self.check_interval.seconds <= 0:
            yield ConfigIssue("check_interval", "must be greater than 0, e.g. 1s")
        if self.limit_mib < 0:
            yield ConfigIssue("limit_mib", "must not be negative")
        if self.limit_mib == 0 and not 0 < self.limit_percentage <= 100:
            yield ConfigIssue("limit_mib", "set limit_mib (e.g. 1024) or limit_percentage (1-100)")
        if self.limit_mib and self.spike_limit_mib >= self.limit_mib:
            yield ConfigIssue("spike_limit_mib", "must be smaller than limit_mib")
        if not 0 <= self.spike_limit_percentage < 100:
            yield ConfigIssue("spike_limit_percentage", "must be between 0 and 99")

    def limits(self) -> tuple[int, int]:
        """(hard, soft) limits in bytes."""
        if self.limit_mib:
            hard = self.limit_mib * _MIB
            spike = self.spike_limit_mib * _MIB if self.spike_limit_mib else hard // 5
        else:
            total = total_memory_bytes()
            hard = total * self.limit_percentage // 100
            spike = total * self.spike_limit_percentage // 100 if self.spike_limit_percentage else hard // 5
        return hard, hard - spike


class MemoryLimiter(Processor):
    """Passes batches through unchanged while resident memory is below the soft limit; above it,
    raises `RetryableError` so receivers answer 503/UNAVAILABLE and clients retry later.

    Over the soft limit, reclaimable memory (`spanhouse.memory` releasers, such as the embedded
    ClickHouse engine's allocator caches) is given back first, and memory measured again.

    Memory is measured on a background thread every `check_interval`; `process` only reads a flag.
    """

    def __init__(self, config: MemoryLimiterConfig, measure=resident_bytes):
        self.config = config
        self.hard, self.soft = config.limits()
        self._measure = measure
        self._refusing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refused_batches = 0

    def start(self, host: Any) -> None:
        self.check()
        self._thread = threading.Thread(target=self._loop, name="memory-limiter", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.config.check_interval.seconds):
            self.check()

    def check(self) -> None:
        used = self._measure()
        # the releasers include the Python heap's (a garbage collection, then malloc_trim)
        if used > self.soft and memory.release():
            used = self._measure()
        refusing = used > self.soft
        if refusing != self._refusing:
            log.warning("memory %s: %d MiB in use, soft limit %d MiB", "over limit, refusing data" if refusing
                        else "back under limit, accepting data", used // _MIB, self.soft // _MIB)
        self._refusing = refusing

    def process(self, batch: Any) -> Any:
        if self._refusing:
            self.refused_batches += 1
            raise RetryableError("spanhouse is over its memory limit; retry later",
                                 retry_after=max(1.0, self.config.check_interval.seconds))
        return batch

    def shutdown(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)


def new_factory() -> Factory:
    return Factory(kind=Kind.PROCESSOR, type="memory_limiter", config=MemoryLimiterConfig,
                   create=lambda settings, cfg: MemoryLimiter(cfg), signals=frozenset({"traces", "logs"}),
                   stability="beta")
