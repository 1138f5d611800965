"""Read-only sessions that take query parameters and settings as ClickHouse's HTTP interface does.

The `sql_query` endpoint receives `param_<name>` values in the HTTP interface's text form (a String
`a\\'b` means `a'b`, an Array is `['x','y']`); handing them to a client library that escapes
Python values again would change the data. These sessions pass them through untouched: to the
embedded engine's own parameter binding (chDB), or, for a ClickHouse server, in the forwarded request.

On the embedded engine, a pool of such sessions lets several readers' queries run at once. On either, a
query that runs longer than the endpoint's time limit is cancelled even when it lifted
`max_execution_time` itself.
"""

from __future__ import annotations

import base64
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping

import chdb

from spanhouse.errors import SpanhouseError
from spanhouse.store import StoreSettings, chdb_path, quote_ident, quote_literal

_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CODE = re.compile(r"Code: (\d+)")
_CANCELLED = 394  # QUERY_WAS_CANCELLED
_TIMEOUT_EXCEEDED = 159
_TOO_MANY_SIMULTANEOUS_QUERIES = 202
_KILL_GRACE = 1.0  # the engine's own max_execution_time, when the query kept it, ends the query first


class SessionError(SpanhouseError):
    """ClickHouse refused a query; `code` is its exception code."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def _code_of(message: str) -> int:
    m = _CODE.search(message)
    return int(m.group(1)) if m else 1002


class EmbeddedSession:
    """A `readonly=2` session on the embedded engine; one query at a time. `defaults` are settings every
    query runs with unless it sets them itself (the endpoint's limits)."""

    def __init__(self, store: StoreSettings, database: str, defaults: Mapping[str, str] | None = None):
        self._conn = chdb.connect(chdb_path(store.endpoint))
        self._lock = threading.Lock()
        self._defaults = dict(defaults or {})
        for name, value in self._defaults.items():
            self._run(f"SET {name} = {quote_literal(value)}", "TabSeparated", {})
        self._run("SET readonly = 2", "TabSeparated", {})
        if database:
            self._run(f"USE {quote_ident(database)}", "TabSeparated", {})

    def _run(self, sql: str, fmt: str, params: Mapping[str, str]) -> bytes:
        try:
            result = self._conn.query(sql, fmt, params=dict(params))
        except Exception as exc:
            text = str(exc).strip()
            raise SessionError(text, _code_of(text)) from None
        return result.bytes()

    def raw_query(self, sql: str, parameters: Mapping[str, str] | None = None,
                  settings: Mapping[str, str] | None = None, fmt: str | None = None) -> bytes:
        """Run `sql`; output in `fmt` unless the query has its own FORMAT clause."""
        with self._lock:
            applied = []
            try:
                for name, value in (settings or {}).items():
                    if not _SETTING_NAME.match(name):
                        raise SessionError(
                            f"Code: 115. DB::Exception: Unknown setting {name!r}. (UNKNOWN_SETTING)", 115)
                    self._run(f"SET {name} = {quote_literal(str(value))}", "TabSeparated", {})
                    applied.append(name)
                return self._run(sql, fmt or "TabSeparated", parameters or {})
            finally:
                for name in applied:
                    default = self._defaults.get(name)
                    value = "DEFAULT" if default is None else quote_literal(default)
                    self._run(f"SET {name} = {value}", "TabSeparated", {})

    def close(self) -> None:
        try:
            self._conn.close()
        except Exception:
            pass


class EmbeddedPool:
    """Up to `size` `EmbeddedSession`s of one database, so that up to `size` queries run at once; another
    waits for a free session, up to `wait` seconds, then gets TOO_MANY_SIMULTANEOUS_QUERIES. With
    `max_seconds` > 0, a query still running after that long (plus a second) is cancelled and gets
    TIMEOUT_EXCEEDED, whatever `max_execution_time` it set itself (as a setting or in a SETTINGS clause)."""

    def __init__(self, store: StoreSettings, database: str, defaults: Mapping[str, str] | None = None, *,
                 size: int = 4, max_seconds: float = 0, wait: float = 60.0):
        self._store, self._database, self._defaults = store, database, dict(defaults or {})
        self._size, self._max_seconds, self._wait = max(1, size), max_seconds, wait
        self._idle = [EmbeddedSession(store, database, defaults)]  # an unknown database fails here
        self._open = 1
        self._cond = threading.Condition()
        self._control: object | None = None
        self._control_lock = threading.Lock()

    def raw_query(self, sql: str, parameters: Mapping[str, str] | None = None,
                  settings: Mapping[str, str] | None = None, fmt: str | None = None) -> bytes:
        """Run `sql` on a free session; output in `fmt` unless the query has its own FORMAT clause."""
        session = self._acquire()
        try:
            if not self._max_seconds:
                return session.raw_query(sql, parameters, settings, fmt)
            # the marker finds this query among the engine's running ones, to cancel it
            marker = f"/* spanhouse-sql {uuid.uuid4().hex} */"
            fired = threading.Event()
            timer = threading.Timer(self._max_seconds + _KILL_GRACE, self._cancel, (marker, fired))
            timer.daemon = True
            timer.start()
            try:
                return session.raw_query(f"{marker} {sql}", parameters, settings, fmt)
            except SessionError as exc:
                if exc.code == _CANCELLED and fired.is_set():
                    raise SessionError(
                        f"Code: {_TIMEOUT_EXCEEDED}. DB::Exception: the query ran longer than "
                        f"{self._max_seconds:g} s, the endpoint's limit (sql_query's max_execution_time), and "
                        "was cancelled; a query's own max_execution_time cannot lift it. (TIMEOUT_EXCEEDED)",
                        _TIMEOUT_EXCEEDED) from None
                raise
            finally:
                timer.cancel()
        finally:
            self._release(session)

    def _acquire(self) -> EmbeddedSession:
        with self._cond:
            if not self._cond.wait_for(lambda: self._idle or self._open < self._size, self._wait):
                raise SessionError(
                    f"Code: {_TOO_MANY_SIMULTANEOUS_QUERIES}. DB::Exception: {self._size} queries are running "
                    f"on this endpoint and none ended within {self._wait:g} s; retry later. "
                    "(TOO_MANY_SIMULTANEOUS_QUERIES)", _TOO_MANY_SIMULTANEOUS_QUERIES)
            if self._idle:
                return self._idle.pop()
            self._open += 1
        try:
            return EmbeddedSession(self._store, self._database, self._defaults)
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise

    def _release(self, session: EmbeddedSession) -> None:
        with self._cond:
            self._idle.append(session)
            self._cond.notify()

    def _cancel(self, marker: str, fired: threading.Event) -> None:
        fired.set()
        with self._control_lock:
            try:
                if self._control is None:
                    self._control = chdb.connect(chdb_path(self._store.endpoint))
                self._control.query(  # type: ignore[attr-defined]
                    f"KILL QUERY WHERE startsWith(query, {quote_literal(marker)}) ASYNC", "TabSeparated")
            except Exception:
                pass  # the query ended meanwhile, or the pool is closing

    def close(self) -> None:
        with self._cond:
            sessions, self._idle = self._idle, []
        for session in sessions:
            session.close()
        with self._control_lock:
            if self._control is not None:
                try:
                    self._control.close()  # type: ignore[attr-defined]
                except Exception:
                    pass
                self._control = None


class ServerSession:
    """Forwards read-only queries to a ClickHouse server's HTTP interface, parameters untouched, always with
    `readonly=2`. With `max_seconds` > 0 it waits that long (plus a second) for an answer, then drops the
    connection, which makes the server cancel the query (`cancel_http_readonly_queries_on_client_close`),
    and reports TIMEOUT_EXCEEDED, whatever `max_execution_time` the query set itself."""

    def __init__(self, store: StoreSettings, database: str, defaults: Mapping[str, str] | None = None,
                 max_seconds: float = 0):
        self._defaults = dict(defaults or {})
        self._url = store.endpoint.rstrip("/") + "/"
        self._database = database
        self._max_seconds = max_seconds
        self._timeout = max_seconds + _KILL_GRACE if max_seconds else None
        user = store.username or "default"
        token = base64.b64encode(f"{user}:{store.password}".encode()).decode()
        self._auth = f"Basic {token}"

    def raw_query(self, sql: str, parameters: Mapping[str, str] | None = None,
                  settings: Mapping[str, str] | None = None, fmt: str | None = None) -> bytes:
        query = {"database": self._database, "cancel_http_readonly_queries_on_client_close": "1", **self._defaults,
                 **(settings or {}), "readonly": "2"}
        if fmt:
            query["default_format"] = fmt
        query.update({f"param_{k}": v for k, v in (parameters or {}).items()})
        req = urllib.request.Request(self._url + "?" + urllib.parse.urlencode(query), data=sql.encode(),
                                     headers={"Authorization": self._auth})
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace").strip()
            raise SessionError(text, int(exc.headers.get("X-ClickHouse-Exception-Code") or _code_of(text))) from None
        except (TimeoutError, urllib.error.URLError) as exc:
            if not isinstance(getattr(exc, "reason", exc), TimeoutError):
                raise SessionError(f"Code: 210. DB::Exception: cannot reach {self._url}: {exc}. (NETWORK_ERROR)",
                                   210) from None
            raise SessionError(
                f"Code: {_TIMEOUT_EXCEEDED}. DB::Exception: ClickHouse did not answer within {self._max_seconds:g} s, "
                "the endpoint's limit (sql_query's max_execution_time), and the query was cancelled; a query's own "
                "max_execution_time cannot lift it. (TIMEOUT_EXCEEDED)", _TIMEOUT_EXCEEDED) from None
        except OSError as exc:
            raise SessionError(f"Code: 210. DB::Exception: cannot reach {self._url}: {exc}. (NETWORK_ERROR)",
                               210) from None

    def close(self) -> None:
        pass


def open_session(store: StoreSettings, database: str, defaults: Mapping[str, str] | None = None, *,
                 size: int = 4, max_seconds: float = 0) -> EmbeddedPool | ServerSession:
    """Sessions for up to `size` concurrent queries (a ClickHouse server takes any number), each cancelled
    after `max_seconds` (0: no limit)."""
    if store.embedded:
        return EmbeddedPool(store, database, defaults, size=size, max_seconds=max_seconds,
                            wait=max_seconds + 5 if max_seconds else 60.0)
    return ServerSession(store, database, defaults, max_seconds=max_seconds)
