"""`genai_redact`: redacts span content by policy before it is stored.

Each span gets a policy from the configured rules over its span and resource attributes
(`full`, `redacted`, `metadata_only`; no match → `default_policy`, `redacted` unless configured).
Field rules, content rules and detectors then apply to the span's attributes, its events' and links'
attributes, its resource's and its scope's attributes, for every span kind; detectors also scan the
span's name, status message and trace state, its events' names, its links' trace states, the scope's
name and version, the resource's and the scope's schema URLs, and every attribute key (a key in which
a detector fires is replaced by its redacted form; other keys stay exact). A resource or scope shared by
spans of different policies is redacted under the strictest of them. In a logs pipeline it does the
same to log records: attributes, resource, scope, body (keys of maps included; under metadata_only,
the body of a GenAI event keeps only its metadata), severity text and event name.

Fails closed: a value that cannot be scanned is dropped; if redacting a span fails unexpectedly,
everything but its metadata is dropped and an error is logged. Either way the span records what was
done (`spanhouse.redaction.*`), with key names, never values. See `spanhouse.redact` for the core
and `spanhouse.redact.settings` for the configuration.

Each distinct text of a batch is scanned once (`TextMemo`): texts repeated across spans, such as
system prompts or the conversation history sent again with every model call, cost one scan.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from spanhouse.batch import Event, Link, Resource, Scope, SpanBatch
from spanhouse.component import Factory, Kind, Processor
from spanhouse.otlp.values import exception_without_message
from spanhouse.redact import content
from spanhouse.redact.engine import (
    BODY,
    EVENT_NAME,
    KEY,
    LINK_TRACE_STATE,
    LOG_EVENT_NAME,
    LOG_SEVERITY_TEXT,
    RESOURCE_SCHEMA_URL,
    SCOPE_NAME,
    SCOPE_SCHEMA_URL,
    SCOPE_VERSION,
    SPAN_NAME,
    SPAN_TRACE_STATE,
    STATUS_MESSAGE,
    UNSCANNABLE_KEY,
    Record,
    Redactor,
)
from spanhouse.redact.settings import STRICTNESS, Policy, RedactionSettings
from spanhouse.redact.text import DROP, TextMemo
from spanhouse.semconv import GEN_AI_OPERATION_NAME

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class GenaiRedactConfig(RedactionSettings):
    """The processor's settings are the redaction settings (`spanhouse.redact.settings`)."""


class GenaiRedactProcessor(Processor):
    """Redacts every span of a batch in place and returns the batch.

    Guarantees: every span leaves with `spanhouse.redaction.policy` set; under `redacted` and
    `metadata_only` no string value outside the metadata keys leaves unscanned; the batch keeps all
    its spans and acknowledgements."""

    def __init__(self, config: GenaiRedactConfig):
        self.config = config
        self.redactor = Redactor(config)
        self.failed_spans = 0
        self._last_error_log = 0.0
        self._lock = threading.Lock()

    def process(self, batch: SpanBatch) -> SpanBatch:
        # a LogBatch (the logs pipeline) has bodies: GenAI events carry prompts and completions there
        one = self._log_record if hasattr(batch, "body") else self._span
        r = self.redactor
        policies = [r.policy_for(batch.attributes[i], batch.resource_attributes(i)) for i in range(len(batch))]
        memo = r.memo()
        resource_records = self._resources(batch, policies, memo)
        scope_records = self._scopes(batch, policies, memo)
        for i, policy in enumerate(policies):
            record = Record(policy)
            attrs = one(batch, i, policy, record, memo)
            resource_record = resource_records[batch.resource_index[i]]
            if resource_record:
                record.extend(resource_record)
            scope_record = scope_records[batch.scope_index[i]]
            if scope_record:
                record.extend(scope_record)
            record.write(attrs)
            batch.attributes[i] = attrs
        return batch

    def _span(self, batch: SpanBatch, i: int, policy: Policy, record: Record, memo: TextMemo | None) -> dict:
        """Span `i`'s events, links and status message redacted in place; its new attributes."""
        r = self.redactor
        try:
            attrs = r.attributes(batch.attributes[i], policy, record, "", memo)
            events = batch.events[i]
            if events:
                batch.events[i] = [self._event(e, policy, record, memo) for e in events]
            links = batch.links[i]
            if links:
                batch.links[i] = [self._link(k, policy, record, memo) for k in links]
            if batch.status_message[i]:
                batch.status_message[i] = r.status_message(batch.status_message[i], policy, record, memo)
            batch.name[i] = r.span_name(batch.name[i], policy, record, memo)
            if batch.trace_state[i]:
                batch.trace_state[i] = r.text_field(batch.trace_state[i], SPAN_TRACE_STATE, policy, record, memo)
            return attrs
        except Exception:
            return self._strip_span(batch, i, record, policy)

    def _log_record(self, batch: Any, i: int, policy: Policy, record: Record, memo: TextMemo | None) -> dict:
        """Log record `i`'s body redacted in place; its new attributes."""
        r = self.redactor
        try:
            attrs = r.attributes(batch.attributes[i], policy, record, "", memo)
            event_name = batch.event_name[i]
            batch.body[i] = r.body(event_name, batch.body[i], policy, record, memo)
            if event_name:
                batch.event_name[i] = r.text_field(event_name, LOG_EVENT_NAME, policy, record, memo)
            if batch.severity_text[i]:
                batch.severity_text[i] = r.text_field(batch.severity_text[i], LOG_SEVERITY_TEXT, policy, record, memo)
            return attrs
        except Exception:
            self._failed("log record")
            attrs = _metadata_only(r, batch.attributes[i], policy, record, "")
            if batch.body[i] is not None:
                batch.body[i] = None
                record.dropped[BODY] = None
            batch.event_name[i] = self._alone(batch.event_name[i], LOG_EVENT_NAME, policy, record)
            batch.severity_text[i] = self._alone(batch.severity_text[i], LOG_SEVERITY_TEXT, policy, record)
            return attrs

    @staticmethod
    def _strictest(indexes: list[int], policies: list[Policy]) -> dict[int, Policy]:
        """For each resource (or scope) index, the strictest policy of the records that point at it."""
        strictest: dict[int, Policy] = {}
        for i, ri in enumerate(indexes):
            have = strictest.get(ri)
            if have is None or STRICTNESS[policies[i]] > STRICTNESS[have]:
                strictest[ri] = policies[i]
        return strictest

    def _resources(self, batch: SpanBatch, policies: list[Policy], memo: TextMemo | None) -> dict[int, Record]:
        """Redact each resource once, under the strictest policy of the spans that point at it."""
        r = self.redactor
        records = {}
        for ri, policy in self._strictest(batch.resource_index, policies).items():
            res = batch.resources[ri]
            record = Record(policy)
            try:
                new = r.attributes(res.attributes, policy, record, "resource:", memo)
                schema_url = r.text_field(res.schema_url, RESOURCE_SCHEMA_URL, policy, record, memo)
            except Exception:
                new = _metadata_only(r, res.attributes, policy, record, "resource:")
                schema_url = _dropped(res.schema_url, RESOURCE_SCHEMA_URL, record)
                self._failed("resource")
            if new is not res.attributes or schema_url is not res.schema_url:
                batch.resources[ri] = Resource(new, schema_url, res.dropped_attributes_count)
            records[ri] = record
        return records

    def _scopes(self, batch: SpanBatch, policies: list[Policy], memo: TextMemo | None) -> dict[int, Record]:
        """Redact each instrumentation scope once (name, version, schema URL, attributes), under the
        strictest policy of the records that point at it. Scope names repeat across a batch: the
        memo scans each distinct one once."""
        r = self.redactor
        records = {}
        for si, policy in self._strictest(batch.scope_index, policies).items():
            scope = batch.scopes[si]
            record = Record(policy)
            try:
                attrs = r.attributes(scope.attributes, policy, record, "scope:", memo)
                name = r.text_field(scope.name, SCOPE_NAME, policy, record, memo)
                version = r.text_field(scope.version, SCOPE_VERSION, policy, record, memo)
                schema_url = r.text_field(scope.schema_url, SCOPE_SCHEMA_URL, policy, record, memo)
            except Exception:
                self._failed("scope")
                attrs = _metadata_only(r, scope.attributes, policy, record, "scope:")
                name = _dropped(scope.name, SCOPE_NAME, record)
                version = _dropped(scope.version, SCOPE_VERSION, record)
                schema_url = _dropped(scope.schema_url, SCOPE_SCHEMA_URL, record)
            if (attrs is not scope.attributes or name is not scope.name or version is not scope.version
                    or schema_url is not scope.schema_url):
                batch.scopes[si] = Scope(name, version, attrs, schema_url, scope.dropped_attributes_count)
            records[si] = record
        return records

    def _event(self, e: Event, policy: Policy, record: Record, memo: TextMemo | None) -> Event:
        r = self.redactor
        new = r.event(e.name, e.attributes, policy, record, memo)
        name = r.event_name(e.name, policy, record, memo) if e.name else e.name
        if new is e.attributes and name is e.name:
            return e
        return Event(e.time_unix_nano, name, new, e.dropped_attributes_count)

    def _link(self, k: Link, policy: Policy, record: Record, memo: TextMemo | None) -> Link:
        r = self.redactor
        new = r.attributes(k.attributes, policy, record, "link:", memo)
        state = r.text_field(k.trace_state, LINK_TRACE_STATE, policy, record, memo) if k.trace_state else k.trace_state
        if new is k.attributes and state is k.trace_state:
            return k
        return Link(k.trace_id, k.span_id, state, new, k.flags, k.dropped_attributes_count)

    def _alone(self, text: str, label: str, policy: Policy, record: Record) -> str:
        """Fail closed for one string field: scanned on its own, or dropped when that fails too."""
        if not text:
            return text
        try:
            return self.redactor.text_field(text, label, policy, record)
        except Exception:
            return _dropped(text, label, record)

    def _strip_span(self, batch: SpanBatch, i: int, record: Record, policy: Policy) -> dict[str, Any]:
        """Fail closed: keep only metadata and numbers of a span whose redaction raised; its name, its
        events' names and the trace states are scanned on their own, and dropped when that fails too
        (the span name is then replaced by its operation)."""
        self._failed("span")
        r = self.redactor
        try:
            batch.name[i] = r.span_name(batch.name[i], policy, record)
        except Exception:
            op = batch.attributes[i].get(GEN_AI_OPERATION_NAME)
            batch.name[i] = op if type(op) is str else ""
            record.dropped[SPAN_NAME] = None
        batch.trace_state[i] = self._alone(batch.trace_state[i], SPAN_TRACE_STATE, policy, record)
        batch.events[i] = [
            Event(
                e.time_unix_nano,
                self._alone(e.name, EVENT_NAME, policy, record),
                _metadata_only(r, e.attributes, policy, record, "event:"),
                e.dropped_attributes_count,
            )
            for e in batch.events[i]
        ]
        batch.links[i] = [
            Link(
                k.trace_id,
                k.span_id,
                self._alone(k.trace_state, LINK_TRACE_STATE, policy, record),
                _metadata_only(r, k.attributes, policy, record, "link:"),
                k.flags,
                k.dropped_attributes_count,
            )
            for k in batch.links[i]
        ]
        if batch.status_message[i]:
            batch.status_message[i] = ""
            record.dropped[STATUS_MESSAGE] = None
        return _metadata_only(r, batch.attributes[i], policy, record, "")

    def _failed(self, what: str) -> None:
        with self._lock:
            self.failed_spans += 1
            now = time.monotonic()
            if now - self._last_error_log < 60:
                return
            self._last_error_log = now
        # not log.exception: the message may quote the value that was being redacted
        log.error(
            "genai_redact: redacting a %s failed; its content was dropped (%d so far): %s",
            what,
            self.failed_spans,
            exception_without_message(sys.exc_info()[1]),
        )


def _metadata_only(r: Redactor, attrs: dict[str, Any], policy: Policy, record: Record, where: str) -> dict[str, Any]:
    """Only the metadata and numbers of `attrs`, for a map whose redaction failed. A key is kept only
    if it can be scanned (and under its redacted form when a detector fires in it); the record names
    keys as redacted, never as sent."""
    kept = {}
    for key, value in attrs.items():
        try:
            new_key = r.scan_key(key)[0] if policy is not Policy.FULL else key
        except Exception:
            new_key = DROP
        label = UNSCANNABLE_KEY if new_key is DROP else new_key
        if new_key is not DROP and (content.is_metadata(key) or type(value) in (int, float, bool)):
            kept[new_key] = value
            if new_key != key:
                record.masked[where + KEY + new_key] = None
        else:
            record.dropped[where + label] = None
    return kept


def _dropped(text: str, label: str, record: Record) -> str:
    if text:
        record.dropped[label] = None
    return ""


def new_factory() -> Factory:
    return Factory(
        kind=Kind.PROCESSOR,
        type="genai_redact",
        config=GenaiRedactConfig,
        create=lambda settings, cfg: GenaiRedactProcessor(cfg),
        signals=frozenset({"traces", "logs"}),
        stability="development",
    )
