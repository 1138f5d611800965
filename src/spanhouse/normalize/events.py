"""Deprecated GenAI content events (log records or span events) → canonical message attributes.

The event names and where each kind's content lives are mapping data (`events:` in otel_genai.yaml);
the public entry point is `spanhouse.normalize.messages_from_events`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from spanhouse import semconv as sc
from spanhouse.normalize.coerce import coerce_current
from spanhouse.normalize.formats import Formats, Message, dumps, loads
from spanhouse.normalize.spec import EventSpec


class EventContent:
    """Canonical content rebuilt from deprecated GenAI events: input messages, output messages,
    system instruction parts, and canonical attributes copied from `operation.details` events."""

    __slots__ = ("input", "output", "system", "copied", "finish_reasons")

    def __init__(self) -> None:
        self.input: list[Message] = []
        self.output: list[Message] = []
        self.system: list[dict] = []
        self.copied: dict[str, Any] = {}
        self.finish_reasons: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.input or self.output or self.system or self.copied)

    def attributes(self) -> dict[str, Any]:
        """The canonical attributes: messages as JSON strings, finish reasons as a string list, then
        any attribute copied from an `operation.details` event that is not already among them."""
        out: dict[str, Any] = {}
        if self.input:
            out[sc.GEN_AI_INPUT_MESSAGES] = dumps(self.input)
        if self.output:
            out[sc.GEN_AI_OUTPUT_MESSAGES] = dumps(self.output)
        if self.system:
            out[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = dumps(self.system)
        if self.finish_reasons:
            out[sc.GEN_AI_RESPONSE_FINISH_REASONS] = list(self.finish_reasons)
        for k, v in self.copied.items():
            out.setdefault(k, v)
        return out


def convert_events(events: Iterable[Mapping[str, Any]], spec: EventSpec, formats: Formats) -> EventContent:
    """See `spanhouse.normalize.messages_from_events`."""
    out = EventContent()
    meta = set(spec.meta_attributes)
    for ev in events:
        if not isinstance(ev, Mapping):
            continue
        attrs = ev.get("attributes") or {}
        if not isinstance(attrs, Mapping):
            attrs = {}
        name = (
            ev.get("name")
            or ev.get("event_name")
            or (attrs.get(spec.name_attribute) if spec.name_attribute else None)
        )
        kind = spec.kinds.get(name) if isinstance(name, str) else None
        if kind is None:
            continue
        into = kind["into"]
        if into == "details":
            for k, v in attrs.items():
                if k not in meta and k not in out.copied and (v := coerce_current(k, v)) is not None:
                    out.copied[k] = v
            continue
        body = ev.get("body")
        if body is None and kind.get("attribute"):
            body = attrs.get(kind["attribute"])
        if body is None:
            body = next((attrs[a] for a in spec.body_attributes if a in attrs), None)
        if body is None:
            body = {k: v for k, v in attrs.items() if k not in meta}
        body = loads(body)
        if into == "system":
            content = body.get("content") if isinstance(body, dict) else body
            out.system += formats.parts(content)
        elif into == "input":
            if kind.get("role"):
                m = formats.message(body, kind["role"])
                msgs = [m] if m else []
            else:
                msgs = formats.messages(body, "user") or []
            for m in msgs:
                if m.get("role") == "system":
                    out.system += m.get("parts", [])
                elif m.get("parts"):
                    out.input.append(m)
        else:
            if kind.get("role") and isinstance(body, dict):
                inner = body.get("message", body)
                if inner is not body and (calls := loads(body.get("tool_calls"))):
                    # the spec (and OpenLLMetry) put a choice's tool calls beside its message
                    inner = loads(inner)
                    inner = dict(inner) if isinstance(inner, dict) else {"content": inner}
                    inner.setdefault("tool_calls", calls)
                m = formats.message(inner if inner is not None else "", kind["role"])
                if m is not None and body.get("finish_reason") is not None:
                    m["finish_reason"] = body["finish_reason"]
                msgs = [m] if m else []
            else:
                msgs = formats.messages(body, "assistant", output=True) or []
            for m in msgs:
                if not m.get("parts"):
                    continue
                if "finish_reason" in m:
                    out.finish_reasons.append(str(m["finish_reason"]))
                    m["finish_reason"] = formats.finish_reason(m["finish_reason"])
                out.output.append(m)
    return out
