"""`SpanBatch`: the in-memory unit of work that crosses every pipeline boundary.

A batch is column-oriented: one list per span field, all of the same length. Resources and
instrumentation scopes are stored once and referenced by index, as in OTLP. Attribute values keep
their OTLP types as Python values (str, bool, int, float, bytes, list, dict); stringification happens
once, in the exporter that needs strings.

Processors read and write the columns in place and return the batch (or a new one); they never call
the next stage. A batch also carries the acknowledgements of the requests it contains, so a receiver
can answer only once the spans are durable, even after a batching processor merged many requests.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from spanhouse.errors import ExportError, RetryableError

Attributes = dict[str, Any]


@dataclass(slots=True)
class Resource:
    """The entity that produced spans; `attributes` is shared by every span that points at it."""

    attributes: Attributes
    schema_url: str = ""
    dropped_attributes_count: int = 0


@dataclass(slots=True)
class Scope:
    """The instrumentation scope (library) that produced spans."""

    name: str = ""
    version: str = ""
    attributes: Attributes = field(default_factory=dict)
    schema_url: str = ""
    dropped_attributes_count: int = 0


@dataclass(slots=True)
class Event:
    """A timestamped annotation on a span."""

    time_unix_nano: int
    name: str
    attributes: Attributes
    dropped_attributes_count: int = 0


@dataclass(slots=True)
class Link:
    """A reference from a span to another span, in this trace or another."""

    trace_id: str
    span_id: str
    trace_state: str
    attributes: Attributes
    flags: int = 0
    dropped_attributes_count: int = 0


class Ack:
    """Completion of one request's spans. `wait` returns when they are durable, or raises the failure.

    The failure is handed to the one waiter and not kept: an acknowledgement holding the exception
    raised from its own `wait` would form a cycle (exception → traceback → waiting frames → this
    acknowledgement) that keeps the request's data alive until the cycle collector runs."""

    __slots__ = ("_done", "_error")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._error: BaseException | None = None

    def succeed(self) -> None:
        self._done.set()

    def fail(self, error: BaseException) -> None:
        if not self._done.is_set():
            self._error = error
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> None:
        if not self._done.wait(timeout):
            raise RetryableError(f"spans were not stored within {timeout:g}s; retry later", retry_after=5)
        error, self._error = self._error, None
        if error is not None:
            try:
                raise error
            finally:
                del error  # nor may this frame, which the traceback holds


class _AckGroup:
    """Resolves `parents` when all `parts` succeeded, or at the first failure of any part."""

    def __init__(self, parents: list[Ack], parts: int):
        self._parents = parents
        self._left = parts
        self._lock = threading.Lock()

    def part_succeeded(self) -> None:
        with self._lock:
            self._left -= 1
            done = self._left == 0
        if done:
            for a in self._parents:
                a.succeed()

    def part_failed(self, error: BaseException) -> None:
        for a in self._parents:
            a.fail(error)


class PartAck(Ack):
    """The acknowledgement of one piece of a split batch; reports to its group."""

    __slots__ = ("_group",)

    def __init__(self, group: _AckGroup):
        super().__init__()
        self._group = group

    def succeed(self) -> None:
        if not self.done:
            super().succeed()
            self._group.part_succeeded()

    def fail(self, error: BaseException) -> None:
        if not self.done:
            super().fail(error)
            self._group.part_failed(error)


def split_acks(acks: list[Ack], parts: int) -> list[Ack]:
    """One acknowledgement per part; `acks` succeed when every part has, and fail when any part fails."""
    group = _AckGroup(acks, parts)
    return [PartAck(group) for _ in range(parts)]


_SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "trace_state",
    "flags",
    "name",
    "kind",
    "start_time_unix_nano",
    "end_time_unix_nano",
    "attributes",
    "dropped_attributes_count",
    "events",
    "dropped_events_count",
    "links",
    "dropped_links_count",
    "status_code",
    "status_message",
)


class ColumnBatch:
    """Records of one signal as parallel columns (`COLUMNS`), with resources and scopes referenced by
    index and the acknowledgements of the requests the records came from.

    Guarantees: every column has `len(self)` entries; `resource_index[i]` and `scope_index[i]` are valid
    indexes into `resources` and `scopes`. Pipelines, the `batch` processor and the exporter helper
    handle every subclass alike.
    """

    COLUMNS: tuple[str, ...] = ()
    __slots__ = ("resource_index", "scope_index", "resources", "scopes", "acks")

    def __init__(self) -> None:
        for col in self.COLUMNS:
            setattr(self, col, [])
        self.resource_index: list[int] = []
        self.scope_index: list[int] = []
        self.resources: list[Resource] = []
        self.scopes: list[Scope] = []
        self.acks: list[Ack] = []

    def __len__(self) -> int:
        return len(getattr(self, self.COLUMNS[0]))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} records, {len(self.resources)} resources)"

    def resource_attributes(self, i: int) -> Attributes:
        """The resource attributes of record `i` (shared with the other records of that resource)."""
        return self.resources[self.resource_index[i]].attributes

    # --- acknowledgements -------------------------------------------------------------------

    def succeed(self) -> None:
        """Mark every request in this batch as durably stored."""
        for ack in self.acks:
            ack.succeed()
        self.acks = []

    def fail(self, error: BaseException) -> None:
        """Mark every request in this batch as failed with `error`."""
        if not isinstance(error, ExportError):
            error = RetryableError(str(error) or type(error).__name__)
        for ack in self.acks:
            ack.fail(error)
        self.acks = []

    # --- building and combining -------------------------------------------------------------

    @classmethod
    def concat(cls, batches: Sequence[Self]) -> Self:
        """One batch with the records, resources, scopes and acknowledgements of all `batches`, in order."""
        if len(batches) == 1:
            return batches[0]
        out = cls()
        for b in batches:
            r_off, s_off = len(out.resources), len(out.scopes)
            for col in cls.COLUMNS:
                getattr(out, col).extend(getattr(b, col))
            out.resource_index.extend(i + r_off for i in b.resource_index)
            out.scope_index.extend(i + s_off for i in b.scope_index)
            out.resources.extend(b.resources)
            out.scopes.extend(b.scopes)
            out.acks.extend(b.acks)
        return out

    def take(self, indexes: Iterable[int]) -> Self:
        """A new batch with only the records at `indexes` (resources and scopes are shared, not copied)."""
        idx = list(indexes)
        out = type(self)()
        for col in self.COLUMNS + ("resource_index", "scope_index"):
            src = getattr(self, col)
            setattr(out, col, [src[i] for i in idx])
        out.resources = self.resources
        out.scopes = self.scopes
        return out

    def split(self, size: int) -> list[Self]:
        """Consecutive batches of at most `size` records. The requests in this batch are acknowledged
        when every piece is stored, and fail if any piece fails."""
        n = len(self)
        if n <= size:
            return [self]
        pieces = [self.take(range(start, min(start + size, n))) for start in range(0, n, size)]
        if self.acks:
            for piece, ack in zip(pieces, split_acks(self.acks, len(pieces))):
                piece.acks = [ack]
        return pieces

    def copy(self) -> Self:
        """A copy whose attribute maps (and resources and scopes) can be changed without touching this
        batch; subclasses copy their other mutable columns too."""
        out = type(self)()
        for col in self.COLUMNS:
            setattr(out, col, list(getattr(self, col)))
        out.attributes = [dict(a) for a in self.attributes]  # type: ignore[attr-defined]
        out.resource_index = list(self.resource_index)
        out.scope_index = list(self.scope_index)
        out.resources = [Resource(dict(r.attributes), r.schema_url, r.dropped_attributes_count)
                         for r in self.resources]
        out.scopes = [Scope(s.name, s.version, dict(s.attributes), s.schema_url, s.dropped_attributes_count)
                      for s in self.scopes]
        return out


STATUS_CODE_ERROR = 2
"""The OTLP status code of a failed span, as `SpanBatch.status_code` holds it."""


class SpanBatch(ColumnBatch):
    """Spans as parallel columns. Ids are lowercase hex (`""` for an absent parent); kinds and status
    codes are the OTLP integers; attribute values keep their OTLP types as Python values."""

    COLUMNS = _SPAN_COLUMNS
    __slots__ = _SPAN_COLUMNS

    trace_id: list[str]
    span_id: list[str]
    parent_span_id: list[str]
    trace_state: list[str]
    flags: list[int]
    name: list[str]
    kind: list[int]
    start_time_unix_nano: list[int]
    end_time_unix_nano: list[int]
    attributes: list[Attributes]
    dropped_attributes_count: list[int]
    events: list[list[Event]]
    dropped_events_count: list[int]
    links: list[list[Link]]
    dropped_links_count: list[int]
    status_code: list[int]
    status_message: list[str]

    def __repr__(self) -> str:
        return f"SpanBatch({len(self)} spans, {len(self.resources)} resources)"

    def copy(self) -> SpanBatch:
        """A copy whose attribute maps, events and links can be changed without touching this batch."""
        out = super().copy()
        out.events = [[Event(e.time_unix_nano, e.name, dict(e.attributes), e.dropped_attributes_count)
                       for e in evs] for evs in self.events]
        out.links = [[Link(k.trace_id, k.span_id, k.trace_state, dict(k.attributes), k.flags,
                           k.dropped_attributes_count) for k in lks] for lks in self.links]
        return out

    def append(
        self,
        *,
        resource: int,
        scope: int,
        trace_id: str,
        span_id: str,
        name: str,
        start_time_unix_nano: int,
        end_time_unix_nano: int,
        parent_span_id: str = "",
        trace_state: str = "",
        flags: int = 0,
        kind: int = 0,
        attributes: Attributes | None = None,
        events: list[Event] | None = None,
        links: list[Link] | None = None,
        status_code: int = 0,
        status_message: str = "",
        dropped_attributes_count: int = 0,
        dropped_events_count: int = 0,
        dropped_links_count: int = 0,
    ) -> None:
        """Add one span that belongs to `resources[resource]` and `scopes[scope]`."""
        self.resource_index.append(resource)
        self.scope_index.append(scope)
        self.trace_id.append(trace_id)
        self.span_id.append(span_id)
        self.parent_span_id.append(parent_span_id)
        self.trace_state.append(trace_state)
        self.flags.append(flags)
        self.name.append(name)
        self.kind.append(kind)
        self.start_time_unix_nano.append(start_time_unix_nano)
        self.end_time_unix_nano.append(end_time_unix_nano)
        self.attributes.append(attributes if attributes is not None else {})
        self.dropped_attributes_count.append(dropped_attributes_count)
        self.events.append(events or [])
        self.dropped_events_count.append(dropped_events_count)
        self.links.append(links or [])
        self.dropped_links_count.append(dropped_links_count)
        self.status_code.append(status_code)
        self.status_message.append(status_message)
