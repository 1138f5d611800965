"""Decode OTLP trace export requests (protobuf or OTLP/JSON) into a `SpanBatch`.

Both transports call these functions; nothing else parses OTLP. A request that cannot be decoded at
all raises `InvalidRequest`. A span that decodes but cannot be stored (bad ids) is left out and
counted, so the receiver can answer with `partial_success` instead of losing the rest of the request.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from google.protobuf.message import DecodeError

from spanhouse.batch import Event, Link, Resource, Scope, SpanBatch
from spanhouse.errors import InvalidRequest
from spanhouse.otlp import utf8
from spanhouse.otlp.counts import check_json, check_protobuf, check_wire
from spanhouse.semconv import SPANHOUSE_ATTRIBUTE_TRUNCATED_KEYS

_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_MAX_REASONS = 3


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds applied while decoding; values over a bound are refused or truncated, never trusted.

    `max_value_length` truncates string and bytes values, also inside arrays and kvlists (0 =
    unlimited), and records the key in `spanhouse.attribute.truncated_keys`; `max_attributes` keeps the
    first N attributes of a map and counts the rest as dropped; `max_nesting` refuses the request when
    array/kvlist values nest deeper; `max_records` refuses a request with more spans or log records (or
    resource and scope entries) before they are decoded (0 = unlimited).
    """

    max_value_length: int = 0
    max_attributes: int = 0
    max_nesting: int = 32
    max_records: int = 0


@dataclass(slots=True)
class Decoded:
    """A decoded request: the accepted spans (or log records), and how many were rejected and why."""

    batch: Any
    """A `SpanBatch`, or a `LogBatch` for the logs signal."""
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    noun: str = "span"
    truncated_values: int = 0
    dropped_attributes: int = 0
    limits: DecodeLimits = DecodeLimits()

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if len(self.reasons) < _MAX_REASONS:
            self.reasons.append(reason)

    @property
    def error_message(self) -> str:
        """Why records were rejected, and what was changed in the accepted ones ("" when nothing was)."""
        parts = []
        if self.rejected:
            more = "" if self.rejected <= len(self.reasons) else f" (and {self.rejected - len(self.reasons)} more)"
            parts.append(f"{self.rejected} {self.noun}(s) rejected: " + "; ".join(self.reasons) + more)
        if self.truncated_values:
            parts.append(f"{self.truncated_values} attribute value(s) truncated to "
                         f"{self.limits.max_value_length} characters (limits::max_attribute_value_length)")
        if self.dropped_attributes:
            parts.append(f"{self.dropped_attributes} attribute(s) dropped over {self.limits.max_attributes} "
                         "per record (limits::max_attributes_per_span)")
        return ". ".join(parts)

    def count(self, values: Any) -> None:
        self.truncated_values = values.truncated
        self.dropped_attributes = values.dropped


MAX_TIME = 4_102_444_800 * 10**9 - 1
"""The last nanosecond of 2099. DateTime64(9) goes on to April 2262, but the tables' partitions and
TTLs use DateTime, which ends in February 2106 and wraps: a later span would vanish at once or be
filed decades early, where no time-filtered query finds it."""
TIME_RANGE = "1970..2099"


def _time_problem(start: int, end: int, event_times: Any) -> str | None:
    """Times must be storable and findable: nanoseconds since 1970, before 2100 (`MAX_TIME`)."""
    for name, t in (("startTimeUnixNano", start), ("endTimeUnixNano", end)):
        if not 0 <= t <= MAX_TIME:
            return f"{name} {t} is outside the years {TIME_RANGE}"
    for t in event_times:
        if not 0 <= t <= MAX_TIME:
            return f"event timeUnixNano {t} is outside the years {TIME_RANGE}"
    return None


def _span_id_problem(trace_id: str, span_id: str, parent_span_id: str) -> str | None:
    if len(trace_id) != 32 or trace_id == _ZERO_TRACE:
        return f"traceId {trace_id!r} is not 16 non-zero bytes"
    if len(span_id) != 16 or span_id == _ZERO_SPAN:
        return f"spanId {span_id!r} is not 8 non-zero bytes"
    if parent_span_id and len(parent_span_id) != 16:
        return f"parentSpanId {parent_span_id!r} is not empty or 8 bytes"
    return None


def _link_problem(links: Any) -> str | None:
    """A link's ids must be empty or full length: a stored id of another length cannot be forwarded."""
    for n, lk in enumerate(links):
        if len(lk.trace_id) not in (0, 32):
            return f"links[{n}].traceId {lk.trace_id!r} is not empty or 16 bytes"
        if len(lk.span_id) not in (0, 16):
            return f"links[{n}].spanId {lk.span_id!r} is not empty or 8 bytes"
    return None


UINT32 = (0, 2**32 - 1)
INT32 = (-(2**31), 2**31 - 1)


def range_problem(fields: Any) -> str | None:
    """The first of (name, value, (low, high)) whose value is outside its protobuf type's range: OTLP/JSON
    carries plain numbers, and a stored value its protobuf field cannot hold cannot be forwarded."""
    for name, value, (low, high) in fields:
        if not low <= value <= high:
            kind = "a uint32" if low == 0 else "an int32"
            return f"{name} {value} is out of range for {kind} ({low}..{high})"
    return None


# --- protobuf -------------------------------------------------------------------------------


class _PbValues:
    """Converts protobuf AnyValue/KeyValue lists to Python values under `DecodeLimits`."""

    def __init__(self, limits: DecodeLimits):
        self.limits = limits
        self.truncated = 0
        self.dropped = 0
        self._readers: dict[str | None, Callable[[Any, int], Any]] = {
            "string_value": lambda v, d: v.string_value,
            "int_value": lambda v, d: v.int_value,
            "double_value": lambda v, d: v.double_value,
            "bool_value": lambda v, d: v.bool_value,
            "bytes_value": lambda v, d: v.bytes_value,
            "array_value": lambda v, d: [self.value(x, d + 1) for x in v.array_value.values],
            "kvlist_value": lambda v, d: {kv.key: self.value(kv.value, d + 1) for kv in v.kvlist_value.values},
            None: lambda v, d: None,
        }

    def value(self, v: Any, depth: int = 0) -> Any:
        if depth > self.limits.max_nesting:
            raise InvalidRequest(f"attribute value nests deeper than {self.limits.max_nesting} levels")
        reader = self._readers.get(v.WhichOneof("value"))
        return reader(v, depth) if reader else None

    def attributes(self, kvs: Any, truncated: list[str] | None = None, prefix: str = "") -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        # the scalar cases inline: this loop runs for every attribute of every span. A non-empty
        # string_value can only mean the string case, and most values are strings: one field read
        # instead of WhichOneof for them
        for kv in kvs:
            v = kv.value
            text = v.string_value
            if text:
                out[kv.key] = text
                continue
            which = v.WhichOneof("value")
            if which == "string_value":
                out[kv.key] = text
            elif which == "int_value":
                out[kv.key] = v.int_value
            elif which == "double_value":
                out[kv.key] = v.double_value
            elif which == "bool_value":
                out[kv.key] = v.bool_value
            else:
                out[kv.key] = self.value(v)
        dropped, n_truncated = _apply_limits(out, self.limits, truncated, prefix)
        self.dropped += dropped
        self.truncated += n_truncated
        return out, dropped

    def resource(self, container: Any, resources: list[Resource]) -> int:
        """Append the resource of a ResourceSpans/ResourceLogs message; its index."""
        truncated: list[str] = []
        attrs, dropped = self.attributes(container.resource.attributes, truncated)
        _mark_truncated(attrs, truncated)
        resources.append(Resource(attrs, container.schema_url, container.resource.dropped_attributes_count + dropped))
        return len(resources) - 1

    def scope(self, container: Any, scopes: list[Scope]) -> int:
        """Append the scope of a ScopeSpans/ScopeLogs message; its index."""
        attrs, _ = self.attributes(container.scope.attributes)
        scopes.append(Scope(container.scope.name, container.scope.version, attrs, container.schema_url,
                            container.scope.dropped_attributes_count))
        return len(scopes) - 1


def _truncate(v: Any, n: int) -> tuple[Any, bool]:
    """`v` with every string or bytes value (nested ones too) cut to `n`; and whether anything was cut."""
    if isinstance(v, (str, bytes)):
        return (v[:n], True) if len(v) > n else (v, False)
    if isinstance(v, list):
        cut = False
        for i, x in enumerate(v):
            v[i], c = _truncate(x, n)
            cut |= c
        return v, cut
    if isinstance(v, dict):
        cut = False
        for k, x in v.items():
            v[k], c = _truncate(x, n)
            cut |= c
        return v, cut
    return v, False


def _apply_limits(attrs: dict[str, Any], limits: DecodeLimits, truncated: list[str] | None,
                  prefix: str) -> tuple[int, int]:
    """Enforce the attribute-count and value-length limits on `attrs`; returns (dropped, truncated)."""
    dropped = n_truncated = 0
    if limits.max_attributes and len(attrs) > limits.max_attributes:
        extra = list(attrs)[limits.max_attributes:]
        dropped = len(extra)
        for k in extra:
            del attrs[k]
    n = limits.max_value_length
    if n:
        for k, v in attrs.items():
            attrs[k], cut = _truncate(v, n)
            if cut:
                n_truncated += 1
                if truncated is not None:
                    truncated.append(prefix + k)
    return dropped, n_truncated


def _mark_truncated(attrs: dict[str, Any], truncated: list[str]) -> None:
    if truncated:
        attrs[SPANHOUSE_ATTRIBUTE_TRUNCATED_KEYS] = truncated


def protobuf_problem(message: str, exc: BaseException) -> str:
    """Why a request body is not a valid `message`, in words a sender can act on."""
    if "MaxDepth" in str(exc):
        # upb stops at 100 message levels, which a kvlist inside a kvlist reaches before max_nesting (32)
        return (f"request body is not a valid {message} protobuf: attribute values nest deeper than the protobuf "
                "decoder allows (about 31 nested kvlists)")
    return f"request body is not a valid {message} protobuf: {exc}"


def parse_protobuf(data: bytes, shape: Any) -> tuple[Any, list[str]]:
    """The request message in `data`, and why records holding invalid UTF-8 were left out of it."""
    problem: BaseException
    try:
        return shape.request.FromString(data), []
    except DecodeError as exc:
        problem = exc
        try:
            return utf8.salvage(data, shape, exc)
        except (DecodeError, ValueError, RecursionError):
            pass
    except (ValueError, RecursionError) as exc:
        problem = exc
    raise InvalidRequest(protobuf_problem(shape.request.DESCRIPTOR.name, problem)) from None


def decode_traces_protobuf(data: bytes, limits: DecodeLimits = DecodeLimits()) -> Decoded:
    """Decode a binary `ExportTraceServiceRequest`."""
    check_wire(data, "span", limits.max_records)
    req, bad_utf8 = parse_protobuf(data, utf8.TRACES)
    check_protobuf(req, "span", limits.max_records)
    vals = _PbValues(limits)
    out = Decoded(SpanBatch(), limits=limits)
    for reason in bad_utf8:
        out.reject(reason)
    batch = out.batch
    for rs in req.resource_spans:
        resource = vals.resource(rs, batch.resources)
        for ss in rs.scope_spans:
            scope = vals.scope(ss, batch.scopes)
            for sp in ss.spans:
                trace_id, span_id, parent = sp.trace_id.hex(), sp.span_id.hex(), sp.parent_span_id.hex()
                problem = _span_id_problem(trace_id, span_id, parent) or _time_problem(
                    sp.start_time_unix_nano, sp.end_time_unix_nano, (e.time_unix_nano for e in sp.events))
                if problem:
                    out.reject(f"span {sp.name!r}: {problem}")
                    continue
                truncated: list[str] = []
                attrs, dropped = vals.attributes(sp.attributes, truncated)
                events = []
                for e in sp.events:
                    e_attrs, e_dropped = vals.attributes(e.attributes, truncated, f"events.{e.name}.")
                    events.append(Event(e.time_unix_nano, e.name, e_attrs, e.dropped_attributes_count + e_dropped))
                links = []
                for lk in sp.links:
                    l_attrs, l_dropped = vals.attributes(lk.attributes, truncated, "links.")
                    links.append(Link(lk.trace_id.hex(), lk.span_id.hex(), lk.trace_state, l_attrs, lk.flags,
                                      lk.dropped_attributes_count + l_dropped))
                problem = _link_problem(links)
                if problem:
                    out.reject(f"span {sp.name!r}: {problem}")
                    continue
                _mark_truncated(attrs, truncated)
                batch.append(
                    resource=resource, scope=scope, trace_id=trace_id, span_id=span_id, parent_span_id=parent,
                    trace_state=sp.trace_state, flags=sp.flags, name=sp.name, kind=sp.kind,
                    start_time_unix_nano=sp.start_time_unix_nano, end_time_unix_nano=sp.end_time_unix_nano,
                    attributes=attrs, events=events, links=links,
                    status_code=sp.status.code, status_message=sp.status.message,
                    dropped_attributes_count=sp.dropped_attributes_count + dropped,
                    dropped_events_count=sp.dropped_events_count,
                    dropped_links_count=sp.dropped_links_count,
                )
    out.count(vals)
    return out


# --- OTLP/JSON ------------------------------------------------------------------------------

_SPAN_KINDS = {"SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2,
               "SPAN_KIND_CLIENT": 3, "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5}
_STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


_SLOW = object()
_SPAN_COUNTS = (("droppedAttributesCount", "dropped_attributes_count"),
                ("droppedEventsCount", "dropped_events_count"), ("droppedLinksCount", "dropped_links_count"))


_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_JSON_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
INT64 = (-(2**63), 2**63 - 1)
_VALUE_FIELDS = frozenset({"stringValue", "string_value", "boolValue", "bool_value", "intValue", "int_value",
                           "doubleValue", "double_value", "arrayValue", "array_value", "kvlistValue",
                           "kvlist_value", "bytesValue", "bytes_value"})


def json_integer(value: Any) -> int | None:
    """An integer as proto3 JSON (protojson) reads one: a JSON number, or a string holding one (no sign
    other than '-', no spaces, underscores or non-ASCII digits), whose value is whole; else None."""
    t = type(value)
    if t is int:
        return value
    if t is float:
        return int(value) if value.is_integer() else None
    if t is not str:
        return None
    if _JSON_INTEGER.fullmatch(value):
        return int(value)
    if _JSON_NUMBER.fullmatch(value):
        exact = Decimal(value)
        # an exponent can make a huge integer: bound it before building it
        if exact.adjusted() < 20 and exact == exact.to_integral_value():
            return int(exact)
    return None
_URL_SAFE_B64 = str.maketrans("-_", "+/")


def _json_scalar(kv: dict) -> Any:
    """The value of a well-formed scalar attribute (the common case), without building error paths;
    `_SLOW` for anything else. Gives exactly what `_Json.value` gives for the same input."""
    key, v = kv.get("key"), kv.get("value")
    if type(key) is not str or type(v) is not dict or len(v) != 1:
        return _SLOW
    ((name, x),) = v.items()
    t = type(x)
    if name == "stringValue":
        return x if t is str else _SLOW
    if name == "intValue":
        if t is int or (t is str and _JSON_INTEGER.fullmatch(x)):
            n = int(x)
            return n if INT64[0] <= n <= INT64[1] else _SLOW
        return _SLOW
    if name == "boolValue":
        return x if t is bool else _SLOW
    if name == "doubleValue":
        return float(x) if t is float or t is int else _SLOW
    return _SLOW


class _Json:
    """Reads OTLP/JSON objects, accepting lowerCamelCase and (as the Collector does) snake_case keys."""

    def __init__(self, limits: DecodeLimits):
        self.limits = limits
        self.truncated = 0
        self.dropped = 0

    @staticmethod
    def get(obj: dict, camel: str, snake: str | None = None, default: Any = None) -> Any:
        if camel in obj:
            return obj[camel]
        if snake is not None and snake in obj:
            return obj[snake]
        return default

    def obj(self, value: Any, path: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise InvalidRequest(f"{path}: expected an object, got {type(value).__name__}")
        return value

    def arr(self, value: Any, path: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            raise InvalidRequest(f"{path}: expected an array, got {type(value).__name__}")
        return value

    def int64(self, value: Any, path: str) -> int:
        if value is None or value == "":
            return 0
        n = json_integer(value)
        if n is None:
            raise InvalidRequest(f"{path}: expected an integer or a decimal string, got {value!r}")
        return n

    def enum(self, value: Any, names: dict[str, int], path: str) -> int:
        if isinstance(value, str) and value in names:
            return names[value]
        return self.int64(value, path)

    def string(self, value: Any, path: str) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise InvalidRequest(f"{path}: expected a string, got {type(value).__name__}")
        return value

    def hex_id(self, value: Any, path: str) -> str:
        text = self.string(value, path).lower()
        if text and any(c not in "0123456789abcdef" for c in text):
            raise InvalidRequest(f"{path}: ids are hex strings in OTLP/JSON, got {value!r}")
        return text

    def value(self, v: Any, path: str, depth: int = 0) -> Any:
        if depth > self.limits.max_nesting:
            raise InvalidRequest(f"{path}: attribute value nests deeper than {self.limits.max_nesting} levels")
        v = self.obj(v, path)
        if not v:
            return None
        if len(_VALUE_FIELDS.intersection(v)) > 1:
            raise InvalidRequest(f"{path}: a value sets one field, got "
                                 f"{', '.join(sorted(_VALUE_FIELDS.intersection(v)))}")
        if "stringValue" in v or "string_value" in v:
            return self.string(self.get(v, "stringValue", "string_value"), path)
        if "intValue" in v or "int_value" in v:
            n = self.int64(self.get(v, "intValue", "int_value"), path)
            if not INT64[0] <= n <= INT64[1]:
                raise InvalidRequest(f"{path}: intValue {n} is out of range for an int64")
            return n
        if "doubleValue" in v or "double_value" in v:
            d = self.get(v, "doubleValue", "double_value")
            if isinstance(d, str):
                # proto3 JSON: a double may also come as a string, a JSON number or NaN / ±Infinity
                if d in ("NaN", "Infinity", "-Infinity"):
                    return float(d.replace("Infinity", "inf"))
                if _JSON_NUMBER.fullmatch(d) and math.isfinite(float(d)):
                    return float(d)
                raise InvalidRequest(f"{path}: doubleValue must be a number, a number in a string, 'NaN', "
                                     f"'Infinity' or '-Infinity' (within the range of a double), got {d!r}")
            if isinstance(d, bool) or not isinstance(d, (int, float)):
                raise InvalidRequest(f"{path}: doubleValue must be a number, a number in a string, 'NaN', "
                                     f"'Infinity' or '-Infinity', got {d!r}")
            return float(d)
        if "boolValue" in v or "bool_value" in v:
            b = self.get(v, "boolValue", "bool_value")
            if not isinstance(b, bool):
                raise InvalidRequest(f"{path}: boolValue must be true or false, got {b!r}")
            return b
        if "arrayValue" in v or "array_value" in v:
            items = self.arr(self.obj(self.get(v, "arrayValue", "array_value"), path).get("values"), path)
            return [self.value(x, f"{path}[{i}]", depth + 1) for i, x in enumerate(items)]
        if "kvlistValue" in v or "kvlist_value" in v:
            kvs = self.arr(self.obj(self.get(v, "kvlistValue", "kvlist_value"), path).get("values"), path)
            return self._kvs(kvs, path, depth + 1)
        if "bytesValue" in v or "bytes_value" in v:
            raw = self.string(self.get(v, "bytesValue", "bytes_value"), path)
            try:
                # proto3 JSON accepts standard or URL-safe base64, with or without padding
                raw = raw.translate(_URL_SAFE_B64).rstrip("=")
                return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
            except (binascii.Error, ValueError):
                raise InvalidRequest(f"{path}: bytesValue is not base64") from None
        return None

    def _kvs(self, kvs: list, path: str, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        fast = depth <= self.limits.max_nesting
        for i, kv in enumerate(kvs):
            if fast and type(kv) is dict:
                scalar = _json_scalar(kv)
                if scalar is not _SLOW:
                    out[kv["key"]] = scalar
                    continue
            # anything unusual takes the validating path, whose errors name the exact field
            kv = self.obj(kv, f"{path}[{i}]")
            out[self.string(kv.get("key"), f"{path}[{i}].key")] = self.value(kv.get("value"), f"{path}[{i}].value",
                                                                           depth)
        return out

    def attributes(self, kvs: Any, path: str, truncated: list[str] | None = None,
                   prefix: str = "") -> tuple[dict[str, Any], int]:
        out = self._kvs(self.arr(kvs, path), path, 0)
        dropped, n_truncated = _apply_limits(out, self.limits, truncated, prefix)
        self.dropped += dropped
        self.truncated += n_truncated
        return out, dropped

    def resource(self, container: dict, path: str, resources: list[Resource]) -> int:
        """Append the resource of a resourceSpans/resourceLogs object; its index."""
        g = self.get
        res = self.obj(container.get("resource"), f"{path}.resource")
        truncated: list[str] = []
        attrs, dropped = self.attributes(res.get("attributes"), f"{path}.resource.attributes", truncated)
        _mark_truncated(attrs, truncated)
        res_dropped = self.int64(g(res, "droppedAttributesCount", "dropped_attributes_count"),
                                 f"{path}.resource.droppedAttributesCount")
        problem = range_problem([(f"{path}.resource.droppedAttributesCount", res_dropped, UINT32)])
        if problem:
            raise InvalidRequest(problem)
        resources.append(Resource(
            attrs, self.string(g(container, "schemaUrl", "schema_url"), f"{path}.schemaUrl"), res_dropped + dropped))
        return len(resources) - 1

    def scope(self, container: dict, path: str, scopes: list[Scope]) -> int:
        """Append the scope of a scopeSpans/scopeLogs object; its index."""
        sc = self.obj(container.get("scope"), f"{path}.scope")
        attrs, _ = self.attributes(sc.get("attributes"), f"{path}.scope.attributes")
        dropped = self.int64(self.get(sc, "droppedAttributesCount", "dropped_attributes_count"),
                             f"{path}.scope.droppedAttributesCount")
        problem = range_problem([(f"{path}.scope.droppedAttributesCount", dropped, UINT32)])
        if problem:
            raise InvalidRequest(problem)
        scopes.append(Scope(self.string(sc.get("name"), f"{path}.scope.name"),
                            self.string(sc.get("version"), f"{path}.scope.version"), attrs,
                            self.string(self.get(container, "schemaUrl", "schema_url"), f"{path}.schemaUrl"),
                            dropped))
        return len(scopes) - 1


def decode_traces_json(data: bytes, limits: DecodeLimits = DecodeLimits()) -> Decoded:
    """Decode an OTLP/JSON `ExportTraceServiceRequest` (hex ids, integer enums, int64 as string or number)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    check_json(doc, "span", limits.max_records)
    j = _Json(limits)
    doc = j.obj(doc, "$")
    out = Decoded(SpanBatch(), limits=limits)
    batch = out.batch
    g = j.get
    for ri, rs in enumerate(j.arr(g(doc, "resourceSpans", "resource_spans"), "resourceSpans")):
        rp = f"resourceSpans[{ri}]"
        rs = j.obj(rs, rp)
        resource = j.resource(rs, rp, batch.resources)
        for si, ss in enumerate(j.arr(g(rs, "scopeSpans", "scope_spans"), f"{rp}.scopeSpans")):
            sp_path = f"{rp}.scopeSpans[{si}]"
            ss = j.obj(ss, sp_path)
            scope = j.scope(ss, sp_path, batch.scopes)
            for xi, sp in enumerate(j.arr(ss.get("spans"), f"{sp_path}.spans")):
                p = f"{sp_path}.spans[{xi}]"
                sp = j.obj(sp, p)
                trace_id = j.hex_id(g(sp, "traceId", "trace_id"), f"{p}.traceId")
                span_id = j.hex_id(g(sp, "spanId", "span_id"), f"{p}.spanId")
                parent = j.hex_id(g(sp, "parentSpanId", "parent_span_id"), f"{p}.parentSpanId")
                name = j.string(sp.get("name"), f"{p}.name")
                problem = _span_id_problem(trace_id, span_id, parent)
                if problem:
                    out.reject(f"{p} ({name!r}): {problem}")
                    continue
                truncated: list[str] = []
                attrs, dropped = j.attributes(sp.get("attributes"), f"{p}.attributes", truncated)
                ints = []
                events = []
                for ei, e in enumerate(j.arr(sp.get("events"), f"{p}.events")):
                    ep = f"{p}.events[{ei}]"
                    e = j.obj(e, ep)
                    e_name = j.string(e.get("name"), f"{ep}.name")
                    e_attrs, e_dropped = j.attributes(e.get("attributes"), f"{ep}.attributes", truncated,
                                                      f"events.{e_name}.")
                    e_count = j.int64(g(e, "droppedAttributesCount", "dropped_attributes_count"), ep)
                    ints.append((f"events[{ei}].droppedAttributesCount", e_count, UINT32))
                    events.append(Event(j.int64(g(e, "timeUnixNano", "time_unix_nano"), f"{ep}.timeUnixNano"),
                                        e_name, e_attrs, e_count + e_dropped))
                links = []
                for li, lk in enumerate(j.arr(sp.get("links"), f"{p}.links")):
                    lp = f"{p}.links[{li}]"
                    lk = j.obj(lk, lp)
                    l_attrs, l_dropped = j.attributes(lk.get("attributes"), f"{lp}.attributes", truncated, "links.")
                    l_flags = j.int64(lk.get("flags"), f"{lp}.flags")
                    l_count = j.int64(g(lk, "droppedAttributesCount", "dropped_attributes_count"), lp)
                    ints += [(f"links[{li}].flags", l_flags, UINT32),
                             (f"links[{li}].droppedAttributesCount", l_count, UINT32)]
                    links.append(Link(
                        j.hex_id(g(lk, "traceId", "trace_id"), f"{lp}.traceId"),
                        j.hex_id(g(lk, "spanId", "span_id"), f"{lp}.spanId"),
                        j.string(g(lk, "traceState", "trace_state"), f"{lp}.traceState"), l_attrs,
                        l_flags, l_count + l_dropped))
                status = j.obj(sp.get("status"), f"{p}.status")
                start = j.int64(g(sp, "startTimeUnixNano", "start_time_unix_nano"), f"{p}.startTimeUnixNano")
                end = j.int64(g(sp, "endTimeUnixNano", "end_time_unix_nano"), f"{p}.endTimeUnixNano")
                flags = j.int64(sp.get("flags"), f"{p}.flags")
                kind = j.enum(sp.get("kind"), _SPAN_KINDS, f"{p}.kind")
                code = j.enum(status.get("code"), _STATUS_CODES, f"{p}.status.code")
                counts = [j.int64(g(sp, camel, snake), f"{p}.{camel}") for camel, snake in _SPAN_COUNTS]
                ints += [("flags", flags, UINT32), ("kind", kind, INT32), ("status.code", code, INT32)]
                ints += [(camel, n, UINT32) for (camel, _), n in zip(_SPAN_COUNTS, counts, strict=True)]
                problem = (_time_problem(start, end, (e.time_unix_nano for e in events)) or _link_problem(links)
                           or range_problem(ints))
                if problem:
                    out.reject(f"{p} ({name!r}): {problem}")
                    continue
                _mark_truncated(attrs, truncated)
                batch.append(
                    resource=resource, scope=scope, trace_id=trace_id, span_id=span_id, parent_span_id=parent,
                    trace_state=j.string(g(sp, "traceState", "trace_state"), f"{p}.traceState"),
                    flags=flags, name=name, kind=kind,
                    start_time_unix_nano=start, end_time_unix_nano=end,
                    attributes=attrs, events=events, links=links,
                    status_code=code,
                    status_message=j.string(status.get("message"), f"{p}.status.message"),
                    dropped_attributes_count=counts[0] + dropped,
                    dropped_events_count=counts[1],
                    dropped_links_count=counts[2],
                )
    out.count(j)
    return out
