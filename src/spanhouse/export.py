"""Stored spans and log records read back as OTLP requests, page by page (`spanhouse export`).

A span or record is exported when it starts in `[start_ns, end_ns)`, so exports of adjacent ranges hold
each one exactly once. Spans are read as the Jaeger API reads them (`TraceReader.traces`: one copy of a
span stored twice, attribute types the schema registry gives restored); log records with the types of
their attributes restored alike, their body as the text stored. Pages are sized by the bytes the store
reports, and a page the store refuses as too large (a `sql_query` endpoint's `max_result_mib`) is read
again in halves, so an export never needs that cap lifted unless one trace alone is over it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from spanhouse.batch import Resource, Scope, SpanBatch
from spanhouse.jaeger.reader import TraceReader, typed_attributes
from spanhouse.logbatch import LogBatch

END_OF_TIME_NS = 4_102_444_800 * 10**9
"""2100-01-01, past anything the store keeps (the decoder refuses later times)."""
PAGE_BYTES = 16 << 20
PAGE_TRACES = 1000
_BUCKET_S = 300  # otel_logs is sorted by five-minute buckets first: a page of buckets is a cheap range read
_TOO_LARGE = "TOO_MANY_ROWS_OR_BYTES"

_LOG_COLUMNS = """
    toUnixTimestamp64Nano(Timestamp), TraceId, SpanId, TraceFlags, SeverityText, SeverityNumber, ServiceName,
    Body, ResourceSchemaUrl, ResourceAttributes, ScopeSchemaUrl, ScopeName, ScopeVersion, ScopeAttributes,
    LogAttributes, EventName
"""


@dataclass(frozen=True)
class ExportRange:
    """What to export: records that start in `[start_ns, end_ns)`, of one service and some traces if given."""

    start_ns: int = 0
    end_ns: int = END_OF_TIME_NS
    service: str = ""
    trace_ids: tuple[str, ...] = ()

    def where(self, params: dict[str, Any]) -> str:
        params.update(start=self.start_ns, end=self.end_ns)
        sql = ("Timestamp >= fromUnixTimestamp64Nano({start:Int64}, 'UTC') "
               "AND Timestamp < fromUnixTimestamp64Nano({end:Int64}, 'UTC')")
        if self.service:
            sql += " AND ServiceName = {service:String}"
            params["service"] = self.service
        if self.trace_ids:
            sql += " AND TraceId IN {trace_ids:Array(String)}"
            params["trace_ids"] = list(self.trace_ids)
        return sql


def _too_large(exc: BaseException) -> bool:
    return _TOO_LARGE in str(exc)


def _pages(sized: list[tuple[Any, int]], max_bytes: int, max_items: int) -> Iterator[list[Any]]:
    """Consecutive groups of (item, bytes), each within both bounds unless one item alone is over them."""
    page: list[Any] = []
    size = 0
    for item, n in sized:
        if page and (size + n > max_bytes or len(page) >= max_items):
            yield page
            page, size = [], 0
        page.append(item)
        size += n
    if page:
        yield page


def trace_pages(reader: TraceReader, what: ExportRange, page_bytes: int = PAGE_BYTES) -> Iterator[SpanBatch]:
    """The spans of `what`, a few traces per batch, traces in the order they started."""
    params: dict[str, Any] = {}
    rows = reader.client.query(
        f"SELECT TraceId, sum(byteSize(SpanAttributes, ResourceAttributes, Events.Attributes, Links.Attributes, "
        f"SpanName, StatusMessage)) FROM {reader.tables['traces']} WHERE {what.where(params)} "
        "GROUP BY TraceId ORDER BY min(Timestamp), TraceId", parameters=params).result_rows
    for ids in _pages([(r[0], int(r[1])) for r in rows], page_bytes, PAGE_TRACES):
        yield from _read_traces(reader, ids, what)


def _read_traces(reader: TraceReader, ids: list[str], what: ExportRange) -> Iterator[SpanBatch]:
    try:
        batch = reader.traces(ids, what.start_ns, what.end_ns - 1, service=what.service, log_events=False)
    except Exception as exc:
        if not _too_large(exc) or len(ids) == 1:
            raise
        half = len(ids) // 2
        yield from _read_traces(reader, ids[:half], what)
        yield from _read_traces(reader, ids[half:], what)
        return
    if len(batch):
        yield batch


def log_pages(reader: TraceReader, what: ExportRange, page_bytes: int = PAGE_BYTES) -> Iterator[LogBatch]:
    """The log records of `what`, in time order, a time range of them per batch. A store made before
    spanhouse kept log records has none."""
    params: dict[str, Any] = {}
    try:
        rows = reader.client.query(
            f"SELECT toUnixTimestamp(toStartOfInterval(Timestamp, INTERVAL {_BUCKET_S} SECOND)) AS b, "
            f"sum(byteSize(Body, LogAttributes, ResourceAttributes, ScopeAttributes)) FROM {reader.tables['logs']} "
            f"WHERE {what.where(params)} GROUP BY b ORDER BY b", parameters=params).result_rows
    except Exception as exc:
        if "UNKNOWN_TABLE" in str(exc):
            return
        raise
    for buckets in _pages([(int(r[0]), int(r[1])) for r in rows], page_bytes, 1 << 30):
        lo = max(what.start_ns, buckets[0] * 10**9)
        hi = min(what.end_ns, (buckets[-1] + _BUCKET_S) * 10**9)
        yield from _read_logs(reader, ExportRange(lo, hi, what.service, what.trace_ids))


def _read_logs(reader: TraceReader, what: ExportRange) -> Iterator[LogBatch]:
    params: dict[str, Any] = {}
    try:
        rows = reader.client.query(
            f"SELECT {_LOG_COLUMNS} FROM {reader.tables['logs']} WHERE {what.where(params)} "
            "ORDER BY Timestamp, ServiceName, TraceId, SpanId", parameters=params).result_rows
    except Exception as exc:
        if not _too_large(exc) or what.end_ns - what.start_ns < 2:
            raise
        middle = (what.start_ns + what.end_ns) // 2
        yield from _read_logs(reader, ExportRange(what.start_ns, middle, what.service, what.trace_ids))
        yield from _read_logs(reader, ExportRange(middle, what.end_ns, what.service, what.trace_ids))
        return
    if rows:
        yield rows_to_logs(rows)


def rows_to_logs(rows: list[tuple]) -> LogBatch:
    """`_LOG_COLUMNS` rows as a LogBatch; identical resources and scopes are stored once."""
    batch = LogBatch()
    resources: dict[tuple, int] = {}
    scopes: dict[tuple, int] = {}
    for (at, trace_id, span_id, flags, severity_text, severity_number, _service, body, resource_url, res_attrs,
         scope_url, scope_name, scope_version, scope_attrs, attrs, event_name) in rows:
        res_key = (resource_url, tuple(sorted(res_attrs.items())))
        r = resources.get(res_key)
        if r is None:
            r = resources[res_key] = len(batch.resources)
            batch.resources.append(Resource(typed_attributes(dict(res_attrs)), schema_url=resource_url))
        scope_key = (scope_url, scope_name, scope_version, tuple(sorted(scope_attrs.items())))
        s = scopes.get(scope_key)
        if s is None:
            s = scopes[scope_key] = len(batch.scopes)
            batch.scopes.append(Scope(scope_name, scope_version, typed_attributes(dict(scope_attrs)),
                                      schema_url=scope_url))
        at = int(at)
        batch.append(resource=r, scope=s, time_unix_nano=at, observed_time_unix_nano=at,
                     severity_number=int(severity_number), severity_text=severity_text, body=body or None,
                     attributes=typed_attributes(dict(attrs)), flags=int(flags), trace_id=trace_id,
                     span_id=span_id, event_name=event_name)
    return batch
