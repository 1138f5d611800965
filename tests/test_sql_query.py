"""The sql_query extension with the real clickhouse-connect HTTP client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from support import sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc


@pytest.fixture(scope="module")
def running():
    """One service for the module: every test here only reads (writes are refused, and checked to be), so
    they share its three spans instead of each starting a service and storing them again."""
    db = unique_database("sql_query")
    svc = start_service(service_config(db), db)
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def client(running):
    def build(tracer):
        for i in range(3):
            with tracer.start_as_current_span(f"chat m{i}", attributes={
                    sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: f"m{i}",
                    sc.GEN_AI_USAGE_INPUT_TOKENS: 10 * (i + 1)}):
                pass

    exporter = OTLPSpanExporter(endpoint=running.http_url + "/v1/traces")
    assert exporter.export(sdk_spans(build)) is SpanExportResult.SUCCESS
    exporter.shutdown()
    c = clickhouse_connect.get_client(host="127.0.0.1", port=running.sql_port, database=running.database,
                                      compress=False)
    yield c
    c.close()


def test_clickhouse_connect_reads_through_the_endpoint(client):
    result = client.query("SELECT RequestModel, InputTokens FROM genai_spans ORDER BY RequestModel")
    assert result.column_names == ("RequestModel", "InputTokens")
    assert result.result_rows == [("m0", 10), ("m1", 20), ("m2", 30)]
    bound = client.query("SELECT count() FROM genai_spans WHERE InputTokens > {n:UInt64}", parameters={"n": 15})
    assert bound.result_rows == [(2,)]
    assert client.query("SELECT count() FROM otel_traces", settings={"max_threads": 1}).result_rows == [(3,)]
    assert client.ping()


@pytest.mark.parametrize("sql, fragment", [
    ("INSERT INTO otel_traces (TraceId) VALUES ('x')", "INSERT statements are not allowed"),
    ("DROP TABLE otel_traces", "DROP statements are not allowed"),
    ("CREATE TABLE x (a Int8) ENGINE = Memory", "CREATE statements are not allowed"),
    ("SYSTEM FLUSH LOGS", "SYSTEM statements are not allowed"),
    ("SET readonly = 0", "SET statements are not allowed"),
    ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "file() is not allowed"),
    ("SELECT * FROM url('http://127.0.0.1:1/', 'CSV')", "url() is not allowed"),
    # wherever the function appears: as a scalar, inside an allowed table function, in a subquery
    ("SELECT file('/etc/hostname')", "file() is not allowed"),
    ("SELECT length(FILE('/proc/self/environ'))", "file() is not allowed"),
    ("SELECT * FROM loop(file('/etc/hostname', 'LineAsString')) LIMIT 1", "file() is not allowed"),
    ("SELECT * FROM loop(url('http://127.0.0.1:1/', 'LineAsString')) LIMIT 1", "url() is not allowed"),
    ("SELECT * FROM view(SELECT * FROM file('/etc/hostname', 'LineAsString'))", "file() is not allowed"),
    ("SELECT (SELECT any(line) FROM file('/etc/hostname', 'LineAsString'))", "file() is not allowed"),
    ("SELECT 1 FROM numbers(1) WHERE 1 IN (SELECT 1 FROM remote('127.0.0.1', system.one))", "remote()"),
    ("SELECT 1; DROP TABLE otel_traces", "Multi-statements"),
    ("SELECT 1 INTO OUTFILE '/tmp/spanhouse-outfile-test'", "INTO OUTFILE is not allowed"),
])
def test_writes_ddl_and_outside_reads_are_refused(client, sql, fragment):
    with pytest.raises(DatabaseError) as err:
        client.command(sql)
    assert fragment.lower() in str(err.value).lower()
    assert client.query("SELECT count() FROM otel_traces").result_rows == [(3,)]


def test_plain_http_interface(running, client):
    base = f"http://127.0.0.1:{running.sql_port}"
    with urllib.request.urlopen(base + "/ping", timeout=5) as resp:
        assert resp.read() == b"Ok.\n"
    url = f"{base}/?database={running.database}&default_format=JSONEachRow&param_m=m1"
    req = urllib.request.Request(url, data=b"SELECT InputTokens FROM genai_spans WHERE RequestModel = {m:String}")
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.headers["X-ClickHouse-Format"] == "JSONEachRow"
        assert json.loads(resp.read()) == {"InputTokens": 20}
    req = urllib.request.Request(f"{base}/?database={running.database}", data=b"SELECT * FROM no_such_table")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 404 and err.value.headers["X-ClickHouse-Exception-Code"] == "60"
    assert b"Code: 60" in err.value.read()


@pytest.mark.parametrize("value", ["a'b", "back\\slash", "tab\there", "new\nline", "{braces}", "ünïcödé"])
def test_string_parameters_arrive_unchanged(client, value):
    assert client.query("SELECT {s:String}", parameters={"s": value}).result_rows == [(value,)]


def test_array_and_number_parameters(client):
    result = client.query("SELECT {a:Array(String)}, {n:UInt64} + 1", parameters={"a": ["x", "y'z"], "n": 41})
    assert result.result_rows == [(["x", "y'z"], 42)]


def test_queries_run_under_the_endpoints_limits_unless_they_set_their_own():
    """One large query must not take the memory ingestion needs: results, memory and time are bounded
    per query by default; a query that sets the setting itself gets its own value, for that query only."""
    from support import service_config, start_service, unique_database

    db = unique_database("limits")
    exts = {"sql_query": {"endpoint": "127.0.0.1:0", "max_result_mib": 1}}
    svc = start_service(service_config(db, extensions=exts), db)
    try:
        c = clickhouse_connect.get_client(host="127.0.0.1", port=svc.sql_port, database=db, compress=False)
        big = "SELECT repeat('x', 1000 + number % 2) FROM numbers(5000)"  # not a constant column
        with pytest.raises(DatabaseError) as err:
            c.query(big)
        assert "limit for result exceeded" in str(err.value).lower()
        assert len(c.query(big, settings={"max_result_bytes": 64 << 20}).result_rows) == 5000
        with pytest.raises(DatabaseError):
            c.query(big)  # the query's own setting did not stay on the session
        limits = dict(c.query("SELECT name, value FROM system.settings WHERE name IN "
                              "('max_memory_usage', 'max_execution_time', 'max_result_bytes')").result_rows)
        assert limits == {"max_memory_usage": str(512 << 20), "max_execution_time": "60",
                          "max_result_bytes": str(1 << 20)}
        c.close()
    finally:
        svc.stop()


def test_the_sql_table_prints_stored_text_as_text(running):
    """Control characters are escaped and console markup is not interpreted: stored text cannot drive
    the terminal, hide a value, or crash the table with a stray `[/]`."""
    from click.testing import CliRunner

    from spanhouse.cli import main

    query = "SELECT concat('transfer', char(27), '[8m_money') AS tool, '[/oops] [bold]x' AS note"
    result = CliRunner().invoke(main, ["sql", query, "--endpoint", f"http://127.0.0.1:{running.sql_port}",
                                       "--database", running.database])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "transfer\\x1b[8m_money" in result.stdout
    assert "[/oops] [bold]x" in result.stdout


def test_a_password_in_an_endpoint_url_is_never_printed():
    from click.testing import CliRunner
    from support import free_port

    from spanhouse.cli import main

    result = CliRunner().invoke(main, ["sql", "SELECT 1", "--endpoint", f"http://reader:S3CR3T@127.0.0.1:{free_port()}"])
    assert result.exit_code == 1 and "cannot reach ClickHouse at http://reader:***@127.0.0.1:" in result.output
    assert "S3CR3T" not in result.output


@pytest.mark.parametrize("query, fragment", [
    ("SELEC 1", "Syntax error: failed at position 7"),
    ("SELECT 'it''s' FROM\n  nowhere WHERE (", "Unmatched parentheses"),
    ("SELECT 1; SELECT 2", "Multi-statements are not allowed"),
])
def test_a_syntax_error_speaks_of_the_users_query_not_the_check_around_it(running, query, fragment):
    from click.testing import CliRunner
    from support import chdb_endpoint

    from spanhouse.cli import main

    # the CLI reading through the endpoint and directly, and the endpoint answering any HTTP client
    for endpoint in (f"http://127.0.0.1:{running.sql_port}", chdb_endpoint()):
        result = CliRunner().invoke(main, ["sql", query, "--endpoint", endpoint, "--database", running.database])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert fragment in result.output and "(SYNTAX_ERROR)" in result.output, result.output
        assert "formatQuerySingleLine" not in result.output and "In scope" not in result.output
    req = urllib.request.Request(f"http://127.0.0.1:{running.sql_port}/?database={running.database}",
                                 data=query.encode())
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    body = err.value.read().decode()
    assert err.value.code == 400 and err.value.headers["X-ClickHouse-Exception-Code"] == "62"
    assert body.startswith("Code: 62. DB::Exception: ") and fragment in body and "formatQuerySingleLine" not in body


def test_an_answer_over_the_result_cap_says_how_to_get_it(tmp_path):
    """Over `max_result_mib` the error names the setting, the per-query override and reading with serve
    stopped, on the first line, which clickhouse-connect and `spanhouse sql` show; the override works."""
    from click.testing import CliRunner
    from support import service_config, start_service, unique_database

    from spanhouse.cli import main

    db = unique_database("cap")
    svc = start_service(service_config(db, extensions={"sql_query": {"endpoint": "127.0.0.1:0",
                                                                     "max_result_mib": 1}}), db)
    big = "SELECT repeat('x', 1000 + number % 2) AS s FROM numbers(5000)"
    try:
        c = clickhouse_connect.get_client(host="127.0.0.1", port=svc.sql_port, database=db, compress=False)
        with pytest.raises(DatabaseError) as err:
            c.query(big)
        c.close()
        result = CliRunner().invoke(main, ["sql", big + " FORMAT Parquet", "--endpoint",
                                           f"http://127.0.0.1:{svc.sql_port}", "--database", db])
        lifted = CliRunner().invoke(main, ["sql", big + " SETTINGS max_result_bytes = 0 FORMAT CSV", "--endpoint",
                                           f"http://127.0.0.1:{svc.sql_port}", "--database", db])
    finally:
        svc.stop()
    for shown in (str(err.value), result.output):
        assert "sql_query::max_result_mib (1 MiB" in shown, shown
        assert "SETTINGS max_result_bytes = 0" in shown and "`spanhouse serve` stopped" in shown
        assert "(TOO_MANY_ROWS_OR_BYTES)" in shown
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert lifted.exit_code == 0 and lifted.stdout.count("\n") == 5000
