"""The component model: receivers, processors, exporters and extensions, all made by factories.

A component has a `type` (lower_snake_case), an id `type[/name]`, a frozen config dataclass with
defaults and a `validate()`, and a factory. Factories are found through the entry-point group
`spanhouse.components`; the built-ins register there exactly as third-party plug-ins do.

Lifecycle contract for every component: `start(host)` is called once before any data flows;
`shutdown(timeout)` is idempotent, safe without `start`, and flushes what the component holds.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

from spanhouse.batch import SpanBatch

if TYPE_CHECKING:
    from spanhouse.service import Host

ENTRY_POINT_GROUP = "spanhouse.components"
_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_NAME_RE = re.compile(r"^[^\s/]{1,1024}$")


class Kind(str, Enum):
    RECEIVER = "receivers"
    PROCESSOR = "processors"
    EXPORTER = "exporters"
    EXTENSION = "extensions"

    @property
    def singular(self) -> str:
        return self.value[:-1]


@dataclass(frozen=True, order=True)
class ComponentID:
    """`type[/name]`, e.g. `otlp`, `clickhouse/archive`."""

    type: str
    name: str = ""

    @classmethod
    def parse(cls, text: str) -> ComponentID:
        if not isinstance(text, str):
            raise ValueError(f"component id must be a string like 'type' or 'type/name', got {text!r}")
        type_, _, name = text.strip().partition("/")
        if not _TYPE_RE.match(type_):
            raise ValueError(f"invalid component type {type_!r}: use lower_snake_case letters, digits and '_'")
        if "/" in text and not _NAME_RE.match(name):
            raise ValueError(f"invalid component name {name!r} in {text!r}")
        return cls(type_, name)

    def __str__(self) -> str:
        return f"{self.type}/{self.name}" if self.name else self.type


class ConfigIssue(Exception):
    """One problem with a config value; `field` is the path below the object that reported it.

    `serving_only` marks a problem with something outside the configuration that only the running
    component reads (a tokens file or variable, a TLS file): a configuration loaded only to find its
    store (`load_config(..., for_reading=True)`) does not report it."""

    def __init__(self, field: str | None, message: str, *, serving_only: bool = False):
        super().__init__(message)
        self.field = field
        self.message = message
        self.serving_only = serving_only


class Config(Protocol):
    """A frozen dataclass with defaults. `validate` yields every problem it finds; it never raises."""

    def validate(self) -> Iterator[ConfigIssue]: ...


@dataclass(frozen=True)
class Refusal:
    """Records of one batch that a pipeline did not accept: how many, and why (a message for the
    client that names what to fix, never a value)."""

    count: int
    message: str

    @staticmethod
    def merge(refusals: list[Refusal | None]) -> Refusal | None:
        """One answer for a request several pipelines consumed: the largest count (each pipeline saw
        every record; a record refused by two is one record), every distinct message."""
        found = [r for r in refusals if r is not None and r.count]
        if not found:
            return None
        return Refusal(max(r.count for r in found), "; ".join(dict.fromkeys(r.message for r in found)))


class Consumer(Protocol):
    """What a receiver hands decoded spans to. Returns once the spans it accepted are durable, with
    the records it refused (None when it took them all); raises otherwise."""

    def consume(self, batch: SpanBatch) -> Refusal | None: ...


class Component:
    """Base class with no-op lifecycle methods; components override what they need."""

    def start(self, host: Host) -> None:
        """Called once, before data flows. Raise to abort the service start with a message."""

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop and release resources; idempotent, safe without `start`; flush what is held."""


class Processor(Component):
    """`process(batch) -> batch`, nothing else. Never calls the next stage.

    A processor may hold spans (like `batch`): it returns an empty batch and keeps the held spans'
    acknowledgements with them. Such a processor implements `flush()`, which the pipeline calls on a
    timer and at shutdown and whose result continues down the pipeline.
    """

    flush_interval: float | None = None

    def process(self, batch: SpanBatch) -> SpanBatch:
        return batch

    def flush(self, force: bool = False) -> SpanBatch | None:
        """Return held data that is due (all of it when `force`), or None."""
        return None


class Exporter(Component):
    """`consume(batch)` returns once the batch is durable (sent, or in a durable queue), or raises."""

    def consume(self, batch: SpanBatch) -> None:
        raise NotImplementedError

    def refuses(self, batch: SpanBatch) -> tuple[list[int], str] | None:
        """Optional: the indexes of the records of `batch` this exporter would accept but not keep (a
        store that deletes them on arrival), and a message for the client saying why and what to fix;
        None when it keeps them all. The pipeline asks before `consume` and leaves them out of every
        exporter's batch."""
        return None


@dataclass(frozen=True)
class CreateSettings:
    """What a factory gets besides its config: the component's id, the signal it is built for and,
    for receivers, the consumer of each signal it feeds (`{"traces": ..., "logs": ...}`)."""

    id: ComponentID
    signal: str = "traces"
    consumers: Mapping[str, Consumer] = field(default_factory=dict)


@dataclass(frozen=True)
class Factory:
    """Makes one type of component. `config` is the dataclass whose no-argument instance is the default."""

    kind: Kind
    type: str
    config: type
    create: Callable[[CreateSettings, Any], Component]
    signals: frozenset[str] = frozenset({"traces"})
    stability: str = "development"


class Registry:
    """All factories known to this process, by kind and type, loaded from the entry-point group."""

    def __init__(self, factories: list[Factory] | None = None):
        self._factories: dict[tuple[Kind, str], Factory] = {}
        self.load_errors: list[str] = []
        for f in factories or []:
            self.add(f)

    def add(self, factory: Factory) -> None:
        self._factories[(factory.kind, factory.type)] = factory

    def get(self, kind: Kind, type_: str) -> Factory | None:
        return self._factories.get((kind, type_))

    def types(self, kind: Kind) -> list[str]:
        return sorted(t for (k, t) in self._factories if k == kind)

    def __iter__(self) -> Iterator[Factory]:
        return iter(self._factories.values())

    @classmethod
    def from_entry_points(cls) -> Registry:
        reg = cls()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                factory = ep.load()()
                if not isinstance(factory, Factory):
                    raise TypeError(f"returned {type(factory).__name__}, not a Factory")
            except Exception as exc:  # a broken plug-in must not hide the others
                reg.load_errors.append(f"component plug-in {ep.name!r} ({ep.value}) failed to load: {exc}")
                continue
            reg.add(factory)
        return reg


_default: Registry | None = None
_default_lock = threading.Lock()


def default_registry() -> Registry:
    """The process-wide registry, loaded once from entry points."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Registry.from_entry_points()
        return _default
