"""`LogBatch`: OTLP log records as the unit of work of a `logs` pipeline.

The counterpart of `SpanBatch` for the logs signal, with the same contract, so the pipeline, the
`batch` processor and the exporter helper handle both alike: parallel columns, resources and scopes
stored once and referenced by index, attribute and body values kept as Python values (str, bool,
int, float, bytes, list, dict), and the acknowledgements of the requests the records came from.
"""

from __future__ import annotations

from typing import Any

from spanhouse.batch import Attributes, ColumnBatch

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


class LogBatch(ColumnBatch):
    """Log records as parallel columns. `trace_id` and `span_id` are lowercase hex or `""` when the
    record is not tied to a span; `body` is the record's AnyValue as a Python value (None when absent)."""

    COLUMNS = _LOG_COLUMNS
    __slots__ = _LOG_COLUMNS

    time_unix_nano: list[int]
    observed_time_unix_nano: list[int]
    severity_number: list[int]
    severity_text: list[str]
    body: list[Any]
    attributes: list[Attributes]
    dropped_attributes_count: list[int]
    flags: list[int]
    trace_id: list[str]
    span_id: list[str]
    event_name: list[str]

    def __repr__(self) -> str:
        return f"LogBatch({len(self)} records, {len(self.resources)} resources)"

    def copy(self) -> LogBatch:
        """A copy whose attribute maps and bodies can be changed without touching this batch."""
        out = super().copy()
        out.body = [_copy_value(b) for b in self.body]
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
