"""HTTP/1.1 framing on the OTLP/HTTP port, sent by hand over raw sockets (what no SDK sends): transfer
codings, bodies cut short, Expect: 100-continue, the server's own errors, and the deadlines and the
connection cap that keep slow or idle clients from holding the server."""

from __future__ import annotations

import json
import socket
import time

import grpc
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from support import service_config, start_service

from spanhouse.httpserver import HttpServer, Response

PROTOBUF_HEAD = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"


def export_request(trace_hex: str, services: int = 1) -> bytes:
    """One span per service, each service in a ResourceSpans of its own."""
    req = trace_service_pb2.ExportTraceServiceRequest()
    for k in range(services):
        rs = req.resource_spans.add()
        rs.resource.attributes.add(key="service.name").value.string_value = f"svc{k}"
        span = rs.scope_spans.add().spans.add(name=f"span {k}", trace_id=bytes.fromhex(trace_hex),
                                              span_id=bytes([k + 1] * 8), kind=3)
        span.start_time_unix_nano, span.end_time_unix_nano = 1_700_000_000_000_000_000, 1_700_000_000_000_005_000
    return req.SerializeToString()


def chunked(body: bytes) -> bytes:
    return b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"


def address(running) -> tuple[str, int]:
    return "127.0.0.1", running.receiver.http_port


def exchange(addr: tuple[str, int], data: bytes, half_close: bool = False) -> bytes:
    """Send `data`, then read until the server closes the connection."""
    with socket.create_connection(addr, timeout=30) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


def responses(reply: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The responses in `reply` (status, headers with lower-case names, body), in order."""
    out = []
    while reply:
        head, _, reply = reply.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        out.append((int(lines[0].split()[1]), headers, reply[:length]))
        reply = reply[length:]
    return out


def stored(running, trace_hex: str) -> int:
    return running.rows("SELECT count() FROM otel_traces WHERE TraceId = {t:String}", {"t": trace_hex})[0][0]


@pytest.mark.parametrize("coding, status", [("gzip, chunked", 501), ("identity, chunked", 501),
                                            ("chunked, chunked", 400), ("chunked, gzip", 400), ("gzip", 400)])
def test_a_transfer_coding_other_than_chunked_is_refused_not_read_as_empty(running, coding, status):
    trace = "be" + "11" * 15
    reply = exchange(address(running), PROTOBUF_HEAD + b"Transfer-Encoding: " + coding.encode() + b"\r\n\r\n"
                     + chunked(export_request(trace)))
    [(code, headers, body)] = responses(reply)
    assert code == status and headers["connection"] == "close"
    assert status_pb2.Status.FromString(body).message
    assert stored(running, trace) == 0


def test_chunked_is_recognised_in_any_letter_case_and_spacing(running):
    for i, coding in enumerate([b"chunked", b"Chunked", b"  chunked ", b"CHUNKED"]):
        trace = f"{0xbe00 + i:04x}" + "22" * 14
        reply = exchange(address(running), PROTOBUF_HEAD + b"Connection: close\r\nTransfer-Encoding: " + coding
                         + b"\r\n\r\n" + chunked(export_request(trace)))
        assert [r[0] for r in responses(reply)] == [200]
        assert stored(running, trace) == 1


def test_a_body_with_an_unsupported_coding_is_never_parsed_as_a_request(running):
    # a proxy that reads 'gzip, chunked' as chunked forwards this body as data; the receiver must not
    # take the request inside it for a second request on the connection
    hidden = "bf" + "11" * 15
    inner_body = export_request(hidden)
    inner = PROTOBUF_HEAD + b"Content-Length: %d\r\n\r\n" % len(inner_body) + inner_body
    reply = exchange(address(running), PROTOBUF_HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n" + inner)
    assert [r[0] for r in responses(reply)] == [501]
    assert stored(running, hidden) == 0


def test_transfer_encoding_wins_over_content_length_and_the_connection_is_closed(running):
    trace = "bd" + "11" * 15
    body = chunked(export_request(trace))
    reply = exchange(address(running), PROTOBUF_HEAD + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + body + PROTOBUF_HEAD + b"Content-Length: 0\r\n\r\n")
    [(code, headers, _)] = responses(reply)
    assert code == 200 and headers["connection"] == "close"
    assert stored(running, trace) == 1


@pytest.mark.parametrize("length", [b"+5", b"5_0", b"0x10", b"5, 6", b"-1", b"abc"])
def test_an_invalid_content_length_is_400(running, length):
    reply = exchange(address(running), PROTOBUF_HEAD + b"Content-Length: " + length + b"\r\n\r\n" + b"x" * 80)
    [(code, headers, body)] = responses(reply)
    assert code == 400 and headers["connection"] == "close"
    assert status_pb2.Status.FromString(body).message.startswith("invalid Content-Length")


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_shorter_than_announced_is_refused_and_nothing_is_stored(running, framing):
    trace = ("ce" if framing == "chunked" else "cf") + "12" * 15
    body = export_request(trace, services=4)
    cut = body[:len(body) // 2]
    while True:  # a cut between two ResourceSpans decodes as a shorter, valid request
        try:
            if len(trace_service_pb2.ExportTraceServiceRequest.FromString(cut).resource_spans) == 2:
                break
        except Exception:
            pass
        cut = cut[:-1]
    if framing == "content-length":
        data = PROTOBUF_HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + cut
    else:
        data = PROTOBUF_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + cut
    [(code, _, reply_body)] = responses(exchange(address(running), data, half_close=True))
    assert code == 400
    assert "ended" in status_pb2.Status.FromString(reply_body).message
    assert stored(running, trace) == 0


def test_expect_100_continue_comes_only_after_the_size_check(running):
    with socket.create_connection(address(running), timeout=30) as sock:
        sock.sendall(PROTOBUF_HEAD + b"Expect: 100-continue\r\nContent-Length: 104857600\r\n\r\n")
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:40]
    trace = "b7" + "55" * 15
    body = export_request(trace)
    with socket.create_connection(address(running), timeout=30) as sock:
        sock.sendall(PROTOBUF_HEAD + b"Connection: close\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
                     % len(body))
        assert sock.recv(25) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert [r[0] for r in responses(reply)] == [200]
    assert stored(running, trace) == 1


def test_expect_100_continue_comes_only_after_authentication(tmp_path, database):
    from spanhouse.receivers.auth import hash_token

    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f"acme: {hash_token('acme-token-1')}\n")
    svc = start_service(service_config(database, receiver={
        "protocols": {"http": {"endpoint": "127.0.0.1:0"}}, "auth": {"bearer_tokens_file": str(tokens)}}), database)
    try:
        with socket.create_connection(address(svc), timeout=30) as sock:
            sock.sendall(PROTOBUF_HEAD + b"Expect: 100-continue\r\nContent-Length: 1000\r\n\r\n")
            reply = sock.recv(65536)
        assert reply.startswith(b"HTTP/1.1 401 "), reply[:40]
    finally:
        svc.stop()


@pytest.mark.parametrize("request_head, status", [
    (b"TRACE /v1/traces HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    (b"POST /v1/traces HTTP/2.0\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 505),
    (b"POST /v1/traces HTTP/1.1\r\nX-A: " + b"a" * 70000 + b"\r\n\r\n", 431),
    (b"POST /v1/traces HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab", 400),
])
def test_the_servers_own_errors_are_google_rpc_status_not_html(running, request_head, status):
    [(code, headers, body)] = responses(exchange(address(running), request_head))
    assert code == status and headers["content-type"] == "application/json"
    message = json.loads(body)["message"]
    assert message and "<html" not in message.lower()


@pytest.fixture
def strict(database):
    config = service_config(database, receiver={"protocols": {"http": {
        "endpoint": "127.0.0.1:0", "read_header_timeout": "1s", "idle_timeout": "1s", "max_connections": 2}}})
    svc = start_service(config, database)
    yield svc
    svc.stop()


def test_a_request_head_sent_byte_by_byte_is_cut_off_at_read_header_timeout(strict):
    head = PROTOBUF_HEAD + b"X-Padding: " + b"p" * 200 + b"\r\n"
    with socket.create_connection(address(strict), timeout=30) as sock:
        reply = b""
        for byte in head:  # bounded: the whole head takes ~60 s at this pace, the deadline is 1 s
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.2)
            sock.setblocking(False)
            try:
                reply += sock.recv(65536)
            except BlockingIOError:
                pass
            finally:
                sock.setblocking(True)
            if reply:
                break
        while chunk := sock.recv(65536):
            reply += chunk
    [(code, headers, body)] = responses(reply)
    assert code == 408 and headers["connection"] == "close"
    assert "read_header_timeout" in json.loads(body)["message"]


def test_an_idle_keep_alive_connection_is_closed_after_idle_timeout(strict):
    trace = "a1" + "33" * 15
    body = export_request(trace)
    with socket.create_connection(address(strict), timeout=30) as sock:
        sock.sendall(PROTOBUF_HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        reply = b""
        # ends only when the server closes the idle connection; a recv that waits out the socket's 30 s
        # (far above idle_timeout, below the 120 s a stalled read is allowed) fails the test
        while chunk := sock.recv(65536):
            reply += chunk
    assert [r[0] for r in responses(reply)] == [200]


def test_connections_over_max_connections_get_503_with_retry_after(strict):
    trace = "a2" + "33" * 15
    body = export_request(trace)
    held = [socket.create_connection(address(strict), timeout=30) for _ in range(2)]
    try:
        for sock in held:  # each has started a request, so the server has taken it on
            sock.sendall(b"POST /v1/traces HTTP/1.1\r\n")
        refused = exchange(address(strict), PROTOBUF_HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        [(code, headers, reply_body)] = responses(refused)
        assert code == 503 and headers["retry-after"] == "1"
        assert json.loads(reply_body)["code"] == grpc.StatusCode.UNAVAILABLE.value[0]
        assert "too many connections" in json.loads(reply_body)["message"]
    finally:
        for sock in held:
            sock.close()
    for _ in range(200):  # the held connections' threads end as their sockets close
        [(code, _, _)] = responses(exchange(address(strict), PROTOBUF_HEAD + b"Connection: close\r\n"
                                            + b"Content-Length: %d\r\n\r\n" % len(body) + body))
        if code == 200:
            break
        time.sleep(0.05)
    assert code == 200 and stored(strict, trace) == 1


def raw_get(port: int, target: str) -> tuple[int, list[str]]:
    reply = exchange(("127.0.0.1", port), f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    lines = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    return int(lines[0].split()[1]), lines[1:]


def test_the_server_never_sends_a_header_value_with_a_line_break():
    server = HttpServer("127.0.0.1:0", lambda req: Response(200, b"ok", headers={"X-Echo": req.param("v", "")}), "t")
    server.start()
    try:
        status, headers = raw_get(server.port, "/?v=a%0d%0aSet-Cookie:+injected=1")
        assert status == 500 and not [h for h in headers if h.lower().startswith(("set-cookie", "x-echo"))]
        status, headers = raw_get(server.port, "/?v=fine")
        assert status == 200 and "X-Echo: fine" in headers
    finally:
        server.shutdown()
