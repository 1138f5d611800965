"""Spans shaped exactly as real framework SDKs sent them to `spanhouse serve` (Langfuse 5.2, MLflow 3.17,
openinference-instrumentation-openai-agents, -langchain and -litellm), replayed through the real OTLP/HTTP
exporter into the embedded store: the genai_spans rows an analyst reads."""

from __future__ import annotations

import json

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context
from support import sdk_spans, service_config, start_service, unique_database

from spanhouse.modelcalls import model_call_sql

COLUMNS = ("SpanName", "Operation", "Provider", "RequestModel", "ResponseModel", "ToolName", "OutputMessages",
           "CostSource")


@pytest.fixture(scope="module")
def svc():
    """The default trace pipeline: genai_normalize then genai_cost."""
    database = unique_database()
    running = start_service(
        service_config(database, processor_configs={"genai_normalize": {}, "genai_cost": {},
                                                    "batch": {"timeout": "20ms"}}),
        database,
    )
    yield running
    running.stop()


def send(svc, build, service: str) -> str:
    spans = sdk_spans(build, {"service.name": service})
    exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces", timeout=10)
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    return service


def rows(svc, service: str, expected: int) -> list[dict]:
    found = svc.wait_rows(
        f"SELECT {', '.join(COLUMNS)} FROM genai_spans WHERE ServiceName = {{s:String}} ORDER BY Timestamp",
        expected, parameters={"s": service})
    return [dict(zip(COLUMNS, r)) for r in found]


def _children(tracer, root_name: str, root_attrs: dict, children: list[tuple[str, dict]]) -> None:
    root = tracer.start_span(root_name, attributes=root_attrs)
    ctx = set_span_in_context(root)
    for name, attrs in children:
        tracer.start_span(name, context=ctx, attributes=attrs).end()
    root.end()


def langfuse_tool(tracer):
    _children(tracer, "weather_agent", {"langfuse.observation.type": "agent"}, [
        ("get_weather", {"session.id": "sess-7",
                         "langfuse.observation.input": '{"args": [], "kwargs": {"city": "Paris"}}',
                         "langfuse.observation.type": "tool",
                         "langfuse.observation.output": "sunny in Paris"}),
    ])


def mlflow_tool(tracer):
    _children(tracer, "weather_agent", {"mlflow.traceRequestId": '"tr-1"', "mlflow.spanType": '"AGENT"'}, [
        ("get_weather", {"mlflow.traceRequestId": '"tr-1"', "mlflow.spanType": '"TOOL"',
                         "mlflow.spanFunctionName": '"get_weather"', "mlflow.spanInputs": '{"city": "Paris"}',
                         "mlflow.spanOutputs": '"sunny in Paris"', "mlflow.spanLogLevel": "20"}),
    ])


@pytest.mark.parametrize("service, build", [("sdk-langfuse", langfuse_tool), ("sdk-mlflow", mlflow_tool)])
def test_langfuse_and_mlflow_tool_spans_name_their_tool(svc, service, build):
    """Both SDKs name a tool only in its span's name (the function name, or the name given to the decorator)."""
    tools = [r for r in rows(svc, send(svc, build, service), 2) if r["Operation"] == "execute_tool"]
    assert [(r["SpanName"], r["ToolName"]) for r in tools] == [("get_weather", "get_weather")]


def test_an_openai_agents_handoff_is_not_a_tool_call(svc):
    """openinference-instrumentation-openai-agents records a handoff as a TOOL span named after the target."""
    def agents(tracer):
        _children(tracer, "Triage agent", {"agent.name": "Triage agent", "openinference.span.kind": "AGENT"}, [
            ("handoff to Weather agent", {"input.value": "Triage agent", "output.value": "Weather agent",
                                          "openinference.span.kind": "TOOL"}),
            ("get_weather", {"tool.name": "get_weather", "input.value": '{"city": "Paris"}',
                             "input.mime_type": "application/json", "output.value": "sunny, 24 C in Paris",
                             "tool.description": "Current weather in a city.",
                             "openinference.span.kind": "TOOL"}),
        ])

    service = send(svc, agents, "sdk-openai-agents")
    found = rows(svc, service, 2)
    assert [r["ToolName"] for r in found if r["Operation"] == "execute_tool"] == ["get_weather"]
    handoff = svc.rows("SELECT SpanAttributes FROM otel_traces WHERE ServiceName = {s:String} "
                       "AND SpanName = 'handoff to Weather agent'", {"s": service})
    assert handoff and handoff[0][0]["output.value"] == "Weather agent"  # stored, as sent
    assert not [r for r in found if r["SpanName"].startswith("handoff")]


def test_a_failed_langchain_call_has_no_empty_assistant_message(svc):
    """A ChatOpenAI span that failed: its output is only a role, and an LLMResult with an empty AIMessage."""
    result = {"generations": [[{"text": "", "generation_info": None, "type": "ChatGeneration", "message": {
        "lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", "AIMessage"],
        "kwargs": {"content": "", "response_metadata": {"body": {"error": {"message": "boom"}}, "status_code": 500},
                   "type": "ai", "tool_calls": [], "invalid_tool_calls": []}}}]],
        "llm_output": None, "run": None, "type": "LLMResult"}

    def failed(tracer):
        span = tracer.start_span("ChatOpenAI", kind=SpanKind.INTERNAL, attributes={
            "input.value": '{"messages": [[{"lc": 1, "type": "constructor", "id": ["langchain", "schema", '
                           '"messages", "HumanMessage"], "kwargs": {"content": "Weather in Paris?", '
                           '"type": "human"}}]]}',
            "input.mime_type": "application/json",
            "output.value": json.dumps(result), "output.mime_type": "application/json",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": "Weather in Paris?",
            "llm.output_messages.0.message.role": "assistant",
            "llm.invocation_parameters": '{"model": "fail-model", "model_name": "fail-model", "stream": false}',
            "llm.provider": "openai", "llm.system": "openai", "llm.model_name": "fail-model",
            "openinference.span.kind": "LLM"})
        span.set_status(Status(StatusCode.ERROR, "OpenAIAPIError('Error code: 500 - boom')"))
        span.end()

    [row] = rows(svc, send(svc, failed, "sdk-langchain-failed"), 1)
    assert (row["Operation"], row["RequestModel"]) == ("chat", "fail-model")
    assert row["OutputMessages"] == ""


def litellm_call(model: str, cost: str | None):
    attrs = {"llm.model_name": model, "llm.provider": model.split("/")[0],
             "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "Weather in Paris?",
             "llm.invocation_parameters": json.dumps({"model": model, "api_base": "http://127.0.0.1:1/v1",
                                                      "max_tokens": 50}),
             "output.value": "It is sunny in Paris.", "llm.output_messages.0.message.role": "assistant",
             "llm.output_messages.0.message.content": "It is sunny in Paris.", "llm.finish_reason": "stop",
             "llm.token_count.prompt": 350, "llm.token_count.completion": 20, "llm.token_count.total": 370,
             "openinference.span.kind": "LLM"}
    if cost is not None:
        attrs["llm.cost.total"] = cost
    return attrs


def test_litellm_provider_prefixed_models_group_with_the_providers_own_names(svc):
    """LiteLLM names `anthropic/claude-sonnet-4-20250514`; the Anthropic SDK's instrumentation names the
    bare model. Both are one model of one provider; LiteLLM's name as sent stays on the span."""
    def calls(tracer):
        tracer.start_span("completion", attributes=litellm_call("anthropic/claude-sonnet-4-20250514", None)).end()
        tracer.start_span("completion", attributes=litellm_call("openai/gpt-4o-mini", "0.0000093")).end()
        tracer.start_span("Messages", attributes={
            "llm.model_name": "claude-sonnet-4-20250514", "llm.provider": "anthropic", "llm.system": "anthropic",
            "llm.token_count.prompt": 350, "llm.token_count.completion": 20,
            "openinference.span.kind": "LLM"}).end()

    service = send(svc, calls, "sdk-litellm")
    found = rows(svc, service, 3)
    assert [(r["Provider"], r["RequestModel"], r["ResponseModel"]) for r in found] == [
        ("anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4-20250514"),
        ("openai", "gpt-4o-mini", "gpt-4o-mini"),
        ("anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4-20250514"),
    ]
    assert [r["CostSource"] for r in found] == ["computed", "reported", "computed"]
    by_model = svc.wait_rows(
        "SELECT Model, sumMerge(ModelCalls) FROM genai_rollup_hourly WHERE ServiceName = {s:String} "
        "GROUP BY Model ORDER BY Model", 2, parameters={"s": service})
    assert by_model == [("claude-sonnet-4-20250514", 2), ("gpt-4o-mini", 1)]
    sent = svc.rows("SELECT SpanAttributes FROM otel_traces WHERE ServiceName = {s:String} "
                    "AND SpanName = 'completion' ORDER BY Timestamp LIMIT 1", {"s": service})[0][0]
    assert sent["llm.model_name"] == "anthropic/claude-sonnet-4-20250514"
    priced = svc.rows(f"SELECT count() FROM genai_spans AS s WHERE ServiceName = {{s:String}} AND "
                      f"{model_call_sql('s.')} AND CostUsd > 0", {"s": service})
    assert priced == [(3,)]


def test_hub_model_ids_keep_their_organisation_unless_it_is_the_spans_provider(svc):
    """`openai/gpt-oss-120b` served by Groq and `mistralai/Mixtral-8x7B-Instruct-v0.1` by Together name
    an organisation on a hub, not who served the call: kept whole (and priced as the host's model).
    A span that names no provider keeps the name too; only a prefix equal to the span's provider goes."""
    def hosted(model: str, provider: str | None) -> dict:
        attrs = litellm_call(model, None)
        del attrs["llm.provider"]
        if provider:
            attrs["llm.provider"] = provider
        return attrs

    def calls(tracer):
        tracer.start_span("ChatCompletion", attributes=hosted("openai/gpt-oss-120b", "groq")).end()
        tracer.start_span("ChatCompletion", attributes=hosted("mistralai/Mixtral-8x7B-Instruct-v0.1", "together")).end()
        tracer.start_span("ChatCompletion", attributes=hosted("anthropic/claude-sonnet-4-20250514", None)).end()
        tracer.start_span("ChatCompletion", attributes=hosted("mistralai/mistral-large-latest", "mistralai")).end()
        # LiteLLM's Gemini route on a span whose provider is google: one cloud, two names for it
        tracer.start_span("ChatCompletion", attributes=hosted("gemini/gemini-2.0-flash", "google")).end()

    service = send(svc, calls, "hub-models")
    found = rows(svc, service, 5)
    assert [(r["Provider"], r["RequestModel"], r["ResponseModel"]) for r in found] == [
        ("groq", "openai/gpt-oss-120b", "openai/gpt-oss-120b"),
        ("together", "mistralai/Mixtral-8x7B-Instruct-v0.1", "mistralai/Mixtral-8x7B-Instruct-v0.1"),
        ("", "anthropic/claude-sonnet-4-20250514", "anthropic/claude-sonnet-4-20250514"),
        ("mistral_ai", "mistral-large-latest", "mistral-large-latest"),
        ("gcp.gen_ai", "gemini-2.0-flash", "gemini-2.0-flash"),
    ]
