"""`clickhouse` exporter: stores spans in `otel_traces` (the contrib exporter's layout) through
`clickhouse-connect`, on the embedded engine (`chdb://PATH`) or a server (`http(s)://host:port`).

The derived tables (`otel_traces_trace_id_ts`, `genai_spans`, `genai_evaluations`) are filled by
materialized views inside ClickHouse, so one insert per batch is all the exporter does.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Iterator

from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from spanhouse import memory, semconv
from spanhouse.batch import SpanBatch
from spanhouse.component import ConfigIssue, Factory, Kind
from spanhouse.exporters.clickhouse_encode import FORMAT as ENCODED_FORMAT, encode_columns
from spanhouse.exporters.helper import ExporterHelperSettings, HelperExporter, Pusher
from spanhouse.errors import PermanentError, RetryableError
from spanhouse.otlp.values import string_map
from spanhouse.store import StoreError, StoreSettings, connect, create_schema

log = logging.getLogger(__name__)

SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODES = ("Unset", "Ok", "Error")

TRACE_COLUMNS = (
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind", "ServiceName",
    "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes", "Duration", "StatusCode",
    "StatusMessage", "Events.Timestamp", "Events.Name", "Events.Attributes", "Links.TraceId", "Links.SpanId",
    "Links.TraceState", "Links.Attributes",
)

# ClickHouse error codes that mean the data or the statement is wrong, so a retry cannot help.
_PERMANENT_CODES = {6, 27, 33, 38, 41, 53, 62, 69, 70, 72, 117, 130, 131, 321}


@dataclass(frozen=True, kw_only=True)
class ClickHouseConfig(StoreSettings, ExporterHelperSettings):
    """Where and how to store spans, plus the exporter helper's `timeout`, `sending_queue` and
    `retry_on_failure`."""

    def validate(self) -> Iterator[ConfigIssue]:
        yield from StoreSettings.validate(self)
        yield from ExporterHelperSettings.validate(self)


def trace_columns(batch: SpanBatch) -> list[list[Any]]:
    """The batch as the 22 insert columns of `otel_traces`, in `TRACE_COLUMNS` order."""
    res_maps = [string_map(r.attributes) for r in batch.resources]
    services = [str(r.attributes.get(semconv.SERVICE_NAME, "")) for r in batch.resources]
    starts, ends = batch.start_time_unix_nano, batch.end_time_unix_nano
    ri = batch.resource_index
    scopes = [batch.scopes[i] for i in batch.scope_index]
    ev_ts, ev_names, ev_attrs = [], [], []
    for evs in batch.events:
        ev_ts.append([e.time_unix_nano for e in evs])
        ev_names.append([e.name for e in evs])
        ev_attrs.append([string_map(e.attributes) for e in evs])
    lk_trace, lk_span, lk_state, lk_attrs = [], [], [], []
    for lks in batch.links:
        lk_trace.append([k.trace_id for k in lks])
        lk_span.append([k.span_id for k in lks])
        lk_state.append([k.trace_state for k in lks])
        lk_attrs.append([string_map(k.attributes) for k in lks])
    return [
        starts,
        batch.trace_id,
        batch.span_id,
        batch.parent_span_id,
        batch.trace_state,
        batch.name,
        [SPAN_KINDS[k] if 0 <= k < 6 else SPAN_KINDS[0] for k in batch.kind],
        [services[i] for i in ri],
        [res_maps[i] for i in ri],
        [s.name for s in scopes],
        [s.version for s in scopes],
        [string_map(a) for a in batch.attributes],
        [e - s if e >= s else 0 for s, e in zip(starts, ends)],
        [STATUS_CODES[c] if 0 <= c < 3 else STATUS_CODES[0] for c in batch.status_code],
        batch.status_message,
        ev_ts, ev_names, ev_attrs,
        lk_trace, lk_span, lk_state, lk_attrs,
    ]


def classify(exc: Exception, what: str) -> Exception:
    """Map a clickhouse-connect failure to PermanentError (bad data) or RetryableError (anything else)."""
    code = getattr(exc, "code", None)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, DatabaseError) and not isinstance(exc, OperationalError) and code in _PERMANENT_CODES:
        return PermanentError(f"{what}: ClickHouse refused the data: {text}")
    return RetryableError(f"{what}: {text}", retry_after=5)


class ClickHouseExporter(Pusher):
    """Inserts each batch into `otel_traces` with one column-oriented insert (a JSONColumns body from
    `clickhouse_encode`, or clickhouse-connect's Native encoding when that cannot encode it); safe to call
    from many threads."""

    def __init__(self, config: ClickHouseConfig):
        self.config = config
        self.client: Any = None
        self._ctx: Any = None
        self._lock = threading.Lock()
        self.table = config.table(config.traces_table_name)

    def start(self, host: Any) -> None:
        self.client = connect(self.config, send_receive_timeout=max(1, int(self.config.timeout.seconds)))
        if self.config.create_schema:
            create_schema(self.client, self.config)
        try:
            self._ctx = self.client.create_insert_context(
                self.config.traces_table_name, database=self.config.database, column_names=list(TRACE_COLUMNS),
                column_oriented=True)
        except Exception as exc:
            raise StoreError(f"table {self.table} is not usable on {self.config.endpoint}: {exc}; set "
                             "create_schema: true or create it from `spanhouse schema`") from exc
        if self.config.embedded:
            client = self.client
            memory.register(self, f"embedded ClickHouse at {self.config.endpoint}",
                            lambda: client.command("SYSTEM JEMALLOC PURGE"))
        log.info("storing traces in %s on %s", self.table, self.config.endpoint)

    def push(self, batch: SpanBatch) -> None:
        if not len(batch):
            return
        if self.client is None:
            raise RetryableError("the clickhouse exporter is not started")
        columns = trace_columns(batch)
        body = encode_columns(TRACE_COLUMNS, columns)
        if body is not None:
            self.insert_encoded(body, len(batch))
            return
        with self._lock:
            ctx = self._ctx
            ctx.data = columns
            try:
                self.client.insert(context=ctx)
            except Exception as exc:
                raise classify(exc, f"insert of {len(batch)} spans into {self.table}") from exc
            finally:
                ctx.data = None

    def insert_encoded(self, body: bytes, spans: int) -> None:
        """Insert a body from `encode_columns` (ClickHouse parses it with the GIL released)."""
        with self._lock:
            try:
                self.client.raw_insert(self.table, TRACE_COLUMNS, body, fmt=ENCODED_FORMAT)
            except Exception as exc:
                raise classify(exc, f"insert of {spans} spans into {self.table}") from exc

    def shutdown(self, timeout: float = 10.0) -> None:
        memory.unregister(self)
        client, self.client = self.client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                pass


def new_factory() -> Factory:
    return Factory(kind=Kind.EXPORTER, type="clickhouse", config=ClickHouseConfig,
                   create=lambda settings, cfg: HelperExporter(ClickHouseExporter(cfg), cfg, str(settings.id)),
                   stability="beta")
