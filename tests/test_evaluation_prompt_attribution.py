"""Quality per prompt version when the prompt is named on another span than the one a result evaluates.

MLflow links a registry prompt to the root or a CHAIN step, never to the model calls under it;
OpenInference apps set `prompt.id` on their own span and the template version on the call; a trace's
overall score (OpenInference `trace.evaluations`, a user's feedback) lands on the root, above the calls
that ran under the prompt. The spans are those shapes recorded with the real OpenTelemetry SDK and sent
over OTLP/HTTP, the spans naming prompts last (a root is exported after its children), and some results
as log records that arrive before any span. `genai_evaluations_by_prompt`, the dashboards' quality
panels and the README's query give each result the prompt of the output it judges.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from grafana_macros import Context, expand
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context
from support import enc, linked, mlflow_span, sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc

ROOT = Path(__file__).resolve().parents[1]
S = 10**9
RESOURCE = {sc.SERVICE_NAME: "mlflow-app", sc.DEPLOYMENT_ENVIRONMENT_NAME: "production"}
VIEW = ("SELECT EvaluationName, PromptName, PromptVersion, PromptSource FROM genai_evaluations_by_prompt("
        "since = now() - INTERVAL 1 HOUR, until = now() + INTERVAL 1 MINUTE)")

# evaluation name → (prompt name, version, PromptSource) the view gives it
EXPECTED = {
    "call_under_root": ("answer_prompt", "1", "ancestor"),         # MLflow: prompt on the root
    "call_under_step": ("answer_prompt", "1", "ancestor"),         # two levels below it
    "own_prompt_wins": ("own_prompt", "9", "result"),              # the result names its prompt
    "root_names_it": ("answer_prompt", "1", "span"),               # a result on the (non-GenAI) root
    "root_two_prompts": ("", "", ""),                              # calls under two prompts: none
    "root_one_prompt": ("answer_prompt", "3", "descendants"),      # calls under one prompt (and one under none)
    "oi_call": ("weather_prompt", "v3", "ancestor"),               # OpenInference: prompt.id above, version on call
    "oi_trace": ("weather_prompt", "v3", "descendants"),           # OpenInference trace-scoped, on the root
}


def mlflow_call(tracer, parent, at, events=()):
    """An openai-autolog CHAT_MODEL span; `events` become gen_ai.evaluation.result span events on it."""
    span = mlflow_span(tracer, "Completions", parent, at, "CHAT_MODEL", **{
        "mlflow.message.format": enc("openai"), "mlflow.llm.model": enc("gpt-4o-mini"),
        "mlflow.chat.tokenUsage": enc({"input_tokens": 42, "output_tokens": 7, "total_tokens": 49})})
    for name in events:
        span.add_event(sc.EVENT_GEN_AI_EVALUATION_RESULT, score(name), timestamp=at + S // 2)
    span.end(end_time=at + S)
    return span


def score(name: str, **extra) -> dict:
    return {sc.GEN_AI_EVALUATION_NAME: name, sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.5, **extra}


def build(tracer, log_targets: dict) -> None:
    """The traces; `log_targets` gets the spans that results sent as log records evaluate."""
    now = time.time_ns() - 600 * S
    # MLflow, load_prompt in the root: a call right under it and one under a step that names nothing
    root = mlflow_span(tracer, "single", None, now, "UNKNOWN", **linked("answer_prompt", "1"))
    log_targets["call_under_root"] = log_targets["own_prompt_wins"] = mlflow_call(tracer, root, now + S)
    step = mlflow_span(tracer, "inner_step", root, now + 2 * S, "UNKNOWN")
    mlflow_call(tracer, step, now + 3 * S, events=["call_under_step"])
    step.end(end_time=now + 5 * S)
    root.end(end_time=now + 6 * S)
    log_targets["root_names_it"] = root

    # MLflow, two prompts, each loaded in its own step; the result is on the root
    root = mlflow_span(tracer, "two", None, now + 20 * S, "UNKNOWN")
    for i, (prompt, version) in enumerate((("classify_prompt", "1"), ("answer_prompt", "2"))):
        chain = mlflow_span(tracer, prompt, root, now + (21 + 3 * i) * S, "CHAIN", **linked(prompt, version))
        mlflow_call(tracer, chain, now + (22 + 3 * i) * S)
        chain.end(end_time=now + (23 + 3 * i) * S)
    root.end(end_time=now + 28 * S)
    log_targets["root_two_prompts"] = root

    # MLflow, one prompt loaded in a step, a guardrail call under no prompt; the result is a span event
    root = mlflow_span(tracer, "one", None, now + 30 * S, "UNKNOWN")
    chain = mlflow_span(tracer, "answer", root, now + 31 * S, "CHAIN", **linked("answer_prompt", "3"))
    mlflow_call(tracer, chain, now + 32 * S)
    chain.end(end_time=now + 33 * S)
    mlflow_call(tracer, root, now + 34 * S)
    root.add_event(sc.EVENT_GEN_AI_EVALUATION_RESULT, score("root_one_prompt"), timestamp=now + 35 * S)
    root.end(end_time=now + 36 * S)

    # OpenInference: prompt.id on the app's CHAIN span, the template version and a span-scoped evaluation
    # on the call, a trace-scoped evaluation on the root AGENT span
    agent = tracer.start_span("agent", start_time=now + 40 * S, attributes={
        "openinference.span.kind": "AGENT",
        "trace.evaluations.0.evaluation.name": "oi_trace", "trace.evaluations.0.evaluation.score": 0.5})
    chain = tracer.start_span("chain", context=set_span_in_context(agent), start_time=now + 41 * S, attributes={
        "openinference.span.kind": "CHAIN", "prompt.id": "weather_prompt"})
    call = tracer.start_span("ChatCompletion", context=set_span_in_context(chain), start_time=now + 42 * S,
                             attributes={"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini",
                                         "llm.provider": "openai", "llm.token_count.prompt": 42,
                                         "llm.token_count.completion": 7, "llm.prompt_template.version": "v3",
                                         "evaluations.0.evaluation.name": "oi_call",
                                         "evaluations.0.evaluation.score": 0.5})
    call.end(end_time=now + 43 * S)
    chain.end(end_time=now + 44 * S)
    agent.end(end_time=now + 45 * S)


LOG_RESULTS = {"call_under_root": {}, "root_names_it": {}, "root_two_prompts": {},
               "own_prompt_wins": {sc.GEN_AI_PROMPT_NAME: "own_prompt", sc.GEN_AI_PROMPT_VERSION: "9"}}


def send_log_results(url: str, targets: dict) -> None:
    provider = LoggerProvider(resource=Resource.create(RESOURCE))
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=url + "/v1/logs", timeout=10)))
    logger = provider.get_logger("tests.evaluator")
    for name, extra in LOG_RESULTS.items():
        span = targets[name]
        ctx = set_span_in_context(NonRecordingSpan(SpanContext(span.context.trace_id, span.context.span_id, True,
                                                               TraceFlags(1))))
        logger.emit(event_name=sc.EVENT_GEN_AI_EVALUATION_RESULT, timestamp=time.time_ns() - 300 * S, context=ctx,
                    attributes=score(name, **extra))
    provider.shutdown()


@pytest.fixture(scope="module")
def svc():
    db = unique_database("evalprompts")
    procs = {"genai_normalize": {}, "genai_cost": {}, "batch": {"timeout": "20ms"}}
    traces = {"receivers": ["otlp"], "processors": list(procs), "exporters": ["clickhouse"]}
    logs = dict(traces, processors=["batch"])
    running = start_service(service_config(db, processor_configs=procs, pipelines={"traces": traces, "logs": logs}), db)
    try:
        targets: dict = {}
        spans = sdk_spans(lambda tracer: build(tracer, targets), resource=RESOURCE)
        # the results sent as log records arrive first, before any span of their traces
        send_log_results(running.http_url, targets)
        running.wait_rows("SELECT 1 FROM genai_evaluations", len(LOG_RESULTS))
        names_prompt = ("mlflow.linkedPrompts", "prompt.id")
        ancestors = [s for s in spans if any(k in s.attributes for k in names_prompt)]
        rest = [s for s in spans if s not in ancestors]
        exporter = OTLPSpanExporter(endpoint=running.http_url + "/v1/traces")
        for batch in (rest, ancestors):
            assert exporter.export(batch) is SpanExportResult.SUCCESS
            running.wait_rows("SELECT 1 FROM otel_traces", len(rest) + (batch is ancestors) * len(ancestors))
        exporter.shutdown()
        running.wait_rows("SELECT 1 FROM genai_prompt_links", len(ancestors))
        running.wait_rows("SELECT 1 FROM genai_evaluations", len(EXPECTED))
        yield running
    finally:
        running.stop()


def test_each_result_gets_the_prompt_of_the_output_it_judges(svc):
    rows = svc.rows(VIEW)
    got = {name: (prompt, version, source) for name, prompt, version, source in rows}
    assert len(rows) == len(got) == len(EXPECTED)  # each result once
    assert got == EXPECTED
    # genai_evaluations_full is as it was: only what the result or its GenAI span named
    full = dict(svc.rows("SELECT EvaluationName, PromptName FROM genai_evaluations_full"))
    assert full["call_under_root"] == full["root_one_prompt"] == full["oi_call"] == ""
    assert full["own_prompt_wins"] == "own_prompt"


def test_a_window_that_leaves_the_results_out_has_none(svc):
    rows = svc.rows("SELECT count() FROM genai_evaluations_by_prompt(since = now() - INTERVAL 2 HOUR, "
                    "until = now() - INTERVAL 1 HOUR)")
    assert rows == [(0,)]


def _context(dashboard: dict) -> Context:
    now = int(time.time())
    variables = {v["name"]: ["$__all"] for v in dashboard["templating"]["list"]}
    return Context(from_s=now - 3600, to_s=now + 60, variables=variables)


def _panel(dashboard: dict, title: str) -> str:
    return next(p for p in dashboard["panels"] if p["title"] == title)["targets"][0]["rawSql"]


def test_dashboards_and_readme_show_quality_per_prompt_version_with_these_results(svc):
    versions = json.loads((ROOT / "deploy/grafana/dashboards/prompt-versions.json").read_text(encoding="utf-8"))
    evaluations = json.loads((ROOT / "deploy/grafana/dashboards/evaluations.json").read_text(encoding="utf-8"))
    client = svc.client()
    try:
        ctx = _context(versions)
        quality = client.query(expand(_panel(versions, "Quality by version"), ctx)).named_results()
        per_version = {(r["PromptName"], r["PromptVersion"], r["EvaluationName"]): r["evaluations"] for r in quality}
        expected = {(p, v, name): 1 for name, (p, v, _) in EXPECTED.items() if p}
        assert per_version == expected
        evaluator = next(v for v in versions["templating"]["list"] if v["name"] == "evaluator")
        names = {r[0] for r in client.query(expand(evaluator["query"], ctx)).result_rows}
        assert names == {name for name, (p, _, _) in EXPECTED.items() if p}
        over_time = _panel(versions, "Average ${evaluator} score over time by version")
        ctx.variables["evaluator"] = ["oi_trace"]
        assert [r[1] for r in client.query(expand(over_time, ctx)).result_rows] == ["weather_prompt@v3"]
        ctx = _context(evaluations)
        by_version = _panel(evaluations, "Average score over time by prompt version and evaluator")
        rows = {(r[1], r[2]) for r in client.query(expand(by_version, ctx)).result_rows}
        assert ("answer_prompt@3", "root_one_prompt") in rows and ("answer_prompt@1", "call_under_step") in rows
        lowest = client.query(expand(_panel(evaluations, "Lowest scores"), ctx)).named_results()
        assert {r["EvaluationName"]: r["PromptName"] for r in lowest}["call_under_root"] == "answer_prompt"
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        (sql,) = re.findall(r'spanhouse sql "(SELECT PromptVersion, RequestModel, EvaluationName.*?)"', readme, re.S)
        sql = sql.replace("'ticket_reply_prompt'", "'answer_prompt'")
        rows = {(r[0], r[2]): r[3] for r in client.query(sql).result_rows}
        assert rows == {("1", "call_under_root"): 1, ("1", "call_under_step"): 1, ("1", "root_names_it"): 1,
                        ("3", "root_one_prompt"): 1}
    finally:
        client.close()
