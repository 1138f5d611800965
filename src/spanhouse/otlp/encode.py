"""Encode a `SpanBatch` as an OTLP `ExportTraceServiceRequest`: protobuf bytes or OTLP/JSON.

The inverse of `spanhouse.otlp.decode`: spans are grouped back under their resource and scope (in
first-seen order), attribute values keep the Python types the batch holds (str, bool, int, float,
bytes, list, dict), and the JSON form follows the OTLP/JSON rules (hex ids, integer enums, 64-bit
integers as decimal strings, bytes as base64).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterator
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from spanhouse.batch import SpanBatch

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _groups(batch: Any) -> Iterator[tuple[int, list[tuple[int, list[int]]]]]:
    """(resource index, [(scope index, [span indexes])]) in first-seen order."""
    order: dict[int, dict[int, list[int]]] = {}
    for i in range(len(batch)):
        order.setdefault(batch.resource_index[i], {}).setdefault(batch.scope_index[i], []).append(i)
    for r, scopes in order.items():
        yield r, list(scopes.items())


def _id_bytes(hex_id: str) -> bytes:
    return bytes.fromhex(hex_id) if hex_id else b""


# --- protobuf -------------------------------------------------------------------------------


def _set_value(out: AnyValue, v: Any) -> None:
    t = type(v)
    if t is str:
        out.string_value = v
    elif t is bool:
        out.bool_value = v
    elif t is int:
        if _INT64_MIN <= v <= _INT64_MAX:
            out.int_value = v
        else:  # OTLP has no wider integer; keep the digits rather than lose precision
            out.string_value = str(v)
    elif t is float:
        out.double_value = v
    elif t is bytes:
        out.bytes_value = v
    elif isinstance(v, (list, tuple)):
        arr = out.array_value
        arr.SetInParent()
        for x in v:
            _set_value(arr.values.add(), x)
    elif isinstance(v, dict):
        kvl = out.kvlist_value
        kvl.SetInParent()
        for k, x in v.items():
            kv = kvl.values.add()
            kv.key = str(k)
            _set_value(kv.value, x)
    elif v is None:
        return
    else:
        out.string_value = str(v)


def _set_attributes(target: Any, attrs: dict[str, Any]) -> None:
    for k, v in attrs.items():
        kv: KeyValue = target.add()
        kv.key = k
        _set_value(kv.value, v)


def set_resource(out: Any, resource: Any) -> None:
    """Fill a `ResourceSpans` or `ResourceLogs` message's resource and schema url."""
    out.schema_url = resource.schema_url
    _set_attributes(out.resource.attributes, resource.attributes)
    out.resource.dropped_attributes_count = resource.dropped_attributes_count


def set_scope(out: Any, scope: Any) -> None:
    """Fill a `ScopeSpans` or `ScopeLogs` message's scope and schema url."""
    out.schema_url = scope.schema_url
    out.scope.name = scope.name
    out.scope.version = scope.version
    _set_attributes(out.scope.attributes, scope.attributes)
    out.scope.dropped_attributes_count = scope.dropped_attributes_count


def to_request(batch: SpanBatch) -> ExportTraceServiceRequest:
    """The batch as an `ExportTraceServiceRequest` message."""
    req = ExportTraceServiceRequest()
    for r, scopes in _groups(batch):
        resource = batch.resources[r]
        rs = req.resource_spans.add()
        set_resource(rs, resource)
        for s, spans in scopes:
            ss = rs.scope_spans.add()
            set_scope(ss, batch.scopes[s])
            for i in spans:
                sp = ss.spans.add()
                sp.trace_id = _id_bytes(batch.trace_id[i])
                sp.span_id = _id_bytes(batch.span_id[i])
                sp.parent_span_id = _id_bytes(batch.parent_span_id[i])
                sp.trace_state = batch.trace_state[i]
                sp.flags = batch.flags[i]
                sp.name = batch.name[i]
                sp.kind = batch.kind[i]
                sp.start_time_unix_nano = batch.start_time_unix_nano[i]
                sp.end_time_unix_nano = batch.end_time_unix_nano[i]
                _set_attributes(sp.attributes, batch.attributes[i])
                sp.dropped_attributes_count = batch.dropped_attributes_count[i]
                for e in batch.events[i]:
                    ev = sp.events.add()
                    ev.time_unix_nano = e.time_unix_nano
                    ev.name = e.name
                    _set_attributes(ev.attributes, e.attributes)
                    ev.dropped_attributes_count = e.dropped_attributes_count
                sp.dropped_events_count = batch.dropped_events_count[i]
                for k in batch.links[i]:
                    lk = sp.links.add()
                    lk.trace_id = _id_bytes(k.trace_id)
                    lk.span_id = _id_bytes(k.span_id)
                    lk.trace_state = k.trace_state
                    lk.flags = k.flags
                    _set_attributes(lk.attributes, k.attributes)
                    lk.dropped_attributes_count = k.dropped_attributes_count
                sp.dropped_links_count = batch.dropped_links_count[i]
                sp.status.code = batch.status_code[i]
                sp.status.message = batch.status_message[i]
    return req


def encode_traces_protobuf(batch: SpanBatch) -> bytes:
    """The batch as a serialized `ExportTraceServiceRequest`."""
    return to_request(batch).SerializeToString()


# --- OTLP/JSON ------------------------------------------------------------------------------


def json_value(v: Any) -> dict[str, Any]:
    """An OTLP/JSON `AnyValue` object."""
    t = type(v)
    if t is str:
        return {"stringValue": v}
    if t is bool:
        return {"boolValue": v}
    if t is int:
        return {"intValue": str(v)} if _INT64_MIN <= v <= _INT64_MAX else {"stringValue": str(v)}
    if t is float:
        if math.isnan(v) or math.isinf(v):
            return {"doubleValue": "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")}
        return {"doubleValue": v}
    if t is bytes:
        return {"bytesValue": base64.b64encode(v).decode()}
    if isinstance(v, (list, tuple)):
        return {"arrayValue": {"values": [json_value(x) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": json_attributes(v)}}
    if v is None:
        return {}
    return {"stringValue": str(v)}


def json_attributes(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": json_value(v)} for k, v in attrs.items()]


def _compact(obj: dict[str, Any]) -> dict[str, Any]:
    """Drop fields at their default value, as protobuf JSON printers do."""
    return {k: v for k, v in obj.items() if v not in ("", 0, [], {}, None, "0")}


def _json_span(batch: SpanBatch, i: int) -> dict[str, Any]:
    span = _compact({
        "traceId": batch.trace_id[i],
        "spanId": batch.span_id[i],
        "traceState": batch.trace_state[i],
        "parentSpanId": batch.parent_span_id[i],
        "flags": batch.flags[i],
        "name": batch.name[i],
        "kind": batch.kind[i],
        "startTimeUnixNano": str(batch.start_time_unix_nano[i]),
        "endTimeUnixNano": str(batch.end_time_unix_nano[i]),
        "attributes": json_attributes(batch.attributes[i]),
        "droppedAttributesCount": batch.dropped_attributes_count[i],
        "events": [_compact({"timeUnixNano": str(e.time_unix_nano), "name": e.name,
                             "attributes": json_attributes(e.attributes),
                             "droppedAttributesCount": e.dropped_attributes_count})
                   for e in batch.events[i]],
        "droppedEventsCount": batch.dropped_events_count[i],
        "links": [_compact({"traceId": k.trace_id, "spanId": k.span_id, "traceState": k.trace_state,
                            "attributes": json_attributes(k.attributes),
                            "droppedAttributesCount": k.dropped_attributes_count, "flags": k.flags})
                  for k in batch.links[i]],
        "droppedLinksCount": batch.dropped_links_count[i],
    })
    span["status"] = _compact({"message": batch.status_message[i], "code": batch.status_code[i]})
    return span


def encode_traces_json(batch: SpanBatch) -> dict[str, Any]:
    """The batch as an OTLP/JSON `ExportTraceServiceRequest` object (`{"resourceSpans": [...]}`)."""
    return json_request(batch, ("resourceSpans", "scopeSpans", "spans"), _json_span)


def json_request(batch: Any, keys: tuple[str, str, str], item: Callable[[Any, int], dict[str, Any]]) -> dict[str, Any]:
    """A span or log batch as an OTLP/JSON request object, its items grouped under their resource and
    scope; `keys` names the three lists (`resourceSpans`, `scopeSpans`, `spans` for traces)."""
    resource_key, scope_key, items_key = keys
    resources = []
    for r, scopes in _groups(batch):
        resource = batch.resources[r]
        scope_lists = []
        for s, items in scopes:
            scope = batch.scopes[s]
            scope_lists.append(_compact({
                "scope": _compact({"name": scope.name, "version": scope.version,
                                   "attributes": json_attributes(scope.attributes),
                                   "droppedAttributesCount": scope.dropped_attributes_count}),
                items_key: [item(batch, i) for i in items],
                "schemaUrl": scope.schema_url,
            }))
        resources.append(_compact({
            "resource": _compact({"attributes": json_attributes(resource.attributes),
                                  "droppedAttributesCount": resource.dropped_attributes_count}),
            scope_key: scope_lists,
            "schemaUrl": resource.schema_url,
        }))
    return {resource_key: resources}
