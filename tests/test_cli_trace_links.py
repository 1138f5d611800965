"""`spanhouse trace` shows where to open the same trace in Jaeger and Grafana, and the Jaeger link works."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import yaml
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from support import chdb_endpoint, sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc
from spanhouse.cli import main


def test_trace_command_prints_jaeger_and_grafana_links(tmp_path):
    db = unique_database("cli_links")
    svc = start_service(service_config(db, extensions={"sql_query": {"endpoint": "127.0.0.1:0"},
                                                       "jaeger_query": {"endpoint": "127.0.0.1:0"}}), db)
    try:
        answer = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "first line\nsecond line"}]}])
        spans = sdk_spans(lambda t: t.start_span("chat gpt-4o", attributes={
            sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
            sc.GEN_AI_OUTPUT_MESSAGES: answer}).end())
        exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces")
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
        trace_id = format(spans[0].context.trace_id, "032x")
        jaeger_port = svc.extension("jaeger_query").server.port
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({
            "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}},
            "exporters": {"clickhouse": {"endpoint": chdb_endpoint(), "database": db}},
            "extensions": {"jaeger_query": {"endpoint": f"0.0.0.0:{jaeger_port}"}},
            "service": {"extensions": ["jaeger_query"],
                        "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["clickhouse"]}}}}))
        result = CliRunner().invoke(main, ["trace", trace_id, "--config", str(config), "--endpoint",
                                           f"http://127.0.0.1:{svc.sql_port}", "--database", db,
                                           "--grafana-url", "http://grafana.example:3000"], terminal_width=400)
        assert result.exit_code == 0, result.output
        jaeger_line = next(line for line in result.output.splitlines() if line.startswith("open in Jaeger:"))
        url = jaeger_line.split(": ", 1)[1].strip()
        assert url == f"http://127.0.0.1:{jaeger_port}/trace/{trace_id}"
        with urllib.request.urlopen(url, timeout=10) as resp:  # follows the redirect to the API
            assert json.loads(resp.read())["data"][0]["traceID"] == trace_id
        grafana_line = next(line for line in result.output.splitlines() if line.startswith("open in Grafana:"))
        explore = grafana_line.split(": ", 1)[1].split()[0]
        assert explore.startswith("http://grafana.example:3000/explore?left=")
        left = json.loads(urllib.parse.unquote(explore.split("left=", 1)[1]))
        assert left["datasource"] == "spanhouse-jaeger" and left["queries"][0]["query"] == trace_id
        assert "first line second line" in result.output
        whole = CliRunner().invoke(main, ["trace", trace_id, "--full", "--config", str(config), "--endpoint",
                                          f"http://127.0.0.1:{svc.sql_port}", "--database", db], terminal_width=400)
        assert whole.exit_code == 0, whole.output
        lines = whole.output.splitlines()
        first = next(i for i, line in enumerate(lines) if line.rstrip().endswith("first line"))
        assert lines[first + 1].strip().endswith("second line")
    finally:
        svc.stop()
