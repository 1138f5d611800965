"""Datasets against a real service on 127.0.0.1: `spanhouse dataset` sends examples as OTLP log records
through the logs pipeline into genai_dataset_examples (embedded ClickHouse) and reads them back through
the sql_query endpoint; spans come from the real OpenTelemetry SDK over OTLP/HTTP."""

from __future__ import annotations

import json
import time

import orjson
import pytest
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context
from support import chdb_endpoint, sdk_spans, service_config, start_service, unique_database

from spanhouse import sdk
from spanhouse import semconv as sc
from spanhouse.cli import main
from spanhouse.config import Duration
from spanhouse.receivers.auth import hash_token
from spanhouse.store import StoreSettings, TableEngine, connect, create_schema, quote_ident, render_schema

EMAIL = "jane.doe@example.com"
REDACT = {"genai_redact": {"rules": [{"when": {sc.DEPLOYMENT_ENVIRONMENT_NAME: "staging"}, "policy": "full"},
                                     {"when": {sc.DEPLOYMENT_ENVIRONMENT_NAME: "kyc"}, "policy": "metadata_only"}]},
          "batch": {"timeout": "20ms"}}


def _pipelines(auth: dict | None = None) -> dict:
    return {"traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["clickhouse"]},
            "logs": {"receivers": ["otlp"], "processors": ["genai_redact", "batch"], "exporters": ["clickhouse"]}}


@pytest.fixture(scope="module")
def svc():
    database = unique_database("datasets")
    running = start_service(service_config(database, processor_configs=REDACT, pipelines=_pipelines()), database)
    yield running
    running.stop()


def run(svc, *args: str, env: dict | None = None):
    """`spanhouse dataset ARGS` reading through the service's sql_query endpoint and sending to its receiver."""
    reading = ("create", "export", "list", "show", "delete")
    where = ["--endpoint", f"http://127.0.0.1:{svc.sql_port}", "--database", svc.database] if args[0] in reading else []
    sending = ["--otlp-endpoint", svc.http_url] if args[0] in ("create", "import", "delete") else []
    return CliRunner().invoke(main, ["dataset", *args, *where, *sending], env=env, terminal_width=250)


def current(svc, dataset: str, expect: int) -> dict[str, tuple]:
    rows = svc.wait_rows("SELECT ExampleId, Input, ExpectedOutput, Metadata, SourceTraceId, SourceSpanId, TenantId "
                         "FROM genai_dataset_examples_current WHERE DatasetName = {d:String}", expect,
                         parameters={"d": dataset})
    return {r[0]: r[1:] for r in rows}


def messages(text: str) -> str:
    return json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}])


def send_spans(svc, spans) -> None:
    exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces", timeout=10)
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()


def write_jsonl(path, objects) -> str:
    path.write_text("".join(json.dumps(o) + "\n" for o in objects))
    return str(path)


# --- create --from-traces ------------------------------------------------------------------


def _mixed_traces(feature: str) -> tuple[dict[str, tuple[str, str]], list]:
    """A trace set where some model calls failed and others did not; returns (name → (trace id, span id), spans)."""
    ids: dict[str, tuple[str, str]] = {}
    now = time.time_ns() - 60 * 10**9

    def build(tracer):
        def call(name, parent=None, feat=feature, status=None, score=None, label=None, content=True, op="chat"):
            attrs = {sc.GEN_AI_OPERATION_NAME: op, sc.GEN_AI_PROVIDER_NAME: "openai",
                     sc.GEN_AI_REQUEST_MODEL: "gpt-4o", sc.SPANHOUSE_FEATURE: feat,
                     sc.GEN_AI_USAGE_INPUT_TOKENS: 10, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5}
            if op == "execute_tool":
                attrs = {sc.GEN_AI_OPERATION_NAME: op, sc.GEN_AI_TOOL_NAME: "lookup", sc.SPANHOUSE_FEATURE: feat}
            if content:
                attrs[sc.GEN_AI_INPUT_MESSAGES] = messages(f"question {name}")
            ctx = set_span_in_context(parent) if parent is not None else None
            span = tracer.start_span(f"{op} {name}", context=ctx, kind=SpanKind.CLIENT, start_time=now,
                                     attributes=attrs)
            if score is not None or label is not None:
                event = {sc.GEN_AI_EVALUATION_NAME: "citation_quality" if score is not None else "policy"}
                if score is not None:
                    event[sc.GEN_AI_EVALUATION_SCORE_VALUE] = score
                if label is not None:
                    event[sc.GEN_AI_EVALUATION_SCORE_LABEL] = label
                span.add_event(sc.EVENT_GEN_AI_EVALUATION_RESULT, event, timestamp=now + 1000)
            if status:
                span.set_status(Status(StatusCode.ERROR, "boom"))
            span.end(end_time=now + 10**8)
            ids[name] = (format(span.get_span_context().trace_id, "032x"), format(span.get_span_context().span_id,
                                                                                  "016x"))
            return span

        root = tracer.start_span("workflow", start_time=now - 1000)
        call("errored", root, status=True)
        call("low_score", root, score=0.41)
        call("high_score", root, score=0.97)
        call("labelled_fail", root, label="fail")
        call("labelled_pass", root, label="pass")
        call("tool_error", root, status=True, op="execute_tool")
        call("other_feature", root, feat=feature + "-other", status=True)
        call("no_content", root, status=True, content=False)
        root.end(end_time=now + 10**9)

    spans = sdk_spans(build, {sc.SERVICE_NAME: "support-bot", sc.DEPLOYMENT_ENVIRONMENT_NAME: "staging"})
    return ids, spans


def test_create_from_traces_adds_exactly_the_failed_calls_once(svc):
    ids, spans = _mixed_traces("create-test")
    send_spans(svc, spans)
    svc.wait_rows("SELECT 1 FROM genai_evaluations WHERE Feature = 'create-test'", 3)
    svc.wait_rows("SELECT 1 FROM genai_spans WHERE Feature = 'create-test'", 7)

    args = ["create", "failed", "--from-traces", "--errors", "--score-below", "citation_quality=0.85",
            "--label", "fail", "--feature", "create-test", "--since", "1h"]
    result = run(svc, *args)
    assert result.exit_code == 0, result.output
    assert "added 3 example(s) to dataset 'failed': 3 failed call(s) selected" in result.output
    stored = current(svc, "failed", 3)
    expected = {f"{t}:{s}": name for name, (t, s) in ids.items() if name in ("errored", "low_score", "labelled_fail")}
    assert set(stored) == set(expected)
    for example_id, name in expected.items():
        input_, expected_output, metadata, trace_id, span_id, _ = stored[example_id]
        assert orjson.loads(input_) == {"messages": json.loads(messages(f"question {name}"))}
        assert expected_output == "" and (trace_id, span_id) == ids[name]
        assert metadata["feature"] == "create-test" and metadata["environment"] == "staging"
    assert stored[f"{ids['low_score'][0]}:{ids['low_score'][1]}"][2]["failed"] == "citation_quality=0.41"

    # the same spans again: nothing is sent, and an example edited since keeps its edit
    again = run(svc, *args)
    assert again.exit_code == 0, again.output
    assert "added 0 example(s) to dataset 'failed': 3 failed call(s) selected, 3 already in it" in again.output
    only_scores = run(svc, "create", "failed", "--from-traces", "--score-below", "citation_quality=0.85",
                      "--feature", "create-test", "--since", "1h")
    assert "added 0 example(s) to dataset 'failed': 1 failed call(s) selected, 1 already in it" in only_scores.output
    assert svc.rows("SELECT count() FROM genai_dataset_examples WHERE DatasetName = 'failed'") == [(3,)]

    shown = run(svc, "show", "failed")
    assert shown.exit_code == 0 and ids["errored"][0] in shown.output and "spanhouse trace" in shown.output


def _runs_failing_at_a_step(feature: str) -> tuple[dict[str, tuple[str, str]], list]:
    """Two agent runs whose model calls succeed; in one a tool and the validator after it fail."""
    ids: dict[str, tuple[str, str]] = {}
    now = time.time_ns() - 60 * 10**9

    def build(tracer):
        for run_name, failing in (("failed_run", True), ("good_run", False)):
            root = tracer.start_span("invoke_workflow support", start_time=now, attributes={
                sc.GEN_AI_OPERATION_NAME: "invoke_workflow", sc.SPANHOUSE_FEATURE: feature})
            ctx = set_span_in_context(root)
            call = tracer.start_span("chat gpt-4o", context=ctx, kind=SpanKind.CLIENT, start_time=now, attributes={
                sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai",
                sc.GEN_AI_REQUEST_MODEL: "gpt-4o", sc.SPANHOUSE_FEATURE: feature,
                sc.GEN_AI_USAGE_INPUT_TOKENS: 10, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5,
                sc.GEN_AI_INPUT_MESSAGES: messages(f"question {run_name}")})
            call.end(end_time=now + 10**8)
            for name, op in (("execute_tool lookup_order", "execute_tool"), ("validate_reply", None)):
                step = tracer.start_span(name, context=ctx, start_time=now + 10**8, attributes={
                    sc.GEN_AI_OPERATION_NAME: op, sc.GEN_AI_TOOL_NAME: "lookup_order"} if op else {})
                if failing:
                    step.set_status(Status(StatusCode.ERROR, "boom"))
                step.end(end_time=now + 2 * 10**8)
            root.end(end_time=now + 3 * 10**8)
            context = call.get_span_context()
            ids[run_name] = (format(context.trace_id, "032x"), format(context.span_id, "016x"))

    return ids, sdk_spans(build, {sc.SERVICE_NAME: "support-bot", sc.DEPLOYMENT_ENVIRONMENT_NAME: "staging"})


def test_trace_errors_selects_the_calls_of_runs_that_failed_at_a_tool_or_validator(svc):
    ids, spans = _runs_failing_at_a_step("trace-errors-test")
    send_spans(svc, spans)
    svc.wait_rows("SELECT 1 FROM genai_spans WHERE Feature = 'trace-errors-test'", 4)

    scope = ["--feature", "trace-errors-test", "--since", "1h"]
    by_call = run(svc, "create", "failed-runs", "--from-traces", *scope)
    assert by_call.exit_code == 0, by_call.output
    assert "0 failed call(s) selected" in by_call.output and "add --trace-errors" in by_call.output

    by_trace = run(svc, "create", "failed-runs", "--from-traces", "--trace-errors", *scope)
    assert by_trace.exit_code == 0, by_trace.output
    assert "added 1 example(s) to dataset 'failed-runs': 1 failed call(s) selected" in by_trace.output
    stored = current(svc, "failed-runs", 1)
    trace_id, span_id = ids["failed_run"]
    assert list(stored) == [f"{trace_id}:{span_id}"]
    assert stored[f"{trace_id}:{span_id}"][2]["failed"] == "error in trace: execute_tool lookup_order, validate_reply"


def test_create_needs_from_traces_and_well_formed_criteria(svc):
    assert run(svc, "create", "x").exit_code == 2
    bad = run(svc, "create", "x", "--from-traces", "--score-below", "citation_quality")
    assert bad.exit_code == 2 and "EVALUATION=THRESHOLD" in bad.output


def test_no_service_listening_is_named(svc, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"input": "hi"}])
    result = CliRunner().invoke(main, ["dataset", "import", "d", path, "--otlp-endpoint", "127.0.0.1:1"])
    assert result.exit_code == 1 and "nothing answers at 127.0.0.1:1" in result.output
    assert "Traceback" not in result.output


# --- import, export, update, delete --------------------------------------------------------


def test_import_export_round_trip_then_update_and_delete(svc, tmp_path):
    trace_id, span_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    examples = [
        {"id": "ex-1", "input": {"question": "Where is my order?"}, "expected_output": "In transit.",
         "metadata": {"tag": "shipping", "priority": 2}},
        {"input": [{"role": "user", "parts": [{"type": "text", "content": "Refund?"}]}],
         "source": {"trace_id": trace_id.upper(), "span_id": span_id}},
        {"input": "plain text input"},
    ]
    result = run(svc, "import", "golden", write_jsonl(tmp_path / "in.jsonl", examples), "--environment", "staging")
    assert result.exit_code == 0, result.output
    assert "sent 3 example(s) to dataset 'golden'" in result.output
    current(svc, "golden", 3)

    out = tmp_path / "out.jsonl"
    exported = run(svc, "export", "golden", "-o", str(out))
    assert exported.exit_code == 0, exported.output
    lines = {o["id"]: o for o in map(json.loads, out.read_text().splitlines())}
    assert lines["ex-1"] == {"id": "ex-1", "input": {"question": "Where is my order?"},
                             "expected_output": "In transit.", "metadata": {"tag": "shipping", "priority": "2"},
                             "source": None}
    from_span = lines[f"{trace_id}:{span_id}"]
    assert from_span["source"] == {"trace_id": trace_id, "span_id": span_id}
    assert from_span["input"] == examples[1]["input"] and from_span["expected_output"] is None
    (plain_id,) = [i for i in lines if i.startswith("sha256:")]
    assert lines[plain_id]["input"] == "plain text input"

    # the exported file imports as it is (same ids: nothing new), with one expected output filled in
    lines[plain_id]["expected_output"] = {"answer": 42}
    again = run(svc, "import", "golden", write_jsonl(tmp_path / "edited.jsonl", lines.values()),
                "--environment", "staging")
    assert again.exit_code == 0, again.output
    deadline = time.monotonic() + 10
    while current(svc, "golden", 3)[plain_id][1] == "" and time.monotonic() < deadline:
        time.sleep(0.05)
    stored = current(svc, "golden", 3)
    assert len(stored) == 3 and orjson.loads(stored[plain_id][1]) == {"answer": 42}

    deleted = run(svc, "delete", "golden", "ex-1")
    assert deleted.exit_code == 0, deleted.output
    deadline = time.monotonic() + 10
    while "ex-1" in current(svc, "golden", 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(current(svc, "golden", 2)) == {plain_id, f"{trace_id}:{span_id}"}
    unknown = run(svc, "delete", "golden", "ex-1")
    assert unknown.exit_code == 1 and "has no example 'ex-1'" in unknown.output

    listed = run(svc, "list")
    assert listed.exit_code == 0 and "golden" in listed.output


def test_import_replace_deletes_the_lines_dropped_from_the_file(svc, tmp_path):
    examples = [{"id": f"r-{i}", "input": f"question {i}"} for i in range(3)]
    assert run(svc, "import", "replaced", write_jsonl(tmp_path / "all.jsonl", examples)).exit_code == 0
    current(svc, "replaced", 3)
    edited = write_jsonl(tmp_path / "edited.jsonl", [examples[0], {"id": "r-new", "input": "added by hand"}])
    reading = ["--endpoint", f"http://127.0.0.1:{svc.sql_port}", "--database", svc.database]

    added = run(svc, "import", "replaced", edited)   # without --replace a dropped line stays
    assert added.exit_code == 0, added.output
    assert set(current(svc, "replaced", 4)) == {"r-0", "r-1", "r-2", "r-new"}

    replaced = run(svc, "import", "replaced", edited, "--replace", *reading)
    assert replaced.exit_code == 0, replaced.output
    assert "sent 2 example(s)" in replaced.output and "deleted 2 not in" in replaced.output
    deadline = time.monotonic() + 10
    while len(current(svc, "replaced", 2)) > 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(current(svc, "replaced", 2)) == {"r-0", "r-new"}


def test_a_bad_line_is_named_and_nothing_of_the_dataset_is_lost(svc, tmp_path):
    good = [{"id": "a", "input": "first", "expected_output": "one"}, {"id": "b", "input": "second"}]
    assert run(svc, "import", "careful", write_jsonl(tmp_path / "good.jsonl", good)).exit_code == 0
    current(svc, "careful", 2)

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "input": "changed"}) + "\n{not json\n\n"
                   + json.dumps({"id": "c", "expected_output": "x"}) + "\n"
                   + json.dumps({"id": "a", "input": 1}) + "\n")
    result = run(svc, "import", "careful", str(bad))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "has 3 bad line(s); nothing was sent" in result.output
    assert "line 2: not JSON" in result.output and 'line 4: "input" is missing' in result.output
    assert "line 5: id 'a' is already on line 1" in result.output

    # a later import lands after anything the bad one could have sent: the first two are as they were
    more = write_jsonl(tmp_path / "more.jsonl", [{"id": "d", "input": "x"}])
    assert run(svc, "import", "careful", more).exit_code == 0
    stored = current(svc, "careful", 3)
    assert set(stored) == {"a", "b", "d"}
    assert (stored["a"][0], stored["a"][1]) == ('"first"', '"one"')


def test_a_dataset_that_does_not_exist_is_named(svc):
    result = run(svc, "export", "nope-no-such-dataset")
    assert result.exit_code == 1 and "there is no dataset 'nope-no-such-dataset'" in result.output


# --- redaction and tenants -----------------------------------------------------------------


@pytest.mark.parametrize(("environment", "kept"), [("staging", "full"), ("", "masked"), ("kyc", "dropped")])
def test_the_logs_pipelines_redaction_applies_to_examples(svc, tmp_path, environment, kept):
    name = f"pii-{environment or 'none'}"
    path = write_jsonl(tmp_path / "pii.jsonl", [{"id": "p", "input": f"mail {EMAIL}", "metadata": {"k": "v"}}])
    args = ["import", name, path] + (["--environment", environment] if environment else [])
    assert run(svc, *args).exit_code == 0
    input_ = current(svc, name, 1)["p"][0]
    if kept == "full":
        assert input_ == f'"mail {EMAIL}"'
    elif kept == "masked":
        assert EMAIL not in input_ and "<EMAIL:" in input_
    else:
        assert input_ == ""


def test_the_tenant_is_stamped_from_the_token(tmp_path, monkeypatch):
    tokens = {"acme": "acme-token-0123456789", "globex": "globex-token-0123456789"}
    monkeypatch.setenv("SPANHOUSE_DATASET_TOKENS", ",".join(f"{t}:{hash_token(k)}" for t, k in tokens.items()))
    database = unique_database("dataset_auth")
    receiver = {"protocols": {"http": {"endpoint": "127.0.0.1:0"}},
                "auth": {"bearer_tokens_env": "SPANHOUSE_DATASET_TOKENS"}}
    svc = start_service(service_config(database, receiver=receiver, processor_configs=REDACT,
                                       pipelines=_pipelines()), database)
    try:
        path = write_jsonl(tmp_path / "t.jsonl", [{"id": "same", "input": "x"}])
        for token in tokens.values():
            header = f"authorization=Bearer%20{token}"
            result = run(svc, "import", "shared", path, env={"OTEL_EXPORTER_OTLP_HEADERS": header})
            assert result.exit_code == 0, result.output
        rows = svc.wait_rows("SELECT TenantId, ExampleId FROM genai_dataset_examples_current ORDER BY TenantId", 2)
        assert rows == [("acme", "same"), ("globex", "same")]

        refused = run(svc, "import", "shared", path, env={"OTEL_EXPORTER_OTLP_HEADERS": ""})
        assert refused.exit_code == 1 and "HTTP 401" in refused.output and "Traceback" not in refused.output
        ambiguous = run(svc, "export", "shared")
        assert ambiguous.exit_code == 1 and "pick one with --tenant" in ambiguous.output
        one = run(svc, "export", "shared", "--tenant", "globex")
        assert one.exit_code == 0 and json.loads(one.stdout.splitlines()[0])["id"] == "same"
    finally:
        svc.stop()


# --- the sdk helper and the schema ---------------------------------------------------------


def test_sdk_dataset_example_marks_the_run_span(svc):
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({sc.SERVICE_NAME: "ci-run"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces")))
    tracer = provider.get_tracer("tests")
    with sdk.dataset_example("golden", "ex-7", experiment="ci-42", tracer=tracer):
        with tracer.start_as_current_span("chat gpt-4o"):
            pass
    with pytest.raises(RuntimeError), sdk.dataset_example("golden", "ex-8", tracer=tracer):
        raise RuntimeError("candidate crashed")
    provider.shutdown()
    rows = svc.wait_rows("SELECT SpanName, ParentSpanId = '', StatusCode, SpanAttributes FROM otel_traces "
                         "WHERE ServiceName = 'ci-run' ORDER BY Timestamp", 3)
    (name, root, _, attrs), (child, _, _, child_attrs), (_, _, status, crashed) = rows
    assert (name, root) == ("dataset_example golden", 1) and child == "chat gpt-4o"
    assert {k: attrs.get(k) for k in (sc.SPANHOUSE_DATASET_NAME, sc.SPANHOUSE_DATASET_EXAMPLE_ID,
                                      sc.SPANHOUSE_EXPERIMENT_NAME)} == {sc.SPANHOUSE_DATASET_NAME: "golden",
                                                                         sc.SPANHOUSE_DATASET_EXAMPLE_ID: "ex-7",
                                                                         sc.SPANHOUSE_EXPERIMENT_NAME: "ci-42"}
    assert sc.SPANHOUSE_DATASET_NAME not in child_attrs
    assert crashed[sc.SPANHOUSE_DATASET_EXAMPLE_ID] == "ex-8" and sc.SPANHOUSE_EXPERIMENT_NAME not in crashed
    assert status == "Error"


def test_examples_are_kept_outside_the_retention_and_replicate_like_the_other_tables():
    store = StoreSettings(endpoint=chdb_endpoint(), database=unique_database("dataset_ttl"), ttl=Duration.parse("24h"),
                          retention=())
    client = connect(store)
    try:
        create_schema(client, store)
        engines = dict(client.query("SELECT name, engine_full FROM system.tables WHERE database = {d:String}",
                                    parameters={"d": store.database}).result_rows)
        assert " TTL " in engines["otel_logs"] and " TTL " not in engines["genai_dataset_examples"]
        assert engines["genai_dataset_examples"].startswith("ReplacingMergeTree(Version, Deleted)")
    finally:
        client.command(f"DROP DATABASE IF EXISTS {quote_ident(store.database)}")
        client.close()
    replicated = StoreSettings(cluster_name="main", table_engine=TableEngine(
        name="ReplicatedMergeTree", params="'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"))
    ddl = dict(render_schema(replicated))["063_genai_dataset_examples.sql"]
    assert "ON CLUSTER `main`" in ddl
    assert ("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', "
            "Version, Deleted)") in ddl


def test_typed_example_ids_are_written_as_the_store_writes_them(svc, tmp_path):
    """A run that sets the id attribute itself (a float, a bool, an int, zero) and one tagged by
    sdk.dataset_example with the same value store the same id, and an imported integer id matches both."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({sc.SERVICE_NAME: "typed-ids"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces")))
    tracer = provider.get_tracer("tests")
    ids = [9.0, True, 4711, 0]
    for value in ids:
        with tracer.start_as_current_span("own", attributes={sc.SPANHOUSE_DATASET_NAME: "typed",
                                                             sc.SPANHOUSE_DATASET_EXAMPLE_ID: value}):
            pass
        with sdk.dataset_example("typed", value, tracer=tracer):
            pass
    provider.shutdown()
    rows = svc.wait_rows("SELECT SpanName, SpanAttributes[{k:String}] FROM otel_traces "
                         "WHERE ServiceName = 'typed-ids' ORDER BY Timestamp", 2 * len(ids),
                         parameters={"k": sc.SPANHOUSE_DATASET_EXAMPLE_ID})
    own = [i for name, i in rows if name == "own"]
    tagged = [i for name, i in rows if name != "own"]
    assert own == tagged == ["9", "true", "4711", "0"]

    result = run(svc, "import", "typed", write_jsonl(tmp_path / "in.jsonl", [{"id": 4711, "input": "q"}]))
    assert result.exit_code == 0, result.output
    current(svc, "typed", 1)
    assert svc.rows("SELECT ExampleId FROM genai_dataset_examples_current WHERE DatasetName = 'typed'") == [("4711",)]
