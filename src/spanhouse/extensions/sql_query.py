"""`sql_query` extension: a read-only endpoint that speaks ClickHouse's HTTP interface.

While `spanhouse serve` holds the embedded store, no other process can open it; this endpoint lets
`spanhouse sql`, `clickhouse-connect`, notebooks and Grafana's ClickHouse data source read it. It
follows the HTTP interface's conventions: the query in the body or the `query` parameter,
`database`, `default_format`, `param_<name>` query parameters, other parameters as settings, and
errors as `Code: N. DB::Exception: ...` with `X-ClickHouse-Exception-Code`. Every query runs on a
`readonly=2` session after `sqlguard.check_read_only`.

What Grafana's ClickHouse data source (clickhouse-go, protocol `http`) and clickhouse-connect send is
covered: POST bodies (plain, or with a `Content-Encoding`), multipart form fields (`query`,
`param_*`), `default_format=Native`, settings such as `max_execution_time` as parameters, credentials
(basic auth, `X-ClickHouse-User`/`-Key`, `Authorization: Bearer`; checked only with `auth`, else the
endpoint relies on listening on loopback), and compressed responses when `enable_http_compression=1`
comes with an `Accept-Encoding` the endpoint supports (gzip, deflate, zstd, lz4). ClickHouse's own block
compression (`compress=1`) and external tables are refused with a message saying what to use instead.

`GET /ping` also names the store served, in the `X-Spanhouse-Store` header (the embedded store's
directory, percent-encoded, or the ClickHouse server's URL), so that the CLI reads through this
endpoint only the store its own configuration names. `/ping` answers without a token, as ClickHouse's
does; with `auth`, every query needs one (`spanhouse.extensions.readauth`), and since SQL cannot be
limited to one tenant's rows, only tokens of the tenants listed in `auth.all_tenants` are accepted:
another tenant's valid token gets 403.
"""

from __future__ import annotations

import email.parser
import email.policy
import logging
import os
import re
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from spanhouse import httpencoding
from spanhouse.component import Component, ComponentID, ConfigIssue, Factory, Kind
from spanhouse.config import Duration, endpoint_issues
from spanhouse.errors import RequestTooLarge, SpanhouseError, Unauthenticated
from spanhouse.extensions.readauth import CHALLENGE, ReadAuth, ReadAuthSettings
from spanhouse.httpserver import HttpServer, Request, Response
from spanhouse.sqlguard import QueryRefused, check_read_only
from spanhouse.sqlsession import open_session
from spanhouse.store import StoreSettings, chdb_path, settings_from

log = logging.getLogger(__name__)

STORE_HEADER = "X-Spanhouse-Store"
"""Names the store an endpoint serves, in its `/ping` answer."""

# Parameters of the HTTP interface that are not ClickHouse settings.
_TRANSPORT_PARAMS = frozenset({
    "query", "database", "default_format", "user", "password", "query_id", "session_id", "session_timeout",
    "session_check", "compress", "decompress", "enable_http_compression", "wait_end_of_query", "buffer_size",
    "quota_key", "stacktrace", "role", "add_http_cors_header", "send_progress_in_http_headers",
    "http_headers_progress_interval_ms", "client_protocol_version", "http_response_buffer_size",
})
# ClickHouse's mapping of exception codes to HTTP statuses (exceptionCodeToHTTPStatus); any other code is a
# 500 there too. Deliberate differences: READONLY (164) and ILLEGAL_TYPE_OF_ARGUMENT (43) are 403 and 400, and
# a missing or bad token is 401 (with a WWW-Authenticate challenge), and every session busy for too long
# (TOO_MANY_SIMULTANEOUS_QUERIES) is 503, which clients retry.
_HTTP_STATUS = {
    **dict.fromkeys((36, 427, 6, 25, 26, 38, 41, 72, 441, 675, 676, 27, 376, 15, 44, 37, 123, 8, 167, 168, 223,
                     62, 117, 53, 321, 43), 400),
    **dict.fromkeys((60, 46, 47, 50, 56, 81, 115, 152, 63, 73, 336, 78, 511), 404),
    **dict.fromkeys((192, 193, 194, 516), 401),
    164: 403, 497: 403, 512: 403, 202: 503, 229: 413, 48: 501, 209: 503, 76: 503, 439: 503, 381: 411, 159: 408,
    779: 415,
}
_TOO_MANY_ROWS_OR_BYTES = 396
_TIMEOUT_EXCEEDED = 159
_ALLOWED_METHODS = ("GET", "HEAD", "POST")
# the engine wraps some errors in themselves ("Code: 73. DB::Exception: Code: 73. DB::Exception: ...") and
# appends its version; a client gets the innermost message once
_NESTED_PREFIX = re.compile(r"^(?:Code: (\d+)\. DB::Exception: )+")
_VERSION = re.compile(r" \(version [0-9.]+[^)]*\)")
_REPEATED_NAME = re.compile(r"(\. \(([A-Z_0-9]+)\))(?:\.? \(\2\))+$")


@dataclass(frozen=True, kw_only=True)
class SqlQueryConfig:
    endpoint: str = "127.0.0.1:8124"
    exporter: str = ""
    """The `clickhouse` exporter whose store to read; default: the first one the pipelines use."""
    max_query_size: int = 1 << 20
    """Longest accepted query text in bytes."""
    max_execution_time: Duration = Duration(60)
    """Per query (0: no limit). A query may set ClickHouse's `max_execution_time` lower; on the embedded
    store one that runs longer than this anyway is cancelled."""
    max_concurrent_queries: int = 4
    """Queries of the embedded store that run at once; more wait for one of them to end."""
    max_memory_mib: int = 512
    """Per query (`max_memory_usage`): with the embedded store, queries share the process with ingestion
    and its `memory_limiter`, so one large query must not starve it. 0: no limit."""
    max_result_mib: int = 256
    """Per query (`max_result_bytes`): the result is held in memory before it is sent. 0: no limit."""
    auth: ReadAuthSettings | None = None
    """Require a token of a tenant in `auth.all_tenants` (SQL reads every tenant's rows)."""

    def validate(self) -> Iterator[ConfigIssue]:
        yield from endpoint_issues("endpoint", self.endpoint)
        for name in ("max_memory_mib", "max_result_mib"):
            if getattr(self, name) < 0:
                yield ConfigIssue(name, "must be 0 (no limit) or more")
        if self.max_concurrent_queries < 1:
            yield ConfigIssue("max_concurrent_queries", "must be 1 or more")
        if self.max_execution_time.seconds < 0:
            yield ConfigIssue("max_execution_time", "must not be negative")
        if self.exporter:
            try:
                ComponentID.parse(self.exporter)
            except ValueError as exc:
                yield ConfigIssue("exporter", str(exc))
        if self.auth is not None and not self.auth.all_tenants:
            yield ConfigIssue("auth::all_tenants", "list the tenants (operators) whose tokens may run SQL: a query "
                                                   "reads every tenant's data, so no other token is accepted")

    def query_limits(self) -> dict[str, str]:
        """ClickHouse settings applied to every query that does not set them itself."""
        return {"max_execution_time": str(int(self.max_execution_time.seconds)),
                "max_memory_usage": str(self.max_memory_mib << 20),
                "max_result_bytes": str(self.max_result_mib << 20)}


def store_settings_for(host_config: Any, exporter: str = "") -> StoreSettings:
    """The store of the named `clickhouse` exporter, or of the first one the pipelines use."""
    if exporter:
        cid = ComponentID.parse(exporter)
        cfg = host_config.exporters.get(cid)
        if cfg is None or cid.type != "clickhouse":
            raise SpanhouseError(f"exporter {exporter!r} is not a configured clickhouse exporter")
    else:
        found = host_config.first(Kind.EXPORTER, "clickhouse")
        if found is None:
            raise SpanhouseError("no clickhouse exporter is configured; there is no store to read")
        cfg = found[1]
    return settings_from(vars(cfg))


class SqlQuery(Component):
    """Serves read-only queries over HTTP; per database, up to `max_concurrent_queries` read-only sessions
    run queries at once, none longer than `max_execution_time` on the embedded store."""

    def __init__(self, config: SqlQueryConfig):
        self.config = config
        self.auth = ReadAuth(config.auth) if config.auth is not None else None
        self.store: StoreSettings | None = None
        self.server: HttpServer | None = None
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def start(self, host: Any) -> None:
        self.store = store_settings_for(host.config, self.config.exporter)
        try:
            self._client(self.store.database)
        except SpanhouseError as exc:
            if self.store.embedded:
                raise
            # a ClickHouse server that is down now may answer later; queries connect on demand
            log.warning("sql_query: %s; queries will fail until it answers", exc)
        self.server = HttpServer(self.config.endpoint, self.handle, "sql_query")
        self.server.start()

    def _client(self, database: str) -> Any:
        with self._lock:
            client = self._clients.get(database)
            if client is None:
                assert self.store is not None
                client = open_session(self.store, database, self.config.query_limits(),
                                      size=self.config.max_concurrent_queries,
                                      max_seconds=self.config.max_execution_time.seconds)
                self._clients[database] = client
            return client

    def handle(self, req: Request) -> Response:
        if req.path in ("/ping", "/") and req.method in ("GET", "HEAD") and req.param("query") is None:
            return Response(200, b"Ok.\n", headers={STORE_HEADER: self._store_name()})
        if req.path != "/":
            return Response(404, b"not found; send queries to /\n")
        query_id = req.param("query_id") or str(uuid.uuid4())
        if not (query_id.isascii() and query_id.isprintable()):
            # it is echoed in X-ClickHouse-Query-Id: a line break there would add headers of the sender's choosing
            return _error(_BadArguments("query_id must be printable ASCII (no line breaks or other control "
                                        "characters)"))
        if req.method not in _ALLOWED_METHODS:
            resp = _error(_BadArguments(f"method {req.method} is not supported; send the query with GET (in "
                                        "the `query` parameter) or POST (in the body)"), query_id)
            resp.status = 405
            resp.headers["Allow"] = ", ".join(_ALLOWED_METHODS)
            return resp
        if self.auth is not None:
            refused = self._refused(req, query_id)
            if refused is not None:
                return refused
        fields = {k: v[-1] for k, v in req.query.items()}
        query = fields.get("query", "")
        limit = self.config.max_query_size
        too_long = _QueryTooLarge(f"Max query size exceeded: the query is over sql_query's max_query_size of "
                                  f"{limit} bytes")
        if req.method == "POST":
            try:
                body = httpencoding.decode(req.read_body(limit), req.header("Content-Encoding"), limit)
                text, form = _body_fields(body, req.header("Content-Type"))
            except RequestTooLarge:
                return _error(too_long, query_id)
            except Exception as exc:
                return _error(_BadArguments(str(exc)), query_id)
            fields.update(form)
            query = fields.get("query", "")
            query = f"{query} {text}" if query and text else (query or text)
        if len(query.encode()) > limit:
            return _error(too_long, query_id)
        for flag in ("compress", "decompress"):
            if fields.get(flag, "0") not in ("0", "false", ""):
                return _error(_BadArguments(
                    f"{flag}=1 (ClickHouse's own block compression) is not supported by spanhouse's sql_query "
                    "endpoint; use HTTP compression instead: enable_http_compression=1 with Accept-Encoding "
                    f"({', '.join(httpencoding.SUPPORTED)})"), query_id)
        database = fields.get("database") or req.header("X-ClickHouse-Database") or (
            self.store.database if self.store else "")
        params = {k[6:]: v for k, v in fields.items() if k.startswith("param_")}
        settings = {k: v for k, v in fields.items() if k not in _TRANSPORT_PARAMS and not k.startswith("param_")}
        fmt = fields.get("default_format") or req.header("X-ClickHouse-Format") or "TabSeparated"
        try:
            client = self._client(database)
            checked = check_read_only(client, query, params)
            data = client.raw_query(checked.sql, parameters=params or None, settings=settings or None,
                                    fmt=None if checked.format else fmt)
        except Exception as exc:
            return _error(exc, query_id, self._hint(exc))
        headers = {
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Format": checked.format or fmt,
            "X-ClickHouse-Timezone": "UTC",
            "X-ClickHouse-Server-Display-Name": "spanhouse",
            "X-ClickHouse-Summary": orjson.dumps({"read_rows": "0", "read_bytes": "0", "written_rows": "0",
                                                  "written_bytes": "0", "total_rows_to_read": "0",
                                                  "result_rows": "0", "result_bytes": str(len(data))}).decode(),
        }
        coding = httpencoding.negotiate(req.header("Accept-Encoding")) if fields.get(
            "enable_http_compression", "0") in ("1", "true") else None
        if coding is not None:
            data = httpencoding.encode(data, coding)
            headers["Content-Encoding"] = coding
        return Response(200, data, _content_type(checked.format or fmt), headers)

    def _hint(self, exc: BaseException) -> str:
        """What to do about a per-query limit of this endpoint that `exc` reports; "" for other errors."""
        code = getattr(exc, "code", None)
        if code == _TOO_MANY_ROWS_OR_BYTES:
            return (f"spanhouse's sql_query endpoint caps each answer at sql_query::max_result_mib "
                    f"({self.config.max_result_mib} MiB, uncompressed, held in memory before it is sent). To read "
                    "more: select fewer rows or columns per query (page with WHERE/LIMIT), add SETTINGS "
                    "max_result_bytes = 0 to this query if the server's memory allows, raise max_result_mib in the "
                    "config, or read with `spanhouse serve` stopped (the embedded store opened directly has no cap)")
        if code == _TIMEOUT_EXCEEDED:
            return (f"spanhouse's sql_query endpoint stops each query after sql_query::max_execution_time "
                    f"({int(self.config.max_execution_time.seconds)} s). Narrow the query (a shorter time range), "
                    "raise max_execution_time in the config, or read with `spanhouse serve` stopped")
        return ""

    def _refused(self, req: Request, query_id: str) -> Response | None:
        """The answer to a request whose token may not run SQL, or None when it may."""
        try:
            reader = self.auth.reader(req)  # type: ignore[union-attr]
        except Unauthenticated as exc:
            resp = _error(_AuthenticationFailed(str(exc)), query_id)
            resp.headers["WWW-Authenticate"] = CHALLENGE
            return resp
        if reader.tenant is not None:
            return _error(_AccessDenied(
                f"a token of tenant {reader.tenant!r} cannot run SQL, which reads every tenant's data; use a token "
                "of a tenant in sql_query's auth::all_tenants, or read this tenant's traces through jaeger_query"),
                query_id)
        return None

    def _store_name(self) -> str:
        """The store served, as `X-Spanhouse-Store` gives it: the embedded store's real directory, or the
        server's URL (which carries no credentials: the config refuses them there)."""
        if self.store is None:
            return ""
        where = os.path.realpath(chdb_path(self.store.endpoint)) if self.store.embedded else self.store.endpoint
        return urllib.parse.quote(where, safe="/:")

    def shutdown(self, timeout: float = 10.0) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None
        with self._lock:
            for client in self._clients.values():
                try:
                    client.close()
                except Exception:
                    pass
            self._clients.clear()


class _BadArguments(QueryRefused):
    """A request the endpoint cannot serve as sent (ClickHouse's BAD_ARGUMENTS)."""

    code = 36


class _QueryTooLarge(QueryRefused):
    """A query text over `max_query_size`, also after its Content-Encoding (ClickHouse's QUERY_IS_TOO_LARGE)."""

    code = 229


class _AuthenticationFailed(QueryRefused):
    """No valid token (ClickHouse's AUTHENTICATION_FAILED, HTTP 401)."""

    code = 516


class _AccessDenied(QueryRefused):
    """A valid token that may not run SQL (ClickHouse's ACCESS_DENIED, HTTP 403)."""

    code = 497


def _body_fields(body: bytes, content_type: str) -> tuple[str, dict[str, str]]:
    """The query text of a POST body, and its form fields when it is multipart/form-data."""
    if not content_type.lower().startswith("multipart/form-data"):
        return _utf8(body, "the request body"), {}
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename() is not None:
            raise ValueError(f"external table {name!r} is not supported by the read-only endpoint; "
                             "query the stored tables")
        if name:
            fields[str(name)] = _utf8(part.get_payload(decode=True), f"form field {str(name)!r}")
    return "", fields


def _utf8(data: bytes, what: str) -> str:
    """`data` as text; bytes that are not UTF-8 are refused rather than replaced, which would change the query."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} is not valid UTF-8 (byte {exc.start}); send the query as UTF-8") from None


def _content_type(fmt: str) -> str:
    if fmt.startswith("JSON"):
        return "application/json; charset=UTF-8"
    if fmt.startswith(("TabSeparated", "TSV", "CSV", "Pretty", "Values", "Vertical", "Markdown")):
        return "text/plain; charset=UTF-8"
    return "application/octet-stream"


def _error(exc: BaseException, query_id: str = "", hint: str = "") -> Response:
    """ClickHouse's error answer; a `hint` joins the message on its first line, which clients show."""
    code = getattr(exc, "code", None) or 1002
    text = _clean_message(str(exc).strip()) or type(exc).__name__
    if hint:
        first, _, rest = text.partition("\n")
        first = _with_hint(first, hint)
        text = f"{first}\n{rest}" if rest else first
    if not text.startswith("Code:"):
        name = {164: "READONLY", 36: "BAD_ARGUMENTS", 229: "QUERY_IS_TOO_LARGE", 516: "AUTHENTICATION_FAILED",
                497: "ACCESS_DENIED"}.get(code, "UNKNOWN_EXCEPTION")
        text = f"Code: {code}. DB::Exception: {text}. ({name})"
    headers = {"X-ClickHouse-Exception-Code": str(code), "X-ClickHouse-Server-Display-Name": "spanhouse"}
    if query_id:
        headers["X-ClickHouse-Query-Id"] = query_id
    return Response(_HTTP_STATUS.get(code, 500), (text + "\n").encode(), headers=headers)


_ERROR_NAME_AT_END = re.compile(r"\.?\s*(\([A-Z_]+\)(?: \(version [^)]*\))?)\s*$")


def _with_hint(message: str, hint: str) -> str:
    """`message` with `hint` as its last sentence, before ClickHouse's `(ERROR_NAME)` when it ends with one."""
    m = _ERROR_NAME_AT_END.search(message)
    if m is None:
        return f"{message.rstrip('. ')}. {hint}"
    return f"{message[:m.start()].rstrip('. ')}. {hint}. {m.group(1)}"


def _clean_message(text: str) -> str:
    text = _VERSION.sub("", text)
    nested = _NESTED_PREFIX.match(text)
    if nested:
        text = f"Code: {nested.group(1)}. DB::Exception: {text[nested.end():]}"
    return _REPEATED_NAME.sub(r"\1", text)


def new_factory() -> Factory:
    return Factory(kind=Kind.EXTENSION, type="sql_query", config=SqlQueryConfig,
                   create=lambda settings, cfg: SqlQuery(cfg), stability="development")
