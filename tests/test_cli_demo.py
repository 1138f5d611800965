"""`spanhouse demo` against real services on 127.0.0.1: what it prints, and why a server refused it."""

from __future__ import annotations

import re

from click.testing import CliRunner
from support import service_config, start_service, unique_database

from spanhouse.cli import main
from spanhouse.receivers.auth import hash_token

TOKEN = "demo-test-token-0123456789"


def test_demo_prints_every_trace_id_it_sent(running):
    result = CliRunner().invoke(main, ["demo", "--endpoint", running.http_url, "--traces", "7", "--seed", "3"])
    assert result.exit_code == 0, result.output
    printed = re.findall(r"^  ([0-9a-f]{32})$", result.output, re.M)
    assert len(printed) == 7 and len(set(printed)) == 7
    stored = running.wait_rows("SELECT DISTINCT TraceId FROM otel_traces", 7)
    assert sorted(printed) == sorted(row[0] for row in stored)


def test_demo_reports_what_the_server_answered_to_its_own_request(monkeypatch):
    """With a valid token in OTEL_EXPORTER_OTLP_HEADERS the refusal is the span limit's 413, not auth."""
    monkeypatch.setenv("SPANHOUSE_DEMO_TOKENS", f"acme:{hash_token(TOKEN)}")
    db = unique_database("demo_refused")
    receiver = {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}, "limits": {"max_spans_per_request": 2},
                "auth": {"bearer_tokens_env": "SPANHOUSE_DEMO_TOKENS"}}
    svc = start_service(service_config(db, receiver=receiver), db)
    try:
        runner = CliRunner()
        args = ["demo", "--endpoint", svc.http_url, "--traces", "2"]
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer%20{TOKEN}")
        result = runner.invoke(main, args)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "it answers HTTP 413: request holds" in result.output and "over the limit of 2" in result.output
        # the output holds the endpoint's random port, which may contain "401": look for the answer only
        assert "HTTP 401" not in result.output and "auth is on" not in result.output

        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20not-the-token")
        result = runner.invoke(main, args)
        assert result.exit_code == 1
        assert ("it answers HTTP 401 (auth is on: the token sent in OTEL_EXPORTER_OTLP_HEADERS was not "
                "accepted)") in result.output

        monkeypatch.delenv("OTEL_EXPORTER_OTLP_HEADERS")
        result = runner.invoke(main, args)
        assert result.exit_code == 1
        assert ('it answers HTTP 401 (auth is on: give the demo a token with '
                'OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer%20<token>")') in result.output
    finally:
        svc.stop()
