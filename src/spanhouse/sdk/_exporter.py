"""A span exporter wrapper that redacts spans before they leave the process."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status

from spanhouse.otlp.values import exception_without_message
from spanhouse.redact.engine import Record, Redactor
from spanhouse.redact.settings import Policy

log = logging.getLogger(__name__)

MIN_SHUTDOWN_WAIT = 2.0


class RedactingSpanExporter(SpanExporter):
    """Redacts each span with the shared core, then hands the copies to `exporter`: attributes (keys
    included), events (names included), links, resource, status message and the span's name, as the
    `genai_redact` processor does.

    `policy` fixes the policy for every span; None chooses it per span from the settings' rules (the
    resource's `deployment.environment.name` with the default rules). Fails closed: if redaction
    raises, the batch is not exported (FAILURE) and an error is logged at most once a minute. The
    SDK's spans are immutable after they end, so redaction works on copies; the originals are never
    changed.

    Once `shutdown` returns, no redaction is running and none starts: the SDK exports from a daemon
    thread, and a daemon thread caught inside the RE2 extension (which releases the GIL) when the
    interpreter exits aborts the whole process."""

    def __init__(self, exporter: SpanExporter, redactor: Redactor, policy: Policy | str | None = None):
        self._exporter = exporter
        self._redactor = redactor
        self._policy = Policy(policy) if policy is not None else None
        self._resources: dict[tuple[int, Policy], tuple[Resource, Resource, Record]] = {}
        self._last_error = 0.0
        self._lock = threading.Lock()
        self._gate = threading.Lock()  # held while a span is redacted
        self._closed = False
        self.failed_batches = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        redacted = []
        for span in spans:
            with self._gate:
                if self._closed:
                    return SpanExportResult.FAILURE
                try:
                    redacted.append(self._redact(span))
                except Exception:
                    self._failed()
                    return SpanExportResult.FAILURE
            time.sleep(0)  # hand the GIL back between spans: the application's threads come first
        return self._exporter.export(redacted)

    def shutdown(self, timeout_millis: float = 5000) -> None:
        """Stop redacting, then shut the wrapped exporter down. Waits for a span being redacted (one
        value is at most `max_value_bytes`, so this is short) for `timeout_millis`, but at least
        `MIN_SHUTDOWN_WAIT` seconds, even when the batch processor's own deadline has passed."""
        acquired = self._gate.acquire(timeout=max(timeout_millis / 1000, MIN_SHUTDOWN_WAIT))
        self._closed = True
        if acquired:
            self._gate.release()
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)

    def _redact(self, span: ReadableSpan) -> ReadableSpan:
        r = self._redactor
        attrs = dict(span.attributes or {})
        resource = span.resource
        policy = self._policy or r.policy_for(attrs, resource.attributes)
        record = Record(policy)
        new_attrs = r.attributes(attrs, policy, record)
        name = r.span_name(span.name, policy, record)
        new_events = [r.event(e.name, dict(e.attributes or {}), policy, record) for e in span.events]
        event_names = [r.event_name(e.name, policy, record) for e in span.events]
        new_links = [r.attributes(dict(k.attributes or {}), policy, record, "link:") for k in span.links]
        new_resource, resource_record = self._resource(resource, policy)
        record.extend(resource_record)
        status = span.status
        if status.description:
            description = r.status_message(status.description, policy, record)
            if description != status.description:
                status = Status(status.status_code, description or None)
        record.write(new_attrs)
        return ReadableSpan(
            name=name,
            context=span.context,
            parent=span.parent,
            resource=new_resource,
            attributes=new_attrs,
            events=[Event(n, a, e.timestamp) for e, n, a in zip(span.events, event_names, new_events)],
            links=[Link(k.context, a) for k, a in zip(span.links, new_links)],
            kind=span.kind,
            status=status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    def _resource(self, resource: Resource, policy: Policy) -> tuple[Resource, Record]:
        """The redacted resource and its record, computed once per resource and policy."""
        key = (id(resource), policy)
        cached = self._resources.get(key)
        if cached is not None and cached[0] is resource:
            return cached[1], cached[2]
        record = Record(policy)
        attrs = dict(resource.attributes)
        new = self._redactor.attributes(attrs, policy, record, "resource:")
        new_resource = resource if new is attrs else Resource(new, resource.schema_url)
        if len(self._resources) > 64:
            self._resources.clear()
        self._resources[key] = (resource, new_resource, record)
        return new_resource, record

    def _failed(self) -> None:
        with self._lock:
            self.failed_batches += 1
            now = time.monotonic()
            if now - self._last_error < 60:
                return
            self._last_error = now
        # not log.exception: the message may quote the value that was being redacted
        log.error("in-app redaction failed; the batch was not exported (%d so far): %s", self.failed_batches,
                  exception_without_message(sys.exc_info()[1]))
