"""The insert body of a batch for `otel_traces`, encoded once, in C, as ClickHouse's `JSONColumns`.

`trace_columns()` gives the 22 insert columns as Python lists; turning those into ClickHouse's Native
format in Python (what clickhouse-connect does for a column-oriented insert) costs more than building
them. Here `orjson` serializes the whole column dict in one call instead, and ClickHouse parses it on
its side of the insert, where the GIL is released, so the receiver threads keep decoding meanwhile.

Guarantees: the rows stored are those of the reference path (`trace_columns()` through
clickhouse-connect's Native insert), column for column; `DateTime64(9)` values are written as exact
`seconds.nanoseconds` text, never through a float. A batch this cannot encode exactly (text that is not
valid UTF-8, times before 1970 or past 2262) gets `None`, and the caller uses the reference path.
"""

from __future__ import annotations

from typing import Any

import orjson

FORMAT = "JSONColumns"
_NS = 1_000_000_000
_MAX = 2**63 - 1


def _ts(ns: int) -> str:
    # ten whole-second digits: shorter numbers are not read as Unix time by ClickHouse's parser
    return f"{ns // _NS:010d}.{ns % _NS:09d}"


def _in_range(times: list[int]) -> bool:
    return not times or (min(times) >= 0 and max(times) <= _MAX)


def encode_columns(names: tuple[str, ...], columns: list[list[Any]]) -> bytes | None:
    """`columns` (in `names` order, as `trace_columns()` returns them) as one JSONColumns body."""
    doc = dict(zip(names, columns))
    events = doc["Events.Timestamp"]
    if not _in_range(doc["Timestamp"]) or not all(_in_range(ts) for ts in events if ts):
        return None  # times before 1970 or past Int64 nanoseconds: left to the reference path
    doc["Timestamp"] = [_ts(t) for t in doc["Timestamp"]]
    doc["Events.Timestamp"] = [[_ts(t) for t in ts] if ts else ts for ts in events]
    try:
        return orjson.dumps(doc)
    except TypeError:
        return None
