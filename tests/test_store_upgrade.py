"""A store made by an earlier spanhouse is brought to this version's schema at start, in place."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from support import chdb_endpoint, sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc
from spanhouse.migrate import COMMENT_PREFIX
from spanhouse.store import StoreSettings, connect, create_schema, quote_ident


def _age(client, db: str) -> None:
    """What a store of an earlier version looks like: no schema comments, a column, a table setting and an
    index added since missing, and a materialized view with an older query (here: one that writes nothing)."""
    client.command(f"ALTER TABLE `{db}`.genai_spans DROP COLUMN FinishReasons")
    client.command(f"ALTER TABLE `{db}`.genai_spans RESET SETTING non_replicated_deduplication_window")
    client.command(f"ALTER TABLE `{db}`.genai_spans DROP INDEX idx_model")
    client.command(f"ALTER TABLE `{db}`.genai_spans_mv MODIFY QUERY SELECT Timestamp, TraceId, SpanId, ServiceName "
                   f"FROM `{db}`.otel_traces WHERE 0")
    client.command(f"DROP VIEW `{db}`.genai_prompt_links_mv")  # objects added since
    client.command(f"DROP TABLE `{db}`.genai_prompt_links")
    client.command(f"DROP VIEW `{db}`.genai_evaluations_by_prompt")
    for name, in client.query("SELECT name FROM system.tables WHERE database = {db:String} AND comment != ''",
                              parameters={"db": db}).result_rows:
        client.command(f"ALTER TABLE `{db}`.{quote_ident(name)} MODIFY COMMENT ''")


@pytest.fixture
def made():
    """A store made with this version's schema: (client, settings, database); dropped afterwards."""
    db = unique_database("upgrade")
    store = StoreSettings(endpoint=chdb_endpoint(), database=db)
    client = connect(store)
    try:
        create_schema(client, store)
        yield client, store, db
    finally:
        client.command(f"DROP DATABASE IF EXISTS {quote_ident(db)}")
        client.close()


def test_an_older_store_gets_the_columns_settings_and_view_queries_of_this_version(caplog, made):
    client, store, db = made
    _age(client, db)
    with caplog.at_level(logging.WARNING, logger="spanhouse.store"):
        svc = start_service(service_config(db), db)
    try:
        spans = sdk_spans(lambda t: t.start_span("chat gpt-4o", attributes={
            sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
            sc.GEN_AI_RESPONSE_FINISH_REASONS: ["length"]}).end())
        exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces")
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
        rows = svc.wait_rows("SELECT RequestModel, FinishReasons FROM genai_spans", 1)
        assert rows == [("gpt-4o", ["length"])]
    finally:
        svc.stop()
    engine, = client.query("SELECT engine_full FROM system.tables WHERE database = {db:String} AND "
                           "name = 'genai_spans'", parameters={"db": db}).result_rows[0]
    assert "non_replicated_deduplication_window = 10000" in engine
    indexes = [n for (n,) in client.query("SELECT name FROM system.data_skipping_indices WHERE "
                                          "database = {db:String} AND table = 'genai_spans'",
                                          parameters={"db": db}).result_rows]
    assert "idx_model" in indexes
    comments = dict(client.query("SELECT name, comment FROM system.tables WHERE database = {db:String} AND "
                                 "engine NOT IN ('View')", parameters={"db": db}).result_rows)
    assert all(c.startswith(COMMENT_PREFIX) for c in comments.values()), comments
    assert "made by another spanhouse version" in caplog.text
    assert "genai_spans: column FinishReasons" in caplog.text and "genai_spans_mv: query replaced" in caplog.text
    assert "genai_prompt_links: created (table)" in caplog.text and "genai_prompt_links_mv: created" in caplog.text
    tables = [name for (name,) in client.query(f"SHOW TABLES FROM `{db}`").result_rows]
    assert not [name for name in tables if "_spanhouse_upgrade_" in name]  # the scratch copies are gone
    assert "genai_evaluations_by_prompt" in tables
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="spanhouse.store"):
        create_schema(client, store)  # up to date now: nothing to do, nothing said
    assert "another spanhouse version" not in caplog.text


def test_a_view_changed_by_hand_is_replaced_and_a_column_type_changed_by_hand_is_kept(caplog, made):
    client, store, db = made
    client.command(f"ALTER TABLE `{db}`.genai_evaluations MODIFY COLUMN EvaluationName String")
    client.command(f"ALTER TABLE `{db}`.genai_evaluations MODIFY COMMENT 'mine'")
    with caplog.at_level(logging.WARNING):
        create_schema(client, store)
    assert "genai_evaluations.EvaluationName is String; this version writes" in caplog.text
    (kind,) = client.query("SELECT type FROM system.columns WHERE database = {db:String} AND table = "
                           "'genai_evaluations' AND name = 'EvaluationName'", parameters={"db": db}).result_rows[0]
    assert kind == "String"
