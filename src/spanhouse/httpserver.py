"""A small threaded HTTP/1.1 server shared by the OTLP/HTTP receiver and the HTTP extensions.

A component supplies one function, `handle(request) -> Response`. The server reads bodies only
when asked and never more than the limit the caller gives, answers keep-alive requests on one
connection, and turns an unexpected exception into a 500 with a one-line message, never a trace.
With TLS, the handshake runs on the connection's own thread, so a slow client cannot stall accepts.
`shutdown(timeout)` stops accepting, answers requests that arrive on open connections with 503, and
waits for requests in progress to finish.
"""

from __future__ import annotations

import logging
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


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class Request:
    """One HTTP request. The body is read on demand, up to a limit, so oversized uploads are refused early."""

    def __init__(self, handler: BaseHTTPRequestHandler):
        self._h = handler
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
        `InvalidRequest` when its framing (Content-Length, chunk sizes) is malformed."""
        if self.header("Transfer-Encoding").lower() == "chunked":
            return self._read_chunked(limit)
        try:
            length = int(self.header("Content-Length", "0") or 0)
        except ValueError:
            length = -1
        if length < 0:
            raise InvalidRequest(f"invalid Content-Length {self.header('Content-Length')!r}")
        if limit and length > limit:
            raise RequestTooLarge(f"request body of {length} bytes is over the limit of {limit} bytes")
        data = self._h.rfile.read(length) if length else b""
        self.body_consumed = True
        return data

    def _read_chunked(self, limit: int) -> bytes:
        parts, total = [], 0
        rfile = self._h.rfile
        while True:
            line = rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise InvalidRequest("malformed chunked body: a chunk size is not hexadecimal") from None
            if size == 0:
                while rfile.readline(1024).strip():
                    pass
                break
            total += size
            if limit and total > limit:
                raise RequestTooLarge(f"request body is over the limit of {limit} bytes")
            parts.append(rfile.read(size))
            rfile.readline(8)
        self.body_consumed = True
        return b"".join(parts)


Handler = Callable[[Request], Response]


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "spanhouse"
    sys_version = ""
    timeout = 120  # an idle keep-alive connection, or a stalled upload, is closed after this long

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.client_address[0], *args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # the query string is left out: it can hold a token (`?password=`, as ClickHouse clients send
        # it) or SQL quoting stored values
        path = getattr(self, "path", "")
        target = urlsplit(path).path + ("?…" if "?" in path else "")
        code = getattr(code, "value", code)
        log.debug('%s "%s %s" %s %s', self.client_address[0], getattr(self, "command", "-"), target, code, size)

    def _dispatch(self) -> None:
        server: _Server = self.server  # type: ignore[assignment]
        if not server.begin():
            self._refuse_while_closing()
            return
        try:
            self._serve()
        finally:
            server.end()

    def _refuse_while_closing(self) -> None:
        self.close_connection = True
        body = b"server is shutting down; retry\n"
        self.send_response(503)
        self.send_header("Retry-After", "1")
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _serve(self) -> None:
        req = Request(self)
        if isinstance(self.connection, ssl.SSLSocket):
            req.tls_peer_cert = self.connection.getpeercert()
        try:
            resp = self.server.app(req)  # type: ignore[attr-defined]
        except RequestTooLarge as exc:
            resp = Response(413, f"{exc}\n".encode())
        except SpanhouseError as exc:
            resp = Response(400, f"{exc}\n".encode())
        except Exception as exc:
            log.exception("unhandled error serving %s %s", self.command, self.path)
            resp = Response(500, f"internal error: {type(exc).__name__}\n".encode())
        close = not req.body_consumed and (self.headers.get("Content-Length", "0") not in ("", "0")
                                            or self.headers.get("Transfer-Encoding"))
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for k, v in resp.headers.items():
            self.send_header(k, v)
        if close or self.server.closing:  # type: ignore[attr-defined]
            # an unread body would be parsed as the next request; drop the connection instead
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

    def __init__(self, addr: tuple[str, int], app: Handler, tls: ssl.SSLContext | None):
        self.app = app
        self.tls = tls
        self.closing = False
        self._active = 0
        self._idle = threading.Condition()
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.address_family = family
        super().__init__(addr, _RequestHandler)

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
    """Serves `app` on `endpoint` (`host:port`; port 0 picks a free one) in background threads."""

    def __init__(self, endpoint: str, app: Handler, name: str, tls: ssl.SSLContext | None = None):
        self.endpoint = endpoint
        self.app = app
        self.name = name
        self.tls = tls
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        host, port = parse_endpoint(self.endpoint)
        try:
            self._server = _Server((host, port), self.app, self.tls)
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
            server.shutdown()
            server.server_close()
            if not server.drain(timeout):
                log.warning("%s: requests still running after %.0fs at shutdown", self.name, timeout)
        if self._thread is not None:
            self._thread.join(timeout=5)
