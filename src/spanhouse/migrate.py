"""Bring a store made by another spanhouse version to the current schema, without losing rows.

Every table and materialized view spanhouse creates carries a comment `spanhouse schema <fingerprint>`,
a hash of its statement (its retention left out: `store.apply_retention` owns that). At start, an object
whose comment differs was made by another version, or by hand:

- a table gets the columns it lacks, with the type, default and codec of the current statement (read
  from a scratch copy made beside it and dropped), the engine settings the statement sets
  (`MODIFY SETTING`) and the skip indexes it lacks (`ADD INDEX`, for parts written from then on); a
  column whose type differs, or keys that differ, are reported, never changed; columns added are
  empty (their default) in the rows stored before;
- a materialized view gets the current query with `ALTER TABLE … MODIFY QUERY`, which swaps it while
  inserts go on, so no row is missed.

Then its comment is brought up to date. Nothing is dropped or rewritten.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

COMMENT_PREFIX = "spanhouse schema "
_CREATE = re.compile(r"^CREATE (TABLE|MATERIALIZED VIEW) IF NOT EXISTS (\S+)", re.M)
_VIEW_QUERY = re.compile(r"\bTO\s+\S+\s+AS\s+(.*)$", re.S)
# the first SETTINGS outside a string literal (a TTL rule's value may hold the word)
_SETTINGS = re.compile(r"^(?:'(?:[^'\\]|\\.)*'|[^'])*?\bSETTINGS\s+(.*)$", re.S)
# settings that cannot change once a table exists, or that belong to where it lives; and
# ttl_only_drop_parts, which store.apply_retention sets with the TTL it follows
_FIXED_SETTINGS = {"index_granularity", "storage_policy", "disk", "ttl_only_drop_parts"}


def fingerprint(statement: str) -> str:
    return hashlib.sha256(statement.encode()).hexdigest()[:16]


def with_comment(statement: str, fingerprint_of: str) -> str:
    """`statement` (a CREATE TABLE or MATERIALIZED VIEW) with its schema comment; others unchanged."""
    if not _CREATE.search(statement):
        return statement
    return f"{statement}\nCOMMENT '{COMMENT_PREFIX}{fingerprint(fingerprint_of)}'"


def _keys(engine_full: str) -> str:
    """The PARTITION BY, PRIMARY KEY and ORDER BY clauses of an engine description, as one string."""
    found = re.search(r"\b(PARTITION BY .*?)(?:\bTTL\b|\bSETTINGS\b|$)", engine_full, re.S)
    return " ".join(found.group(1).split()) if found else ""


def engine_settings(engine_full: str) -> dict[str, str]:
    """The SETTINGS of an engine description, name → value as written."""
    found = _SETTINGS.search(engine_full)
    if found is None:
        return {}
    pairs = (p.split("=", 1) for p in found.group(1).split(","))
    return {k.strip(): v.strip() for k, v in (p for p in pairs if len(p) == 2)}


def describe(statement: str) -> tuple[str, str, str] | None:
    """(kind `table` or `view`, unquoted name, schema comment) of a statement `with_comment` marked."""
    found = _CREATE.search(statement)
    comment = re.search(r"\nCOMMENT '([^']*)'$", statement)
    if found is None or comment is None:
        return None
    name = re.findall(r"`((?:[^`\\]|\\.)*)`", found.group(2))[-1].replace("\\`", "`").replace("\\\\", "\\")
    return ("table" if found.group(1) == "TABLE" else "view"), name, comment.group(1)


def existing_objects(client: Any, database: str) -> dict[str, tuple[str, str]]:
    """name → (comment, engine_full) of the tables and views in `database`."""
    rows = client.query("SELECT name, comment, engine_full FROM system.tables WHERE database = {db:String}",
                        parameters={"db": database}).result_rows
    return {name: (comment, engine) for name, comment, engine in rows}


class Migration:
    """Alters the objects of a database made by another version, one statement at a time, in the order
    of the schema files (tables before the views that read them). `render` makes the schema statements
    for other settings (a scratch copy of a table, created beside it and dropped)."""

    def __init__(self, client: Any, settings: Any, render: Callable[[Any], Sequence[tuple[str, str]]]):
        from spanhouse.store import quote_ident

        self.client = client
        self.settings = settings
        self.render = render
        self.on_cluster = f" ON CLUSTER {quote_ident(settings.cluster_name)}" if settings.cluster_name else ""
        self.changes: list[str] = []
        """What was changed, one line each."""

    def upgrade(self, statement: str, engine_full: str) -> None:
        """Bring the object `statement` creates, which exists with another comment, to `statement`."""
        described = describe(statement)
        assert described is not None
        kind, name, comment = described
        if kind == "table":
            scratch = self._scratch_copy(name)
            try:
                want_engine = self._engine(scratch)
                want_columns = self._columns(self.settings.database, scratch)
                if not want_columns:
                    raise RuntimeError(f"the scratch copy {scratch} of {name} has no columns")
                self._add_columns(name, self._columns(self.settings.database, name), want_columns)
                self._modify_settings(name, engine_full, want_engine)
                self._add_indexes(name, scratch)
                self._report_keys(name, engine_full, want_engine)
            finally:
                self._command(f"DROP TABLE IF EXISTS {self._qualified(scratch)} SYNC")
        else:
            self._view(name, statement)
        self._command(f"ALTER TABLE {self._qualified(name)}{self.on_cluster} MODIFY COMMENT '{comment}'")

    # --- tables ---------------------------------------------------------------------------

    def _scratch_copy(self, table: str) -> str:
        """A local copy of `table` as this version creates it, in the same database (no other
        privilege needed) under a name of its own, with a plain engine: a replicated copy would register
        itself in the keeper. Returns its name; the caller drops it."""
        from spanhouse.store import StoreSettings, TableEngine

        fields = {f.name: getattr(self.settings, f.name) for f in dataclasses.fields(StoreSettings)}
        fields.update(cluster_name="", table_engine=TableEngine())
        plain = StoreSettings(**fields)
        scratch = f"{table}_spanhouse_upgrade_{uuid.uuid4().hex[:12]}"
        for _, statement in self.render(plain):
            described = describe(statement)
            if described is not None and described[:2] == ("table", table):
                found = _CREATE.search(statement)
                assert found is not None
                start, end = found.span(2)
                self._command(statement[:start] + self._qualified(scratch) + statement[end:])
                return scratch
        raise RuntimeError(f"this version has no statement for table {table}")

    def _engine(self, table: str) -> str:
        rows = self.client.query("SELECT engine_full FROM system.tables WHERE database = {db:String} AND "
                                 "name = {t:String}", parameters={"db": self.settings.database, "t": table})
        return rows.result_rows[0][0] if rows.result_rows else ""

    def _indexes(self, table: str) -> dict[str, tuple[str, str, int]]:
        rows = self.client.query(
            "SELECT name, expr, type_full, granularity FROM system.data_skipping_indices "
            "WHERE database = {db:String} AND table = {t:String}",
            parameters={"db": self.settings.database, "t": table}).result_rows
        return {name: (expr, type_full, int(granularity)) for name, expr, type_full, granularity in rows}

    def _add_indexes(self, table: str, scratch: str) -> None:
        have = self._indexes(table)
        for name, (expr, type_full, granularity) in self._indexes(scratch).items():
            if name in have:
                continue
            self._command(f"ALTER TABLE {self._qualified(table)}{self.on_cluster} ADD INDEX IF NOT EXISTS "
                          f"`{name}` {expr} TYPE {type_full} GRANULARITY {granularity}")
            self.changes.append(f"{table}: index {name} added (for parts written from now on)")

    def _report_keys(self, table: str, have_engine: str, want_engine: str) -> None:
        """What ALTER cannot change (partitioning, sorting and primary keys) is said, not attempted."""
        have, want = _keys(have_engine), _keys(want_engine)
        if have != want:
            log.warning("%s keeps its keys (%s); this version creates it with %s. They cannot be changed in place: "
                        "create a new table and copy the rows if you need them", table, have, want)

    def _columns(self, database: str, table: str) -> list[tuple[str, str, str, str, str]]:
        return [tuple(r) for r in self.client.query(
            "SELECT name, type, default_kind, default_expression, compression_codec FROM system.columns "
            "WHERE database = {db:String} AND table = {t:String} ORDER BY position",
            parameters={"db": database, "t": table}).result_rows]

    def _add_columns(self, table: str, have: list, want: list) -> None:
        types = {c[0]: c[1] for c in have}
        previous = ""
        for name, type_, default_kind, default_expression, codec in want:
            if name in types:
                if types[name] != type_:
                    log.warning("%s.%s is %s; this version writes %s. Left as it is: change it with ALTER TABLE "
                                "… MODIFY COLUMN if you need the new type", table, name, types[name], type_)
                previous = name
                continue
            default = f" {default_kind} {default_expression}" if default_kind else ""
            where = f" AFTER `{previous}`" if previous else " FIRST"
            self._command(f"ALTER TABLE {self._qualified(table)}{self.on_cluster} ADD COLUMN IF NOT EXISTS "
                          f"`{name}` {type_}{default}{' ' + codec if codec else ''}{where}")
            self.changes.append(f"{table}: column {name} {type_} added")
            previous = name

    def _modify_settings(self, table: str, have_engine: str, want_engine: str) -> None:
        have, want = engine_settings(have_engine), engine_settings(want_engine)
        changes = {k: v for k, v in want.items() if k not in _FIXED_SETTINGS and have.get(k) != v}
        if changes:
            assignments = ", ".join(f"{k} = {v}" for k, v in changes.items())
            self._command(f"ALTER TABLE {self._qualified(table)}{self.on_cluster} MODIFY SETTING {assignments}")
            self.changes.append(f"{table}: settings {assignments}")

    # --- views ------------------------------------------------------------------------------

    def _view(self, name: str, statement: str) -> None:
        query = _VIEW_QUERY.search(statement[: statement.rindex("\nCOMMENT '")])
        if query is not None:
            self._command(f"ALTER TABLE {self._qualified(name)}{self.on_cluster} MODIFY QUERY {query.group(1)}")
            self.changes.append(f"{name}: query replaced by this version's")

    def _qualified(self, name: str) -> str:
        from spanhouse.store import quote_ident

        return f"{quote_ident(self.settings.database)}.{quote_ident(name)}"

    def _command(self, sql: str) -> None:
        self.client.command(sql)
