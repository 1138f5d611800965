"""Every query path that takes a user value binds it as a parameter: injection strings find nothing,
break nothing, and run nothing."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

import clickhouse_connect
import pytest
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from support import sdk_spans

from spanhouse import semconv as sc
from spanhouse.cli import main
from spanhouse.cli.trace import load_trace
from spanhouse.reader import open_reader

INJECTIONS = [
    "' OR 1=1 --",
    "x'); DROP TABLE otel_traces; --",
    "\\' OR '1'='1",
    "5b8efff798038103d269b633813fc60c' UNION ALL SELECT * FROM system.users --",
    "{t:String}",
    "`; DROP DATABASE otel; --",
    "' || (SELECT name FROM system.tables LIMIT 1) || '",
]


@pytest.fixture
def stored(running):
    def build(tracer):
        with tracer.start_as_current_span("chat m", attributes={sc.GEN_AI_OPERATION_NAME: "chat"}):
            pass

    spans = sdk_spans(build)
    exporter = OTLPSpanExporter(endpoint=running.http_url + "/v1/traces")
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    return format(spans[0].context.trace_id, "032x")


def _count(running) -> int:
    return running.rows("SELECT count() FROM otel_traces")[0][0]


def test_trace_command_refuses_anything_but_a_trace_id(running, stored):
    runner = CliRunner()
    for text in INJECTIONS:
        result = runner.invoke(main, ["trace", text, "--endpoint", f"http://127.0.0.1:{running.sql_port}",
                                      "--database", running.database])
        assert result.exit_code == 1 and "is not a trace id" in result.output, result.output
    ok = runner.invoke(main, ["trace", stored, "--endpoint", f"http://127.0.0.1:{running.sql_port}",
                              "--database", running.database])
    assert ok.exit_code == 0 and "chat m" in ok.output
    assert _count(running) == 1


def test_trace_loader_binds_the_trace_id(running, stored):
    from support import service_config

    from spanhouse.config import parse_config

    reader = open_reader(parse_config(service_config(running.database)),
                         endpoint=f"http://127.0.0.1:{running.sql_port}", database=running.database)
    try:
        for text in INJECTIONS:
            assert load_trace(reader, text) == []
        assert [s.name for s in load_trace(reader, stored)] == ["chat m"]
    finally:
        reader.close()
    assert _count(running) == 1


def test_sql_query_endpoint_binds_param_values(running, stored):
    client = clickhouse_connect.get_client(host="127.0.0.1", port=running.sql_port, database=running.database,
                                           compress=False)
    try:
        sql = "SELECT count() FROM otel_traces WHERE TraceId = {t:String}"
        for text in INJECTIONS:
            assert client.query(sql, parameters={"t": text}).result_rows == [(0,)]
        assert client.query(sql, parameters={"t": stored}).result_rows == [(1,)]
    finally:
        client.close()
    # the raw HTTP form, with a parameter that tries to close the quote itself
    for text in INJECTIONS:
        url = (f"http://127.0.0.1:{running.sql_port}/?database={running.database}&param_t="
               + urllib.parse.quote(text) + "&query=" + urllib.parse.quote(
                   "SELECT count() FROM otel_traces WHERE TraceId = {t:String}"))
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.read().strip() == b"0"
    assert _count(running) == 1


def test_sql_query_endpoint_database_parameter_cannot_inject(running, stored):
    for text in INJECTIONS:
        url = (f"http://127.0.0.1:{running.sql_port}/?database=" + urllib.parse.quote(text)
               + "&query=" + urllib.parse.quote("SELECT 1"))
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                assert resp.read().strip() == b"1"
        except urllib.error.HTTPError as exc:
            assert exc.code in (400, 404, 500) and b"Code:" in exc.read()
    assert _count(running) == 1
