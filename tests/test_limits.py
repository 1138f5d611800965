"""Each receiver limit and each kind of bad input: a clear answer, nothing accepted is lost, the server
keeps serving; and backpressure (a full sending queue) answers retryable errors clients retry."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from support import free_port, service_config, start_service, unique_database

from spanhouse import semconv as sc
from spanhouse.receivers.otlp import HttpSettings

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LIMITS = {"max_spans_per_request": 5, "max_attributes_per_span": 3, "max_attribute_value_length": 8,
          "max_nesting": 3}


def post(url: str, body: bytes, ctype: str = "application/json", encoding: str | None = None):
    headers = {"Content-Type": ctype, **({"Content-Encoding": encoding} if encoding else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST", headers=headers),
                                    timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def span(trace: int, i: int = 1, attributes: list | None = None, **extra) -> dict:
    return {"traceId": f"{trace:032x}", "spanId": f"{i:016x}", "name": f"s{i}", "startTimeUnixNano": "1",
            "endTimeUnixNano": "2", "attributes": attributes or [], **extra}


def request(*spans: dict) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]}).encode()


def kv(key: str, value: dict) -> dict:
    return {"key": key, "value": value}


def _both_signals() -> dict:
    pipeline = {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["clickhouse"]}
    return {"traces": pipeline, "logs": dict(pipeline)}


@pytest.fixture(scope="module")
def limited():
    db = unique_database("limits")
    receiver = {"protocols": {"grpc": {"endpoint": "127.0.0.1:0", "max_recv_msg_size_mib": 1},
                              "http": {"endpoint": "127.0.0.1:0", "max_request_body_size": 65536}},
                "limits": LIMITS}
    svc = start_service(service_config(db, receiver=receiver, pipelines=_both_signals()), db)
    yield svc
    svc.stop()


def traces_url(svc) -> str:
    return svc.http_url + "/v1/traces"


def test_the_default_body_limit_is_20_mib():
    assert HttpSettings().max_request_body_size == 20 * 1024 * 1024


def test_too_many_spans_in_one_request_is_413_and_resource_exhausted(limited):
    status, _, body = post(traces_url(limited), request(*(span(0x100, i) for i in range(1, 7))))
    assert status == 413 and json.loads(body)["message"] == (
        "request holds spans over the limit of 5 (limits::max_spans_per_request); send smaller batches")
    msg = trace_service_pb2.ExportTraceServiceRequest()
    ss = msg.resource_spans.add().scope_spans.add()
    for i in range(6):
        s = ss.spans.add(name="x", trace_id=bytes(15) + b"\x01", span_id=bytes(7) + bytes([i + 1]))
        s.start_time_unix_nano = 1
    with grpc.insecure_channel(limited.grpc_endpoint) as ch:
        with pytest.raises(grpc.RpcError) as err:
            ch.unary_unary(EXPORT)(msg.SerializeToString(), timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert limited.rows("SELECT count() FROM otel_traces WHERE TraceId = {t:String}",
                        {"t": f"{0x100:032x}"}) == [(0,)]


def test_extra_attributes_are_dropped_and_long_values_truncated_and_marked(limited):
    attrs = [kv("a", {"stringValue": "short"}), kv("b", {"stringValue": "a much longer value"}),
             kv("c", {"arrayValue": {"values": [{"stringValue": "nested long string"}, {"intValue": "7"}]}}),
             kv("d", {"stringValue": "dropped"}), kv("e", {"intValue": "5"})]
    status, _, body = post(traces_url(limited), request(span(0x101, attributes=attrs)))
    assert status == 200
    partial = json.loads(body)["partialSuccess"]  # accepted with a warning (rejectedSpans stays 0)
    assert "rejectedSpans" not in partial
    assert "2 attribute value(s) truncated to 8" in partial["errorMessage"]
    assert "2 attribute(s) dropped over 3" in partial["errorMessage"]
    [(stored,)] = limited.rows("SELECT SpanAttributes FROM otel_traces WHERE TraceId = {t:String}",
                               {"t": f"{0x101:032x}"})
    assert stored["a"] == "short" and stored["b"] == "a much l" and json.loads(stored["c"]) == ["nested l", 7]
    assert "d" not in stored and "e" not in stored
    assert json.loads(stored[sc.SPANHOUSE_ATTRIBUTE_TRUNCATED_KEYS]) == ["b", "c"]


def test_values_nested_deeper_than_the_limit_are_400(limited):
    deep: dict = {"stringValue": "x"}
    for _ in range(5):
        deep = {"arrayValue": {"values": [deep]}}
    status, _, body = post(traces_url(limited), request(span(0x102, attributes=[kv("deep", deep)])))
    assert status == 400 and "nests deeper than 3 levels" in json.loads(body)["message"]


def test_gzip_bomb_over_grpc_is_refused_without_storing(limited):
    msg = trace_service_pb2.ExportTraceServiceRequest()
    s = msg.resource_spans.add().scope_spans.add().spans.add(name="bomb", trace_id=bytes(15) + b"\x02",
                                                             span_id=bytes(7) + b"\x01")
    s.attributes.add(key="pad").value.string_value = "a" * (3 << 20)
    with grpc.insecure_channel(limited.grpc_endpoint, compression=grpc.Compression.Gzip) as ch:
        with pytest.raises(grpc.RpcError) as err:
            ch.unary_unary(EXPORT)(msg.SerializeToString(), timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_gzip_bomb_over_http_stops_inflating_at_the_limit(limited):
    bomb = gzip.compress(b"\x00" * (200 << 20))  # 200 MiB of zeros in about 200 KB: over the body limit too
    small = gzip.compress(request(span(0x103)) + b" " * (1 << 22))  # 4 MiB inflated, 4 KB on the wire
    for body in (bomb[: 60000], small):
        status, _, resp = post(traces_url(limited), body, encoding="gzip")
        assert status in (400, 413), status
    status, _, resp = post(traces_url(limited), small, encoding="gzip")
    assert status == 413 and "decompressed request body is over the limit" in json.loads(resp)["message"]


def test_invalid_utf8_rejects_its_span_not_a_crash(limited):
    msg = trace_service_pb2.ExportTraceServiceRequest()
    msg.resource_spans.add().scope_spans.add().spans.add(name="XYZ", trace_id=bytes(15) + b"\x03",
                                                         span_id=bytes(7) + b"\x01")
    raw = msg.SerializeToString().replace(b"XYZ", b"X\xffZ")
    status, _, body = post(traces_url(limited), raw, "application/x-protobuf")
    partial = trace_service_pb2.ExportTraceServiceResponse.FromString(body).partial_success
    assert status == 200 and partial.rejected_spans == 1 and "UTF-8" in partial.error_message
    with grpc.insecure_channel(limited.grpc_endpoint) as ch:
        answer = ch.unary_unary(EXPORT)(raw, timeout=10)
    partial = trace_service_pb2.ExportTraceServiceResponse.FromString(answer).partial_success
    assert partial.rejected_spans == 1 and "spans[0].name is not valid UTF-8" in partial.error_message
    valid = request(span(0x104))
    for body in (valid.replace(b'"s1"', b'"s\xff"'), valid.replace(b'"s1"', b'"\\ud800"')):
        status, _, resp = post(traces_url(limited), body)
        assert status == 400 and "not valid JSON" in json.loads(resp)["message"]
    status, _, _ = post(traces_url(limited), request(span(0x105)))
    assert status == 200


def test_timestamps_clickhouse_cannot_store_are_rejected_per_span(limited):
    """Past 2106 the tables' DateTime partitions and TTLs wrap: a span of 2150 would vanish at once and
    one of 2200 be filed in 2063, so both are refused, with the ones past DateTime64's range."""
    bad = span(0x106, 2, startTimeUnixNano=str(1 << 63))
    negative = span(0x106, 3, endTimeUnixNano="-5")
    year_2150 = span(0x106, 4, startTimeUnixNano=str(5_649_000_000 * 10**9), endTimeUnixNano=str(5_649_000_001 * 10**9))
    year_2200 = span(0x106, 5, startTimeUnixNano=str(7_258_118_400 * 10**9), endTimeUnixNano=str(7_258_118_401 * 10**9))
    status, _, body = post(traces_url(limited), request(span(0x106, 1), bad, negative, year_2150, year_2200))
    partial = json.loads(body)["partialSuccess"]
    assert status == 200 and partial["rejectedSpans"] == "4"
    assert "outside the years 1970..2099" in partial["errorMessage"]
    assert limited.rows("SELECT SpanId FROM otel_traces WHERE TraceId = {t:String}",
                        {"t": f"{0x106:032x}"}) == [(f"{1:016x}",)]


# --- backpressure --------------------------------------------------------------------------------


@pytest.fixture
def full_queue():
    """A service whose ClickHouse server is unreachable, with a memory queue of two batches."""
    db = unique_database("bp")
    exporter = {"endpoint": f"http://127.0.0.1:{free_port()}", "database": db, "timeout": "1s",
                "sending_queue": {"enabled": True, "queue_size": 2, "num_consumers": 1},
                "retry_on_failure": {"initial_interval": "1s", "max_elapsed_time": "0"}}
    svc = start_service(service_config(db, exporter=exporter, extensions={}, processor_configs={}), db)
    yield svc
    svc.service.shutdown(timeout=1.0)  # the memory queue cannot drain into an unreachable server


def test_a_full_queue_answers_429_with_retry_after_and_grpc_resource_exhausted_with_retry_info(full_queue):
    statuses = [post(traces_url(full_queue), request(span(0x200 + i)))[:2] for i in range(3)]
    assert [s for s, _ in statuses[:2]] == [200, 200]  # queued although ClickHouse is unreachable
    status, headers = statuses[2]
    assert status == 429 and int(headers["Retry-After"]) >= 1
    with grpc.insecure_channel(full_queue.grpc_endpoint) as ch:
        msg = trace_service_pb2.ExportTraceServiceRequest()
        s = msg.resource_spans.add().scope_spans.add().spans.add(name="x", trace_id=bytes(15) + b"\x09",
                                                                 span_id=bytes(7) + b"\x01")
        s.start_time_unix_nano = 1
        with pytest.raises(grpc.RpcError) as err:
            ch.unary_unary(EXPORT)(msg.SerializeToString(), timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    trailer = dict(err.value.trailing_metadata())["grpc-status-details-bin"]
    details = status_pb2.Status.FromString(trailer).details
    info = error_details_pb2.RetryInfo()
    assert details and details[0].Unpack(info) and info.retry_delay.seconds >= 1


def test_the_memory_limiter_answers_503_and_unavailable_with_retry_delays():
    db = unique_database("mem")
    # any real process is over a 10 MiB limit, so every request is refused
    procs = {"memory_limiter": {"limit_mib": 10, "spike_limit_mib": 1, "check_interval": "100ms"}}
    svc = start_service(service_config(db, processor_configs=procs, extensions={}), db)
    try:
        status, headers, body = post(traces_url(svc), request(span(0x300)))
        assert status == 503 and int(headers["Retry-After"]) >= 1
        assert "memory limit" in json.loads(body)["message"]
        msg = trace_service_pb2.ExportTraceServiceRequest()
        s = msg.resource_spans.add().scope_spans.add().spans.add(name="x", trace_id=bytes(15) + b"\x0a",
                                                                 span_id=bytes(7) + b"\x01")
        s.start_time_unix_nano = 1
        with grpc.insecure_channel(svc.grpc_endpoint) as ch:
            with pytest.raises(grpc.RpcError) as err:
                ch.unary_unary(EXPORT)(msg.SerializeToString(), timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        details = status_pb2.Status.FromString(dict(err.value.trailing_metadata())["grpc-status-details-bin"])
        assert details.details[0].Is(error_details_pb2.RetryInfo.DESCRIPTOR)
    finally:
        svc.stop()


LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
EMPTY_LOG_RECORD_ENTRY = b"\x0a\x04\x12\x02\x12\x00"  # resource_logs { scope_logs { log_records {} } }: 6 bytes


def _logs_in_one_scope(n: int) -> bytes:
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

    msg = logs_service_pb2.ExportLogsServiceRequest()
    records = msg.resource_logs.add().scope_logs.add().log_records
    for _ in range(n):
        records.add()
    return msg.SerializeToString()


def test_requests_of_many_tiny_records_are_refused_by_default_before_they_are_decoded():
    """An empty log record is 6 bytes, so a body far under the size limit holds hundreds of thousands,
    each costing decode time and memory: by default a request may hold 50,000 spans or log records (and as
    many resource and scope entries); SDKs send 512, the Collector's batch processor 8192."""
    db = unique_database("records")
    svc = start_service(service_config(db, extensions={}, pipelines=_both_signals()), db)
    try:
        logs_url, protobuf = svc.http_url + "/v1/logs", "application/x-protobuf"
        status, _, body = post(logs_url, EMPTY_LOG_RECORD_ENTRY * 200_000, protobuf)
        assert status == 413 and status_pb2.Status.FromString(body).message == (
            "request holds resource entries over the limit of 50000 (limits::max_spans_per_request); send smaller "
            "batches")
        # counted on the wire before parsing (which alone takes ~50 times the body in memory): the refusal
        # comes before the parser would reach bytes it cannot read
        status, _, body = post(logs_url, EMPTY_LOG_RECORD_ENTRY * 50_001 + b"\xff\xff", protobuf)
        assert status == 413, status_pb2.Status.FromString(body).message
        status, _, body = post(logs_url, _logs_in_one_scope(50_001), protobuf)
        assert status == 413 and "request holds log records over the limit of 50000" in \
            status_pb2.Status.FromString(body).message
        spans = {"resourceSpans": [{"scopeSpans": [{"spans": [{}] * 50_001}]}]}
        status, _, body = post(traces_url(svc), json.dumps(spans).encode())
        assert status == 413 and "request holds spans over the limit of 50000" in json.loads(body)["message"]
        with grpc.insecure_channel(svc.grpc_endpoint) as ch:
            with pytest.raises(grpc.RpcError) as err:
                ch.unary_unary(LOGS_EXPORT)(EMPTY_LOG_RECORD_ENTRY * 60_000, timeout=30)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "limits::max_spans_per_request" in err.value.details()
        # the server keeps serving, and what it accepted is stored
        assert post(traces_url(svc), request(span(0x400)))[0] == 200
        svc.wait_rows("SELECT SpanId FROM otel_traces", 1)
        assert svc.rows("SELECT count() FROM otel_logs") == [(0,)]
    finally:
        svc.stop()


def test_the_record_limit_counts_log_records_and_scope_entries_too(limited):
    logs_url, protobuf = limited.http_url + "/v1/logs", "application/x-protobuf"
    status, _, body = post(logs_url, _logs_in_one_scope(6), protobuf)
    assert status == 413 and status_pb2.Status.FromString(body).message == (
        "request holds log records over the limit of 5 (limits::max_spans_per_request); send smaller batches")
    scopes = {"resourceLogs": [{"scopeLogs": [{}] * 6}]}
    status, _, body = post(logs_url, json.dumps(scopes).encode())
    assert status == 413 and json.loads(body)["message"].startswith("request holds scope entries over the limit of 5")
