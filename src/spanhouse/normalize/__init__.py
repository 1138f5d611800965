"""Normalization of foreign GenAI conventions to spanhouse's canonical attributes.

- `load_mappings()` reads and validates the mapping data (`semconv/mappings/*.yaml`, shipped as the
  package `spanhouse.mappings`), raising `MappingError` with every problem and its path.
- `Normalizer` compiles the mappings into dispatch tables and normalizes spans; the `genai_normalize`
  processor is a thin wrapper around it.
- `messages_from_events()` turns deprecated GenAI content events (span events or log records) into
  canonical message attributes, for any component that receives such events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from spanhouse.normalize.engine import Normalizer
from spanhouse.normalize.events import EventContent, convert_events
from spanhouse.normalize.formats import Formats
from spanhouse.normalize.loader import MappingError, load_mappings
from spanhouse.normalize.spec import Mappings

__all__ = ["EventContent", "MappingError", "Mappings", "Normalizer", "load_mappings", "messages_from_events"]


def messages_from_events(
    events: Iterable[Mapping[str, Any]], mappings: Mappings | None = None
) -> EventContent:
    """Canonical content from deprecated GenAI events, in the order given.

    Each event is a mapping with `name` (or `event_name`; Pydantic AI's dicts name themselves with an
    `event.name` key), `attributes` and, for log records, `body` (a map, or a JSON string). Handled:
    `gen_ai.system.message` → system instruction parts; `gen_ai.user|assistant|tool.message` → input
    messages (tool calls and tool responses as parts); `gen_ai.choice` → output messages with their
    finish reason; `gen_ai.content.prompt` / `gen_ai.content.completion` (prompt / completion text
    in an attribute) → input / output messages; `gen_ai.client.inference.operation.details` → its
    current canonical attributes, copied as their registry types (content as JSON text). A span-event
    body is read from the `gen_ai.event.content` attribute (JSON), else from the event's attributes.
    Other events are ignored.

    `EventContent.attributes()` gives the canonical attributes (`gen_ai.input.messages`,
    `gen_ai.output.messages`, `gen_ai.system_instructions` as JSON strings,
    `gen_ai.response.finish_reasons` as a list); set each only where the record has none, since
    attributes beat events carrying the same content. Never raises on malformed events.
    """
    mappings = mappings or load_mappings()
    spec = next((s.events for s in mappings.sources if s.events is not None), None)
    if spec is None:
        return EventContent()
    formats = Formats(mappings.value_maps.get("role"), mappings.value_maps.get("finish_reason"),
                      mappings.value_maps.get("provider"))
    return convert_events(events, spec, formats)
