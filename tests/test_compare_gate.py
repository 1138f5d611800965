"""`spanhouse compare` and `spanhouse gate` against a real service: runs over one dataset sent with the
OpenTelemetry SDK's OTLP exporters (a baseline on prompt v17, a candidate on v18), evaluation results as
span events and as a log record sent after the run, reported costs; the CLI reads through sql_query."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import yaml
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context
from support import chdb_endpoint, free_port, sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc
from spanhouse.cli import main

MS = 1_000_000
EVAL = sc.EVENT_GEN_AI_EVALUATION_RESULT
DATASET = "support-golden"
PROMPT = "ticket_reply_prompt"
SIDES = {
    "baseline": {"version": "v17", "model": "gpt-4o", "release": "1.4.2", "experiment": "ci-base"},
    "candidate": {"version": "v18", "model": "gpt-4o-mini", "release": "1.5.0", "experiment": "ci-cand"},
}
# example → (policy_compliance, citation_quality, tone label, cost usd, workflow ms); citation None: sent later
BASELINE = {"ex-1": (1.0, 0.9, "pass", 0.010, 1000), "ex-2": (1.0, 0.8, "pass", 0.010, 2000),
            "ex-3": (1.0, 1.0, "fail", 0.020, 3000), "ex-4": (1.0, 0.9, "pass", 0.010, 500)}
CANDIDATE = {"ex-1": (1.0, 0.95, "pass", 0.011, 1500), "ex-2": (0.5, 0.8, "fail", 0.012, 2500),
             "ex-3": (1.0, None, "pass", 0.022, 9000), "ex-5": (1.0, 1.0, "pass", 0.010, 700)}
LATE_CITATION = 0.7  # candidate ex-3's citation_quality, sent as a log record after its run was stored
_PORT_BASE = int(os.environ.get("SPANHOUSE_TEST_PORT_BASE", "0"))


def _port(offset: int) -> int:
    return _PORT_BASE + offset if _PORT_BASE else free_port()


def _run(side: str, example: str, values: tuple, start_ns: int, dataset: str = DATASET,
         experiment: str | None = None):
    """One run of `example`: a workflow root carrying the dataset attributes, and a model call under it
    with the side's prompt version, model and reported cost, scored by span events."""
    s = SIDES[side]
    policy, citation, tone, cost, duration_ms = values

    def build(tracer):
        root = tracer.start_span("support_workflow", start_time=start_ns, attributes={
            sc.SPANHOUSE_DATASET_NAME: dataset, sc.SPANHOUSE_DATASET_EXAMPLE_ID: example,
            sc.SPANHOUSE_EXPERIMENT_NAME: experiment or s["experiment"]})
        call = tracer.start_span("chat " + s["model"], context=set_span_in_context(root), start_time=start_ns + MS,
                                 attributes={
                                     sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai",
                                     sc.GEN_AI_REQUEST_MODEL: s["model"], sc.GEN_AI_PROMPT_NAME: PROMPT,
                                     sc.GEN_AI_PROMPT_VERSION: s["version"], sc.GEN_AI_USAGE_INPUT_TOKENS: 100,
                                     sc.GEN_AI_USAGE_OUTPUT_TOKENS: 20, sc.SPANHOUSE_COST_USD: cost})
        scores = [("policy_compliance", policy, None), ("citation_quality", citation, None), ("tone", None, tone)]
        for name, value, label in scores:
            attrs = {sc.GEN_AI_EVALUATION_NAME: name}
            if value is not None:
                attrs[sc.GEN_AI_EVALUATION_SCORE_VALUE] = value
            if label is not None:
                attrs[sc.GEN_AI_EVALUATION_SCORE_LABEL] = label
            if value is not None or label is not None:
                call.add_event(EVAL, attrs, timestamp=start_ns + 2 * MS)
        call.end(end_time=start_ns + (duration_ms - 1) * MS)
        root.end(end_time=start_ns + duration_ms * MS)

    resource = {sc.SERVICE_NAME: "support-copilot", sc.SERVICE_VERSION: s["release"],
                sc.DEPLOYMENT_ENVIRONMENT_NAME: "ci"}
    return sdk_spans(build, resource)


def _send(svc, spans) -> None:
    exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces", timeout=10)
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()


def _send_score(svc, span, name: str, value: float) -> None:
    ctx = set_span_in_context(NonRecordingSpan(SpanContext(span.context.trace_id, span.context.span_id, True,
                                                           TraceFlags(1))))
    provider = LoggerProvider(resource=Resource.create({sc.SERVICE_NAME: "offline-evaluator"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(
        OTLPLogExporter(endpoint=svc.http_url + "/v1/logs", timeout=10)))
    provider.get_logger("tests.compare").emit(event_name=EVAL, timestamp=time.time_ns(), context=ctx, attributes={
        sc.GEN_AI_EVALUATION_NAME: name, sc.GEN_AI_EVALUATION_SCORE_VALUE: value})
    provider.shutdown()


def _hex(span) -> str:
    return format(span.context.trace_id, "032x")


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    database = unique_database("compare")
    pipeline = {"receivers": ["otlp"], "processors": ["genai_normalize", "genai_cost", "genai_redact", "batch"],
                "exporters": ["clickhouse"]}
    config = service_config(
        database,
        receiver={"protocols": {"grpc": {"endpoint": f"127.0.0.1:{_port(0)}"},
                                "http": {"endpoint": f"127.0.0.1:{_port(1)}"}}},
        extensions={"health_check": {"endpoint": f"127.0.0.1:{_port(2)}"},
                    "sql_query": {"endpoint": f"127.0.0.1:{_port(3)}"}},
        # metadata_only, the strictest policy: the dataset attributes are the application's ids and stay
        processor_configs={"genai_normalize": {}, "genai_cost": {}, "genai_redact": {"default_policy": "metadata_only"},
                           "batch": {"timeout": "20ms"}},
        pipelines={"traces": pipeline, "logs": {**pipeline, "processors": ["genai_redact", "batch"]}})
    running = start_service(config, database)
    path = tmp_path_factory.mktemp("compare") / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    running.config_path = str(path)
    running.traces = {}
    try:
        now = time.time_ns()
        # an earlier baseline run of ex-1, superseded by the later one: its citation score must not count
        _send(running, _run("baseline", "ex-1", (1.0, 0.1, "fail", 0.5, 60000), now - 7200 * 10**9,
                            experiment="ci-old"))
        for i, (side, runs) in enumerate((("baseline", BASELINE), ("candidate", CANDIDATE))):
            for j, (example, values) in enumerate(runs.items()):
                spans = _run(side, example, values, now - (1800 - 600 * i - 10 * j) * 10**9)
                _send(running, spans)
                running.traces[side, example] = spans
        expected = 1 + len(BASELINE) + len(CANDIDATE)
        running.wait_rows("SELECT DISTINCT TraceId FROM otel_traces WHERE SpanAttributes[{k:String}] = {d:String}",
                          expected, timeout=30, parameters={"k": sc.SPANHOUSE_DATASET_NAME, "d": DATASET})
        late = running.traces["candidate", "ex-3"]
        call = next(s for s in late if s.name.startswith("chat"))
        _send_score(running, call, "citation_quality", LATE_CITATION)
        running.wait_rows(f"SELECT 1 FROM genai_evaluations WHERE TraceId = '{_hex(call)}' AND "
                          "EvaluationName = 'citation_quality'", 1, timeout=30)
        yield running
    finally:
        running.stop()


def cli(svc, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def compare_json(svc, baseline: str, candidate: str, dataset: str = DATASET) -> dict:
    code, out = cli(svc, "compare", "--dataset", dataset, "--baseline", baseline, "--candidate", candidate,
                    "-c", svc.config_path, "--format", "json")
    assert code == 0, out
    return json.loads(out)


def test_compare_pairs_examples_and_gives_exact_quality_cost_and_latency(svc):
    data = compare_json(svc, f"{PROMPT}:v17", f"{PROMPT}:v18")
    assert data["examples"] == {"paired": 3, "only_baseline": 1, "only_candidate": 1}
    assert data["runs"]["superseded"] == {"baseline": 1, "candidate": 0}
    evals = {e["name"]: e for e in data["evaluations"]}
    assert set(evals) == {"citation_quality", "policy_compliance", "tone"}
    policy, citation, tone = evals["policy_compliance"], evals["citation_quality"], evals["tone"]
    assert (policy["kind"], policy["n"], policy["baseline_mean"]) == ("score", 3, 1.0)
    assert policy["candidate_mean"] == pytest.approx(2.5 / 3)
    # the latest baseline run of ex-1 (0.9, not the superseded 0.1); candidate ex-3's score arrived later
    assert citation["n"] == 3
    assert citation["baseline_mean"] == pytest.approx(0.9)
    assert citation["candidate_mean"] == pytest.approx((0.95 + 0.8 + LATE_CITATION) / 3)
    assert citation["delta"] == pytest.approx((0.95 + 0.8 + LATE_CITATION) / 3 - 0.9)
    assert (tone["kind"], tone["n"]) == ("label", 3)
    assert tone["baseline_mean"] == pytest.approx(2 / 3) and tone["candidate_mean"] == pytest.approx(2 / 3)
    cost = data["cost_per_example"]
    assert cost["baseline_mean_usd"] == pytest.approx(0.04 / 3)
    assert cost["candidate_mean_usd"] == pytest.approx(0.045 / 3)
    assert cost["delta_pct"] == pytest.approx(0.125)
    assert data["latency_ms"] == {"baseline": {"n": 3, "p50_ms": 2000.0, "p95_ms": 3000.0},
                                  "candidate": {"n": 3, "p50_ms": 2500.0, "p95_ms": 9000.0}}
    worst = [(r["example"], r["evaluation"]) for r in data["regressions"]]
    assert worst == [("ex-2", "tone"), ("ex-2", "policy_compliance"), ("ex-3", "citation_quality")]
    first = data["regressions"][0]
    assert first["baseline_trace_id"] == _hex(svc.traces["baseline", "ex-2"][0])
    assert first["candidate_trace_id"] == _hex(svc.traces["candidate", "ex-2"][0])


def test_compare_reads_the_embedded_store_directly_alike(svc):
    code, out = cli(svc, "compare", "--dataset", DATASET, "--baseline", f"{PROMPT}:v17", "--candidate",
                    f"{PROMPT}:v18", "--endpoint", chdb_endpoint(), "--database", svc.database, "--format", "json")
    assert code == 0, out
    assert json.loads(out)["examples"] == compare_json(svc, f"{PROMPT}:v17", f"{PROMPT}:v18")["examples"]


@pytest.mark.parametrize("kind", ["model", "release", "experiment"])
def test_every_selector_kind_picks_its_side(svc, kind):
    data = compare_json(svc, f"{kind}={SIDES['baseline'][kind]}", f"{kind}={SIDES['candidate'][kind]}")
    assert data["examples"]["paired"] == 3
    assert data["cost_per_example"]["delta_pct"] == pytest.approx(0.125)
    # the superseded run shares the model and release of the baseline, not its experiment
    assert data["runs"]["superseded"]["baseline"] == (0 if kind == "experiment" else 1)


def test_a_run_matching_both_selectors_counts_for_neither(svc):
    # the four current baseline runs have model gpt-4o and experiment ci-base; the superseded one, ci-old
    data = compare_json(svc, "model=gpt-4o", "experiment=ci-base")
    assert data["runs"]["ambiguous"] == 4 and data["runs"]["baseline"] == 1 and data["examples"]["paired"] == 0
    assert data["reason"] == (f"the candidate selector experiment=ci-base matched none of the 9 runs of '{DATASET}' "
                              "(apart from 4 runs that match both selectors and count for neither)")


def test_compare_table_names_the_worst_regressions_trace_ids(svc):
    code, out = cli(svc, "compare", "--dataset", DATASET, "--baseline", f"{PROMPT}:v17", "--candidate",
                    f"{PROMPT}:v18", "-c", svc.config_path)
    assert code == 0, out
    assert "3 paired · 1 only baseline · 1 only candidate" in out
    assert _hex(svc.traces["candidate", "ex-2"][0]) in out and "+12.5%" in out


def test_compare_says_why_nothing_pairs(svc):
    code, out = cli(svc, "compare", "--dataset", "support-goldn", "--baseline", f"{PROMPT}:v17", "--candidate",
                    f"{PROMPT}:v18", "-c", svc.config_path)
    assert code == 1 and f"'{DATASET}' (9 runs)" in out, out
    code, out = cli(svc, "compare", "--dataset", DATASET, "--baseline", f"{PROMPT}:v17", "--candidate",
                    f"{PROMPT}:v99", "-c", svc.config_path)
    assert code == 1 and "candidate selector ticket_reply_prompt:v99 matched none of the 9 runs" in out, out


GATE = {"dataset": DATASET, "baseline": f"{PROMPT}:v17", "release_candidate": f"{PROMPT}:v18",
        "min_scores": {"policy_compliance": 0.8, "citation_quality": 0.8}, "max_cost_increase": 0.2,
        "max_p95_latency_ms": 10000, "block_on_regression": True}


def gate(svc, tmp_path, config: dict | str, *args: str) -> tuple[int, str]:
    path = tmp_path / "gate.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return cli(svc, "gate", str(path), "-c", svc.config_path, *args)


def test_gate_passes_when_every_threshold_holds(svc, tmp_path):
    code, out = gate(svc, tmp_path, GATE)
    assert code == 0, out
    assert "gate passed: 4 checks" in out and "FAIL" not in out


def test_min_score_flag_sets_one_minimum_and_keeps_the_files_others(svc, tmp_path):
    code, out = gate(svc, tmp_path, GATE, "--min-score", "policy_compliance=0.9")
    assert code == 1, out
    failed = [line for line in out.splitlines() if line.startswith("  FAIL")]
    assert len(failed) == 1 and "policy_compliance" in failed[0], out
    assert any(line.startswith("  PASS") and "citation_quality" in line for line in out.splitlines()), out


@pytest.mark.parametrize("change, failing, example", [
    ({"min_scores": {"policy_compliance": 0.9}}, "policy_compliance", "ex-2"),
    ({"max_cost_increase": 0.10}, "cost per example", "ex-3"),
    ({"max_p95_latency_ms": 8000}, "workflow p95", "ex-3"),
], ids=["score", "cost", "latency"])
def test_gate_fails_on_each_crossed_threshold_naming_the_runs(svc, tmp_path, change, failing, example):
    code, out = gate(svc, tmp_path, {**GATE, **change})
    assert code == 1, out
    assert "\\x1b" not in out  # the marks' colours are not escaped as stored text is
    failed = [line for line in out.splitlines() if line.startswith("  FAIL") and failing in line]
    assert len(failed) == 1, out
    assert f"example {example}: candidate trace {_hex(svc.traces['candidate', example][0])}" in out
    code, out = gate(svc, tmp_path, {**GATE, **change, "block_on_regression": False})
    assert code == 0 and "advisory" in out and failed[0] in out, out
    code, _ = gate(svc, tmp_path, {**GATE, **change}, "--advisory")
    assert code == 0


def test_gate_json_reports_each_check(svc, tmp_path):
    code, out = gate(svc, tmp_path, {**GATE, "max_p95_latency_ms": 8000}, "--format", "json")
    data = json.loads(out)
    assert code == 1 and data["exit_code"] == 1 and data["paired_examples"] == 3
    checks = {c["check"]: c for c in data["checks"]}
    assert checks["max_p95_latency_ms"] == {
        "check": "max_p95_latency_ms", "name": "workflow p95", "value": 9000.0, "threshold": 8000.0, "passed": False,
        "n": 3, "runs": [{"example": "ex-3", "candidate_trace_id": _hex(svc.traces["candidate", "ex-3"][0]),
                          "baseline_trace_id": _hex(svc.traces["baseline", "ex-3"][0])}]}
    assert checks["max_cost_increase"]["value"] == pytest.approx(0.125) and checks["max_cost_increase"]["passed"]


@pytest.mark.parametrize("change, says", [
    ({"dataset": "nope"}, "no runs of dataset 'nope'"),
    ({"release_candidate": f"{PROMPT}:v99"}, "candidate selector ticket_reply_prompt:v99 matched none"),
    ({"baseline": "model=gpt-5"}, "baseline selector model=gpt-5 matched none"),
    ({"expected_examples": 4}, "expected 4 paired examples, found 3"),
    ({"min_scores": {"policy_complaince": 0.9}}, "no paired example has results of evaluation 'policy_complaince'"),
], ids=["dataset", "candidate", "baseline", "expected", "evaluation-name"])
def test_gate_cannot_decide_without_paired_data(svc, tmp_path, change, says):
    code, out = gate(svc, tmp_path, {**GATE, **change, "block_on_regression": False})
    assert code == 2 and says in out, out


@pytest.mark.parametrize("text, says", [
    ("dataset: [", "not valid YAML"),
    (yaml.safe_dump({**GATE, "max_cost_increse": 0.1}), "unknown keys max_cost_increse"),
    (yaml.safe_dump({k: v for k, v in GATE.items() if k != "release_candidate"}), "candidate: missing"),
    (yaml.safe_dump({**GATE, "max_p95_latency_ms": "8s"}), "max_p95_latency_ms: expected a number"),
    (yaml.safe_dump({**GATE, "baseline": "ticket_reply_prompt"}), "a prompt selector names a version"),
    (yaml.safe_dump({k: GATE[k] for k in ("dataset", "baseline", "release_candidate")}), "no check configured"),
], ids=["yaml", "unknown-key", "missing", "number", "selector", "no-checks"])
def test_gate_refuses_a_bad_config_with_exit_2(svc, tmp_path, text, says):
    code, out = gate(svc, tmp_path, text)
    assert code == 2 and says in out, out


def test_gate_waits_for_the_runs_of_a_ci_job(svc, tmp_path):
    """The gate starts before the candidate's spans are stored (still in the app's batch) and waits for
    the expected examples instead of deciding on what is there."""
    dataset = "ci-wait"
    now = time.time_ns()
    for example in ("w-1", "w-2"):
        _send(svc, _run("baseline", example, BASELINE["ex-1"], now - 60 * 10**9, dataset=dataset))
    svc.wait_rows("SELECT DISTINCT TraceId FROM otel_traces WHERE SpanAttributes[{k:String}] = {d:String}", 2,
                  timeout=30, parameters={"k": sc.SPANHOUSE_DATASET_NAME, "d": dataset})
    path = tmp_path / "gate.yaml"
    path.write_text(yaml.safe_dump({**GATE, "dataset": dataset, "expected_examples": 2}))
    proc = subprocess.Popen([sys.executable, "-m", "spanhouse.cli", "gate", str(path), "-c",
                             svc.config_path, "--wait", "60s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # the gate has read the store once and found the candidate missing
        assert b"0 of 2 expected paired examples stored; waiting up to 1m" in proc.stderr.readline()
        for example in ("w-1", "w-2"):
            _send(svc, _run("candidate", example, CANDIDATE["ex-1"], now - 30 * 10**9, dataset=dataset))
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, (out + err).decode()
    assert b"2 paired examples" in out
