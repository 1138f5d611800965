"""Who may write: bearer tokens per tenant, and TLS (also mutual) on both receivers, with the real
OpenTelemetry SDK exporters configured with headers and certificates."""

from __future__ import annotations

import datetime
import ipaddress
import json
import urllib.error
import urllib.request

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from support import sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc
from spanhouse.config import parse_config
from spanhouse.errors import ConfigError
from spanhouse.receivers.auth import hash_token

TOKENS = {"acme": "acme-secret-token", "globex": "globex-secret-token"}


def _spans(name: str):
    def build(tracer):
        with tracer.start_as_current_span(name, attributes={sc.SPANHOUSE_TENANT_ID: "someone-else",
                                                            sc.GEN_AI_OPERATION_NAME: "chat"}):
            pass

    return sdk_spans(build, {sc.SERVICE_NAME: "auth-test", sc.SPANHOUSE_TENANT_ID: "someone-else"})


def _receiver(auth: dict | None = None, tls: dict | None = None) -> dict:
    grpc_cfg: dict = {"endpoint": "127.0.0.1:0"}
    http_cfg: dict = {"endpoint": "127.0.0.1:0"}
    if tls:
        grpc_cfg["tls"] = http_cfg["tls"] = tls
    out: dict = {"protocols": {"grpc": grpc_cfg, "http": http_cfg}}
    if auth is not None:
        out["auth"] = auth
    return out


@pytest.fixture(scope="module")
def tokens_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("auth") / "tokens.yaml"
    lines = "".join(f"{t}: {hash_token(v)}\n" for t, v in TOKENS.items())
    path.write_text("# tenant: sha256 of its token\n" + lines)
    return path


@pytest.fixture(scope="module")
def authed(tokens_file):
    db = unique_database("auth")
    svc = start_service(service_config(db, receiver=_receiver({"bearer_tokens_file": str(tokens_file)})), db)
    yield svc
    svc.stop()


def _export(exporter, spans):
    try:
        return exporter.export(spans)
    finally:
        exporter.shutdown()


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_a_valid_token_stores_spans_stamped_with_its_tenant(authed, transport):
    spans = _spans(f"authed {transport}")
    headers = {"authorization": f"Bearer {TOKENS['globex']}"}
    if transport == "http":
        exporter = HttpExporter(endpoint=authed.http_url + "/v1/traces", headers=headers, timeout=10)
    else:
        exporter = GrpcExporter(endpoint=authed.grpc_endpoint, insecure=True, headers=headers, timeout=10)
    assert _export(exporter, spans) is SpanExportResult.SUCCESS
    trace_id = format(spans[0].context.trace_id, "032x")
    rows = authed.rows("SELECT ResourceAttributes[{k:String}], SpanAttributes[{k:String}] FROM otel_traces "
                       "WHERE TraceId = {t:String}", {"t": trace_id, "k": sc.SPANHOUSE_TENANT_ID})
    assert rows == [("globex", "globex")]  # the payload's "someone-else" is overwritten, never trusted
    assert authed.rows("SELECT TenantId FROM genai_spans WHERE TraceId = {t:String}",
                       {"t": trace_id}) == [("globex",)]


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_http_without_a_valid_token_is_401_and_nothing_is_stored(authed, token):
    spans = _spans(f"refused http {token}")
    headers = {"authorization": f"Bearer {token}"} if token else {}
    exporter = HttpExporter(endpoint=authed.http_url + "/v1/traces", headers=headers, timeout=10)
    assert _export(exporter, spans) is SpanExportResult.FAILURE
    req = urllib.request.Request(authed.http_url + "/v1/traces", data=b"{}", method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 401 and err.value.headers["WWW-Authenticate"].startswith("Bearer")
    assert "bearer token" in json.loads(err.value.read())["message"]
    trace_id = format(spans[0].context.trace_id, "032x")
    assert authed.rows("SELECT count() FROM otel_traces WHERE TraceId = {t:String}",
                       {"t": trace_id}) == [(0,)]


def test_grpc_without_a_valid_token_is_unauthenticated(authed):
    with grpc.insecure_channel(authed.grpc_endpoint) as ch:
        export = ch.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        with pytest.raises(grpc.RpcError) as err:
            export(b"", timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:
            export(b"", timeout=10, metadata=(("authorization", "Bearer nope"),))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert export(b"", timeout=10, metadata=(("authorization", f"Bearer {TOKENS['acme']}"),)) == b""


def test_tokens_from_the_environment(monkeypatch):
    monkeypatch.setenv("SPANHOUSE_TEST_TOKENS", f"acme:{hash_token('env-token')}")
    db = unique_database("authenv")
    receiver = _receiver({"bearer_tokens_env": "SPANHOUSE_TEST_TOKENS"})
    svc = start_service(service_config(db, receiver=receiver), db)
    try:
        spans = _spans("env token")
        exporter = HttpExporter(endpoint=svc.http_url + "/v1/traces", timeout=10,
                                headers={"authorization": "Bearer env-token"})
        assert _export(exporter, spans) is SpanExportResult.SUCCESS
        assert svc.rows("SELECT DISTINCT ResourceAttributes[{k:String}] FROM otel_traces",
                        {"k": sc.SPANHOUSE_TENANT_ID}) == [("acme",)]
    finally:
        svc.stop()


def test_the_tokens_file_is_reread_when_it_changes(tmp_path, monkeypatch):
    import os

    from spanhouse.errors import Unauthenticated
    from spanhouse.receivers import auth
    from spanhouse.receivers.auth import AuthSettings, BearerAuth

    monkeypatch.setattr(auth, "_RELOAD_CHECK_S", 0.0)
    path = tmp_path / "tokens.yaml"
    path.write_text(f"acme: {hash_token('old')}\n")
    bearer = BearerAuth(AuthSettings(bearer_tokens_file=str(path)))
    assert bearer.tenant("Bearer old") == "acme"
    path.write_text(f"acme: [{hash_token('new')}]\nglobex: {hash_token('g')}\n")
    os.utime(path, (1, 1))  # a different mtime, however fast the test runs
    assert bearer.tenant("Bearer new") == "acme" and bearer.tenant("bearer g") == "globex"
    with pytest.raises(Unauthenticated):
        bearer.tenant("Bearer old")
    path.write_text("acme: broken\n")  # a broken file keeps the previous tokens
    os.utime(path, (2, 2))
    assert bearer.tenant("Bearer new") == "acme"
    with pytest.raises(Unauthenticated, match="must be 'Bearer <token>'"):
        bearer.tenant("Basic dXNlcjpwYXNz")


def test_auth_config_problems_are_reported(tmp_path):
    plain = tmp_path / "plain.yaml"
    plain.write_text("acme: not-a-hash-but-the-token-itself\n")
    base = service_config("x")
    for auth, expected in [({}, "set bearer_tokens_file or bearer_tokens_env"),
                           ({"bearer_tokens_file": str(plain)}, "expected the SHA-256 of a token"),
                           ({"bearer_tokens_file": str(tmp_path / "missing")}, "No such file"),
                           ({"bearer_tokens_env": "SPANHOUSE_NOT_SET_ANYWHERE"}, "is not set")]:
        cfg = dict(base, receivers={"otlp": _receiver(auth)})
        with pytest.raises(ConfigError) as err:
            parse_config(cfg, env={})
        assert any(p.startswith("receivers::otlp::auth") and expected in p for p in err.value.problems), \
            err.value.problems


# --- TLS -----------------------------------------------------------------------------------


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject: str, key, issuer_cert=None, issuer_key=None, ca: bool = False, server: bool = False,
          days: tuple[float, float] = (-1 / 288, 30)):
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer_cert.subject if issuer_cert else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now + datetime.timedelta(days=days[0]))
               .not_valid_after(now + datetime.timedelta(days=days[1]))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture(autouse=True)
def _ca_bundle_from_the_exporter(monkeypatch):
    # requests lets these variables override the exporter's certificate_file; a machine may set them
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca_key = _key()
    ca = _cert("spanhouse test CA", ca_key, ca=True)
    files = {}

    def write(name: str, cert, key) -> None:
        files[name] = d / f"{name}.pem"
        files[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        if key is not None:
            files[name + "_key"] = d / f"{name}.key"
            files[name + "_key"].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                               serialization.PrivateFormat.PKCS8,
                                                               serialization.NoEncryption()))

    write("ca", ca, None)
    server_key, client_key = _key(), _key()
    write("server", _cert("127.0.0.1", server_key, ca, ca_key, server=True), server_key)
    write("client", _cert("client", client_key, ca, ca_key), client_key)
    return files


@pytest.fixture(scope="module")
def mtls(pki):
    db = unique_database("tls")
    tls = {"cert_file": str(pki["server"]), "key_file": str(pki["server_key"]),
           "client_ca_file": str(pki["ca"])}
    svc = start_service(service_config(db, receiver=_receiver(tls=tls)), db)
    yield svc
    svc.stop()


def test_mutual_tls_with_the_sdk_exporters_over_http_and_grpc(mtls, pki):
    http_spans, grpc_spans = _spans("tls http"), _spans("tls grpc")
    http = HttpExporter(endpoint=f"https://127.0.0.1:{mtls.receiver.http_port}/v1/traces", timeout=10,
                        certificate_file=str(pki["ca"]), client_certificate_file=str(pki["client"]),
                        client_key_file=str(pki["client_key"]))
    assert _export(http, http_spans) is SpanExportResult.SUCCESS
    creds = grpc.ssl_channel_credentials(root_certificates=pki["ca"].read_bytes(),
                                         private_key=pki["client_key"].read_bytes(),
                                         certificate_chain=pki["client"].read_bytes())
    grpc_exp = GrpcExporter(endpoint=mtls.grpc_endpoint, credentials=creds, timeout=10)
    assert _export(grpc_exp, grpc_spans) is SpanExportResult.SUCCESS
    ids = [format(s[0].context.trace_id, "032x") for s in (http_spans, grpc_spans)]
    assert mtls.rows("SELECT count() FROM otel_traces WHERE TraceId IN {t:Array(String)}",
                     {"t": ids}) == [(2,)]


def test_tls_refuses_clients_without_a_certificate_or_without_tls(mtls, pki):
    no_client_cert = HttpExporter(endpoint=f"https://127.0.0.1:{mtls.receiver.http_port}/v1/traces",
                                  timeout=5, certificate_file=str(pki["ca"]))
    assert _export(no_client_cert, _spans("no client cert")) is SpanExportResult.FAILURE
    plain = HttpExporter(endpoint=f"http://127.0.0.1:{mtls.receiver.http_port}/v1/traces", timeout=5)
    assert _export(plain, _spans("plain http")) is SpanExportResult.FAILURE
    creds = grpc.ssl_channel_credentials(root_certificates=pki["ca"].read_bytes())
    with grpc.secure_channel(mtls.grpc_endpoint, creds) as ch:
        with pytest.raises(grpc.RpcError) as err:
            ch.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")(b"", timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    # a client that connects and never handshakes does not stall the server for others
    import socket

    with socket.create_connection(("127.0.0.1", mtls.receiver.http_port)):
        ok = HttpExporter(endpoint=f"https://127.0.0.1:{mtls.receiver.http_port}/v1/traces", timeout=10,
                          certificate_file=str(pki["ca"]), client_certificate_file=str(pki["client"]),
                          client_key_file=str(pki["client_key"]))
        assert _export(ok, _spans("while another stalls")) is SpanExportResult.SUCCESS


def test_tls_config_problems_are_reported(tmp_path):
    cfg = dict(service_config("x"), receivers={"otlp": _receiver(tls={"cert_file": str(tmp_path / "nope.pem"),
                                                                      "min_version": "1.0"})})
    with pytest.raises(ConfigError) as err:
        parse_config(cfg, env={})
    text = "\n".join(err.value.problems)
    assert "tls::key_file: is required" in text and "tls::cert_file" in text and "tls::min_version" in text


def test_tls_settings_grpc_cannot_honour_are_refused(tmp_path, pki):
    tls = {"cert_file": str(pki["server"]), "key_file": str(pki["server_key"]), "min_version": "1.3"}
    cfg = dict(service_config("x"), receivers={"otlp": _receiver(tls=tls)})
    with pytest.raises(ConfigError) as err:
        parse_config(cfg, env={})
    (problem,) = err.value.problems
    assert problem.startswith("receivers::otlp::protocols::grpc::tls::min_version: gRPC accepts TLS 1.2 and 1.3")
    exporters = {**cfg["exporters"], "otlp": {"endpoint": "https://peer:4317", "tls": {"insecure_skip_verify": True}}}
    cfg = dict(service_config("x"), exporters=exporters)
    with pytest.raises(ConfigError) as err:
        parse_config(cfg, env={})
    assert any("exporters::otlp::tls::insecure_skip_verify: not available over gRPC" in p for p in err.value.problems)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_unusable_key_files_are_named_at_start_on_both_protocols(tmp_path, pki, protocol):
    from spanhouse.errors import SpanhouseError

    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.BestAvailableEncryption(b"passphrase")))
    for key_file, message in ((pki["client_key"], "cannot load cert_file"), (encrypted, "is encrypted")):
        tls = {"cert_file": str(pki["server"]), "key_file": str(key_file)}
        receiver = {"protocols": {protocol: {"endpoint": "127.0.0.1:0", "tls": tls}}}
        db = unique_database("badkey")
        with pytest.raises(SpanhouseError, match=message) as err:
            start_service(service_config(db, receiver=receiver), db).stop()
        assert "bind" not in str(err.value)


@pytest.mark.parametrize("days, warning", [
    ((-30, -1), "expired on"), ((2, 30), "is not valid before"), ((-1, 3), "expires on"), ((-1, 90), None)])
def test_a_server_certificate_out_of_its_validity_is_announced_at_start(tmp_path, caplog, days, warning):
    """Clients that verify the certificate refuse an expired one, and the server sees only failed
    handshakes: the start says so, and warns two weeks ahead."""
    from spanhouse.tls import TlsSettings

    key = _key()
    cert, key_file = tmp_path / "server.pem", tmp_path / "server.key"
    cert.write_bytes(_cert("127.0.0.1", key, server=True, days=days).public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    with caplog.at_level("WARNING", logger="spanhouse.tls"):
        TlsSettings(cert_file=str(cert), key_file=str(key_file)).server_context()
    messages = [r.getMessage() for r in caplog.records if r.name == "spanhouse.tls"]
    if warning is None:
        assert messages == []
    else:
        (message,) = messages
        assert warning in message and str(cert) in message
