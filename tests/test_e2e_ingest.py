"""Spans from the real OpenTelemetry SDK exporters, over real sockets, read back from ClickHouse."""

from __future__ import annotations

import gzip
import json
import urllib.request

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from support import sdk_spans

from spanhouse import semconv as sc

T0 = 1_764_000_000_000_000_000  # fixed start, ns
MESSAGES = [{"role": "user", "parts": [{"type": "text", "content": "Where is my order?"}]}]
DOCS = [{"id": "kb-1", "score": 0.9}, {"id": 42, "score": 0.5}]


def agent_trace(tracer):
    root = tracer.start_span("invoke_workflow support", kind=SpanKind.SERVER, start_time=T0, attributes={
        sc.GEN_AI_OPERATION_NAME: "invoke_workflow", sc.SPANHOUSE_TENANT_ID: "acme", "ticket.priority": 2})
    from opentelemetry.trace import set_span_in_context
    ctx = set_span_in_context(root)
    chat = tracer.start_span("chat gpt-4o", context=ctx, kind=SpanKind.CLIENT, start_time=T0 + 10_000_000, attributes={
        sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai", sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
        sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06", sc.GEN_AI_PROMPT_NAME: "ticket_reply_prompt",
        sc.GEN_AI_PROMPT_VERSION: "v12", sc.GEN_AI_USAGE_INPUT_TOKENS: 1200, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 300,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 800, sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: 100,
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 50, sc.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"],
        sc.GEN_AI_INPUT_MESSAGES: json.dumps(MESSAGES), sc.GEN_AI_CONVERSATION_ID: "conv-1",
        sc.GEN_AI_REQUEST_TEMPERATURE: 0.25, sc.GEN_AI_REQUEST_MAX_TOKENS: 512, sc.USER_HASH: "u-hash",
        sc.GEN_AI_REQUEST_STREAM: True})
    chat.add_event(sc.EVENT_GEN_AI_EVALUATION_RESULT, {
        sc.GEN_AI_EVALUATION_NAME: "citation_quality", sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.62,
        sc.GEN_AI_EVALUATION_SCORE_LABEL: "fail"}, timestamp=T0 + 400_000_000)
    chat.end(end_time=T0 + 510_000_000)
    ret = tracer.start_span("retrieval kb", context=ctx, kind=SpanKind.CLIENT, start_time=T0 + 600_000_000, attributes={
        sc.GEN_AI_OPERATION_NAME: "retrieval", sc.GEN_AI_RETRIEVAL_DOCUMENTS: json.dumps(DOCS)})
    ret.end(end_time=T0 + 650_000_000)
    tool = tracer.start_span("execute_tool lookup_order", context=ctx, start_time=T0 + 700_000_000,
                             links=[Link(chat.get_span_context(), {"link.reason": "follows"})], attributes={
        sc.GEN_AI_OPERATION_NAME: "execute_tool", sc.GEN_AI_TOOL_NAME: "lookup_order", sc.ERROR_TYPE: "TimeoutError"})
    tool.set_status(Status(StatusCode.ERROR, "orders API timed out"))
    tool.end(end_time=T0 + 2_700_000_000)
    root.end(end_time=T0 + 3_000_000_000)


RESOURCE = {sc.SERVICE_NAME: "support-copilot", sc.SERVICE_VERSION: "2026.11.3",
            sc.DEPLOYMENT_ENVIRONMENT_NAME: "staging", sc.SPANHOUSE_FEATURE: "ticket_reply"}


def _export(exporter, spans):
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_sdk_exporter_spans_land_in_otel_traces_and_genai_tables(running, transport):
    spans = sdk_spans(agent_trace, RESOURCE)
    trace_id = format(spans[0].context.trace_id, "032x")
    ids = {s.name: format(s.context.span_id, "016x") for s in spans}
    if transport == "grpc":
        _export(GrpcExporter(endpoint=running.grpc_endpoint, insecure=True, timeout=10), spans)
    else:
        _export(HttpExporter(endpoint=running.http_url + "/v1/traces", timeout=10), spans)

    rows = running.rows(
        "SELECT SpanName, SpanId, ParentSpanId, toUnixTimestamp64Nano(Timestamp), Duration, SpanKind, StatusCode, "
        "StatusMessage, ServiceName, ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Events.Name, "
        "Events.Attributes, arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp), Links.SpanId, "
        "Links.TraceId, Links.Attributes, TraceState "
        "FROM otel_traces WHERE TraceId = {t:String}", {"t": trace_id})
    by_name = {r[0]: r for r in rows}
    assert set(by_name) == set(ids)
    root = by_name["invoke_workflow support"]
    assert root[2] == "" and root[1] == ids["invoke_workflow support"]
    assert root[3] == T0 and root[4] == 3_000_000_000
    assert root[5] == "Server" and root[6] == "Unset"
    assert root[8] == "support-copilot"
    assert root[9][sc.SERVICE_NAME] == "support-copilot" and root[9][sc.SPANHOUSE_FEATURE] == "ticket_reply"
    assert (root[10], root[11]) == ("tests.support", "0.1")
    assert root[12]["ticket.priority"] == "2"
    chat = by_name["chat gpt-4o"]
    assert chat[2] == ids["invoke_workflow support"] and chat[5] == "Client"
    assert chat[3] == T0 + 10_000_000 and chat[4] == 500_000_000
    assert chat[12][sc.GEN_AI_USAGE_INPUT_TOKENS] == "1200"
    assert chat[12][sc.GEN_AI_REQUEST_STREAM] == "true"
    assert chat[12][sc.GEN_AI_REQUEST_TEMPERATURE] == "0.25"
    assert json.loads(chat[12][sc.GEN_AI_RESPONSE_FINISH_REASONS]) == ["stop"]
    assert chat[13] == [sc.EVENT_GEN_AI_EVALUATION_RESULT]
    assert chat[14][0][sc.GEN_AI_EVALUATION_SCORE_VALUE] == "0.62"
    assert chat[15] == [T0 + 400_000_000]
    tool = by_name["execute_tool lookup_order"]
    assert tool[5] == "Internal" and tool[6] == "Error" and tool[7] == "orders API timed out"
    assert tool[16] == [ids["chat gpt-4o"]] and tool[17] == [trace_id]
    assert tool[18] == [{"link.reason": "follows"}]

    genai = running.rows(
        "SELECT SpanName, Operation, Provider, RequestModel, ResponseModel, PromptName, PromptVersion, InputTokens, "
        "OutputTokens, CacheReadTokens, CacheWriteTokens, ReasoningTokens, FinishReasons, InputMessages, "
        "ConversationId, Feature, TenantId, Environment, Release, DurationMs, StatusCode, ErrorType, ToolName, "
        "RetrievalDocumentIds, Temperature, MaxTokens, UserHash, ServiceName, ParentSpanId, CostUsd "
        "FROM genai_spans WHERE TraceId = {t:String}", {"t": trace_id})
    g = {r[0]: r for r in genai}
    assert set(g) == set(ids)  # every span here carries gen_ai.operation.name
    c = g["chat gpt-4o"]
    assert c[1:7] == ("chat", "openai", "gpt-4o", "gpt-4o-2024-08-06", "ticket_reply_prompt", "v12")
    assert c[7:12] == (1200, 300, 800, 100, 50)
    assert c[12] == ["stop"]
    assert json.loads(c[13]) == MESSAGES
    assert c[14:19] == ("conv-1", "ticket_reply", "", "staging", "2026.11.3")
    assert c[19] == pytest.approx(500.0)
    assert c[24] == pytest.approx(0.25) and c[25] == 512 and c[26] == "u-hash"
    assert c[27] == "support-copilot" and c[28] == ids["invoke_workflow support"]
    assert c[29] is None  # no cost yet: never a silent 0
    assert g["invoke_workflow support"][16] == "acme"
    assert g["execute_tool lookup_order"][20:23] == ("Error", "TimeoutError", "lookup_order")
    assert g["retrieval kb"][23] == ["kb-1", "42"]

    evals = running.rows("SELECT SpanId, EvaluationName, ScoreValue, ScoreLabel, PromptName, PromptVersion, "
                         "RequestModel FROM genai_evaluations WHERE TraceId = {t:String}", {"t": trace_id})
    assert evals == [(ids["chat gpt-4o"], "citation_quality", 0.62, "fail", "ticket_reply_prompt", "v12", "gpt-4o")]

    # the lookup holds the span start times (the contrib layout), at second resolution
    lookup = running.rows("SELECT toUnixTimestamp(min(Start)), toUnixTimestamp(max(End)) "
                          "FROM otel_traces_trace_id_ts WHERE TraceId = {t:String}", {"t": trace_id})
    assert lookup == [(T0 // 10**9, (T0 + 700_000_000) // 10**9)]


def _json_request(trace_hex: str) -> dict:
    """A hand-written OTLP/JSON body: uppercase hex ids, int64 as strings and numbers, integer enums."""
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
        "scopeSpans": [{"scope": {"name": "raw.json", "version": "9"}, "spans": [
            {"traceId": trace_hex.upper(), "spanId": "EEE19B7EC3C1B174", "parentSpanId": "", "name": "chat m",
             "kind": 3, "startTimeUnixNano": "1544712660000000000", "endTimeUnixNano": 1544712661000000000,
             "attributes": [
                 {"key": sc.GEN_AI_OPERATION_NAME, "value": {"stringValue": "chat"}},
                 {"key": sc.GEN_AI_REQUEST_MODEL, "value": {"stringValue": "m"}},
                 {"key": sc.GEN_AI_USAGE_INPUT_TOKENS, "value": {"intValue": "42"}},
                 {"key": sc.GEN_AI_USAGE_OUTPUT_TOKENS, "value": {"intValue": 7}},
                 {"key": "flag", "value": {"boolValue": True}},
                 {"key": "ratio", "value": {"doubleValue": 0.5}},
                 {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}]}}},
                 {"key": "meta", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}}},
                 {"key": "blob", "value": {"bytesValue": "aGk="}},
             ],
             "events": [{"timeUnixNano": "1544712660500000000", "name": "note",
                         "attributes": [{"key": "x", "value": {"intValue": "1"}}]}],
             "status": {"code": 2, "message": "boom"},
             "unknownField": "ignored"},
            {"traceId": trace_hex, "spanId": "eee19b7ec3c1b175", "parentSpanId": "eee19b7ec3c1b174",
             "name": "child", "kind": 1, "startTimeUnixNano": "1544712660100000000",
             "endTimeUnixNano": "1544712660200000000"},
        ]}]}]}


def test_raw_otlp_json_with_gzip_is_stored_and_answered_in_json(running):
    trace_hex = "5b8efff798038103d269b633813fc60c"
    body = gzip.compress(json.dumps(_json_request(trace_hex)).encode())
    req = urllib.request.Request(running.http_url + "/v1/traces", data=body, method="POST", headers={
        "Content-Type": "application/json", "Content-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/json")
        assert json.loads(resp.read()) == {}
    rows = running.rows("SELECT SpanName, SpanId, ParentSpanId, SpanKind, StatusCode, StatusMessage, Duration, "
                        "SpanAttributes, Events.Name, Events.Attributes, ServiceName, ScopeVersion "
                        "FROM otel_traces WHERE TraceId = {t:String} ORDER BY SpanName", {"t": trace_hex})
    assert [r[0] for r in rows] == ["chat m", "child"]
    chat, child = rows
    assert chat[1:7] == ("eee19b7ec3c1b174", "", "Client", "Error", "boom", 1_000_000_000)
    attrs = chat[7]
    assert attrs["flag"] == "true" and attrs["ratio"] == "0.5" and attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == "7"
    assert json.loads(attrs["tags"]) == ["a", 1] and json.loads(attrs["meta"]) == {"k": "v"}
    assert attrs["blob"] == "aGk="
    assert chat[8] == ["note"] and chat[9] == [{"x": "1"}]
    assert chat[10] == "json-svc" and chat[11] == "9"
    assert child[2] == "eee19b7ec3c1b174" and child[3] == "Internal"
    genai = running.rows("SELECT InputTokens, OutputTokens, StatusCode FROM genai_spans WHERE TraceId = {t:String}",
                         {"t": trace_hex})
    assert genai == [(42, 7, "Error")]


def test_spans_with_invalid_ids_get_partial_success_and_the_rest_is_stored(running):
    trace_hex = "6b8efff798038103d269b633813fc60c"
    doc = _json_request(trace_hex)
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({"traceId": "00" * 16, "spanId": "eee19b7ec3c1b176", "name": "zero trace"})
    spans.append({"traceId": trace_hex, "spanId": "abcd", "name": "short span id"})
    req = urllib.request.Request(running.http_url + "/v1/traces", data=json.dumps(doc).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = json.loads(resp.read())
    assert body["partialSuccess"]["rejectedSpans"] == "2"
    assert "zero trace" in body["partialSuccess"]["errorMessage"]
    assert "short span id" in body["partialSuccess"]["errorMessage"]
    assert running.rows("SELECT count() FROM otel_traces WHERE TraceId = {t:String}", {"t": trace_hex}) == [(2,)]


def test_environment_and_release_set_on_the_span_fill_the_typed_columns(running):
    """Some SDKs (Langfuse's, mapped by genai_normalize) put them on the span, not the resource."""
    trace_hex = "9b8efff798038103d269b633813fc60c"
    span = {"traceId": trace_hex, "spanId": "eee19b7ec3c1b174", "name": "chat m", "kind": 3,
            "startTimeUnixNano": str(T0), "endTimeUnixNano": str(T0 + 1000),
            "attributes": [{"key": sc.GEN_AI_OPERATION_NAME, "value": {"stringValue": "chat"}},
                           {"key": sc.DEPLOYMENT_ENVIRONMENT_NAME, "value": {"stringValue": "production"}},
                           {"key": sc.SERVICE_VERSION, "value": {"stringValue": "9.9"}}]}
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()
    req = urllib.request.Request(running.http_url + "/v1/traces", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    rows = running.rows("SELECT Environment, Release FROM genai_spans WHERE TraceId = {t:String}", {"t": trace_hex})
    assert rows == [("production", "9.9")]
