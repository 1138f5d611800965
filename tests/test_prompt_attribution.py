"""Cost and latency per prompt version when the prompt is named by an ancestor of the model call.

MLflow links a registry prompt (`load_prompt`) to the span active when it was loaded, a CHAIN span or
the root, never to the model calls under it; OpenInference apps set `prompt.id` on their own span while
the template version lands on the call. The spans below are those shapes as MLflow 3 (openai autolog)
and OpenInference export them, recorded with the real OpenTelemetry SDK and sent over OTLP/HTTP, the
spans that name prompts last (a root ends, and is exported, after its children). `spanhouse costs --by
prompt`, the prompt-versions dashboard and the README's query read `genai_spans_by_prompt`.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from grafana_macros import Context, expand
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import set_span_in_context
from support import enc, linked, mlflow_span, sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc
from spanhouse.cli import main

ROOT = Path(__file__).resolve().parents[1]
S = 10**9
REPORTED = {  # model call name → reported cost (MLflow sends mlflow.llm.cost; distinct, so sums tell calls apart)
    "a": 0.001, "b": 0.002, "c": 0.004, "d": 0.008, "e": 0.016, "f": 0.032, "g": 0.064, "oi": 0.128,
}


def mlflow_call(tracer, key, parent, at, **attrs):
    """An openai-autolog CHAT_MODEL span with usage and a reported cost."""
    span = mlflow_span(tracer, "Completions", parent, at, "CHAT_MODEL", **{
        "mlflow.message.format": enc("openai"), "mlflow.llm.model": enc("gpt-4o-mini"),
        "mlflow.chat.tokenUsage": enc({"input_tokens": 42, "output_tokens": 7, "total_tokens": 49}),
        "mlflow.llm.cost": enc({"input_cost": 0, "output_cost": REPORTED[key], "total_cost": REPORTED[key]}),
        **attrs})
    span.end(end_time=at + S)


def build(tracer) -> None:
    now = time.time_ns() - 600 * S
    # load_prompt in the root: one call right under it, one under a step that names nothing
    root = mlflow_span(tracer, "single", None, now, "UNKNOWN", **linked("answer_prompt", "1"))
    mlflow_call(tracer, "a", root, now + S)
    step = mlflow_span(tracer, "inner_step", root, now + 2 * S, "UNKNOWN")
    mlflow_call(tracer, "b", step, now + 3 * S)
    step.end(end_time=now + 5 * S)
    # a call that names its own prompt keeps it; its sibling takes the root's
    mlflow_call(tracer, "f", root, now + 6 * S, **{sc.GEN_AI_PROMPT_NAME: "own_prompt", sc.GEN_AI_PROMPT_VERSION: "9"})
    mlflow_call(tracer, "g", root, now + 8 * S)
    root.end(end_time=now + 10 * S)

    # two prompts, each loaded in its own step, and a call under neither
    root = mlflow_span(tracer, "two", None, now + 20 * S, "UNKNOWN")
    classify = mlflow_span(tracer, "classify", root, now + 21 * S, "CHAIN", **linked("classify_prompt", "1"))
    mlflow_call(tracer, "c", classify, now + 22 * S)
    classify.end(end_time=now + 24 * S)
    answer = mlflow_span(tracer, "answer", root, now + 25 * S, "CHAIN", **linked("answer_prompt", "2"))
    mlflow_call(tracer, "d", answer, now + 26 * S)
    answer.end(end_time=now + 28 * S)
    mlflow_call(tracer, "e", root, now + 29 * S)
    root.end(end_time=now + 31 * S)

    # OpenInference: prompt.id on the app's CHAIN span, the template version on the call
    chain = tracer.start_span("chain", start_time=now + 40 * S, attributes={
        "openinference.span.kind": "CHAIN", "prompt.id": "weather_prompt"})
    call = tracer.start_span("ChatCompletion", context=set_span_in_context(chain), start_time=now + 41 * S,
                             attributes={"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini",
                                         "llm.provider": "openai", "llm.token_count.prompt": 42,
                                         "llm.token_count.completion": 7, "llm.cost.total": REPORTED["oi"],
                                         "llm.prompt_template.version": "v3",
                                         "llm.prompt_template.template": "Weather in {city}?"})
    call.end(end_time=now + 42 * S)
    chain.end(end_time=now + 43 * S)


# prompt@version → the calls counted under it
EXPECTED = {
    "answer_prompt@1": {"a", "b", "g"},
    "own_prompt@9": {"f"},
    "classify_prompt@1": {"c"},
    "answer_prompt@2": {"d"},
    "": {"e"},
    "weather_prompt@v3": {"oi"},
}


@pytest.fixture(scope="module")
def svc():
    db = unique_database("prompts")
    procs = {"genai_normalize": {}, "genai_cost": {}, "batch": {"timeout": "20ms"}}
    running = start_service(service_config(db, processor_configs=procs), db)
    try:
        spans = sdk_spans(build, resource={"service.name": "mlflow-app"})
        names_prompt = ("mlflow.linkedPrompts", "prompt.id")
        ancestors = [s for s in spans if any(k in s.attributes for k in names_prompt)]
        rest = [s for s in spans if s not in ancestors]
        exporter = OTLPSpanExporter(endpoint=running.http_url + "/v1/traces")
        for batch in (rest, ancestors):  # the spans that name prompts arrive after the calls under them
            assert exporter.export(batch) is SpanExportResult.SUCCESS
            running.wait_rows("SELECT 1 FROM otel_traces", len(rest) + (batch is ancestors) * len(ancestors))
        exporter.shutdown()
        running.wait_rows("SELECT 1 FROM genai_prompt_links", 5)
        running.wait_rows("SELECT 1 FROM genai_spans", len(REPORTED))
        yield running
    finally:
        running.stop()


def cli(svc, *args: str):
    return CliRunner().invoke(main, [*args, "--endpoint", f"http://127.0.0.1:{svc.sql_port}",
                                     "--database", svc.database])


def test_costs_by_prompt_attributes_calls_to_their_nearest_ancestors_prompt(svc):
    result = cli(svc, "costs", "--by", "prompt", "--since", "1h", "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rows = {r["key"]: r for r in data["rows"]}
    assert set(rows) == set(EXPECTED)
    for key, calls in EXPECTED.items():
        assert rows[key]["calls"] == len(calls), key
        assert rows[key]["cost_usd"] == pytest.approx(sum(REPORTED[c] for c in calls)), key
    # nothing counted twice, nothing lost: the rows add up to the window's totals
    assert sum(r["calls"] for r in data["rows"]) == data["summary"]["model_calls"] == len(REPORTED)
    assert sum(r["cost_usd"] for r in data["rows"]) == pytest.approx(data["summary"]["cost_usd"])
    table = cli(svc, "costs", "--by", "prompt", "--since", "1h")
    assert table.exit_code == 0 and "classify_prompt@1" in table.stdout, table.output


def test_the_view_says_where_each_calls_prompt_came_from(svc):
    rows = svc.rows("SELECT PromptName, PromptVersion, PromptSource, CostUsd FROM genai_spans_by_prompt("
                    "since = now() - INTERVAL 1 HOUR, until = now()) WHERE CostUsd IS NOT NULL")
    by_cost = {round(cost, 6): (name, version, source) for name, version, source, cost in rows}
    assert len(rows) == len(by_cost) == len(REPORTED)
    assert by_cost[REPORTED["f"]] == ("own_prompt", "9", "span")
    assert by_cost[REPORTED["b"]] == ("answer_prompt", "1", "ancestor")
    assert by_cost[REPORTED["e"]] == ("", "", "")
    assert by_cost[REPORTED["oi"]] == ("weather_prompt", "v3", "ancestor")
    # genai_spans itself is as stored: the calls name no prompt there
    assert svc.rows("SELECT count() FROM genai_spans WHERE PromptName = 'answer_prompt'") == [(0,)]


def test_a_window_that_leaves_the_calls_out_has_none(svc):
    rows = svc.rows("SELECT count() FROM genai_spans_by_prompt(since = now() - INTERVAL 1 MINUTE, until = now())")
    assert rows == [(0,)]


def test_prompt_versions_dashboard_and_readme_query_count_ancestor_prompts(svc):
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/prompt-versions.json").read_text(encoding="utf-8"))
    panel = next(p for p in dashboard["panels"] if p["id"] == 1)
    now = int(time.time())
    ctx = Context(from_s=now - 3600, to_s=now + 60, variables={"environment": ["$__all"], "prompt": ["$__all"]})
    client = svc.client()
    try:
        result = client.query(expand(panel["targets"][0]["rawSql"], ctx))
        rows = {(r["PromptName"], r["PromptVersion"]): r for r in result.named_results()}
        assert rows[("answer_prompt", "1")]["calls"] == 3 and rows[("classify_prompt", "1")]["calls"] == 1
        variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "prompt")
        names = {r[0] for r in client.query(expand(variable["query"], ctx)).result_rows}
        assert {"answer_prompt", "classify_prompt", "own_prompt", "weather_prompt"} <= names
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        (sql,) = re.findall(r'spanhouse sql "(SELECT PromptVersion, count\(\) AS calls.*?)"', readme, re.S)
        sql = sql.replace("'ticket_reply_prompt'", "'answer_prompt'")
        assert {r[0]: r[1] for r in client.query(sql).result_rows} == {"1": 3, "2": 1}
    finally:
        client.close()


def test_costs_by_prompt_on_a_store_without_the_view_says_what_to_do():
    db = unique_database("noview")
    running = start_service(service_config(db), db)
    try:
        spans = sdk_spans(lambda tracer: tracer.start_span("chat", attributes={
            sc.GEN_AI_OPERATION_NAME: sc.GenAiOperationNameValues.CHAT.value}).end())
        assert OTLPSpanExporter(endpoint=running.http_url + "/v1/traces").export(spans) is SpanExportResult.SUCCESS
        running.wait_rows("SELECT 1 FROM genai_spans", 1)
        client = running.client()
        client.command("DROP VIEW genai_spans_by_prompt")  # as a store made by an older version has it
        client.close()
        result = cli(running, "costs", "--by", "prompt", "--since", "1h")
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert "genai_spans_by_prompt" in result.output and "spanhouse schema" in result.output, result.output
    finally:
        running.stop()
