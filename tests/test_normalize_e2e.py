"""genai_normalize in a running service: foreign spans in over OTLP, canonical columns out of ClickHouse."""

from __future__ import annotations

import json
import urllib.request

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanKind, set_span_in_context
from support import sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc

T0 = 1_764_000_000_000_000_000
COLUMNS = (
    "SpanName, Operation, Provider, RequestModel, ResponseModel, InputTokens, OutputTokens, CacheReadTokens, "
    "CacheWriteTokens, ReasoningTokens, PromptName, PromptVersion, ToolName, ConversationId, InputMessages, "
    "OutputMessages, SystemInstructions, CostUsd, CostSource, RetrievalDocumentIds, FinishReasons, "
    "Temperature, AgentName"
)


@pytest.fixture
def normalizing():
    """A service whose pipeline is [genai_normalize, batch]."""
    database = unique_database()
    svc = start_service(
        service_config(database, processor_configs={"genai_normalize": {}, "batch": {"timeout": "20ms"}}),
        database,
    )
    yield svc
    svc.stop()


def openinference_trace(tracer):
    """An agent answering with OpenInference attributes only, as openinference-instrumentation writes them."""
    agent = tracer.start_span(
        "Agent.run",
        start_time=T0,
        attributes={
            "openinference.span.kind": "AGENT",
            "agent.name": "support",
            "session.id": "conv-42",
            "input.value": "Where is order 42?",
            "llm.token_count.prompt": 2300,
            "llm.token_count.completion": 70,
        },
    )
    ctx = set_span_in_context(agent)
    llm = tracer.start_span(
        "ChatCompletion",
        context=ctx,
        kind=SpanKind.CLIENT,
        start_time=T0 + 10**7,
        attributes={
            "openinference.span.kind": "LLM",
            "llm.provider": "azure",
            "llm.system": "openai",
            "llm.model_name": "gpt-4o-2024-08-06",
            "llm.invocation_parameters": json.dumps({"temperature": 0.25}),
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "Be helpful.",
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": "Where is order 42?",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "lookup_order",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"id": 42}',
            "llm.finish_reason": "tool_calls",
            "llm.token_count.prompt": 2300,
            "llm.token_count.completion": 70,
            "llm.token_count.prompt_details.cache_read": 2048,
            "llm.token_count.prompt_details.cache_write": 12,
            "llm.token_count.completion_details.reasoning": 16,
            "llm.cost.total": 0.0031,
            "llm.prompt_template.version": "v12",
            "prompt.id": "ticket_reply",
            "session.id": "conv-42",
        },
    )
    llm.end(end_time=T0 + 5 * 10**8)
    tool = tracer.start_span(
        "lookup_order",
        context=ctx,
        start_time=T0 + 6 * 10**8,
        attributes={
            "openinference.span.kind": "TOOL",
            "tool.name": "lookup_order",
            "input.value": '{"id": 42}',
            "output.value": '{"status": "shipped"}',
        },
    )
    tool.end(end_time=T0 + 7 * 10**8)
    retriever = tracer.start_span(
        "retrieve",
        context=ctx,
        start_time=T0 + 8 * 10**8,
        attributes={
            "openinference.span.kind": "RETRIEVER",
            "input.value": "shipping policy",
            "retrieval.documents.0.document.id": "kb-7",
            "retrieval.documents.0.document.score": 0.8,
            "retrieval.documents.1.document.id": "kb-9",
            "retrieval.documents.1.document.score": 0.5,
        },
    )
    retriever.end(end_time=T0 + 9 * 10**8)
    agent.end(end_time=T0 + 10**9)


def _export(exporter, spans):
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()


def rows_by_name(svc, trace_id: str, expected: int) -> dict[str, dict]:
    rows = svc.wait_rows(
        f"SELECT {COLUMNS} FROM genai_spans WHERE TraceId = {{t:String}}",
        expected,
        parameters={"t": trace_id},
    )
    names = [c.strip() for c in COLUMNS.split(",")]
    return {r[0]: dict(zip(names, r)) for r in rows}


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_openinference_spans_land_as_canonical_genai_rows(normalizing, transport):
    spans = sdk_spans(openinference_trace)
    trace_id = format(spans[0].context.trace_id, "032x")
    if transport == "http":
        _export(HttpExporter(endpoint=normalizing.http_url + "/v1/traces", timeout=10), spans)
    else:
        _export(GrpcExporter(endpoint=normalizing.grpc_endpoint, insecure=True, timeout=10), spans)
    rows = rows_by_name(normalizing, trace_id, 4)
    assert set(rows) == {"Agent.run", "ChatCompletion", "lookup_order", "retrieve"}

    chat = rows["ChatCompletion"]
    assert (chat["Operation"], chat["Provider"]) == ("chat", "azure.ai.openai")
    assert chat["RequestModel"] == chat["ResponseModel"] == "gpt-4o-2024-08-06"
    assert (chat["InputTokens"], chat["OutputTokens"]) == (2300, 70)
    assert (chat["CacheReadTokens"], chat["CacheWriteTokens"], chat["ReasoningTokens"]) == (2048, 12, 16)
    assert (chat["PromptName"], chat["PromptVersion"]) == ("ticket_reply", "v12")
    assert chat["ConversationId"] == "conv-42"
    assert chat["Temperature"] == 0.25
    assert (chat["CostUsd"], chat["CostSource"]) == (0.0031, "reported")
    assert chat["FinishReasons"] == ["tool_calls"]
    assert json.loads(chat["InputMessages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Where is order 42?"}]}
    ]
    assert json.loads(chat["SystemInstructions"]) == [{"type": "text", "content": "Be helpful."}]
    assert json.loads(chat["OutputMessages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "call_1", "name": "lookup_order", "arguments": {"id": 42}}],
        }
    ]

    tool = rows["lookup_order"]
    assert (tool["Operation"], tool["ToolName"]) == ("execute_tool", "lookup_order")
    retrieve = rows["retrieve"]
    assert (retrieve["Operation"], retrieve["RetrievalDocumentIds"]) == ("retrieval", ["kb-7", "kb-9"])

    agent = rows["Agent.run"]
    assert (agent["Operation"], agent["AgentName"], agent["ConversationId"]) == (
        "invoke_agent",
        "support",
        "conv-42",
    )
    assert (agent["InputTokens"], agent["OutputTokens"]) == (0, 0)  # the agent's sums are not model usage

    stored = normalizing.rows(
        "SELECT SpanAttributes FROM otel_traces WHERE TraceId = {t:String} AND SpanName = 'ChatCompletion'",
        {"t": trace_id},
    )[0][0]
    assert stored["llm.model_name"] == "gpt-4o-2024-08-06"  # originals kept
    assert json.loads(stored[sc.SPANHOUSE_NORMALIZED_FROM]) == ["openinference"]


def test_structured_otlp_values_are_normalized(normalizing):
    """OTLP/JSON with kvlist and array values instead of JSON strings."""

    def kv(key, value):
        return {"key": key, "value": value}

    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "ChatCompletion",
        "kind": 3,
        "startTimeUnixNano": str(T0),
        "endTimeUnixNano": str(T0 + 10**9),
        "attributes": [
            kv("openinference.span.kind", {"stringValue": "LLM"}),
            kv("llm.model_name", {"stringValue": "claude-sonnet-4"}),
            kv("llm.provider", {"stringValue": "anthropic"}),
            kv(
                "llm.invocation_parameters",
                {"kvlistValue": {"values": [kv("temperature", {"doubleValue": 0.5})]}},
            ),
            kv(
                "llm.input_messages",
                {
                    "arrayValue": {
                        "values": [
                            {
                                "kvlistValue": {
                                    "values": [
                                        kv("message.role", {"stringValue": "user"}),
                                        kv("message.content", {"stringValue": "hello"}),
                                    ]
                                }
                            }
                        ]
                    }
                },
            ),
            kv("llm.token_count.prompt", {"intValue": "11"}),
            kv("llm.token_count.completion", {"intValue": "3"}),
        ],
    }
    body = json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": [kv("service.name", {"stringValue": "svc"})]},
                    "scopeSpans": [{"spans": [span]}],
                }
            ]
        }
    ).encode()
    req = urllib.request.Request(
        normalizing.http_url + "/v1/traces",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    row = rows_by_name(normalizing, span["traceId"], 1)["ChatCompletion"]
    assert (row["Operation"], row["Provider"], row["RequestModel"]) == (
        "chat",
        "anthropic",
        "claude-sonnet-4",
    )
    assert (row["InputTokens"], row["OutputTokens"], row["Temperature"]) == (11, 3, 0.5)
    assert json.loads(row["InputMessages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "hello"}]}
    ]
