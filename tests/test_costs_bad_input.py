"""Bad cost and usage input, end to end (SDK → genai_normalize → genai_cost → ClickHouse → CLI): it is
warned about and never stored as a cost, so no sum over genai_spans or the rollup is poisoned."""

from __future__ import annotations

import json
import math
import time

import pytest
from click.testing import CliRunner
from genai_prices import Usage, calc_price
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import set_span_in_context
from support import Running, sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc
from spanhouse.cli import main

OP = sc.GenAiOperationNameValues
SRC = sc.SpanhouseCostSourceValues
CALL_USD = float(calc_price(Usage(input_tokens=1_000, output_tokens=100), "gpt-4o", provider_id="openai").total_price)


def chat(**extra) -> dict:
    return {sc.GEN_AI_OPERATION_NAME: OP.CHAT.value, sc.GEN_AI_PROVIDER_NAME: "openai",
            sc.GEN_AI_REQUEST_MODEL: "gpt-4o", sc.GEN_AI_USAGE_INPUT_TOKENS: 1_000,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100, **extra}


# span name → (attributes, CostSource stored, CostUsd stored)
SPANS = {
    "not a number": (chat(**{sc.SPANHOUSE_COST_USD: float("nan")}), SRC.COMPUTED.value, CALL_USD),
    "negative": (chat(**{sc.SPANHOUSE_COST_USD: -5.0}), SRC.COMPUTED.value, CALL_USD),
    # OpenLIT's cost attribute, mapped by genai_normalize and marked reported there
    "openlit negative": (chat(**{"gen_ai.usage.cost": -5.0}), SRC.COMPUTED.value, CALL_USD),
    # the store reads " 1000 " as 0: genai_cost writes back the count it priced
    "spaced count": (chat(**{sc.GEN_AI_USAGE_INPUT_TOKENS: " 1000 "}), SRC.COMPUTED.value, CALL_USD),
    "huge text count": (chat(**{sc.GEN_AI_USAGE_INPUT_TOKENS: "99999999999999999999999"}),
                        SRC.INVALID_USAGE.value, None),
    "huge count": (chat(**{sc.GEN_AI_USAGE_INPUT_TOKENS: 9 * 10**15}), SRC.INVALID_USAGE.value, None),
    "text without usage": ({sc.GEN_AI_OPERATION_NAME: OP.CHAT.value, sc.GEN_AI_PROVIDER_NAME: "openai",
                            sc.GEN_AI_REQUEST_MODEL: "gpt-4o", sc.SPANHOUSE_COST_USD: "abc"},
                           SRC.NO_USAGE.value, None),
}


def workload(tracer) -> str:
    now = time.time_ns() - 60 * 10**9
    root = tracer.start_span("invoke_workflow bad input", start_time=now,
                             attributes={sc.GEN_AI_OPERATION_NAME: OP.INVOKE_WORKFLOW.value})
    for name, (attrs, _, _) in SPANS.items():
        span = tracer.start_span(name, context=set_span_in_context(root), start_time=now, attributes=attrs)
        span.end(end_time=now + 10**8)
    root.end(end_time=now + 10**9)
    return format(root.get_span_context().trace_id, "032x")


@pytest.fixture(scope="module")
def stored():
    database = unique_database("badcost")
    processors = {"genai_normalize": {}, "genai_cost": {}, "batch": {"timeout": "20ms"}}
    svc: Running = start_service(service_config(database, processor_configs=processors), database)
    ids = []
    spans = sdk_spans(lambda tracer: ids.append(workload(tracer)), resource={"service.name": "bad-input"})
    exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces")
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    svc.wait_rows("SELECT 1 FROM genai_spans", len(spans))
    yield svc, ids[0]
    svc.stop()


def cli(svc: Running, *args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--endpoint", f"http://127.0.0.1:{svc.sql_port}",
                                       "--database", svc.database])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_reported_cost_that_is_not_a_cost_is_never_stored(stored):
    svc, _ = stored
    rows = {name: (source, usd) for name, source, usd in svc.rows(
        "SELECT SpanName, CostSource, CostUsd FROM genai_spans WHERE Operation = 'chat'")}
    assert rows == {name: (source, pytest.approx(usd) if usd else None) for name, (_, source, usd) in SPANS.items()}
    ((rolled,),) = svc.rows("SELECT sumMerge(CostUsd) FROM genai_rollup_hourly")
    assert math.isfinite(rolled) and rolled == pytest.approx(4 * CALL_USD)
    summary = json.loads(cli(svc, "costs", "--since", "1h", "-f", "json"))["summary"]
    assert summary["cost_usd"] == pytest.approx(4 * CALL_USD)
    assert (summary["priced_calls"], summary["unpriced_calls"]) == (4, 3)


def test_the_tokens_stored_are_the_tokens_priced(stored):
    svc, _ = stored
    rows = dict(svc.rows("SELECT SpanName, InputTokens FROM genai_spans WHERE Operation = 'chat'"))
    assert rows["spaced count"] == 1_000
    unpriced = json.loads(cli(svc, "costs", "--since", "1h", "--unpriced", "-f", "json"))
    assert {(r["source"], r["spans"]) for r in unpriced} == {(SRC.INVALID_USAGE.value, 2), (SRC.NO_USAGE.value, 1)}


def test_the_trace_view_shows_the_computed_costs(stored):
    svc, trace_id = stored
    text = cli(svc, "trace", trace_id, "--no-content")
    assert "$nan" not in text and "$-" not in text
    assert f"cost ${4 * CALL_USD:.4f}" in text
