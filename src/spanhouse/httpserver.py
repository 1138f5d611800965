"""A small threaded HTTP/1.1 server shared by the OTLP/HTTP receiver and the HTTP extensions.

A component supplies one function, `handle(request) -> Response`. The server reads bodies only
when asked and never more than the limit the caller gives, answers keep-alive requests on one
connection, and turns an unexpected exception into a 500 with a one-line message, never a trace.
With TLS, the handshake runs on the connection's own thread, so a slow client cannot stall accepts.
`shutdown(timeout)` stops accepting, answers requests that arrive on open connections with 503, and
waits for requests in progress to finish.

Framing follows RFC 9112: a body is read by `Transfer-Encoding: chunked` (the only transfer coding
served; others get 501) or by one valid `Content-Length`; anything ambiguous gets 400, and after any
framing error, or a body left unread, the connection is closed so that no byte of a body is parsed
as a request. `Expect: 100-continue` is answered only when the component reads the body, that is
after its checks (authentication, size). `ServerLimits` bounds how long a request head, a whole
request, a write and an idle keep-alive connection may take, and how many connections are open.
"""

from __future__ import annotations

import io
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from spanhouse.config import parse_endpoint
from spanhouse.errors import InvalidRequest, RequestTooLarge, SpanhouseError

log = logging.getLogger(__name__)


_STALL = 120.0  # a read that gets no byte for this long ends the connection, whatever the deadlines
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


@dataclass(frozen=True)
class ServerLimits:
    """How long a client may take and how many connections it may hold; the names and defaults are the
    Collector's `confighttp` server settings (0: no deadline), `max_connections` is spanhouse's own."""

    read_header_timeout: float = 60.0
    """Request line and headers, from the request's first byte; 0: `read_timeout` applies."""
    read_timeout: float = 0.0
    """The whole request, body included; 0: none (a read that gets nothing for 120 s still ends it)."""
    write_timeout: float = 30.0
    """Writing one response."""
    idle_timeout: float = 60.0
    """Waiting for the next request on a keep-alive connection; 0: `read_timeout` applies."""
    max_connections: int = 1024
    """Open connections; more are answered 503 with `Retry-After` and closed."""


class _FramingError(Exception):
    """The request's body framing cannot be trusted: answered with `status`, then the connection closes."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _body_length(headers, version: str) -> int | None:
    """The body's length by Content-Length, or None for a chunked body (RFC 9112 section 6)."""
    codings = [c.strip().lower() for v in headers.get_all("Transfer-Encoding") or () for c in v.split(",")]
    lengths = headers.get_all("Content-Length") or ()
    if codings:
        if version == "HTTP/1.0":
            raise _FramingError(400, "Transfer-Encoding is not allowed in an HTTP/1.0 request")
        if codings[-1] != "chunked" or "chunked" in codings[:-1]:
            raise _FramingError(400, "Transfer-Encoding must end with chunked, once; the body's length cannot "
                                     "be known otherwise")
        if len(codings) > 1:
            raise _FramingError(501, "transfer codings other than chunked are not supported; send the body "
                                     "chunked (compress it with Content-Encoding instead)")
        return None
    values = {v.strip() for line in lengths for v in line.split(",")}
    if not values:
        return 0
    value = values.pop()
    if values or not (value.isascii() and value.isdigit()):
        raise _FramingError(400, "invalid Content-Length: one decimal number of bytes is expected")
    return int(value)


class _DeadlineReader(io.RawIOBase):
    """The connection's reads, each bounded by the time left before `deadline` and by `_STALL`; between
    reads the socket keeps `write_timeout`, so responses get the write deadline."""

    def __init__(self, sock: socket.socket, write_timeout: float):
        self.sock = sock
        self.write_timeout = write_timeout or None
        self.deadline: float | None = None
        self.expired = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        timeout = _STALL
        if self.deadline is not None:
            timeout = min(timeout, self.deadline - time.monotonic())
            if timeout <= 0:
                self.expired = True
                raise TimeoutError("deadline passed")
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv_into(buffer)
        except TimeoutError:
            self.expired = self.deadline is not None and time.monotonic() >= self.deadline
            raise
        finally:
            self.sock.settimeout(self.write_timeout)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class Request:
    """One HTTP request. The body is read on demand, up to a limit, so oversized uploads are refused early."""

    def __init__(self, handler: _RequestHandler, length: int | None):
        self._h = handler
        self._length = length
        split = urlsplit(handler.path)
        self.method = handler.command
        self.path = split.path
        self.query: dict[str, list[str]] = parse_qs(split.query, keep_blank_values=True)
        self.headers = handler.headers
        self.client = handler.client_address
        self.body_consumed = False
        self.tls_peer_cert = None

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def read_body(self, limit: int) -> bytes:
        """The raw body; raises `RequestTooLarge` when it is, or announces it is, over `limit` bytes, and
        `InvalidRequest` when its framing (chunk sizes) is malformed or it ends before its announced end
        (nothing of such a body is returned)."""
        if self._length is not None and limit and self._length > limit:
            raise RequestTooLarge(f"request body of {self._length} bytes is over the limit of {limit} bytes")
        self._h.send_continue()
        try:
            data = self._read_chunked(limit) if self._length is None else self._read(self._length, "Content-Length")
        except TimeoutError:
            raise InvalidRequest(self._h.timeout_message()) from None
        self.body_consumed = True
        return data

    def _read(self, size: int, what: str) -> bytes:
        data = self._h.rfile.read(size) if size else b""
        if len(data) < size:
            raise InvalidRequest(f"request body ended after {len(data)} of the {size} bytes its {what} announced")
        return data

    def _read_chunked(self, limit: int) -> bytes:
        parts, total = [], 0
        rfile = self._h.rfile
        while True:
            line = rfile.readline(1024)
            size_field = line.split(b";")[0].strip()
            if not line.endswith(b"\n") or not _CHUNK_SIZE.fullmatch(size_field):
                raise InvalidRequest("malformed chunked body: a chunk size is not hexadecimal, or the body "
                                     "ended before its last chunk")
            size = int(size_field, 16)
            if size == 0:
                break
            total += size
            if limit and total > limit:
                raise RequestTooLarge(f"request body is over the limit of {limit} bytes")
            parts.append(self._read(size, "chunk size"))
            if rfile.readline(8) not in (b"\r\n", b"\n"):
                raise InvalidRequest("malformed chunked body: a chunk is longer than its size says")
        for _ in range(64):  # trailer fields, ignored
            line = rfile.readline(8192)
            if not line.endswith(b"\n"):
                raise InvalidRequest("malformed chunked body: the trailer section is cut off or too long")
            if not line.strip():
                break
        else:
            raise InvalidRequest("malformed chunked body: more than 64 trailer fields")
        return b"".join(parts)


Handler = Callable[[Request], Response]
ErrorRenderer = Callable[[int, str, str], Response]
"""Builds the answer to an error the server itself gives (status, message, the request's Content-Type)."""


def _plain_error(status: int, message: str, content_type: str) -> Response:
    return Response(status, f"{message}\n".encode())


def _sendable(value: str) -> bool:
    """No line break (it would start a header of the value's choosing) and encodable as http.server writes."""
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return not ("\r" in value or "\n" in value or "\0" in value)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "spanhouse"
    timeout = _STALL

    server: _Server

    def setup(self) -> None:
        super().setup()
        self._reader = _DeadlineReader(self.connection, self.server.limits.write_timeout)
        self.rfile = io.BufferedReader(self._reader, 65536)
        self._requests = 0

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: object) -> None:
        # http.server's messages quote the request line: only that something failed is logged
        log.debug("%s: a request could not be served", self.client_address[0])

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # the query string is left out: it can hold a token (`?password=`, as ClickHouse clients send
        # it) or SQL quoting stored values
        path = getattr(self, "path", "")
        target = urlsplit(path).path + ("?…" if "?" in path else "")
        code = getattr(code, "value", code)
        log.debug('%s "%s %s" %s %s', self.client_address[0], getattr(self, "command", "-"), target, code, size)

    def handle_one_request(self) -> None:
        limits = self.server.limits
        self.headers = None  # type: ignore[assignment]
        self.command, self.request_version = "", ""
        self._expect_continue = False
        if self._requests:
            # a keep-alive connection waiting for its next request
            idle = limits.idle_timeout or limits.read_timeout
            self._reader.deadline = time.monotonic() + idle if idle else None
            try:
                if not self.rfile.peek(1):
                    self.close_connection = True
                    return
            except OSError:  # TimeoutError included: an idle connection is closed without an answer
                self.close_connection = True
                return
        self._requests += 1
        self._started = time.monotonic()
        head = limits.read_header_timeout or limits.read_timeout
        self._reader.deadline = self._started + head if head else None
        self._reader.expired = False
        self._in_head = True
        super().handle_one_request()
        if self._reader.expired and self._in_head:
            self._send_error(408, self.timeout_message())

    def timeout_message(self) -> str:
        limits = self.server.limits
        if self._in_head and limits.read_header_timeout:
            return f"request head not received within read_header_timeout ({limits.read_header_timeout:g}s)"
        if self._reader.expired:
            return f"request not received within read_timeout ({limits.read_timeout:g}s)"
        return f"request body stalled: no data for {_STALL:g}s"

    def handle_expect_100(self) -> bool:
        # answered in send_continue, once the component asks for the body: not for requests it refuses
        self._expect_continue = True
        return True

    def send_continue(self) -> None:
        if self._expect_continue:
            self._expect_continue = False
            self.send_response_only(100)
            self.end_headers()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (request line, header section, method, version), in the component's
        error format instead of an HTML page."""
        phrase = self.responses.get(code, ("error",))[0]
        self._send_error(code, f"{phrase}: {message}" if message else phrase)

    def _send_error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        if self.request_version in ("", "HTTP/0.9"):
            self.request_version = "HTTP/1.1"  # so that the answer has a status line
        ctype = self.headers.get("Content-Type", "") if self.headers is not None else ""
        resp = self.server.render_error(status, message, ctype)
        resp.headers.update(headers or {})
        try:
            self._write(resp, close=True)
        except OSError:
            self.close_connection = True

    def _dispatch(self) -> None:
        server = self.server
        self._in_head = False
        limits = server.limits
        self._reader.deadline = self._started + limits.read_timeout if limits.read_timeout else None
        if not server.begin():
            self._send_error(503, "server is shutting down; retry", {"Retry-After": "1"})
            return
        try:
            self._serve()
        finally:
            server.end()

    def _serve(self) -> None:
        try:
            length = _body_length(self.headers, self.request_version)
        except _FramingError as exc:
            self._send_error(exc.status, str(exc))
            return
        req = Request(self, length)
        if isinstance(self.connection, ssl.SSLSocket):
            req.tls_peer_cert = self.connection.getpeercert()
        try:
            resp = self.server.app(req)
        except RequestTooLarge as exc:
            resp = Response(413, f"{exc}\n".encode())
        except SpanhouseError as exc:
            resp = Response(400, f"{exc}\n".encode())
        except Exception as exc:
            log.exception("unhandled error serving %s %s", self.command, urlsplit(self.path).path)
            resp = Response(500, f"internal error: {type(exc).__name__}\n".encode())
        unsendable = [name for name, value in resp.headers.items() if not (_sendable(name) and _sendable(value))]
        if unsendable:
            log.error("%s: response header %s not sent: it holds a line break or a character HTTP/1.1 cannot carry",
                      self.server.name, unsendable[0])
            resp = Response(500, b"internal error: a response header could not be sent\n")
        # an unread body would be parsed as the next request; with both framings (RFC 9112 6.1) the
        # sender may disagree with how it was read
        close = (not req.body_consumed and (length is None or length > 0)) or (
            length is None and self.headers.get("Content-Length") is not None)
        self._write(resp, close=close or self.server.closing)

    def _write(self, resp: Response, close: bool) -> None:
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for k, v in resp.headers.items():
            self.send_header(k, v)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], app: Handler, tls: ssl.SSLContext | None, name: str,
                 limits: ServerLimits, render_error: ErrorRenderer):
        self.app = app
        self.tls = tls
        self.name = name
        self.limits = limits
        self.render_error = render_error
        self.closing = False
        self._active = 0
        self._idle = threading.Condition()
        self._connections = 0
        self._connections_lock = threading.Lock()
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.address_family = family
        super().__init__(addr, _RequestHandler)

    def process_request(self, request, client_address) -> None:  # type: ignore[override]
        with self._connections_lock:
            full = self._connections >= self.limits.max_connections
            if not full:
                self._connections += 1
        if full:
            self._refuse_connection(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._connection_ended()
            raise

    def process_request_thread(self, request, client_address) -> None:  # type: ignore[override]
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connection_ended()

    def _connection_ended(self) -> None:
        with self._connections_lock:
            self._connections -= 1

    def _refuse_connection(self, sock: socket.socket) -> None:
        """Answer 503 on the accepting thread without waiting for the client (non-blocking), and close."""
        log.warning("%s: %d connections open (the limit); a new one is refused with 503", self.name,
                    self.limits.max_connections)
        try:
            if not isinstance(sock, ssl.SSLSocket):  # before its handshake a TLS client cannot read an answer
                resp = self.render_error(503, f"too many connections (the server's limit is "
                                              f"{self.limits.max_connections}); retry later", "")
                head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: {resp.content_type}\r\n"
                        f"Content-Length: {len(resp.body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n")
                sock.setblocking(False)
                sock.send(head.encode() + resp.body)
                try:
                    sock.recv(65536)  # what the client already sent: unread, it would turn the close into a reset
                except OSError:
                    pass
        except OSError:
            pass
        self.shutdown_request(sock)

    def get_request(self):  # type: ignore[override]
        sock, addr = super().get_request()
        if self.tls is not None:
            # no I/O here: the handshake happens on the connection's thread (finish_request)
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def finish_request(self, request, client_address) -> None:  # type: ignore[override]
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(10)
                request.do_handshake()
                request.settimeout(None)
            except (OSError, ssl.SSLError) as exc:
                log.debug("TLS handshake with %s failed: %s", client_address, exc)
                return
        super().finish_request(request, client_address)

    def begin(self) -> bool:
        """Count a request in; False when the server is closing."""
        with self._idle:
            if self.closing:
                return False
            self._active += 1
            return True

    def end(self) -> None:
        with self._idle:
            self._active -= 1
            self._idle.notify_all()

    def drain(self, timeout: float) -> bool:
        """Refuse new requests and wait for those in progress; False if some are still running."""
        deadline = time.monotonic() + timeout
        with self._idle:
            self.closing = True
            while self._active:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def handle_error(self, request, client_address) -> None:  # type: ignore[override]
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class HttpServer:
    """Serves `app` on `endpoint` (`host:port`; port 0 picks a free one) in background threads, one per
    connection, within `limits`; errors the server gives itself (framing, deadlines, too many connections,
    shutting down) are answered with `render_error`'s response (plain text by default)."""

    def __init__(self, endpoint: str, app: Handler, name: str, tls: ssl.SSLContext | None = None, *,
                 limits: ServerLimits | None = None, render_error: ErrorRenderer | None = None):
        self.endpoint = endpoint
        self.app = app
        self.name = name
        self.tls = tls
        self.limits = limits or ServerLimits()
        self.render_error = render_error or _plain_error
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        host, port = parse_endpoint(self.endpoint)
        try:
            self._server = _Server((host, port), self.app, self.tls, self.name, self.limits, self.render_error)
        except OSError as exc:
            raise SpanhouseError(f"{self.name}: cannot listen on {self.endpoint}: {exc.strerror or exc}") from None
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"http-{self.name}", daemon=True)
        self._thread.start()
        log.info("%s listening on http%s://%s:%d", self.name, "s" if self.tls else "", host, self.port)

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else 0

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop accepting connections, then wait up to `timeout` seconds for requests in progress."""
        server, self._server = self._server, None
        if server is not None:
            stopping = threading.Thread(target=server.shutdown, name=f"stop-{self.name}", daemon=True)
            stopping.start()
            # the accept loop sees the stop only when its select() returns (every poll_interval): shutting the
            # listening socket down makes it readable at once (accept then fails, and socketserver ignores it)
            try:
                server.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # not every platform allows it on a listening socket: the loop's next poll ends it
            stopping.join()
            server.server_close()
            if not server.drain(timeout):
                log.warning("%s: requests still running after %.0fs at shutdown", self.name, timeout)
        if self._thread is not None:
            self._thread.join(timeout=5)
