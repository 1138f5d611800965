"""Fuzzing the decoders and the live receivers with random and mutated OTLP (hypothesis).

The decoders either return a batch the ClickHouse exporter can encode, or raise `InvalidRequest`;
nothing else. The live server never crashes or hangs and always answers one of the statuses OTLP
clients understand, and bad data is refused at decode time, never later by the store.
"""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
import zlib

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from support import service_config, start_service, unique_database

from spanhouse.errors import InvalidRequest
from spanhouse.exporters.clickhouse import trace_columns
from spanhouse.otlp.decode import DecodeLimits, decode_traces_json, decode_traces_protobuf

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
ANSWERS = {200, 400, 413, 415, 429, 503}
LIMITS = DecodeLimits(max_value_length=64, max_attributes=16, max_nesting=8)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIVE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])


def _sample_request() -> bytes:
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "fuzz"
    ss = rs.scope_spans.add()
    ss.scope.name = "lib"
    for i in range(3):
        s = ss.spans.add(name=f"span {i}", trace_id=bytes(range(1, 17)), span_id=bytes([i + 1] * 8), kind=3)
        s.start_time_unix_nano, s.end_time_unix_nano = 10**18, 10**18 + 5
        s.attributes.add(key="n").value.int_value = i
        arr = s.attributes.add(key="arr").value.array_value
        arr.values.add().string_value = "x" * 100
        kvl = arr.values.add().kvlist_value.values.add(key="k")
        kvl.value.double_value = 0.5
        ev = s.events.add(name="e", time_unix_nano=10**18 + 1)
        ev.attributes.add(key="b").value.bytes_value = b"\x00\xff"
        s.links.add(trace_id=bytes(16), span_id=bytes(8)).attributes.add(key="l").value.bool_value = True
        s.status.code, s.status.message = 2, "err"
    return req.SerializeToString()


SAMPLE = _sample_request()
SAMPLE_JSON = json.dumps({"resourceSpans": [{"resource": {"attributes": [
    {"key": "service.name", "value": {"stringValue": "fuzz"}}]}, "scopeSpans": [{"scope": {"name": "lib"}, "spans": [
        {"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0101010101010101", "name": "s", "kind": 3,
         "startTimeUnixNano": "1000000000000000000", "endTimeUnixNano": 1000000000000000005,
         "attributes": [{"key": "a", "value": {"arrayValue": {"values": [{"intValue": "1"}, {"kvlistValue": {
             "values": [{"key": "k", "value": {"doubleValue": "NaN"}}]}}]}}}],
         "events": [{"timeUnixNano": "1", "name": "e", "attributes": []}],
         "links": [{"traceId": "00" * 16, "spanId": "00" * 8}], "status": {"code": 2}}]}]}]})


@st.composite
def mutated(draw, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[pos:pos + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


KEYS = ["resourceSpans", "scopeSpans", "spans", "resource", "scope", "attributes", "key", "value", "stringValue",
        "intValue", "doubleValue", "boolValue", "arrayValue", "kvlistValue", "bytesValue", "values", "traceId",
        "spanId", "parentSpanId", "name", "kind", "startTimeUnixNano", "endTimeUnixNano", "events", "links",
        "status", "code", "message", "timeUnixNano", "flags", "droppedAttributesCount"]
SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True)
           | st.text(max_size=40) | st.sampled_from(["0102030405060708090a0b0c0d0e0f10", "0101010101010101", "NaN",
                                                     "-1", "18446744073709551615", "aGk="]))
JSONISH = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5),
                       max_leaves=40)


def _decodes_cleanly(decode, data: bytes) -> None:
    try:
        decoded = decode(data, LIMITS)
    except InvalidRequest:
        return
    trace_columns(decoded.batch)  # whatever the decoder accepts, the exporter can encode
    assert decoded.rejected >= 0 and isinstance(decoded.error_message, str)


@FUZZ
@given(st.binary(max_size=1500) | mutated(SAMPLE))
def test_protobuf_decoder_accepts_or_refuses_cleanly(data):
    _decodes_cleanly(decode_traces_protobuf, data)


@FUZZ
@given(JSONISH.map(lambda v: json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [v]}]}]}).encode())
       | JSONISH.map(lambda v: json.dumps(v).encode()) | mutated(SAMPLE_JSON.encode()) | st.binary(max_size=300))
def test_json_decoder_accepts_or_refuses_cleanly(data):
    _decodes_cleanly(decode_traces_json, data)


# --- the live receivers ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live():
    db = unique_database("fuzz")
    receiver = {"protocols": {"grpc": {"endpoint": "127.0.0.1:0", "max_recv_msg_size_mib": 1},
                              "http": {"endpoint": "127.0.0.1:0", "max_request_body_size": 1 << 20}},
                "limits": {"max_attribute_value_length": 64, "max_attributes_per_span": 16, "max_nesting": 8}}
    svc = start_service(service_config(db, receiver=receiver, extensions={}), db)
    yield svc
    svc.stop()


def _encode(body: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    return body


BODIES = (mutated(SAMPLE) | mutated(SAMPLE_JSON.encode()) | st.binary(max_size=500)
          | JSONISH.map(lambda v: json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [v]}]}]}).encode()))


@LIVE
@given(body=BODIES, ctype=st.sampled_from(["application/x-protobuf", "application/json", "text/plain",
                                           "application/json; charset=utf-8", ""]),
       encoding=st.sampled_from([None, "gzip", "deflate", "br"]), raw_encoding=st.booleans())
def test_live_http_receiver_always_answers_a_known_status(live, body, ctype, encoding, raw_encoding):
    headers = {"Content-Type": ctype} if ctype else {}
    if encoding:
        headers["Content-Encoding"] = encoding
    data = body if raw_encoding else _encode(body, encoding)
    req = urllib.request.Request(live.http_url + "/v1/traces", data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            status, answer = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, answer = exc.code, exc.read()
    assert status in ANSWERS, (status, answer[:200])
    # bad data is refused while decoding, never by the store after it was accepted
    assert b"ClickHouse refused" not in answer and b"cannot be encoded" not in answer


@LIVE
@given(body=mutated(SAMPLE) | st.binary(max_size=500), gzipped=st.booleans())
def test_live_grpc_receiver_always_answers_a_known_status(live, body, gzipped):
    compression = grpc.Compression.Gzip if gzipped else grpc.Compression.NoCompression
    with grpc.insecure_channel(live.grpc_endpoint, compression=compression) as ch:
        try:
            ch.unary_unary(EXPORT)(body, timeout=15)
        except grpc.RpcError as err:
            assert err.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED,
                                  grpc.StatusCode.UNAVAILABLE), (err.code(), err.details())
            assert "ClickHouse refused" not in (err.details() or "")
