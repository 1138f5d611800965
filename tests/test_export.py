"""`spanhouse export`: what one spanhouse stored (spans and log records from the real SDK exporters over
127.0.0.1), exported as OTLP/JSON lines and sent to a fresh spanhouse's OTLP/HTTP receiver, is stored
there row for row as it was; registry-typed attributes come back typed; pages stay under a small
`max_result_mib`; time range, service and trace filters select what they say."""

from __future__ import annotations

import time
import urllib.request

import orjson
import pytest
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, set_span_in_context
from support import chdb_endpoint, sdk_spans, service_config, start_service, unique_database
from test_file_exporter import read_json_lines, records_of, spans_of

from spanhouse import semconv as sc
from spanhouse.cli import main

NOW = time.time_ns()
RECENT, OLD = NOW - 10 * 60 * 10**9, NOW - 3 * 3600 * 10**9
RESOURCE = {sc.SERVICE_NAME: "export-app", sc.DEPLOYMENT_ENVIRONMENT_NAME: "prod"}


def start(max_result_mib: int = 256):
    db = unique_database("export")
    pipeline = {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["clickhouse"]}
    exts = {"sql_query": {"endpoint": "127.0.0.1:0", "max_result_mib": max_result_mib}}
    return start_service(service_config(db, extensions=exts, pipelines={"traces": pipeline,
                                                                       "logs": dict(pipeline)}), db)


def agent_trace(at: int, resource: dict, blob: str = ""):
    def build(tracer):
        root = tracer.start_span("invoke_agent planner", kind=SpanKind.SERVER, start_time=at)
        ctx = set_span_in_context(root)
        chat = tracer.start_span(
            "chat gpt-4o", context=ctx, kind=SpanKind.CLIENT, start_time=at + 1000,
            links=[Link(root.get_span_context(), {"link.n": 2})],
            attributes={sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
                        sc.GEN_AI_USAGE_INPUT_TOKENS: 1234, sc.GEN_AI_REQUEST_TEMPERATURE: 0.25,
                        sc.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"], "app.flag": True, "app.blob": blob})
        chat.add_event(sc.EVENT_GEN_AI_EVALUATION_RESULT, {sc.GEN_AI_EVALUATION_NAME: "relevance",
                                                           sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.75}, timestamp=at + 2000)
        chat.set_status(Status(StatusCode.ERROR, "upstream timeout"))
        chat.end(end_time=at + 5000)
        root.end(end_time=at + 9000)

    return sdk_spans(build, resource)


def send(svc, spans) -> None:
    exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces", timeout=10)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()


def send_logs(svc, span) -> None:
    from opentelemetry.trace import NonRecordingSpan, set_span_in_context

    provider = LoggerProvider(resource=Resource.create(RESOURCE))
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=svc.http_url + "/v1/logs")))
    logger = provider.get_logger("tests.export", "0.4")
    ctx = set_span_in_context(NonRecordingSpan(span.context))
    logger.emit(timestamp=RECENT + 3000, event_name=sc.EVENT_GEN_AI_EVALUATION_RESULT, context=ctx,
                body={"explanation": "fine"}, attributes={sc.GEN_AI_EVALUATION_NAME: "groundedness",
                                                          sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.5, "app.n": 3})
    logger.emit(timestamp=OLD, body="an old line", severity_text="WARN")
    provider.shutdown()


@pytest.fixture(scope="module")
def source():
    """A store with a recent and an old trace of export-app, five large traces, another service's trace
    and two log records; its sql_query endpoint answers at most 1 MiB per query."""
    svc = start(max_result_mib=1)
    recent = agent_trace(RECENT, RESOURCE)
    send(svc, recent)
    send(svc, agent_trace(OLD, RESOURCE))
    for i in range(5):  # 1.5 MB of spans: the export pages must stay under the endpoint's 1 MiB
        send(svc, agent_trace(RECENT + i, RESOURCE, blob="x" * 300_000))
    send(svc, agent_trace(RECENT, {sc.SERVICE_NAME: "other-svc"}))
    send_logs(svc, recent[1])
    assert len(svc.wait_rows("SELECT 1 FROM otel_traces", 16)) == 16
    assert len(svc.wait_rows("SELECT 1 FROM otel_logs", 2)) == 2
    yield svc
    svc.stop()


def export(svc, tmp_path, *args: str, via_endpoint: bool = True) -> tuple[list, list]:
    path = str(tmp_path / "export.jsonl")
    endpoint = f"http://127.0.0.1:{svc.sql_port}" if via_endpoint else chdb_endpoint()
    result = CliRunner().invoke(main, ["export", "-o", path, "--endpoint", endpoint, "--database", svc.database,
                                       *args])
    assert result.exit_code == 0, result.output
    return read_json_lines(path)


def names(traces) -> list[tuple[str, str]]:
    def service(rs):
        return next(a.value.string_value for a in rs.resource.attributes if a.key == sc.SERVICE_NAME)

    return sorted((service(rs), s.name) for r in traces for rs in r.resource_spans for ss in rs.scope_spans
                  for s in ss.spans)


def test_an_export_sent_to_a_fresh_spanhouse_is_stored_as_it_was(source, tmp_path):
    path = str(tmp_path / "all.jsonl")
    result = CliRunner().invoke(main, ["export", "-o", path, "--endpoint", f"http://127.0.0.1:{source.sql_port}",
                                       "--database", source.database])
    assert result.exit_code == 0, result.output
    assert "exported 16 span(s) and 2 log record(s)" in result.output
    lines = open(path, "rb").read().splitlines()
    assert len(lines) > 2  # paged: the 1 MiB cap of the endpoint was never hit as a whole
    target = start()
    try:
        for line in lines:
            signal = "traces" if line.startswith(b'{"resourceSpans"') else "logs"
            req = urllib.request.Request(f"{target.http_url}/v1/{signal}", data=line,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.status == 200
        spans_sql = "SELECT * FROM otel_traces ORDER BY TraceId, SpanId"
        logs_sql = "SELECT * FROM otel_logs ORDER BY Timestamp"
        assert target.wait_rows(spans_sql, 16) == source.rows(spans_sql)
        assert target.wait_rows(logs_sql, 2) == source.rows(logs_sql)
    finally:
        target.stop()


def test_registry_typed_attributes_come_back_typed_and_others_stay_strings(source, tmp_path):
    traces, logs = export(source, tmp_path, "--since", "1h", "--service", "export-app", via_endpoint=False)
    chat = [s for _, _, s in spans_of(traces).values() if s.name == "chat gpt-4o" and
            not any(a.key == "app.blob" and a.value.string_value for a in s.attributes)]
    attrs = {a.key: a.value for a in chat[0].attributes}
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS].int_value == 1234
    assert attrs[sc.GEN_AI_REQUEST_TEMPERATURE].double_value == 0.25
    assert [v.string_value for v in attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS].array_value.values] == ["stop"]
    assert attrs["app.flag"].string_value == "true"
    assert chat[0].kind == SpanKind.CLIENT.value + 1 and chat[0].status.code == 2 and len(chat[0].links) == 1
    event = {a.key: a.value for a in chat[0].events[0].attributes}
    assert event[sc.GEN_AI_EVALUATION_SCORE_VALUE].double_value == 0.75
    ((_, _, record),) = records_of(logs)  # the old record is outside --since
    fields = {a.key: a.value for a in record.attributes}
    assert fields[sc.GEN_AI_EVALUATION_SCORE_VALUE].double_value == 0.5 and fields["app.n"].string_value == "3"
    assert orjson.loads(record.body.string_value) == {"explanation": "fine"}


def test_filters_select_by_start_time_service_and_trace(source, tmp_path):
    every, _ = export(source, tmp_path, "--no-logs")
    assert len(names(every)) == 16
    old, old_logs = export(source, tmp_path, "--until", "1h")
    assert names(old) == [("export-app", "chat gpt-4o"), ("export-app", "invoke_agent planner")]
    assert [r.body.string_value for _, _, r in records_of(old_logs)] == ["an old line"]
    other, _ = export(source, tmp_path, "--service", "other-svc", via_endpoint=False)
    assert names(other) == [("other-svc", "chat gpt-4o"), ("other-svc", "invoke_agent planner")]
    trace_id = next(iter(spans_of(old).values()))[2].trace_id.hex()
    one, _ = export(source, tmp_path, "--trace-id", trace_id.upper())
    assert {s.trace_id.hex() for _, _, s in spans_of(one).values()} == {trace_id}


def test_a_bad_time_is_a_clear_error(source, tmp_path):
    result = CliRunner().invoke(main, ["export", "--since", "last tuesday", "--endpoint", chdb_endpoint()])
    assert result.exit_code == 2 and "neither a duration before now" in result.output
    assert "Traceback" not in result.output
