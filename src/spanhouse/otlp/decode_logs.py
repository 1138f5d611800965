"""Decode OTLP log export requests (protobuf or OTLP/JSON) into a `LogBatch`.

The logs counterpart of `decode.py`, sharing its value readers and limits: attribute values and
bodies (both AnyValue) become Python values under the same nesting, count and length bounds. A
request that cannot be decoded at all raises `InvalidRequest`; a record whose trace or span id is
malformed, or whose time ClickHouse cannot store, is left out and counted, so the rest of the request
is still stored (`partial_success`); truncated values and dropped attributes are counted as for spans.
A record without an observed time gets the time it was received, as a collector observes it; without
one, a record with no time at all would be stored at the epoch and dropped at once by any TTL.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from opentelemetry.proto.logs.v1 import logs_pb2

from spanhouse.errors import InvalidRequest
from spanhouse.logbatch import LogBatch
from spanhouse.otlp import utf8
from spanhouse.otlp.counts import check_json, check_protobuf, check_wire
from spanhouse.otlp.decode import (
    INT32,
    MAX_TIME,
    TIME_RANGE,
    UINT32,
    Decoded,
    DecodeLimits,
    _Json,
    _mark_truncated,
    _PbValues,
    parse_protobuf,
    range_problem,
)

_SEVERITY_NUMBERS = dict(logs_pb2.SeverityNumber.items())
_BODY_KEY = "body"


def _log_ids(trace_id: str, span_id: str) -> tuple[str, str, str | None]:
    """Normalized (trace_id, span_id) — all-zero ids mean "not tied to a span" — or a problem."""
    if trace_id.strip("0") == "":
        trace_id = ""
    if span_id.strip("0") == "":
        span_id = ""
    if trace_id and len(trace_id) != 32:
        return trace_id, span_id, f"traceId {trace_id!r} is not empty or 16 bytes"
    if span_id and len(span_id) != 16:
        return trace_id, span_id, f"spanId {span_id!r} is not empty or 8 bytes"
    return trace_id, span_id, None


def _time_problem(time_unix_nano: int, observed_time_unix_nano: int) -> str | None:
    """Times must be storable and findable: nanoseconds since 1970, before 2100 (`MAX_TIME`)."""
    for name, t in (("timeUnixNano", time_unix_nano), ("observedTimeUnixNano", observed_time_unix_nano)):
        if not 0 <= t <= MAX_TIME:
            return f"{name} {t} is outside the years {TIME_RANGE}"
    return None


def _limit_body(body: Any, limits: DecodeLimits, truncated: list[str]) -> Any:
    n = limits.max_value_length
    if n and isinstance(body, (str, bytes)) and len(body) > n:
        truncated.append(_BODY_KEY)
        return body[:n]
    return body


def _new_decoded(limits: DecodeLimits) -> Decoded:
    return Decoded(LogBatch(), noun="log record", limits=limits)


def decode_logs_protobuf(data: bytes, limits: DecodeLimits = DecodeLimits()) -> Decoded:
    """Decode a binary `ExportLogsServiceRequest`."""
    check_wire(data, "log record", limits.max_records)
    req, bad_utf8 = parse_protobuf(data, utf8.LOGS)
    check_protobuf(req, "log record", limits.max_records)
    vals = _PbValues(limits)
    received = time.time_ns()
    out = _new_decoded(limits)
    for reason in bad_utf8:
        out.reject(reason)
    batch: LogBatch = out.batch
    for rl in req.resource_logs:
        resource = vals.resource(rl, batch.resources)
        for sl in rl.scope_logs:
            scope = vals.scope(sl, batch.scopes)
            for lr in sl.log_records:
                trace_id, span_id, problem = _log_ids(lr.trace_id.hex(), lr.span_id.hex())
                observed = lr.observed_time_unix_nano or received
                problem = problem or _time_problem(lr.time_unix_nano, observed)
                if problem:
                    what = lr.event_name or lr.severity_text or "without a name"
                    out.reject(f"log record {what!r}: {problem}")
                    continue
                truncated: list[str] = []
                attrs, dropped = vals.attributes(lr.attributes, truncated)
                body = _limit_body(vals.value(lr.body) if lr.HasField("body") else None, limits, truncated)
                _mark_truncated(attrs, truncated)
                batch.append(
                    resource=resource, scope=scope, time_unix_nano=lr.time_unix_nano,
                    observed_time_unix_nano=observed,
                    severity_number=lr.severity_number,
                    severity_text=lr.severity_text, body=body, attributes=attrs,
                    dropped_attributes_count=lr.dropped_attributes_count + dropped, flags=lr.flags,
                    trace_id=trace_id, span_id=span_id, event_name=lr.event_name,
                )
    out.count(vals)
    return out


def decode_logs_json(data: bytes, limits: DecodeLimits = DecodeLimits()) -> Decoded:
    """Decode an OTLP/JSON `ExportLogsServiceRequest` (hex ids, integer enums, int64 as string or number)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    check_json(doc, "log record", limits.max_records)
    j = _Json(limits)
    doc = j.obj(doc, "$")
    received = time.time_ns()
    out = _new_decoded(limits)
    batch: LogBatch = out.batch
    g = j.get
    for ri, rl in enumerate(j.arr(g(doc, "resourceLogs", "resource_logs"), "resourceLogs")):
        rp = f"resourceLogs[{ri}]"
        rl = j.obj(rl, rp)
        resource = j.resource(rl, rp, batch.resources)
        for si, sl in enumerate(j.arr(g(rl, "scopeLogs", "scope_logs"), f"{rp}.scopeLogs")):
            sp = f"{rp}.scopeLogs[{si}]"
            sl = j.obj(sl, sp)
            scope = j.scope(sl, sp, batch.scopes)
            for xi, lr in enumerate(j.arr(g(sl, "logRecords", "log_records"), f"{sp}.logRecords")):
                p = f"{sp}.logRecords[{xi}]"
                lr = j.obj(lr, p)
                event_name = j.string(g(lr, "eventName", "event_name"), f"{p}.eventName")
                trace_id, span_id, problem = _log_ids(j.hex_id(g(lr, "traceId", "trace_id"), f"{p}.traceId"),
                                                      j.hex_id(g(lr, "spanId", "span_id"), f"{p}.spanId"))
                t = j.int64(g(lr, "timeUnixNano", "time_unix_nano"), f"{p}.timeUnixNano")
                observed = j.int64(g(lr, "observedTimeUnixNano", "observed_time_unix_nano"),
                                   f"{p}.observedTimeUnixNano") or received
                severity = j.enum(g(lr, "severityNumber", "severity_number"), _SEVERITY_NUMBERS,
                                  f"{p}.severityNumber")
                flags = j.int64(lr.get("flags"), f"{p}.flags")
                count = j.int64(g(lr, "droppedAttributesCount", "dropped_attributes_count"), p)
                problem = problem or _time_problem(t, observed) or range_problem(
                    [("severityNumber", severity, INT32), ("flags", flags, UINT32),
                     ("droppedAttributesCount", count, UINT32)])
                if problem:
                    out.reject(f"{p} ({event_name!r}): {problem}" if event_name else f"{p}: {problem}")
                    continue
                truncated: list[str] = []
                attrs, dropped = j.attributes(lr.get("attributes"), f"{p}.attributes", truncated)
                body = _limit_body(j.value(lr["body"], f"{p}.body") if lr.get("body") is not None else None,
                                   limits, truncated)
                _mark_truncated(attrs, truncated)
                batch.append(
                    resource=resource, scope=scope,
                    time_unix_nano=t, observed_time_unix_nano=observed,
                    severity_number=severity,
                    severity_text=j.string(g(lr, "severityText", "severity_text"), f"{p}.severityText"),
                    body=body, attributes=attrs, dropped_attributes_count=dropped + count, flags=flags,
                    trace_id=trace_id, span_id=span_id, event_name=event_name,
                )
    out.count(j)
    return out
