"""The ClickHouse store: one client library for the embedded engine and for servers, and the schema.

`chdb://PATH` opens the embedded engine (chDB) at PATH; `http(s)://host:port` talks to a server,
ClickHouse Cloud or a cluster. Both go through `clickhouse-connect`, so the same SQL runs on both.

The schema lives in `deploy/clickhouse/*.sql` (shipped in the package as `spanhouse.ddl`) and is
rendered here: identifiers are quoted, attribute names come from the generated semconv constants
(`${GEN_AI_REQUEST_MODEL}` in a file becomes the quoted literal `'gen_ai.request.model'`), and the
engine, cluster, TTL and index variants are filled in.
"""

from __future__ import annotations

import datetime
import fcntl
import importlib.resources
import logging
import os
import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from spanhouse import migrate, retention, semconv
from spanhouse.component import ConfigIssue
from spanhouse.config import Duration
from spanhouse.errors import SpanhouseError
from spanhouse.fsprivate import make_private_dirs
from spanhouse.modelcalls import model_call_sql, unpriced_sql
from spanhouse.normalize import load_mappings
from spanhouse.retention import RetentionRule
from spanhouse.scores import LOG_RECORD, PAIR_WINDOW_MS, SPAN_EVENT, passed_sql, score_columns_sql

log = logging.getLogger(__name__)

DDL_PACKAGE = "spanhouse.ddl"
FULL_TEXT_MIN_VERSION = (26, 2)
PROMPT_DEPTH = 64
"""How many levels genai_spans_by_prompt walks up from a model call to the span that names its prompt."""
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class StoreError(SpanhouseError):
    """The store cannot be opened or used; the message says what to change."""


def quote_ident(name: str) -> str:
    """Backtick-quote an identifier, escaping embedded backticks."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True, kw_only=True)
class TableEngine:
    name: str = "MergeTree"
    """MergeTree, ReplicatedMergeTree, SharedMergeTree, ..."""
    params: str = ""
    """Engine parameters, e.g. the ZooKeeper path and replica of a ReplicatedMergeTree."""

    def validate(self) -> Iterator[ConfigIssue]:
        if not _IDENT_RE.match(self.name) or not self.name.endswith("MergeTree"):
            yield ConfigIssue("name", f"{self.name!r} is not a MergeTree-family engine name")

    def render(self, aggregating: bool = False) -> str:
        name = self.name
        if aggregating and name in ("MergeTree", "ReplicatedMergeTree"):
            name = name.replace("MergeTree", "AggregatingMergeTree")
        return f"{name}({self.params})"

    def render_replacing(self, version: str, deleted: str) -> str:
        """The ReplacingMergeTree of this engine's family (Replicated..., Shared...) keeping the row with
        the highest `version` of each sorting key and dropping it when `deleted` is 1."""
        name = self.name
        if name in ("MergeTree", "ReplicatedMergeTree", "SharedMergeTree"):
            name = name.replace("MergeTree", "ReplacingMergeTree")
        params = ", ".join(p for p in (self.params.strip(), version, deleted) if p)
        return f"{name}({params})"


@dataclass(frozen=True, kw_only=True)
class StoreSettings:
    """Where the store is and how its tables are made. Shared by the exporter, extensions and the CLI."""

    endpoint: str = "chdb://./spanhouse-data"
    """`chdb://PATH` (embedded, default) or `http(s)://host:port` for a ClickHouse server."""
    username: str = ""
    password: str = ""
    database: str = "otel"
    traces_table_name: str = "otel_traces"
    logs_table_name: str = "otel_logs"
    ttl: Duration = Duration(0)
    """Retention of stored rows no `retention` rule matches; 0 keeps them forever. E.g. `720h` for 30 days."""
    retention: tuple[RetentionRule, ...] = ()
    """Rules by environment, tenant, feature or service; the first a row matches sets its retention."""
    create_schema: bool = True
    """Create the database, tables and views at start (idempotent)."""
    cluster_name: str = ""
    """Adds `ON CLUSTER` to every statement."""
    table_engine: TableEngine = field(default_factory=TableEngine)
    connection_params: dict[str, str] = field(default_factory=dict)
    """ClickHouse settings sent with every query and insert."""
    compress: str = "lz4"
    """Transport compression for http(s) endpoints: lz4, zstd, gzip, br, none."""

    def validate(self) -> Iterator[ConfigIssue]:
        try:
            url = urlparse(self.endpoint)
            scheme, _ = url.scheme, url.port  # .port raises on a malformed host or port
        except ValueError as exc:
            yield ConfigIssue("endpoint", f"{self.endpoint!r} is not a valid URL: {exc}")
        else:
            if scheme not in ("chdb", "http", "https"):
                yield ConfigIssue("endpoint", f"{self.endpoint!r}: use chdb://PATH for the embedded store or "
                                              "http(s)://host:port for a ClickHouse server")
            elif scheme == "chdb" and not chdb_path(self.endpoint):
                yield ConfigIssue("endpoint", "chdb:// needs a directory, e.g. chdb://./spanhouse-data")
            elif url.username is not None or url.password is not None:
                # the endpoint is printed in messages and answers; credentials there would be too
                yield ConfigIssue("endpoint", "put the user and password in `username` and `password` (e.g. "
                                              "password: ${env:CLICKHOUSE_PASSWORD}), not in the endpoint URL")
        for name in ("database", "traces_table_name", "logs_table_name"):
            if not _IDENT_RE.match(getattr(self, name)):
                yield ConfigIssue(name, f"{getattr(self, name)!r} is not a plain identifier (letters, digits, _)")
        if self.ttl.seconds < 0:
            yield ConfigIssue("ttl", "must not be negative")
        elif self.ttl.seconds and self.ttl.seconds % 1:
            yield ConfigIssue("ttl", "must be a whole number of seconds, e.g. 72h")
        if self.compress not in ("lz4", "zstd", "gzip", "br", "deflate", "none", ""):
            yield ConfigIssue("compress", f"{self.compress!r} is not one of lz4, zstd, gzip, br, deflate, none")

    @property
    def embedded(self) -> bool:
        return self.endpoint.startswith("chdb:")

    def table(self, name: str) -> str:
        return f"{quote_ident(self.database)}.{quote_ident(name)}"


def chdb_path(endpoint: str) -> str:
    """The absolute directory of a `chdb://` endpoint (`chdb://./data`, `chdb:///abs/data`)."""
    rest = endpoint[len("chdb://"):]
    return os.path.abspath(rest) if rest else ""


def _locked_by_another_process(path: str) -> bool:
    """Whether another process holds the embedded engine's lock on `path` (its `status` file)."""
    try:
        with open(os.path.join(path, "status"), "rb") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
    except OSError:
        pass
    return False


def connect(settings: StoreSettings, *, readonly: bool = False, use_database: bool = False, **kwargs: Any) -> Client:
    """Open a client. `readonly` sets `readonly=2` on the session: reads and settings, no writes or DDL.
    `use_database` makes the configured database the session's default (it must exist). Sessions run
    in UTC (`session_timezone`, unless `connection_params` say otherwise): hourly rollups and the CLI's
    times must not follow the time zone of the machine the embedded engine runs on."""
    params = {"session_timezone": "UTC", **settings.connection_params}
    try:
        if settings.embedded:
            path = chdb_path(settings.endpoint)
            if os.path.exists(path) and not os.path.isdir(path):
                raise StoreError(f"the store path {path} of {settings.endpoint} is a file, not a directory: "
                                 "move it away, or point the endpoint at a directory")
            # the store holds prompts and completions: a directory spanhouse creates is its owner's
            # alone (0700), so other users cannot traverse to the files chDB writes with its own umask
            make_private_dirs(path)
            client = clickhouse_connect.get_client(interface="chdb", path=path,
                                                   database=settings.database if use_database else None,
                                                   settings=params)
        else:
            u = urlparse(settings.endpoint)
            client = clickhouse_connect.get_client(
                interface=u.scheme, host=u.hostname or "localhost",
                port=u.port or (8443 if u.scheme == "https" else 8123),
                username=settings.username or "default", password=settings.password,
                compress=settings.compress if settings.compress not in ("", "none") else False,
                database=settings.database if use_database else None,
                settings=params, **kwargs)
    except StoreError:
        raise
    except Exception as exc:
        if settings.embedded and _locked_by_another_process(chdb_path(settings.endpoint)):
            raise StoreError(f"the ClickHouse store at {settings.endpoint} is in use by another process (another "
                             "`spanhouse serve` on this data directory?): stop it, or give this one its own "
                             "directory; to read while it runs, use its sql_query endpoint") from None
        raise StoreError(f"cannot open the ClickHouse store at {settings.endpoint}: {_short(exc)}") from exc
    if params["session_timezone"] == "UTC":
        # the client turns stored times into Python datetimes in the server's zone (the machine's, for the
        # embedded engine); in UTC, like the session, they print as the CLI's "(UTC)" columns say
        client.tz_source = "server"
        client.server_tz = datetime.UTC
    if readonly:
        client.command("SET readonly = 2")
    return client


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "Cannot lock file" in str(exc) or "already initialized" in str(exc):
        text += (" (another process, probably a running `spanhouse serve`, holds this store; read it through "
                 "that server's sql_query endpoint instead)")
    return text


def server_version(client: Client) -> tuple[int, ...]:
    text = client.query("SELECT version()").result_rows[0][0]
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


# --- DDL ------------------------------------------------------------------------------------


class _SqlTemplate(string.Template):
    idpattern = r"[A-Za-z_][A-Za-z0-9_]*"


def _ddl_files() -> list[tuple[str, str]]:
    root = importlib.resources.files(DDL_PACKAGE)
    return sorted((p.name, p.read_text(encoding="utf-8")) for p in root.iterdir() if p.name.endswith(".sql"))


# what each table's TTL counts from
_TTL_TIMESTAMP, _TTL_START, _TTL_HOUR = "toDateTime(Timestamp)", "toDateTime(Start)", "Hour"


@dataclass(frozen=True)
class RetentionTable:
    """A table with a retention: its DDL placeholders are `${ttl_<key>}` and `${ttl_only_drop_parts_<key>}`."""

    key: str
    name: str
    column: str
    """What its TTL counts from."""
    fields: retention.Fields | None
    """How its rows' environment, tenant, feature and service are read; None: it keeps the longest retention."""


def retention_tables(settings: StoreSettings) -> list[RetentionTable]:
    """Every table with a retention, with how its rows are matched against the rules."""
    traces, logs = settings.traces_table_name, settings.logs_table_name
    typed = retention.TYPED_FIELDS
    return [RetentionTable("traces", traces, _TTL_TIMESTAMP, retention.map_fields("SpanAttributes")),
            # the trace-id lookup holds ids and times only, and must find every trace otel_traces keeps
            RetentionTable("traces_lookup", traces + "_trace_id_ts", _TTL_START, None),
            RetentionTable("logs", logs, _TTL_TIMESTAMP, retention.map_fields("LogAttributes")),
            RetentionTable("genai_spans", "genai_spans", _TTL_TIMESTAMP, typed),
            RetentionTable("genai_evaluations", "genai_evaluations", _TTL_TIMESTAMP, typed),
            RetentionTable("genai_content", "genai_content", _TTL_TIMESTAMP, typed),
            RetentionTable("genai_prompt_links", "genai_prompt_links", _TTL_TIMESTAMP, typed),
            RetentionTable("genai_rollup", "genai_rollup_hourly", _TTL_HOUR, typed)]


def ttl_clause(table: RetentionTable, settings: StoreSettings) -> str:
    """The table's TTL clause for the config's `ttl` and `retention` ('' keeps every row)."""
    entries = retention.ttl_entries(table.column, settings.ttl, settings.retention, table.fields)
    return "TTL " + ",\n    ".join(entries) if entries else ""


def _drops_parts_only(clause: str) -> str:
    """`ttl_only_drop_parts` for a TTL clause: with rules, a part holds rows of several retentions, and
    ClickHouse's TTL merges under `ttl_only_drop_parts = 1` only drop parts whose every row expired."""
    return "0" if " WHERE " in clause else "1"


def render_schema(settings: StoreSettings, version: tuple[int, ...] = FULL_TEXT_MIN_VERSION) -> list[tuple[str, str]]:
    """The DDL statements to run, as (file name, SQL), in file order. Files starting with `_` are fragments."""
    files = dict(_ddl_files())
    full_text = tuple(version[:2]) >= FULL_TEXT_MIN_VERSION
    on_cluster = f"ON CLUSTER {quote_ident(settings.cluster_name)}" if settings.cluster_name else ""
    values: dict[str, str] = {
        name: quote_literal(value) for name, value in vars(semconv).items()
        if name.isupper() and isinstance(value, str)
    }
    values.update(
        database=quote_ident(settings.database),
        traces_table=settings.table(settings.traces_table_name),
        traces_lookup_table=settings.table(settings.traces_table_name + "_trace_id_ts"),
        traces_lookup_view=settings.table(settings.traces_table_name + "_trace_id_ts_mv"),
        logs_table=settings.table(settings.logs_table_name),
        genai_spans_table=settings.table("genai_spans"),
        genai_spans_view=settings.table("genai_spans_mv"),
        genai_evaluations_table=settings.table("genai_evaluations"),
        genai_evaluations_view=settings.table("genai_evaluations_mv"),
        genai_rollup_table=settings.table("genai_rollup_hourly"),
        genai_rollup_view=settings.table("genai_rollup_hourly_mv"),
        genai_evaluations_logs_view=settings.table("genai_evaluations_logs_mv"),
        genai_content_table=settings.table("genai_content"),
        genai_content_logs_view=settings.table("genai_content_logs_mv"),
        genai_span_content_view=settings.table("genai_span_content"),
        genai_spans_full_view=settings.table("genai_spans_full"),
        genai_evaluations_full_view=settings.table("genai_evaluations_full"),
        genai_prompt_links_table=settings.table("genai_prompt_links"),
        genai_prompt_links_view=settings.table("genai_prompt_links_mv"),
        genai_spans_by_prompt_view=settings.table("genai_spans_by_prompt"),
        genai_evaluations_by_prompt_view=settings.table("genai_evaluations_by_prompt"),
        genai_dataset_examples_table=settings.table("genai_dataset_examples"),
        genai_dataset_examples_logs_view=settings.table("genai_dataset_examples_logs_mv"),
        genai_dataset_examples_current_view=settings.table("genai_dataset_examples_current"),
        prompt_depth=str(PROMPT_DEPTH),
        event_score_columns=score_columns_sql("e.Attributes"),
        log_score_columns=score_columns_sql("a"),
        span_event=quote_literal(SPAN_EVENT),
        log_record=quote_literal(LOG_RECORD),
        pair_window_ms=str(PAIR_WINDOW_MS),
        passed=passed_sql("e.ScoreValue", "e.ScoreLabel"),
        on_cluster=on_cluster,
        engine=settings.table_engine.render(),
        aggregating_engine=settings.table_engine.render(aggregating=True),
        replacing_engine=settings.table_engine.render_replacing("Version", "Deleted"),
    )
    timeless_values = {}
    for table in retention_tables(settings):
        clause = ttl_clause(table, settings)
        values[f"ttl_{table.key}"], timeless_values[f"ttl_{table.key}"] = clause, ""
        values[f"ttl_only_drop_parts_{table.key}"] = _drops_parts_only(clause)
        timeless_values[f"ttl_only_drop_parts_{table.key}"] = "1"
    finish: dict[str, str] = {}
    for sent, canonical in load_mappings().value_maps["finish_reason"].map.items():
        finish.setdefault(sent.lower(), canonical or "")
    values["finish_reason_from"] = "[" + ", ".join(map(quote_literal, finish)) + "]"
    values["finish_reason_to"] = "[" + ", ".join(map(quote_literal, finish.values())) + "]"
    values["model_call"] = model_call_sql("s.")
    values["unpriced"] = unpriced_sql("s.")
    values["trace_indexes"] = files["_trace_indexes_text.sql" if full_text else "_trace_indexes_bloom.sql"].strip()
    values["logs_indexes"] = files["_logs_indexes_text.sql" if full_text else "_logs_indexes_bloom.sql"].strip()
    # the schema comment's fingerprint leaves the retention out: apply_retention brings it to the config
    timeless = dict(values, **timeless_values)
    out = []
    for name, text in files.items():
        if name.startswith("_"):
            continue
        template = _SqlTemplate(text)
        sql = template.substitute(values).strip().rstrip(";")
        out.append((name, migrate.with_comment(sql, template.substitute(timeless).strip().rstrip(";"))))
    return out


def table_names(settings: StoreSettings) -> dict[str, str]:
    """Quoted, database-qualified names of the tables readers use."""
    return {
        "traces": settings.table(settings.traces_table_name),
        "traces_lookup": settings.table(settings.traces_table_name + "_trace_id_ts"),
        "logs": settings.table(settings.logs_table_name),
        "genai_spans": settings.table("genai_spans"),
        "genai_evaluations": settings.table("genai_evaluations"),
        "genai_rollup": settings.table("genai_rollup_hourly"),
        "genai_content": settings.table("genai_content"),
        "genai_span_content": settings.table("genai_span_content"),
        "genai_spans_full": settings.table("genai_spans_full"),
        "genai_evaluations_full": settings.table("genai_evaluations_full"),
        "genai_spans_by_prompt": settings.table("genai_spans_by_prompt"),
        "genai_evaluations_by_prompt": settings.table("genai_evaluations_by_prompt"),
        "genai_dataset_examples": settings.table("genai_dataset_examples"),
        "genai_dataset_examples_current": settings.table("genai_dataset_examples_current"),
    }


def create_schema(client: Client, settings: StoreSettings) -> None:
    """Run every DDL statement (all `IF NOT EXISTS`); a table or materialized view another spanhouse
    version made is upgraded in place instead (`spanhouse.migrate`); then bring the retention of tables
    that already existed to `settings.ttl`. Raises `StoreError` naming the failing file or table."""
    version = server_version(client)
    existing = migrate.existing_objects(client, settings.database)
    upgrade = migrate.Migration(client, settings, lambda other: render_schema(other, version))
    statements = render_schema(settings, version)
    # a store this schema made before: another exporter's tables or the user's own in the database are not
    ours = {d[1] for d in map(migrate.describe, (sql for _, sql in statements)) if d is not None}
    upgrading = bool(ours & existing.keys())
    for name, sql in statements:
        described = migrate.describe(sql)
        stale = described is not None and described[1] in existing and existing[described[1]][0] != described[2]
        try:
            if stale:
                upgrade.upgrade(sql, existing[described[1]][1])
            else:
                client.command(sql)
                if upgrading and described is not None and described[1] not in existing:
                    upgrade.changes.append(f"{described[1]}: created ({described[0]})")
        except Exception as exc:
            if stale:
                raise StoreError(f"upgrading {described[1]}, made by another spanhouse version, to this version's "
                                 f"schema ({name}) failed on {settings.endpoint}: {_short(exc)}. The upgrade needs "
                                 "ALTER, CREATE TABLE and DROP TABLE in the database; or apply `spanhouse schema` "
                                 "by hand and set create_schema: false") from exc
            raise StoreError(f"schema file {name} failed on {settings.endpoint}: {_short(exc)}") from exc
    if upgrade.changes:
        log.warning("the store in %s was made by another spanhouse version and has been brought to this one (columns "
                    "added are empty in the rows stored before): %s", settings.endpoint, "; ".join(upgrade.changes))
    apply_retention(client, settings)


# a string literal is one token, so a rule value holding ` SETTINGS ` does not end the TTL clause
_TTL_IN_ENGINE = re.compile(r"\bTTL\s+((?:'(?:[^'\\]|\\.)*'|[^'])*?)\s*(?:\bSETTINGS\b|$)", re.S)


def apply_retention(client: Client, settings: StoreSettings, *, shorten: bool = False) -> list[str]:
    """Bring the retention of tables that already exist to `ttl` and `retention`, never deleting data on
    its own: a TTL under which no row's retention gets shorter (a longer `ttl`, longer rules, `ttl: 0`,
    rules added whose shortest is at least the old retention) is applied with `ALTER TABLE … MODIFY TTL`
    or `REMOVE TTL`; one that shortens some row's retention, or a TTL spanhouse did not write (tiering
    rules), is left as it is and logged with the statement to run. With `shorten` (`spanhouse schema
    --apply-retention`, asked for by a person) a shorter one is applied too. `ttl_only_drop_parts` follows
    the TTL applied: 0 with rules, so that a part's expired rows go while its others stay. Returns the
    tables altered."""
    tables = {t.name: t for t in retention_tables(settings)}
    # the names are filtered here: an Array parameter does not survive every HTTP front of ClickHouse
    rows = [r for r in client.query("SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
                                    parameters={"db": settings.database}).result_rows if r[0] in tables]
    on_cluster = f" ON CLUSTER {quote_ident(settings.cluster_name)}" if settings.cluster_name else ""
    changed = []
    for name, engine in rows:
        spec, table = tables[name], settings.table(name)
        found = _TTL_IN_ENGINE.search(engine)
        current = " ".join(found.group(1).split()) if found else ""
        wanted = ttl_clause(spec, settings)[len("TTL "):]
        if retention.same(current, wanted):
            _set_drop_parts(client, settings, table, engine, _drops_parts_only(" " + wanted), on_cluster)
            continue
        sql = (f"ALTER TABLE {table}{on_cluster} MODIFY TTL {wanted}" if wanted
               else f"ALTER TABLE {table}{on_cluster} REMOVE TTL")
        have = retention.parse(current, spec.column) if current else []
        longer = have is not None and retention.never_shorter(have, spec.column, settings.ttl, settings.retention,
                                                              spec.fields)
        if not longer and not (shorten and have is not None):
            if have is None:
                why, how = "its TTL is not one spanhouse writes", f"edit it by hand: {sql}"
            else:
                why = "spanhouse never shortens a retention on its own (stored rows would go)"
                how = ("stop spanhouse and run `spanhouse schema --apply-retention` with this config"
                       + (f" (or: {sql})" if not settings.embedded else ""))
            log.warning("retention of %s is %s, the config asks for %s; left as it is: %s. To apply it, %s",
                        table, retention.shown(current), retention.shown(wanted), why, how)
            continue
        try:
            client.command(sql)
        except Exception as exc:
            raise StoreError(f"could not change the retention of {table} on {settings.endpoint}: "
                             f"{_short(exc)}") from exc
        _set_drop_parts(client, settings, table, engine, _drops_parts_only(" " + wanted), on_cluster)
        if wanted and not longer:
            log.warning("retention of %s shortened from %s to %s: ClickHouse deletes the older rows in the "
                        "background", table, retention.shown(current), retention.shown(wanted))
        elif wanted:
            log.warning("retention of %s lengthened from %s to %s (ttl and retention in the config); ClickHouse "
                        "applies it to the rows already stored in the background", table, retention.shown(current),
                        retention.shown(wanted))
        else:
            log.warning("retention of %s (%s) removed: ttl 0 in the config keeps every row", table,
                        retention.shown(current))
        changed.append(name)
    return changed


def _set_drop_parts(client: Client, settings: StoreSettings, table: str, engine: str, value: str,
                    on_cluster: str) -> None:
    if migrate.engine_settings(engine).get("ttl_only_drop_parts", "0") == value:
        return
    try:
        client.command(f"ALTER TABLE {table}{on_cluster} MODIFY SETTING ttl_only_drop_parts = {value}")
    except Exception as exc:
        raise StoreError(f"could not set ttl_only_drop_parts of {table} on {settings.endpoint}: "
                         f"{_short(exc)}") from exc


def settings_from(mapping: Mapping[str, Any]) -> StoreSettings:
    """Build StoreSettings from any config object that has the same field names."""
    names = {f for f in StoreSettings.__dataclass_fields__}
    return StoreSettings(**{k: v for k, v in mapping.items() if k in names})
