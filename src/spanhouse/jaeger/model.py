"""SpanBatch → the Jaeger UI JSON model (`internal/uimodel`), following Jaeger's OTLP translation rules.

Units: `startTime`, `duration` and log `timestamp` are microseconds. The parent comes first in
`references` as CHILD_OF; links follow as FOLLOWS_FROM. Span kind, status, scope and trace state
become the tags Jaeger's translator writes (`span.kind`, `otel.status_code`, `error`, ...). Attribute
values keep their types as tag types (`int64`, `float64`, `bool`, `binary`, `string`); events become
logs whose first field is `event` = the event name. Processes are numbered `p1`, `p2`, ... per trace.
"""

from __future__ import annotations

import base64
from typing import Any

from spanhouse import semconv as sc
from spanhouse.batch import STATUS_CODE_ERROR, SpanBatch
from spanhouse.otlp.values import as_string

TAG_SPAN_KIND = "span.kind"
TAG_STATUS_CODE = "otel.status_code"
TAG_STATUS_DESCRIPTION = "otel.status_description"
TAG_ERROR = "error"
TAG_SCOPE_NAME = "otel.scope.name"
TAG_SCOPE_VERSION = "otel.scope.version"
TAG_TRACE_STATE = "w3c.tracestate"
LOG_EVENT_FIELD = "event"
REF_TYPE_LINK_ATTRIBUTE = "opentracing.ref_type"

SPAN_KIND_NAMES = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_STATUS_NAMES = {1: "OK", 2: "ERROR"}
_MAX_SAFE_INT = (1 << 53) - 1


def tag(key: str, value: Any) -> dict[str, Any]:
    """One Jaeger key/value with its type; ints beyond ±(2^53−1) are written as JSON strings."""
    t = type(value)
    if t is bool:
        return {"key": key, "type": "bool", "value": value}
    if t is int:
        return {"key": key, "type": "int64", "value": value if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT else str(value)}
    if t is float:
        return {"key": key, "type": "float64", "value": value}
    if t is bytes:
        return {"key": key, "type": "binary", "value": base64.b64encode(value).decode()}
    return {"key": key, "type": "string", "value": value if t is str else as_string(value)}


def _tags(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    return [tag(k, v) for k, v in attrs.items()]


def span_tags(batch: SpanBatch, i: int) -> list[dict[str, Any]]:
    """The span's attributes, then the tags Jaeger derives from the span's OTLP fields."""
    tags = _tags(batch.attributes[i])
    scope = batch.scopes[batch.scope_index[i]]
    if scope.name:
        tags.append(tag(TAG_SCOPE_NAME, scope.name))
    if scope.version:
        tags.append(tag(TAG_SCOPE_VERSION, scope.version))
    kind = SPAN_KIND_NAMES.get(batch.kind[i])
    if kind:
        tags.append(tag(TAG_SPAN_KIND, kind))
    status = _STATUS_NAMES.get(batch.status_code[i])
    if status:
        tags.append(tag(TAG_STATUS_CODE, status))
    if batch.status_code[i] == STATUS_CODE_ERROR:
        tags.append(tag(TAG_ERROR, True))
    if batch.status_message[i]:
        tags.append(tag(TAG_STATUS_DESCRIPTION, batch.status_message[i]))
    if batch.trace_state[i]:
        tags.append(tag(TAG_TRACE_STATE, batch.trace_state[i]))
    return tags


def _references(batch: SpanBatch, i: int) -> list[dict[str, Any]]:
    refs = []
    if batch.parent_span_id[i]:
        refs.append({"refType": "CHILD_OF", "traceID": batch.trace_id[i], "spanID": batch.parent_span_id[i]})
    for link in batch.links[i]:
        ref_type = "CHILD_OF" if link.attributes.get(REF_TYPE_LINK_ATTRIBUTE) == "child_of" else "FOLLOWS_FROM"
        refs.append({"refType": ref_type, "traceID": link.trace_id, "spanID": link.span_id})
    return refs


def _logs(batch: SpanBatch, i: int) -> list[dict[str, Any]]:
    return [{"timestamp": e.time_unix_nano // 1000,
             "fields": [tag(LOG_EVENT_FIELD, e.name)] + _tags(e.attributes)} for e in batch.events[i]]


def _orphan_warning(parent: str, present: set[str]) -> list[str] | None:
    """Jaeger UI shows a span's warnings beside it: a parent that was never stored (or not yet) would
    otherwise only move the span to the top level, unexplained."""
    if not parent or parent in present:
        return None
    return [f"invalid parent span IDs={parent}: the parent span is not stored (yet)"]


def to_traces(batch: SpanBatch) -> list[dict[str, Any]]:
    """One Jaeger trace object per trace id in `batch`, in the order the traces first appear."""
    order: dict[str, list[int]] = {}
    for i, tid in enumerate(batch.trace_id):
        order.setdefault(tid, []).append(i)
    return [_trace(batch, tid, idx) for tid, idx in order.items()]


def _trace(batch: SpanBatch, trace_id: str, indexes: list[int]) -> dict[str, Any]:
    processes: dict[str, dict[str, Any]] = {}
    process_ids: dict[int, str] = {}
    spans = []
    present = {batch.span_id[i] for i in indexes}
    for i in sorted(indexes, key=lambda j: (batch.start_time_unix_nano[j], batch.span_id[j])):
        r = batch.resource_index[i]
        pid = process_ids.get(r)
        if pid is None:
            attrs = batch.resources[r].attributes
            pid = process_ids[r] = f"p{len(processes) + 1}"
            processes[pid] = {"serviceName": str(attrs.get(sc.SERVICE_NAME, "")),
                              "tags": _tags({k: v for k, v in attrs.items() if k != sc.SERVICE_NAME})}
        start = batch.start_time_unix_nano[i]
        spans.append({
            "traceID": trace_id,
            "spanID": batch.span_id[i],
            "flags": batch.flags[i] or 1,
            "operationName": batch.name[i],
            "references": _references(batch, i),
            "startTime": start // 1000,
            "duration": max(0, batch.end_time_unix_nano[i] - start) // 1000,
            "tags": span_tags(batch, i),
            "logs": _logs(batch, i),
            "processID": pid,
            "warnings": _orphan_warning(batch.parent_span_id[i], present),
        })
    return {"traceID": trace_id, "spans": spans, "processes": processes, "warnings": None}
