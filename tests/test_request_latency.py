"""One definition of a request's latency: the root span of a trace with GenAI spans, whatever made it.

OpenInference-style agent runs (the root an AGENT span, as the OpenAI Agents SDK, LangGraph and CrewAI
instrumentations make it, normalized to `invoke_agent`) of 13 s each and a Traceloop-style workflow of 2 s
are sent with the OpenTelemetry SDK over OTLP/HTTP through `genai_normalize`. The shipped request latency
alert, the dashboard's "Request latency by workflow" panel and `spanhouse costs` must all see the agent runs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import clickhouse_connect
import pytest
import yaml
from click.testing import CliRunner
from grafana_macros import ALL, Context, expand
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import set_span_in_context
from support import sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc
from spanhouse.cli import main

ROOT = Path(__file__).resolve().parent.parent
ALERTING = ROOT / "deploy" / "grafana" / "provisioning" / "alerting" / "spanhouse.yaml"
OVERVIEW = ROOT / "deploy" / "grafana" / "dashboards" / "llm-overview.json"
S = 10**9
OP = sc.GenAiOperationNameValues
RUNS, AGENT_S, FLOW_S = 12, 13, 2


def agent_runs(tracer, now: int) -> None:
    """12 runs of 13 s whose root is an OpenInference AGENT span (no gen_ai.* names until normalized)."""
    for i in range(RUNS):
        t0 = now - 10 * 60 * S + i * 14 * S
        root = tracer.start_span("Agent workflow", start_time=t0, attributes={
            "openinference.span.kind": "AGENT", "graph.node.id": "triage"})
        llm = tracer.start_span("ChatCompletion", context=set_span_in_context(root), start_time=t0 + S // 10,
                                attributes={"openinference.span.kind": "LLM", "llm.provider": "openai",
                                            "llm.model_name": "gpt-4o-mini", "llm.token_count.prompt": 42,
                                            "llm.token_count.completion": 7})
        llm.end(end_time=t0 + 12 * S + S // 2)
        root.end(end_time=t0 + AGENT_S * S)


def workflow_runs(tracer, now: int) -> None:
    """12 Traceloop-style workflows (invoke_workflow roots) of 2 s: under the threshold."""
    for i in range(RUNS):
        t0 = now - 10 * 60 * S + i * 3 * S
        root = tracer.start_span("invoke_workflow fast_flow", start_time=t0, attributes={
            sc.GEN_AI_OPERATION_NAME: OP.INVOKE_WORKFLOW.value, sc.GEN_AI_WORKFLOW_NAME: "fast_flow"})
        chat = tracer.start_span("chat gpt-4o-mini", context=set_span_in_context(root), start_time=t0 + S // 10,
                                 attributes={sc.GEN_AI_OPERATION_NAME: OP.CHAT.value,
                                             sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini"})
        chat.end(end_time=t0 + S)
        root.end(end_time=t0 + FLOW_S * S)


@pytest.fixture(scope="module")
def svc():
    db = unique_database("latency")
    procs = {"genai_normalize": {}, "batch": {"timeout": "20ms"}}
    running = start_service(service_config(db, processor_configs=procs), db)
    try:
        now = time.time_ns()
        exporter = OTLPSpanExporter(endpoint=running.http_url + "/v1/traces")
        for build, service in ((agent_runs, "slow-agent"), (workflow_runs, "copilot")):
            spans = sdk_spans(lambda tracer, build=build: build(tracer, now),
                              resource={"service.name": service, "deployment.environment.name": "production"})
            assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
        assert len(running.wait_rows("SELECT 1 FROM otel_traces", 4 * RUNS)) == 4 * RUNS
        assert len(running.wait_rows("SELECT 1 FROM genai_spans", 4 * RUNS)) == 4 * RUNS
        yield running
    finally:
        running.stop()


def _client(svc):
    return clickhouse_connect.get_client(host="127.0.0.1", port=svc.sql_port, database=svc.database, compress=False)


def test_the_latency_alert_fires_for_agent_roots(svc):
    rules = [r for g in yaml.safe_load(ALERTING.read_text(encoding="utf-8"))["groups"] for r in g["rules"]]
    (rule,) = [r for r in rules if r["uid"] == "spanhouse-workflow-latency"]
    (query,) = [d for d in rule["data"] if d["refId"] == "A"]
    rows = {tuple(r[:-1]): r[-1] for r in _client(svc).query(query["model"]["rawSql"]).result_rows}
    assert rows[("slow-agent", "production", "Agent workflow")] == pytest.approx(AGENT_S)
    assert rows[("copilot", "production", "fast_flow")] == pytest.approx(FLOW_S)


def test_the_latency_panel_shows_agent_roots(svc):
    dashboard = json.loads(OVERVIEW.read_text(encoding="utf-8"))
    (panel,) = [p for p in dashboard["panels"] if p["id"] == 6]
    now = int(time.time())
    for env in ([ALL], ["production"]):
        ctx = Context(from_s=now - 3600, to_s=now + 600, variables={"environment": env})
        result = _client(svc).query(expand(panel["targets"][0]["rawSql"], ctx))
        rows = {r[0]: r[1:] for r in result.result_rows}
        assert rows["Agent workflow"][0] == RUNS and rows["Agent workflow"][2] == pytest.approx(AGENT_S * 1000)
        assert rows["fast_flow"][0] == RUNS and rows["fast_flow"][2] == pytest.approx(FLOW_S * 1000)


def test_costs_reports_the_same_request_latency(svc):
    result = CliRunner().invoke(main, ["costs", "--since", "1h", "--format", "json", "--endpoint",
                                       f"http://127.0.0.1:{svc.sql_port}", "--database", svc.database])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)["summary"]
    assert summary["requests"] == 2 * RUNS
    assert summary["workflow_latency_ms"]["p99"] == pytest.approx(AGENT_S * 1000, rel=0.01)
    table = CliRunner().invoke(main, ["costs", "--since", "1h", "--endpoint", f"http://127.0.0.1:{svc.sql_port}",
                                      "--database", svc.database])
    assert "latency per request" in table.output
