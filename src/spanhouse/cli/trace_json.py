"""`spanhouse trace --format json`: one trace as data, for scripts."""

from __future__ import annotations

from typing import Any

from spanhouse import semconv as sc
from spanhouse.cli.trace import Span, _error_text, summarize


def _count(s: Span, key: str) -> int | None:
    value = s.number(key)
    return None if value is None else int(value)


def _span(s: Span, start_ns: int) -> dict[str, Any]:
    return {
        "span_id": s.span_id,
        "parent_span_id": s.parent_id,
        "name": s.name,
        "service": s.service,
        "operation": s.attr(sc.GEN_AI_OPERATION_NAME),
        "start_offset_ms": (s.start_ns - start_ns) / 1e6,
        "duration_ms": s.duration_ns / 1e6,
        "status": s.status,
        "error": _error_text(s) if s.failed or s.attr(sc.ERROR_TYPE) else None,
        "model": s.attr(sc.GEN_AI_RESPONSE_MODEL) or s.attr(sc.GEN_AI_REQUEST_MODEL),
        "model_call": s.model_call,
        "input_tokens": _count(s, sc.GEN_AI_USAGE_INPUT_TOKENS),
        "output_tokens": _count(s, sc.GEN_AI_USAGE_OUTPUT_TOKENS),
        "cost_usd": s.number(sc.SPANHOUSE_COST_USD),
        "cost_source": s.attr(sc.SPANHOUSE_COST_SOURCE),
        "finish_reasons": s.finish_reasons(),
        "incomplete": s.incomplete,
        "tool": s.attr(sc.GEN_AI_TOOL_NAME),
    }


def document(trace_id: str, spans: list[Span]) -> dict[str, Any]:
    """The trace's summary (as the text header gives it), its failed spans and every span in start order.
    No message content: scripts that need it read `genai_spans_full` with `spanhouse sql`."""
    info = summarize(spans)
    ordered = sorted(spans, key=lambda s: (s.start_ns, s.span_id))
    return {
        "trace_id": trace_id,
        "service": info["service"],
        "environment": info["environment"],
        "release": info["release"],
        "status": info["status"],
        "duration_ms": info["duration_ns"] / 1e6,
        "spans": info["spans"],
        "errors": info["errors"],
        "failed_spans": [{"span_id": s.span_id, "name": s.name, "error": _error_text(s)}
                         for s in info["failed_spans"]],
        "model_calls": info["model_calls"],
        "incomplete_model_calls": info["incomplete_calls"],
        "input_tokens": info["input_tokens"],
        "output_tokens": info["output_tokens"],
        "cost_usd": info["cost"],
        "unpriced_calls": info["unpriced_calls"],
        "failed_unpriced_calls": info["failed_unpriced_calls"],
        "span_list": [_span(s, info["start_ns"]) for s in ordered],
    }
