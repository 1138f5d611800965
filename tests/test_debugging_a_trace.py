"""What someone debugging an agent at 2 a.m. needs from the reading commands, on the shapes that hid it.

Spans are sent with the OpenTelemetry SDK over OTLP/HTTP through genai_normalize and genai_cost, in the
shapes the instrumentations stored in an exploratory run: OpenInference's span for a stream cut off
mid-answer (output, status OK, no finish reason, no usage), an answer cut by max tokens (`length`), a loop
of tool calls with one failure, a call refused with HTTP 429, OpenLIT's system prompt sent twice.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import Status, StatusCode, set_span_in_context
from support import sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc
from spanhouse.cli import main

OP = sc.GenAiOperationNameValues
TOOL_CALLS, FAILING_TOOL = 60, 37
SYSTEM = "Find orders 📦"


def _agent(tracer, name: str):
    return tracer.start_span(f"invoke_agent {name}", attributes={
        sc.GEN_AI_OPERATION_NAME: OP.INVOKE_AGENT.value, sc.GEN_AI_AGENT_NAME: name})


def _chat(tracer, parent, name: str, attrs: dict, error: str = "", ok: bool = False):
    span = tracer.start_span(name, context=set_span_in_context(parent), attributes=attrs)
    if error:
        span.set_status(Status(StatusCode.ERROR, error))
    elif ok:
        span.set_status(Status(StatusCode.OK))
    span.end()
    return span


def _openai_call(**extra) -> dict:
    return {sc.GEN_AI_OPERATION_NAME: OP.CHAT.value, sc.GEN_AI_PROVIDER_NAME: "openai",
            sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini", **extra}


def build(tracer, ids: dict) -> None:
    # OpenInference's ChatCompletion span of a stream the server closed after two words
    root = _agent(tracer, "order-bot")
    _chat(tracer, root, "ChatCompletion", {
        "openinference.span.kind": "LLM", "llm.system": "openai", "llm.model_name": "gpt-4o-mini",
        "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "Où est ma commande ?",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "Votre commande"}, ok=True)
    root.end()
    ids["cut"] = root
    # an answer cut by max_tokens: usage and a finish reason, `length`
    root = _agent(tracer, "writer")
    _chat(tracer, root, "chat gpt-4o-mini", _openai_call(**{
        sc.GEN_AI_USAGE_INPUT_TOKENS: 40, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 256,
        sc.GEN_AI_RESPONSE_FINISH_REASONS: ["length"]}))
    root.end()
    ids["length"] = root
    # a loop of tool calls, one of which raises
    root = _agent(tracer, "looper")
    for i in range(TOOL_CALLS):
        tool = tracer.start_span("execute_tool lookup_order", context=set_span_in_context(root), attributes={
            sc.GEN_AI_OPERATION_NAME: OP.EXECUTE_TOOL.value, sc.GEN_AI_TOOL_NAME: "lookup_order"})
        if i == FAILING_TOOL:
            tool.record_exception(ConnectionError("orders-db: connection refused"))
            tool.set_status(Status(StatusCode.ERROR, "orders-db: connection refused"))
            ids["failed_tool"] = tool
        tool.end()
    root.end()
    ids["loop"] = root
    # a call the provider refused (HTTP 429): status error, no usage
    root = _agent(tracer, "retrier")
    _chat(tracer, root, "chat gpt-4o-mini", _openai_call(**{sc.ERROR_TYPE: "429"}), error="HTTP 429")
    _chat(tracer, root, "chat gpt-4o-mini", _openai_call(**{
        sc.GEN_AI_USAGE_INPUT_TOKENS: 40, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 7,
        sc.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"]}))
    root.end()
    ids["429"] = root
    # OpenLIT: the system prompt as system instructions and again as the first input message
    root = _agent(tracer, "openlit-bot")
    text = [{"type": "text", "content": SYSTEM}]
    _chat(tracer, root, "chat gpt-4o-mini", _openai_call(**{
        sc.GEN_AI_USAGE_INPUT_TOKENS: 42, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 7,
        sc.GEN_AI_RESPONSE_FINISH_REASONS: '["stop"]',
        sc.GEN_AI_SYSTEM_INSTRUCTIONS: json.dumps(text),
        sc.GEN_AI_INPUT_MESSAGES: json.dumps([{"role": "system", "parts": text},
                                              {"role": "user", "parts": [{"type": "text", "content": "where?"}]}]),
        sc.GEN_AI_OUTPUT_MESSAGES: json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "here"}]}]),
    }))
    root.end()
    ids["openlit"] = root
    # openai_v2's span of a whole stream sent without usage: its answer and finish reason went to log records
    root = _agent(tracer, "streamer")
    _chat(tracer, root, "chat gpt-4o-mini", _openai_call(**{sc.GEN_AI_REQUEST_STREAM: True}))
    root.end()
    ids["stream_logs"] = root


@pytest.fixture(scope="module")
def store():
    db = unique_database("debug")
    procs = {"genai_normalize": {}, "genai_cost": {}, "batch": {"timeout": "20ms"}}
    svc = start_service(service_config(db, processor_configs=procs), db)
    try:
        spans_by_name: dict = {}
        spans = sdk_spans(lambda tracer: build(tracer, spans_by_name),
                          resource={"service.name": "support-agent", "deployment.environment.name": "staging"})
        exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces")
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
        assert len(svc.wait_rows("SELECT 1 FROM genai_spans", len(spans))) == len(spans)
        ids = {k: format(s.context.trace_id if k != "failed_tool" else s.context.span_id,
                         "032x" if k != "failed_tool" else "016x") for k, s in spans_by_name.items()}
        yield svc, ids
    finally:
        svc.stop()


def cli(svc, *args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--endpoint", f"http://127.0.0.1:{svc.sql_port}",
                                       "--database", svc.database])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_stream_cut_off_is_flagged_incomplete_not_failed(store):
    svc, ids = store
    text = cli(svc, "trace", ids["cut"])
    head = text.splitlines()[:3]
    assert "status ok" in head[1]  # the client saw no error: the status is left as sent
    assert "1 model call incomplete" in head[2]
    (call,) = [line for line in text.splitlines() if "ChatCompletion" in line]
    assert "finish" not in call
    assert "incomplete no finish reason and no token usage" in text
    doc = json.loads(cli(svc, "trace", ids["cut"], "--format", "json"))
    assert doc["status"] == "ok" and doc["incomplete_model_calls"] == 1
    (chat,) = [s for s in doc["span_list"] if s["model_call"]]
    assert (chat["incomplete"], chat["finish_reasons"], chat["status"]) == (True, [], "Ok")
    (row,) = [r for r in json.loads(cli(svc, "top-traces", "--since", "1h", "-f", "json"))
              if r["trace_id"] == ids["cut"]]
    assert (row["status"], row["incomplete_model_calls"]) == ("ok", 1)


def test_a_call_whose_answer_went_to_log_records_is_not_flagged(store):
    """Without its answer on the span, a call's missing finish reason says nothing: openai_v2 records it in
    log records (a whole stream without usage looks like this), which top-traces cannot read."""
    svc, ids = store
    doc = json.loads(cli(svc, "trace", ids["stream_logs"], "--format", "json"))
    (chat,) = [s for s in doc["span_list"] if s["model_call"]]
    assert (chat["incomplete"], doc["incomplete_model_calls"]) == (False, 0)
    (row,) = [r for r in json.loads(cli(svc, "top-traces", "--since", "1h", "-f", "json"))
              if r["trace_id"] == ids["stream_logs"]]
    assert row["incomplete_model_calls"] == 0


def test_finish_reasons_are_shown(store):
    svc, ids = store
    text = cli(svc, "trace", ids["length"])
    (call,) = [line for line in text.splitlines() if "chat gpt-4o-mini" in line]
    assert "finish length" in call and "incomplete" not in text
    doc = json.loads(cli(svc, "trace", ids["length"], "--format", "json"))
    (chat,) = [s for s in doc["span_list"] if s["model_call"]]
    assert (chat["finish_reasons"], chat["incomplete"], chat["output_tokens"]) == (["length"], False, 256)
    assert "finish stop" in cli(svc, "trace", ids["openlit"])  # sent as a JSON array in a string


def test_the_header_names_the_failed_span_of_a_long_loop(store):
    svc, ids = store
    lines = cli(svc, "trace", ids["loop"]).splitlines()
    assert "status degraded" in lines[1] and "1 span failed" in lines[2]
    assert "execute_tool lookup_order" in lines[3] and ids["failed_tool"] in lines[3]
    assert "orders-db: connection refused" in lines[3]
    doc = json.loads(cli(svc, "trace", ids["loop"], "--format", "json"))
    assert (doc["spans"], doc["errors"]) == (TOOL_CALLS + 1, 1)
    (failed,) = doc["failed_spans"]
    assert failed["span_id"] == ids["failed_tool"] and "connection refused" in failed["error"]


def test_top_traces_lists_failing_traces(store):
    svc, ids = store
    rows = json.loads(cli(svc, "top-traces", "--since", "1h", "--by", "errors", "-f", "json"))
    assert [(r["trace_id"], r["errors"]) for r in rows] == [(ids["429"], 1), (ids["loop"], 1)]
    table = cli(svc, "top-traces", "--since", "1h", "--by", "errors")
    assert "failed spans" in table and ids["loop"] in table and ids["cut"] not in table
    everything = json.loads(cli(svc, "top-traces", "--since", "1h", "-f", "json"))
    assert {r["trace_id"]: r["errors"] for r in everything} == {
        ids["cut"]: 0, ids["length"]: 0, ids["loop"]: 1, ids["429"]: 1, ids["openlit"]: 0, ids["stream_logs"]: 0}


def test_sql_tables_keep_trace_ids_whole_when_piped(store):
    svc, ids = store
    text = cli(svc, "sql", "SELECT TraceId, SpanId, SpanName, StatusCode, ErrorType, StatusMessage, DurationMs, "
                           "InputMessages FROM genai_spans ORDER BY Timestamp")
    for key in ("cut", "length", "loop", "429", "openlit"):
        assert ids[key] in text, key
    assert ids["failed_tool"] in text


def test_sql_select_star_piped_shows_the_columns_that_fit_and_says_how_many_do_not(store):
    """`SELECT *` over a wide table is not squeezed into columns of no width: the columns that can be read
    are shown, and one line says how many are not and how to see them."""
    svc, ids = store
    names = [r[0] for r in svc.rows("DESCRIBE TABLE genai_spans")]
    text = cli(svc, "sql", "SELECT * FROM genai_spans ORDER BY Timestamp")
    header = next(line for line in text.splitlines() if line.startswith("┃"))
    shown = [cell.strip() for cell in header.split("┃")[1:-1]]
    assert 1 < len(shown) < len(names)
    for cell, name in zip(shown, names):
        assert len(cell) >= min(len(name), 4) and name.startswith(cell.rstrip("…")), (cell, name)
    assert (f"{len(names) - len(shown)} of {len(names)} columns not shown (from {names[len(shown)]} on): "
            "use --format json or --format csv, or select fewer columns") in text
    assert ids["cut"] in text
    assert "not shown" not in cli(svc, "sql", "SELECT TraceId, SpanName FROM genai_spans")


def test_a_failed_call_without_usage_is_failed_not_missing_data(store):
    svc, ids = store
    unpriced = json.loads(cli(svc, "costs", "--since", "1h", "--unpriced", "-f", "json"))
    assert sorted((r["source"], r["spans"]) for r in unpriced) == [("failed", 1), ("no_usage", 2)]
    summary = json.loads(cli(svc, "costs", "--since", "1h", "-f", "json"))["summary"]
    assert (summary["unpriced_calls"], summary["failed_unpriced_calls"], summary["model_call_errors"]) == (3, 1, 1)
    text = " ".join(cli(svc, "costs", "--since", "1h").split())
    assert "2 unpriced calls; 1 failed calls without usage, no charge known" in text
    assert "failed calls 1" in text  # errors of model calls only, and labelled so
    # `spanhouse trace` tells them apart the same way
    header = " ".join(cli(svc, "trace", ids["429"]).split())
    assert "+ 1 failed call without usage, no charge known" in header
    assert "without a cost" not in header
    text = cli(svc, "trace", ids["429"])
    assert "cost failed, no charge known" in " ".join(text.split()) and "no_usage" not in text
    assert "+ 1 call without a cost" in " ".join(cli(svc, "trace", ids["cut"]).split())
    doc = json.loads(cli(svc, "trace", ids["429"], "--format", "json"))
    assert (doc["unpriced_calls"], doc["failed_unpriced_calls"]) == (1, 1)


def test_a_system_prompt_sent_twice_is_shown_once(store):
    svc, ids = store
    text = cli(svc, "trace", ids["openlit"])
    assert text.count(SYSTEM) == 1 and "user where?" in " ".join(text.split())
