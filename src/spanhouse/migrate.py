"""Bring a store made by another spanhouse version to the current schema, without losing rows.

Every table and materialized view spanhouse creates carries a comment `spanhouse schema <fingerprint>`,
a hash of its statement (its retention left out: `store.apply_retention` owns that). At start, an object
whose comment differs was made by another version, or by hand:

- a table gets the columns it lacks, with the type, default and codec of the current statement (read
  from a copy made in a scratch database), and the engine settings the statement sets
  (`MODIFY SETTING`); a column whose type differs is reported, never changed;
- a materialized view gets the current query with `ALTER TABLE … MODIFY QUERY`, which swaps it while
  inserts go on, so no row is missed.

Then its comment is brought up to date. Nothing is dropped or rewritten.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

COMMENT_PREFIX = "spanhouse schema "
_CREATE = re.compile(r"^CREATE (TABLE|MATERIALIZED VIEW) IF NOT EXISTS (\S+)", re.M)
_VIEW_QUERY = re.compile(r"\bTO\s+\S+\s+AS\s+(.*)$", re.S)
_SETTINGS = re.compile(r"\bSETTINGS\s+(.*)$", re.S)
# settings that cannot change once a table exists, or that belong to where it lives
_FIXED_SETTINGS = {"index_granularity", "storage_policy", "disk"}


def fingerprint(statement: str) -> str:
    return hashlib.sha256(statement.encode()).hexdigest()[:16]


def with_comment(statement: str, fingerprint_of: str) -> str:
    """`statement` (a CREATE TABLE or MATERIALIZED VIEW) with its schema comment; others unchanged."""
    if not _CREATE.search(statement):
        return statement
    return f"{statement}\nCOMMENT '{COMMENT_PREFIX}{fingerprint(fingerprint_of)}'"


def _settings(engine_full: str) -> dict[str, str]:
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
    for other settings (the scratch database); `close` drops the scratch database."""

    def __init__(self, client: Any, settings: Any, render: Callable[[Any], Sequence[tuple[str, str]]]):
        from spanhouse.store import quote_ident

        self.client = client
        self.settings = settings
        self.render = render
        self.on_cluster = f" ON CLUSTER {quote_ident(settings.cluster_name)}" if settings.cluster_name else ""
        self._scratch: Any = None
        self._scratch_engines: dict[str, str] = {}
        self._scratch_columns: dict[str, list] = {}
        self.changes: list[str] = []
        """What was changed, one line each."""

    def upgrade(self, statement: str, engine_full: str) -> None:
        """Bring the object `statement` creates, which exists with another comment, to `statement`."""
        described = describe(statement)
        assert described is not None
        kind, name, comment = described
        if kind == "table":
            want_engine, want_columns = self._wanted(name)
            self._add_columns(name, self._columns(self.settings.database, name), want_columns)
            self._modify_settings(name, engine_full, want_engine)
        else:
            self._view(name, statement)
        self._command(f"ALTER TABLE {self._qualified(name)}{self.on_cluster} MODIFY COMMENT '{comment}'")

    def close(self) -> None:
        if self._scratch is not None:
            self._command(f"DROP DATABASE IF EXISTS `{self._scratch.database}` SYNC")
            self._scratch = None

    # --- tables ---------------------------------------------------------------------------

    def _wanted(self, table: str) -> tuple[str, list]:
        """The engine and columns `table` has when this version creates it (in the scratch database)."""
        if self._scratch is None:
            self._scratch = self._scratch_settings()
            self._command(f"CREATE DATABASE IF NOT EXISTS `{self._scratch.database}`")
            for _, statement in self.render(self._scratch):
                described = describe(statement)
                if described is not None and described[0] == "table":
                    self._command(statement)
            self._scratch_engines = dict(self.client.query(
                "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
                parameters={"db": self._scratch.database}).result_rows)
        return self._scratch_engines.get(table, ""), self._columns(self._scratch.database, table)

    def _scratch_settings(self) -> Any:
        from spanhouse.store import StoreSettings, TableEngine

        fields = {f.name: getattr(self.settings, f.name) for f in dataclasses.fields(StoreSettings)}
        # a plain local engine: a replicated scratch table would register itself in the keeper
        fields.update(database=f"{self.settings.database}_spanhouse_migrate_{os.getpid()}", cluster_name="",
                      table_engine=TableEngine())
        return StoreSettings(**fields)

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
        have, want = _settings(have_engine), _settings(want_engine)
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
