"""What the README tells a user to do or to expect, checked against the running code."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult

ROOT = Path(__file__).resolve().parents[1]


def _section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def test_send_spans_says_to_turn_metrics_off_since_spanhouse_refuses_them(running):
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("tests")
    meter.create_counter("llm.requests").add(1)
    metrics = reader.get_metrics_data()
    for exporter in (HttpMetricExporter(endpoint=running.http_url + "/v1/metrics", timeout=5),
                     GrpcMetricExporter(endpoint=running.grpc_endpoint, insecure=True, timeout=5)):
        try:
            assert exporter.export(metrics) is MetricExportResult.FAILURE
        finally:
            exporter.shutdown()
    req = urllib.request.Request(running.http_url + "/v1/metrics", data=b"{}", method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("spanhouse accepted metrics")
    except urllib.error.HTTPError as err:
        assert err.code == 404 and "no OTLP endpoint at /v1/metrics" in json.loads(err.read())["message"]

    send = _section("Send spans")
    assert "export OTEL_METRICS_EXPORTER=none" in send
    assert "no OTLP endpoint at /v1/metrics" in send and "`UNIMPLEMENTED`" in send



def test_the_ttl_the_readme_states_is_the_shipped_configs():
    from spanhouse.component import Kind
    from spanhouse.config import load_config

    shipped = {}
    for path in (ROOT / "src/spanhouse/otel-collector-config.yaml", ROOT / "deploy/spanhouse/config.yaml"):
        config = load_config(path, env={}, for_reading=True)
        shipped[path.name] = str(config.first(Kind.EXPORTER, "clickhouse")[1].ttl)
    assert set(shipped.values()) == {"720h"}, shipped
    configure = _section("Configure")
    start = configure.index("`ttl` is the retention of every table")
    said = " ".join(configure[start:configure.index("\n\n", start)].split())
    assert "the built-in configuration sets `ttl: 720h` (30 days), as does `deploy/spanhouse/config.yaml`" in said
    assert "`0`, the default" not in said


def test_the_file_exporter_example_runs_with_the_shipped_config(tmp_path):
    """The `file` exporter block of "Take your data with you", added to the shipped configuration, is valid."""
    import yaml

    from spanhouse.config import parse_config

    section = _section("Take your data with you")
    start = section.index("```yaml\n") + len("```yaml\n")
    example = yaml.safe_load(section[start:section.index("```", start)])
    config = yaml.safe_load((ROOT / "src/spanhouse/otel-collector-config.yaml").read_text())
    example["exporters"]["file"]["path"] = str(tmp_path / "telemetry.jsonl")
    config["exporters"].update(example["exporters"])
    config["service"]["pipelines"].update(example["service"]["pipelines"])
    parsed = parse_config(config)
    assert {str(e) for p in parsed.pipelines.values() for e in p.exporters} == {"clickhouse", "file"}
