"""Spans and log records older than the store's retention are answered as rejected (`partial_success`),
not acknowledged and then deleted by ClickHouse's TTL; the rest of the request is stored.

A real service (OTLP over HTTP and gRPC on 127.0.0.1, the GenAI processors, a `batch` processor, the
clickhouse exporter with `ttl` and a retention rule, and an `otlphttp` exporter teeing to a second real
service) gets requests built with the OpenTelemetry SDK's encoders."""

from __future__ import annotations

import logging
import time
import urllib.request

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from support import sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc
from spanhouse.component import ComponentID

DAY = 86400 * 10**9
LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
SECRET = "user-value-4711"  # in every span and record: neither the answer nor the log may quote it


@pytest.fixture(scope="module")
def peer():
    """What the tee forwards to: a spanhouse that keeps everything (no ttl)."""
    db = unique_database("refusal_peer")
    svc = start_service(service_config(db, extensions={}), db)
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def tee(peer, tmp_path_factory):
    db = unique_database("refusal")
    processors = ["genai_normalize", "genai_cost", "genai_redact", "batch"]
    cfg = service_config(
        db, extensions={},
        processor_configs={"genai_normalize": {}, "genai_cost": {}, "genai_redact": {}, "batch": {"timeout": "20ms"}},
        exporter={"ttl": "720h", "retention": [{"environment": "staging", "ttl": "72h"}],
                  "sending_queue": {"storage": "file", "directory": str(tmp_path_factory.mktemp("queue"))}},
        exporters={"otlphttp/peer": {"endpoint": peer.http_url}},
        pipelines={"traces": {"receivers": ["otlp"], "processors": processors,
                              "exporters": ["clickhouse", "otlphttp/peer"]},
                   "logs": {"receivers": ["otlp"], "processors": ["genai_redact"], "exporters": ["clickhouse"]}})
    svc = start_service(cfg, db)
    yield svc
    svc.stop()


def _spans(now: int) -> bytes:
    """Five model calls: the span named for its age, its environment on the resource (the staging one
    only under the older name, which genai_normalize renames: the rule must see the normalized value)."""
    cases = {"production": {"epoch": None, "prod-40d": 40, "prod-now": 0},
             "staging": {"stg-5d": 5},
             "staging-new-name": {"stg-1d": 1}}
    spans = []
    for env, ages in cases.items():
        resource = ({sc.SERVICE_NAME: SECRET, sc.DEPLOYMENT_ENVIRONMENT: "staging"} if env == "staging" else
                    {sc.SERVICE_NAME: SECRET, sc.DEPLOYMENT_ENVIRONMENT_NAME: env.removesuffix("-new-name")})

        def build(tracer, ages=ages):
            for name, age in ages.items():
                start = 0 if age is None else now - age * DAY
                span = tracer.start_span(name, start_time=start, attributes={
                    sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "gpt-4o", sc.USER_ID: SECRET})
                span.end(end_time=start + 10**9)

        spans += sdk_spans(build, resource)
    return encode_spans(spans).SerializeToString()


def test_spans_past_their_retention_are_rejected_and_neither_stored_nor_forwarded(tee, peer, caplog):
    caplog.set_level(logging.INFO)
    request = urllib.request.Request(tee.http_url + "/v1/traces", _spans(time.time_ns()),
                                     {"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200
        partial = trace_service_pb2.ExportTraceServiceResponse.FromString(answer.read()).partial_success
    assert partial.rejected_spans == 3
    assert partial.error_message == (
        "3 span(s) started before the store's retention window (ttl 720h: 2; retention[0], ttl 72h: 1) and would be "
        "deleted on arrival; check the sender's clock, or ask the operator to raise the clickhouse exporter's ttl "
        "(or retention rule) to keep backfilled data")
    names = f"SELECT SpanName FROM otel_traces WHERE ServiceName = '{SECRET}' ORDER BY SpanName"
    assert [r[0] for r in tee.wait_rows(names, 2)] == ["prod-now", "stg-1d"]
    assert [r[0] for r in tee.wait_rows("SELECT SpanName FROM genai_spans ORDER BY SpanName", 2)] == [
        "prod-now", "stg-1d"]
    # the tee forwards what it stores, not what it told the client it rejected
    assert [r[0] for r in peer.wait_rows(names, 2)] == ["prod-now", "stg-1d"]
    helper = tee.service.host.exporters[(ComponentID("clickhouse"), "traces")]
    assert helper.stats["rejected"] == 3
    assert "3 span(s) started before the store's retention" in caplog.text
    assert SECRET not in caplog.text


def test_log_records_past_the_retention_are_rejected_over_grpc(tee):
    now = time.time_ns()
    request = logs_service_pb2.ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.add(key=sc.SERVICE_NAME, value=common_pb2.AnyValue(string_value=SECRET))
    records = resource_logs.scope_logs.add().log_records
    for name, time_ns, observed_ns in (("old", now - 40 * DAY, 0), ("observed-old", 0, now - 40 * DAY),
                                       ("fresh", now, now)):
        record = records.add(time_unix_nano=time_ns, observed_time_unix_nano=observed_ns, event_name=name)
        record.body.string_value = SECRET
    with grpc.insecure_channel(tee.grpc_endpoint) as channel:
        export = channel.unary_unary(LOGS_EXPORT, request_serializer=None,
                                     response_deserializer=logs_service_pb2.ExportLogsServiceResponse.FromString)
        answer = export(request.SerializeToString(), timeout=30)
    assert answer.partial_success.rejected_log_records == 2
    assert answer.partial_success.error_message.startswith(
        "2 log record(s) timestamped before the store's retention window (ttl 720h)")
    assert SECRET not in answer.partial_success.error_message
    assert tee.wait_rows("SELECT EventName FROM otel_logs", 1) == [("fresh",)]


def test_a_request_of_only_old_spans_is_answered_at_once_as_all_rejected(tee):
    """Nothing is left to store: the answer does not wait for the batch processor or the queue."""
    def build(tracer):
        span = tracer.start_span("ancient", start_time=time.time_ns() - 400 * DAY)
        span.end()

    body = encode_spans(sdk_spans(build)).SerializeToString()
    request = urllib.request.Request(tee.http_url + "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        partial = trace_service_pb2.ExportTraceServiceResponse.FromString(answer.read()).partial_success
    assert partial.rejected_spans == 1 and "ttl 720h" in partial.error_message


def test_a_pipeline_without_a_retention_takes_every_span(peer):
    """Only an exporter that would delete a span refuses it: a store with no ttl keeps the epoch."""
    def build(tracer):
        span = tracer.start_span("epoch-at-peer", start_time=0)
        span.end(end_time=1)

    body = encode_spans(sdk_spans(build)).SerializeToString()
    request = urllib.request.Request(peer.http_url + "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert not trace_service_pb2.ExportTraceServiceResponse.FromString(answer.read()).HasField("partial_success")
    assert peer.wait_rows("SELECT SpanName FROM otel_traces WHERE SpanName = 'epoch-at-peer'", 1) == [
        ("epoch-at-peer",)]
