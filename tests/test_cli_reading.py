"""The reading commands (sql, trace, costs, top-traces, schema) find the store a configuration names,
and read only that store: without the receivers' secrets, through `--endpoint chdb://PATH`, and never
through an endpoint that serves another directory's store."""

from __future__ import annotations

import os

import pytest
import yaml
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from support import chdb_endpoint, sdk_spans

from spanhouse import semconv as sc
from spanhouse.cli import main
from spanhouse.config import load_config
from spanhouse.service import Service


@pytest.fixture
def stored(running) -> str:
    """One stored GenAI trace in the running service's database; its id."""
    spans = sdk_spans(lambda t: t.start_span("chat gpt-4o", attributes={
        sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
        sc.GEN_AI_USAGE_INPUT_TOKENS: 10, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5}).end())
    exporter = OTLPSpanExporter(endpoint=running.http_url + "/v1/traces")
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    running.wait_rows("SELECT 1 FROM genai_spans", 1)
    return format(spans[0].context.trace_id, "032x")


def _write(path, config: dict):
    path.write_text(yaml.safe_dump(config))
    return path


def test_reading_commands_do_not_need_the_receivers_tokens_or_tls_files(running, stored, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the relative TLS files and the tokens file do not exist here
    monkeypatch.delenv("SPANHOUSE_TOKENS", raising=False)
    tls = {"cert_file": "server.pem", "key_file": "server.key"}
    config = _write(tmp_path / "cfg.yaml", {
        "receivers": {"otlp": {
            "protocols": {"grpc": {"endpoint": "127.0.0.1:0", "tls": tls},
                          "http": {"endpoint": "127.0.0.1:0", "tls": {**tls, "client_ca_file": "ca.pem"}}},
            "auth": {"bearer_tokens_env": "SPANHOUSE_TOKENS", "bearer_tokens_file": "tokens.yaml"}}},
        "exporters": {"clickhouse": {"endpoint": chdb_endpoint(), "database": running.database},
                      "otlphttp/apm": {"endpoint": "https://apm.invalid:4318", "tls": {"ca_file": "apm-ca.pem"}}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["clickhouse", "otlphttp/apm"]}}},
    })
    runner = CliRunner()
    for args in (["sql", "SELECT count() FROM otel_traces", "--format", "csv"], ["trace", stored],
                 ["costs"], ["top-traces"], ["schema"]):
        result = runner.invoke(main, [*args, "-c", str(config)], terminal_width=200)
        assert result.exit_code == 0, (args, result.output)
        assert "configuration has problems" not in result.output
    assert runner.invoke(main, ["sql", "SELECT count() FROM otel_traces", "--format", "csv", "-c",
                                str(config)]).output.split() == ['"count()"', "1"]

    # serving needs them all, and still refuses with every one named
    served = runner.invoke(main, ["serve", "-c", str(config)])
    assert served.exit_code == 2, served.output
    for problem in ("receivers::otlp::auth: bearer_tokens_file tokens.yaml: No such file or directory",
                    "receivers::otlp::protocols::grpc::tls::cert_file: server.pem: no such file",
                    "receivers::otlp::protocols::http::tls::client_ca_file: ca.pem: no such file",
                    "exporters::otlphttp/apm::tls::ca_file: file 'apm-ca.pem' does not exist"):
        assert problem in served.output, served.output
    config.write_text(config.read_text().replace("bearer_tokens_file: tokens.yaml", "bearer_tokens_file: ''"))
    served = runner.invoke(main, ["serve", "-c", str(config)])
    assert served.exit_code == 2
    assert "bearer_tokens_env: environment variable SPANHOUSE_TOKENS is not set" in served.output
    with pytest.raises(ValueError, match="loaded for_reading"):
        Service(load_config(config, for_reading=True))


def test_endpoint_chdb_reads_the_embedded_store_it_names(running, stored):
    runner = CliRunner()
    result = runner.invoke(main, ["sql", "SELECT TraceId FROM otel_traces", "--format", "csv", "--endpoint",
                                  chdb_endpoint(), "--database", running.database])
    assert result.exit_code == 0, result.output
    assert result.output.split() == ['"TraceId"', f'"{stored}"']
    shown = runner.invoke(main, ["trace", stored, "--endpoint", chdb_endpoint(), "--database", running.database],
                          terminal_width=200)
    assert shown.exit_code == 0 and "chat gpt-4o" in shown.output, shown.output
    for endpoint, message in (("chdb://", "chdb:// needs the store's directory"),
                              ("mysql://db:3306", "expected http(s)://host:port (ClickHouse's HTTP interface or "
                                                  "a spanhouse sql_query endpoint), or chdb://PATH")):
        refused = runner.invoke(main, ["sql", "SELECT 1", "--endpoint", endpoint])
        assert refused.exit_code == 1 and message in refused.output, refused.output
    assert "chdb://PATH" in runner.invoke(main, ["sql", "--help"]).output


def test_the_sql_query_endpoint_is_read_only_for_the_store_it_serves(running, stored, tmp_path):
    """A `spanhouse serve` of another directory listening on the config's sql_query endpoint (the
    default 127.0.0.1:8124, say) does not answer for a store that does not exist here."""
    endpoint = f"127.0.0.1:{running.sql_port}"

    def config(store: str) -> dict:
        return {"receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}},
                "exporters": {"clickhouse": {"endpoint": store, "database": running.database}},
                "extensions": {"sql_query": {"endpoint": endpoint}},
                "service": {"extensions": ["sql_query"],
                            "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["clickhouse"]}}}}

    here = tmp_path / "spanhouse-data"
    other = _write(tmp_path / "other.yaml", config(f"chdb://{here}"))
    runner = CliRunner()
    result = runner.invoke(main, ["sql", "SELECT count() FROM otel_traces", "-c", str(other)])
    assert result.exit_code == 1, result.output
    assert f"nothing has been stored in chdb://{here}" in result.output
    served = os.path.realpath(chdb_endpoint()[len("chdb://"):])
    assert f"the sql_query endpoint at {endpoint} serves another store, {served}" in result.output
    assert not here.exists()

    same = _write(tmp_path / "same.yaml", config(chdb_endpoint()))
    result = runner.invoke(main, ["sql", "SELECT count() FROM otel_traces", "-c", str(same)])
    assert result.exit_code == 0, result.output
    assert f"spanhouse sql_query at {endpoint}" in result.output


def test_an_upper_case_trace_id_finds_the_trace(running, stored):
    result = CliRunner().invoke(main, ["trace", stored.upper(), "--endpoint", chdb_endpoint(), "--database",
                                       running.database], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert f"trace {stored}" in result.output and "chat gpt-4o" in result.output
