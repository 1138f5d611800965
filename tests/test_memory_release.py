"""memory_limiter gives back reclaimable memory (the embedded ClickHouse engine's allocator caches)
before it refuses data."""

from __future__ import annotations

import pytest
from spanhouse.processors.memory_limiter import MemoryLimiter, MemoryLimiterConfig
from support import chdb_endpoint, unique_database

from spanhouse import memory
from spanhouse.errors import RetryableError
from spanhouse.exporters.clickhouse import ClickHouseConfig, ClickHouseExporter

MIB = 1 << 20


class _Owner:
    pass


def test_limiter_releases_caches_before_refusing():
    usage = {"now": 900 * MIB}  # over the soft limit of 1024 - 20% = 819 MiB
    owner, calls = _Owner(), []

    def release() -> None:
        calls.append(1)
        usage["now"] = 500 * MIB

    memory.register(owner, "test cache", release)
    try:
        limiter = MemoryLimiter(MemoryLimiterConfig(limit_mib=1024), measure=lambda: usage["now"])
        limiter.check()
        assert calls == [1]
        batch = object()
        assert limiter.process(batch) is batch
    finally:
        memory.unregister(owner)


def test_limiter_still_refuses_when_nothing_could_be_released():
    owner = _Owner()
    memory.register(owner, "useless cache", lambda: None)
    try:
        limiter = MemoryLimiter(MemoryLimiterConfig(limit_mib=1024), measure=lambda: 900 * MIB)
        limiter.check()
        with pytest.raises(RetryableError):
            limiter.process(object())
    finally:
        memory.unregister(owner)


def test_a_failing_releaser_is_skipped():
    bad, good, calls = _Owner(), _Owner(), []
    memory.register(bad, "broken", lambda: 1 / 0)
    memory.register(good, "fine", lambda: calls.append(1))
    try:
        memory.release()
        assert calls == [1]
    finally:
        memory.unregister(bad)
        memory.unregister(good)


def test_embedded_clickhouse_exporter_registers_its_allocator_purge():
    exp = ClickHouseExporter(ClickHouseConfig(endpoint=chdb_endpoint(), database=unique_database("mem")))
    before = memory.release()
    exp.start(None)
    try:
        assert memory.release() == before + 1  # SYSTEM JEMALLOC PURGE ran on the embedded engine
    finally:
        exp.shutdown()
    assert memory.release() == before


def _resident_mib() -> int:
    import os

    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // MIB


def test_the_python_heap_gives_back_the_pages_its_allocator_keeps():
    """Freed request data stays resident in glibc's arenas (one live value per page keeps them from
    shrinking on their own) until the releaser registered by `spanhouse.memory` trims them."""
    if memory._trim is None:
        pytest.skip("not glibc: malloc_trim is not available")
    values = [bytes(4000) + str(i).encode() for i in range(60_000)]  # ~240 MiB of 4 KB values
    kept = values[::50]
    del values
    before = _resident_mib()
    memory.release()
    assert before - _resident_mib() > 100, "freed heap pages were not given back"
    assert len(kept) == 1200
