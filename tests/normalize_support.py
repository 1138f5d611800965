"""Run spans through the real `genai_normalize` processor, built by its registered factory."""

from __future__ import annotations

import json
from typing import Any

from spanhouse.processors.genai_normalize import NormalizeConfig

from spanhouse.batch import Event, Resource, Scope, SpanBatch
from spanhouse.component import ComponentID, CreateSettings, Kind, default_registry
from spanhouse.config import build

T0 = 1_735_689_600_000_000_000  # 2025-01-01T00:00:00Z in ns
_processors: dict[str, Any] = {}


def processor(**config: Any) -> Any:
    """A processor made the way the service makes it: registry factory + config built from YAML data."""
    key = json.dumps(config, sort_keys=True)
    if key not in _processors:
        factory = default_registry().get(Kind.PROCESSOR, "genai_normalize")
        problems: list[str] = []
        cfg = build(NormalizeConfig, config, "processors::genai_normalize", problems)
        assert not problems, problems
        _processors[key] = factory.create(CreateSettings(ComponentID("genai_normalize")), cfg)
    return _processors[key]


def batch_of(*spans: dict, resource: dict | None = None) -> SpanBatch:
    b = SpanBatch()
    b.resources.append(Resource(dict(resource or {"service.name": "svc"})))
    b.scopes.append(Scope("tests"))
    for i, span in enumerate(spans):
        b.append(
            resource=0,
            scope=0,
            trace_id="ab" * 16,
            span_id=f"{i + 1:016x}",
            name=span.get("name", "span"),
            start_time_unix_nano=span.get("start", T0),
            end_time_unix_nano=span.get("end", T0 + 10**9),
            attributes=dict(span["attributes"]),
            events=list(span.get("events", [])),
            status_code=span.get("status", 0),
        )
    return b


def normalize(
    attributes: dict,
    *,
    name: str = "span",
    events: list[Event] | None = None,
    resource: dict | None = None,
    start: int = T0,
    **config: Any,
) -> dict:
    """The span's attributes after the processor ran."""
    b = processor(**config).process(
        batch_of(
            {"attributes": attributes, "name": name, "events": events or [], "start": start},
            resource=resource,
        )
    )
    return b.attributes[0]


def normalize_span(attributes: dict, **kw: Any) -> tuple[dict, list[Event], SpanBatch]:
    """Attributes, events and the whole batch after the processor ran."""
    config = {k: kw.pop(k) for k in list(kw) if k in ("drop_original", "conventions", "span_events")}
    b = processor(**config).process(batch_of({"attributes": attributes, **kw}, resource=kw.get("resource")))
    return b.attributes[0], b.events[0], b


def messages(value: Any) -> list:
    """A canonical messages attribute, parsed."""
    return json.loads(value) if isinstance(value, str) else value
