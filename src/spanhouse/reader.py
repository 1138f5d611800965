"""Read-only access to the store for the CLI and notebooks, wherever the store is held.

Order of preference: an explicit `--endpoint` (an http(s) URL is read as it is; `chdb://PATH` names an
embedded store, read as below); a ClickHouse server named by the config's
`clickhouse` exporter; for an embedded store, the config's `sql_query` endpoint when the service
behind it serves that very store (it says which in its `/ping` answer), else the store opened
directly (possible only while no `spanhouse serve` holds it). An embedded store whose directory does
not exist is reported as such: an endpoint serving another directory's store is never read instead.

A `sql_query` endpoint with `auth` takes a token: `SPANHOUSE_READ_TOKEN`, sent as the basic-auth password,
unless an `--endpoint` URL carries a password of its own (`http://reader:TOKEN@host:8124`).
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

import clickhouse_connect

from spanhouse.component import Kind
from spanhouse.config import ServiceConfig, load_config, parse_endpoint
from spanhouse.errors import SpanhouseError
from spanhouse.extensions.sql_query import STORE_HEADER
from spanhouse.sqlguard import CheckedQuery, check_read_only
from spanhouse.store import StoreError, StoreSettings, chdb_path, connect, settings_from, table_names

READ_TOKEN_ENV = "SPANHOUSE_READ_TOKEN"
"""The environment variable holding the token for a `sql_query` endpoint that requires one."""


@dataclass
class Reader:
    """A read-only client plus the names of the tables to read. `via` says how the store was reached."""

    client: Any
    store: StoreSettings
    via: str

    @property
    def tables(self) -> dict[str, str]:
        return table_names(self.store)

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        return self.client.query(sql, parameters=parameters)

    def check(self, sql: str) -> CheckedQuery:
        """Refuse anything but one read-only statement (a spanhouse endpoint checks again server-side)."""
        return check_read_only(self.client, sql)

    def raw(self, sql: str, fmt: str | None, parameters: Mapping[str, Any] | None = None) -> bytes:
        return self.client.raw_query(sql, parameters=parameters, fmt=fmt)

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:
            pass


_SERVER_RESPONSE = re.compile(r"^.*?server response: ")
_FOR_URL = re.compile(r"\s*\(for url [^)]*\)\s*$")


def clickhouse_message(exc: BaseException) -> str:
    """ClickHouse's own error text, without the client library's wrapping."""
    text = str(exc).strip()
    text = _FOR_URL.sub("", _SERVER_RESPONSE.sub("", text, count=1))
    return text.splitlines()[0] if text else type(exc).__name__


_NOT_LISTENING = object()


def _served_store(endpoint: str) -> Any:
    """What the `sql_query` endpoint at `endpoint` (host:port) says it serves: the store's directory
    or server URL; None when something answers without saying (not spanhouse, or an older one);
    `_NOT_LISTENING` when nothing answers."""
    host, port = parse_endpoint(endpoint)
    host = "127.0.0.1" if host == "0.0.0.0" else f"[{host}]" if ":" in host else host
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/ping", timeout=2) as resp:
            served = resp.headers.get(STORE_HEADER)
    except urllib.error.HTTPError as exc:
        served = exc.headers.get(STORE_HEADER)
    except (OSError, ValueError):
        return _NOT_LISTENING
    return unquote(served) if served else None


def shown_url(url: str) -> str:
    """`url` as it may be printed: a password in it is replaced by ***."""
    try:
        u = urlparse(url)
        if u.password is None:
            return url
        return u._replace(netloc=f"{u.username}:***@{u.netloc.rsplit('@', 1)[1]}").geturl()
    except ValueError:
        return url.split("@", 1)[-1] if "@" in url else url


def _http_client(url: str, database: str, username: str = "", password: str = "") -> Any:
    shown = shown_url(url)
    try:
        u = urlparse(url if "://" in url else f"http://{url}")
        port = u.port
    except ValueError as exc:
        raise StoreError(f"{shown!r} is not a valid URL ({exc}); expected http(s)://host:port") from None
    if u.scheme not in ("http", "https"):
        raise StoreError(f"{shown!r}: expected http(s)://host:port (ClickHouse's HTTP interface or a spanhouse "
                         "sql_query endpoint), or chdb://PATH for an embedded store")
    try:
        return clickhouse_connect.get_client(
            interface=u.scheme or "http", host=u.hostname or "127.0.0.1",
            port=port or (8443 if u.scheme == "https" else 8123), username=u.username or username or "default",
            password=u.password or os.environ.get(READ_TOKEN_ENV) or password or "", database=database,
            compress=False, autogenerate_session_id=False)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "AUTHENTICATION_FAILED" in str(exc) or "ACCESS_DENIED" in str(exc):
            given = ("the password in the URL" if u.password else f"the token in {READ_TOKEN_ENV}"
                     if os.environ.get(READ_TOKEN_ENV) else "no token")
            raise StoreError(f"{shown} refused the request made with {given}: {clickhouse_message(exc)}. A spanhouse "
                             f"sql_query endpoint with auth takes the token of an operator tenant: set {READ_TOKEN_ENV}"
                             "=<token>, or give it in the URL (http://reader:<token>@host:port)") from None
        if "UNKNOWN_DATABASE" in str(exc):
            raise StoreError(f"ClickHouse at {shown} has no database {database!r}: pass --database, or send spans "
                             "first") from None
        raise StoreError(f"cannot reach ClickHouse at {shown}: {first.replace(url, shown)}") from None


def open_reader(config: ServiceConfig | None = None, *, config_path: str | None = None, endpoint: str | None = None,
                database: str | None = None) -> Reader:
    """Open the store for reading; raises `SpanhouseError` with what to do when it cannot."""
    if config is None:
        config = load_config(config_path, for_reading=True)
    found = config.first(Kind.EXPORTER, "clickhouse")
    store = settings_from(vars(found[1])) if found else StoreSettings()
    if database:
        store = settings_from({**vars(store), "database": database})
    if endpoint and endpoint.startswith("chdb:"):
        if not chdb_path(endpoint):
            raise SpanhouseError(f"--endpoint {endpoint!r}: chdb:// needs the store's directory, e.g. "
                                 "chdb://./spanhouse-data")
        store = settings_from({**vars(store), "endpoint": endpoint})  # an embedded store: read as below
    elif endpoint:
        client = _http_client(endpoint, store.database, store.username, store.password)
        return Reader(client, store, f"ClickHouse at {shown_url(endpoint)}")
    if not store.embedded:
        client = connect(store, readonly=True, use_database=True)
        return Reader(client, store, f"ClickHouse at {store.endpoint}")
    path = chdb_path(store.endpoint)
    sql_ext = config.first(Kind.EXTENSION, "sql_query")
    elsewhere = ""
    if sql_ext is not None:
        served = _served_store(sql_ext[1].endpoint)
        if isinstance(served, str) and os.path.realpath(served) == os.path.realpath(path):
            client = _http_client(f"http://{sql_ext[1].endpoint}", store.database)
            return Reader(client, store, f"spanhouse sql_query at {sql_ext[1].endpoint}")
        if served is not _NOT_LISTENING:
            # another directory's store (a `spanhouse serve` started elsewhere): never read in its place
            elsewhere = (f"; the sql_query endpoint at {sql_ext[1].endpoint} serves "
                         + (f"another store, {served} (read it with --endpoint http://{sql_ext[1].endpoint})"
                            if served else "a store it does not name, so it is not read"))
    if not os.path.isdir(path):
        raise SpanhouseError(_nothing_stored(store) + elsewhere)
    try:
        client = connect(store, readonly=True, use_database=True)
    except StoreError as exc:
        if "UNKNOWN_DATABASE" in str(exc.__cause__ or exc):
            raise SpanhouseError(_nothing_stored(store) + elsewhere) from None
        hint = "" if sql_ext else " Add the sql_query extension to the service to read while it runs."
        raise SpanhouseError(f"{exc}{elsewhere}.{hint}") from None
    return Reader(client, store, f"embedded store {store.endpoint}")


def _nothing_stored(store: StoreSettings) -> str:
    return (f"nothing has been stored in {store.endpoint} (database {store.database}) yet: run `spanhouse serve` "
            "from this directory and send spans (`spanhouse demo` sends some), or pass --config with the "
            "configuration whose store to read")
