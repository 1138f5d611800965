"""`LogBatch`: OTLP log records as the unit of work of a `logs` pipeline.

The counterpart of `SpanBatch` for the logs signal, with the same contract, so the pipeline, the
`batch` processor and the exporter helper handle both alike: parallel columns, resources and scopes
stored once and referenced by index, attribute and body values kept as Python values (str, bool,
int, float, bytes, list, dict), and the acknowledgements of the requests the records came from.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from spanhouse.batch import Ack, Attributes, Resource, Scope, split_acks
from spanhouse.errors import ExportError, RetryableError

_LOG_COLUMNS = (
    "time_unix_nano",
    "observed_time_unix_nano",
    "severity_number",
    "severity_text",
    "body",
    "attributes",
    "dropped_attributes_count",
    "flags",
    "trace_id",
    "span_id",
    "event_name",
)


class LogBatch:
    """Log records as parallel columns, with resources and scopes referenced by index.

    Guarantees: every column has `len(self)` entries; `resource_index[i]` and `scope_index[i]` are valid
    indexes into `resources` and `scopes`; `trace_id` and `span_id` are lowercase hex or `""` when the
    record is not tied to a span; `body` is the record's AnyValue as a Python value (None when absent).
    """

    __slots__ = _LOG_COLUMNS + ("resource_index", "scope_index", "resources", "scopes", "acks")

    def __init__(self) -> None:
        self.time_unix_nano: list[int] = []
        self.observed_time_unix_nano: list[int] = []
        self.severity_number: list[int] = []
        self.severity_text: list[str] = []
        self.body: list[Any] = []
        self.attributes: list[Attributes] = []
        self.dropped_attributes_count: list[int] = []
        self.flags: list[int] = []
        self.trace_id: list[str] = []
        self.span_id: list[str] = []
        self.event_name: list[str] = []
        self.resource_index: list[int] = []
        self.scope_index: list[int] = []
        self.resources: list[Resource] = []
        self.scopes: list[Scope] = []
        self.acks: list[Ack] = []

    def __len__(self) -> int:
        return len(self.time_unix_nano)

    def __repr__(self) -> str:
        return f"LogBatch({len(self)} records, {len(self.resources)} resources)"

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
    def concat(cls, batches: Sequence[LogBatch]) -> LogBatch:
        """One batch with the records, resources, scopes and acknowledgements of all `batches`, in order."""
        if len(batches) == 1:
            return batches[0]
        out = cls()
        for b in batches:
            r_off, s_off = len(out.resources), len(out.scopes)
            for col in _LOG_COLUMNS:
                getattr(out, col).extend(getattr(b, col))
            out.resource_index.extend(i + r_off for i in b.resource_index)
            out.scope_index.extend(i + s_off for i in b.scope_index)
            out.resources.extend(b.resources)
            out.scopes.extend(b.scopes)
            out.acks.extend(b.acks)
        return out

    def take(self, indexes: Iterable[int]) -> LogBatch:
        """A new batch with only the records at `indexes` (resources and scopes are shared, not copied)."""
        idx = list(indexes)
        out = LogBatch()
        for col in _LOG_COLUMNS + ("resource_index", "scope_index"):
            src = getattr(self, col)
            setattr(out, col, [src[i] for i in idx])
        out.resources = self.resources
        out.scopes = self.scopes
        return out

    def split(self, size: int) -> list[LogBatch]:
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

    def copy(self) -> LogBatch:
        """A copy whose attribute maps and bodies can be changed without touching this batch."""
        out = LogBatch()
        for col in _LOG_COLUMNS:
            setattr(out, col, list(getattr(self, col)))
        out.attributes = [dict(a) for a in self.attributes]
        out.body = [_copy_value(b) for b in self.body]
        out.resource_index = list(self.resource_index)
        out.scope_index = list(self.scope_index)
        out.resources = [Resource(dict(r.attributes), r.schema_url, r.dropped_attributes_count)
                         for r in self.resources]
        out.scopes = [Scope(s.name, s.version, dict(s.attributes), s.schema_url, s.dropped_attributes_count)
                      for s in self.scopes]
        return out

    def append(
        self,
        *,
        resource: int,
        scope: int,
        time_unix_nano: int = 0,
        observed_time_unix_nano: int = 0,
        severity_number: int = 0,
        severity_text: str = "",
        body: Any = None,
        attributes: Attributes | None = None,
        dropped_attributes_count: int = 0,
        flags: int = 0,
        trace_id: str = "",
        span_id: str = "",
        event_name: str = "",
    ) -> None:
        """Add one record that belongs to `resources[resource]` and `scopes[scope]`."""
        self.resource_index.append(resource)
        self.scope_index.append(scope)
        self.time_unix_nano.append(time_unix_nano)
        self.observed_time_unix_nano.append(observed_time_unix_nano)
        self.severity_number.append(severity_number)
        self.severity_text.append(severity_text)
        self.body.append(body)
        self.attributes.append(attributes if attributes is not None else {})
        self.dropped_attributes_count.append(dropped_attributes_count)
        self.flags.append(flags)
        self.trace_id.append(trace_id)
        self.span_id.append(span_id)
        self.event_name.append(event_name)


def _copy_value(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _copy_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy_value(x) for x in v]
    return v
