"""What the sql_query endpoint does with hostile HTTP input: compressed bodies that would inflate far
past `max_query_size`, and request values that would reach a response header."""

from __future__ import annotations

import gzip
import socket
import urllib.error
import urllib.request
import zlib

import lz4.frame
import pytest
from support import service_config, start_service, unique_database

from spanhouse import httpencoding
from spanhouse.errors import InvalidRequest, RequestTooLarge
from spanhouse.receivers.auth import hash_token

try:
    from backports import zstd
except ImportError:  # pragma: no cover - Python 3.14
    from compression import zstd  # type: ignore[no-redef]

LIMIT = 64 << 10


def bomb(coding: str, size: int = 256 << 20) -> bytes:
    """`size` bytes of spaces, compressed in pieces so that the test never holds them whole."""
    piece = b" " * (1 << 20)
    if coding == "gzip":
        c = zlib.compressobj(9, zlib.DEFLATED, 31)
    elif coding == "deflate":
        c = zlib.compressobj(9)
    elif coding == "zstd":
        c = zstd.ZstdCompressor()
    else:
        c = lz4.frame.LZ4FrameCompressor()
        return c.begin() + b"".join(c.compress(piece) for _ in range(size >> 20)) + c.flush()
    return b"".join(c.compress(piece) for _ in range(size >> 20)) + c.flush()


@pytest.mark.parametrize("coding", ["gzip", "deflate", "zstd", "lz4"])
def test_decode_stops_inflating_at_the_limit(coding):
    with pytest.raises(RequestTooLarge, match=f"over the limit of {LIMIT} bytes"):
        httpencoding.decode(bomb(coding), coding, LIMIT)
    text = b"SELECT 1"
    one = httpencoding.encode(text, coding)
    assert httpencoding.decode(one, coding, len(text)) == text
    with pytest.raises(InvalidRequest, match="truncated"):
        httpencoding.decode(one[:-4], coding, LIMIT)
    if coding != "deflate":  # gzip members and zstd / lz4 frames may follow one another
        assert httpencoding.decode(one + one, coding, 2 * len(text)) == text + text


@pytest.fixture(scope="module")
def sql():
    """One service for the module: the tests send queries that are refused or only read."""
    database = unique_database("sql_http")
    config = service_config(database, extensions={"sql_query": {"endpoint": "127.0.0.1:0",
                                                                "max_query_size": LIMIT}})
    svc = start_service(config, database)
    yield svc
    svc.stop()


def post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.mark.parametrize("coding", ["gzip", "zstd"])
def test_a_compressed_query_over_max_query_size_is_refused_as_too_large(sql, coding):
    status, headers, body = post(sql.sql_port, bomb(coding, 64 << 20), {"Content-Encoding": coding})
    assert status == 413 and headers["X-ClickHouse-Exception-Code"] == "229"
    assert body.startswith(b"Code: 229. DB::Exception: Max query size exceeded") and b"(QUERY_IS_TOO_LARGE)" in body
    assert f"max_query_size of {LIMIT} bytes".encode() in body
    status, _, body = post(sql.sql_port, gzip.compress(b"SELECT 42"), {"Content-Encoding": "gzip"})
    assert (status, body) == (200, b"42\n")


def test_a_plain_query_over_max_query_size_is_refused_as_too_large(sql):
    status, headers, body = post(sql.sql_port, b"SELECT '" + b"x" * LIMIT + b"'", {})
    assert status == 413 and headers["X-ClickHouse-Exception-Code"] == "229"


def raw_get(port: int, target: str, extra: str = "") -> tuple[int, list[str]]:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n".encode())
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    lines = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    return int(lines[0].split()[1]), lines[1:]


INJECTED = "abc%0d%0aSet-Cookie:+injected=1%0d%0aX-Injected:+yes"


@pytest.mark.parametrize("query", ["SELECT+1", "SELEC+1"])
def test_a_query_id_with_a_line_break_never_reaches_the_response_headers(sql, query):
    status, headers = raw_get(sql.sql_port, f"/?query={query}&query_id={INJECTED}")
    assert status == 400 and "X-ClickHouse-Exception-Code: 36" in headers
    assert not [h for h in headers if h.lower().startswith(("set-cookie", "x-injected", "x-clickhouse-query-id"))]
    status, headers = raw_get(sql.sql_port, "/?query=SELECT+1&query_id=q-1")
    assert status == 200 and "X-ClickHouse-Query-Id: q-1" in headers


def test_a_query_id_with_a_line_break_is_refused_before_authentication_too(tmp_path, database):
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f"ops: {hash_token('ops-token-1')}\n")
    config = service_config(database, extensions={"sql_query": {
        "endpoint": "127.0.0.1:0", "auth": {"bearer_tokens_file": str(tokens), "all_tenants": ["ops"]}}})
    svc = start_service(config, database)
    try:
        status, headers = raw_get(svc.sql_port, f"/?query=SELECT+1&query_id={INJECTED}")
        assert status == 400
        assert not [h for h in headers if h.lower().startswith(("set-cookie", "x-injected"))]
        status, headers = raw_get(svc.sql_port, "/?query=SELECT+1&query_id=q-2")
        assert status == 401 and "X-ClickHouse-Query-Id: q-2" in headers
    finally:
        svc.stop()
