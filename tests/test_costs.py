"""Cost end to end: OTLP spans from the SDK → genai_cost → ClickHouse (genai_spans, the hourly rollup)
→ `spanhouse costs` and `spanhouse top-traces` through the sql_query endpoint."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from genai_prices import Usage, calc_price
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context
from support import Running, sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc
from spanhouse.cli import main
from spanhouse.modelcalls import model_call_sql, unpriced_sql

OP = sc.GenAiOperationNameValues
SRC = sc.SpanhouseCostSourceValues
BASE_NS = time.time_ns() - 600 * 10**9  # every span starts 10 minutes ago or later
MS = 10**6

# (provider, genai-prices provider id, model, tokens) of the priced model calls, by trace
CALLS = {
    "a": [
        ("openai", "openai", "gpt-4o-mini", dict(input=12_000, cache_read=8_192, output=640)),
        (
            "anthropic",
            "anthropic",
            "claude-sonnet-4-5",
            dict(input=5_000, cache_read=1_000, cache_write=2_000, output=300),
        ),
    ],
    "b": [
        ("openai", "openai", "o3-mini", dict(input=1_000, output=3_000, reasoning=2_000)),
        ("openai", "openai", "o3-mini", dict(input=1_000, output=3_000, reasoning=2_000)),
        ("openai", "openai", "text-embedding-3-small", dict(input=4_096)),
    ],
}
REPORTED_USD = 0.5
OVERRIDE_USD = (1_000 * 1.0 + 500 * 2.0) / 1e6


def reference(provider_id: str, model: str, tokens: dict) -> float:
    usage = Usage(
        input_tokens=tokens.get("input", 0),
        output_tokens=tokens.get("output", 0),
        cache_read_tokens=tokens.get("cache_read", 0),
        cache_write_tokens=tokens.get("cache_write", 0),
        output_reasoning_tokens=tokens.get("reasoning", 0),
    )
    when = datetime.fromtimestamp(BASE_NS / 1e9, UTC)
    return float(calc_price(usage, model, provider_id=provider_id, genai_request_timestamp=when).total_price)


def usage_attrs(tokens: dict) -> dict:
    keys = {
        "input": sc.GEN_AI_USAGE_INPUT_TOKENS,
        "output": sc.GEN_AI_USAGE_OUTPUT_TOKENS,
        "cache_read": sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        "cache_write": sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
        "reasoning": sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    }
    return {keys[k]: v for k, v in tokens.items()}


def model_call(provider: str, model: str, tokens: dict) -> dict:
    op = OP.EMBEDDINGS.value if "embedding" in model else OP.CHAT.value
    return {
        sc.GEN_AI_OPERATION_NAME: op,
        sc.GEN_AI_PROVIDER_NAME: provider,
        sc.GEN_AI_REQUEST_MODEL: model,
        sc.SPANHOUSE_FEATURE: "support",
        **usage_attrs(tokens),
    }


def workload(tracer) -> dict[str, str]:
    """Five traces; returns their trace ids by letter."""
    ids = {}

    def span(name, start_ms, end_ms, attrs, parent=None, error=False, kind=SpanKind.INTERNAL):
        ctx = set_span_in_context(parent) if parent is not None else None
        s = tracer.start_span(
            name, context=ctx, kind=kind, start_time=BASE_NS + start_ms * MS, attributes=attrs
        )
        if error:
            s.set_status(Status(StatusCode.ERROR, "failed"))
        s.end(end_time=BASE_NS + end_ms * MS)
        return s

    # a: a workflow whose root and agent spans carry the aggregated usage of the two model calls below
    total = {"input": 17_000, "output": 940, "cache_read": 9_192, "cache_write": 2_000}
    root = tracer.start_span(
        "invoke_workflow support",
        start_time=BASE_NS,
        attributes={
            sc.GEN_AI_OPERATION_NAME: OP.INVOKE_WORKFLOW.value,
            sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
            **usage_attrs(total),
        },
    )
    agent = tracer.start_span(
        "invoke_agent triage",
        context=set_span_in_context(root),
        start_time=BASE_NS + MS,
        attributes={
            sc.GEN_AI_OPERATION_NAME: OP.INVOKE_AGENT.value,
            sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
            **usage_attrs(total),
        },
    )
    for i, (provider, _, model, tokens) in enumerate(CALLS["a"]):
        span(
            f"chat {model}",
            10 + 1000 * i,
            900 + 1000 * i,
            model_call(provider, model, tokens),
            agent,
            kind=SpanKind.CLIENT,
        )
    span(
        "execute_tool lookup",
        2_000,
        2_100,
        {sc.GEN_AI_OPERATION_NAME: OP.EXECUTE_TOOL.value, sc.GEN_AI_TOOL_NAME: "lookup"},
        agent,
    )
    agent.end(end_time=BASE_NS + 2_500 * MS)
    root.end(end_time=BASE_NS + 3_000 * MS)
    ids["a"] = format(root.get_span_context().trace_id, "032x")

    # b: a failed task, with a retried o3-mini call (same parent, operation and model) and an embedding
    root = tracer.start_span(
        "invoke_workflow research",
        start_time=BASE_NS + 10_000 * MS,
        attributes={sc.GEN_AI_OPERATION_NAME: OP.INVOKE_WORKFLOW.value},
    )
    for i, (provider, _, model, tokens) in enumerate(CALLS["b"]):
        span(
            f"call {i}",
            10_010 + 2_000 * i,
            11_500 + 2_000 * i,
            model_call(provider, model, tokens),
            root,
            error=i == 0,
        )
    root.set_status(Status(StatusCode.ERROR, "gave up"))
    root.end(end_time=BASE_NS + 19_000 * MS)
    ids["b"] = format(root.get_span_context().trace_id, "032x")

    # c: a model nobody prices; d: a cost the SDK reported; e: a model priced by a config override
    ids["c"] = format(
        span("chat acme", 30_000, 30_100, model_call("acme-ai", "acme-large-7", dict(input=100, output=10)))
        .get_span_context()
        .trace_id,
        "032x",
    )
    reported = {
        **model_call("openai", "gpt-4o", dict(input=1_000, output=100)),
        sc.SPANHOUSE_COST_USD: REPORTED_USD,
    }
    ids["d"] = format(span("chat reported", 40_000, 40_200, reported).get_span_context().trace_id, "032x")
    ids["e"] = format(
        span("chat local", 50_000, 50_300, model_call("ollama", "llama-local", dict(input=1_000, output=500)))
        .get_span_context()
        .trace_id,
        "032x",
    )
    return ids


@pytest.fixture(scope="module")
def priced():
    database = unique_database("cost")
    config = service_config(
        database,
        processor_configs={
            "genai_cost": {
                "overrides": [
                    {
                        "name": "local-llama",
                        "model": "llama-local",
                        "provider": "ollama",
                        "input": 1.0,
                        "output": 2.0,
                    }
                ]
            },
            "batch": {"timeout": "20ms"},
        },
    )
    svc: Running = start_service(config, database)
    ids: dict[str, str] = {}
    spans = sdk_spans(
        lambda tracer: ids.update(workload(tracer)),
        resource={
            "service.name": "copilot",
            "deployment.environment.name": "prod",
            "service.version": "1.4.0",
        },
    )
    exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces")
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    svc.wait_rows("SELECT 1 FROM genai_spans", 12)
    yield svc, ids
    svc.stop()


def expected_total() -> float:
    return (
        sum(reference(pid, m, t) for calls in CALLS.values() for _, pid, m, t in calls)
        + REPORTED_USD
        + OVERRIDE_USD
    )


def cli(svc: Running, *args: str):
    result = CliRunner().invoke(
        main, [*args, "--endpoint", f"http://127.0.0.1:{svc.sql_port}", "--database", svc.database]
    )
    return result


def test_stored_costs_equal_genai_prices(priced):
    svc, ids = priced
    for letter in ("a", "b"):
        rows = svc.rows(
            "SELECT RequestModel, CostUsd, CostSource FROM genai_spans WHERE TraceId = {t:String} "
            "AND Operation IN ('chat', 'embeddings') ORDER BY Timestamp",
            {"t": ids[letter]},
        )
        assert rows == [(m, reference(pid, m, t), SRC.COMPUTED.value) for _, pid, m, t in CALLS[letter]]
    # unknown model: marked, no cost; reported kept; override applied
    assert svc.rows(
        "SELECT CostUsd, CostSource FROM genai_spans WHERE TraceId = {t:String}", {"t": ids["c"]}
    ) == [(None, SRC.UNKNOWN_MODEL.value)]
    assert svc.rows(
        "SELECT CostUsd, CostSource FROM genai_spans WHERE TraceId = {t:String}", {"t": ids["d"]}
    ) == [(REPORTED_USD, SRC.REPORTED.value)]
    assert svc.rows(
        "SELECT CostUsd, CostSource FROM genai_spans WHERE TraceId = {t:String}", {"t": ids["e"]}
    ) == [(pytest.approx(OVERRIDE_USD), SRC.OVERRIDE.value)]


def test_aggregated_usage_is_not_counted_twice(priced):
    svc, ids = priced
    rows = svc.rows(
        "SELECT Operation, CostUsd, CostSource FROM genai_spans WHERE TraceId = {t:String} "
        "AND Operation IN ('invoke_workflow', 'invoke_agent') ORDER BY Operation",
        {"t": ids["a"]},
    )
    assert rows == [
        ("invoke_agent", None, SRC.AGGREGATED.value),
        ("invoke_workflow", None, SRC.AGGREGATED.value),
    ]
    ((trace_cost,),) = svc.rows(
        "SELECT sum(CostUsd) FROM genai_spans WHERE TraceId = {t:String}", {"t": ids["a"]}
    )
    assert trace_cost == pytest.approx(sum(reference(pid, m, t) for _, pid, m, t in CALLS["a"]), rel=1e-12)


def test_rollup_answers_the_same_totals_as_genai_spans(priced):
    svc, _ = priced
    model_call = model_call_sql()
    direct = svc.rows(f"""
        SELECT Operation, if(RequestModel != '', RequestModel, ResponseModel) AS m, count(), countIf({model_call}),
               countIf(StatusCode = 'Error'),
               sumIf(InputTokens, {model_call}), sumIf(OutputTokens, {model_call}),
               sumIf(CacheReadTokens, {model_call}), sumIf(CacheWriteTokens, {model_call}),
               sumIf(ReasoningTokens, {model_call}), sum(ifNull(CostUsd, 0)), countIf(CostUsd IS NOT NULL),
               countIf({unpriced_sql()}), quantiles(0.5, 0.95, 0.99)(DurationMs)
        FROM genai_spans GROUP BY Operation, m ORDER BY Operation, m""")
    rolled = svc.rows("""
        SELECT Operation, Model, countMerge(Spans), sumMerge(ModelCalls), sumMerge(Errors), sumMerge(InputTokens),
               sumMerge(OutputTokens), sumMerge(CacheReadTokens), sumMerge(CacheWriteTokens),
               sumMerge(ReasoningTokens), sumMerge(CostUsd), sumMerge(PricedSpans), sumMerge(UnpricedSpans),
               quantilesMerge(0.5, 0.95, 0.99)(DurationMs)
        FROM genai_rollup_hourly GROUP BY Operation, Model ORDER BY Operation, Model""")
    assert len(direct) == len(rolled) >= 7
    for d, r in zip(direct, rolled):
        assert d[:10] == r[:10]
        assert d[10] == pytest.approx(r[10], rel=1e-12)
        assert d[11:13] == r[11:13]
        assert d[13] == pytest.approx(r[13])
    ((total,),) = svc.rows("SELECT sumMerge(CostUsd) FROM genai_rollup_hourly")
    assert total == pytest.approx(expected_total(), rel=1e-12)


def test_costs_command(priced):
    svc, _ = priced
    result = cli(svc, "costs", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    s = data["summary"]
    total = expected_total()
    assert s["cost_usd"] == pytest.approx(total, rel=1e-12)
    assert s["requests"] == 5 and s["successful_tasks"] == 4
    assert s["cost_per_request_usd"] == pytest.approx(total / 5)
    assert s["cost_per_successful_task_usd"] == pytest.approx(total / 4)
    assert (s["model_calls"], s["priced_calls"], s["unpriced_calls"], s["model_call_errors"]) == (8, 7, 1, 1)
    assert s["tokens"] == {
        "input": 12_000 + 5_000 + 1_000 * 2 + 4_096 + 100 + 1_000 + 1_000,
        "cache_read": 9_192,
        "cache_write": 2_000,
        "output": 640 + 300 + 6_000 + 10 + 100 + 500,
        "reasoning": 4_000,
    }
    assert (s["retries"], s["retry_rate"]) == (1, pytest.approx(1 / 8))
    assert (s["tool_calls"], s["tool_retries"]) == (1, 0)
    # model calls take 100ms..1.5s; whole workflows 100ms..9s
    assert s["model_call_latency_ms"]["p50"] == pytest.approx(890, abs=300)
    assert 100 <= s["model_call_latency_ms"]["p99"] <= 1_500
    assert s["workflow_latency_ms"]["p99"] == pytest.approx(9_000, rel=0.05)
    rows = {r["key"]: r for r in data["rows"]}
    assert data["by"] == "model" and set(rows) == {
        "gpt-4o-mini",
        "claude-sonnet-4-5",
        "o3-mini",
        "text-embedding-3-small",
        "acme-large-7",
        "gpt-4o",
        "llama-local",
    }
    assert rows["o3-mini"]["calls"] == 2 and rows["o3-mini"]["errors"] == 1
    assert rows["o3-mini"]["cost_usd"] == pytest.approx(2 * reference("openai", "o3-mini", CALLS["b"][0][3]))
    assert rows["acme-large-7"]["unpriced_calls"] == 1 and rows["acme-large-7"]["cost_usd"] == 0
    assert data["rows"][0]["key"] == "gpt-4o"  # the reported $0.50 is the largest

    by_env = json.loads(cli(svc, "costs", "--by", "environment", "--top", "1", "-f", "json").stdout)
    assert [(r["key"], r["calls"]) for r in by_env["rows"]] == [("prod", 8)]
    assert by_env["rows"][0]["cost_usd"] == pytest.approx(total, rel=1e-12)

    table = cli(svc, "costs", "--by", "prompt")
    assert table.exit_code == 0, table.output
    assert f"${total:.4f}" in table.stdout and "cost per successful task" in table.stdout


def test_costs_unpriced_lists_unknown_models(priced):
    svc, _ = priced
    result = cli(svc, "costs", "--unpriced", "-f", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["provider"], r["model"], r["source"], r["spans"]) for r in rows] == [
        ("acme-ai", "acme-large-7", SRC.UNKNOWN_MODEL.value, 1)
    ]
    table = cli(svc, "costs", "--unpriced")
    assert "acme-large-7" in table.stdout and "unknown_model" in table.stdout


def test_top_traces(priced):
    svc, ids = priced
    by_cost = json.loads(cli(svc, "top-traces", "--by", "cost", "-f", "json").stdout)
    assert [r["trace_id"] for r in by_cost] == [ids["d"], ids["b"], ids["a"], ids["e"], ids["c"]]
    assert by_cost[2]["cost_usd"] == pytest.approx(sum(reference(pid, m, t) for _, pid, m, t in CALLS["a"]))
    assert by_cost[2]["model_calls"] == 2 and by_cost[2]["status"] == "ok"
    assert (by_cost[1]["status"], by_cost[1]["spans"]) == ("error", 4)
    assert next(r for r in by_cost if r["trace_id"] == ids["c"])["cost_usd"] is None
    by_duration = json.loads(cli(svc, "top-traces", "--by", "duration", "--top", "2", "-f", "json").stdout)
    assert [(r["trace_id"], r["status"]) for r in by_duration] == [(ids["b"], "error"), (ids["a"], "ok")]
    assert by_duration[0]["duration_ms"] == pytest.approx(9_000)
    table = cli(svc, "top-traces")
    assert table.exit_code == 0 and ids["d"] in table.stdout
    # the trace view says its total leaves a call out, as the * of top-traces does
    unpriced = cli(svc, "trace", ids["c"])
    assert unpriced.exit_code == 0 and "cost n/a + 1 call without a cost" in " ".join(unpriced.stdout.split())
    assert "without a cost" not in cli(svc, "trace", ids["a"]).stdout


def test_empty_window_and_bad_options_say_what_to_do(priced):
    svc, _ = priced
    for command in (["costs"], ["top-traces"]):
        result = cli(svc, *command, "--since", "30s")
        assert result.exit_code == 1
        assert (
            "no GenAI spans in the last 30s" in result.output or "no traces with GenAI spans" in result.output
        )
        assert "Traceback" not in result.output
    bad = cli(svc, "costs", "--since", "a while")
    assert bad.exit_code == 2 and "--since" in bad.output
    for command in ("costs", "top-traces"):
        huge = cli(svc, command, "--since", "1000000d")
        assert huge.exit_code == 2 and "must be at most 36500d" in huge.output and "SELECT" not in huge.output
    assert cli(svc, "costs", "--by", "colour").exit_code == 2
