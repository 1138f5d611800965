"""The bearer-token table at run time: how the tokens file is re-read, how its entries are parsed and
reported, and how a request's Authorization headers are taken, over real HTTP and gRPC on 127.0.0.1
with the real OpenTelemetry SDK exporters and the embedded ClickHouse."""

from __future__ import annotations

import http.client
import logging
import os
import urllib.error
import urllib.request

import grpc
import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from support import sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc
from spanhouse.config import parse_config
from spanhouse.errors import ConfigError
from spanhouse.receivers import auth
from spanhouse.receivers.auth import hash_token


def _spans(name: str):
    def build(tracer):
        with tracer.start_as_current_span(name, attributes={sc.GEN_AI_OPERATION_NAME: "chat"}):
            pass

    return sdk_spans(build, {sc.SERVICE_NAME: "auth-tokens-test"})


def _service(tokens_file):
    db = unique_database("authtok")
    receiver = {"protocols": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": {"endpoint": "127.0.0.1:0"}},
                "auth": {"bearer_tokens_file": str(tokens_file)}}
    return start_service(service_config(db, receiver=receiver), db)


def _status(svc, token: str) -> int:
    """The HTTP status of an empty OTLP/HTTP export sent with `token`."""
    req = urllib.request.Request(svc.http_url + "/v1/traces", data=b"{}", method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def _export_as(svc, token: str, name: str) -> str:
    """Export one span with the SDK's HTTP exporter; its trace id."""
    spans = _spans(name)
    exporter = HttpExporter(endpoint=svc.http_url + "/v1/traces", headers={"authorization": f"Bearer {token}"},
                            timeout=10)
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    return format(spans[0].context.trace_id, "032x")


@pytest.fixture
def reread_at_once(monkeypatch):
    monkeypatch.setattr(auth, "_RELOAD_CHECK_S", 0.0)


# --- reloading the file ------------------------------------------------------------------------


def test_an_atomic_symlink_swap_to_a_file_with_the_same_mtime_is_noticed(tmp_path, reread_at_once):
    # the layout Kubernetes gives a mounted secret: tokens.yaml -> ..data/tokens.yaml, ..data -> v1
    for version, token in (("v1", "old-compromised-token"), ("v2", "new-token")):
        (tmp_path / version).mkdir()
        (tmp_path / version / "tokens.yaml").write_text(f"acme: {hash_token(token)}\n")
        os.utime(tmp_path / version / "tokens.yaml", ns=(1_000_000_000, 1_000_000_000))
    os.symlink("v1", tmp_path / "..data")
    os.symlink("..data/tokens.yaml", tmp_path / "tokens.yaml")
    svc = _service(tmp_path / "tokens.yaml")
    try:
        assert (_status(svc, "old-compromised-token"), _status(svc, "new-token")) == (200, 401)
        os.symlink("v2", tmp_path / "..data_tmp")
        os.replace(tmp_path / "..data_tmp", tmp_path / "..data")  # one atomic rename, as kubelet does
        assert os.stat(tmp_path / "tokens.yaml").st_mtime_ns == 1_000_000_000
        assert (_status(svc, "old-compromised-token"), _status(svc, "new-token")) == (401, 200)
    finally:
        svc.stop()


def test_a_rewrite_in_place_within_one_clock_tick_is_noticed(tmp_path, reread_at_once):
    path = tmp_path / "tokens.yaml"
    path.write_text(f"acme: {hash_token('token-one')}\n")
    svc = _service(path)
    try:
        assert _status(svc, "token-one") == 200
        before = os.stat(path)
        path.write_text(f"acme: {hash_token('token-two')}\n")  # same size, same inode
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # as if written in the same tick
        assert (_status(svc, "token-one"), _status(svc, "token-two")) == (401, 200)
    finally:
        svc.stop()


@pytest.mark.parametrize("emptied", ["", "# every tenant commented out\n# acme: 0123\n", "{}\n"])
def test_a_tokens_file_emptied_at_run_time_keeps_the_previous_tokens(tmp_path, reread_at_once, caplog, emptied):
    path = tmp_path / "tokens.yaml"
    path.write_text(f"acme: {hash_token('acme-secret-1')}\n")
    svc = _service(path)
    try:
        assert _status(svc, "acme-secret-1") == 200
        path.write_text(emptied)  # refused at startup, so refused on reload: it would lock every client out
        with caplog.at_level(logging.INFO, logger=auth.__name__):
            assert _status(svc, "acme-secret-1") == 200
        [record] = [r for r in caplog.records if r.name == auth.__name__]
        assert record.levelno == logging.ERROR, record.getMessage()
        assert "keeping the previous ones" in record.getMessage()
        assert "no bearer tokens" in record.getMessage() and str(path) in record.getMessage()
        with pytest.raises(ConfigError) as err:  # the same words as at startup
            parse_config(service_config("x", receiver={"protocols": {"http": {}},
                                                       "auth": {"bearer_tokens_file": str(path)}}), env={})
        assert any("no bearer tokens" in p and str(path) in p for p in err.value.problems), err.value.problems
        path.write_text(f"acme: {hash_token('acme-secret-2')}\n")  # a fixed file is taken again
        assert (_status(svc, "acme-secret-1"), _status(svc, "acme-secret-2")) == (401, 200)
    finally:
        svc.stop()


# --- parsing the table -------------------------------------------------------------------------

# names YAML 1.1 would read as false, 83, true, null, 31, 1000, 1.5, a date and 1000.0
LOOKALIKE_TENANTS = ["no", "00123", "on", "null", "0x1f", "1_000", "1.50", "2024-01-01", "1e3", "acme"]


def _auth_problems(tmp_path, text: str | None = None, env_name: str | None = None) -> list[str]:
    """The problems reported at startup about `auth` with `text` in the tokens file and/or the variable."""
    auth_cfg = {}
    if text is not None:
        (tmp_path / "tokens.yaml").write_text(text)
        auth_cfg["bearer_tokens_file"] = str(tmp_path / "tokens.yaml")
    if env_name is not None:
        auth_cfg["bearer_tokens_env"] = env_name
    cfg = service_config("x", receiver={"protocols": {"http": {}}, "auth": auth_cfg})
    with pytest.raises(ConfigError) as err:
        parse_config(cfg, env={})
    return [p for p in err.value.problems if p.startswith("receivers::otlp::auth")]


def test_tenant_names_are_kept_as_written(tmp_path):
    path = tmp_path / "tokens.yaml"
    path.write_text("".join(f"{t}: {hash_token('token-of-' + t)}\n" for t in LOOKALIKE_TENANTS))
    svc = _service(path)
    try:
        trace_ids = {_export_as(svc, "token-of-" + t, f"tenant {t}"): t for t in LOOKALIKE_TENANTS}
        rows = svc.wait_rows("SELECT TraceId, ResourceAttributes[{k:String}], SpanAttributes[{k:String}] "
                             "FROM otel_traces", len(trace_ids), parameters={"k": sc.SPANHOUSE_TENANT_ID})
        assert sorted(rows) == sorted((tid, t, t) for tid, t in trace_ids.items())
    finally:
        svc.stop()


def test_the_one_line_form_and_the_yaml_form_read_the_same_table():
    """Including tenant names with ':' (allowed in names), and hashes written `sha256:<hex>`."""
    hashes = {t: hash_token("token-of-" + t) for t in [*LOOKALIKE_TENANTS, "acme:eu-west", "org:team:svc"]}
    forms = {"file": "".join(f"{t}: {h}\n" for t, h in hashes.items()),
             "one line": ",".join(f"{t}:{h}" for t, h in hashes.items()),
             "flow": "{" + ", ".join(f"{t}: {h}" for t, h in hashes.items()) + "}"}
    expected = {h: t for t, h in hashes.items()}
    for form, text in forms.items():
        assert auth.parse_table(text, form) == expected, form
    prefixed = ",".join(f"{t}:sha256:{h}" for t, h in hashes.items())
    assert auth.parse_table(prefixed, "one line") == expected


def test_a_tenant_listed_twice_is_refused_naming_it_and_its_line(tmp_path, monkeypatch):
    acme = f"acme: {hash_token('acme-old')}\n"
    [problem] = _auth_problems(tmp_path, f"# tokens\nglobex: {hash_token('g')}\n{acme}{acme.replace('old', 'new')}")
    assert "'acme'" in problem and "line 4" in problem and "line 3" in problem, problem
    monkeypatch.setenv("SPANHOUSE_TEST_TOKENS", f"acme:{hash_token('acme-old')},acme:{hash_token('acme-new')}")
    [problem] = _auth_problems(tmp_path, env_name="SPANHOUSE_TEST_TOKENS")
    assert "'acme'" in problem and "entry 2" in problem and "entry 1" in problem, problem


SECRET = "mysecrettoken123"


@pytest.mark.parametrize("text, where", [
    (f"{SECRET}: acme\n", "line 1"),  # token and tenant swapped
    (f"globex: {hash_token('g')}\n{SECRET}:\n", "line 2"),  # the token where its hash belongs, no tenant
    (f"# tokens\n\n{SECRET}/+x==: acme\n", "line 3"),  # not even a valid tenant name
    (f"{SECRET}", "entry 1"),  # the one-line form, just the token
    (f"acme:{hash_token('a')},{SECRET}:acme", "entry 2"),
])
def test_a_malformed_entry_is_reported_by_its_line_without_printing_a_possible_token(tmp_path, text, where):
    [problem] = _auth_problems(tmp_path, text)
    assert where in problem and "'myse…'" in problem, problem
    assert SECRET[:5] not in problem, problem


def test_a_malformed_entry_on_reload_is_logged_without_printing_a_possible_token(tmp_path, reread_at_once,
                                                                                  caplog):
    path = tmp_path / "tokens.yaml"
    path.write_text(f"acme: {hash_token('acme-secret-1')}\n")
    svc = _service(path)
    try:
        path.write_text(f"acme: {hash_token('acme-secret-1')}\n{SECRET}: acme\n")
        with caplog.at_level(logging.INFO, logger=auth.__name__):
            assert _status(svc, "acme-secret-1") == 200
        assert "line 2" in caplog.text and "'myse…'" in caplog.text, caplog.text
        assert SECRET[:5] not in caplog.text
    finally:
        svc.stop()


# --- the Authorization header ------------------------------------------------------------------


@pytest.mark.parametrize("first, second", [("wrong", "acme-secret-1"), ("acme-secret-1", "wrong"),
                                           ("acme-secret-1", "globex-secret-1"),
                                           ("acme-secret-1", "acme-secret-1")])
def test_several_authorization_headers_are_refused_on_both_protocols(tmp_path, first, second):
    path = tmp_path / "tokens.yaml"
    path.write_text(f"acme: {hash_token('acme-secret-1')}\nglobex: {hash_token('globex-secret-1')}\n")
    svc = _service(path)
    try:
        http_spans, grpc_spans = _spans("two headers http"), _spans("two headers grpc")
        conn = http.client.HTTPConnection("127.0.0.1", svc.receiver.http_port, timeout=10)
        body = encode_spans(http_spans).SerializeToString()
        conn.putrequest("POST", "/v1/traces")
        for header, value in [("Content-Type", "application/x-protobuf"), ("Content-Length", str(len(body))),
                              ("Authorization", f"Bearer {first}"), ("authorization", f"Bearer {second}")]:
            conn.putheader(header, value)
        conn.endheaders(body)
        resp = conn.getresponse()
        status = status_pb2.Status.FromString(resp.read())
        conn.close()
        assert resp.status == 401 and "2 Authorization headers" in status.message, (resp.status, status)
        with grpc.insecure_channel(svc.grpc_endpoint) as ch:
            export = ch.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
            with pytest.raises(grpc.RpcError) as err:
                export(encode_spans(grpc_spans).SerializeToString(), timeout=10,
                       metadata=(("authorization", f"Bearer {first}"), ("authorization", f"Bearer {second}")))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "2 Authorization headers" in err.value.details(), err.value.details()
        _export_as(svc, "acme-secret-1", "one header")  # one header is still fine
        ids = [format(s[0].context.trace_id, "032x") for s in (http_spans, grpc_spans)]
        assert svc.wait_rows("SELECT TraceId FROM otel_traces", 1) == svc.rows(
            "SELECT TraceId FROM otel_traces WHERE TraceId NOT IN {t:Array(String)}", {"t": ids})
    finally:
        svc.stop()
