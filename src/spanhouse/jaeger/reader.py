"""Read traces, services, operations and the service graph from `otel_traces` for the Jaeger APIs.

Every user value reaches SQL as a query parameter. Trace lookups go through the trace-id lookup table
(`otel_traces_trace_id_ts`: min(Start), max(End) + 1 per trace) so that fetching a trace reads a small
time window; searches are bounded by a time range and a trace limit. Rows come back as a `SpanBatch`
with attribute types restored for the attributes the schema registry knows, and a span stored more than
once (a client re-sent its request) in it once (`spanhouse.spancopies`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from spanhouse import semconv as sc
from spanhouse.batch import Event, Link, Resource, Scope, SpanBatch
from spanhouse.jaeger.model import (
    TAG_ERROR,
    TAG_SCOPE_NAME,
    TAG_SCOPE_VERSION,
    TAG_SPAN_KIND,
    TAG_STATUS_CODE,
    TAG_STATUS_DESCRIPTION,
    TAG_TRACE_STATE,
)
from spanhouse.otlp.values import string_map, typed_value
from spanhouse.scores import LOG_RECORD, SPAN_EVENT, Result, distinct_results
from spanhouse.spancopies import one_copy
from spanhouse.store import StoreSettings, table_names

KINDS = {"Unspecified": 0, "Internal": 1, "Server": 2, "Client": 3, "Producer": 4, "Consumer": 5}
KINDS.update({f"SPAN_KIND_{k.upper()}": v for k, v in list(KINDS.items())})
STATUSES = {"Unset": 0, "Ok": 1, "Error": 2, "STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
KIND_COLUMN_VALUES = {name.lower(): [spelling for spelling, v in KINDS.items() if v == value]
                      for name, value in KINDS.items() if not name.startswith("SPAN_KIND_")}
ERROR_STATUS_VALUES = ["Error", "STATUS_CODE_ERROR"]

SPAN_COLUMNS = """
    TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName, ResourceAttributes,
    ScopeName, ScopeVersion, SpanAttributes, toUnixTimestamp64Nano(Timestamp) AS StartNs, Duration,
    StatusCode, StatusMessage, arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp) AS EventTimes,
    Events.Name AS EventNames, Events.Attributes AS EventAttributes, Links.TraceId AS LinkTraceIds,
    Links.SpanId AS LinkSpanIds, Links.TraceState AS LinkStates, Links.Attributes AS LinkAttributes
"""


_MAX_LOG_EVENTS = 10_000
_LOG_BODY = "body"  # the Jaeger log field holding a log record's body
_LOG_RECORD = "log"  # the name of a log record without an event name


def typed_attributes(attrs: dict[str, str]) -> dict[str, Any]:
    """Stored (stringified) attributes with the types the schema registry gives their names restored."""
    types = sc.ATTRIBUTE_TYPES
    return {k: typed_value(types.get(k), v) for k, v in attrs.items()}


@dataclass
class SearchQuery:
    """A trace search: every condition must hold on one span of the trace; times in ns since epoch."""

    start_ns: int
    end_ns: int
    limit: int
    service: str = ""
    operation: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    min_duration_ns: int | None = None
    max_duration_ns: int | None = None


@dataclass(frozen=True)
class TraceReader:
    """Queries the store through a read-only clickhouse-connect client (one query at a time per client).
    With a `tenant`, every answer holds only spans and log records stamped with that tenant
    (`spanhouse.tenant.id` on their resource): other tenants' services, operations and traces do not
    exist for it, even under a trace id they share."""

    client: Any
    tables: dict[str, str]
    tenant: str | None = None

    @classmethod
    def of(cls, client: Any, store: StoreSettings) -> TraceReader:
        return cls(client, table_names(store))

    def scoped(self, tenant: str | None) -> TraceReader:
        """This reader limited to `tenant`'s data (None: every tenant's)."""
        return dataclasses.replace(self, tenant=tenant)

    def _only_tenant(self, params: dict[str, Any], alias: str = "") -> str:
        """The SQL condition (` AND ...`) that keeps only the tenant's rows, or "" for every tenant."""
        if self.tenant is None:
            return ""
        params["tenant_key"], params["tenant"] = sc.SPANHOUSE_TENANT_ID, self.tenant
        return f" AND {alias}ResourceAttributes[{{tenant_key:String}}] = {{tenant:String}}"

    def _rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple]:
        return self.client.query(sql, parameters=parameters or None).result_rows

    # --- services and operations ----------------------------------------------------------

    def services(self) -> list[str]:
        params: dict[str, Any] = {}
        rows = self._rows(f"SELECT DISTINCT ServiceName FROM {self.tables['traces']} "
                          f"WHERE ServiceName != ''{self._only_tenant(params)} ORDER BY ServiceName", params)
        return [r[0] for r in rows]

    def operations(self, service: str, span_kind: str = "") -> list[tuple[str, str]]:
        """(span name, span kind column value) pairs of `service`, optionally of one Jaeger span kind."""
        params: dict[str, Any] = {"service": service}
        where = "ServiceName = {service:String}"
        if span_kind:
            where += " AND SpanKind IN {kinds:Array(String)}"
            params["kinds"] = KIND_COLUMN_VALUES.get(span_kind.lower(), [span_kind])
        where += self._only_tenant(params)
        rows = self._rows(f"SELECT DISTINCT SpanName, SpanKind FROM {self.tables['traces']} WHERE {where} "
                          "ORDER BY SpanName, SpanKind", params)
        return [(r[0], r[1]) for r in rows]

    # --- traces ---------------------------------------------------------------------------

    def windows(self, trace_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
        """Trace id → (first, last + 1) second of its spans, from the lookup table; unknown ids are absent."""
        ids = list(trace_ids)
        if not ids:
            return {}
        rows = self._rows(
            f"SELECT TraceId, toUnixTimestamp(min(Start)), toUnixTimestamp(max(End)) + 1 "
            f"FROM {self.tables['traces_lookup']} WHERE TraceId IN {{ids:Array(String)}} GROUP BY TraceId",
            {"ids": ids})
        return {r[0]: (int(r[1]), int(r[2])) for r in rows}

    def traces(self, trace_ids: Iterable[str], start_ns: int | None = None, end_ns: int | None = None, *,
               service: str = "", log_events: bool = True) -> SpanBatch:
        """The spans of `trace_ids`, read only from their lookup windows (optionally narrowed further, to
        spans of one `service`); with `log_events`, the log records parented to a span are among its events."""
        windows = self.windows(trace_ids)
        if not windows:
            return SpanBatch()
        lo = min(w[0] for w in windows.values())
        hi = max(w[1] for w in windows.values())
        params: dict[str, Any] = {"ids": sorted(windows), "lo": lo, "hi": hi}
        where = ("TraceId IN {ids:Array(String)} AND Timestamp >= toDateTime({lo:UInt32}, 'UTC') "
                 "AND Timestamp <= toDateTime({hi:UInt32}, 'UTC')")
        if start_ns is not None:
            where += " AND Timestamp >= fromUnixTimestamp64Nano({start:Int64}, 'UTC')"
            params["start"] = start_ns
        if end_ns is not None:
            where += " AND Timestamp <= fromUnixTimestamp64Nano({end:Int64}, 'UTC')"
            params["end"] = end_ns
        if service:
            where += " AND ServiceName = {service:String}"
            params["service"] = service
        where += self._only_tenant(params)
        rows = self._rows(f"SELECT {SPAN_COLUMNS} FROM {self.tables['traces']} WHERE {where} "
                          "ORDER BY TraceId, Timestamp, SpanId", params)
        batch = rows_to_batch(one_copy(rows, key=lambda r: (r[0], r[1]))[0])
        if log_events:
            _add_events(batch, self._log_records(batch, params))
        return batch

    def _log_records(self, batch: SpanBatch, params: dict[str, Any]) -> dict[int, list[Event]]:
        """Log records of the spans' traces (evaluation results, prompts and completions sent as log
        events) as events, by the index of their span in `batch`. Content records emitted up to a minute
        after the last span ended count; evaluation results count whenever they came (human feedback and
        offline evaluations come hours or days later), found through otel_logs' TraceId index in the
        partitions from the trace's start on. A store created before spanhouse stored logs has none."""
        if not len(batch):
            return {}
        log_params = {"ids": params["ids"], "lo": params["lo"], "hi": params["hi"], "event_name_key": sc.EVENT_NAME,
                      "evaluation": sc.EVENT_GEN_AI_EVALUATION_RESULT}
        only_tenant = self._only_tenant(log_params)
        try:
            rows = self._rows(
                f"SELECT TraceId, SpanId, toUnixTimestamp64Nano(Timestamp), "
                f"if(EventName != '', EventName, LogAttributes[{{event_name_key:String}}]) AS name, LogAttributes, "
                f"Body FROM {self.tables['logs']} WHERE TraceId IN {{ids:Array(String)}} AND SpanId != '' "
                f"AND Timestamp >= toDateTime({{lo:UInt32}}, 'UTC') "
                f"AND (Timestamp <= toDateTime({{hi:UInt32}} + 60, 'UTC') OR name = {{evaluation:String}})"
                f"{only_tenant} ORDER BY Timestamp LIMIT {_MAX_LOG_EVENTS}", log_params)
        except Exception as exc:
            if "UNKNOWN_TABLE" in str(exc):
                return {}
            raise
        index = {(t, sid): i for i, (t, sid) in enumerate(zip(batch.trace_id, batch.span_id))}
        records: dict[int, list[Event]] = {}
        for trace_id, span_id, at, name, attrs, body in rows:
            i = index.get((trace_id, span_id))
            if i is None:
                continue
            fields = typed_attributes(dict(attrs))
            if body:
                fields[_LOG_BODY] = body
            records.setdefault(i, []).append(Event(int(at), name or _LOG_RECORD, fields))
        return records

    def find_trace_ids(self, q: SearchQuery) -> list[str]:
        """Ids of the most recent traces (at most `q.limit`) with a span matching every condition."""
        params: dict[str, Any] = {"start": q.start_ns, "end": q.end_ns, "limit": q.limit}
        where = ["Timestamp >= fromUnixTimestamp64Nano({start:Int64}, 'UTC')",
                 "Timestamp <= fromUnixTimestamp64Nano({end:Int64}, 'UTC')"]
        if q.service:
            where.append("ServiceName = {service:String}")
            params["service"] = q.service
        if q.operation:
            where.append("SpanName = {operation:String}")
            params["operation"] = q.operation
        if q.min_duration_ns is not None:
            where.append("Duration >= {dmin:UInt64}")
            params["dmin"] = q.min_duration_ns
        if q.max_duration_ns is not None:
            where.append("Duration <= {dmax:UInt64}")
            params["dmax"] = q.max_duration_ns
        for n, (key, value) in enumerate(q.tags.items()):
            where.append(_tag_condition(key, value, n, params))
        rows = self._rows(
            f"SELECT TraceId, max(Timestamp) AS last FROM {self.tables['traces']} "
            f"WHERE {' AND '.join(where)}{self._only_tenant(params)} "
            "GROUP BY TraceId ORDER BY last DESC LIMIT {limit:UInt32}", params)
        return [r[0] for r in rows]

    def dependencies(self, start_ns: int, end_ns: int, service: str = "") -> list[tuple[str, str, int]]:
        """(parent service, child service, calls) for parent/child spans of different services."""
        params: dict[str, Any] = {"start": start_ns, "end": end_ns}
        window = ("Timestamp >= fromUnixTimestamp64Nano({start:Int64}, 'UTC') "
                  "AND Timestamp <= fromUnixTimestamp64Nano({end:Int64}, 'UTC')" + self._only_tenant(params))
        only = ""
        if service:
            only = " AND (p.ServiceName = {service:String} OR c.ServiceName = {service:String})"
            params["service"] = service
        t = self.tables["traces"]
        rows = self._rows(
            f"SELECT p.ServiceName AS parent, c.ServiceName AS child, count() AS calls "
            f"FROM (SELECT TraceId, ParentSpanId, ServiceName FROM {t} WHERE {window} AND ParentSpanId != '') AS c "
            f"INNER JOIN (SELECT TraceId, SpanId, ServiceName FROM {t} WHERE {window}) AS p "
            f"ON c.TraceId = p.TraceId AND c.ParentSpanId = p.SpanId "
            f"WHERE p.ServiceName != c.ServiceName{only} GROUP BY parent, child ORDER BY parent, child", params)
        return [(r[0], r[1], int(r[2])) for r in rows]


def _add_events(batch: SpanBatch, records: dict[int, list[Event]]) -> None:
    """Give each span the log records parented to it as events, in time order, and leave out the copies
    of an evaluation result sent twice as `genai_evaluations_full` does (spanhouse.scores: the span
    event kept over its log record)."""
    for i in range(len(batch)):
        logs = records.get(i, ())
        results = [Result(source, e.time_unix_nano, string_map(e.attributes), e)
                   for source, events in ((SPAN_EVENT, batch.events[i]), (LOG_RECORD, logs))
                   for e in events if e.name == sc.EVENT_GEN_AI_EVALUATION_RESULT]
        if len(results) < 2 and not logs:
            continue
        kept = {id(r.item) for r in distinct_results(results)} if len(results) > 1 else None
        events = [e for e in (*batch.events[i], *logs)
                  if kept is None or e.name != sc.EVENT_GEN_AI_EVALUATION_RESULT or id(e) in kept]
        batch.events[i] = sorted(events, key=lambda e: e.time_unix_nano)


def _tag_condition(key: str, value: str, n: int, params: dict[str, Any]) -> str:
    """One Jaeger tag filter as SQL: the tags made from columns (status, kind, scope, trace state) map to
    those columns; other keys
    match span attributes, resource attributes or event attributes."""
    k, v = f"tk{n}", f"tv{n}"
    params[k], params[v] = key, value
    if key == TAG_ERROR:
        params[v] = ERROR_STATUS_VALUES
        return f"StatusCode {'IN' if value == 'true' else 'NOT IN'} {{{v}:Array(String)}}"
    if key == TAG_SPAN_KIND:
        params[v] = KIND_COLUMN_VALUES.get(value.lower(), [value])
        return f"SpanKind IN {{{v}:Array(String)}}"
    if key == TAG_STATUS_CODE:
        params[v] = [s for s, code in STATUSES.items() if code == {"OK": 1, "ERROR": 2}.get(value.upper(), -1)]
        return f"StatusCode IN {{{v}:Array(String)}}"
    if key == TAG_STATUS_DESCRIPTION:
        return f"StatusMessage = {{{v}:String}}"
    if key == TAG_SCOPE_NAME:
        return f"ScopeName = {{{v}:String}}"
    if key == TAG_SCOPE_VERSION:
        return f"ScopeVersion = {{{v}:String}}"
    if key == TAG_TRACE_STATE:
        return f"TraceState = {{{v}:String}}"
    return (f"(SpanAttributes[{{{k}:String}}] = {{{v}:String}} OR ResourceAttributes[{{{k}:String}}] = {{{v}:String}}"
            f" OR arrayExists(m -> m[{{{k}:String}}] = {{{v}:String}}, Events.Attributes))")


def rows_to_batch(rows: list[tuple]) -> SpanBatch:
    """`SPAN_COLUMNS` rows as a SpanBatch; identical resources and scopes are stored once."""
    batch = SpanBatch()
    resources: dict[tuple, int] = {}
    scopes: dict[tuple[str, str], int] = {}
    for (trace_id, span_id, parent, state, name, kind, service, res_attrs, scope_name, scope_version, attrs,
         start_ns, duration, status, status_msg, ev_times, ev_names, ev_attrs, lk_traces, lk_spans, lk_states,
         lk_attrs) in rows:
        res_key = (service, tuple(sorted(res_attrs.items())))
        r = resources.get(res_key)
        if r is None:
            typed = typed_attributes(dict(res_attrs))
            typed.setdefault(sc.SERVICE_NAME, service)
            r = resources[res_key] = len(batch.resources)
            batch.resources.append(Resource(typed))
        s = scopes.get((scope_name, scope_version))
        if s is None:
            s = scopes[(scope_name, scope_version)] = len(batch.scopes)
            batch.scopes.append(Scope(scope_name, scope_version))
        start = int(start_ns)
        batch.append(
            resource=r, scope=s, trace_id=trace_id, span_id=span_id, parent_span_id=parent, trace_state=state,
            name=name, kind=KINDS.get(kind, 0), start_time_unix_nano=start, end_time_unix_nano=start + int(duration),
            attributes=typed_attributes(dict(attrs)),
            events=[Event(int(t), n, typed_attributes(dict(a))) for t, n, a in zip(ev_times, ev_names, ev_attrs)],
            links=[Link(t, sid, st, typed_attributes(dict(a)))
                   for t, sid, st, a in zip(lk_traces, lk_spans, lk_states, lk_attrs)],
            status_code=STATUSES.get(status, 0), status_message=status_msg,
        )
    return batch
