"""Where cost answers are easy to get wrong: an agent's loop is not a retry, a trace that straddles the
window's start keeps its whole cost, and an empty window in JSON is data, not an error."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import Status, StatusCode, set_span_in_context
from support import Running, sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc
from spanhouse.cli import main

OP = sc.GenAiOperationNameValues
S = 10**9


def chat(model: str, tokens_in: int, tokens_out: int) -> dict:
    return {
        sc.GEN_AI_OPERATION_NAME: OP.CHAT.value,
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.GEN_AI_REQUEST_MODEL: model,
        sc.GEN_AI_USAGE_INPUT_TOKENS: tokens_in,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: tokens_out,
    }


def tool(name: str) -> dict:
    return {sc.GEN_AI_OPERATION_NAME: OP.EXECUTE_TOOL.value, sc.GEN_AI_TOOL_NAME: name}


def workload(tracer) -> dict[str, str]:
    ids = {}
    # now, not at import: the windows below leave a minute's margin, less than a full run takes to get here
    now_ns = time.time_ns()

    def span(name, start_s, end_s, attrs, parent=None, error=False):
        ctx = set_span_in_context(parent) if parent is not None else None
        s = tracer.start_span(name, context=ctx, start_time=now_ns + int(start_s * S), attributes=attrs)
        if error:
            s.set_status(Status(StatusCode.ERROR, "failed"))
        s.end(end_time=now_ns + int(end_s * S))
        return s

    # loop: an agent calls the same model four times; only the call after the failed one is a retry.
    # It calls `search` twice (a loop) and `pay` twice, the second time after `pay` failed.
    agent = tracer.start_span(
        "invoke_agent helper", start_time=now_ns - 300 * S, attributes={sc.GEN_AI_OPERATION_NAME: OP.INVOKE_AGENT.value}
    )
    steps = [
        ("chat", chat("gpt-4o-mini", 100, 10), False),
        ("search", tool("search"), False),
        ("chat", chat("gpt-4o-mini", 100, 10), False),
        ("search", tool("search"), False),
        ("pay", tool("pay"), True),
        ("chat", chat("gpt-4o-mini", 100, 10), True),
        ("chat", chat("gpt-4o-mini", 100, 10), False),
        ("pay", tool("pay"), False),
        ("chat", {**chat("gpt-4o-mini", 100, 10), sc.GEN_AI_PROMPT_NAME: "loop_prompt",
                  sc.GEN_AI_PROMPT_VERSION: "4"}, False),  # after a success: the loop again
    ]
    for i, (name, attrs, error) in enumerate(steps):
        span(name, -290 + 10 * i, -285 + 10 * i, attrs, agent, error)
    # two `fetch` calls side by side: the second started before the first failed, so it is no retry
    span("fetch", -205, -195, tool("fetch"), agent, True)
    span("fetch", -204, -202, tool("fetch"), agent, False)
    agent.end(end_time=now_ns - 200 * S)
    ids["loop"] = format(agent.get_span_context().trace_id, "032x")

    # straddle: its root and its expensive call start 20 s before a 1 h window, a cheap call inside it
    root = span("invoke_workflow batch", -3620, -3500, {sc.GEN_AI_OPERATION_NAME: OP.INVOKE_WORKFLOW.value})
    span("chat big", -3619, -3570, chat("gpt-4o", 100_000, 1_000), root)
    span("chat small", -3540, -3530, {**chat("gpt-4o-mini", 100, 10), sc.GEN_AI_PROMPT_NAME: "weather_prompt"}, root)
    ids["straddle"] = format(root.get_span_context().trace_id, "032x")

    # resent: a trace whose batch the client sends twice (17 minutes ago, outside the 10 min window)
    root = span("invoke_workflow resent", -1000, -990, {sc.GEN_AI_OPERATION_NAME: OP.INVOKE_WORKFLOW.value})
    span("chat once", -999, -995, chat("gpt-4o-mini", 1_000, 100), root)
    ids["resent"] = format(root.get_span_context().trace_id, "032x")
    return ids


@pytest.fixture(scope="module")
def stored():
    database = unique_database("costedge")
    processors = {"genai_normalize": {}, "genai_cost": {}, "batch": {"timeout": "20ms"}}
    svc: Running = start_service(service_config(database, processor_configs=processors), database)
    ids: dict[str, str] = {}
    spans = sdk_spans(lambda tracer: ids.update(workload(tracer)), resource={"service.name": "edges"})
    exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces")
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    resent = [s for s in spans if format(s.context.trace_id, "032x") == ids["resent"]]
    assert exporter.export(resent) is SpanExportResult.SUCCESS  # as a client's retry after a timeout
    exporter.shutdown()
    svc.wait_rows("SELECT 1 FROM genai_spans", 19)
    yield svc, ids
    svc.stop()


def cli(svc: Running, *args: str):
    return CliRunner().invoke(
        main, [*args, "--endpoint", f"http://127.0.0.1:{svc.sql_port}", "--database", svc.database]
    )


def test_an_agents_loop_is_not_a_retry(stored):
    svc, _ = stored
    result = cli(svc, "costs", "--since", "10m", "-f", "json")
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout)["summary"]
    assert (s["model_calls"], s["model_call_errors"], s["retries"]) == (5, 1, 1)
    assert (s["tool_calls"], s["tool_retries"]) == (6, 1)


def test_a_trace_straddling_the_window_start_shows_its_whole_cost(stored):
    svc, ids = stored
    result = cli(svc, "top-traces", "--since", "1h", "-f", "json")
    assert result.exit_code == 0, result.output
    row = next(r for r in json.loads(result.stdout) if r["trace_id"] == ids["straddle"])
    whole = svc.rows(
        "SELECT sum(CostUsd), count() FROM genai_spans WHERE TraceId = {t:String} AND CostUsd IS NOT NULL",
        {"t": ids["straddle"]},
    )[0]
    assert whole[1] == 2 and row["model_calls"] == 2
    assert row["cost_usd"] == pytest.approx(float(whole[0])) and row["input_tokens"] == 100_100


def test_an_empty_window_in_json_is_empty_data(stored):
    svc, _ = stored
    costs = cli(svc, "costs", "--since", "1s", "-f", "json")
    assert costs.exit_code == 0, costs.output
    data = json.loads(costs.stdout)
    assert data["rows"] == [] and data["summary"]["model_calls"] == 0 and data["summary"]["cost_usd"] == 0
    top = cli(svc, "top-traces", "--since", "1s", "-f", "json")
    assert top.exit_code == 0 and json.loads(top.stdout) == []
    # in a table, the same window still says what to do
    assert cli(svc, "top-traces", "--since", "1s").exit_code == 1


def test_the_trace_view_shows_a_resent_span_once_and_says_so(stored):
    svc, ids = stored
    result = cli(svc, "trace", ids["resent"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "spans 2" in text and text.count("chat once") == 1
    assert "2 span(s) stored more than once" in text


def test_top_traces_and_costs_count_a_resent_span_once(stored):
    svc, ids = stored
    result = cli(svc, "top-traces", "--since", "1h", "-f", "json")
    assert result.exit_code == 0, result.output
    row = next(r for r in json.loads(result.stdout) if r["trace_id"] == ids["resent"])
    once = svc.rows("SELECT any(CostUsd) FROM genai_spans WHERE TraceId = {t:String} AND CostUsd IS NOT NULL",
                    {"t": ids["resent"]})[0][0]
    assert row["spans"] == 2 and row["copies"] == 2 and row["model_calls"] == 1
    assert row["cost_usd"] == pytest.approx(float(once)) and row["input_tokens"] == 1_000
    table = cli(svc, "top-traces", "--since", "1h")
    assert "(+2 copies)" in table.stdout
    summary = json.loads(cli(svc, "costs", "--since", "1h", "-f", "json").stdout)["summary"]
    assert summary["successful_tasks"] <= summary["requests"]


def test_spans_stamped_in_the_future_stay_out_of_windows_ending_now(stored):
    """A client whose clock runs a day ahead: its spans would sit in every "last N" window for a day."""
    svc, _ = stored
    ahead = time.time_ns() + 86_400 * S

    def build(tracer):
        tracer.start_span("chat ahead", start_time=ahead, attributes=chat("gpt-4o", 10, 1)).end(end_time=ahead + S)

    spans = sdk_spans(build, resource={"service.name": "skewed"})
    exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces")
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    svc.wait_rows("SELECT 1 FROM genai_spans WHERE ServiceName = 'skewed'", 1)
    top = json.loads(cli(svc, "top-traces", "--since", "1h", "-f", "json").stdout)
    assert all(r["service"] != "skewed" for r in top)
    costs = json.loads(cli(svc, "costs", "--since", "1s", "-f", "json").stdout)
    assert costs["summary"]["model_calls"] == 0


def test_top_traces_ranks_by_the_cost_counted_once(stored):
    """A trace sent twice sums to twice its cost in the table; ranked on that, it would push out a
    trace that really costs more, then be shown at its true cost."""
    svc, _ = stored
    now = time.time_ns()
    ids = {}

    def build(tracer):
        for name, tokens in (("twice", 10_000), ("more", 15_000)):
            s = tracer.start_span(f"chat {name}", start_time=now - 5 * S, attributes=chat("gpt-4o-mini", tokens, 0))
            s.end(end_time=now - 4 * S)
            ids[name] = format(s.get_span_context().trace_id, "032x")

    spans = sdk_spans(build, resource={"service.name": "ranked"})
    exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces")
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    twice = [s for s in spans if format(s.context.trace_id, "032x") == ids["twice"]]
    assert exporter.export(twice) is SpanExportResult.SUCCESS
    exporter.shutdown()
    svc.wait_rows("SELECT 1 FROM genai_spans WHERE ServiceName = 'ranked'", 3)
    (top,) = json.loads(cli(svc, "top-traces", "--since", "60s", "--top", "1", "-f", "json").stdout)
    assert top["trace_id"] == ids["more"]


def test_costs_by_prompt_names_a_prompt_without_a_version_alone(stored):
    """A table row reads `weather_prompt`, not `weather_prompt@`; JSON keeps the key as `name@version`."""
    svc, _ = stored
    data = json.loads(cli(svc, "costs", "--since", "1h", "--by", "prompt", "-f", "json").stdout)
    assert {"weather_prompt@", "loop_prompt@4", ""} <= {r["key"] for r in data["rows"]}
    table = cli(svc, "costs", "--since", "1h", "--by", "prompt")
    assert table.exit_code == 0, table.output
    labels = [line.split("│")[1].strip() for line in table.stdout.splitlines() if line.count("│") > 2]
    assert {"weather_prompt", "loop_prompt@4", "(none)"} <= set(labels) and "weather_prompt@" not in labels


def test_trace_and_top_traces_name_a_trace_whose_root_never_arrived_alike(stored):
    """The root of a trace never arrived; its first stored span did not fail, a later one did: both
    commands say `no root` (the header used to say `degraded`, judged from a span that is no root)."""
    svc, _ = stored
    now = time.time_ns()
    ids = {}

    def build(tracer):
        root = tracer.start_span("invoke_workflow lost", start_time=now - 9 * S)
        ctx = set_span_in_context(root)
        tracer.start_span("chat first", context=ctx, start_time=now - 8 * S,
                          attributes=chat("gpt-4o-mini", 10, 1)).end(end_time=now - 7 * S)
        failed = tracer.start_span("chat second", context=ctx, start_time=now - 6 * S,
                                   attributes=chat("gpt-4o-mini", 10, 1))
        failed.set_status(Status(StatusCode.ERROR, "failed"))
        failed.end(end_time=now - 5 * S)
        root.end(end_time=now - 4 * S)
        ids["lost"] = format(root.get_span_context().trace_id, "032x")

    spans = [s for s in sdk_spans(build, resource={"service.name": "rootless"}) if s.parent is not None]
    exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces")
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    svc.wait_rows("SELECT 1 FROM genai_spans WHERE ServiceName = 'rootless'", 2)
    row = next(r for r in json.loads(cli(svc, "top-traces", "--since", "1h", "-f", "json").stdout)
               if r["trace_id"] == ids["lost"])
    doc = json.loads(cli(svc, "trace", ids["lost"], "--format", "json").stdout)
    assert row["status"] == doc["status"] == "no root"
    header = cli(svc, "trace", ids["lost"]).stdout.splitlines()[1]
    assert "status no root" in header
    table = next(line for line in cli(svc, "top-traces", "--since", "1h").stdout.splitlines() if ids["lost"] in line)
    assert "no root" in table
