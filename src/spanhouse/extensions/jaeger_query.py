"""`jaeger_query` extension: the Jaeger query HTTP API over the ClickHouse store, so Jaeger UI and
Grafana's Jaeger data source show the spans spanhouse stored.

v1 (JSON, what Jaeger UI and Grafana call): `/api/services`, `/api/services/{service}/operations`,
`/api/operations`, `/api/traces` (search), `/api/traces/{traceID}`, `/api/dependencies`.
v3 (OTLP JSON): `/api/v3/services`, `/api/v3/operations`, `/api/v3/traces`, `/api/v3/traces/{traceID}`,
`/api/v3/trace-summaries`; searches take their query as parameters (GET) or as a JSON body (POST).
Bad parameters answer 400, unknown traces 404, store failures 500, each with a message in the API's
own error shape. `/trace/{traceID}` (Jaeger UI's trace page) redirects to the trace's JSON when no
Jaeger UI is in front of the API (deploy/compose.yaml puts one there).

With `auth`, every request needs a token (`spanhouse.extensions.readauth`), else 401 with
`WWW-Authenticate`; a tenant's token sees only that tenant's services, operations, traces and
dependencies, and a token of a tenant listed in `auth.all_tenants` sees every tenant's.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson

from spanhouse import semconv as sc
from spanhouse.batch import STATUS_CODE_ERROR
from spanhouse.component import Component, ComponentID, ConfigIssue, Factory, Kind
from spanhouse.config import endpoint_issues
from spanhouse.errors import SpanhouseError, Unauthenticated
from spanhouse.extensions.readauth import CHALLENGE, ReadAuth, ReadAuthSettings
from spanhouse.extensions.sql_query import store_settings_for
from spanhouse.httpserver import HttpServer, Request, Response
from spanhouse.jaeger import params as p
from spanhouse.jaeger.model import SPAN_KIND_NAMES, to_traces
from spanhouse.jaeger.reader import KINDS, SearchQuery, TraceReader
from spanhouse.otlp.encode import encode_traces_json
from spanhouse.store import connect

log = logging.getLogger(__name__)

JSON = "application/json"
DEFAULT_LIMIT = 100
DEFAULT_DEPENDENCIES_LOOKBACK_MS = 86400 * 1000
_V3_HTTP_STATUS = {400: ("Bad Request", 3), 401: ("Unauthorized", 16), 404: ("Not Found", 5),
                   500: ("Internal Server Error", 13)}


# how each API names the search window's bounds and durations, for error messages
_V1_NAMES = ("start", "end", "minDuration", "maxDuration")
_V3_NAMES = ("query.startTimeMin", "query.startTimeMax", "query.durationMin", "query.durationMax")


@dataclass(frozen=True, kw_only=True)
class JaegerQueryConfig:
    endpoint: str = "127.0.0.1:16686"
    exporter: str = ""
    """The `clickhouse` exporter whose store to read; default: the first one the pipelines use."""
    max_traces: int = 1500
    """Most traces one search returns, whatever `limit` asks for."""
    auth: ReadAuthSettings | None = None
    """Require a token; a tenant's token reads only that tenant's traces (see `readauth`)."""

    def validate(self) -> Iterator[ConfigIssue]:
        yield from endpoint_issues("endpoint", self.endpoint)
        if self.max_traces <= 0:
            yield ConfigIssue("max_traces", "must be greater than 0")
        if self.exporter:
            try:
                ComponentID.parse(self.exporter)
            except ValueError as exc:
                yield ConfigIssue("exporter", str(exc))


class NotFound(Exception):
    pass


def _kind_name(column_value: str) -> str:
    return SPAN_KIND_NAMES.get(KINDS.get(column_value, 0), "")


class JaegerQuery(Component):
    """Serves the Jaeger query APIs from a read-only store session; queries run one at a time."""

    def __init__(self, config: JaegerQueryConfig):
        self.config = config
        self.auth = ReadAuth(config.auth) if config.auth is not None else None
        self.server: HttpServer | None = None
        self.reader: TraceReader | None = None
        self._store: Any = None
        self._client: Any = None
        self._lock = threading.Lock()
        self._routes: list[tuple[str, Callable[[Request, list[str]], Response]]] = [
            ("/api/services", self.services),
            ("/api/services/*/operations", self.service_operations),
            ("/api/operations", self.operations),
            ("/api/traces", self.search),
            ("/api/traces/*", self.trace),
            ("/api/dependencies", self.dependencies),
            ("/api/v3/services", self.v3_services),
            ("/api/v3/operations", self.v3_operations),
            ("/api/v3/traces", self.v3_search),
            ("/api/v3/traces/*", self.v3_trace),
            ("/api/v3/trace-summaries", self.v3_summaries),
        ]

    def start(self, host: Any) -> None:
        self._store = store_settings_for(host.config, self.config.exporter)
        try:
            self._connect()
        except SpanhouseError as exc:
            if self._store.embedded:
                raise
            # a ClickHouse server that is down now may answer later: ingestion must not wait for it,
            # and requests connect on demand
            log.warning("jaeger_query: %s; requests will fail until it answers", exc)
        self.server = HttpServer(self.config.endpoint, self.handle, "jaeger_query")
        self.server.start()

    def _connect(self) -> TraceReader:
        if self.reader is None:
            self._client = connect(self._store, readonly=True)
            self.reader = TraceReader.of(self._client, self._store)
        return self.reader

    def shutdown(self, timeout: float = 10.0) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                pass

    # --- routing ----------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        path = req.path.rstrip("/") or "/"
        error = self._v3_error if path.startswith("/api/v3/") else self._v1_error
        try:
            req.read_tenant = self.auth.reader(req).tenant if self.auth is not None else None  # type: ignore[attr-defined]
        except Unauthenticated as exc:
            resp = error(401, str(exc))
            resp.headers["WWW-Authenticate"] = CHALLENGE
            return resp
        if path.startswith("/trace/") and path.count("/") == 2 and req.method in ("GET", "HEAD"):
            # Jaeger UI's trace page; without the UI in front, show the trace's JSON instead
            return Response(302, b"", headers={"Location": f"/api/traces/{path[7:]}?prettyPrint=true"})
        parts = path.split("/")
        for pattern, handler in self._routes:  # noqa: B007 (used after the loop)
            pat = pattern.split("/")
            if len(pat) == len(parts) and all(a == "*" or a == b for a, b in zip(pat, parts)):
                wild = [unquote(b) for a, b in zip(pat, parts) if a == "*"]
                break
        else:
            return error(404, f"no Jaeger API at {req.path}")
        v3 = path.startswith("/api/v3/")
        searches = ("/api/v3/traces", "/api/v3/trace-summaries")
        allowed = ("GET", "HEAD", "POST") if pattern in searches else ("GET", "HEAD")
        if req.method not in allowed:
            resp = (self._v3_error if v3 else self._v1_error)(405, f"{req.method} is not allowed here; use GET")
            resp.headers["Allow"] = ", ".join(allowed)
            return resp
        try:
            if req.method == "POST":
                # read outside the lock: a slow upload must not hold up every other request
                req.v3_query = _v3_body_query(req)  # type: ignore[attr-defined]
            with self._lock:
                return handler(req, wild)
        except p.BadParameter as exc:
            return (self._v3_error if v3 else self._v1_error)(400, str(exc))
        except NotFound as exc:
            return (self._v3_error if v3 else self._v1_error)(404, str(exc))
        except Exception as exc:
            # the route, not the path, and the error's kind, not its text: both can quote the request's
            # values (a service name, tag values bound into the query), which are user data
            log.warning("jaeger_query: %s %s failed: %s", req.method, pattern, _failure_kind(exc))
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return (self._v3_error if v3 else self._v1_error)(500, f"the store could not answer: {text}")

    def _reader(self, req: Request) -> TraceReader:
        """The store's reader, limited to what the request's token may read."""
        if self._store is None:
            raise RuntimeError("jaeger_query is not started")
        return self._connect().scoped(req.read_tenant)  # type: ignore[attr-defined]

    # --- v1 ---------------------------------------------------------------------------------

    @staticmethod
    def _v1(data: Any, req: Request, errors: list[dict] | None = None) -> Response:
        body = {"data": data, "total": len(data) if isinstance(data, list) else 0, "limit": 0, "offset": 0,
                "errors": errors or None}
        pretty = req.param("prettyPrint", "") in ("true", "1")
        return Response(200, orjson.dumps(body, option=orjson.OPT_INDENT_2 if pretty else 0), JSON)

    @staticmethod
    def _v1_error(status: int, message: str) -> Response:
        body = {"data": None, "total": 0, "limit": 0, "offset": 0, "errors": [{"code": status, "msg": message}]}
        return Response(status, orjson.dumps(body), JSON)

    def services(self, req: Request, _: list[str]) -> Response:
        return self._v1(self._reader(req).services(), req)

    def service_operations(self, req: Request, wild: list[str]) -> Response:
        names = sorted({name for name, _ in self._reader(req).operations(wild[0])})
        return self._v1(names, req)

    def operations(self, req: Request, _: list[str]) -> Response:
        service = req.param("service", "")
        if not service:
            raise p.BadParameter("parameter 'service' is required")
        ops = self._reader(req).operations(service, req.param("spanKind", "") or "")
        return self._v1([{"name": name, "spanKind": _kind_name(kind)} for name, kind in ops], req)

    def trace(self, req: Request, wild: list[str]) -> Response:
        tid = p.trace_id(wild[0])
        batch = self._reader(req).traces([tid], p.epoch_ns(req.query, "start"),
                                         p.epoch_ns(req.query, "end", upper=True))
        if not len(batch):
            raise NotFound("trace not found")
        return self._v1(to_traces(batch), req)

    def search(self, req: Request, _: list[str]) -> Response:
        q = req.query
        ids = [p.trace_id(t) for t in q.get("traceID", []) if t]
        if ids:
            batch = self._reader(req).traces(ids)
            found = set(batch.trace_id)
            errors = [{"msg": "trace not found", "traceID": t} for t in ids if t not in found]
            return self._v1(to_traces(batch), req, errors)
        query = self._search_query(
            service=req.param("service", "") or "", operation=req.param("operation", "") or "",
            tags=p.tags(q), start=p.epoch_ns(q, "start"), end=p.epoch_ns(q, "end", upper=True),
            min_d=p.duration_ns(q, "minDuration"), max_d=p.duration_ns(q, "maxDuration"),
            limit=p.integer(q, "limit", DEFAULT_LIMIT, minimum=0) or DEFAULT_LIMIT, service_required=True,
            names=_V1_NAMES)
        trace_ids = self._reader(req).find_trace_ids(query)
        batch = self._reader(req).traces(trace_ids)
        traces = {t["traceID"]: t for t in to_traces(batch)}
        return self._v1([traces[t] for t in trace_ids if t in traces], req)

    def _search_query(self, *, service: str, operation: str, tags: dict[str, str], start: int | None,
                      end: int | None, min_d: int | None, max_d: int | None, limit: int,
                      service_required: bool, names: tuple[str, str, str, str]) -> SearchQuery:
        if service_required and not service:
            raise p.BadParameter("parameter 'service' is required")
        if min_d is not None and max_d is not None and max_d < min_d:
            raise p.BadParameter(f"{names[3]!r} must not be less than {names[2]!r}")
        end = end if end is not None else p.now_ns()
        start = start if start is not None else end - p.DEFAULT_LOOKBACK_NS
        if start > end:
            raise p.BadParameter(f"{names[0]!r} must not be after {names[1]!r}")
        return SearchQuery(start_ns=start, end_ns=end, limit=min(limit, self.config.max_traces), service=service,
                           operation=operation, tags=tags, min_duration_ns=min_d, max_duration_ns=max_d)

    def dependencies(self, req: Request, _: list[str]) -> Response:
        q = req.query
        end_ms = p.integer(q, "endTs")
        lookback_ms = p.integer(q, "lookback", DEFAULT_DEPENDENCIES_LOOKBACK_MS) or DEFAULT_DEPENDENCIES_LOOKBACK_MS
        end_ns = p.clamp_ns(end_ms * 10**6) if end_ms is not None else p.now_ns()
        edges = self._reader(req).dependencies(p.clamp_ns(end_ns - lookback_ms * 10**6), end_ns,
                                               req.param("service", "") or "")
        return self._v1([{"parent": a, "child": b, "callCount": n} for a, b, n in edges], req)

    # --- v3 ---------------------------------------------------------------------------------

    @staticmethod
    def _v3(body: Any) -> Response:
        return Response(200, orjson.dumps(body), JSON)

    @staticmethod
    def _v3_error(status: int, message: str) -> Response:
        name, grpc_code = _V3_HTTP_STATUS.get(status, ("Error", 2))
        body = {"error": {"grpcCode": grpc_code, "httpCode": status, "message": message, "httpStatus": name}}
        return Response(status, orjson.dumps(body), JSON)

    def v3_services(self, req: Request, _: list[str]) -> Response:
        return self._v3({"services": self._reader(req).services()})

    def v3_operations(self, req: Request, _: list[str]) -> Response:
        service = req.param("service", "") or ""
        if not service:
            raise p.BadParameter("parameter 'service' is required")
        ops = self._reader(req).operations(service, req.param("spanKind", "") or req.param("span_kind", "") or "")
        return self._v3({"operations": [{"name": n, "spanKind": _kind_name(k)} for n, k in ops]})

    def v3_trace(self, req: Request, wild: list[str]) -> Response:
        tid = p.trace_id(wild[0])
        start = p.rfc3339_ns(req.param("startTime") or req.param("start_time"), "startTime")
        end = p.rfc3339_ns(req.param("endTime") or req.param("end_time"), "endTime")
        batch = self._reader(req).traces([tid], start, end)
        if not len(batch):
            raise NotFound(f"trace {tid} not found")
        return self._v3({"result": encode_traces_json(batch)})

    def v3_search(self, req: Request, _: list[str]) -> Response:
        batch = self._v3_found(req)
        if not len(batch):
            raise NotFound("No traces found")
        return self._v3({"result": encode_traces_json(batch)})

    def v3_summaries(self, req: Request, _: list[str]) -> Response:
        return self._v3({"summaries": trace_summaries(self._v3_found(req))})

    def _v3_found(self, req: Request) -> Any:
        """The spans of the traces a v3 search finds, its query from the parameters or a POST body."""
        body: dict[str, str] = getattr(req, "v3_query", None) or {}

        def get(camel: str, snake: str) -> str:
            if body:
                return body.get(camel) or body.get(snake) or ""
            return req.param(f"query.{camel}") or req.param(f"query.{snake}") or ""

        start = p.rfc3339_ns(get("startTimeMin", "start_time_min"), "query.startTimeMin")
        end = p.rfc3339_ns(get("startTimeMax", "start_time_max"), "query.startTimeMax")
        if start is None or end is None:
            raise p.BadParameter("query.startTimeMin and query.startTimeMax are required (RFC 3339 times)")
        attributes = get("attributes", "attributes")
        tags = p.tags({"tags": [attributes]}) if attributes else {}
        depth = p.integer({"query.searchDepth": [get("searchDepth", "search_depth")]}, "query.searchDepth",
                          DEFAULT_LIMIT, minimum=1)
        query = self._search_query(
            service=get("serviceName", "service_name"), operation=get("operationName", "operation_name"),
            tags=tags, start=start, end=end,
            min_d=p.go_duration_ns(get("durationMin", "duration_min"), "query.durationMin"),
            max_d=p.go_duration_ns(get("durationMax", "duration_max"), "query.durationMax"),
            limit=depth or DEFAULT_LIMIT, service_required=False,
            names=_V3_NAMES)
        return self._reader(req).traces(self._reader(req).find_trace_ids(query))


_MAX_QUERY_BODY = 64 << 10
_CLICKHOUSE_CODE = re.compile(r"Code: (\d+)\.")


def _failure_kind(exc: BaseException) -> str:
    """What failed, for the log, without the exception's text: its type and ClickHouse's error code."""
    code = getattr(exc, "code", None)
    found = None if isinstance(code, int) else _CLICKHOUSE_CODE.search(str(exc))
    code = int(found.group(1)) if found else code
    return type(exc).__name__ + (f" (ClickHouse error code {code})" if isinstance(code, int) else "")


def _v3_body_query(req: Request) -> dict[str, str]:
    """The `query` object of a v3 POST body (`{"query": {"serviceName": ..., "attributes": {...}}}`), its
    values as the GET parameters would carry them (attributes as a JSON map)."""
    try:
        raw = req.read_body(_MAX_QUERY_BODY)
    except Exception:
        raise p.BadParameter(f"the request body must be a JSON object of at most {_MAX_QUERY_BODY} bytes") from None
    if not raw.strip():
        return {}
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise p.BadParameter(f"the request body is not JSON: {exc}") from None
    query = doc.get("query") if isinstance(doc, dict) else None
    if not isinstance(query, dict):
        raise p.BadParameter('the request body must be {"query": {"startTimeMin": ..., "startTimeMax": ..., ...}}')
    return {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in query.items() if v is not None}


def trace_summaries(batch: Any) -> list[dict[str, Any]]:
    """One summary per trace of `batch`, most recent first: its root (the earliest span without a stored
    parent), time span, span, error and orphan counts, and the same per service."""
    by_trace: dict[str, list[int]] = {}
    for i, tid in enumerate(batch.trace_id):
        by_trace.setdefault(tid, []).append(i)
    services = [r.attributes.get(sc.SERVICE_NAME, "") for r in batch.resources]
    out = []
    for tid, rows in by_trace.items():
        ids = {batch.span_id[i] for i in rows}
        orphans = [i for i in rows if batch.parent_span_id[i] and batch.parent_span_id[i] not in ids]
        roots = [i for i in rows if not batch.parent_span_id[i]] or orphans or rows
        root = min(roots, key=lambda i: batch.start_time_unix_nano[i])
        per_service: dict[str, list[int]] = {}
        for i in rows:
            counts = per_service.setdefault(str(services[batch.resource_index[i]]), [0, 0])
            counts[0] += 1
            counts[1] += batch.status_code[i] == STATUS_CODE_ERROR
        out.append({
            "traceId": tid,
            "rootServiceName": str(services[batch.resource_index[root]]),
            "rootOperationName": batch.name[root],
            "minStartTimeUnixNano": str(min(batch.start_time_unix_nano[i] for i in rows)),
            "maxEndTimeUnixNano": str(max(batch.end_time_unix_nano[i] for i in rows)),
            "spanCount": len(rows),
            "errorSpanCount": sum(batch.status_code[i] == STATUS_CODE_ERROR for i in rows),
            "orphanSpanCount": len(orphans),
            "services": [{"name": n, "spanCount": c, "errorSpanCount": e} for n, (c, e) in sorted(per_service.items())],
        })
    out.sort(key=lambda s: int(s["maxEndTimeUnixNano"]), reverse=True)
    return out


def new_factory() -> Factory:
    return Factory(kind=Kind.EXTENSION, type="jaeger_query", config=JaegerQueryConfig,
                   create=lambda settings, cfg: JaegerQuery(cfg), stability="development")
