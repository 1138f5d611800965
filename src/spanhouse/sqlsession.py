"""Read-only sessions that take query parameters and settings as ClickHouse's HTTP interface does.

The `sql_query` endpoint receives `param_<name>` values in the HTTP interface's text form (a String
`a\\'b` means `a'b`, an Array is `['x','y']`); handing them to a client library that escapes
Python values again would change the data. These sessions pass them through untouched: to the
embedded engine's own parameter binding (chDB), or, for a ClickHouse server, in the forwarded request.
"""

from __future__ import annotations

import base64
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping

import chdb

from spanhouse.errors import SpanhouseError
from spanhouse.store import StoreSettings, chdb_path, quote_ident, quote_literal

_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CODE = re.compile(r"Code: (\d+)")


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


class ServerSession:
    """Forwards read-only queries to a ClickHouse server's HTTP interface, parameters untouched."""

    def __init__(self, store: StoreSettings, database: str, defaults: Mapping[str, str] | None = None,
                 timeout: float = 30.0):
        self._defaults = dict(defaults or {})
        self._url = store.endpoint.rstrip("/") + "/"
        self._database = database
        self._timeout = timeout
        user = store.username or "default"
        token = base64.b64encode(f"{user}:{store.password}".encode()).decode()
        self._auth = f"Basic {token}"

    def raw_query(self, sql: str, parameters: Mapping[str, str] | None = None,
                  settings: Mapping[str, str] | None = None, fmt: str | None = None) -> bytes:
        query = {"database": self._database, "readonly": "2", **self._defaults, **(settings or {})}
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
        except OSError as exc:
            raise SessionError(f"Code: 210. DB::Exception: cannot reach {self._url}: {exc}. (NETWORK_ERROR)",
                               210) from None

    def close(self) -> None:
        pass


def open_session(store: StoreSettings, database: str,
                 defaults: Mapping[str, str] | None = None) -> EmbeddedSession | ServerSession:
    return (EmbeddedSession(store, database, defaults) if store.embedded
            else ServerSession(store, database, defaults))
