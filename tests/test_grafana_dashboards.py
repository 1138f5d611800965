"""Every panel of the shipped Grafana dashboards runs against the embedded store filled by `spanhouse demo`.

Each panel's SQL (and each variable's query) is expanded with the ClickHouse data source's macros and
sent through the `sql_query` endpoint with clickhouse-connect, as Grafana reads the embedded store;
it must run and return rows with the columns the panel is built on. Runs once with every variable on
"All" and once with a concrete value.
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
from support import service_config, start_service, unique_database

from spanhouse.cli import main

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
CH_UID = "spanhouse-clickhouse"

TIME = ["time"]
EXPECTED_COLUMNS = {
    ("spanhouse-llm-overview", 1): TIME + ["Operation", "requests"],
    ("spanhouse-llm-overview", 2): TIME + ["errors", "error_rate"],
    ("spanhouse-llm-overview", 3): TIME + ["RequestModel", "cost_usd"],
    ("spanhouse-llm-overview", 4): TIME + ["uncached_input_tokens", "cache_read_tokens", "cache_write_tokens",
                                           "output_tokens", "reasoning_tokens"],
    ("spanhouse-llm-overview", 5): ["RequestModel", "calls", "p50_ms", "p95_ms", "p99_ms"],
    ("spanhouse-llm-overview", 6): ["WorkflowName", "runs", "p50_ms", "p95_ms", "p99_ms"],
    ("spanhouse-llm-overview", 7): TIME + ["RequestModel", "p95_ms"],
    ("spanhouse-llm-overview", 8): ["Timestamp", "ServiceName", "SpanName", "Operation", "ErrorType", "StatusMessage",
                                    "TraceId"],
    ("spanhouse-prompt-versions", 1): ["PromptName", "PromptVersion", "calls", "first_seen", "last_seen",
                                       "avg_cost_usd", "p50_ms", "p95_ms", "error_rate", "avg_input_tokens",
                                       "avg_output_tokens"],
    ("spanhouse-prompt-versions", 2): ["PromptName", "PromptVersion", "EvaluationName", "evaluations", "avg_score",
                                       "pass_rate"],
    ("spanhouse-prompt-versions", 3): TIME + ["prompt_version", "avg_score"],
    ("spanhouse-prompt-versions", 4): TIME + ["prompt_version", "p95_ms"],
    ("spanhouse-prompt-versions", 5): TIME + ["prompt_version", "cost_per_call_usd"],
    ("spanhouse-prompt-versions", 6): ["Release", "PromptName", "PromptVersion", "calls", "p95_ms", "avg_cost_usd",
                                       "error_rate", "avg_score"],
    ("spanhouse-cost", 1): TIME + ["Feature", "cost_usd"],
    ("spanhouse-cost", 2): ["cost_usd", "requests", "cost_per_request_usd"],
    ("spanhouse-cost", 3): ["Provider", "RequestModel", "calls", "input_tokens", "output_tokens", "cost_usd",
                            "cost_per_call_usd", "unpriced_calls"],
    ("spanhouse-cost", 4): ["Feature", "calls", "cost_usd"],
    ("spanhouse-cost", 5): ["TenantId", "requests", "cost_usd"],
    ("spanhouse-cost", 6): ["Environment", "Release", "calls", "cost_usd"],
    ("spanhouse-cost", 7): ["TraceId", "service", "feature", "tenant", "model_calls", "tokens", "cost_usd", "started"],
    ("spanhouse-evaluations", 1): TIME + ["EvaluationName", "avg_score"],
    ("spanhouse-evaluations", 2): TIME + ["prompt_version", "avg_score"],
    ("spanhouse-evaluations", 3): ["EvaluationName", "evaluations", "avg_score", "min_score", "pass_rate"],
    ("spanhouse-evaluations", 4): ["RequestModel", "EvaluationName", "evaluations", "avg_score"],
    ("spanhouse-evaluations", 5): ["Timestamp", "EvaluationName", "ScoreValue", "ScoreLabel", "PromptName",
                                   "PromptVersion", "RequestModel", "Explanation", "TraceId"],
}


@pytest.fixture(scope="module")
def store():
    """A running spanhouse filled by `spanhouse demo`, and a clickhouse-connect client on its sql_query endpoint."""
    db = unique_database("grafana")
    svc = start_service(service_config(db), db)
    try:
        result = CliRunner().invoke(main, ["demo", "--endpoint", svc.http_url, "--traces", "40", "--seed", "11",
                                           "--environment", "staging"])
        assert result.exit_code == 0, result.output
        svc.wait_rows("SELECT DISTINCT TraceId FROM genai_spans", 40)
        client = clickhouse_connect.get_client(host="127.0.0.1", port=svc.sql_port, database=db, compress=False)
        yield client
        client.close()
    finally:
        svc.stop()


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_every_panel_is_covered():
    panels = {(load(p)["uid"], panel["id"]) for p in DASHBOARDS for panel in load(p)["panels"]}
    assert {load(p)["uid"] for p in DASHBOARDS} == {"spanhouse-llm-overview", "spanhouse-prompt-versions",
                                                     "spanhouse-cost", "spanhouse-evaluations"}
    assert panels == set(EXPECTED_COLUMNS)


def contexts(client, dashboard: dict) -> list[Context]:
    """One context with every variable on All, one with each variable on its last value."""
    now = int(time.time())
    base = Context(from_s=now - 6 * 3600, to_s=now + 600, interval_s=60)
    variables = [v for v in dashboard["templating"]["list"] if v["type"] == "query"]
    all_ctx = Context(base.from_s, base.to_s, base.interval_s, {v["name"]: [ALL] for v in variables})
    one_ctx = Context(base.from_s, base.to_s, base.interval_s, {})
    for v in variables:
        assert v["datasource"]["uid"] == CH_UID
        values = [r[0] for r in client.query(expand(v["query"], base)).result_rows]
        assert values, f"variable {v['name']} has no values"
        one_ctx.variables[v["name"]] = [values[-1]]
    return [all_ctx, one_ctx]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_panels_run_and_return_rows(store, path):
    dashboard = load(path)
    for ctx in contexts(store, dashboard):
        for panel in dashboard["panels"]:
            (target,) = panel["targets"]
            assert target["datasource"]["uid"] == CH_UID and panel["datasource"]["uid"] == CH_UID
            sql = expand(target["rawSql"], ctx)
            result = store.query(sql)
            where = f"{dashboard['uid']} panel {panel['id']} ({panel['title']}) with {ctx.variables}"
            assert list(result.column_names) == EXPECTED_COLUMNS[(dashboard["uid"], panel["id"])], where
            assert result.result_rows, f"{where} returned no rows:\n{sql}"
            if target["format"] == 0:  # time series: the first column is the time bucket
                assert result.column_names[0] == "time"


def test_trace_tables_link_to_the_trace_views():
    linked = 0
    for path in DASHBOARDS:
        for panel in load(path)["panels"]:
            if "TraceId" not in EXPECTED_COLUMNS[(load(path)["uid"], panel["id"])]:
                continue
            links = [link for o in panel["fieldConfig"]["overrides"] if o["matcher"]["options"] == "TraceId"
                     for p in o["properties"] if p["id"] == "links" for link in p["value"]]
            assert any(link["url"] == "${jaeger_url}/trace/${__value.raw}" for link in links), panel["title"]
            assert any(link.get("internal", {}).get("datasourceUid") == "spanhouse-jaeger" for link in links)
            linked += 1
    assert linked >= 3


def test_provisioning_files():
    ds = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/spanhouse.yaml").read_text())
    assert ds["apiVersion"] == 1
    by_uid = {d["uid"]: d for d in ds["datasources"]}
    ch = by_uid[CH_UID]
    assert ch["type"] == "grafana-clickhouse-datasource" and ch["jsonData"]["protocol"] == "http"
    traces = ch["jsonData"]["traces"]
    assert (traces["defaultTable"], traces["otelEnabled"], traces["defaultDatabase"]) == ("otel_traces", True, "otel")
    assert by_uid["spanhouse-jaeger"]["type"] == "jaeger"
    dash = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/spanhouse.yaml").read_text())
    (provider,) = dash["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "/var/lib/grafana/dashboards/spanhouse"
