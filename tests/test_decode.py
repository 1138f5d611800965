"""The OTLP decoder: protobuf from the real SDK encoder, OTLP/JSON rules, limits."""

from __future__ import annotations

import json

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from support import sdk_spans

from spanhouse import semconv as sc
from spanhouse.errors import InvalidRequest
from spanhouse.otlp.decode import DecodeLimits, decode_traces_json, decode_traces_protobuf


def _build(tracer):
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER, attributes={"i": 7, "f": 1.5, "b": False,
                                                                                 "s": ["a", "b"]}) as root:
        root.add_event("ev", {"k": "v"})
        with tracer.start_as_current_span("child", links=[Link(root.get_span_context(), {"l": 1})]) as child:
            child.set_status(Status(StatusCode.ERROR, "bad"))


def test_protobuf_from_the_sdk_encoder_round_trips_into_columns():
    spans = sdk_spans(_build, {sc.SERVICE_NAME: "svc", "host.name": "h1"})
    data = encode_spans(spans).SerializeToString()
    decoded = decode_traces_protobuf(data)
    b = decoded.batch
    assert decoded.rejected == 0 and len(b) == 2
    i_root = b.name.index("root")
    i_child = b.name.index("child")
    assert b.trace_id[i_root] == format(spans[0].context.trace_id, "032x")
    assert b.parent_span_id[i_root] == "" and b.parent_span_id[i_child] == b.span_id[i_root]
    assert b.kind[i_root] == 2 and b.kind[i_child] == 1
    assert b.attributes[i_root] == {"i": 7, "f": 1.5, "b": False, "s": ["a", "b"]}
    assert b.events[i_root][0].name == "ev" and b.events[i_root][0].attributes == {"k": "v"}
    link = b.links[i_child][0]
    assert link.span_id == b.span_id[i_root] and link.attributes == {"l": 1}
    assert (b.status_code[i_child], b.status_message[i_child]) == (2, "bad")
    assert b.resource_attributes(i_root)[sc.SERVICE_NAME] == "svc"
    assert b.scopes[b.scope_index[i_root]].name == "tests.support"
    assert b.end_time_unix_nano[i_root] >= b.start_time_unix_nano[i_root] > 0


def _doc(span: dict) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()


BASE = {"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174", "name": "s"}


def test_json_accepts_int64_as_strings_or_numbers_and_enum_names():
    span = {**BASE, "kind": "SPAN_KIND_CLIENT", "startTimeUnixNano": 10, "endTimeUnixNano": "20",
            "status": {"code": 1}, "attributes": [{"key": "n", "value": {"intValue": "9007199254740993"}}]}
    b = decode_traces_json(_doc(span)).batch
    assert b.trace_id == ["5b8efff798038103d269b633813fc60c"] and b.span_id == ["eee19b7ec3c1b174"]
    assert b.kind == [3] and b.status_code == [1]
    assert (b.start_time_unix_nano, b.end_time_unix_nano) == ([10], [20])
    assert b.attributes[0]["n"] == 9007199254740993


def test_json_snake_case_keys_are_read_like_the_collector_does():
    body = json.dumps({"resource_spans": [{"scope_spans": [{"spans": [
        {"trace_id": BASE["traceId"], "span_id": BASE["spanId"], "name": "snake", "start_time_unix_nano": "5"}]}]}]})
    b = decode_traces_json(body.encode()).batch
    assert b.name == ["snake"] and b.start_time_unix_nano == [5]


def test_json_doubles_as_strings_and_bytes_in_any_base64_alphabet_like_proto3_json():
    """proto3 JSON reads a double from a number or a string, and bytes in standard or URL-safe base64,
    with or without padding; protobuf's own json_format accepts the same."""
    values = {"d1": {"doubleValue": "1.5"}, "d2": {"doubleValue": "-2e3"}, "d3": {"doubleValue": "NaN"},
              "b1": {"bytesValue": "+/8="}, "b2": {"bytesValue": "-_8"}, "b3": {"bytesValue": "aGk"}}
    span = {**BASE, "attributes": [{"key": k, "value": v} for k, v in values.items()]}
    attrs = decode_traces_json(_doc(span)).batch.attributes[0]
    assert attrs["d1"] == 1.5 and attrs["d2"] == -2000.0 and attrs["d3"] != attrs["d3"]
    assert attrs["b1"] == attrs["b2"] == b"\xfb\xff" and attrs["b3"] == b"hi"
    # nested (the slow path) reads the same
    nested = {**BASE, "attributes": [{"key": "a", "value": {"arrayValue": {"values": list(values.values())}}}]}
    assert decode_traces_json(_doc(nested)).batch.attributes[0]["a"][:2] == [1.5, -2000.0]


@pytest.mark.parametrize("body, message", [
    (b"[1, 2]", "expected an object"),
    (_doc({**BASE, "attributes": [{"key": "d", "value": {"doubleValue": "1_000"}}]}), "doubleValue must be a number"),
    (_doc({**BASE, "traceId": "zz"}), "ids are hex strings"),
    (_doc({**BASE, "startTimeUnixNano": "soon"}), "startTimeUnixNano: expected an integer"),
    (_doc({**BASE, "attributes": [{"key": "b", "value": {"boolValue": "yes"}}]}), "boolValue must be true or false"),
    (_doc({**BASE, "attributes": [{"key": "b", "value": {"bytesValue": "%%%"}}]}), "bytesValue is not base64"),
])
def test_json_shape_errors_name_the_path(body, message):
    with pytest.raises(InvalidRequest) as err:
        decode_traces_json(body)
    assert message in str(err.value)


def test_invalid_ids_reject_only_that_span():
    spans = [BASE, {**BASE, "spanId": "0000000000000000", "name": "zero"}, {**BASE, "parentSpanId": "ab", "name": "p"}]
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()
    decoded = decode_traces_json(body)
    assert len(decoded.batch) == 1 and decoded.rejected == 2
    assert "zero" in decoded.error_message and "parentSpanId" in decoded.error_message


def test_limits_truncate_mark_and_bound_nesting():
    attrs = [{"key": f"k{i}", "value": {"stringValue": "x" * 50}} for i in range(5)]
    span = {**BASE, "attributes": attrs, "events": [{"name": "e", "attributes": [
        {"key": "msg", "value": {"stringValue": "y" * 50}}]}]}
    decoded = decode_traces_json(_doc(span), DecodeLimits(max_value_length=10, max_attributes=3))
    a = decoded.batch.attributes[0]
    assert [k for k in a if k.startswith("k")] == ["k0", "k1", "k2"]
    assert a["k0"] == "x" * 10
    assert a[sc.SPANHOUSE_ATTRIBUTE_TRUNCATED_KEYS] == ["k0", "k1", "k2", "events.e.msg"]
    assert decoded.batch.dropped_attributes_count[0] == 2
    deep: dict = {"stringValue": "leaf"}
    for _ in range(40):
        deep = {"arrayValue": {"values": [deep]}}
    with pytest.raises(InvalidRequest, match="nests deeper than 32"):
        decode_traces_json(_doc({**BASE, "attributes": [{"key": "d", "value": deep}]}))


def test_protobuf_garbage_is_invalid_request():
    with pytest.raises(InvalidRequest, match="not a valid ExportTraceServiceRequest"):
        decode_traces_protobuf(b"\x0a\xff\xff\xff\xff\x0f")


def test_kvlists_nested_past_the_protobuf_decoders_depth_get_a_message_that_says_so():
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    def request(depth: int) -> bytes:
        value = AnyValue(string_value="x")
        for _ in range(depth):
            outer = AnyValue()
            outer.kvlist_value.values.add(key="k", value=value)
            value = outer
        req = ExportTraceServiceRequest()
        span = req.resource_spans.add().scope_spans.add().spans.add(trace_id=b"\x01" * 16, span_id=b"\x01" * 8)
        span.attributes.add(key="deep", value=value)
        return req.SerializeToString()

    assert len(decode_traces_protobuf(request(31)).batch) == 1
    with pytest.raises(InvalidRequest, match=r"deeper than the protobuf decoder allows \(about 31 nested kvlists\)"):
        decode_traces_protobuf(request(32))
