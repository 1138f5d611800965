"""The typed form of the mapping files (`semconv/mappings/*.yaml`): what `loader` builds and
`tables` compiles. Plain frozen dataclasses; the format is documented in semconv/mappings/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ValueMap:
    """A named map of foreign values to canonical ones. Lookups ignore case; `None` means "no value"."""

    name: str
    map: dict[str, str | None]
    by_prefix: bool = False
    """When the whole value is unknown, try its dot-separated prefixes, longest first."""
    unmapped: str = "keep"
    """What an unknown value becomes: `keep` it as sent, its `first_segment` (before the first dot), or
    nothing (`drop`: the rule is skipped)."""


@dataclass(frozen=True)
class Rule:
    """One foreign attribute → one canonical attribute (a rename, possibly converting the value)."""

    key: str
    to: str
    order: int
    source: str
    values: ValueMap | None = None
    scale: float | None = None
    const: Any = None
    hash: str = ""
    format: str = ""
    only: frozenset[str] | None = None
    weak: bool = False
    fallback: bool = False
    drop: bool = True


@dataclass(frozen=True)
class OperationRule:
    """`gen_ai.operation.name` from a foreign attribute's value, a key's presence, or the span name.
    A value that maps to None says "this span is not a GenAI operation" and stops inference."""

    order: int
    source: str
    key: str = ""
    values: dict[str, str | None] = field(default_factory=dict)
    present: str = ""
    operation: str | None = None
    span_names: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class SpanNameRule:
    """The span's name as a canonical value, on spans of the file's convention whose operation is in
    `only`: the last resort for that attribute (Langfuse and MLflow name a tool only in its span name)."""

    to: str
    order: int
    source: str
    only: frozenset[str] | None = None


@dataclass(frozen=True)
class InferRule:
    operation: str
    any_of: tuple[str, ...]


@dataclass(frozen=True)
class ObjectField:
    """One canonical attribute read from a JSON object: the first of `paths` present wins; a path given
    as a list of paths is their sum. `uncached` marks an input count that excludes cache tokens."""

    to: str
    paths: tuple[tuple[str, ...] | str, ...]
    uncached: bool = False
    values: ValueMap | None = None
    format: str = ""


@dataclass(frozen=True)
class ObjectRule:
    """A JSON object attribute (string or structured) exploded into several canonical attributes."""

    key: str
    order: int
    source: str
    fields: tuple[ObjectField, ...] = ()
    expand: str = ""
    only: frozenset[str] | None = None
    weak: bool = False
    drop: bool = True


@dataclass(frozen=True)
class FamilyList:
    path: str
    item: dict[str, str]


@dataclass(frozen=True)
class FamilyRule:
    """Flattened, indexed attributes `<prefix>.<i>.<sub.path>` rebuilt into one canonical value."""

    prefix: str
    to: str
    order: int
    source: str
    format: str = "messages"
    item: dict[str, str] = field(default_factory=dict)
    lists: dict[str, FamilyList] = field(default_factory=dict)
    bare: bool = False
    only: frozenset[str] | None = None
    weak: bool = False
    drop: bool = True


@dataclass(frozen=True)
class CombineRule:
    """A canonical value decided by two foreign attributes together (`"<a>|<b>"` → value)."""

    to: str
    keys: tuple[str, str]
    values: dict[str, str | None]
    order: int
    source: str


@dataclass(frozen=True)
class SumRule:
    """A canonical number that is the sum of the foreign attributes present (cache reads + writes)."""

    to: str
    keys: tuple[str, ...]
    order: int
    source: str
    only: frozenset[str] | None = None


@dataclass(frozen=True)
class ComposePart:
    keys: tuple[str, ...]
    type: str


@dataclass(frozen=True)
class ComposeRule:
    """One message built from parts held in separate attributes (Vercel AI SDK output)."""

    to: str
    role: str
    parts: tuple[ComposePart, ...]
    finish_reason: tuple[str, ...]
    order: int
    source: str


@dataclass(frozen=True)
class FixRule:
    """In-place correction of a known misspelled value of a canonical attribute."""

    key: str
    source: str
    values: ValueMap | None = None
    format: str = ""


@dataclass(frozen=True)
class EventSpec:
    """How deprecated content events (as span events or log records) become message attributes."""

    kinds: dict[str, dict[str, Any]]
    name_attribute: str = ""
    body_attributes: tuple[str, ...] = ()
    meta_attributes: tuple[str, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class Source:
    """One mapping file, validated."""

    name: str
    source: str
    precedence: int
    description: str = ""
    detect: tuple[str, ...] = ()
    decode_json: bool = False
    operations: tuple[OperationRule, ...] = ()
    infer: tuple[InferRule, ...] = ()
    rules: tuple[Rule, ...] = ()
    objects: tuple[ObjectRule, ...] = ()
    families: tuple[FamilyRule, ...] = ()
    combines: tuple[CombineRule, ...] = ()
    sums: tuple[SumRule, ...] = ()
    composes: tuple[ComposeRule, ...] = ()
    fixes: tuple[FixRule, ...] = ()
    span_name: tuple[SpanNameRule, ...] = ()
    resource_rules: tuple[Rule, ...] = ()
    events: EventSpec | None = None
    keep: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mappings:
    """Every loaded source, in precedence order, plus the shared value maps and operation groups."""

    sources: tuple[Source, ...]
    value_maps: dict[str, ValueMap]
    groups: dict[str, frozenset[str]]

    def names(self) -> list[str]:
        return [s.name for s in self.sources]

    def source(self, name: str) -> Source:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(name)
