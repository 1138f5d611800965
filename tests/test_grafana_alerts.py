"""The shipped Grafana alert rules (deploy/grafana/provisioning/alerting) against the embedded store.

Spans with known evaluation scores, latencies, tool failures and costs are sent with the OpenTelemetry
SDK over OTLP/HTTP; each rule's SQL then runs through the `sql_query` endpoint with clickhouse-connect
(as Grafana's ClickHouse data source reads the embedded store), must return a table Grafana can alert
on (one numeric column, the rest strings that become labels), and its threshold must fire for exactly
the label sets the data was built to trip.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import clickhouse_connect
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import NonRecordingSpan, Status, StatusCode, set_span_in_context
from support import sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc

ROOT = Path(__file__).resolve().parent.parent
ALERTING = ROOT / "deploy" / "grafana" / "provisioning" / "alerting" / "spanhouse.yaml"
DATASOURCES = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "spanhouse.yaml"
OP = sc.GenAiOperationNameValues
S = 10**9
HOUR = 3600 * S
DAY = 24 * HOUR

# rule uid → the label sets (its query's string columns, in order) whose value crosses the threshold
EXPECTED_FIRING = {
    "spanhouse-citation-quality": {("copilot", "production", "support", "reply_v2"),
                                   ("copilot", "production", "support", "reply_v3"),
                                   ("copilot", "production", "support", "reply_v4")},
    "spanhouse-workflow-latency": {("copilot", "production", "slow_flow")},
    "spanhouse-tool-errors": {("copilot", "production", "pay_invoice")},
    "spanhouse-policy-violations": {("copilot", "checkout"), ("copilot", "refunds"), ("copilot", "flaky_evaluator")},
    "spanhouse-feature-spend": {("copilot", "production", "summarize"), ("copilot", "production", "first_hour_of_day")},
}


def rules() -> list[dict]:
    doc = yaml.safe_load(ALERTING.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _span(tracer, name: str, start: int, duration_s: float, attrs: dict, error: bool = False, events=()):
    span = tracer.start_span(name, start_time=start, attributes=attrs)
    for event_attrs in events:
        span.add_event(sc.EVENT_GEN_AI_EVALUATION_RESULT, event_attrs, timestamp=start + S // 2)
    if error:
        span.set_status(Status(StatusCode.ERROR, "failed"))
    span.end(end_time=start + int(duration_s * S))


def _evaluation(name: str, score: float, label: str = "") -> dict:
    attrs = {sc.GEN_AI_EVALUATION_NAME: name, sc.GEN_AI_EVALUATION_SCORE_VALUE: score}
    if label:
        attrs[sc.GEN_AI_EVALUATION_SCORE_LABEL] = label
    return attrs


def _chat(feature: str, prompt: str = "", cost: float | None = None) -> dict:
    attrs = {sc.GEN_AI_OPERATION_NAME: OP.CHAT.value, sc.GEN_AI_PROVIDER_NAME: "openai",
             sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini", sc.SPANHOUSE_FEATURE: feature}
    if prompt:
        attrs[sc.GEN_AI_PROMPT_NAME] = prompt
    if cost is not None:
        attrs[sc.SPANHOUSE_COST_USD] = cost
    return attrs


def production(tracer, now: int) -> None:
    recent = now - 2 * 60 * S
    # citation quality over 10 minutes: reply_v2 averages 0.7 (fires), reply_v1 0.95, and draft_v1's
    # 0.1 comes from too few samples (4 < 5) to count
    # (reply_v2 also has a result its evaluator failed to compute, NaN: counted, never averaged)
    for prompt, score, n in (("reply_v2", 0.7, 6), ("reply_v1", 0.95, 6), ("draft_v1", 0.1, 4)):
        for i in range(n):
            _span(tracer, "chat gpt-4o-mini", recent + i * S, 1, _chat("support", prompt),
                  events=[_evaluation("citation_quality", score)]
                  + [_evaluation("citation_quality", float("nan"))] * (prompt == "reply_v2" and i == 0))
    # reply_v3's scores (0.6) arrive as log records parented to its calls (send_log_scores), carrying no prompt
    for i in range(6):
        _span(tracer, "chat gpt-4o-mini", recent + i * S, 1, _chat("support", "reply_v3"))
    # reply_v4 is named by the workflow the calls run in, not by the calls (as MLflow links a loaded prompt
    # to its step): their scores (0.5) count under it
    step = tracer.start_span("invoke_workflow answer", start_time=recent, attributes={
        sc.GEN_AI_OPERATION_NAME: OP.INVOKE_WORKFLOW.value, sc.GEN_AI_WORKFLOW_NAME: "answer",
        sc.GEN_AI_PROMPT_NAME: "reply_v4"})
    for i in range(6):
        call = tracer.start_span("chat gpt-4o-mini", context=set_span_in_context(step), start_time=recent + i * S,
                                 attributes=_chat("support"))
        call.add_event(sc.EVENT_GEN_AI_EVALUATION_RESULT, _evaluation("citation_quality", 0.5),
                       timestamp=recent + i * S + S // 2)
        call.end(end_time=recent + i * S + S)
    step.end(end_time=recent + 7 * S)
    # workflow p95 over 15 minutes: slow_flow takes 15 s, fast_flow 2 s
    for flow, seconds in (("slow_flow", 15), ("fast_flow", 2)):
        for i in range(10):
            _span(tracer, f"invoke_workflow {flow}", recent + i * S, seconds,
                  {sc.GEN_AI_OPERATION_NAME: OP.INVOKE_WORKFLOW.value, sc.GEN_AI_WORKFLOW_NAME: flow})
    # tool error rate over 15 minutes: pay_invoice 2 of 20 (10%), lookup_order 1 of 40 (2.5%)
    for tool, calls, errors in (("pay_invoice", 20, 2), ("lookup_order", 40, 1)):
        for i in range(calls):
            _span(tracer, f"execute_tool {tool}", recent + i * S // 10, 0.1,
                  {sc.GEN_AI_OPERATION_NAME: OP.EXECUTE_TOOL.value, sc.GEN_AI_TOOL_NAME: tool}, error=i < errors)
    # policy compliance over 1 hour: checkout 2 failures in 100 (fires), search 1 in 100 (exactly 1%:
    # not above), one of them labelled (in capitals for checkout, as some evaluators write it) and one only scored
    for feature, fails, label in (("checkout", 2, "FAIL"), ("search", 1, "fail")):
        for i in range(100):
            evaluation = _evaluation("policy_compliance", 1.0, "pass")
            if i < fails:
                evaluation = _evaluation("policy_compliance", 0.0, label if i == 0 else "")
            _span(tracer, "chat gpt-4o-mini", recent + i * S // 10, 0.1, _chat(feature), events=[evaluation])
    # a boolean evaluator (OpenLIT's log_score(name, False)): refunds 2 False in 100 fires too
    for i in range(100):
        evaluation = {sc.GEN_AI_EVALUATION_NAME: "policy_compliance", sc.GEN_AI_EVALUATION_SCORE_VALUE: i >= 2}
        _span(tracer, "chat gpt-4o-mini", recent + i * S // 10, 0.1, _chat("refunds"), events=[evaluation])
    # what neither passed nor failed (spanhouse.scores.passed_sql) is no sample: graded scores of 0.5 beside 100
    # passes are no violation (quiet), and 100 NaN results of a failing evaluator do not halve flaky_evaluator's
    # 2 failures in 100 (fires)
    for feature, extra in (("graded", _evaluation("policy_compliance", 0.5)),
                           ("flaky_evaluator", _evaluation("policy_compliance", float("nan")))):
        for i in range(100):
            passed = _evaluation("policy_compliance", 0.0 if feature == "flaky_evaluator" and i < 2 else 1.0)
            _span(tracer, "chat gpt-4o-mini", recent + i * S // 10, 0.1, _chat(feature), events=[passed, extra])
    # spend of the last 24 complete hours against the daily average of the (up to) 7 days before them,
    # both on whole hour buckets; the current hour, not complete yet, counts in neither
    hour = now // HOUR * HOUR
    day_start = hour - DAY
    spend = {
        # summarize 2.0 against 1.0 a day (fires); translate 1.2 against 1.0; brand_new has no history
        "summarize": ([1.0, 1.0], [1.0] * 7),
        "translate": ([1.2], [1.0] * 7),
        "brand_new": ([5.0], []),
        # 3 days old, 1.0 a day: its average is over the 2.5 days since it first appeared, not over 7 days
        "three_days_old": ([1.0], [1.0] * 3),
        # first seen 6 hours before the day: not a full earlier day to compare with
        "six_hours_old": ([1.0], []),
    }
    for feature, (today, daily) in spend.items():
        for cost in today:
            _span(tracer, "chat gpt-4o-mini", now - 3 * HOUR, 1, _chat(feature, cost=cost))
        for day, cost in enumerate(daily):
            _span(tracer, "chat gpt-4o-mini", now - DAY - 12 * HOUR - day * DAY, 1, _chat(feature, cost=cost))
    _span(tracer, "chat gpt-4o-mini", day_start - 6 * HOUR, 1, _chat("six_hours_old", cost=0.1))
    # hour buckets at the windows' edges, with 1.0 a day over the whole 7 days before
    for feature in ("first_hour_of_day", "current_hour"):
        for day in range(7):
            _span(tracer, "chat gpt-4o-mini", day_start - 7 * DAY + day * DAY, 1, _chat(feature, cost=1.0))
        _span(tracer, "chat gpt-4o-mini", now - 3 * HOUR, 1, _chat(feature, cost=0.9))
    # the hour that starts the day is part of the day (1.5: fires), not of the days before it
    _span(tracer, "chat gpt-4o-mini", day_start, 1, _chat("first_hour_of_day", cost=0.6))
    # spend in the current hour waits for the hour to end (0.9: quiet)
    _span(tracer, "chat gpt-4o-mini", hour, 1, _chat("current_hour", cost=5.0))

def send_log_scores(endpoint: str, spans: list, resource: dict) -> int:
    """A citation_quality score of 0.6 for each reply_v3 call, as a gen_ai.evaluation.result log record."""
    calls = [s for s in spans if s.attributes.get(sc.GEN_AI_PROMPT_NAME) == "reply_v3"]
    provider = LoggerProvider(resource=Resource.create(resource))
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=endpoint + "/v1/logs")))
    logger = provider.get_logger("tests.alerts")
    for span in calls:
        logger.emit(event_name=sc.EVENT_GEN_AI_EVALUATION_RESULT, timestamp=span.end_time,
                    context=set_span_in_context(NonRecordingSpan(span.context)),
                    attributes=_evaluation("citation_quality", 0.6))
    provider.shutdown()
    return len(calls)


def staging(tracer, now: int) -> None:
    """Policy failures outside production, which the safety rule must ignore (counted with production,
    they would make `search` fire)."""
    for i in range(100):
        _span(tracer, "chat gpt-4o-mini", now - 60 * S + i * S // 10, 0.1, _chat("search"),
              events=[_evaluation("policy_compliance", 0.0, "fail")])


def _outside_the_last_minute_of_an_hour() -> None:
    """The spend rule compares whole hour buckets counted from the query's hour: data built for this hour
    must be queried in it."""
    left = HOUR - time.time_ns() % HOUR
    if left < 60 * S:
        time.sleep(left / S + 1)


@pytest.fixture(scope="module")
def client():
    db = unique_database("alerts")
    pipeline = {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["clickhouse"]}
    svc = start_service(service_config(db, exporter={"ttl": "720h"},
                                       pipelines={"traces": pipeline, "logs": dict(pipeline)}), db)
    try:
        exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces")
        _outside_the_last_minute_of_an_hour()
        now = time.time_ns()  # when the spans are sent: the rules' windows end at the query's now()
        sent = scored = 0
        for build, env in ((production, "production"), (staging, "staging")):
            resource = {"service.name": "copilot", "deployment.environment.name": env}
            spans = sdk_spans(lambda tracer, build=build: build(tracer, now), resource=resource)
            assert exporter.export(spans) is SpanExportResult.SUCCESS
            sent += len(spans)
            scored += send_log_scores(svc.http_url, spans, resource)
        exporter.shutdown()
        assert len(svc.wait_rows("SELECT 1 FROM genai_spans", sent)) == sent
        assert scored and len(svc.wait_rows("SELECT 1 FROM genai_evaluations WHERE Source = 'log_record'",
                                            scored)) == scored
        yield clickhouse_connect.get_client(host="127.0.0.1", port=svc.sql_port, database=db, compress=False)
    finally:
        svc.stop()


def _threshold(rule: dict) -> tuple[str, dict]:
    by_ref = {d["refId"]: d for d in rule["data"]}
    condition = by_ref[rule["condition"]]["model"]
    assert condition["type"] == "threshold"
    (cond,) = condition["conditions"]
    return condition["expression"], cond["evaluator"]


def _fires(evaluator: dict, value: float | None) -> bool:
    (limit,) = evaluator["params"]
    if value is None:
        return False
    return {"gt": value > limit, "lt": value < limit}[evaluator["type"]]


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["uid"])
def test_rule_fires_for_exactly_the_built_cases(client, rule):
    query_ref, evaluator = _threshold(rule)
    (query,) = [d for d in rule["data"] if d["refId"] == query_ref]
    result = client.query(query["model"]["rawSql"])
    types = [t.name for t in result.column_types]
    numeric = [i for i, t in enumerate(types) if "String" not in t]
    assert len(numeric) == 1 and numeric[0] == len(types) - 1, f"one numeric column, last: {types}"
    assert result.result_rows, "the data was built to give this rule rows"
    firing = {tuple(row[:-1]) for row in result.result_rows if _fires(evaluator, row[-1])}
    assert firing == EXPECTED_FIRING[rule["uid"]], result.result_rows


def test_every_rule_is_covered_and_routable():
    doc = yaml.safe_load(ALERTING.read_text(encoding="utf-8"))
    assert doc["apiVersion"] == 1
    datasources = {d["uid"]: d for d in yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    uids = [r["uid"] for r in rules()]
    panels = {}
    for path in (ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        panels[dashboard["uid"]] = {panel["id"] for panel in dashboard["panels"]}
    assert len(uids) == len(set(uids)) and set(uids) == set(EXPECTED_FIRING)
    for group in doc["groups"]:
        assert group["folder"] and group["name"] and re.fullmatch(r"\d+[smh]", group["interval"])
    for rule in rules():
        refs = {d["refId"] for d in rule["data"]}
        assert rule["condition"] in refs
        query_ref, _ = _threshold(rule)
        for data in rule["data"]:
            model = data["model"]
            assert model["refId"] == data["refId"] and model["datasource"]["uid"] == data["datasourceUid"]
            if data["refId"] == query_ref:
                assert datasources[data["datasourceUid"]]["type"] == model["datasource"]["type"]
                assert model["format"] == 1, "table format: Grafana alerts on its numeric column"
                # Grafana interpolates environment variables in some provisioned fields; the SQL needs no `$`
                assert "$" not in model["rawSql"]
            else:
                assert data["datasourceUid"] == "__expr__" and model["expression"] == query_ref
        assert re.fullmatch(r"\d+[smhd]", rule["for"])
        assert rule["noDataState"] in ("OK", "NoData", "Alerting") and rule["execErrState"] in ("Error", "Alerting",
                                                                                              "OK")
        assert set(rule["labels"]) >= {"team", "severity"} and not any("$" in v for v in rule["labels"].values())
        assert set(rule["annotations"]) >= {"summary", "runbook_url", "response_time"}
        assert rule["panelId"] in panels[rule["dashboardUid"]], "links to a shipped dashboard panel"


def test_deploy_files_mount_the_alert_rules():
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    assert "./grafana/provisioning/alerting:/etc/grafana/provisioning/alerting:ro" in compose["services"]["grafana"][
        "volumes"]
    kustomization = yaml.safe_load((ROOT / "deploy" / "kustomization.yaml").read_text())
    maps = {m["name"]: m["files"] for m in kustomization["configMapGenerator"]}
    assert maps["grafana-alert-rules"] == ["grafana/provisioning/alerting/spanhouse.yaml"]
    (deployment,) = [d for d in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "grafana.yaml").read_text())
                     if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v.get("configMap", {}).get("name") for v in pod["volumes"]}
    assert mounts["alert-rules"] == "/etc/grafana/provisioning/alerting"
    assert volumes["alert-rules"] == "grafana-alert-rules"
