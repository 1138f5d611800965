"""Keep the spans a forwarding exporter cannot send as valid OTLP out of its export.

A value that cannot be encoded (an id of the wrong length, flags over 32 bits, a time beyond 64 bits, a
string that is not UTF-8) is bad data, not a passing failure: retrying cannot help, and failing the
whole export would drop the good spans merged with it and hold up everything queued behind it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TypeVar

from spanhouse.batch import SpanBatch

log = logging.getLogger(__name__)

_HEX = frozenset("0123456789abcdefABCDEF")
_U32, _U64, _I32 = 1 << 32, 1 << 64, 1 << 31
T = TypeVar("T")


def _id_ok(value: object, chars: int, optional: bool = True) -> bool:
    if value == "" and optional:
        return True
    return isinstance(value, str) and len(value) == chars and _HEX.issuperset(value)


def _in(value: object, low: int, high: int) -> bool:
    return type(value) is int and low <= value < high


def _problems(batch: SpanBatch, i: int) -> Iterator[str]:
    """What makes span `i` invalid OTLP (descriptions of fields, never their values)."""
    if not _id_ok(batch.trace_id[i], 32):
        yield "trace_id is not 16 bytes"
    if not _id_ok(batch.span_id[i], 16):
        yield "span_id is not 8 bytes"
    if not _id_ok(batch.parent_span_id[i], 16):
        yield "parent_span_id is not 8 bytes"
    if not _in(batch.flags[i], 0, _U32):
        yield "flags do not fit in 32 bits"
    if not (_in(batch.kind[i], -_I32, _I32) and _in(batch.status_code[i], -_I32, _I32)):
        yield "kind or status code out of range"
    if not (_in(batch.start_time_unix_nano[i], 0, _U64) and _in(batch.end_time_unix_nano[i], 0, _U64)
            and all(_in(e.time_unix_nano, 0, _U64) for e in batch.events[i])):
        yield "a time does not fit in 64 bits"
    counts = [batch.dropped_attributes_count[i], batch.dropped_events_count[i], batch.dropped_links_count[i]]
    counts += [e.dropped_attributes_count for e in batch.events[i]]
    counts += [k.dropped_attributes_count for k in batch.links[i]]
    if not all(_in(c, 0, _U32) for c in counts):
        yield "a dropped count does not fit in 32 bits"
    for k in batch.links[i]:
        if not _id_ok(k.trace_id, 32):
            yield "link trace_id is not 16 bytes"
        if not _id_ok(k.span_id, 16):
            yield "link span_id is not 8 bytes"
        if not _in(k.flags, 0, _U32):
            yield "link flags do not fit in 32 bits"


class ValidOtlp:
    """Encodes the valid spans of each batch for one exporter and drops the rest.

    Guarantees: `encode(batch)` never raises for bad values; every span left out is counted in
    `dropped` and reported in one error log line per batch that names the exporter, the count and
    the kinds of problem, never a value.
    """

    def __init__(self, exporter: str):
        self.exporter = exporter
        self.dropped = 0

    def encode(self, batch: SpanBatch, encoder: Callable[[SpanBatch], T]) -> tuple[SpanBatch, T | None]:
        """The spans of `batch` that can be sent and their encoding (None when none can)."""
        reasons: Counter[str] = Counter()
        keep = []
        for i in range(len(batch)):
            found = next(_problems(batch, i), None)
            if found is None:
                keep.append(i)
            else:
                reasons[found] += 1
        good = batch if not reasons else batch.take(keep)
        try:
            body = encoder(good) if len(good) else None
        except Exception:  # a value the checks above do not know: find the spans it is in
            good, body = self._one_by_one(good, encoder, reasons)
        if reasons:
            n = sum(reasons.values())
            self.dropped += n
            log.error("exporter %s: dropping %d of %d span(s) that cannot be sent as valid OTLP (%s); %d other "
                      "span(s) of the batch forwarded; %d dropped so far", self.exporter, n, len(batch),
                      ", ".join(f"{why}: {c}" for why, c in sorted(reasons.items())), len(good), self.dropped)
        return good, body

    @staticmethod
    def _one_by_one(batch: SpanBatch, encoder: Callable[[SpanBatch], T],
                    reasons: Counter[str]) -> tuple[SpanBatch, T | None]:
        keep = []
        for i in range(len(batch)):
            try:
                encoder(batch.take([i]))
            except Exception as exc:
                reasons[f"cannot be encoded ({type(exc).__name__})"] += 1
            else:
                keep.append(i)
        good = batch.take(keep)
        if not keep:
            return good, None
        try:
            return good, encoder(good)
        except Exception as exc:  # only together: give the whole batch up rather than retry it forever
            reasons[f"cannot be encoded together ({type(exc).__name__})"] += len(good)
            return batch.take([]), None
