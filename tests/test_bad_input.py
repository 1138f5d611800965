"""Bad input gets a clear error and the server keeps serving."""

from __future__ import annotations

import gzip
import json
import socket
import urllib.error
import urllib.request
import zlib

import grpc
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from support import service_config, start_service, unique_database

from spanhouse.errors import SpanhouseError

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
VALID_JSON = {"resourceSpans": [{"scopeSpans": [{"spans": [{
    "traceId": "7b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "ok",
    "startTimeUnixNano": "1", "endTimeUnixNano": "2"}]}]}]}


def post(url: str, body: bytes, ctype: str, encoding: str | None = None) -> tuple[int, dict, bytes]:
    headers = {"Content-Type": ctype}
    if encoding:
        headers["Content-Encoding"] = encoding
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def assert_still_serving(running) -> None:
    status, _, body = post(running.http_url + "/v1/traces", json.dumps(VALID_JSON).encode(), "application/json")
    assert status == 200, body


def test_malformed_protobuf_is_400_with_a_status_message(running):
    status, headers, body = post(running.http_url + "/v1/traces", b"\x0a\xff\xff\xff\xff\x0f", "application/x-protobuf")
    assert status == 400
    assert headers["Content-Type"] == "application/x-protobuf"
    st = status_pb2.Status.FromString(body)
    assert "not a valid ExportTraceServiceRequest" in st.message
    assert st.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert_still_serving(running)


def test_invalid_json_is_400_in_json(running):
    status, headers, body = post(running.http_url + "/v1/traces", b'{"resourceSpans": [', "application/json")
    assert status == 400 and headers["Content-Type"] == "application/json"
    assert "not valid JSON" in json.loads(body)["message"]
    status, _, body = post(running.http_url + "/v1/traces", b'{"resourceSpans": {"a": 1}}', "application/json")
    assert status == 400 and "resourceSpans: expected an array" in json.loads(body)["message"]
    assert_still_serving(running)


def test_wrong_content_type_and_encoding_are_415(running):
    status, _, body = post(running.http_url + "/v1/traces", b"hello", "text/plain")
    assert status == 415 and "unsupported Content-Type" in json.loads(body)["message"]
    status, _, body = post(running.http_url + "/v1/traces", b"x", "application/json", encoding="zstd")
    assert status == 415 and json.loads(body)["message"] == (
        "unsupported Content-Encoding 'zstd'; send gzip, deflate or no encoding (identity)")
    # and each one named is taken
    for encoding, body in (("gzip", gzip.compress(b"{}")), ("deflate", zlib.compress(b"{}")), ("identity", b"{}")):
        assert post(running.http_url + "/v1/traces", body, "application/json", encoding)[0] == 200, encoding
    assert_still_serving(running)


def test_empty_requests_are_200(running):
    status, _, body = post(running.http_url + "/v1/traces", b"", "application/x-protobuf")
    assert status == 200 and trace_service_pb2.ExportTraceServiceResponse.FromString(body).ByteSize() == 0
    status, _, body = post(running.http_url + "/v1/traces", b"{}", "application/json")
    assert status == 200 and json.loads(body) == {}
    with grpc.insecure_channel(running.grpc_endpoint) as ch:
        resp = ch.unary_unary(EXPORT)(b"", timeout=10)
    assert resp == b""


def test_unknown_path_and_method_answer_with_a_status(running):
    status, headers, body = post(running.http_url + "/v1/spans", b"{}", "application/json")
    assert status == 404 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["message"].startswith("no OTLP endpoint at /v1/spans; use /v1/traces")
    status, headers, body = post(running.http_url + "/v1/spans", b"", "application/x-protobuf")
    assert status == 404 and status_pb2.Status.FromString(body).code == grpc.StatusCode.NOT_FOUND.value[0]
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(running.http_url + "/v1/traces", timeout=10)
    assert err.value.code == 405 and err.value.headers["Allow"] == "POST"
    assert json.loads(err.value.read())["message"] == "OTLP exports use POST"


def raw_http(running, head: bytes, body: bytes) -> tuple[int, dict]:
    """Send a hand-framed request (what urllib will not send) and read the status and JSON body."""
    host, port = running.http_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + b"\r\n" + body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head_text, _, payload = reply.partition(b"\r\n\r\n")
    return int(head_text.split()[1]), json.loads(payload)


def test_malformed_framing_is_400_not_413(running):
    base = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
    status, body = raw_http(running, base + b"Content-Length: abc\r\n", b"{}")
    assert status == 400 and body["message"].startswith("invalid Content-Length")
    status, body = raw_http(running, base + b"Transfer-Encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n")
    assert status == 400 and body["message"].startswith("malformed chunked body")
    assert_still_serving(running)


def test_malformed_grpc_message_is_invalid_argument(running):
    with grpc.insecure_channel(running.grpc_endpoint) as ch:
        with pytest.raises(grpc.RpcError) as err:
            ch.unary_unary(EXPORT)(b"\x0a\xff\xff\xff\xff\x0f", timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid ExportTraceServiceRequest" in err.value.details()
    assert_still_serving(running)


@pytest.fixture
def small_limits():
    db = unique_database()
    cfg = service_config(db, receiver={"protocols": {
        "grpc": {"endpoint": "127.0.0.1:0", "max_recv_msg_size_mib": 1},
        "http": {"endpoint": "127.0.0.1:0", "max_request_body_size": 4096}}})
    svc = start_service(cfg, db)
    yield svc
    svc.stop()


def _big_json(n_spans: int) -> bytes:
    spans = [{"traceId": "8b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "x" * 50,
              "startTimeUnixNano": "1", "endTimeUnixNano": "2"} for _ in range(n_spans)]
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()


def test_request_over_the_limit_is_413_also_after_gzip(small_limits):
    status, _, body = post(small_limits.http_url + "/v1/traces", _big_json(100), "application/json")
    assert status == 413 and "over the limit of 4096 bytes" in json.loads(body)["message"]
    bomb = gzip.compress(_big_json(2000))
    assert len(bomb) < 4096
    status, _, body = post(small_limits.http_url + "/v1/traces", bomb, "application/json", encoding="gzip")
    assert status == 413 and "decompressed request body is over the limit" in json.loads(body)["message"]
    status, _, _ = post(small_limits.http_url + "/v1/traces", gzip.compress(_big_json(2)), "application/json", "gzip")
    assert status == 200


def test_grpc_message_over_the_limit_is_resource_exhausted(small_limits):
    with grpc.insecure_channel(small_limits.grpc_endpoint) as ch:
        with pytest.raises(grpc.RpcError) as err:
            ch.unary_unary(EXPORT)(b"\x0a" + b"\x00" * (2 << 20), timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_second_receiver_cannot_take_a_grpc_port_in_use(running):
    """gRPC's default SO_REUSEPORT would let a second process share the port and take part of the traffic."""
    db = unique_database()
    cfg = service_config(db, receiver={"protocols": {"grpc": {"endpoint": running.grpc_endpoint}}})
    with pytest.raises(SpanhouseError) as err:
        start_service(cfg, db).stop()
    # said plainly, as the HTTP side does, with the component: not grpcio's "Failed to bind"
    assert str(err.value).endswith(
        f"receiver otlp (OTLP/gRPC): cannot listen on {running.grpc_endpoint}: Address already in use")
    assert_still_serving(running)
    cfg = service_config(db, receiver={"protocols": {"http": {"endpoint": running.http_url.split("//")[1]}}})
    with pytest.raises(SpanhouseError) as err:
        start_service(cfg, db).stop()
    assert str(err.value).endswith(
        f"receiver otlp (OTLP/HTTP): cannot listen on {running.http_url.split('//')[1]}: Address already in use")
