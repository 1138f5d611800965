"""Per-record validation in the OTLP receiver: what could not be forwarded is never stored, one bad record
costs only itself (partial_success), and OTLP/JSON numbers are read as strictly as proto3 JSON."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from support import service_config, start_service, unique_database

from spanhouse.errors import InvalidRequest
from spanhouse.otlp.decode import decode_traces_json, decode_traces_protobuf
from spanhouse.otlp.decode_logs import decode_logs_json, decode_logs_protobuf
from spanhouse.otlp.encode import encode_traces_json, to_request

TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
NOW = time.time_ns()


@pytest.fixture(scope="module")
def svc():
    database = unique_database("validate")
    pipeline = {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["clickhouse"]}
    running = start_service(service_config(database, pipelines={"traces": pipeline, "logs": dict(pipeline)}),
                            database)
    yield running
    running.stop()


def post(url: str, body: bytes, ctype: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def json_span(trace_hex: str, n: int, **over) -> dict:
    return {"traceId": trace_hex, "spanId": f"{n + 1:016x}", "name": f"s{n}", "kind": 1,
            "startTimeUnixNano": str(NOW), "endTimeUnixNano": str(NOW + 1000), **over}


def json_doc(spans: list[dict], scope: dict | None = None) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"scope": scope or {"name": "v"}, "spans": spans}]}]}).encode()


def stored(svc, trace_hex: str, expected: int) -> list[str]:
    rows = svc.wait_rows("SELECT SpanName FROM otel_traces WHERE TraceId = {t:String} ORDER BY SpanName", expected,
                         parameters={"t": trace_hex})
    return [r[0] for r in rows]


# --- ids and flags that the forwarding exporters could not encode ----------------------------------


def test_json_link_ids_of_the_wrong_length_and_flags_over_32_bits_reject_only_their_span(svc):
    trace_hex = "1a" * 16
    spans = [json_span(trace_hex, 0),
             json_span(trace_hex, 1, flags=2**40),
             json_span(trace_hex, 2, links=[{"traceId": "abc", "spanId": "0102030405060708"}]),
             json_span(trace_hex, 3, links=[{"traceId": "aabbcc", "spanId": "ddeeff"}]),
             json_span(trace_hex, 4, links=[{"traceId": "1b" * 16, "spanId": "0102030405060708", "flags": 2**33}]),
             json_span(trace_hex, 5, links=[{"traceId": "1b" * 16, "spanId": "ddeeff"}]),
             json_span(trace_hex, 6, links=[{"traceId": "1b" * 16, "spanId": "0102030405060708", "flags": 1}])]
    status, body = post(svc.http_url + "/v1/traces", json_doc(spans), "application/json")
    assert status == 200, body
    partial = json.loads(body)["partialSuccess"]
    assert partial["rejectedSpans"] == "5"
    message = partial["errorMessage"]
    assert "flags 1099511627776 is out of range for a uint32" in message
    assert "links[0].traceId 'abc' is not empty or 16 bytes" in message
    assert "links[0].traceId 'aabbcc'" in message
    assert stored(svc, trace_hex, 2) == ["s0", "s6"]
    # the answer quotes three reasons: the other two, one by one
    assert "links[0].flags 8589934592 is out of range" in decode_traces_json(json_doc([spans[4]])).error_message
    assert "links[0].spanId 'ddeeff' is not empty or 8 bytes" in decode_traces_json(json_doc([spans[5]])).error_message


def test_protobuf_link_ids_of_the_wrong_length_reject_only_their_span_over_grpc(svc):
    trace = bytes.fromhex("2a" * 16)
    req = trace_service_pb2.ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    for n in range(3):
        sp = spans.add(trace_id=trace, span_id=(n + 1).to_bytes(8, "big"), name=f"s{n}",
                       start_time_unix_nano=NOW, end_time_unix_nano=NOW + 1)
        if n == 1:
            sp.links.add(trace_id=b"\xaa\xbb\xcc", span_id=b"\x01" * 8)
        if n == 2:
            sp.links.add(trace_id=b"\x01" * 16, span_id=b"\x01" * 8)
    with grpc.insecure_channel(svc.grpc_endpoint) as channel:
        export = channel.unary_unary(TRACE_EXPORT, request_serializer=None,
                                     response_deserializer=trace_service_pb2.ExportTraceServiceResponse.FromString)
        resp = export(req.SerializeToString(), timeout=10)
    assert resp.partial_success.rejected_spans == 1
    assert "links[0].traceId 'aabbcc' is not empty or 16 bytes" in resp.partial_success.error_message
    assert stored(svc, trace.hex(), 2) == ["s0", "s2"]


# --- invalid UTF-8 in protobuf strings ---------------------------------------------------------------


def _with_bad_utf8(req, marker: bytes = b"QQQQ") -> bytes:
    raw = req.SerializeToString()
    assert raw.count(marker) == 1
    return raw.replace(marker, b"a\xffb\xfe")


def _trace_request(trace: bytes, bad_span: int | None, n: int = 8):
    req = trace_service_pb2.ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    for i in range(n):
        sp = spans.add(trace_id=trace, span_id=(i + 1).to_bytes(8, "big"), name=f"s{i}",
                       start_time_unix_nano=NOW, end_time_unix_nano=NOW + 1)
        sp.attributes.add(key="ok").value.string_value = "fine"
        if i == bad_span:
            sp.attributes.add(key="bad.utf8").value.string_value = "QQQQ"
    return req


def test_invalid_utf8_rejects_only_its_span_over_http_protobuf_and_grpc(svc):
    trace = bytes.fromhex("3a" * 16)
    status, body = post(svc.http_url + "/v1/traces", _with_bad_utf8(_trace_request(trace, 3)),
                        "application/x-protobuf")
    assert status == 200, body
    partial = trace_service_pb2.ExportTraceServiceResponse.FromString(body).partial_success
    assert partial.rejected_spans == 1
    assert ("span 's3': resource_spans[0].scope_spans[0].spans[3].attributes[1].value.string_value is not valid "
            "UTF-8") in partial.error_message
    assert stored(svc, trace.hex(), 7) == [f"s{i}" for i in range(8) if i != 3]

    trace = bytes.fromhex("3b" * 16)
    with grpc.insecure_channel(svc.grpc_endpoint) as channel:
        export = channel.unary_unary(TRACE_EXPORT, request_serializer=None,
                                     response_deserializer=trace_service_pb2.ExportTraceServiceResponse.FromString)
        resp = export(_with_bad_utf8(_trace_request(trace, 0)), timeout=10)
    assert resp.partial_success.rejected_spans == 1
    assert stored(svc, trace.hex(), 7) == [f"s{i}" for i in range(1, 8)]


def test_invalid_utf8_in_a_resource_or_scope_rejects_its_spans_only():
    req = _trace_request(b"\x4a" * 16, None, n=2)
    other = req.resource_spans.add()
    other.resource.attributes.add(key="service.name").value.string_value = "QQQQ"
    other.scope_spans.add().spans.add(trace_id=b"\x4b" * 16, span_id=b"\x01" * 8, name="r1",
                                      start_time_unix_nano=NOW, end_time_unix_nano=NOW)
    decoded = decode_traces_protobuf(_with_bad_utf8(req))
    assert decoded.batch.name == ["s0", "s1"] and decoded.rejected == 1
    assert "span 'r1': resource_spans[1].resource.attributes[0].value.string_value" in decoded.error_message

    req = _trace_request(b"\x4a" * 16, None, n=2)
    req.resource_spans[0].scope_spans[0].scope.name = "QQQQ"
    decoded = decode_traces_protobuf(_with_bad_utf8(req))
    assert len(decoded.batch) == 0 and decoded.rejected == 2
    assert "resource_spans[0].scope_spans[0].scope.name is not valid UTF-8" in decoded.error_message


def test_invalid_utf8_rejects_only_its_log_record(svc):
    req = logs_service_pb2.ExportLogsServiceRequest()
    records = req.resource_logs.add().scope_logs.add().log_records
    for i in range(3):
        lr = records.add(event_name=f"utf8-check-{i}", time_unix_nano=NOW)
        lr.body.string_value = "QQQQ" if i == 1 else f"body {i}"
    status, body = post(svc.http_url + "/v1/logs", _with_bad_utf8(req), "application/x-protobuf")
    assert status == 200, body
    partial = logs_service_pb2.ExportLogsServiceResponse.FromString(body).partial_success
    assert partial.rejected_log_records == 1
    assert "log record 'utf8-check-1': resource_logs[0].scope_logs[0].log_records[1].body.string_value" in \
        partial.error_message
    rows = svc.wait_rows("SELECT EventName FROM otel_logs WHERE EventName LIKE 'utf8-check-%' ORDER BY EventName", 2)
    assert [r[0] for r in rows] == ["utf8-check-0", "utf8-check-2"]


def test_protobuf_that_is_broken_otherwise_is_still_refused_whole():
    raw = _trace_request(b"\x5a" * 16, None).SerializeToString()
    with pytest.raises(InvalidRequest, match="not a valid ExportTraceServiceRequest"):
        decode_traces_protobuf(raw[:-3])


# --- OTLP/JSON numbers as strict as proto3 JSON ----------------------------------------------------------


@pytest.mark.parametrize("value, message", [
    ({"intValue": "9223372036854775808"}, "out of range for an int64"),
    ({"intValue": 18446744073709551615}, "out of range for an int64"),
    ({"intValue": "1_000"}, "expected an integer"),
    ({"intValue": "\uff11\uff12"}, "expected an integer"),
    ({"intValue": " 7 "}, "expected an integer"),
    ({"intValue": "+5"}, "expected an integer"),
    ({"intValue": "007"}, "expected an integer"),
    ({"doubleValue": "1e400"}, "within the range of a double"),
    ({"stringValue": "s", "intValue": "3"}, "a value sets one field, got intValue, stringValue"),
])
def test_json_values_outside_proto3_json_are_refused_naming_the_field(value, message):
    for v in (value, {"arrayValue": {"values": [value]}}):
        body = json_doc([json_span("6a" * 16, 0, attributes=[{"key": "x", "value": v}])])
        with pytest.raises(InvalidRequest, match="attributes\\[0\\]\\.value") as err:
            decode_traces_json(body)
        assert message in str(err.value)


def test_json_numbers_that_proto3_json_accepts_still_decode():
    values = {"max": {"intValue": "9223372036854775807"}, "min": {"intValue": "-9223372036854775808"},
              "exp": {"intValue": "1e3"}, "num": {"intValue": 12}, "d": {"doubleValue": "1e308"}}
    body = json_doc([json_span("6b" * 16, 0, attributes=[{"key": k, "value": v} for k, v in values.items()])])
    attrs = decode_traces_json(body).batch.attributes[0]
    assert attrs == {"max": 2**63 - 1, "min": -(2**63), "exp": 1000, "num": 12, "d": 1e308}


def test_a_lenient_integer_over_http_is_400_naming_the_field(svc):
    trace_hex = "6c" * 16
    body = json_doc([json_span(trace_hex, 0, attributes=[{"key": "n", "value": {"intValue": "+5"}}])])
    status, answer = post(svc.http_url + "/v1/traces", body, "application/json")
    assert status == 400
    assert "spans[0].attributes[0].value: expected an integer or a decimal string" in json.loads(answer)["message"]


# --- the scope's dropped attribute count ------------------------------------------------------------------


def test_the_scopes_dropped_attributes_count_is_kept_for_forwarding():
    req = _trace_request(b"\x7a" * 16, None, n=1)
    req.resource_spans[0].scope_spans[0].scope.dropped_attributes_count = 2
    batch = decode_traces_protobuf(req.SerializeToString()).batch
    assert to_request(batch).resource_spans[0].scope_spans[0].scope.dropped_attributes_count == 2
    body = json_doc([json_span("7b" * 16, 0)], scope={"name": "v", "droppedAttributesCount": 2})
    batch = decode_traces_json(body).batch
    assert encode_traces_json(batch)["resourceSpans"][0]["scopeSpans"][0]["scope"]["droppedAttributesCount"] == 2

    logs = logs_service_pb2.ExportLogsServiceRequest()
    sl = logs.resource_logs.add().scope_logs.add()
    sl.scope.dropped_attributes_count = 3
    sl.log_records.add(time_unix_nano=NOW)
    assert decode_logs_protobuf(logs.SerializeToString()).batch.scopes[0].dropped_attributes_count == 3
    body = json.dumps({"resourceLogs": [{"scopeLogs": [{"scope": {"droppedAttributesCount": 3},
                                                        "logRecords": [{"timeUnixNano": str(NOW)}]}]}]})
    assert decode_logs_json(body.encode()).batch.scopes[0].dropped_attributes_count == 3


# --- log records older than the retention ------------------------------------------------------------------


def test_log_records_older_than_the_retention_are_stored_with_a_warning_like_spans(caplog):
    from support import chdb_endpoint

    from spanhouse.config import Duration
    from spanhouse.exporters.clickhouse import ClickHouseConfig, ClickHouseExporter

    caplog.set_level(logging.WARNING)
    exporter = ClickHouseExporter(ClickHouseConfig(endpoint=chdb_endpoint(), database=unique_database("logs_ttl"),
                                                   ttl=Duration(3600)), signal="logs")
    exporter.start(None)
    try:
        old = NOW - 2 * 86400 * 10**9
        records = [{"timeUnixNano": str(old)}, {"observedTimeUnixNano": str(old)}, {"timeUnixNano": str(NOW)}]
        body = json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}).encode()
        exporter.push(decode_logs_json(body).batch)
        assert "2 log record(s) timestamped before the store's retention (ttl 1h)" in caplog.text
        caplog.clear()
        exporter.push(decode_logs_json(json.dumps({"resourceLogs": [{"scopeLogs": [
            {"logRecords": [{"timeUnixNano": str(NOW)}]}]}]}).encode()).batch)
        assert "retention" not in caplog.text
    finally:
        exporter.shutdown()
