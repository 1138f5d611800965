"""Evaluation results as users read them: `genai_evaluations_full` gives a result sent as a log record
its span's prompt and model whichever arrives first, scores that are not numbers are never averaged,
booleans count as 1 and 0, and a result sent twice counts once (there and in `spanhouse trace`).

Spans and log records are sent with the real OpenTelemetry SDK exporters over OTLP/HTTP to a service
with traces and logs pipelines on the embedded store."""

from __future__ import annotations

import math
import time

import pytest
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context
from support import sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc
from spanhouse.cli import main
from spanhouse.cli import trace as trace_cli
from spanhouse.scores import INVALID_SCORE_LABEL, LOG_RECORD, SPAN_EVENT, Result, distinct_results

S = 10**9
HOUR = 3600 * S
RESOURCE = {sc.SERVICE_NAME: "support-bot", sc.DEPLOYMENT_ENVIRONMENT_NAME: "production", sc.SERVICE_VERSION: "2.0"}
EVAL = sc.EVENT_GEN_AI_EVALUATION_RESULT
FULL = ("SELECT EvaluationName, ScoreValue, ScoreLabel, PromptName, PromptVersion, RequestModel, Operation "
        "FROM genai_evaluations_full WHERE TraceId = {t:String} ORDER BY EvaluationName, ScoreValue")


@pytest.fixture(scope="module")
def svc():
    database = unique_database("evals")
    pipeline = {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["clickhouse"]}
    running = start_service(service_config(database, pipelines={"traces": pipeline, "logs": dict(pipeline)}),
                            database)
    yield running
    running.stop()


def _score(name: str, value=None, label: str = "", **extra) -> dict:
    attrs = {sc.GEN_AI_EVALUATION_NAME: name, **extra}
    if value is not None:
        attrs[sc.GEN_AI_EVALUATION_SCORE_VALUE] = value
    if label:
        attrs[sc.GEN_AI_EVALUATION_SCORE_LABEL] = label
    return attrs


def chat(start_ns: int, version: str = "v3", events=()):
    """One model call with a prompt version, ended 2 s after `start_ns`; `events` become span events."""
    def build(tracer):
        span = tracer.start_span("chat gpt-4o", start_time=start_ns, attributes={
            sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai", sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
            sc.GEN_AI_PROMPT_NAME: "reply", sc.GEN_AI_PROMPT_VERSION: version})
        for attrs in events:
            span.add_event(EVAL, attrs, timestamp=start_ns + S)
        span.end(end_time=start_ns + 2 * S)

    (span,) = sdk_spans(build, RESOURCE)
    return span


def send_spans(svc, spans) -> None:
    exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces", timeout=10)
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()


def send_scores(svc, span, scores: list[tuple[int, dict]], resource: dict | None = None) -> None:
    """`gen_ai.evaluation.result` log records parented to `span`, at the given times."""
    ctx = set_span_in_context(NonRecordingSpan(SpanContext(span.context.trace_id, span.context.span_id, True,
                                                           TraceFlags(1))))
    provider = LoggerProvider(resource=Resource.create(resource or RESOURCE))
    provider.add_log_record_processor(SimpleLogRecordProcessor(
        OTLPLogExporter(endpoint=svc.http_url + "/v1/logs", timeout=10)))
    logger = provider.get_logger("tests.evaluations")
    for at, attrs in scores:
        logger.emit(event_name=EVAL, timestamp=at, context=ctx, attributes=attrs)
    provider.shutdown()


def trace_hex(span) -> str:
    return format(span.context.trace_id, "032x")


@pytest.mark.parametrize("span_first", [True, False], ids=["span-first", "score-first"])
def test_a_log_record_score_gets_its_spans_prompt_and_model_in_either_order(svc, span_first):
    now = time.time_ns()
    span = chat(now - 3 * HOUR)
    late = [(now, _score("user_feedback", 0.0, "thumbs_down")),
            (now, _score("relevance", 0.4, **{sc.GEN_AI_PROMPT_VERSION: "v3-hotfix", sc.GEN_AI_PROMPT_NAME: "own"}))]
    if span_first:
        send_spans(svc, [span])
        svc.wait_rows("SELECT 1 FROM genai_spans WHERE TraceId = {t:String}", 1, parameters={"t": trace_hex(span)})
        send_scores(svc, span, late)
    else:
        send_scores(svc, span, late)
        svc.wait_rows("SELECT 1 FROM genai_evaluations WHERE TraceId = {t:String}", 2,
                      parameters={"t": trace_hex(span)})
        send_spans(svc, [span])
    svc.wait_rows("SELECT 1 FROM genai_spans WHERE TraceId = {t:String}", 1, parameters={"t": trace_hex(span)})
    rows = svc.wait_rows(FULL, 2, parameters={"t": trace_hex(span)})
    # the record's own prompt wins; the span's fills what the record left out
    assert rows == [("relevance", 0.4, "", "own", "v3-hotfix", "gpt-4o", "chat"),
                    ("user_feedback", 0.0, "thumbs_down", "reply", "v3", "gpt-4o", "chat")]


def test_a_score_whose_span_never_arrives_is_kept_without_a_prompt(svc):
    span = chat(time.time_ns())
    send_scores(svc, span, [(time.time_ns(), _score("relevance", 0.1))])
    assert svc.wait_rows(FULL, 1, parameters={"t": trace_hex(span)}) == [("relevance", 0.1, "", "", "", "", "")]
    result = CliRunner().invoke(main, ["trace", trace_hex(span), "--endpoint", f"http://127.0.0.1:{svc.sql_port}",
                                       "--database", svc.database], terminal_width=200)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "has no spans" in result.output and "1 evaluation result(s)" in result.output, result.output
    assert "genai_evaluations_full" in result.output


def test_scores_that_are_not_numbers_are_counted_but_never_averaged(svc):
    now = time.time_ns()
    span = chat(now, events=[_score("faithfulness", float("nan")), _score("faithfulness", 0.8),
                             _score("faithfulness", float("-inf"), "evaluator_error")])
    send_spans(svc, [span])
    timed_out = _score("faithfulness", float("inf"), **{sc.GEN_AI_EVALUATION_EXPLANATION: "timeout"})
    send_scores(svc, span, [(now + S, timed_out),
                            (now + S, _score("faithfulness", 0.6))])
    rows = svc.wait_rows(FULL, 5, parameters={"t": trace_hex(span)})
    assert sorted(rows, key=lambda r: (r[2], r[1] or -1)) == [  # one NaN, one -inf, one +inf
        ("faithfulness", 0.6, "", "reply", "v3", "gpt-4o", "chat"),
        ("faithfulness", 0.8, "", "reply", "v3", "gpt-4o", "chat"),
        ("faithfulness", None, "evaluator_error", "reply", "v3", "gpt-4o", "chat"),
        ("faithfulness", None, INVALID_SCORE_LABEL, "reply", "v3", "gpt-4o", "chat"),
        ("faithfulness", None, INVALID_SCORE_LABEL, "reply", "v3", "gpt-4o", "chat")]
    ((avg, n, low),) = svc.rows("SELECT avg(ScoreValue), count(), countIf(ScoreValue < 0.85) FROM "
                                "genai_evaluations_full WHERE TraceId = {t:String}", {"t": trace_hex(span)})
    assert avg == pytest.approx(0.7) and not math.isnan(avg) and (n, low) == (5, 2)


def test_boolean_scores_are_one_and_zero_labelled_true_and_false(svc):
    now = time.time_ns()
    span = chat(now, events=[_score("is_grounded", False)])
    send_spans(svc, [span])
    send_scores(svc, span, [(now + S, _score("is_correct", True)), (now + S, _score("is_polite", True, "yes"))])
    rows = svc.wait_rows(FULL, 3, parameters={"t": trace_hex(span)})
    assert [r[:3] for r in rows] == [("is_correct", 1.0, "true"), ("is_grounded", 0.0, "false"),
                                     ("is_polite", 1.0, "yes")]


def test_a_score_sent_twice_counts_once(svc):
    now = time.time_ns()
    quality = _score("quality", 0.85, **{sc.OPENLIT_SCORE_IDEMPOTENCY_KEY: "k1"})
    category = _score("category", label="accurate")
    # OpenLIT's log_score inside a span: a span event and a log record with the same attributes
    span = chat(now, events=[quality, category, _score("thumbs", 1.0), _score("precision", 0.9)])
    send_spans(svc, [span])
    send_scores(svc, span, [
        (now + S + 5, quality), (now + S + 5, category), (now + S + 5, _score("thumbs", 1.0)),
        # the same score written otherwise (a string with a trailing zero) is the same stored value
        (now + S + 5, _score("precision", "0.90")),
        # a retried job: the same key an hour later; a resent record: the same record twice
        (now + HOUR, _score("late_review", 0.3, **{sc.OPENLIT_SCORE_IDEMPOTENCY_KEY: "k2"})),
        (now + 2 * HOUR, _score("late_review", 0.5, **{sc.OPENLIT_SCORE_IDEMPOTENCY_KEY: "k2"})),
        (now + HOUR, _score("relevance", 0.5)), (now + HOUR, _score("relevance", 0.5)),
        # two people giving the same feedback at different times are two results
        (now + HOUR, _score("user_feedback", 1.0)), (now + 2 * HOUR, _score("user_feedback", 1.0)),
        # the same as a span event, but hours later: feedback of its own, not OpenLIT's pair
        (now + 2 * HOUR, _score("thumbs", 1.0)),
    ])
    t = {"t": trace_hex(span)}
    svc.wait_rows("SELECT 1 FROM genai_evaluations WHERE TraceId = {t:String}", 15, parameters=t)
    rows = svc.rows("SELECT EvaluationName, ScoreValue, ScoreLabel, Source FROM genai_evaluations_full "
                    "WHERE TraceId = {t:String} ORDER BY EvaluationName, Timestamp", t)
    assert rows == [("category", None, "accurate", SPAN_EVENT), ("late_review", 0.3, "", LOG_RECORD),
                    ("precision", 0.9, "", SPAN_EVENT), ("quality", 0.85, "", SPAN_EVENT),
                    ("relevance", 0.5, "", LOG_RECORD),
                    ("thumbs", 1.0, "", SPAN_EVENT), ("thumbs", 1.0, "", LOG_RECORD),
                    ("user_feedback", 1.0, "", LOG_RECORD), ("user_feedback", 1.0, "", LOG_RECORD)]
    result = CliRunner().invoke(trace_cli.command, [trace_hex(span), "--endpoint", f"http://127.0.0.1:{svc.sql_port}",
                                                    "--database", svc.database], terminal_width=200)
    assert result.exit_code == 0, result.output
    out = result.output
    assert (out.count("quality=0.85"), out.count("category=accurate"), out.count("late_review="),
            out.count("relevance=0.5"), out.count("user_feedback=1.0"),
            out.count("thumbs=1.0"), out.count("precision=0.9")) == (1, 1, 1, 1, 2, 2, 1), out


def test_trace_shows_boolean_and_invalid_scores_as_stored(svc):
    now = time.time_ns()
    span = chat(now, events=[_score("is_correct", True), _score("faithfulness", float("nan"))])
    send_spans(svc, [span])
    svc.wait_rows("SELECT 1 FROM genai_evaluations WHERE TraceId = {t:String}", 2, parameters={"t": trace_hex(span)})
    result = CliRunner().invoke(trace_cli.command, [trace_hex(span), "--endpoint", f"http://127.0.0.1:{svc.sql_port}",
                                                    "--database", svc.database], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "is_correct=1.0 (true)" in result.output and f"faithfulness={INVALID_SCORE_LABEL}" in result.output


def test_distinct_results_rule():
    event = Result(SPAN_EVENT, 10, _score("q", "0.5"))
    log = Result(LOG_RECORD, 11, _score("q", "0.5"))
    other_time = Result(LOG_RECORD, 99, _score("q", "0.5"))
    assert distinct_results([log, event]) == [event]
    hours_later = Result(LOG_RECORD, 10 + 2 * 3600 * 10**9, _score("q", "0.5"))
    assert distinct_results([event, hours_later]) == [event, hours_later]
    assert distinct_results([log, other_time]) == [log, other_time]
    assert distinct_results([log, Result(LOG_RECORD, 11, _score("q", "0.5"))]) == [log]
    first = Result(LOG_RECORD, 50, _score("q", "0.2", **{sc.SPANHOUSE_EVALUATION_IDEMPOTENCY_KEY: "a"}))
    retry = Result(LOG_RECORD, 60, _score("q", "0.9", **{sc.SPANHOUSE_EVALUATION_IDEMPOTENCY_KEY: "a"}))
    assert distinct_results([retry, first]) == [first]
    # compared as stored: 0.5 and "0.50" are one value, a boolean and its 1 without a label are not
    assert distinct_results([Result(LOG_RECORD, 11, _score("q", "0.50")), event]) == [event]
    assert len(distinct_results([Result(SPAN_EVENT, 10, _score("b", "true")),
                                 Result(LOG_RECORD, 11, _score("b", "1"))])) == 2
    # a log record is a copy of any span event within the window, not only the nearest one before it
    late_event = Result(SPAN_EVENT, 10 + 5 * 10**9, _score("q", "0.5"))
    near_late = Result(LOG_RECORD, 10 + 5 * 10**9 - 10, _score("q", "0.5"))
    assert distinct_results([event, late_event, near_late]) == [event, late_event]
    # at the window's edge, whole milliseconds apart as genai_evaluations_full's dateDiff counts them
    for event_ns, gap_ns in ((50_000, 1_000_900_000), (950_000, 1_000_100_000), (0, 999_999_999)):
        at = Result(SPAN_EVENT, event_ns, _score("q", "0.5"))
        copy = Result(LOG_RECORD, event_ns + gap_ns, _score("q", "0.5"))
        paired = _view_pairs(event_ns, event_ns + gap_ns)
        assert distinct_results([at, copy]) == ([at] if paired else [at, copy]), (event_ns, gap_ns)


def _view_pairs(event_ns: int, log_ns: int) -> bool:
    """Whether the view's test (`abs(dateDiff('millisecond', …)) <= PAIR_WINDOW_MS`) pairs the two times,
    asked of the embedded ClickHouse engine itself."""
    from support import chdb_endpoint

    from spanhouse.scores import PAIR_WINDOW_MS
    from spanhouse.store import StoreSettings, connect

    client = connect(StoreSettings(endpoint=chdb_endpoint(), database="default"))
    try:
        return bool(client.query(
            f"SELECT abs(dateDiff('millisecond', fromUnixTimestamp64Nano(toInt64({event_ns})), "
            f"fromUnixTimestamp64Nano(toInt64({log_ns})))) <= {PAIR_WINDOW_MS}").result_rows[0][0])
    finally:
        client.close()
