"""Helpers that mark spans with prompt, feature and tenant, and the span processor that stamps them.

The marks live in the OpenTelemetry context (not in baggage, so they never travel to other
services). Every span started inside the block gets them as attributes, unless the span already has
a value of its own for that attribute.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from spanhouse import semconv as sc

_KEY = otel_context.create_key("spanhouse-sdk-marks")


@contextmanager
def _marked(**attrs: Any) -> Iterator[None]:
    current = otel_context.get_value(_KEY) or {}
    token = otel_context.attach(otel_context.set_value(_KEY, {**current, **attrs}))
    try:
        yield
    finally:
        otel_context.detach(token)


def prompt(name: str, version: str | None = None):
    """Spans started inside the block carry `gen_ai.prompt.name` (and `gen_ai.prompt.version`).

    ```python
    with prompt("ticket_reply_prompt", version="v17"):
        client.chat.completions.create(...)
    ```
    Also usable as a decorator."""
    if not name:
        raise ValueError("prompt() needs a prompt name")
    marks = {sc.GEN_AI_PROMPT_NAME: str(name)}
    if version is not None:
        marks[sc.GEN_AI_PROMPT_VERSION] = str(version)
    return _marked(**marks)


def feature(name: str):
    """Spans started inside the block carry `spanhouse.feature`."""
    if not name:
        raise ValueError("feature() needs a feature name")
    return _marked(**{sc.SPANHOUSE_FEATURE: str(name)})


def tenant(tenant_id: str):
    """Spans started inside the block carry `spanhouse.tenant.id` (the receiver overwrites it with the
    tenant of the bearer token when authentication is on)."""
    if not tenant_id:
        raise ValueError("tenant() needs a tenant id")
    return _marked(**{sc.SPANHOUSE_TENANT_ID: str(tenant_id)})


class MarkingSpanProcessor(SpanProcessor):
    """Stamps the marks of the active `prompt()` / `feature()` / `tenant()` blocks on spans as they
    start. Never blocks and never raises into the application."""

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        try:
            marks = otel_context.get_value(_KEY, parent_context)
            if not marks:
                return
            existing = span.attributes or {}
            for key, value in marks.items():
                if existing.get(key) is None:
                    span.set_attribute(key, value)
        except Exception:  # a tracing helper must never break the application
            pass

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
