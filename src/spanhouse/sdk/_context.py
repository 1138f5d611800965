"""Helpers that mark spans with prompt, feature and tenant, the processors that stamp them, and the span
of one run over a dataset example.

The marks live in the OpenTelemetry context (not in baggage, so they never travel to other
services). Every span started inside the block gets them as attributes, unless the span already has
a value of its own for that attribute; with `MarkingLogRecordProcessor`, so does every log record
emitted inside it (instrumentations that send prompts and completions as log events), so a redaction
rule on `spanhouse.feature` reaches that content too.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from spanhouse import semconv as sc
from spanhouse.otlp.values import as_string

_KEY = otel_context.create_key("spanhouse-sdk-marks")


class _Marks:
    """The marks of one `prompt()` / `feature()` / `tenant()` call: a context manager, and a decorator
    for plain and `async` functions (each call of the decorated function gets its own block, entered
    inside the coroutine for an `async def`, so the marks are there when its body runs)."""

    __slots__ = ("_set", "_drop", "_tokens")

    def __init__(self, marks: dict[str, Any], drop: tuple[str, ...] = ()):
        self._set = marks
        self._drop = drop
        self._tokens: list[object] = []

    def __enter__(self) -> None:
        current = otel_context.get_value(_KEY) or {}
        marks = {k: v for k, v in current.items() if k not in self._drop}
        marks.update(self._set)
        self._tokens.append(otel_context.attach(otel_context.set_value(_KEY, marks)))

    def __exit__(self, *exc: object) -> None:
        otel_context.detach(self._tokens.pop())

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with _Marks(self._set, self._drop):
                    return await fn(*args, **kwargs)

            return run_async

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with _Marks(self._set, self._drop):
                return fn(*args, **kwargs)

        return run


def prompt(name: str, version: str | None = None) -> _Marks:
    """Spans started inside the block carry `gen_ai.prompt.name` (and `gen_ai.prompt.version`; a prompt
    given without a version does not inherit the version of an enclosing `prompt()`).

    ```python
    with prompt("ticket_reply_prompt", version="v17"):
        client.chat.completions.create(...)
    ```
    Also usable as a decorator, on `def` and `async def` functions."""
    if not name:
        raise ValueError("prompt() needs a prompt name")
    marks = {sc.GEN_AI_PROMPT_NAME: str(name)}
    if version is not None:
        marks[sc.GEN_AI_PROMPT_VERSION] = str(version)
        return _Marks(marks)
    return _Marks(marks, drop=(sc.GEN_AI_PROMPT_VERSION,))


def feature(name: str) -> _Marks:
    """Spans started inside the block carry `spanhouse.feature`."""
    if not name:
        raise ValueError("feature() needs a feature name")
    return _Marks({sc.SPANHOUSE_FEATURE: str(name)})


def tenant(tenant_id: str) -> _Marks:
    """Spans started inside the block carry `spanhouse.tenant.id` (the receiver overwrites it with the
    tenant of the bearer token when authentication is on)."""
    if not tenant_id:
        raise ValueError("tenant() needs a tenant id")
    return _Marks({sc.SPANHOUSE_TENANT_ID: str(tenant_id)})


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


class MarkingLogRecordProcessor(LogRecordProcessor):
    """Stamps the marks of the active `prompt()` / `feature()` / `tenant()` blocks on log records as
    they are emitted, unless a record has a value of its own. Add it to the `LoggerProvider` before
    the processor that exports. Never blocks and never raises into the application."""

    def on_emit(self, log_record: Any) -> None:
        try:
            record = log_record.log_record
            marks = otel_context.get_value(_KEY, getattr(record, "context", None)) or otel_context.get_value(_KEY)
            if not marks:
                return
            attrs = record.attributes
            for key, value in marks.items():
                if attrs is None or attrs.get(key) is None:
                    if attrs is None:
                        record.attributes = attrs = {}
                    attrs[key] = value
        except Exception:  # a logging helper must never break the application
            pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@contextlib.contextmanager
def dataset_example(dataset: str, example_id: str | int | float | bool, experiment: str | None = None, *,
                    tracer: trace.Tracer | None = None) -> Iterator[Span]:
    """Run the block as one run over a dataset example: opens a span (a child of the current one, if
    any) carrying `spanhouse.dataset.name`, `spanhouse.dataset.example.id` and, when given,
    `spanhouse.experiment.name`, which `spanhouse compare` and `spanhouse gate` pair runs by, with
    `tracer` (default: one of the global tracer provider, which `configure()` installs). Yields the span;
    an exception in the block is recorded on it and raised on.

    ```python
    for example in examples:
        with sdk.dataset_example("failed-replies", example["id"], experiment="ci-1234"):
            reply(example["input"])
    ```"""
    # the id as the store writes a typed attribute (9.0 → "9", True → "true"), so that runs tagged
    # here pair with runs that set the attribute themselves
    text_id = "" if example_id is None else as_string(example_id)
    if not dataset or not text_id:
        raise ValueError("dataset_example() needs a dataset name and an example id")
    attributes = {sc.SPANHOUSE_DATASET_NAME: str(dataset), sc.SPANHOUSE_DATASET_EXAMPLE_ID: text_id}
    if experiment:
        attributes[sc.SPANHOUSE_EXPERIMENT_NAME] = str(experiment)
    tracer = tracer or trace.get_tracer("spanhouse.sdk")
    with tracer.start_as_current_span(f"dataset_example {dataset}", attributes=attributes) as span:
        yield span
