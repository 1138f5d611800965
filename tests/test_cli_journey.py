"""The user's journey with real processes: serve, demo, trace, sql — while serving and after."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import free_port

CLI = [sys.executable, "-m", "spanhouse.cli"]


def _config(tmp: Path) -> tuple[Path, dict]:
    ports = {name: free_port() for name in ("grpc", "http", "health", "sql")}
    text = f"""
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{ports['grpc']}"}}
      http: {{endpoint: "127.0.0.1:{ports['http']}"}}
processors:
  batch: {{timeout: 50ms}}
exporters:
  clickhouse: {{endpoint: "chdb://./data", database: otel, ttl: 72h}}
extensions:
  health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
  sql_query: {{endpoint: "127.0.0.1:{ports['sql']}"}}
service:
  extensions: [health_check, sql_query]
  pipelines:
    traces: {{receivers: [otlp], processors: [batch], exporters: [clickhouse]}}
"""
    path = tmp / "spanhouse.yaml"
    path.write_text(text)
    return path, ports


def _run(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})


def _wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"spanhouse serve exited early: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail("spanhouse serve did not become healthy")


@contextlib.contextmanager
def _serving(config: Path, cwd: Path, health_port: int) -> Iterator[subprocess.Popen]:
    """`spanhouse serve --config` running and healthy for the block; terminated after it."""
    serve = subprocess.Popen(CLI + ["serve", "--config", str(config)], cwd=cwd, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait_healthy(health_port, serve)
        yield serve
    finally:
        serve.terminate()
        serve.wait(timeout=60)


def test_serve_demo_trace_sql_then_read_after_stop(tmp_path):
    config, ports = _config(tmp_path)
    serve = subprocess.Popen(CLI + ["serve", "--config", str(config)], cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait_healthy(ports["health"], serve)
        demo = _run(["demo", "--config", str(config), "--traces", "12", "--seed", "7"], tmp_path)
        assert demo.returncode == 0, demo.stderr
        assert "sent 7" in demo.stdout or re.search(r"sent \d+ spans in 12 traces", demo.stdout)
        trace_id = re.search(r"spanhouse trace -c \S+ ([0-9a-f]{32})", demo.stdout).group(1)

        shown = _run(["trace", trace_id, "--config", str(config)], tmp_path)
        assert shown.returncode == 0, shown.stderr
        out = shown.stdout
        for fragment in ("support-copilot", "environment staging", "release 2026.11.3", "feature support_copilot",
                         "invoke_workflow support_copilot", "prompt classify_intent@v3", "ticket_reply_prompt@v1",
                         "tokens ", "retrieval kb_articles", "docs kb-", "tool lookup_order",
                         "evals citation_quality=", "policy_compliance=", "validate_reply"):
            assert fragment in out, f"{fragment!r} missing from:\n{out}"

        counts = _run(["sql", "SELECT Operation, count() AS n FROM genai_spans GROUP BY Operation ORDER BY Operation",
                       "--config", str(config), "--format", "json"], tmp_path)
        assert counts.returncode == 0, counts.stderr
        by_op = {row["Operation"]: row["n"] for row in json.loads(counts.stdout)}
        assert by_op["invoke_workflow"] == 12 and by_op["chat"] == 24 and by_op["retrieval"] == 12
        assert by_op["execute_tool"] >= 12
        kinds = _run(["sql", "SELECT DISTINCT SpanKind FROM otel_traces WHERE SpanName LIKE 'invoke_workflow %'",
                      "--config", str(config), "--format", "csv"], tmp_path)
        assert kinds.returncode == 0, kinds.stderr
        assert kinds.stdout.strip().splitlines()[-1] == '"Internal"'  # the GenAI conventions' workflow span kind

        refused = _run(["sql", "DROP TABLE otel_traces", "--config", str(config)], tmp_path)
        assert refused.returncode == 1 and "not allowed" in refused.stderr and "Traceback" not in refused.stderr

        # the same config read from another directory names another store (chdb://./data is relative):
        # the running service's sql_query endpoint serves this one's, and is not read in its place
        elsewhere = tmp_path / "elsewhere"
        (elsewhere / "data").mkdir(parents=True)
        other = _run(["sql", "SELECT count() FROM otel_traces", "--config", str(config)], elsewhere)
        assert other.returncode == 1 and "Traceback" not in other.stderr, other.stdout
        assert "nothing has been stored in chdb://./data (database otel)" in other.stderr, other.stderr
        assert f"serves another store, {(tmp_path / 'data').resolve()}" in other.stderr
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            assert serve.wait(timeout=30) == 0
        finally:
            if serve.poll() is None:
                serve.kill()

    # with the service stopped, the CLI opens the embedded store directly
    after = _run(["sql", "SELECT count() FROM genai_evaluations", "--config", str(config), "--format", "csv"], tmp_path)
    assert after.returncode == 0, after.stderr
    assert after.stdout.strip().splitlines()[-1] == "24"
    missing = _run(["trace", "0" * 31 + "1", "--config", str(config)], tmp_path)
    assert missing.returncode == 1 and "was not found" in missing.stderr


def test_demo_without_a_server_says_what_to_do(tmp_path):
    port = free_port()
    proc = _run(["demo", "--endpoint", f"127.0.0.1:{port}", "--traces", "1"], tmp_path, timeout=60)
    assert proc.returncode == 1
    assert "start `spanhouse serve` first" in proc.stderr and "Traceback" not in proc.stderr


def test_trace_rejects_a_malformed_id(tmp_path):
    proc = _run(["trace", "not-a-trace"], tmp_path, timeout=60)
    assert proc.returncode == 1 and "expected 32 hexadecimal characters" in proc.stderr


def test_reading_where_nothing_was_stored_says_what_to_do_and_creates_nothing(tmp_path):
    # also while a `spanhouse serve` of another directory answers on the default sql_query endpoint
    # (127.0.0.1:8124): it serves another store, so it is not read (test_cli_reading covers that case)
    for args in (["sql", "SELECT 1"], ["top-traces"], ["trace", "0" * 31 + "1"]):
        proc = _run(args, tmp_path, timeout=60)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert "nothing has been stored in chdb://./spanhouse-data" in proc.stderr, (args, proc.stderr)
        assert "run `spanhouse serve`" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "spanhouse-data").exists()


def test_reading_a_database_that_was_never_created_says_what_to_do(tmp_path):
    config, _ports = _config(tmp_path)
    (tmp_path / "data").mkdir()
    proc = _run(["sql", "SELECT 1", "--config", str(config)], tmp_path, timeout=60)
    assert proc.returncode == 1
    assert "nothing has been stored in chdb://./data (database otel)" in proc.stderr, proc.stderr


def test_malformed_urls_get_one_line_errors(tmp_path):
    proc = _run(["sql", "--endpoint", "http://[::1", "SELECT 1"], tmp_path, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "'http://[::1' is not a valid URL (Invalid IPv6 URL); expected http(s)://host:port" in proc.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text('receivers: {otlp: {protocols: {http: {}}}}\n'
                   'exporters: {clickhouse: {endpoint: "http://[::1"}, otlphttp: {endpoint: "http://[::1"}}\n'
                   'service: {pipelines: {traces: {receivers: [otlp], exporters: [clickhouse, otlphttp]}}}\n')
    proc = _run(["serve", "--config", str(bad)], tmp_path, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "exporters::clickhouse::endpoint: 'http://[::1' is not a valid URL: Invalid IPv6 URL" in proc.stderr
    assert "exporters::otlphttp::endpoint: 'http://[::1' is not an http(s):// URL" in proc.stderr


def test_demo_follows_a_grpc_only_config_and_says_why_a_server_refuses(tmp_path):
    config, ports = _config(tmp_path)
    config.write_text(config.read_text().replace(f'      http: {{endpoint: "127.0.0.1:{ports["http"]}"}}\n', ""))
    with _serving(config, tmp_path, ports["health"]):
        proc = _run(["demo", "--config", str(config), "--traces", "1"], tmp_path, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert f"to 127.0.0.1:{ports['grpc']} (grpc)" in proc.stdout
        trace_id = proc.stdout.split("try:  spanhouse trace ")[1].split()[2]
        assert f"spanhouse trace -c {config} {trace_id}" in proc.stdout
        # an HTTP server that is not an OTLP receiver: the demo says what it answered
        proc = _run(["demo", "--endpoint", f"http://127.0.0.1:{ports['sql']}/v1/traces", "--traces", "1"], tmp_path)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert "it answers HTTP 404 (not an OTLP/HTTP traces path)" in proc.stderr


def test_a_second_serve_on_the_same_store_says_who_holds_it(tmp_path):
    config, ports = _config(tmp_path)
    with _serving(config, tmp_path, ports["health"]):
        second = tmp_path / "second.yaml"
        text = config.read_text()
        for name in ("grpc", "http", "health", "sql"):
            text = text.replace(f":{ports[name]}", f":{free_port()}")
        second.write_text(text.replace('database: otel,', 'database: otel, sending_queue: {storage: file, '
                                                          'directory: ./other-queue},'))
        proc = _run(["serve", "--config", str(second)], tmp_path, timeout=120)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert "the ClickHouse store at chdb://./data is in use by another process" in proc.stderr, proc.stderr
