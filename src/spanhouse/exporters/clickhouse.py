"""`clickhouse` exporter: stores spans in `otel_traces` and log records in `otel_logs` (the contrib
exporter's layouts) through `clickhouse-connect`, on the embedded engine (`chdb://PATH`) or a server
(`http(s)://host:port`).

The derived tables (`otel_traces_trace_id_ts`, `genai_spans`, `genai_evaluations`, `genai_content`)
are filled by materialized views inside ClickHouse, so one insert per batch is all the exporter does.

Every insert carries the helper's delivery token as `insert_deduplication_token`; the tables keep a
deduplication window (`non_replicated_deduplication_window` in the DDL), and the views deduplicate
their blocks too, so a batch inserted again after an ambiguous failure or a replay is stored once.

With a ClickHouse server (`http(s)://`) that cannot be reached at start, the exporter starts anyway
and connects, and creates the schema, on first use; batches wait in the sending queue meanwhile.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError

from spanhouse import cpu, memory, retention, semconv
from spanhouse.batch import SpanBatch
from spanhouse.component import ConfigIssue, Factory, Kind
from spanhouse.errors import PermanentError, RetryableError
from spanhouse.exporters.clickhouse_encode import FORMAT as ENCODED_FORMAT
from spanhouse.exporters.clickhouse_encode import encode_columns
from spanhouse.exporters.helper import ExporterHelperSettings, HelperExporter, Pusher, delivery_token
from spanhouse.exporters.queue import Encoded
from spanhouse.fsprivate import warn_if_shared
from spanhouse.logbatch import LogBatch
from spanhouse.otlp.values import as_string, string_map
from spanhouse.store import StoreError, StoreSettings, chdb_path, connect, create_schema

log = logging.getLogger(__name__)

SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODES = ("Unset", "Ok", "Error")

TRACE_COLUMNS = (
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind", "ServiceName",
    "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes", "Duration", "StatusCode",
    "StatusMessage", "Events.Timestamp", "Events.Name", "Events.Attributes", "Links.TraceId", "Links.SpanId",
    "Links.TraceState", "Links.Attributes",
)

LOG_COLUMNS = (
    "Timestamp", "TraceId", "SpanId", "TraceFlags", "SeverityText", "SeverityNumber", "ServiceName", "Body",
    "ResourceSchemaUrl", "ResourceAttributes", "ScopeSchemaUrl", "ScopeName", "ScopeVersion", "ScopeAttributes",
    "LogAttributes", "EventName",
)

# ClickHouse error codes that mean the data or the statement is wrong, so a retry cannot help.
_PERMANENT_CODES = {6, 27, 33, 38, 41, 53, 62, 69, 70, 72, 117, 130, 131, 321}
# Errors raised while encoding columns on this side: the values themselves cannot be stored.
# clickhouse-connect wraps its own encoding failures (a struct.error among them) in DataError.
_LOCAL_DATA_ERRORS = (ValueError, TypeError, OverflowError, UnicodeError, struct.error, DataError)
# Sent with every insert so that a retried batch is recognised (views included) on servers whose
# defaults differ.
_DEDUP_SETTINGS = {"insert_deduplicate": 1, "deduplicate_blocks_in_dependent_materialized_views": 1}
_RECONNECT_INTERVAL_S = 1.0
# What `encode_for_queue` makes: the JSONColumns body of `TRACE_COLUMNS` (bodies of several batches, concatenated,
# are one valid insert). Bump the version if the encoding changes, so older queued bytes are refused.
TRACES_ENCODING = "clickhouse/otel_traces/JSONColumns/1"


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


def log_columns(batch: LogBatch) -> list[list[Any]]:
    """The batch as the insert columns of `otel_logs`, in `LOG_COLUMNS` order, valued as the contrib
    exporter writes them: the observed time when a record has no time, the body as `AsString`."""
    res_maps = [string_map(r.attributes) for r in batch.resources]
    services = [str(r.attributes.get(semconv.SERVICE_NAME, "")) for r in batch.resources]
    scope_maps = [string_map(s.attributes) for s in batch.scopes]
    ri, si = batch.resource_index, batch.scope_index
    scopes = [batch.scopes[i] for i in si]
    return [
        [t or o for t, o in zip(batch.time_unix_nano, batch.observed_time_unix_nano)],
        batch.trace_id,
        batch.span_id,
        [f & 0xFF for f in batch.flags],
        batch.severity_text,
        [n if 0 <= n <= 255 else 0 for n in batch.severity_number],
        [services[i] for i in ri],
        [as_string(b) for b in batch.body],
        [batch.resources[i].schema_url for i in ri],
        [res_maps[i] for i in ri],
        [s.schema_url for s in scopes],
        [s.name for s in scopes],
        [s.version for s in scopes],
        [scope_maps[i] for i in si],
        [string_map(a) for a in batch.attributes],
        batch.event_name,
    ]


def classify(exc: Exception, what: str) -> Exception:
    """Map a clickhouse-connect failure to PermanentError (bad data) or RetryableError (anything else)."""
    code = getattr(exc, "code", None)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, _LOCAL_DATA_ERRORS):
        return PermanentError(f"{what}: the data cannot be encoded: {type(exc).__name__}: {text}")
    if isinstance(exc, DatabaseError) and not isinstance(exc, OperationalError) and code in _PERMANENT_CODES:
        return PermanentError(f"{what}: ClickHouse refused the data: {text}")
    return RetryableError(f"{what}: {text}", retry_after=5)


class ClickHouseExporter(Pusher):
    """Inserts each batch into `otel_traces` (or, for the logs signal, `otel_logs`) with one
    column-oriented insert: for traces a JSONColumns body from `clickhouse_encode`, else (or when that
    cannot encode a batch) clickhouse-connect's Native encoding. Safe to call from many threads.

    For a sending queue, `encode_for_queue` makes a batch of spans into its JSONColumns body when it is queued;
    merged queued bodies are then inserted as they are, in one insert (ClickHouse reads consecutive
    JSONColumns objects as one stream of rows)."""

    def __init__(self, config: ClickHouseConfig, signal: str = "traces"):
        self.config = config
        self.client: Any = None
        self._ctx: Any = None
        self._lock = threading.Lock()
        self.signal = signal
        if signal == "logs":
            self.table_name, self.column_names, self.encode, self.noun = (
                config.logs_table_name, LOG_COLUMNS, log_columns, "log records")
        else:
            self.table_name, self.column_names, self.encode, self.noun = (
                config.traces_table_name, TRACE_COLUMNS, trace_columns, "spans")
        self._next_attempt = 0.0
        self._closed = False
        self._base_settings: dict[str, Any] = {}
        self.table = config.table(self.table_name)
        # per warning (refused, or stored to be deleted): the counts by rule since it was last logged, and when
        self._expired: dict[str, dict[int | None, int]] = {}
        self._shortest_retention = retention.shortest_seconds(config.ttl, config.retention)
        self._expired_logged_at: dict[str, float] = {}
        self._expired_lock = threading.Lock()

    def start(self, host: Any) -> None:
        try:
            self._open()
        except StoreError as exc:
            if self.config.embedded:
                raise
            if self.config.sending_queue.active:
                log.warning("exporter %s: %s; starting anyway, %s wait in the sending queue until it answers",
                            self.table, exc, self.noun)
            else:
                log.warning("exporter %s: %s; starting anyway: without a sending_queue, exports fail (clients "
                            "retry) until it answers", self.table, exc)

    def state_directory(self) -> str | None:
        """The embedded store's directory (a ClickHouse server keeps no local state of spanhouse's)."""
        return chdb_path(self.config.endpoint) if self.config.embedded else None

    def _open(self) -> None:
        """Connect, create the schema when configured, and prepare the insert; raises `StoreError`."""
        client = connect(self.config, send_receive_timeout=max(1, int(self.timeout)))
        try:
            if self.config.create_schema:
                create_schema(client, self.config)
            try:
                ctx = client.create_insert_context(
                    self.table_name, database=self.config.database, column_names=list(self.column_names),
                    column_oriented=True)
            except Exception as exc:
                raise StoreError(f"table {self.table} is not usable on {self.config.endpoint}: {exc}; set "
                                 "create_schema: true or create it from `spanhouse schema`") from exc
        except BaseException:
            client.close()
            raise
        self.client, self._ctx = client, ctx
        self._base_settings = dict(ctx.settings or {}, **_DEDUP_SETTINGS)
        if self.config.embedded:
            # the embedded engine's allocator keeps freed pages; memory_limiter asks for them back first
            memory.register(self, f"embedded ClickHouse at {self.config.endpoint}",
                            lambda: client.command("SYSTEM JEMALLOC PURGE"))
            warn_if_shared(chdb_path(self.config.endpoint), "the store's directory")
        log.info("storing %s in %s on %s", self.signal, self.table, self.config.endpoint)

    def _ensure_open(self) -> None:
        if self.client is not None:
            return
        if self._closed:
            raise RetryableError("the clickhouse exporter is shut down")
        now = time.monotonic()
        if now < self._next_attempt:
            raise RetryableError(f"ClickHouse at {self.config.endpoint} is not reachable yet",
                                 retry_after=self._next_attempt - now)
        self._next_attempt = now + _RECONNECT_INTERVAL_S
        try:
            self._open()
        except StoreError as exc:
            raise RetryableError(str(exc), retry_after=_RECONNECT_INTERVAL_S) from exc

    def encode_for_queue(self, batch: Any) -> Encoded | None:
        """The batch's insert body (traces only), or None when it has to take the reference path, or
        cannot be encoded at all (`push` then reports why, as without a queue)."""
        if self.signal != "traces" or not len(batch):
            return None
        try:
            _, body = cpu.run(self._encode, batch)
        except Exception:
            return None
        return None if body is None else Encoded((body,), len(batch), TRACES_ENCODING)

    def push(self, batch: Any) -> None:
        if not len(batch):
            return
        if isinstance(batch, Encoded):
            self._push_encoded(batch)
            return
        try:
            columns, body = cpu.run(self._encode, batch)
        except Exception as exc:
            raise classify(exc, f"encoding {len(batch)} {self.noun} for {self.table}") from exc
        token = delivery_token()
        if body is not None:
            self._insert_encoded(body, len(batch), token)
            return
        with self._lock:
            self._ensure_open()
            ctx = self._ctx
            ctx.data = columns
            # clickhouse-connect reads an insert's settings from the reused context, not from insert()
            ctx.settings = self._settings(token)
            try:
                self.client.insert(context=ctx)
            except Exception as exc:
                raise classify(exc, f"insert of {len(batch)} {self.noun} into {self.table}") from exc
            finally:
                ctx.data = None

    def _encode(self, batch: Any) -> tuple[list[list[Any]], bytes | None]:
        """The insert columns, and (for traces) the JSONColumns body when it can encode them."""
        if self._shortest_retention:
            self._note_expired(batch)
        columns = self.encode(batch)
        return columns, encode_columns(self.column_names, columns) if self.signal == "traces" else None

    def refuses(self, batch: Any) -> tuple[list[int], str] | None:
        """The spans that start (log records timestamped) before their retention window: ClickHouse's TTL
        would delete them on arrival, so the pipeline answers them as rejected instead of storing them."""
        expired = self._past_retention(batch) if self._shortest_retention else {}
        if not expired:
            return None
        counts = {rule: len(indexes) for rule, indexes in expired.items()}
        self._warn(counts, "refused: the clients were answered that they were rejected (partial_success)")
        what = "span(s) started" if self.signal == "traces" else "log record(s) timestamped"
        message = (f"{sum(counts.values())} {what} before the store's retention window ({self._which(counts)}) and "
                   "would be deleted on arrival; check the sender's clock, or ask the operator to raise the "
                   "clickhouse exporter's ttl (or retention rule) to keep backfilled data")
        return sorted(i for indexes in expired.values() for i in indexes), message

    def _past_retention(self, batch: Any) -> dict[int | None, list[int]]:
        """The records of `batch` past their retention (the rule they match, else `ttl`), by that rule
        (None for `ttl`). A record's time is the one its tables' TTL counts from."""
        if self.signal == "traces":
            starts = batch.start_time_unix_nano
        else:  # the Timestamp column the logs TTL counts from, as `log_columns` fills it
            starts = [t or o for t, o in zip(batch.time_unix_nano, batch.observed_time_unix_nano, strict=True)]
        now = time.time_ns()
        if not starts or min(starts) >= now - self._shortest_retention * 1_000_000_000:
            return {}
        expired: dict[int | None, list[int]] = {}
        rules, ttl = self.config.retention, self.config.ttl
        for i, start in enumerate(starts):
            if start >= now - self._shortest_retention * 1_000_000_000:
                continue
            values = {}
            if rules:
                resource = batch.resources[batch.resource_index[i]].attributes
                values = retention.row_values(string_map(resource), string_map(batch.attributes[i]),
                                              as_string(resource.get(semconv.SERVICE_NAME, "")))
            seconds, rule = retention.decide(values, ttl, rules) if rules else (int(ttl.seconds), None)
            if seconds and start < now - seconds * 1_000_000_000:
                expired.setdefault(rule, []).append(i)
        return expired

    def _which(self, counts: dict[int | None, int]) -> str:
        rules, ttl = self.config.retention, self.config.ttl
        return "; ".join(
            (f"ttl {ttl}" if rule is None else f"retention[{rule}], ttl {rules[rule].ttl}")
            + ("" if len(counts) == 1 else f": {count}")
            for rule, count in sorted(counts.items(), key=lambda kv: -1 if kv[0] is None else kv[0]))

    def _note_expired(self, batch: Any) -> None:
        """Records past their retention that reach the store anyway (the pipeline refuses them on arrival,
        so these aged in the sending queue, or were pushed without a pipeline): ClickHouse's TTL deletes
        them, so say so."""
        expired = self._past_retention(batch)
        if expired:
            self._warn({rule: len(indexes) for rule, indexes in expired.items()},
                       "ClickHouse deletes them as it writes them or at its next merge, so they are not "
                       "queryable; they were accepted before they aged past it (in the sending queue)")

    def _warn(self, counts: dict[int | None, int], outcome: str) -> None:
        """One warning a minute at most, with the counts since the last one: a backfill of old data must
        not go without a word, nor flood the log."""
        with self._expired_lock:  # not the insert lock: this runs on the CPU thread
            held = self._expired.setdefault(outcome, {})
            for rule, count in counts.items():
                held[rule] = held.get(rule, 0) + count
            now_s = time.monotonic()
            if now_s < self._expired_logged_at.get(outcome, -60.0) + 60:
                return
            counts, self._expired[outcome], self._expired_logged_at[outcome] = held, {}, now_s
        what = "span(s) started" if self.signal == "traces" else "log record(s) timestamped"
        log.warning("exporter %s: %d %s before the store's retention (%s): %s. Raise `ttl` or the rule's to keep "
                    "backfilled data", self.table, sum(counts.values()), what, self._which(counts), outcome)

    def _push_encoded(self, batch: Encoded) -> None:
        if batch.format != TRACES_ENCODING or self.signal != "traces":
            raise PermanentError(f"queued data encoded as {batch.format!r} cannot be inserted into {self.table}")
        parts = batch.parts
        self._insert_encoded(parts[0] if len(parts) == 1 else iter(parts), len(batch), delivery_token())

    def _settings(self, token: str | None) -> dict[str, Any]:
        return dict(self._base_settings, insert_deduplication_token=token) if token else dict(self._base_settings)

    def _insert_encoded(self, body: Any, rows: int, token: str | None) -> None:
        """Insert a body from `encode_columns`, or an iterator of such bodies (ClickHouse parses them with
        the GIL released)."""
        with self._lock:
            self._ensure_open()
            try:
                self.client.raw_insert(self.table, self.column_names, body, settings=self._settings(token),
                                       fmt=ENCODED_FORMAT)
            except Exception as exc:
                raise classify(exc, f"insert of {rows} {self.noun} into {self.table}") from exc

    def shutdown(self, timeout: float = 10.0) -> None:
        self._closed = True
        memory.unregister(self)
        client, self.client = self.client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                pass


def _create(settings: Any, cfg: ClickHouseConfig) -> HelperExporter:
    return HelperExporter(ClickHouseExporter(cfg, settings.signal), cfg, f"{settings.id}/{settings.signal}",
                          settings.signal)


def new_factory() -> Factory:
    return Factory(kind=Kind.EXPORTER, type="clickhouse", config=ClickHouseConfig, create=_create,
                   signals=frozenset({"traces", "logs"}), stability="beta")
