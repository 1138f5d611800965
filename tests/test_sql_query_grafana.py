"""The sql_query endpoint as Grafana's ClickHouse data source reaches it (clickhouse-go, protocol http),
and with clickhouse-connect's compression modes.

clickhouse-go cannot be installed here, so its HTTP requests are replayed with the shapes it sends
(clickhouse-go v2 `conn_http.go`, `conn_http_query.go`; grafana/clickhouse-datasource `pkg/plugin/driver.go`):
POST / with the SQL as the body; `database`, `default_format=Native` and the data source's settings as
URL parameters; credentials as basic auth; `Accept-Encoding: gzip` (the data source's HTTP compression),
with `enable_http_compression=1` when the user adds it as a custom setting. The answer is decoded as
clickhouse-go decodes it: Native blocks at protocol revision 0.
"""

from __future__ import annotations

import base64
import gzip
import struct
import urllib.error
import urllib.parse
import urllib.request

import clickhouse_connect
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from support import sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc

GRAFANA_HEADERS = {
    "User-Agent": "clickhouse-go/2.30.0 (database/sql; lv:go/1.23.4; os:linux) grafana/11.4.0 "
                  "clickhouse-datasource/4.6.0",
    "Authorization": "Basic " + base64.b64encode(b"grafana_reader:secret").decode(),
    "Accept-Encoding": "gzip",
}


@pytest.fixture(scope="module")
def running():
    """One service for the module: Grafana's queries only read the three spans the `endpoint` fixture stores."""
    db = unique_database("sql_grafana")
    svc = start_service(service_config(db), db)
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def endpoint(running):
    def build(tracer):
        for i, model in enumerate(["gpt-4o", "gpt-4o", "claude-sonnet-4-5"]):
            with tracer.start_as_current_span(f"chat {model}", attributes={
                    sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: model,
                    sc.GEN_AI_USAGE_INPUT_TOKENS: 100 * (i + 1)}):
                pass

    exporter = OTLPSpanExporter(endpoint=running.http_url + "/v1/traces")
    assert exporter.export(sdk_spans(build)) is SpanExportResult.SUCCESS
    exporter.shutdown()
    return f"http://127.0.0.1:{running.sql_port}", running.database


# --- a Native (revision 0) reader, as clickhouse-go decodes ------------------------------------


class Native:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def varuint(self) -> int:
        shift = result = 0
        while True:
            b = self.data[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result
            shift += 7

    def string(self) -> bytes:
        n = self.varuint()
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def fixed(self, fmt: str, rows: int) -> list:
        size = struct.calcsize("<" + fmt)
        values = [struct.unpack_from("<" + fmt, self.data, self.pos + i * size)[0] for i in range(rows)]
        self.pos += size * rows
        return values

    def blocks(self) -> tuple[list[tuple[str, str]], list[list]]:
        """Column names and types, and the rows of all blocks (String, UInt*, Float64, DateTime columns)."""
        columns: list[tuple[str, str]] = []
        rows: list[list] = []
        while self.pos < len(self.data):
            ncols, nrows = self.varuint(), self.varuint()
            block_cols, data = [], []
            for _ in range(ncols):
                name, type_ = self.string().decode(), self.string().decode()
                block_cols.append((name, type_))
                if type_ == "String":
                    data.append([self.string().decode() for _ in range(nrows)])
                elif type_ in ("UInt8", "UInt16", "UInt32", "UInt64", "Float64") or type_.startswith("DateTime"):
                    code = {"UInt8": "B", "UInt16": "H", "UInt32": "I", "UInt64": "Q", "Float64": "d"}.get(type_, "I")
                    data.append(self.fixed(code, nrows))
                else:
                    raise AssertionError(f"test reader does not decode {type_}")
            if ncols:
                columns = block_cols
                rows.extend([list(r) for r in zip(*data)] if nrows else [])
        return columns, rows


def grafana_query(url: str, database: str, sql: str, settings: dict | None = None,
                  headers: dict | None = None) -> tuple[int, dict, bytes]:
    params = {"database": database, "default_format": "Native", "max_execution_time": "60", **(settings or {})}
    req = urllib.request.Request(f"{url}/?{urllib.parse.urlencode(params)}", data=sql.encode(), method="POST",
                                 headers={**GRAFANA_HEADERS, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_grafana_connect_sequence_and_panel_query(endpoint):
    url, db = endpoint
    # what clickhouse-go runs when it opens a connection, then the data source's health check
    status, headers, body = grafana_query(url, db, "SELECT timezone()")
    assert status == 200 and "Content-Encoding" not in headers  # no enable_http_compression: plain
    columns, rows = Native(body).blocks()
    assert columns == [("timezone()", "String")] and rows[0][0]
    columns, rows = Native(grafana_query(url, db, "SELECT version()")[2]).blocks()
    assert rows[0][0].split(".")[0].isdigit()
    columns, rows = Native(grafana_query(url, db, "SELECT 1")[2]).blocks()
    assert columns == [("1", "UInt8")] and rows == [[1]]
    # a panel query, gzip-compressed as the data source asks for once enable_http_compression is set
    sql = ("SELECT toStartOfInterval(Timestamp, INTERVAL 60 second) AS time, CAST(RequestModel AS String) AS model, "
           "count() AS calls, sum(InputTokens) AS tokens FROM genai_spans "
           "WHERE Timestamp >= toDateTime(0) GROUP BY time, model ORDER BY model")
    status, headers, body = grafana_query(url, db, sql, {"enable_http_compression": "1", "limit": "1000"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    columns, rows = Native(gzip.decompress(body)).blocks()
    assert [c[0] for c in columns] == ["time", "model", "calls", "tokens"]
    assert [c[1] for c in columns][1:] == ["String", "UInt64", "UInt64"] and columns[0][1].startswith("DateTime")
    assert [r[1:] for r in rows] == [["claude-sonnet-4-5", 1, 300], ["gpt-4o", 2, 300]]


def test_grafana_schema_browsing_queries(endpoint):
    url, db = endpoint
    for sql in (f"SELECT name FROM system.tables WHERE database = '{db}' ORDER BY name",
                "SELECT name FROM system.databases", f"SELECT name FROM system.columns WHERE database = '{db}' "
                "AND table = 'otel_traces_trace_id_ts' ORDER BY name"):
        status, _, body = grafana_query(url, db, sql)
        assert status == 200, body
        columns, rows = Native(body).blocks()
        assert rows
    _, _, body = grafana_query(url, db, f"SELECT name FROM system.columns WHERE database = '{db}' "
                                        "AND table = 'otel_traces_trace_id_ts' ORDER BY name")
    assert [r[0] for r in Native(body).blocks()[1]] == ["End", "Start", "TraceId"]


def test_grafana_errors_and_refusals(endpoint):
    url, db = endpoint
    status, headers, body = grafana_query(url, db, "SELEC 1")
    assert status == 400 and headers["X-ClickHouse-Exception-Code"] == "62" and b"DB::Exception" in body
    status, headers, body = grafana_query(url, db, "DROP TABLE otel_traces")
    assert status == 403 and headers["X-ClickHouse-Exception-Code"] == "164"
    # clickhouse-go's LZ4/ZSTD mode asks for ClickHouse block compression: refused with what to do instead
    status, headers, body = grafana_query(url, db, "SELECT 1", {"compress": "1"})
    assert status == 400 and headers["X-ClickHouse-Exception-Code"] == "36"
    assert b"enable_http_compression=1" in body


@pytest.mark.parametrize("coding", ["gzip", "deflate", "zstd", "lz4"])
def test_compressed_request_bodies_and_responses(endpoint, coding):
    from spanhouse import httpencoding

    url, db = endpoint
    body = httpencoding.encode(b"SELECT count() FROM genai_spans FORMAT TabSeparated", coding)
    req = urllib.request.Request(f"{url}/?database={db}&enable_http_compression=1", data=body, method="POST",
                                 headers={"Content-Encoding": coding, "Accept-Encoding": f"br;q=0, {coding}, gzip"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["Content-Encoding"] == coding
        assert httpencoding.decode(resp.read(), coding, 0) == b"3\n"


def test_multipart_query_fields(endpoint):
    url, db = endpoint
    boundary = "spanhouse-test-boundary"
    parts = [("query", "SELECT count() FROM genai_spans WHERE RequestModel = {m:String}"), ("param_m", "gpt-4o")]
    body = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n" for k, v in parts)
    body += f"--{boundary}--\r\n"
    req = urllib.request.Request(f"{url}/?database={db}", data=body.encode(), method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.read() == b"2\n"


@pytest.mark.parametrize("compress", [True, "lz4", "zstd", "gzip", "deflate"])
def test_clickhouse_connect_with_compression(endpoint, compress):
    url, db = endpoint
    port = int(url.rsplit(":", 1)[1])
    client = clickhouse_connect.get_client(host="127.0.0.1", port=port, database=db, compress=compress)
    try:
        result = client.query("SELECT RequestModel, sum(InputTokens) AS t FROM genai_spans GROUP BY RequestModel "
                              "ORDER BY RequestModel")
        assert result.result_rows == [("claude-sonnet-4-5", 300), ("gpt-4o", 300)]
    finally:
        client.close()
