"""The decoders' inline scalar paths give exactly what the general paths give, and unusual values still
take the validating path (same values, same error messages)."""

from __future__ import annotations

import base64
import json
import math

import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from support import sdk_spans

from spanhouse.errors import InvalidRequest
from spanhouse.otlp.decode import DecodeLimits, decode_traces_json, decode_traces_protobuf


def _request():
    def build(tracer):
        with tracer.start_as_current_span("root", attributes={
            "s": "text ✓", "i": -42, "big": 2**62, "f": 0.25, "whole": 3.0, "b": False, "arr": ["a", "b"],
            "ints": [1, 2], "empty": ""}) as span:
            span.add_event("ev", {"n": 1, "x": 1.5, "t": True})
            with tracer.start_as_current_span("child", attributes={"k": "v"}):
                pass
    return encode_spans(sdk_spans(build))


def _as_otlp_json(req) -> bytes:
    doc = json_format.MessageToDict(req)
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for sp in ss["spans"]:
                for k in ("traceId", "spanId", "parentSpanId"):
                    if k in sp:
                        sp[k] = base64.b64decode(sp[k]).hex()
    return json.dumps(doc).encode()


def _columns(batch):
    return (batch.trace_id, batch.span_id, batch.parent_span_id, batch.name, batch.attributes,
            [[(e.name, e.time_unix_nano, e.attributes) for e in evs] for evs in batch.events],
            [r.attributes for r in batch.resources])


def test_protobuf_and_json_decode_to_the_same_batch():
    req = _request()
    pb = decode_traces_protobuf(req.SerializeToString()).batch
    js = decode_traces_json(_as_otlp_json(req)).batch
    assert _columns(pb) == _columns(js)
    assert pb.attributes[-1]["i"] == -42 and pb.attributes[-1]["arr"] == ["a", "b"]
    assert pb.attributes[-1]["empty"] == "" and pb.attributes[-1]["s"] == "text ✓"


def test_an_unset_value_and_an_empty_string_stay_apart():
    req = _request()
    kvs = req.resource_spans[0].scope_spans[0].spans[0].attributes
    kvs.add(key="unset")
    kvs.add(key="falsy").value.int_value = 0
    kvs.add(key="blank").value.string_value = ""
    attrs = decode_traces_protobuf(req.SerializeToString()).batch
    attrs = next(a for a in attrs.attributes if "unset" in a)
    assert attrs["unset"] is None and attrs["blank"] == "" and attrs["falsy"] == 0


def _one(attrs: list, limits: DecodeLimits = DecodeLimits()) -> dict:
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "x",
        "attributes": attrs}]}]}]}
    return decode_traces_json(json.dumps(doc).encode(), limits).batch.attributes[0]


def test_json_values_outside_the_fast_path_keep_their_meaning():
    got = _one([
        {"key": "int_text", "value": {"intValue": "12"}},
        {"key": "int_empty", "value": {"intValue": ""}},
        {"key": "int_float", "value": {"intValue": 3.0}},
        {"key": "nan", "value": {"doubleValue": "NaN"}},
        {"key": "double_int", "value": {"doubleValue": 2}},
        {"key": "snake", "value": {"string_value": "s"}},
        {"key": "unset", "value": {}},
        {"key": "no_value"},
    ])
    assert got["int_text"] == 12 and got["int_empty"] == 0 and got["int_float"] == 3
    assert math.isnan(got["nan"]) and got["double_int"] == 2.0 and type(got["double_int"]) is float
    assert got["snake"] == "s" and got["unset"] is None and got["no_value"] is None


@pytest.mark.parametrize("value, message", [
    ({"boolValue": "true"}, "attributes[0].value: boolValue must be true or false"),
    ({"intValue": "1.5"}, "attributes[0].value: expected an integer or a decimal string"),
    ({"stringValue": 5}, "attributes[0].value: expected a string, got int"),
])
def test_bad_json_values_are_refused_with_their_path(value, message):
    with pytest.raises(InvalidRequest, match=message.replace("[", r"\[").replace("]", r"\]")):
        _one([{"key": "k", "value": value}])
