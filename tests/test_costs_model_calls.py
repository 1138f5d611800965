"""One rule for what a model call is, in every view: genai_cost, `spanhouse costs`, `top-traces`,
`spanhouse trace`, the hourly rollup and the Grafana cost dashboard count the same calls.

The workload, through genai_normalize and genai_cost into the embedded store:

- `vercel`: a Vercel AI SDK `ai.generateText` span (no operation, names its model) over two
  `ai.generateText.doGenerate` calls;
- `chain`: an OpenInference CHAIN span naming its model over one LLM call;
- `agent`: an `invoke_agent` span that reports the cost of its run and carries its usage, over two
  chat calls;
- `responses`: a call whose operation the conventions do not define (`responses`), in a service of its own;
- `nomodel`: a chat call with token counts and no model.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from genai_prices import Usage, calc_price
from grafana_macros import ALL, Context, expand
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import set_span_in_context
from support import Running, sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc
from spanhouse.cli import main

OP = sc.GenAiOperationNameValues
SRC = sc.SpanhouseCostSourceValues
ROOT = Path(__file__).resolve().parent.parent
MINI = "gpt-4o-mini"


def mini_usd(tokens_in: int, tokens_out: int) -> float:
    usage = Usage(input_tokens=tokens_in, output_tokens=tokens_out)
    return float(calc_price(usage, MINI, provider_id="openai").total_price)


CALL_USD = mini_usd(1_000, 100)


def tid(span) -> str:
    return format(span.get_span_context().trace_id, "032x")


def copilot(tracer) -> dict[str, str]:
    now = time.time_ns() - 60 * 10**9

    def span(name, attrs, parent=None):
        s = tracer.start_span(name, context=set_span_in_context(parent) if parent else None, start_time=now,
                              attributes=attrs)
        s.end(end_time=now + 10**8)
        return s

    def chat_call(parent, **extra):
        return span("chat", {sc.GEN_AI_OPERATION_NAME: OP.CHAT.value, sc.GEN_AI_PROVIDER_NAME: "openai",
                             sc.GEN_AI_REQUEST_MODEL: MINI, sc.GEN_AI_USAGE_INPUT_TOKENS: 1_000,
                             sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100, **extra}, parent)

    ids = {}
    vercel = {"ai.model.id": MINI, "ai.model.provider": "openai.chat"}
    outer = tracer.start_span("ai.generateText", start_time=now,
                              attributes={"ai.operationId": "ai.generateText", **vercel})
    for _ in range(2):
        span("ai.generateText.doGenerate", {"ai.operationId": "ai.generateText.doGenerate", **vercel,
                                            "ai.usage.promptTokens": 1_000, "ai.usage.completionTokens": 100}, outer)
    outer.end(end_time=now + 10**9)
    ids["vercel"] = tid(outer)

    chain = tracer.start_span("RunnableSequence", start_time=now,
                              attributes={"openinference.span.kind": "CHAIN", "llm.model_name": MINI})
    span("ChatOpenAI", {"openinference.span.kind": "LLM", "llm.model_name": MINI, "llm.provider": "openai",
                        "llm.token_count.prompt": 1_000, "llm.token_count.completion": 100}, chain)
    chain.end(end_time=now + 10**9)
    ids["chain"] = tid(chain)

    agent = tracer.start_span("invoke_agent helper", start_time=now, attributes={
        sc.GEN_AI_OPERATION_NAME: OP.INVOKE_AGENT.value, sc.GEN_AI_REQUEST_MODEL: MINI,
        sc.GEN_AI_USAGE_INPUT_TOKENS: 2_000, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 200,
        sc.SPANHOUSE_COST_USD: 2 * CALL_USD})
    chat_call(agent)
    chat_call(agent)
    agent.end(end_time=now + 10**9)
    ids["agent"] = tid(agent)

    ids["nomodel"] = tid(span("chat", {sc.GEN_AI_OPERATION_NAME: OP.CHAT.value, sc.GEN_AI_PROVIDER_NAME: "openai",
                                       sc.GEN_AI_USAGE_INPUT_TOKENS: 1_000, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 500}))
    return ids


def responder(tracer) -> dict[str, str]:
    now = time.time_ns() - 60 * 10**9
    s = tracer.start_span("responses gpt-4o-mini", start_time=now, attributes={
        sc.GEN_AI_OPERATION_NAME: "responses", sc.GEN_AI_PROVIDER_NAME: "openai", sc.GEN_AI_REQUEST_MODEL: MINI,
        sc.GEN_AI_USAGE_INPUT_TOKENS: 1_000, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100})
    s.end(end_time=now + 10**8)
    return {"responses": tid(s)}


@pytest.fixture(scope="module")
def stored():
    database = unique_database("calls")
    processors = {"genai_normalize": {}, "genai_cost": {}, "batch": {"timeout": "20ms"}}
    svc: Running = start_service(service_config(database, processor_configs=processors), database)
    ids: dict[str, str] = {}
    spans = sdk_spans(lambda tracer: ids.update(copilot(tracer)), resource={"service.name": "copilot"})
    spans += sdk_spans(lambda tracer: ids.update(responder(tracer)), resource={"service.name": "responder"})
    exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces")
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    svc.wait_rows("SELECT 1 FROM genai_spans", len(spans))
    yield svc, ids
    svc.stop()


def cli(svc: Running, *args: str):
    result = CliRunner().invoke(main, [*args, "--endpoint", f"http://127.0.0.1:{svc.sql_port}",
                                       "--database", svc.database])
    assert result.exit_code == 0, result.output
    return result.stdout


def sources(svc: Running, trace_id: str) -> list[tuple[str, str]]:
    return svc.rows("SELECT Operation, CostSource FROM genai_spans WHERE TraceId = {t:String} ORDER BY Operation",
                    {"t": trace_id})


def test_genai_cost_marks_model_calls_and_only_them(stored):
    svc, ids = stored
    assert sources(svc, ids["vercel"]) == [("", ""), ("chat", SRC.COMPUTED.value), ("chat", SRC.COMPUTED.value)]
    assert sources(svc, ids["chain"]) == [("", ""), ("chat", SRC.COMPUTED.value)]
    assert sources(svc, ids["agent"]) == [("chat", SRC.COMPUTED.value), ("chat", SRC.COMPUTED.value),
                                          ("invoke_agent", SRC.AGGREGATED.value)]
    assert sources(svc, ids["responses"]) == [("responses", SRC.COMPUTED.value)]
    assert sources(svc, ids["nomodel"]) == [("chat", SRC.NO_MODEL.value)]
    # the agent's reported cost is gone: its trace costs what its two calls cost
    ((agent_cost, priced),) = svc.rows(
        "SELECT sum(CostUsd), count(CostUsd) FROM genai_spans WHERE TraceId = {t:String}", {"t": ids["agent"]})
    assert (agent_cost, priced) == (pytest.approx(2 * CALL_USD), 2)


def test_costs_counts_the_model_calls(stored):
    svc, _ = stored
    summary = json.loads(cli(svc, "costs", "--since", "1h", "-f", "json"))["summary"]
    assert (summary["model_calls"], summary["priced_calls"], summary["unpriced_calls"]) == (7, 6, 1)
    assert summary["cost_usd"] == pytest.approx(6 * CALL_USD)
    assert summary["tokens"]["input"] == 7_000 and summary["tokens"]["output"] == 1_100
    by_service = {r["key"]: r for r in json.loads(cli(svc, "costs", "--since", "1h", "--by", "service", "-f",
                                                        "json"))["rows"]}
    assert {k: (r["calls"], r["unpriced_calls"]) for k, r in by_service.items()} == {"copilot": (6, 1),
                                                                                       "responder": (1, 0)}
    assert by_service["responder"]["cost_usd"] == pytest.approx(CALL_USD)
    unpriced = json.loads(cli(svc, "costs", "--since", "1h", "--unpriced", "-f", "json"))
    assert [(r["provider"], r["model"], r["source"], r["spans"]) for r in unpriced] == [
        ("openai", "", SRC.NO_MODEL.value, 1)]


def test_top_traces_and_trace_count_the_same_calls(stored):
    svc, ids = stored
    rows = {r["trace_id"]: r for r in json.loads(cli(svc, "top-traces", "--since", "1h", "-f", "json"))}
    expected = {"vercel": (2, 0, 2 * CALL_USD), "chain": (1, 0, CALL_USD), "agent": (2, 0, 2 * CALL_USD),
                "responses": (1, 0, CALL_USD), "nomodel": (1, 1, None)}
    for name, (calls, unpriced, usd) in expected.items():
        row = rows[ids[name]]
        assert (row["model_calls"], row["unpriced_calls"], row["cost_usd"]) == (calls, unpriced, pytest.approx(usd))
        header = " ".join(cli(svc, "trace", ids[name], "--no-content").split())
        assert f"model calls {calls} " in header, header
        assert ("without a cost" in header) == bool(unpriced), header
    assert "cost n/a + 1 call without a cost" in " ".join(cli(svc, "trace", ids["nomodel"]).split())
    assert f"cost ${2 * CALL_USD:.8f}".rstrip("0") in cli(svc, "trace", ids["agent"])


def test_the_rollup_and_the_cost_dashboard_count_the_same_calls(stored):
    svc, _ = stored
    ((calls, priced, unpriced, usd, tokens_in),) = svc.rows(
        "SELECT sumMerge(ModelCalls), sumMerge(PricedSpans), sumMerge(UnpricedSpans), sumMerge(CostUsd), "
        "sumMerge(InputTokens) FROM genai_rollup_hourly")
    assert (calls, priced, unpriced, tokens_in) == (7, 6, 1, 7_000) and usd == pytest.approx(6 * CALL_USD)
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/cost.json").read_text(encoding="utf-8"))
    (by_model,) = [p for p in dashboard["panels"] if p["title"].startswith("By model")]
    now = int(time.time())
    ctx = Context(from_s=now - 3600, to_s=now + 600, interval_s=60, variables={"environment": [ALL]})
    client = svc.client()
    try:
        result = client.query(expand(by_model["targets"][0]["rawSql"], ctx))
    finally:
        client.close()
    rows = [dict(zip(result.column_names, row)) for row in result.result_rows]
    assert sum(r["calls"] for r in rows) == 7 and sum(r["unpriced_calls"] for r in rows) == 1
