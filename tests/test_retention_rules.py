"""Retention by environment, tenant, feature and service (`retention` rules of the clickhouse exporter).

Spans and log records from the real OpenTelemetry SDK, encoded as OTLP and decoded by spanhouse, are
pushed through the clickhouse exporter into the embedded store with timestamps in the past; after
`OPTIMIZE TABLE … FINAL` on every table, exactly the rows past their rule's retention are gone."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context
from support import chdb_endpoint, sdk_spans, unique_database

from spanhouse import semconv as sc
from spanhouse.cli import main
from spanhouse.component import Kind
from spanhouse.config import build, parse_config_text
from spanhouse.errors import ConfigError
from spanhouse.exporters.clickhouse import ClickHouseConfig, ClickHouseExporter
from spanhouse.otlp.decode import decode_traces_protobuf
from spanhouse.otlp.decode_logs import decode_logs_protobuf
from spanhouse.store import apply_retention, connect, render_schema

ROOT = Path(__file__).resolve().parents[1]
DAY = 86400 * 10**9
ENV, TENANT, FEATURE = sc.DEPLOYMENT_ENVIRONMENT_NAME, sc.SPANHOUSE_TENANT_ID, sc.SPANHOUSE_FEATURE
RULES = [{"environment": "staging", "ttl": "72h"},
         {"tenant": ["acme", "globex"], "ttl": "2160h"},
         {"feature": "support-chat", "environment": "production", "ttl": "168h"}]
DERIVED = ("otel_traces", "genai_spans", "genai_evaluations", "genai_content", "genai_prompt_links", "otel_logs",
           "genai_rollup_hourly")

# service name: (resource attributes, span and log record attributes, age in days, kept after its retention)
ROWS = {
    "stg-old": ({ENV: "staging"}, {}, 5, False),
    "stg-new": ({ENV: "staging"}, {}, 1, True),
    "acme-40d": ({ENV: "production"}, {TENANT: "acme"}, 40, True),
    "acme-100d": ({ENV: "production"}, {TENANT: "acme"}, 100, False),
    "prod-40d": ({ENV: "production"}, {}, 40, False),
    "prod-20d": ({ENV: "production"}, {}, 20, True),
    "chat-10d": ({ENV: "production"}, {FEATURE: "support-chat"}, 10, False),
    "chat-5d": ({ENV: "production"}, {FEATURE: "support-chat"}, 5, True),
    # the tenant rule comes before the feature rule: it wins
    "chat-globex-10d": ({ENV: "production"}, {FEATURE: "support-chat", TENANT: "globex"}, 10, True),
    # the staging rule comes first and shields its rows from the longer tenant rule
    "stg-acme-5d": ({ENV: "staging"}, {TENANT: "acme"}, 5, False),
    # the environment is the resource's, else the span's; the tenant the span's, else the resource's
    "stg-on-span-5d": ({}, {ENV: "staging"}, 5, False),
    "resource-env-wins-5d": ({ENV: "production"}, {ENV: "staging"}, 5, True),
    "span-tenant-wins-40d": ({ENV: "production", TENANT: "initech"}, {TENANT: "acme"}, 40, True),
    "resource-tenant-40d": ({ENV: "production", TENANT: "acme"}, {}, 40, True),
}


def clickhouse_config(database: str, **settings) -> ClickHouseConfig:
    """The exporter's config built from YAML-shaped data, as the config loader builds it."""
    problems: list[str] = []
    config = build(ClickHouseConfig, {"endpoint": chdb_endpoint(), "database": database, **settings},
                   "exporters::clickhouse", problems)
    assert not problems, problems
    return config


def _send(config: ClickHouseConfig, service: str, resource: dict, attributes: dict, start: int) -> str:
    """A model call naming a prompt, with an evaluation event, and its content and evaluation as log
    records; returns its trace id."""
    def build_span(tracer):
        span = tracer.start_span("chat gpt-4o", start_time=start, attributes={
            sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "gpt-4o", sc.GEN_AI_PROMPT_NAME: "reply",
            **attributes})
        span.add_event(sc.EVENT_GEN_AI_EVALUATION_RESULT, {sc.GEN_AI_EVALUATION_NAME: "relevance",
                                                           sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.5},
                       timestamp=start + 10**9)
        span.end(end_time=start + 2 * 10**9)

    full_resource = {sc.SERVICE_NAME: service, **resource}
    (span,) = sdk_spans(build_span, full_resource)
    traces = ClickHouseExporter(config)
    traces.start(None)
    traces.push(decode_traces_protobuf(encode_spans([span]).SerializeToString()).batch)
    traces.shutdown()

    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create(full_resource))
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("tests.retention")
    ctx = set_span_in_context(NonRecordingSpan(SpanContext(span.context.trace_id, span.context.span_id, True,
                                                           TraceFlags(1))))
    logger.emit(event_name=sc.EVENT_GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS, timestamp=start, context=ctx,
                attributes={sc.GEN_AI_INPUT_MESSAGES: '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]',
                            **attributes})
    logger.emit(event_name=sc.EVENT_GEN_AI_EVALUATION_RESULT, timestamp=start, context=ctx,
                attributes={sc.GEN_AI_EVALUATION_NAME: "helpfulness", sc.GEN_AI_EVALUATION_SCORE_VALUE: 1.0,
                            **attributes})
    provider.shutdown()
    logs = ClickHouseExporter(config, signal="logs")
    logs.start(None)
    logs.push(decode_logs_protobuf(encode_logs(memory.get_finished_logs()).SerializeToString()).batch)
    logs.shutdown()
    return format(span.context.trace_id, "032x")


def _services(client, database: str, table: str) -> set[str]:
    return {r[0] for r in client.query(f"SELECT DISTINCT ServiceName FROM `{database}`.`{table}`").result_rows}


def _engines(client, database: str) -> dict[str, str]:
    return dict(client.query("SELECT name, engine_full FROM system.tables WHERE database = {db:String} "
                             "AND engine LIKE '%MergeTree'", parameters={"db": database}).result_rows)


def _stopped(config: ClickHouseConfig):
    """A client on the store, created, with its TTL merges stopped: rows already past their retention
    would otherwise go in the background as they arrive, before the test sees them."""
    _start(config)
    client = connect(config)
    for table in _engines(client, config.database):
        client.command(f"SYSTEM STOP TTL MERGES `{config.database}`.`{table}`")
    return client


def _optimize(client, database: str, engines: dict[str, str]) -> None:
    for table in engines:
        client.command(f"SYSTEM START TTL MERGES `{database}`.`{table}`")
        client.command(f"OPTIMIZE TABLE `{database}`.`{table}` FINAL")


def test_each_row_is_kept_as_long_as_the_first_rule_it_matches_says_in_every_table():
    database = unique_database("retention_rules")
    config = clickhouse_config(database, ttl="720h", retention=RULES)
    client = _stopped(config)
    now = time.time_ns()
    trace_ids = {_send(config, service, resource, attributes, now - age * DAY): service
                 for service, (resource, attributes, age, _) in ROWS.items()}
    try:
        for table in DERIVED:
            assert _services(client, database, table) == set(ROWS), table  # nothing went at insert
        evaluations = f"SELECT DISTINCT ServiceName, Source FROM `{database}`.genai_evaluations"
        assert len(client.query(evaluations).result_rows) == 2 * len(ROWS)  # span events and log records
        engines = _engines(client, database)
        # TTL merges delete the rows of one rule while the part's others live on only without drop-parts-only
        assert all("ttl_only_drop_parts = 0" in engines[t] for t in DERIVED), engines
        assert "ttl_only_drop_parts = 1" in engines["otel_traces_trace_id_ts"]
        _optimize(client, database, engines)
        kept = {service for service, (_, _, _, keep) in ROWS.items() if keep}
        for table in DERIVED:
            assert _services(client, database, table) == kept, table
        assert {r[0] for r in client.query(evaluations).result_rows} == kept
        # the lookup keeps the longest retention (90 days): traces otel_traces still holds are always found
        lookup = {trace_ids[r[0]] for r in client.query(
            f"SELECT TraceId FROM `{database}`.otel_traces_trace_id_ts").result_rows}
        assert lookup == set(ROWS) - {"acme-100d"}
    finally:
        client.close()


def test_a_rule_with_ttl_0_keeps_its_rows_forever_and_shields_them_from_later_rules():
    database = unique_database("retention_forever")
    config = clickhouse_config(database, ttl="24h", retention=[{"service": "audit", "ttl": 0},
                                                             {"environment": "production", "ttl": "48h"}])
    client = _stopped(config)
    now = time.time_ns()
    trace_ids = {_send(config, "audit", {ENV: "production"}, {}, now - 400 * DAY): "audit",
                 _send(config, "shop", {ENV: "production"}, {}, now - 3 * DAY): "shop",
                 _send(config, "other", {}, {}, now - 3 * DAY): "other"}
    try:
        engines = _engines(client, database)
        assert " TTL " not in engines["otel_traces_trace_id_ts"]  # forever is the longest retention
        for table in DERIVED:
            assert _services(client, database, table) == {"audit", "shop", "other"}, table
        _optimize(client, database, engines)
        for table in DERIVED:
            assert _services(client, database, table) == {"audit"}, table
        assert {trace_ids[r[0]] for r in client.query(
            f"SELECT TraceId FROM `{database}`.otel_traces_trace_id_ts").result_rows} == set(trace_ids.values())
    finally:
        client.close()


def _start(config: ClickHouseConfig) -> None:
    exporter = ClickHouseExporter(config)
    exporter.start(None)
    exporter.shutdown()


def test_rules_are_applied_at_start_only_when_no_row_is_kept_for_less_time(caplog, tmp_path):
    """ClickHouse re-renders a TTL (parentheses, spaces, DELETE left out); an unchanged config changes
    nothing, a lengthening one is applied, a shortening one is logged with what to run, and `spanhouse
    schema --apply-retention` applies it."""
    caplog.set_level(logging.WARNING)
    database = unique_database("retention_change")
    _start(clickhouse_config(database, ttl="720h"))
    tables = 8
    # rules whose shortest retention is the old ttl: every row is kept at least as long as before
    caplog.clear()
    _start(clickhouse_config(database, ttl="720h", retention=[{"tenant": ["acme", "o'hare"], "ttl": "2160h"}]))
    assert caplog.text.count("lengthened from") == tables, caplog.text
    caplog.clear()
    _start(clickhouse_config(database, ttl="720h", retention=[{"tenant": ["acme", "o'hare"], "ttl": "2160h"}]))
    assert "retention of" not in caplog.text  # as ClickHouse shows it, the TTL is the one the config asks for
    # longer rules in the same order, and a rule that keeps its rows forever, are applied
    caplog.clear()
    longer = [{"tenant": ["acme", "o'hare"], "ttl": 0}]
    _start(clickhouse_config(database, ttl="1440h", retention=longer))
    assert caplog.text.count("lengthened from") == tables - 1 and "(toDateTime(Start) + toIntervalDay(90)) removed" \
        in caplog.text, caplog.text
    client = connect(clickhouse_config(database))
    try:
        engines = _engines(client, database)
        assert all("toIntervalDay(60) WHERE" in engines[t] and "toIntervalDay(90)" not in engines[t] for t in DERIVED)
        assert " TTL " not in engines["otel_traces_trace_id_ts"]
        # a rule that shortens some rows' retention (staging from 60 days to 3) is not applied on its own
        caplog.clear()
        shorter = clickhouse_config(database, ttl="1440h", retention=[{"environment": "staging", "ttl": "72h"},
                                                                     *longer])
        _start(shorter)
        assert caplog.text.count("left as it is") == tables - 1, caplog.text
        assert "spanhouse never shortens a retention on its own" in caplog.text
        assert "spanhouse schema --apply-retention" in caplog.text
        assert _engines(client, database) == engines
    finally:
        client.close()
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}},
        "exporters": {"clickhouse": {"endpoint": chdb_endpoint(), "database": database, "ttl": "1440h",
                                     "retention": [{"environment": "staging", "ttl": "72h"}, *longer]}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["clickhouse"]}}}}))
    printed = CliRunner().invoke(main, ["schema", "-c", str(config)])
    assert printed.exit_code == 0 and "toIntervalDay(3) DELETE WHERE (if(ResourceAttributes[" in printed.output
    result = CliRunner().invoke(main, ["schema", "--apply-retention", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "retention set to ttl 1440h and 2 retention rules on: " in result.output
    client = connect(shorter)
    try:
        engines = _engines(client, database)
        assert all("toIntervalDay(3) WHERE" in engines[t] for t in DERIVED), engines
        assert apply_retention(client, shorter) == []  # and it is what the config asks for
    finally:
        client.close()


def test_without_rules_the_ttl_is_todays_and_rules_leave_the_schema_fingerprints_alone():
    plain = dict(render_schema(clickhouse_config("x", ttl="720h")))
    ruled = dict(render_schema(clickhouse_config("x", ttl="720h", retention=RULES)))
    ttls = {name: re.search(r"\nTTL (.*)\nSETTINGS .*ttl_only_drop_parts = (\d)", sql, re.S).groups()
            for name, sql in plain.items() if "\nTTL " in sql}
    thirty_days = ("toDateTime(Timestamp) + toIntervalDay(30)", "1")
    assert ttls == {"020_otel_traces.sql": thirty_days, "021_otel_traces_trace_id_ts.sql":
                    ("toDateTime(Start) + toIntervalDay(30)", "1"), "030_genai_spans.sql": thirty_days,
                    "040_genai_evaluations.sql": thirty_days, "050_otel_logs.sql": thirty_days,
                    "051_genai_content.sql": thirty_days, "057_genai_prompt_links.sql": thirty_days,
                    "060_genai_rollup_hourly.sql": ("Hour + toIntervalDay(30)", "1")}
    assert "\nTTL toDateTime(Start) + toIntervalDay(90)\n" in ruled["021_otel_traces_trace_id_ts.sql"]
    for name, sql in plain.items():
        assert ruled[name].rsplit("\nCOMMENT ", 1)[-1] == sql.rsplit("\nCOMMENT ", 1)[-1], name


@pytest.mark.parametrize("rule, message", [
    ({"environment": "staging", "ttl": "72h", "team": "x"}, "retention[1]::team: unknown setting"),
    ({"ttl": "72h"}, "retention[1]: a rule needs at least one of environment, tenant, feature, service"),
    ({"tenant": "acme"}, "retention[1]::ttl: missing"),
    ({"tenant": ["acme", 7], "ttl": "72h"}, "retention[1]::tenant: expected a string or a list of strings"),
    ({"feature": {"a": 1}, "ttl": "72h"}, "retention[1]::feature: expected a string or a list of strings"),
    ({"tenant": [], "ttl": "72h"}, "retention[1]::tenant: an empty list matches no row"),
    ({"tenant": "acme", "ttl": "-72h"}, "retention[1]::ttl: expected a duration"),
    ({"tenant": "acme", "ttl": "1.5s"}, "retention[1]::ttl: must be a whole number of seconds"),
    ({"tenant": "acme", "ttl": 72}, "retention[1]::ttl: expected a duration"),
])
def test_a_bad_rule_is_reported_with_its_path(rule, message):
    text = yaml.safe_dump({
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}},
        "exporters": {"clickhouse": {"endpoint": "chdb://./x", "ttl": "720h",
                                     "retention": [{"environment": "staging", "ttl": "72h"}, rule]}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["clickhouse"]}}}})
    with pytest.raises(ConfigError) as err:
        parse_config_text(text, env={})
    assert any(p.startswith(f"exporters::clickhouse::{message}") for p in err.value.problems), err.value.problems


def test_the_backfill_warning_names_the_rule_that_deletes_the_spans(caplog):
    caplog.set_level(logging.WARNING)
    database = unique_database("retention_warning")
    config = clickhouse_config(database, ttl="720h", retention=RULES)
    now = time.time_ns()
    _send(config, "stg", {ENV: "staging"}, {}, now - 5 * DAY)
    assert "1 span(s) started before the store's retention (retention[0], ttl 72h)" in caplog.text, caplog.text
    caplog.clear()
    _send(config, "prod", {ENV: "production"}, {TENANT: "acme"}, now - 40 * DAY)  # kept 90 days: no warning
    _send(config, "prod", {ENV: "production"}, {}, now - 5 * DAY)
    assert "started before" not in caplog.text


def test_an_older_store_gets_the_columns_the_rules_read_in_content_and_prompt_links(caplog):
    """genai_content and genai_prompt_links had no environment, tenant or feature before: the upgrade at
    start adds them, the views fill them, and the rules then apply to those tables too."""
    caplog.set_level(logging.WARNING)
    database = unique_database("retention_upgrade")
    client = _stopped(clickhouse_config(database, ttl="720h"))
    try:
        for view in ("genai_content_logs_mv", "genai_prompt_links_mv"):
            client.command(f"DROP VIEW `{database}`.{view}")
        for table, columns in (("genai_content", ("Environment", "Feature", "TenantId")),
                               ("genai_prompt_links", ("ServiceName", "Environment", "Feature", "TenantId"))):
            client.command(f"ALTER TABLE `{database}`.{table} " + ", ".join(f"DROP COLUMN {c}" for c in columns))
            client.command(f"ALTER TABLE `{database}`.{table} MODIFY COMMENT ''")
        config = clickhouse_config(database, ttl="720h", retention=[{"environment": "staging", "ttl": 0}])
        now = time.time_ns()
        _send(config, "staging-svc", {ENV: "staging"}, {}, now - 40 * DAY)
        _send(config, "prod-svc", {}, {ENV: "production"}, now - 40 * DAY)
        assert "genai_content: column Environment LowCardinality(String) added" in caplog.text
        assert "genai_prompt_links: column TenantId LowCardinality(String) added" in caplog.text
        for table in ("genai_content", "genai_prompt_links"):
            assert sorted(client.query(f"SELECT ServiceName, Environment FROM `{database}`.{table}").result_rows) \
                == [("prod-svc", "production"), ("staging-svc", "staging")], table
        _optimize(client, database, _engines(client, database))
        for table in DERIVED:
            assert _services(client, database, table) == {"staging-svc"}, table
    finally:
        client.close()


@pytest.mark.parametrize("path", ["otel-collector-config.yaml", "deploy/spanhouse/config.yaml"])
def test_the_commented_retention_example_of_the_shipped_configs_loads_when_uncommented(path):
    text = (ROOT / path).read_text()
    assert "    # retention:" in text
    uncommented = re.sub(r"(?m)^    # (retention:|  - \{)", r"    \1", text)
    config = parse_config_text(uncommented, env={"CLICKHOUSE_PASSWORD": "x"})
    clickhouse = config.first(Kind.EXPORTER, "clickhouse")[1]
    assert [(r.values("environment"), r.values("tenant"), str(r.ttl)) for r in clickhouse.retention] == [
        (("staging",), (), "72h"), ((), ("acme", "globex"), "2160h"), (("production",), (), "168h")]


def test_a_rule_value_that_reads_like_a_clause_keyword_is_part_of_its_string(caplog):
    """A rule value holding ` SETTINGS ` or a quote stays inside its string literal when spanhouse
    reads the TTL back: an unchanged config changes nothing on the next start."""
    caplog.set_level(logging.WARNING)
    database = unique_database("retention_keyword")
    rules = [{"tenant": ["acme SETTINGS index_granularity = 1, o'hare"], "ttl": "2160h"}]
    _start(clickhouse_config(database, ttl="720h", retention=rules))
    caplog.clear()
    _start(clickhouse_config(database, ttl="720h", retention=rules))
    assert "retention of" not in caplog.text and "left as it is" not in caplog.text, caplog.text
    client = connect(clickhouse_config(database))
    try:
        assert apply_retention(client, clickhouse_config(database, ttl="720h", retention=rules)) == []
    finally:
        client.close()
