"""Every panel of the shipped Grafana dashboards runs against the embedded store filled by `spanhouse demo`.

Each panel's SQL (and each variable's query) is expanded with the ClickHouse data source's macros and
sent through the `sql_query` endpoint with clickhouse-connect, as Grafana reads the embedded store;
it must run and return rows with the columns the panel is built on. Runs once with every variable on
"All" and once with a concrete value.

Beside the demo's spans, the store holds one agent run whose right answers are known (environment
`known-answers`): the panels that count calls, tokens, costs and scores must give those answers.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import clickhouse_connect
import pytest
import yaml
from click.testing import CliRunner
from grafana_macros import ALL, Context, expand
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import NonRecordingSpan, set_span_in_context
from support import sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc
from spanhouse.cli import main
from spanhouse.modelcalls import model_call_sql

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
CH_UID = "spanhouse-clickhouse"
OP = sc.GenAiOperationNameValues
S = 10**9
# what a model call is, as the rollup and `spanhouse costs` decide it
MODEL_CALL = model_call_sql()
KNOWN_ENV, KNOWN_PROMPT, KNOWN_VERSION, KNOWN_RELEASE = "known-answers", "ticket_reply_prompt", "k1", "r1"

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
                                       "avg_cost_usd", "unpriced_calls", "p50_ms", "p95_ms", "error_rate",
                                       "avg_input_tokens", "avg_output_tokens"],
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
    ("spanhouse-cost", 7): ["TraceId", "service", "feature", "tenant", "model_calls", "tokens", "cost_usd",
                            "unpriced_calls", "started"],
    ("spanhouse-evaluations", 1): TIME + ["EvaluationName", "avg_score"],
    ("spanhouse-evaluations", 2): TIME + ["prompt_version", "EvaluationName", "avg_score"],
    ("spanhouse-evaluations", 3): ["EvaluationName", "evaluations", "avg_score", "min_score", "pass_rate"],
    ("spanhouse-evaluations", 4): ["RequestModel", "EvaluationName", "evaluations", "avg_score"],
    ("spanhouse-evaluations", 5): ["Timestamp", "EvaluationName", "ScoreValue", "ScoreLabel", "PromptName",
                                   "PromptVersion", "RequestModel", "Explanation", "TraceId"],
}


# answer_relevance of the two gpt-4o-mini calls, sent as gen_ai.evaluation.result log records parented to each
# call (the records carry no prompt or model): 0.2 and 0.4, average 0.3
LOG_SCORES = [{sc.GEN_AI_EVALUATION_NAME: "answer_relevance", sc.GEN_AI_EVALUATION_SCORE_VALUE: score}
              for score in (0.2, 0.4)]


def send_log_scores(endpoint: str, spans: list, resource: dict) -> int:
    """The answer_relevance log records of `LOG_SCORES`, one per gpt-4o-mini call, with the real SDK."""
    calls = sorted((s for s in spans if s.attributes.get(sc.GEN_AI_REQUEST_MODEL) == "gpt-4o-mini"),
                   key=lambda s: s.start_time)
    provider = LoggerProvider(resource=Resource.create(resource))
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=endpoint + "/v1/logs")))
    logger = provider.get_logger("tests.dashboards")
    for span, attrs in zip(calls, LOG_SCORES, strict=True):
        ctx = set_span_in_context(NonRecordingSpan(span.context))
        logger.emit(event_name=sc.EVENT_GEN_AI_EVALUATION_RESULT, timestamp=span.end_time, context=ctx,
                    attributes=attrs)
    provider.shutdown()
    return len(calls)


def known_agent_run(tracer, now: int) -> None:
    """An agent run inside a prompt block: the SDK stamps the prompt on every span of the block, and the
    agent span carries the usage it aggregated from its three model calls (two priced, one not), each
    of which is evaluated by two evaluators scoring 0.5 and 1.0."""
    prompt = {sc.GEN_AI_PROMPT_NAME: KNOWN_PROMPT, sc.GEN_AI_PROMPT_VERSION: KNOWN_VERSION}
    start = now - 30 * 60 * S
    agent = tracer.start_span("invoke_agent helper", start_time=start, attributes={
        sc.GEN_AI_OPERATION_NAME: OP.INVOKE_AGENT.value, sc.GEN_AI_AGENT_NAME: "helper", **prompt,
        sc.GEN_AI_USAGE_INPUT_TOKENS: 3000, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 400,
        sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: 100, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 300,
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 50})
    inside = set_span_in_context(agent)
    calls = [  # model, duration (s), usage, cost
        ("gpt-4o-mini", 1.0, {sc.GEN_AI_USAGE_INPUT_TOKENS: 1000, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 400,
                              sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100}, 0.01),
        ("gpt-4o-mini", 2.0, {sc.GEN_AI_USAGE_INPUT_TOKENS: 2000, sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: 100,
                              sc.GEN_AI_USAGE_OUTPUT_TOKENS: 200, sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 50}, 0.03),
        ("in-house-llm", 0.5, {}, None),
    ]
    at = start + S
    for model, seconds, usage, cost in calls:
        attrs = {sc.GEN_AI_OPERATION_NAME: OP.CHAT.value, sc.GEN_AI_PROVIDER_NAME: "openai",
                 sc.GEN_AI_REQUEST_MODEL: model, **prompt, **usage}
        if cost is not None:
            attrs[sc.SPANHOUSE_COST_USD] = cost
        span = tracer.start_span(f"chat {model}", context=inside, start_time=at, attributes=attrs)
        for name, score in (("citation_quality", 0.5), ("policy_compliance", 1.0)):
            span.add_event(sc.EVENT_GEN_AI_EVALUATION_RESULT, {sc.GEN_AI_EVALUATION_NAME: name,
                                                                sc.GEN_AI_EVALUATION_SCORE_VALUE: score})
        if model == "in-house-llm":  # its citation evaluator failed (ragas returns NaN then)
            span.add_event(sc.EVENT_GEN_AI_EVALUATION_RESULT, {sc.GEN_AI_EVALUATION_NAME: "citation_quality",
                                                                sc.GEN_AI_EVALUATION_SCORE_VALUE: float("nan")})
        elif cost == 0.01:  # OpenLIT's log_score inside the span: this event, and the same as a log record at once
            span.add_event(sc.EVENT_GEN_AI_EVALUATION_RESULT, LOG_SCORES[0], timestamp=at + int(seconds * S))
        # an evaluator that scores 1 or 0 without a label: safe on the priced calls, not on the other
        span.add_event(sc.EVENT_GEN_AI_EVALUATION_RESULT, {sc.GEN_AI_EVALUATION_NAME: "is_safe",
                                                            sc.GEN_AI_EVALUATION_SCORE_VALUE: int(cost is not None)})
        if cost is not None:  # a boolean evaluator: grounded on the first call, not on the second
            span.add_event(sc.EVENT_GEN_AI_EVALUATION_RESULT, {sc.GEN_AI_EVALUATION_NAME: "is_grounded",
                                                                sc.GEN_AI_EVALUATION_SCORE_VALUE: cost == 0.01})
        span.end(end_time=at + int(seconds * S))
        at += 3 * S
    tool = tracer.start_span("execute_tool search_docs", context=inside, start_time=at, attributes={
        sc.GEN_AI_OPERATION_NAME: OP.EXECUTE_TOOL.value, sc.GEN_AI_TOOL_NAME: "search_docs", **prompt})
    tool.end(end_time=at + 9 * S)
    agent.end(end_time=at + 10 * S)


# one call's faithfulness results in their own environment: a failure with a high score, a pass with a low
# one, a graded score; "Lowest scores" lists the failure first, then by score
RANKED_ENV = "ranked-scores"
RANKED_SCORES = [(0.3, "pass"), (0.6, ""), (0.9, "fail")]


def ranked_scores(tracer, now: int) -> None:
    span = tracer.start_span("chat gpt-4o-mini", start_time=now - 60 * S, attributes={
        sc.GEN_AI_OPERATION_NAME: OP.CHAT.value, sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini"})
    for score, label in RANKED_SCORES:
        attrs = {sc.GEN_AI_EVALUATION_NAME: "faithfulness", sc.GEN_AI_EVALUATION_SCORE_VALUE: score}
        span.add_event(sc.EVENT_GEN_AI_EVALUATION_RESULT, {**attrs, sc.GEN_AI_EVALUATION_SCORE_LABEL: label}
                       if label else attrs)
    span.end(end_time=now - 59 * S)


@pytest.fixture(scope="module")
def store():
    """A running spanhouse filled by `spanhouse demo`, and a clickhouse-connect client on its sql_query endpoint."""
    db = unique_database("grafana")
    pipeline = {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["clickhouse"]}
    svc = start_service(service_config(db, pipelines={"traces": pipeline, "logs": dict(pipeline)}), db)
    try:
        result = CliRunner().invoke(main, ["demo", "--endpoint", svc.http_url, "--traces", "40", "--seed", "11",
                                           "--environment", "staging"])
        assert result.exit_code == 0, result.output
        svc.wait_rows("SELECT DISTINCT TraceId FROM genai_spans", 40)
        resource = {"service.name": "known", "deployment.environment.name": KNOWN_ENV,
                    sc.SERVICE_VERSION: KNOWN_RELEASE}
        spans = sdk_spans(lambda tracer: known_agent_run(tracer, time.time_ns()), resource=resource)
        exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces")
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
        known = "SELECT 1 FROM genai_spans WHERE Environment = {env:String}"
        assert len(svc.wait_rows(known, len(spans), parameters={"env": KNOWN_ENV})) == len(spans)
        ranked = sdk_spans(lambda tracer: ranked_scores(tracer, time.time_ns()),
                           resource={"service.name": "ranked", "deployment.environment.name": RANKED_ENV})
        exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces")
        assert exporter.export(ranked) is SpanExportResult.SUCCESS
        exporter.shutdown()
        svc.wait_rows("SELECT 1 FROM genai_evaluations WHERE Environment = {env:String}", len(RANKED_SCORES),
                      parameters={"env": RANKED_ENV})
        sent = send_log_scores(svc.http_url, spans, resource)
        scored = "SELECT 1 FROM genai_evaluations WHERE Environment = {env:String} AND Source = 'log_record'"
        assert len(svc.wait_rows(scored, sent, parameters={"env": KNOWN_ENV})) == sent
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
    """One context with every variable on All (on its first value if it has no All), one with each
    variable on its last value."""
    now = int(time.time())
    base = Context(from_s=now - 6 * 3600, to_s=now + 600, interval_s=60)
    variables = [v for v in dashboard["templating"]["list"] if v["type"] == "query"]
    all_ctx = Context(base.from_s, base.to_s, base.interval_s, {})
    one_ctx = Context(base.from_s, base.to_s, base.interval_s, {})
    for v in variables:
        assert v["datasource"]["uid"] == CH_UID
        values = [r[0] for r in client.query(expand(v["query"], base)).result_rows]
        assert values, f"variable {v['name']} has no values"
        all_ctx.variables[v["name"]] = [ALL] if v["includeAll"] else [values[0]]
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


def panel_rows(client, uid: str, panel_id: int, interval_s: int = 3600, **variables: list[str]) -> list[dict]:
    """The rows of one panel over the last 6 hours, in `interval_s` buckets, on the known agent run
    (variables default to its environment and prompt, and the evaluator to All or, where the dashboard
    has no All for it, to citation_quality)."""
    (dashboard,) = [load(p) for p in DASHBOARDS if load(p)["uid"] == uid]
    (panel,) = [p for p in dashboard["panels"] if p["id"] == panel_id]
    now = int(time.time())
    (evaluator,) = [v for v in dashboard["templating"]["list"] if v["name"] == "evaluator"] or [{"includeAll": True}]
    defaults = {"environment": [KNOWN_ENV], "prompt": [KNOWN_PROMPT],
                "evaluator": [ALL] if evaluator["includeAll"] else ["citation_quality"]}
    ctx = Context(from_s=now - 6 * 3600, to_s=now + 600, interval_s=interval_s, variables={**defaults, **variables})
    result = client.query(expand(panel["targets"][0]["rawSql"], ctx))
    return [dict(zip(result.column_names, row)) for row in result.result_rows]


def _total(rows: list[dict], *columns: str) -> dict:
    """Sums of `columns` over time-series rows (the run may straddle an hour bucket)."""
    return {c: sum(r[c] for r in rows) for c in columns}


def test_model_call_panels_use_the_rollups_rule():
    """A model call is what the rollup and `spanhouse costs` call one, in every panel that asks."""
    for path in DASHBOARDS:
        for panel in load(path)["panels"]:
            sql = panel["targets"][0]["rawSql"]
            if "'chat'" in sql:
                assert MODEL_CALL in sql and sql.count("'chat'") == sql.count(MODEL_CALL), panel["title"]


def test_tokens_count_model_calls_only(store):
    """Agent and workflow spans carry the usage they aggregated from their calls: counting them again
    would double the tokens."""
    rows = panel_rows(store, "spanhouse-llm-overview", 4)
    assert _total(rows, *EXPECTED_COLUMNS[("spanhouse-llm-overview", 4)][1:]) == {
        "uncached_input_tokens": 600 + 2000, "cache_read_tokens": 400, "cache_write_tokens": 100,
        "output_tokens": 100 + 150, "reasoning_tokens": 50}
    (trace,) = panel_rows(store, "spanhouse-cost", 7)
    assert (trace["service"], trace["model_calls"], trace["tokens"]) == ("known", 3, 1100 + 2200)
    assert trace["cost_usd"] == pytest.approx(0.04)


def test_prompt_versions_count_model_calls_only(store):
    """The SDK stamps the prompt on every span of the block, the agent's and the tool's too: calls,
    latency and tokens per version are those of its model calls (1 s, 2 s and 0.5 s)."""
    (version,) = panel_rows(store, "spanhouse-prompt-versions", 1)
    assert (version["PromptVersion"], version["calls"], version["error_rate"]) == (KNOWN_VERSION, 3, 0)
    assert version["p50_ms"] == pytest.approx(1000) and 1000 < version["p95_ms"] <= 2000
    assert (version["avg_input_tokens"], version["avg_output_tokens"]) == (1000, 100)
    for row in panel_rows(store, "spanhouse-prompt-versions", 4):
        assert row["p95_ms"] <= 2000
    (release,) = panel_rows(store, "spanhouse-prompt-versions", 6)
    assert (release["Release"], release["calls"], release["error_rate"]) == (KNOWN_RELEASE, 3, 0)
    assert 1000 < release["p95_ms"] <= 2000


def test_readme_prompt_version_query_counts_model_calls_only(store):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (sql,) = re.findall(r'spanhouse sql "(SELECT PromptVersion, count\(\) AS calls.*?)"', readme, re.S)
    assert f"PromptName = '{KNOWN_PROMPT}'" in sql
    rows = {row[0]: row[1:] for row in store.query(sql).result_rows}
    calls, ms = rows[KNOWN_VERSION]
    assert calls == 3 and ms == pytest.approx((1000 + 2000 + 500) / 3)


def test_prompt_version_costs_average_priced_calls(store):
    """Of the three model calls, two are priced ($0.01 and $0.03) and one has no price, which is
    counted as unpriced and never taken as $0."""
    (version,) = panel_rows(store, "spanhouse-prompt-versions", 1)
    assert version["avg_cost_usd"] == pytest.approx(0.02) and version["unpriced_calls"] == 1
    (bucket,) = panel_rows(store, "spanhouse-prompt-versions", 5, interval_s=10**8)
    assert bucket["cost_per_call_usd"] == pytest.approx(0.02)
    (release,) = panel_rows(store, "spanhouse-prompt-versions", 6)
    assert release["avg_cost_usd"] == pytest.approx(0.02)
    by_model = panel_rows(store, "spanhouse-cost", 3)
    assert sum(r["unpriced_calls"] for r in by_model) == 1
    for r in by_model:  # per priced call: a model with no price shows none rather than $0
        priced = r["calls"] - r["unpriced_calls"]
        assert r["cost_per_call_usd"] == (pytest.approx(r["cost_usd"] / priced) if priced else None)
    (trace,) = panel_rows(store, "spanhouse-cost", 7)
    assert trace["unpriced_calls"] == 1  # its total leaves a call out, and says so


def test_scores_of_different_evaluators_are_never_averaged_together(store):
    """Each model call has a citation_quality score of 0.5 and a policy_compliance score of 1.0:
    a panel showing 0.75 mixed the two."""
    version = f"{KNOWN_PROMPT}@{KNOWN_VERSION}"
    for name, score in (("citation_quality", 0.5), ("policy_compliance", 1.0)):
        rows = panel_rows(store, "spanhouse-prompt-versions", 3, evaluator=[name])
        assert rows and all(r["avg_score"] == pytest.approx(score) for r in rows), rows
        assert {r["prompt_version"] for r in rows} == {version}
        (release,) = panel_rows(store, "spanhouse-prompt-versions", 6, evaluator=[name])
        assert release["avg_score"] == pytest.approx(score)
    rows = panel_rows(store, "spanhouse-evaluations", 2, interval_s=10**8)
    assert {(r["prompt_version"], r["EvaluationName"], round(r["avg_score"], 9)) for r in rows} == {
        (version, "citation_quality", 0.5), (version, "policy_compliance", 1.0), (version, "answer_relevance", 0.3),
        (version, "is_grounded", 0.5), (version, "is_safe", round(2 / 3, 9))}


def test_log_record_scores_count_once_under_their_calls_prompt_and_model(store):
    """The answer_relevance scores were sent as log records without prompt or model (0.2 and 0.4; the 0.2 also as
    a span event, as OpenLIT sends it): every panel attributes them to k1 and gpt-4o-mini, once each."""
    by_version = {r["EvaluationName"]: r for r in panel_rows(store, "spanhouse-prompt-versions", 2)}
    relevance = by_version["answer_relevance"]
    assert (relevance["evaluations"], relevance["PromptVersion"]) == (2, KNOWN_VERSION)
    assert by_version["answer_relevance"]["avg_score"] == pytest.approx(0.3)
    (over_time,) = panel_rows(store, "spanhouse-prompt-versions", 3, interval_s=10**8, evaluator=["answer_relevance"])
    assert over_time["avg_score"] == pytest.approx(0.3)
    (release,) = panel_rows(store, "spanhouse-prompt-versions", 6, evaluator=["answer_relevance"])
    assert release["avg_score"] == pytest.approx(0.3)
    by_model = {(r["RequestModel"], r["EvaluationName"]): r for r in panel_rows(store, "spanhouse-evaluations", 4)}
    assert set(by_model) == {("gpt-4o-mini", "answer_relevance"), ("gpt-4o-mini", "citation_quality"),
                             ("gpt-4o-mini", "policy_compliance"), ("gpt-4o-mini", "is_grounded"),
                             ("gpt-4o-mini", "is_safe"), ("in-house-llm", "citation_quality"),
                             ("in-house-llm", "policy_compliance"), ("in-house-llm", "is_safe")}
    assert by_model[("gpt-4o-mini", "answer_relevance")]["evaluations"] == 2
    assert by_model[("gpt-4o-mini", "answer_relevance")]["avg_score"] == pytest.approx(0.3)
    lowest = [r for r in panel_rows(store, "spanhouse-evaluations", 5) if r["EvaluationName"] == "answer_relevance"][0]
    assert (lowest["ScoreValue"], lowest["PromptVersion"], lowest["RequestModel"]) == (0.2, KNOWN_VERSION,
                                                                                       "gpt-4o-mini")


def test_lowest_scores_lists_failed_results_first(store):
    """The policy alert links to "Lowest scores": a result labelled fail comes first whatever its score,
    then the others from the lowest score."""
    rows = panel_rows(store, "spanhouse-evaluations", 5, environment=[RANKED_ENV])
    assert [(r["ScoreValue"], r["ScoreLabel"]) for r in rows] == [(0.9, "fail"), (0.3, "pass"), (0.6, "")]


def test_a_failed_evaluation_is_counted_but_not_averaged(store):
    """The in-house call's citation evaluator returned NaN: 4 citation results, averaging 0.5, not NaN."""
    by_evaluator = {r["EvaluationName"]: r for r in panel_rows(store, "spanhouse-evaluations", 3)}
    citation = by_evaluator["citation_quality"]
    assert citation["evaluations"] == 4 and citation["avg_score"] == pytest.approx(0.5)
    assert citation["min_score"] == pytest.approx(0.5)
    (row,) = [r for r in panel_rows(store, "spanhouse-evaluations", 4)
              if (r["RequestModel"], r["EvaluationName"]) == ("in-house-llm", "citation_quality")]
    assert (row["evaluations"], row["avg_score"]) == (2, pytest.approx(0.5))


def test_pass_rates_count_what_passed_as_the_alert_rules_do(store):
    """A result passes when labelled pass / true, or unlabelled and scored exactly 1; it fails when labelled
    fail / false, or unlabelled and scored 0 (spanhouse.scores.passed_sql). The boolean evaluator
    (true / false) passes one of two; the unlabelled 0/1 evaluator two of three; policy_compliance (1.0
    on every call) all; graded scores (0.5, 0.2, 0.4) and NaN are in no pass rate, rather than 0%."""
    for uid, panel in (("spanhouse-evaluations", 3), ("spanhouse-prompt-versions", 2)):
        rates = {row["EvaluationName"]: row["pass_rate"] for row in panel_rows(store, uid, panel)}
        assert rates == {"is_grounded": 0.5, "is_safe": pytest.approx(2 / 3), "policy_compliance": 1.0,
                         "citation_quality": None, "answer_relevance": None}, (uid, rates)


def test_single_value_variables_are_never_used_as_all():
    for path in DASHBOARDS:
        for v in load(path)["templating"]["list"]:
            if v["type"] == "query" and not v["includeAll"]:
                assert not v["multi"]
                for panel in load(path)["panels"]:
                    assert f"${v['name']})" not in panel["targets"][0]["rawSql"], "no $__conditionalAll on it"


def _overrides(panel: dict, column: str) -> dict:
    return {p["id"]: p["value"] for o in panel["fieldConfig"]["overrides"]
            if o["matcher"] == {"id": "byName", "options": column} for p in o["properties"]}


def test_rates_in_time_series_have_their_own_axis():
    """A 0..1 rate plotted with counts on one `short` axis is a flat line at the bottom: each rate
    column of a time series shows as a percentage on an axis of its own."""
    checked = 0
    for path in DASHBOARDS:
        dashboard = load(path)
        for panel in dashboard["panels"]:
            columns = EXPECTED_COLUMNS[(dashboard["uid"], panel["id"])]
            rates = [c for c in columns if c.endswith("_rate")]
            if panel["type"] != "timeseries" or not rates or len(rates) == len(columns) - 1:
                continue
            defaults = panel["fieldConfig"]["defaults"]
            for rate in rates:
                own = _overrides(panel, rate)
                assert own.get("unit") == "percentunit" and defaults.get("unit") != "percentunit", panel["title"]
                placement = defaults.get("custom", {}).get("axisPlacement", "auto")
                assert own.get("custom.axisPlacement", placement) != placement, panel["title"]
                checked += 1
    assert checked >= 1


def test_cost_breakdowns_count_model_calls(store):
    """The known run is 3 model calls costing $0.04 in all, beside an agent span and a tool span."""
    (feature,) = panel_rows(store, "spanhouse-cost", 4)
    (release,) = panel_rows(store, "spanhouse-cost", 6)
    assert (feature["Feature"], feature["calls"]) == ("", 3) and feature["cost_usd"] == pytest.approx(0.04)
    assert (release["Release"], release["calls"]) == (KNOWN_RELEASE, 3) and release["cost_usd"] == pytest.approx(0.04)
