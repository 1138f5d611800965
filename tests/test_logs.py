"""The logs signal: OTLP log records from the real SDK exporters land in `otel_logs` (the contrib
exporter's layout), GenAI content sent as log records joins its span whichever arrives first, and
evaluation results sent as log records land in `genai_evaluations`."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import orjson
import pytest
from click.testing import CliRunner
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, set_span_in_context
from support import chdb_endpoint, sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc
from spanhouse.batch import Ack
from spanhouse.cli import trace as trace_cli
from spanhouse.errors import InvalidRequest, PermanentError
from spanhouse.logbatch import LogBatch
from spanhouse.otlp.decode import DecodeLimits
from spanhouse.otlp.decode_logs import decode_logs_json, decode_logs_protobuf
from spanhouse.store import StoreSettings, connect, create_schema, quote_ident, render_schema

RESOURCE = {"service.name": "support-bot", "deployment.environment.name": "staging",
            "service.version": "1.2.3"}
T0 = 1_760_000_000_000_000_000

# The contrib exporter's newest otel_logs columns (name, type), in order.
CONTRIB_LOG_COLUMNS = [
    ("Timestamp", "DateTime64(9)"), ("TraceId", "String"), ("SpanId", "String"), ("TraceFlags", "UInt8"),
    ("SeverityText", "LowCardinality(String)"), ("SeverityNumber", "UInt8"),
    ("ServiceName", "LowCardinality(String)"), ("Body", "String"),
    ("ResourceSchemaUrl", "LowCardinality(String)"),
    ("ResourceAttributes", "Map(LowCardinality(String), String)"),
    ("ScopeSchemaUrl", "LowCardinality(String)"), ("ScopeName", "String"),
    ("ScopeVersion", "LowCardinality(String)"),
    ("ScopeAttributes", "Map(LowCardinality(String), String)"),
    ("LogAttributes", "Map(LowCardinality(String), String)"), ("EventName", "String"),
    ("__otel_materialized_k8s.cluster.name", "LowCardinality(String)"),
    ("__otel_materialized_k8s.container.name", "LowCardinality(String)"),
    ("__otel_materialized_k8s.deployment.name", "LowCardinality(String)"),
    ("__otel_materialized_k8s.namespace.name", "LowCardinality(String)"),
    ("__otel_materialized_k8s.node.name", "LowCardinality(String)"),
    ("__otel_materialized_k8s.pod.name", "LowCardinality(String)"),
    ("__otel_materialized_k8s.pod.uid", "LowCardinality(String)"),
    ("__otel_materialized_deployment.environment.name", "LowCardinality(String)"),
]


@pytest.fixture(scope="module")
def svc():
    """One service with traces and logs pipelines for the whole module; tests use their own trace ids."""
    database = unique_database("logs")
    pipeline = {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["clickhouse"]}
    running = start_service(service_config(database, pipelines={"traces": pipeline, "logs": dict(pipeline)}),
                            database)
    yield running
    running.stop()


def span_context(trace_id: int, span_id: int):
    return set_span_in_context(NonRecordingSpan(SpanContext(trace_id, span_id, True, TraceFlags(1))))


def send_logs(exporter, records: list[dict], resource: dict | None = None) -> None:
    """Emit `records` (keyword arguments of `Logger.emit`) with the real SDK and `exporter`."""
    provider = LoggerProvider(resource=Resource.create(resource or RESOURCE))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("tests.logs", "0.2")
    for r in records:
        logger.emit(**r)
    provider.shutdown()


def http_logs(svc):
    return HttpLogExporter(endpoint=svc.http_url + "/v1/logs", timeout=10)


def send_spans(svc, spans) -> None:
    exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces", timeout=10)
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()


def chat_span(attributes: dict | None = None):
    """One GenAI chat span recorded by the SDK; returns (span, trace id int, span id int)."""
    def build(tracer):
        tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, start_time=T0, attributes={
            sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai",
            sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini", sc.GEN_AI_USAGE_INPUT_TOKENS: 42, **(attributes or {}),
        }).end(end_time=T0 + 300_000_000)

    (span,) = sdk_spans(build, RESOURCE)
    return span, span.context.trace_id, span.context.span_id


def deprecated_events(ctx) -> list[dict]:
    """The per-message events an instrumentation on GenAI semconv <= 1.36 sends for one tool round trip."""
    call = {"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    return [
        {"event_name": sc.EVENT_GEN_AI_SYSTEM_MESSAGE, "body": {"content": "Be brief."}, "context": ctx},
        {"event_name": sc.EVENT_GEN_AI_USER_MESSAGE, "body": {"content": "Weather in Paris?"},
         "context": ctx},
        {"event_name": sc.EVENT_GEN_AI_ASSISTANT_MESSAGE, "body": {"tool_calls": [call]}, "context": ctx},
        {"event_name": sc.EVENT_GEN_AI_TOOL_MESSAGE, "body": {"content": "sunny", "id": "call_1"},
         "context": ctx},
        {"event_name": sc.EVENT_GEN_AI_CHOICE, "context": ctx,
         "body": {"index": 0, "finish_reason": "stop",
                  "message": {"role": "assistant", "content": "It is sunny."}}},
    ]


EXPECTED_INPUT = [
    {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
    {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather",
                                     "arguments": {"city": "Paris"}}]},
    {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "sunny"}]},
]
EXPECTED_OUTPUT = [{"role": "assistant", "parts": [{"type": "text", "content": "It is sunny."}],
                    "finish_reason": "stop"}]
EXPECTED_SYSTEM = [{"type": "text", "content": "Be brief."}]


def full_row(svc, trace_id: int, span_id: int, expect: int = 1) -> tuple:
    rows = svc.wait_rows(
        "SELECT SystemInstructions, InputMessages, OutputMessages, ContentSource, RequestModel, InputTokens "
        "FROM genai_spans_full WHERE TraceId = {t:String} AND SpanId = {s:String}", expect,
        parameters={"t": format(trace_id, "032x"), "s": format(span_id, "016x")})
    assert len(rows) == expect
    return rows[0] if rows else ()


# --- the batch and the decoder -------------------------------------------------------------


def _batch(n: int, resource_name: str = "a") -> LogBatch:
    from spanhouse.batch import Resource as R
    from spanhouse.batch import Scope as S
    b = LogBatch()
    b.resources.append(R({"service.name": resource_name}))
    b.scopes.append(S("lib"))
    for i in range(n):
        b.append(resource=0, scope=0, time_unix_nano=i, body={"n": i}, attributes={"i": i},
                 event_name=f"e{i}")
    return b


def test_log_batch_concat_split_copy_and_acks():
    a, b = _batch(2, "a"), _batch(3, "b")
    ack_a, ack_b = Ack(), Ack()
    a.acks.append(ack_a)
    b.acks.append(ack_b)
    both = LogBatch.concat([a, b])
    assert len(both) == 5 and both.event_name == ["e0", "e1", "e0", "e1", "e2"]
    assert [both.resource_attributes(i)["service.name"] for i in range(5)] == ["a", "a", "b", "b", "b"]
    copy = both.copy()
    copy.attributes[0]["i"] = 99
    copy.body[1]["n"] = 99
    assert both.attributes[0]["i"] == 0 and both.body[1]["n"] == 1
    first, second, third = both.split(2)
    assert [len(p) for p in (first, second, third)] == [2, 2, 1]
    assert third.resource_attributes(0)["service.name"] == "b"
    first.succeed()
    second.succeed()
    assert not ack_a.done and not ack_b.done
    third.fail(PermanentError("bad"))
    assert ack_a.done and ack_b.done
    with pytest.raises(PermanentError):
        ack_a.wait(0)


def _request_json(trace_hex: str) -> dict:
    service = [{"key": "service.name", "value": {"stringValue": "svc"}}]
    return {"resourceLogs": [{"resource": {"attributes": service},
                              "schemaUrl": "https://example.com/r",
                              "scopeLogs": [{"scope": {"name": "lib", "version": "1.0"}, "logRecords": [
        {"timeUnixNano": "1760000000000000000", "observedTimeUnixNano": 1760000000000000001,
         "severityNumber": "SEVERITY_NUMBER_WARN", "severityText": "WARN", "eventName": "my.event",
         "traceId": trace_hex.upper(), "spanId": "EEE19B7EC3C1B174", "flags": 1,
         "body": {"kvlistValue": {"values": [{"key": "content", "value": {"stringValue": "hi"}}]}},
         "attributes": [{"key": "n", "value": {"intValue": "7"}}]},
        {"observedTimeUnixNano": "5", "severityNumber": 9, "body": {"stringValue": "no span"},
         "traceId": "", "spanId": "0000000000000000"},
        {"traceId": "abcd", "spanId": "eee19b7ec3c1b174", "body": {"stringValue": "bad trace id"}},
    ]}]}]}


def test_json_and_protobuf_decode_to_the_same_records_and_bad_ids_are_counted():
    trace_hex = "5b8efff798038103d269b633813fc60c"
    doc = _request_json(trace_hex)
    from_json = decode_logs_json(json.dumps(doc).encode())
    # Protobuf's own JSON mapping reads ids as base64 and enums by name only: set those by hand.
    records = doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    ids = [(r.pop("traceId"), r.pop("spanId")) for r in records]
    records[0]["severityNumber"] = 13
    pb = json_format.Parse(json.dumps(doc), ExportLogsServiceRequest())
    for rec, (t, s) in zip(pb.resource_logs[0].scope_logs[0].log_records, ids):
        rec.trace_id, rec.span_id = bytes.fromhex(t), bytes.fromhex(s)
    from_pb = decode_logs_protobuf(pb.SerializeToString())
    for d in (from_json, from_pb):
        b = d.batch
        assert len(b) == 2 and d.rejected == 1
        assert "1 log record(s) rejected" in d.error_message and "traceId 'abcd'" in d.error_message
        assert b.trace_id == [trace_hex, ""] and b.span_id == ["eee19b7ec3c1b174", ""]
        assert b.severity_number == [13, 9] and b.event_name == ["my.event", ""]
        assert b.body == [{"content": "hi"}, "no span"] and b.attributes[0] == {"n": 7}
        assert b.time_unix_nano == [T0, 0] and b.observed_time_unix_nano == [T0 + 1, 5]
        assert b.resources[0].schema_url == "https://example.com/r" and b.scopes[0].version == "1.0"


def test_a_record_without_times_is_stamped_with_its_arrival():
    # Stored at the epoch instead, it would fall outside any TTL and vanish.
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "no times"}}]}]}]}
    pb = json_format.Parse(json.dumps(doc), ExportLogsServiceRequest()).SerializeToString()
    for decode, data in ((decode_logs_json, json.dumps(doc).encode()), (decode_logs_protobuf, pb)):
        before = time.time_ns()
        b = decode(data).batch
        assert b.time_unix_nano == [0] and before <= b.observed_time_unix_nano[0] <= time.time_ns()


def test_decoder_limits_apply_to_bodies_and_bad_input_is_refused():
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "x" * 50}}]}]}]}
    d = decode_logs_json(json.dumps(doc).encode(), DecodeLimits(max_value_length=10))
    assert d.batch.body == ["x" * 10]
    assert d.batch.attributes[0][sc.SPANHOUSE_ATTRIBUTE_TRUNCATED_KEYS] == ["body"]
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        decode_logs_json(b"{nope")
    with pytest.raises(InvalidRequest, match="ExportLogsServiceRequest"):
        decode_logs_protobuf(b"\xff\xff\xff")
    with pytest.raises(InvalidRequest, match="expected an array"):
        decode_logs_json(b'{"resourceLogs": {"x": 1}}')


def test_records_with_times_clickhouse_cannot_store_are_rejected_and_limits_are_reported():
    records = [{"timeUnixNano": str(2**64 - 1), "body": {"stringValue": "far future"}},
               {"timeUnixNano": "-5", "body": {"stringValue": "before 1970"}},
               {"timeUnixNano": "1", "observedTimeUnixNano": str(2**63), "body": {"stringValue": "observed late"}},
               {"timeUnixNano": str(T0), "body": {"stringValue": "fine"},
                "attributes": [{"key": f"k{i}", "value": {"stringValue": "v" * 30}} for i in range(3)]}]
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}
    limits = DecodeLimits(max_value_length=10, max_attributes=2)
    from_json = decode_logs_json(json.dumps(doc).encode(), limits)
    records[1]["timeUnixNano"] = "0"  # protobuf's fixed64 cannot be negative
    from_pb = decode_logs_protobuf(json_format.Parse(json.dumps(doc), ExportLogsServiceRequest()).SerializeToString(),
                                   limits)
    for d, rejected in ((from_json, 3), (from_pb, 2)):
        assert d.batch.body[-1] == "fine" and d.rejected == rejected
        assert f"timeUnixNano {2**64 - 1} is outside the years 1970..2099" in d.error_message
        assert f"observedTimeUnixNano {2**63} is outside" in d.error_message
        assert "2 attribute value(s) truncated to 10 characters" in d.error_message
        assert "1 attribute(s) dropped over 2 per record" in d.error_message
    assert "timeUnixNano -5 is outside" in from_json.error_message


def test_a_record_with_a_bad_time_is_rejected_and_its_neighbours_are_stored(svc):
    service = [{"key": "service.name", "value": {"stringValue": "bad-time"}}]
    doc = {"resourceLogs": [{"resource": {"attributes": service}, "scopeLogs": [{"logRecords": [
        {"timeUnixNano": str(2**64 - 1), "body": {"stringValue": "far future"}},
        {"timeUnixNano": str(T0), "body": {"stringValue": "perfectly valid"}}]}]}]}
    req = urllib.request.Request(svc.http_url + "/v1/logs", method="POST", data=json.dumps(doc).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = json.loads(resp.read())
    assert body["partialSuccess"]["rejectedLogRecords"] == "1"
    assert "is outside the years 1970..2099" in body["partialSuccess"]["errorMessage"]
    deadline = time.monotonic() + 10
    while not (rows := svc.rows("SELECT Body FROM otel_logs WHERE ServiceName = 'bad-time'")):
        assert time.monotonic() < deadline, "the valid record was not stored"
        time.sleep(0.1)
    assert rows == [("perfectly valid",)]


def test_otel_logs_ddl_is_the_contrib_layout(svc):
    rows = svc.rows("SELECT name, type FROM system.columns WHERE database = {d:String} "
                    "AND table = 'otel_logs' ORDER BY position", {"d": svc.database})
    assert rows == CONTRIB_LOG_COLUMNS
    for version, index in (((26, 9), "TYPE text(tokenizer = 'splitByNonAlpha')"), ((25, 8), "tokenbf_v1")):
        ddl = dict(render_schema(StoreSettings(), version))["050_otel_logs.sql"]
        assert index in ddl and "ORDER BY (toStartOfFiveMinutes(Timestamp), ServiceName, Timestamp)" in ddl


def test_genai_spans_full_follows_columns_added_to_genai_spans():
    store = StoreSettings(endpoint=chdb_endpoint(), database=unique_database("cols"))
    client = connect(store)
    try:
        create_schema(client, store)
        client.command(f"ALTER TABLE {store.table('genai_spans')} ADD COLUMN Extra String DEFAULT 'x'")
        create_schema(client, store)
        names = [r[0] for r in client.query(f"DESCRIBE TABLE {store.table('genai_spans_full')}").result_rows]
        assert "Extra" in names and names[-4:] == ["SystemInstructions", "InputMessages", "OutputMessages",
                                                   "ContentSource"]
    finally:
        client.command(f"DROP DATABASE IF EXISTS {quote_ident(store.database)}")
        client.close()


# --- storing log records ------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_sdk_log_records_land_in_otel_logs_as_the_contrib_exporter_writes_them(svc, transport):
    trace_id, span_id = 0x1B8EFFF798038103D269B633813FC6A0 + (transport == "grpc"), 0x0EE19B7EC3C1B174
    exporter = (http_logs(svc) if transport == "http"
                else GrpcLogExporter(endpoint=svc.grpc_endpoint, insecure=True, timeout=10))
    send_logs(exporter, [
        {"event_name": "app.started", "body": {"content": "hello", "n": [1, 2]}, "timestamp": T0,
         "severity_text": "INFO", "attributes": {"k": "v", "count": 3, "ok": True},
         "context": span_context(trace_id, span_id)},
        {"body": "plain text without a span", "observed_timestamp": T0 + 5},
    ])
    rows = svc.wait_rows(
        "SELECT toUnixTimestamp64Nano(Timestamp), TraceId, SpanId, TraceFlags, SeverityText, ServiceName, "
        "Body, ResourceAttributes, ScopeName, ScopeVersion, LogAttributes, EventName, "
        "`__otel_materialized_deployment.environment.name` "
        "FROM otel_logs WHERE TraceId = {t:String}", 1, parameters={"t": format(trace_id, "032x")})
    (ts, tid, sid, flags, sev, service, body, res, scope, scope_v, attrs, event, env), = rows
    assert (ts, tid, sid, flags, sev, service) == (T0, format(trace_id, "032x"), format(span_id, "016x"), 1,
                                                   "INFO", "support-bot")
    assert orjson.loads(body) == {"content": "hello", "n": [1, 2]}
    assert res["deployment.environment.name"] == "staging" and env == "staging"
    assert (scope, scope_v, event) == ("tests.logs", "0.2", "app.started")
    assert attrs == {"k": "v", "count": "3", "ok": "true"}
    plain = svc.rows("SELECT toUnixTimestamp64Nano(Timestamp), TraceId, SpanId, Body FROM otel_logs "
                     "WHERE Body = 'plain text without a span'")
    assert (T0 + 5, "", "", "plain text without a span") in plain


def test_raw_otlp_json_logs_get_partial_success_and_the_rest_is_stored(svc):
    trace_hex = "7b8efff798038103d269b633813fc60c"
    req = urllib.request.Request(svc.http_url + "/v1/logs", method="POST",
                                 data=json.dumps(_request_json(trace_hex)).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = json.loads(resp.read())
    assert body["partialSuccess"]["rejectedLogRecords"] == "1"
    assert "traceId 'abcd'" in body["partialSuccess"]["errorMessage"]
    rows = svc.rows("SELECT SeverityNumber, SeverityText, EventName, LogAttributes['n'] FROM otel_logs "
                    "WHERE TraceId = {t:String}", {"t": trace_hex})
    assert rows == [(13, "WARN", "my.event", "7")]
    bad = urllib.request.Request(svc.http_url + "/v1/logs", data=b"{not json", method="POST",
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(bad, timeout=10)
    assert err.value.code == 400 and "not valid JSON" in json.loads(err.value.read())["message"]


def test_logs_to_a_receiver_without_a_logs_pipeline_are_refused_with_a_reason(running):
    req = urllib.request.Request(running.http_url + "/v1/logs", data=b"{}", method="POST",
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 415
    assert "not part of any logs pipeline" in json.loads(err.value.read())["message"]


# --- content joined to spans --------------------------------------------------------------


@pytest.mark.parametrize("logs_first", [True, False])
def test_deprecated_message_events_become_the_spans_messages_in_either_arrival_order(svc, logs_first):
    span, trace_id, span_id = chat_span()
    ctx = span_context(trace_id, span_id)
    if logs_first:
        send_logs(http_logs(svc), deprecated_events(ctx))
        assert svc.rows("SELECT count() FROM genai_spans WHERE TraceId = {t:String}",
                        {"t": format(trace_id, "032x")}) == [(0,)]
        send_spans(svc, [span])
    else:
        send_spans(svc, [span])
        send_logs(http_logs(svc), deprecated_events(ctx))
    system, inputs, outputs, source, model, tokens = full_row(svc, trace_id, span_id)
    assert (source, model, tokens) == ("log", "gpt-4o-mini", 42)
    assert orjson.loads(system) == EXPECTED_SYSTEM
    assert orjson.loads(inputs) == EXPECTED_INPUT
    assert orjson.loads(outputs) == EXPECTED_OUTPUT


def test_operation_details_event_and_event_name_attribute_and_choice_order(svc):
    span, trace_id, span_id = chat_span()
    other, o_trace, o_span = chat_span()
    inputs = [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    outputs = [{"role": "assistant", "parts": [{"type": "text", "content": "hello"}],
                "finish_reason": "stop"}]
    ctx, o_ctx = span_context(trace_id, span_id), span_context(o_trace, o_span)
    send_logs(http_logs(svc), [
        {"event_name": sc.EVENT_GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS, "context": ctx, "attributes": {
            sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_INPUT_MESSAGES: inputs,
            sc.GEN_AI_OUTPUT_MESSAGES: outputs,
            sc.GEN_AI_SYSTEM_INSTRUCTIONS: [{"type": "text", "content": "Be kind."}]}},
        # Older SDKs name the event with an attribute; choices are ordered by index, not arrival.
        {"attributes": {sc.EVENT_NAME: sc.EVENT_GEN_AI_CHOICE}, "context": o_ctx,
         "body": {"index": 1, "finish_reason": "length",
                  "message": {"content": [{"type": "text", "text": "B"}]}}},
        {"attributes": {sc.EVENT_NAME: sc.EVENT_GEN_AI_CHOICE}, "context": o_ctx,
         "body": {"index": 0, "finish_reason": "tool_calls", "message": {"content": None},
                  "tool_calls": [{"id": "c9", "function": {"name": "lookup", "arguments": "not json"}}]}},
        {"attributes": {sc.EVENT_NAME: sc.EVENT_GEN_AI_USER_MESSAGE}, "context": o_ctx,
         "body": "plain question"},
    ])
    send_spans(svc, [span, other])
    system, got_in, got_out, source, *_ = full_row(svc, trace_id, span_id)
    assert source == "log"
    assert orjson.loads(got_in) == inputs and orjson.loads(got_out) == outputs
    assert orjson.loads(system) == [{"type": "text", "content": "Be kind."}]
    system, got_in, got_out, *_ = full_row(svc, o_trace, o_span)
    assert system == ""
    assert orjson.loads(got_in) == [{"role": "user",
                                     "parts": [{"type": "text", "content": "plain question"}]}]
    # the finish reasons in the canonical words, as genai_normalize writes them in span messages
    assert orjson.loads(got_out) == [
        {"role": "assistant", "finish_reason": "tool_call",
         "parts": [{"type": "tool_call", "id": "c9", "name": "lookup", "arguments": "not json"}]},
        {"role": "assistant", "finish_reason": "length", "parts": [{"type": "text", "content": "B"}]},
    ]
    # a span without finish reasons of its own takes those of its log content, in message order
    (reasons,) = svc.wait_rows("SELECT FinishReasons FROM genai_spans_full WHERE TraceId = {t:String} "
                               "AND SpanId = {s:String}", 1,
                               parameters={"t": format(o_trace, "032x"), "s": format(o_span, "016x")})[0]
    assert reasons == ["tool_call", "length"]


def test_span_attributes_win_over_log_content_field_by_field(svc):
    own = [{"role": "user", "parts": [{"type": "text", "content": "from the span"}]}]
    span, trace_id, span_id = chat_span({sc.GEN_AI_INPUT_MESSAGES: orjson.dumps(own).decode()})
    send_logs(http_logs(svc), deprecated_events(span_context(trace_id, span_id)))
    send_spans(svc, [span])
    system, inputs, outputs, source, *_ = full_row(svc, trace_id, span_id)
    assert source == "span"
    assert orjson.loads(inputs) == own
    assert orjson.loads(outputs) == EXPECTED_OUTPUT and orjson.loads(system) == EXPECTED_SYSTEM


def test_evaluation_results_sent_as_log_records_land_in_genai_evaluations(svc):
    span, trace_id, span_id = chat_span()
    send_spans(svc, [span])
    send_logs(http_logs(svc), [
        {"event_name": sc.EVENT_GEN_AI_EVALUATION_RESULT, "context": span_context(trace_id, span_id),
         "attributes": {sc.GEN_AI_EVALUATION_NAME: "relevance", sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.75,
                        sc.GEN_AI_EVALUATION_SCORE_LABEL: "relevant",
                        sc.GEN_AI_EVALUATION_EXPLANATION: "on topic"}},
        {"attributes": {sc.EVENT_NAME: sc.EVENT_GEN_AI_EVALUATION_RESULT,
                        sc.GEN_AI_EVALUATION_NAME: "toxicity", sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.0},
         "context": span_context(trace_id, span_id)},
    ])
    rows = svc.wait_rows("SELECT EvaluationName, ScoreValue, ScoreLabel, Explanation, SpanId, ServiceName, "
                         "Environment, Release FROM genai_evaluations WHERE TraceId = {t:String} "
                         "ORDER BY EvaluationName", 2, parameters={"t": format(trace_id, "032x")})
    sid = format(span_id, "016x")
    assert rows == [("relevance", 0.75, "relevant", "on topic", sid, "support-bot", "staging", "1.2.3"),
                    ("toxicity", 0.0, "", "", sid, "support-bot", "staging", "1.2.3")]


def test_log_evaluations_take_environment_and_release_from_the_record_when_the_resource_has_none(svc):
    span, trace_id, span_id = chat_span()
    send_spans(svc, [span])
    send_logs(http_logs(svc), [
        {"event_name": sc.EVENT_GEN_AI_EVALUATION_RESULT, "context": span_context(trace_id, span_id),
         "attributes": {sc.GEN_AI_EVALUATION_NAME: "groundedness", sc.GEN_AI_EVALUATION_SCORE_VALUE: 1.0,
                        sc.DEPLOYMENT_ENVIRONMENT_NAME: "production", sc.SERVICE_VERSION: "9.9"}},
    ], resource={sc.SERVICE_NAME: "evaluator"})
    rows = svc.wait_rows("SELECT EvaluationName, Environment, Release FROM genai_evaluations "
                         "WHERE TraceId = {t:String} AND ServiceName = 'evaluator'", 1,
                         parameters={"t": format(trace_id, "032x")})
    assert rows == [("groundedness", "production", "9.9")]


def test_trace_command_shows_log_content_and_log_evaluations(svc):
    span, trace_id, span_id = chat_span()
    ctx = span_context(trace_id, span_id)
    send_logs(http_logs(svc), deprecated_events(ctx) + [
        {"event_name": sc.EVENT_GEN_AI_EVALUATION_RESULT, "context": ctx,
         "attributes": {sc.GEN_AI_EVALUATION_NAME: "helpfulness", sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.9,
                        sc.GEN_AI_EVALUATION_EXPLANATION: "quotes the forecast for Paris"}}])
    send_spans(svc, [span])
    full_row(svc, trace_id, span_id)
    args = [format(trace_id, "032x"), "--endpoint", f"http://127.0.0.1:{svc.sql_port}",
            "--database", svc.database]
    result = CliRunner().invoke(trace_cli.command, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("system Be brief.", "user Weather in Paris?", 'assistant → get_weather({"city":"Paris"})',
                 "tool ← sunny", "assistant It is sunny.", "helpfulness=0.9 (quotes the forecast for Paris)"):
        assert text in out, out
    # an explanation can quote the conversation: --no-content hides it and keeps the score
    hidden = CliRunner().invoke(trace_cli.command, args + ["--no-content"], terminal_width=200)
    assert hidden.exit_code == 0
    assert "Weather in Paris?" not in hidden.output and "forecast" not in hidden.output
    assert "helpfulness=0.9" in hidden.output


def test_content_lines_summarize_long_conversations():
    msgs = [{"role": "user", "parts": [{"type": "text", "content": f"question {i} " + "x" * 200}]}
            for i in range(5)]
    lines = trace_cli.content_lines("", orjson.dumps(msgs).decode(), "not json")
    assert lines[0] == ("…", "2 earlier message(s)")
    assert [r for r, _ in lines[1:4]] == ["user"] * 3 and lines[1][1].startswith("question 2")
    assert all(len(t) <= 110 for _, t in lines) and lines[-1] == ("?", "not json")
