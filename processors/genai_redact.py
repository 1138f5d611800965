"""`genai_redact`: redacts span content by policy before it is stored.

Each span gets a policy from the configured rules over its span and resource attributes
(`full`, `redacted`, `metadata_only`; no match → `default_policy`, `redacted` unless configured).
Field rules, content rules and detectors then apply to the span's attributes, its events' and links'
attributes and its resource's attributes, for every span kind; detectors also scan the span's
status message. A resource shared by spans of different policies is redacted under the strictest
of them. In a logs pipeline it does the same to log records: attributes, resource and body (under
metadata_only, the body of a GenAI event keeps only its metadata).

Fails closed: a value that cannot be scanned is dropped; if redacting a span fails unexpectedly,
everything but its metadata is dropped and an error is logged. Either way the span records what was
done (`spanhouse.redaction.*`), with key names, never values. See `spanhouse.redact` for the core
and `spanhouse.redact.settings` for the configuration.

Each distinct text of a batch is scanned once (`TextMemo`): texts repeated across spans, such as
system prompts or the conversation history sent again with every model call, cost one scan.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from spanhouse.batch import Event, Link, Resource, SpanBatch
from spanhouse.component import Factory, Kind, Processor
from spanhouse.redact import content
from spanhouse.redact.engine import BODY, SPAN_NAME, STATUS_MESSAGE, Record, Redactor
from spanhouse.redact.settings import STRICTNESS, Policy, RedactionSettings
from spanhouse.redact.text import TextMemo
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
        for i, policy in enumerate(policies):
            record = Record(policy)
            attrs = one(batch, i, policy, record, memo)
            resource_record = resource_records[batch.resource_index[i]]
            if resource_record:
                record.extend(resource_record)
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
            return attrs
        except Exception:
            return self._strip_span(batch, i, record, policy)

    def _log_record(self, batch: Any, i: int, policy: Policy, record: Record, memo: TextMemo | None) -> dict:
        """Log record `i`'s body redacted in place; its new attributes."""
        r = self.redactor
        try:
            attrs = r.attributes(batch.attributes[i], policy, record, "", memo)
            batch.body[i] = r.body(batch.event_name[i], batch.body[i], policy, record, memo)
            return attrs
        except Exception:
            self._failed("log record")
            attrs = _metadata_only(batch.attributes[i], record, "")
            if batch.body[i] is not None:
                batch.body[i] = None
                record.dropped[BODY] = None
            return attrs

    def _resources(self, batch: SpanBatch, policies: list[Policy], memo: TextMemo | None) -> dict[int, Record]:
        """Redact each resource once, under the strictest policy of the spans that point at it."""
        strictest: dict[int, Policy] = {}
        for i, ri in enumerate(batch.resource_index):
            have = strictest.get(ri)
            if have is None or STRICTNESS[policies[i]] > STRICTNESS[have]:
                strictest[ri] = policies[i]
        records = {}
        for ri, policy in strictest.items():
            res = batch.resources[ri]
            record = Record(policy)
            try:
                new = self.redactor.attributes(res.attributes, policy, record, "resource:", memo)
            except Exception:
                new = _metadata_only(res.attributes, record, "resource:")
                self._failed("resource")
            if new is not res.attributes:
                batch.resources[ri] = Resource(new, res.schema_url, res.dropped_attributes_count)
            records[ri] = record
        return records

    def _event(self, e: Event, policy: Policy, record: Record, memo: TextMemo | None) -> Event:
        new = self.redactor.event(e.name, e.attributes, policy, record, memo)
        return e if new is e.attributes else Event(e.time_unix_nano, e.name, new, e.dropped_attributes_count)

    def _link(self, k: Link, policy: Policy, record: Record, memo: TextMemo | None) -> Link:
        new = self.redactor.attributes(k.attributes, policy, record, "link:", memo)
        if new is k.attributes:
            return k
        return Link(k.trace_id, k.span_id, k.trace_state, new, k.flags, k.dropped_attributes_count)

    def _strip_span(self, batch: SpanBatch, i: int, record: Record, policy: Policy) -> dict[str, Any]:
        """Fail closed: keep only metadata and numbers of a span whose redaction raised; its name is
        scanned on its own, or replaced by its operation when that fails too."""
        self._failed("span")
        try:
            batch.name[i] = self.redactor.span_name(batch.name[i], policy, record)
        except Exception:
            op = batch.attributes[i].get(GEN_AI_OPERATION_NAME)
            batch.name[i] = op if type(op) is str else ""
            record.dropped[SPAN_NAME] = None
        batch.events[i] = [
            Event(
                e.time_unix_nano,
                e.name,
                _metadata_only(e.attributes, record, "event:"),
                e.dropped_attributes_count,
            )
            for e in batch.events[i]
        ]
        batch.links[i] = [
            Link(
                k.trace_id,
                k.span_id,
                k.trace_state,
                _metadata_only(k.attributes, record, "link:"),
                k.flags,
                k.dropped_attributes_count,
            )
            for k in batch.links[i]
        ]
        if batch.status_message[i]:
            batch.status_message[i] = ""
            record.dropped[STATUS_MESSAGE] = None
        return _metadata_only(batch.attributes[i], record, "")

    def _failed(self, what: str) -> None:
        with self._lock:
            self.failed_spans += 1
            now = time.monotonic()
            if now - self._last_error_log < 60:
                return
            self._last_error_log = now
        log.exception(
            "genai_redact: redacting a %s failed; its content was dropped (%d so far)",
            what,
            self.failed_spans,
        )


def _metadata_only(attrs: dict[str, Any], record: Record, where: str) -> dict[str, Any]:
    kept = {}
    for key, value in attrs.items():
        if content.is_metadata(key) or type(value) in (int, float, bool):
            kept[key] = value
        else:
            record.dropped[where + key] = None
    return kept


def new_factory() -> Factory:
    return Factory(
        kind=Kind.PROCESSOR,
        type="genai_redact",
        config=GenaiRedactConfig,
        create=lambda settings, cfg: GenaiRedactProcessor(cfg),
        signals=frozenset({"traces", "logs"}),
        stability="development",
    )
