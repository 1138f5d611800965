"""Token authentication of the read side (`jaeger_query`, `sql_query` and the reading commands through
it): the token in each form real clients send, refusals, tenant isolation in the Jaeger API, reloading
the tokens file. Real servers on 127.0.0.1, spans from the real OpenTelemetry SDK exporter through the
authenticated receiver, clickhouse-connect and urllib as the clients, the embedded ClickHouse."""

from __future__ import annotations

import base64
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

import clickhouse_connect
import pytest
import yaml
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context
from support import chdb_endpoint, sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc
from spanhouse.cli import main
from spanhouse.config import parse_config
from spanhouse.errors import ConfigError
from spanhouse.receivers import auth
from spanhouse.receivers.auth import hash_token

ACME, GLOBEX, OPS = "acme-read-token", "globex-read-token", "ops-read-token"
HOUR_AGO_NS = (time.time_ns() // 10**9 - 3600) * 10**9


def _tokens_yaml(**tokens: str) -> str:
    return "".join(f"{tenant}: {hash_token(token)}\n" for tenant, token in tokens.items())


def _export(svc, token: str, spans) -> None:
    exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces", headers={"authorization": f"Bearer {token}"},
                                timeout=10)
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()


def _trace(service: str, parent: SpanContext | None = None) -> list:
    """One client span of `service` (chat gpt-4o) under a server span; under `parent` when given, so a
    second tenant can send spans into a trace id the first one uses."""
    def build(tracer):
        ctx = set_span_in_context(NonRecordingSpan(parent)) if parent is not None else None
        with tracer.start_as_current_span(f"{service} handle", context=ctx, start_time=HOUR_AGO_NS,
                                          end_on_exit=False) as root:
            tracer.start_span("chat gpt-4o", start_time=HOUR_AGO_NS + 10**6, attributes={
                sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "gpt-4o"}).end(HOUR_AGO_NS + 10**8)
            root.end(HOUR_AGO_NS + 2 * 10**8)

    return sdk_spans(build, {sc.SERVICE_NAME: service})


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A service whose receiver, jaeger_query and sql_query share one tokens file (acme, globex, ops;
    ops reads every tenant). acme and globex each sent a trace, and globex sent a span into acme's
    trace id."""
    tokens = tmp_path_factory.mktemp("read-auth") / "tokens.yaml"
    tokens.write_text(_tokens_yaml(acme=ACME, globex=GLOBEX, ops=OPS))
    table = {"bearer_tokens_file": str(tokens)}
    read = {**table, "all_tenants": ["ops"]}
    db = unique_database("readauth")
    svc = start_service(service_config(
        db, receiver={"protocols": {"http": {"endpoint": "127.0.0.1:0"}}, "auth": table},
        extensions={"health_check": {"endpoint": "127.0.0.1:0"},
                    "jaeger_query": {"endpoint": "127.0.0.1:0", "auth": read},
                    "sql_query": {"endpoint": "127.0.0.1:0", "auth": read}}), db)
    acme, globex = _trace("acme-api"), _trace("globex-api")
    shared = acme[0].context
    intruder = _trace("globex-intruder", parent=SpanContext(shared.trace_id, shared.span_id, is_remote=True,
                                                             trace_flags=TraceFlags(1)))
    _export(svc, ACME, acme)
    _export(svc, GLOBEX, globex + intruder)
    svc.wait_rows("SELECT 1 FROM otel_traces", 6)
    facts = {
        "svc": svc, "tokens": tokens,
        "jaeger": f"http://127.0.0.1:{svc.extension('jaeger_query').server.port}",
        "sql_port": svc.sql_port,
        "health": f"http://127.0.0.1:{svc.extension('health_check').server.port}/",
        "acme_trace": format(shared.trace_id, "032x"),
        "globex_trace": format(globex[0].context.trace_id, "032x"),
    }
    yield facts
    svc.stop()


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers


def _jaeger(served, path: str, token: str | None, params: dict | None = None) -> tuple[int, Any]:
    url = served["jaeger"] + path + ("?" + urllib.parse.urlencode(params) if params else "")
    status, body, _ = _get(url, {"Authorization": f"Bearer {token}"} if token else {})
    return status, json.loads(body)


def _basic(token: str, user: str = "grafana") -> str:
    return "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()


# --- jaeger_query ----------------------------------------------------------------------------


def test_jaeger_query_takes_the_token_as_bearer_basic_password_or_clickhouse_key(served):
    for headers in ({"Authorization": f"Bearer {ACME}"}, {"Authorization": _basic(ACME)},
                    {"Authorization": _basic(ACME, user="")}, {"X-ClickHouse-User": "x", "X-ClickHouse-Key": ACME},
                    {"Authorization": _basic(ACME), "X-ClickHouse-Key": ACME}):
        status, body, _ = _get(served["jaeger"] + "/api/services", headers)
        assert status == 200, (headers, body)
        assert json.loads(body)["data"] == ["acme-api"]


def test_jaeger_query_refuses_a_request_without_a_valid_token(served):
    wrong = "not-a-token-of-anyone"
    for path in ("/api/services", "/api/traces/" + served["acme_trace"], "/api/v3/services", "/trace/x"):
        for headers in ({}, {"Authorization": f"Bearer {wrong}"}, {"Authorization": _basic(wrong)},
                        {"X-ClickHouse-Key": wrong}, {"Authorization": "Bearer "}, {"Authorization": _basic("")},
                        {"Authorization": "Basic %%%"}, {"Authorization": f"Token {ACME}"},
                        {"Authorization": f"Bearer {ACME}", "X-ClickHouse-Key": GLOBEX}):
            status, body, resp_headers = _get(served["jaeger"] + path, headers)
            assert status == 401, (path, headers, body)
            challenge = resp_headers["WWW-Authenticate"]
            assert challenge.startswith('Basic realm="spanhouse"') and 'Bearer realm="spanhouse"' in challenge
            assert wrong.encode() not in body and ACME.encode() not in body and GLOBEX.encode() not in body
            doc = json.loads(body)
            if path.startswith("/api/v3/"):
                assert doc["error"]["httpCode"] == 401 and doc["error"]["grpcCode"] == 16
            else:
                assert doc["data"] is None and doc["errors"][0]["code"] == 401
            assert len(body) < 300


def test_a_tenants_token_never_sees_another_tenants_traces(served):
    acme_id, globex_id = served["acme_trace"], served["globex_trace"]
    window = {"start": (HOUR_AGO_NS - 60 * 10**9) // 1000, "end": (HOUR_AGO_NS + 60 * 10**9) // 1000}

    assert _jaeger(served, "/api/services", ACME)[1]["data"] == ["acme-api"]
    assert _jaeger(served, "/api/services", GLOBEX)[1]["data"] == ["globex-api", "globex-intruder"]
    assert _jaeger(served, "/api/services", OPS)[1]["data"] == ["acme-api", "globex-api", "globex-intruder"]
    assert _jaeger(served, "/api/v3/services", ACME)[1] == {"services": ["acme-api"]}
    assert _jaeger(served, "/api/services/globex-api/operations", ACME)[1]["data"] == []
    assert _jaeger(served, "/api/operations", ACME, {"service": "globex-api"})[1]["data"] == []
    assert _jaeger(served, "/api/v3/operations", ACME, {"service": "globex-api"})[1] == {"operations": []}

    # search: by service, by tag, by trace id
    for token, service, found in ((ACME, "globex-api", []), (GLOBEX, "acme-api", []),
                                  (ACME, "acme-api", [acme_id]), (GLOBEX, "globex-api", [globex_id])):
        status, body = _jaeger(served, "/api/traces", token, {"service": service, **window})
        assert status == 200 and [t["traceID"] for t in body["data"]] == found, (token, service, body)
    status, body = _jaeger(served, "/api/traces", ACME, {"service": "acme-api", **window,
                                                         "tags": json.dumps({sc.GEN_AI_REQUEST_MODEL: "gpt-4o"})})
    assert [t["traceID"] for t in body["data"]] == [acme_id]
    status, body = _jaeger(served, "/api/traces", ACME, {"traceID": globex_id})
    assert body["data"] == [] and body["errors"][0]["traceID"] == globex_id

    # a trace by id: another tenant's is not found; a shared trace id shows only the reader's own spans
    assert _jaeger(served, f"/api/traces/{globex_id}", ACME)[0] == 404
    assert _jaeger(served, f"/api/v3/traces/{globex_id}", ACME)[0] == 404
    status, body = _jaeger(served, f"/api/traces/{acme_id}", ACME)
    assert status == 200
    assert {p["serviceName"] for p in body["data"][0]["processes"].values()} == {"acme-api"}
    assert len(body["data"][0]["spans"]) == 2
    status, body = _jaeger(served, f"/api/traces/{acme_id}", GLOBEX)
    assert {p["serviceName"] for p in body["data"][0]["processes"].values()} == {"globex-intruder"}
    status, body = _jaeger(served, f"/api/traces/{acme_id}", OPS)
    assert {p["serviceName"] for p in body["data"][0]["processes"].values()} == {"acme-api", "globex-intruder"}
    status, body = _jaeger(served, f"/api/v3/traces/{acme_id}", ACME)
    services = {a["value"]["stringValue"] for r in body["result"]["resourceSpans"]
                for a in r["resource"]["attributes"] if a["key"] == sc.SERVICE_NAME}
    assert status == 200 and services == {"acme-api"}

    # v3 search and summaries
    def rfc3339(ns: int) -> str:
        return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    v3_window = {"query.startTimeMin": rfc3339(HOUR_AGO_NS - 60 * 10**9),
                 "query.startTimeMax": rfc3339(HOUR_AGO_NS + 60 * 10**9)}
    status, body = _jaeger(served, "/api/v3/trace-summaries", ACME, v3_window)
    assert [s["traceId"] for s in body["summaries"]] == [acme_id]
    assert [s["name"] for s in body["summaries"][0]["services"]] == ["acme-api"]
    status, body = _jaeger(served, "/api/v3/traces", GLOBEX, {**v3_window, "query.serviceName": "acme-api"})
    assert status == 404

    # dependencies: the intruder's span is a child of acme's root, an edge only an all-tenant reader sees
    dep = {"endTs": (HOUR_AGO_NS + 60 * 10**9) // 10**6, "lookback": 120 * 1000}
    assert _jaeger(served, "/api/dependencies", ACME, dep)[1]["data"] == []
    assert _jaeger(served, "/api/dependencies", GLOBEX, dep)[1]["data"] == []
    assert _jaeger(served, "/api/dependencies", OPS, dep)[1]["data"] == [
        {"parent": "acme-api", "child": "globex-intruder", "callCount": 1}]


def test_health_check_stays_open(served):
    status, _, _ = _get(served["health"])
    assert status == 200


# --- sql_query -------------------------------------------------------------------------------


def _sql_client(served, **credentials) -> Any:
    return clickhouse_connect.get_client(host="127.0.0.1", port=served["sql_port"], database=served["svc"].database,
                                         compress=False, autogenerate_session_id=False, **credentials)


def test_sql_query_takes_an_operators_token_in_each_form(served):
    client = _sql_client(served, username="reader", password=OPS)  # clickhouse-connect: basic auth
    try:
        assert sorted(r[0] for r in client.query("SELECT DISTINCT ServiceName FROM otel_traces").result_rows) == [
            "acme-api", "globex-api", "globex-intruder"]
    finally:
        client.close()
    query = urllib.parse.urlencode({"query": "SELECT count() FROM otel_traces", "database": served["svc"].database})
    url = f"http://127.0.0.1:{served['sql_port']}/?{query}"
    for headers in ({"Authorization": f"Bearer {OPS}"}, {"X-ClickHouse-User": "reader", "X-ClickHouse-Key": OPS},
                    {"Authorization": _basic(OPS)}):
        status, body, _ = _get(url, headers)
        assert (status, body) == (200, b"6\n"), headers
    status, body, _ = _get(f"http://127.0.0.1:{served['sql_port']}/ping")  # as ClickHouse's, answers anyone
    assert (status, body) == (200, b"Ok.\n")


def test_sql_query_refuses_other_tokens(served):
    query = urllib.parse.urlencode({"query": "SELECT count() FROM otel_traces", "database": served["svc"].database})
    url = f"http://127.0.0.1:{served['sql_port']}/?{query}"
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"X-ClickHouse-Key": "wrong-token"},
                    {"Authorization": _basic("")}):
        status, body, resp_headers = _get(url, headers)
        assert status == 401, headers
        assert resp_headers["X-ClickHouse-Exception-Code"] == "516"
        assert body.startswith(b"Code: 516. DB::Exception: ") and b"(AUTHENTICATION_FAILED)" in body
        assert b"wrong-token" not in body and resp_headers["WWW-Authenticate"].startswith("Basic ")
    # a tenant's valid token: SQL would read every tenant's rows
    status, body, resp_headers = _get(url, {"Authorization": f"Bearer {ACME}"})
    assert status == 403 and b"(ACCESS_DENIED)" in body and b"tenant 'acme'" in body
    for password in ("wrong-token", ACME):
        with pytest.raises(Exception, match="AUTHENTICATION_FAILED|ACCESS_DENIED"):
            _sql_client(served, username="reader", password=password).query("SELECT 1")


def test_the_access_log_never_shows_a_token_sent_in_the_url(served, caplog):
    """ClickHouse clients may send the password as a URL parameter; the debug access log names the
    path only."""
    query = urllib.parse.urlencode({"user": "r", "password": OPS, "query": "SELECT 'a-stored-value'"})
    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "spanhouse.httpserver"]

    with caplog.at_level(logging.DEBUG, logger="spanhouse.httpserver"):
        _get(f"http://127.0.0.1:{served['sql_port']}/?{query}")
        _get(f"{served['jaeger']}/api/services?password={OPS}")
        deadline = time.monotonic() + 10  # the access line is written after the answer is sent
        while len(lines()) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    lines = lines()
    assert any('"GET /?…"' in line for line in lines), lines
    assert not [line for line in lines if OPS in line or "a-stored-value" in line]


def test_a_receiver_without_auth_cannot_put_spans_in_a_tenants_view(tmp_path):
    """A sender that reaches a receiver without `auth` may write any `spanhouse.tenant.id` on its
    resource: that is no stamp, so acme's token does not see its spans (ops' does). The tenant the
    spans stand for in the analytics (genai_spans.TenantId) is kept."""
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(_tokens_yaml(acme=ACME, ops=OPS))
    db = unique_database("openrecv")
    svc = start_service(service_config(
        db, receiver={"protocols": {"http": {"endpoint": "127.0.0.1:0"}}},
        extensions={"jaeger_query": {"endpoint": "127.0.0.1:0",
                                     "auth": {"bearer_tokens_file": str(tokens), "all_tenants": ["ops"]}}}), db)
    try:
        def build(tracer):
            tracer.start_span("chat gpt-4o", start_time=HOUR_AGO_NS, attributes={
                sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "gpt-4o"}).end(HOUR_AGO_NS + 10**8)

        spans = sdk_spans(build, {sc.SERVICE_NAME: "forged-svc", sc.SPANHOUSE_TENANT_ID: "acme"})
        exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces", timeout=10)
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
        assert svc.wait_rows("SELECT TenantId FROM genai_spans WHERE ServiceName = 'forged-svc'", 1) == [("acme",)]
        served = {"jaeger": f"http://127.0.0.1:{svc.extension('jaeger_query').server.port}"}
        assert _jaeger(served, "/api/services", ACME) == (200, {"data": [], "total": 0, "limit": 0, "offset": 0,
                                                                 "errors": None})
        status, body = _jaeger(served, "/api/services", OPS)
        assert status == 200 and body["data"] == ["forged-svc"]
    finally:
        svc.stop()


def test_sql_query_auth_needs_the_tenants_that_may_read_everything():
    config = service_config(unique_database("readauth"), extensions={
        "sql_query": {"endpoint": "127.0.0.1:0", "auth": {"bearer_tokens_env": "SPANHOUSE_READ_TOKENS"}}})
    with pytest.raises(ConfigError) as err:
        parse_config(config, env={"SPANHOUSE_READ_TOKENS": f"ops:{hash_token(OPS)}"})
    assert "extensions::sql_query::auth::all_tenants: list the tenants (operators)" in str(err.value)
    config["extensions"]["sql_query"]["auth"]["all_tenants"] = ["ops", "not a name"]
    with pytest.raises(ConfigError, match=r"sql_query::auth::all_tenants\[1\]: a tenant name must be"):
        parse_config(config, env={"SPANHOUSE_READ_TOKENS": f"ops:{hash_token(OPS)}"})


# --- the tokens file is re-read --------------------------------------------------------------


def test_an_all_tenants_name_without_a_token_is_warned_about(tmp_path, caplog):
    from spanhouse.extensions.readauth import ReadAuth, ReadAuthSettings

    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(_tokens_yaml(acme=ACME, ops=OPS))
    with caplog.at_level(logging.WARNING, logger="spanhouse.extensions.readauth"):
        ReadAuth(ReadAuthSettings(bearer_tokens_file=str(tokens), all_tenants=("ops",)))
        assert not caplog.records
        ReadAuth(ReadAuthSettings(bearer_tokens_file=str(tokens), all_tenants=("ops", "opz")))
    (record,) = caplog.records
    assert "all_tenants names opz, which" in record.getMessage()


def test_a_rotated_token_file_is_read_again(tmp_path, monkeypatch):
    monkeypatch.setattr(auth, "_RELOAD_CHECK_S", 0.0)
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(_tokens_yaml(ops="ops-old"))
    read = {"bearer_tokens_file": str(tokens), "all_tenants": ["ops"]}
    db = unique_database("readauth")
    svc = start_service(service_config(db, extensions={"jaeger_query": {"endpoint": "127.0.0.1:0", "auth": read},
                                                       "sql_query": {"endpoint": "127.0.0.1:0", "auth": read}}), db)
    try:
        jaeger = f"http://127.0.0.1:{svc.extension('jaeger_query').server.port}/api/services"
        sql = f"http://127.0.0.1:{svc.sql_port}/?query=SELECT+1"

        def statuses(token: str) -> tuple[int, int]:
            headers = {"Authorization": f"Bearer {token}"}
            return _get(jaeger, headers)[0], _get(sql, headers)[0]

        assert statuses("ops-old") == (200, 200) and statuses("ops-new") == (401, 401)
        tokens.write_text(_tokens_yaml(ops="ops-new"))
        assert statuses("ops-old") == (401, 401) and statuses("ops-new") == (200, 200)
        tokens.write_text("ops: [not a hash\n")  # a broken version is not taken: the last good one stays
        assert statuses("ops-new") == (200, 200)
    finally:
        svc.stop()


# --- the reading commands --------------------------------------------------------------------


def test_reading_commands_send_the_token_from_the_environment(served, tmp_path, monkeypatch):
    port = served["sql_port"]
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}},
        "exporters": {"clickhouse": {"endpoint": chdb_endpoint(), "database": served["svc"].database}},
        "extensions": {"sql_query": {"endpoint": f"127.0.0.1:{port}"}},
        "service": {"extensions": ["sql_query"],
                    "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["clickhouse"]}}}}))
    runner = CliRunner()
    count = ["sql", "SELECT count() FROM otel_traces", "--format", "csv", "-c", str(config)]

    monkeypatch.delenv("SPANHOUSE_READ_TOKEN", raising=False)
    refused = runner.invoke(main, count)
    assert refused.exit_code == 1, refused.output
    assert f"http://127.0.0.1:{port} refused the request made with no token" in refused.output
    assert "set SPANHOUSE_READ_TOKEN=<token>" in refused.output and "Traceback" not in refused.output

    monkeypatch.setenv("SPANHOUSE_READ_TOKEN", ACME)
    refused = runner.invoke(main, count)
    assert refused.exit_code == 1 and "(ACCESS_DENIED)" in refused.output, refused.output
    assert ACME not in refused.output

    monkeypatch.setenv("SPANHOUSE_READ_TOKEN", OPS)
    result = runner.invoke(main, count)
    assert result.exit_code == 0, result.output
    assert result.output.split()[-2:] == ['"count()"', "6"]
    for args in (["trace", served["acme_trace"]], ["costs"], ["top-traces"]):
        result = runner.invoke(main, [*args, "-c", str(config)], terminal_width=200)
        assert result.exit_code == 0, (args, result.output)
    assert "globex-intruder" in runner.invoke(main, ["trace", served["acme_trace"], "-c", str(config)],
                                              terminal_width=200).output

    # a token in the --endpoint URL wins over the variable
    monkeypatch.setenv("SPANHOUSE_READ_TOKEN", "wrong-token")
    endpoint = ["--endpoint", f"http://reader:{OPS}@127.0.0.1:{port}", "--database", served["svc"].database]
    result = runner.invoke(main, ["sql", "SELECT count() FROM otel_traces", "--format", "csv", *endpoint])
    assert result.exit_code == 0 and result.output.split()[-1] == "6", result.output
    refused = runner.invoke(main, ["sql", "SELECT 1", "--endpoint", f"http://127.0.0.1:{port}"])
    assert refused.exit_code == 1 and "made with the token in SPANHOUSE_READ_TOKEN" in refused.output
    assert "wrong-token" not in refused.output
