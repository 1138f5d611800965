"""Read-only SQL checks for every path where a person's SQL reaches the store.

The session is already `readonly=2` (ClickHouse refuses writes, DDL and SYSTEM statements). On top
of that, ClickHouse's own parser is asked what the query is: `formatQuerySingleLine` (with the text
passed as a parameter, so nothing runs) refuses multi-statements and syntax errors and gives back the
one statement that will run; `EXPLAIN AST` of that statement shows every function it calls, and a
table function outside a short list of those that only generate rows or read the store is refused
wherever it appears: in FROM, inside another table function (`loop(file(...))`), or called as a
scalar (`SELECT file('/etc/passwd')`), so nothing reaches files, URLs or other servers. The names
of table functions come from the engine itself (`system.table_functions`). Nothing here parses SQL
by hand.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spanhouse.errors import SpanhouseError
from spanhouse.store import quote_literal

READONLY_CODE = 164
READ_STATEMENTS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS"})

ALLOWED_TABLE_FUNCTIONS = frozenset({
    "numbers", "numbers_mt", "zeros", "zeros_mt", "values", "generate_series", "generateSeries", "null",
    "merge", "view", "viewIfPermitted", "generateRandom", "loop",
})
_ALLOWED_LOWER = frozenset(name.lower() for name in ALLOWED_TABLE_FUNCTIONS)
_FUNCTION_RE = re.compile(r"^ *Function (\w+)", re.M)
_CACHE_ATTRIBUTE = "_spanhouse_table_functions"
# on ClickHouse's single-line rendering: a trailing FORMAT clause, possibly followed by SETTINGS
_FORMAT_RE = re.compile(r" FORMAT (\w+)(?: SETTINGS [^']*)?$")
# where ClickHouse's error names the query that failed: ours, around the user's text (a string literal)
_WRAPPER_SCOPE_RE = re.compile(r":? In scope SELECT formatQuerySingleLine\('(?:[^'\\]|\\.|'')*'\)", re.S)
_CODE_RE = re.compile(r"Code: (\d+)\.")


class QueryRefused(SpanhouseError):
    """The query is not allowed on a read-only endpoint; `code` is the ClickHouse error code to report."""

    code = READONLY_CODE


class QueryError(SpanhouseError):
    """ClickHouse refused the text of a query (a syntax error, several statements): its message, which
    speaks of the query as the user wrote it. `code` is ClickHouse's error code."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class CheckedQuery:
    sql: str
    format: str | None
    """The query's own `FORMAT` clause, if it has one."""


def check_read_only(client: Any, sql: str, parameters: Mapping[str, Any] | None = None) -> CheckedQuery:
    """Raise `QueryRefused` (or ClickHouse's syntax error) unless `sql` is one statement that only reads
    from the store. Returns the statement, normalized by ClickHouse, to run instead of `sql`.

    `client` needs `raw_query(sql, parameters=..., fmt=...)`: a clickhouse-connect client or a
    `spanhouse.sqlsession` session; `parameters` are passed to it as they are."""
    if not sql.strip():
        raise QueryRefused("empty query")
    try:
        rendered = client.raw_query(f"SELECT formatQuerySingleLine({quote_literal(sql)})", fmt="TabSeparatedRaw")
    except Exception as exc:
        raise _without_wrapper(exc) from None
    text = rendered.decode("utf-8", "replace").rstrip("\n")
    keyword = text.lstrip("( ").split(" ", 1)[0].upper()
    if keyword not in READ_STATEMENTS:
        raise QueryRefused(f"{keyword or 'this'} statements are not allowed: the endpoint is read-only "
                           f"({', '.join(sorted(READ_STATEMENTS))} only)")
    if " INTO OUTFILE " in text.upper():
        raise QueryRefused("INTO OUTFILE is not allowed: the endpoint returns results, it does not write files")
    ast = client.raw_query(f"EXPLAIN AST {text}", parameters=parameters or None, fmt=None).decode("utf-8", "replace")
    roots = [line for line in ast.splitlines() if line and not line.startswith(" ")]
    if len(roots) != 1:
        raise QueryRefused("send one statement per request")
    refused = _table_functions(client) - _ALLOWED_LOWER
    for name in _FUNCTION_RE.findall(ast):
        if name.lower() in refused:
            raise QueryRefused(f"{name}() is not allowed on the read-only endpoint: it reaches outside the store "
                               f"(table functions allowed: {', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))})")
    fmt = _FORMAT_RE.search(text)
    return CheckedQuery(text, fmt.group(1) if fmt else None)


def _without_wrapper(exc: Exception) -> Exception:
    """ClickHouse's error about the user's query, without the wrapper query it names as its scope
    (`In scope SELECT formatQuerySingleLine('...')`) and without a client library's wrapping."""
    text = str(exc)
    cleaned = _WRAPPER_SCOPE_RE.sub("", text)
    if cleaned == text:
        return exc
    start = cleaned.find("Code: ")
    message = (cleaned[start:] if start >= 0 else cleaned).strip().splitlines()[0]
    message = re.sub(r"\.\s+\.(?= \()", ".", message)  # "...; SELECT 2. . (SYNTAX_ERROR)"
    code = _CODE_RE.match(message)
    return QueryError(message, int(code.group(1)) if code else 62)


def _table_functions(client: Any) -> frozenset[str]:
    """The engine's table functions, lowercased; remembered on the client (one engine per client)."""
    names = getattr(client, _CACHE_ATTRIBUTE, None)
    if names is None:
        raw = client.raw_query("SELECT name FROM system.table_functions", fmt="TabSeparatedRaw")
        names = frozenset(raw.decode("utf-8", "replace").lower().split())
        # the ones every build has, in case the engine lists fewer
        names |= {"file", "url", "remote", "remotesecure", "s3", "hdfs", "input", "executable", "mysql",
                  "postgresql", "odbc", "jdbc", "sqlite", "cluster", "clusterallreplicas", "azureblobstorage"}
        try:
            setattr(client, _CACHE_ATTRIBUTE, names)
        except AttributeError:
            pass
    return names
