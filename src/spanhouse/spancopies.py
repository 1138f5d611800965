"""A span stored more than once, shown once.

A client that sends a request again after a timeout (its first attempt was stored) has its spans stored
twice: same trace id, same span id. Every reader that shows a trace (`spanhouse trace`, `top-traces`,
the Jaeger APIs) keeps one copy of each span by this module's rule: the first row of each
(trace id, span id) in the reader's order. SQL sums over the tables still count every copy.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

ONE_COPY_SQL = "LIMIT 1 BY TraceId, SpanId"
"""The clause that keeps one stored copy of each span in a query over a spans table."""

Row = TypeVar("Row")


def one_copy(rows: Iterable[Row], key: Callable[[Row], Hashable]) -> tuple[list[Row], int]:
    """The rows without the later copies of a span (`key`: its trace id and span id) and how many were left out."""
    kept: list[Row] = []
    seen: set[Hashable] = set()
    left_out = 0
    for row in rows:
        k = key(row)
        if k in seen:
            left_out += 1
            continue
        seen.add(k)
        kept.append(row)
    return kept, left_out
