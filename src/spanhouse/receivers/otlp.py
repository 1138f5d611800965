"""`otlp` receiver: OTLP/gRPC and OTLP/HTTP (protobuf and JSON, gzip) on the Collector's keys.

Both transports hand the request bytes to the same decoder and the same `export` path; they differ
only in how a result or an error is written back. Both can serve TLS (`tls`, optionally mutual) and
require a bearer token per tenant (`auth`, see `spanhouse.receivers.auth`).
"""

from __future__ import annotations

import logging
import socket
import zlib
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2

from spanhouse import cpu
from spanhouse.component import Component, ConfigIssue, CreateSettings, Factory, Kind
from spanhouse.config import Duration, endpoint_issues, parse_endpoint
from spanhouse.errors import InvalidRequest, RequestTooLarge, SpanhouseError, UnsupportedMedia
from spanhouse.httpserver import HttpServer, Request, Response, ServerLimits
from spanhouse.otlp.decode import DecodeLimits
from spanhouse.receivers.auth import AuthSettings, BearerAuth, demote_tenant, stamp_tenant
from spanhouse.receivers.signals import SIGNALS, SignalCodec
from spanhouse.receivers.status import WireStatus, wire_status
from spanhouse.tls import TlsSettings

log = logging.getLogger(__name__)

_MIB = 1 << 20
PROTOBUF = "application/x-protobuf"
JSON = "application/json"


@dataclass(frozen=True, kw_only=True)
class GrpcSettings:
    endpoint: str = "127.0.0.1:4317"
    max_recv_msg_size_mib: int = 4
    """Largest accepted message, after decompression; larger ones get RESOURCE_EXHAUSTED."""
    max_concurrent_requests: int = 64
    """Requests served at once; more wait in gRPC's queue."""
    tls: TlsSettings | None = None

    def validate(self) -> Iterator[ConfigIssue]:
        yield from endpoint_issues("endpoint", self.endpoint)
        if self.max_recv_msg_size_mib <= 0:
            yield ConfigIssue("max_recv_msg_size_mib", "must be greater than 0")
        if self.max_concurrent_requests <= 0:
            yield ConfigIssue("max_concurrent_requests", "must be greater than 0")
        if self.tls is not None and self.tls.min_version != "1.2":
            # grpcio cannot set a minimum TLS version: a setting it would ignore is refused instead
            yield ConfigIssue("tls::min_version", "gRPC accepts TLS 1.2 and 1.3 and cannot be limited to 1.3 "
                                                  "(grpcio offers no such setting); remove it here, or serve "
                                                  "TLS 1.3 only over http")


@dataclass(frozen=True, kw_only=True)
class HttpSettings:
    endpoint: str = "127.0.0.1:4318"
    max_request_body_size: int = 20 * _MIB
    """Largest accepted body in bytes, enforced on the decompressed size too (413 above it)."""
    traces_url_path: str = "/v1/traces"
    logs_url_path: str = "/v1/logs"
    tls: TlsSettings | None = None
    read_header_timeout: Duration = Duration(60)
    """Request line and headers, from the first byte (the Collector's default); 0: `read_timeout` applies."""
    read_timeout: Duration = Duration(0)
    """The whole request, body included; 0: none (as in the Collector)."""
    write_timeout: Duration = Duration(30)
    idle_timeout: Duration = Duration(60)
    """A keep-alive connection waiting for its next request; 0: `read_timeout` applies."""
    max_connections: int = 1024
    """Open connections (spanhouse's own key); more are answered 503 with Retry-After."""

    def validate(self) -> Iterator[ConfigIssue]:
        yield from endpoint_issues("endpoint", self.endpoint)
        if self.max_request_body_size <= 0:
            yield ConfigIssue("max_request_body_size", "must be greater than 0")
        for name in ("read_header_timeout", "read_timeout", "write_timeout", "idle_timeout"):
            if getattr(self, name).seconds < 0:
                yield ConfigIssue(name, "must be 0 (none) or more")
        if self.max_connections <= 0:
            yield ConfigIssue("max_connections", "must be greater than 0")
        for name in ("traces_url_path", "logs_url_path"):
            if not getattr(self, name).startswith("/"):
                yield ConfigIssue(name, "must start with '/'")

    def server_limits(self) -> ServerLimits:
        return ServerLimits(read_header_timeout=self.read_header_timeout.seconds,
                            read_timeout=self.read_timeout.seconds, write_timeout=self.write_timeout.seconds,
                            idle_timeout=self.idle_timeout.seconds, max_connections=self.max_connections)


@dataclass(frozen=True, kw_only=True)
class Protocols:
    grpc: GrpcSettings | None = None
    http: HttpSettings | None = None


@dataclass(frozen=True, kw_only=True)
class Limits:
    max_spans_per_request: int = 50_000
    """Requests with more spans or log records (or resource and scope entries) are refused with 413 /
    RESOURCE_EXHAUSTED before they are decoded; 0 means no limit. SDKs send 512 per request by default,
    the Collector's batch processor 8192."""
    max_attributes_per_span: int = 0
    """Attributes beyond this many are dropped and counted; 0 means no limit."""
    max_attribute_value_length: int = 0
    """Longer string values are truncated and listed in spanhouse.attribute.truncated_keys; 0: no limit."""
    max_nesting: int = 32
    """Deepest array/kvlist nesting accepted in a value; deeper requests are refused with 400."""

    def validate(self) -> Iterator[ConfigIssue]:
        for name in ("max_spans_per_request", "max_attributes_per_span", "max_attribute_value_length"):
            if getattr(self, name) < 0:
                yield ConfigIssue(name, "must be 0 (no limit) or greater")
        if not 1 <= self.max_nesting <= 100:
            yield ConfigIssue("max_nesting", "must be between 1 and 100")

    def decode_limits(self) -> DecodeLimits:
        return DecodeLimits(max_value_length=self.max_attribute_value_length,
                            max_attributes=self.max_attributes_per_span, max_nesting=self.max_nesting,
                            max_records=self.max_spans_per_request)


@dataclass(frozen=True, kw_only=True)
class OtlpReceiverConfig:
    protocols: Protocols = field(default_factory=Protocols)
    limits: Limits = field(default_factory=Limits)
    auth: AuthSettings | None = None
    """Require `Authorization: Bearer <token>` on both protocols; each token maps to a tenant."""

    def validate(self) -> Iterator[ConfigIssue]:
        if self.protocols.grpc is None and self.protocols.http is None:
            yield ConfigIssue("protocols", "enable at least one of grpc or http, e.g. protocols: {grpc: {}, http: {}}")


def inflate(data: bytes, encoding: str, limit: int) -> bytes:
    """Decompress a gzip or deflate body, refusing it as soon as the output passes `limit` bytes."""
    wbits = 31 if encoding == "gzip" else 15
    out, total = [], 0
    while data:
        d = zlib.decompressobj(wbits)
        try:
            chunk = d.decompress(data, limit + 1 - total)
        except zlib.error as exc:
            raise InvalidRequest(f"request body is not valid {encoding} data: {exc}") from None
        total += len(chunk)
        if total > limit or d.unconsumed_tail:
            raise RequestTooLarge(f"decompressed request body is over the limit of {limit} bytes")
        if not d.eof:
            raise InvalidRequest(f"request body is truncated {encoding} data")
        out.append(chunk)
        data = d.unused_data if encoding == "gzip" else b""
    return b"".join(out)


class OtlpReceiver(Component):
    """Accepts OTLP exports and answers only after the pipeline accepted the data durably.

    Answers follow the OTLP spec: 200 / OK with `partial_success` when some spans were invalid, values
    were truncated, or an exporter refused spans (older than the store's retention); 400 /
    INVALID_ARGUMENT for undecodable bodies; 401 / UNAUTHENTICATED without a valid bearer token (when
    `auth` is set); 413 / RESOURCE_EXHAUSTED over the size limits; 415 for unknown media types or
    encodings; 429 / RESOURCE_EXHAUSTED with a retry delay when a sending queue is full; 503 /
    UNAVAILABLE with a retry delay when the pipeline cannot take the data
    right now. With `auth`, every record is stamped with the token's tenant.
    """

    def __init__(self, settings: CreateSettings, config: OtlpReceiverConfig):
        self.id = settings.id
        self.config = config
        self.consumers = dict(settings.consumers)
        self.decode_limits = config.limits.decode_limits()
        self.auth = BearerAuth(config.auth) if config.auth is not None else None
        self.http: HttpServer | None = None
        self.grpc_server: grpc.Server | None = None
        self.grpc_port = 0
        http = config.protocols.http
        self._http_paths: dict[str, SignalCodec] = {}
        if http is not None:
            paths = {"traces": http.traces_url_path, "logs": http.logs_url_path}
            self._http_paths = {paths[name]: codec for name, codec in SIGNALS.items() if name in paths}

    # --- shared path --------------------------------------------------------------------

    def export(self, codec: SignalCodec, body: bytes, as_json: bool, tenant: str | None = None) -> Any:
        """Decode, stamp the tenant, hand to the pipeline, and return the export response message."""
        consumer = self.consumers.get(codec.name)
        if consumer is None:
            raise UnsupportedMedia(f"receiver {self.id} is not part of any {codec.name} pipeline")
        decoded = cpu.run(codec.decode_json if as_json else codec.decode_protobuf, body, self.decode_limits)
        refusal = None
        if len(decoded.batch):
            if tenant is not None:
                stamp_tenant(decoded.batch, tenant)
            else:
                demote_tenant(decoded.batch)
            refusal = consumer.consume(decoded.batch)
        if refusal is None:
            return codec.response(decoded.rejected, decoded.error_message)
        message = ". ".join(m for m in (decoded.error_message, refusal.message) if m)
        return codec.response(decoded.rejected + refusal.count, message)

    # --- HTTP -----------------------------------------------------------------------------

    def handle_http(self, req: Request) -> Response:
        codec = self._http_paths.get(req.path)
        ctype = req.header("Content-Type").split(";")[0].strip().lower()
        as_json = ctype == JSON
        if codec is None or req.method != "POST":
            # JSON for anything but a protobuf request: a browser or curl gets a readable answer
            as_text = ctype != PROTOBUF
            if codec is None:
                return self._http_status(404, grpc.StatusCode.NOT_FOUND, f"no OTLP endpoint at {req.path}; use "
                                         f"{', '.join(self._http_paths)}", as_text)
            return self._http_status(405, grpc.StatusCode.UNIMPLEMENTED, "OTLP exports use POST", as_text,
                                     {"Allow": "POST"})
        if ctype not in (PROTOBUF, JSON):
            return self._http_error(UnsupportedMedia(
                f"unsupported Content-Type {ctype!r}; send {PROTOBUF} or {JSON}"), as_json=True)
        limit = self.config.protocols.http.max_request_body_size  # type: ignore[union-attr]
        try:
            tenant = self.auth.tenant(req.headers.get_all("Authorization")) if self.auth is not None else None
            encoding = req.header("Content-Encoding").strip().lower()
            if encoding not in ("", "identity", "none", "gzip", "deflate"):
                raise UnsupportedMedia(f"unsupported Content-Encoding {encoding!r}; send gzip, deflate or no "
                                       "encoding (identity)")
            body = req.read_body(limit)
            if encoding in ("gzip", "deflate"):
                body = inflate(body, encoding, limit)
            resp = self.export(codec, body, as_json, tenant)
        except Exception as exc:
            return self._http_error(exc, as_json)
        return Response(200, codec.encode_response(resp, as_json), JSON if as_json else PROTOBUF)

    @staticmethod
    def _http_status(http: int, code: grpc.StatusCode, message: str, as_json: bool,
                     headers: dict[str, str] | None = None) -> Response:
        """An error response whose body is a `google.rpc.Status`, as OTLP/HTTP asks of every 4xx/5xx;
        JSON unless the request was protobuf."""
        body = SIGNALS["traces"].encode_response(status_pb2.Status(code=code.value[0], message=message), as_json)
        return Response(http, body, JSON if as_json else PROTOBUF, headers or {})

    @classmethod
    def _http_server_error(cls, http: int, message: str, content_type: str) -> Response:
        """The HTTP server's own errors (framing, deadlines, too many connections) as OTLP/HTTP error bodies."""
        code = {408: grpc.StatusCode.DEADLINE_EXCEEDED, 413: grpc.StatusCode.RESOURCE_EXHAUSTED,
                501: grpc.StatusCode.UNIMPLEMENTED, 503: grpc.StatusCode.UNAVAILABLE,
                505: grpc.StatusCode.UNIMPLEMENTED}.get(http, grpc.StatusCode.INVALID_ARGUMENT)
        as_json = content_type.split(";")[0].strip().lower() != PROTOBUF
        return cls._http_status(http, code, message, as_json,
                                {"Retry-After": "1"} if http == 503 else None)

    def _http_error(self, exc: BaseException, as_json: bool) -> Response:
        st = wire_status(exc)
        status = status_pb2.Status(code=st.grpc.value[0], message=st.message)
        if st.http == 400:
            status.details.add().Pack(error_details_pb2.BadRequest(
                field_violations=[error_details_pb2.BadRequest.FieldViolation(field="body", description=st.message)]))
        body = SIGNALS["traces"].encode_response(status, as_json)
        headers = {"Retry-After": st.retry_after_header} if st.retry_after_header else {}
        if st.http == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="spanhouse"'
        return Response(st.http, body, JSON if as_json else PROTOBUF, headers)

    # --- gRPC -----------------------------------------------------------------------------

    def _grpc_method(self, codec: SignalCodec):
        def export(request: bytes, context: grpc.ServicerContext) -> bytes:
            try:
                tenant = None
                if self.auth is not None:
                    tenant = self.auth.tenant([value for key, value in context.invocation_metadata() or ()
                                               if key.lower() == "authorization"])
                return self.export(codec, request, as_json=False, tenant=tenant).SerializeToString()
            except Exception as exc:
                _grpc_abort(context, wire_status(exc))
                raise  # unreachable: abort raises

        return export

    def _start_grpc(self, cfg: GrpcSettings) -> None:
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=cfg.max_concurrent_requests, thread_name_prefix="otlp-grpc"),
            # gRPC sets SO_REUSEPORT by default: a second process could bind the same port and take part
            # of the traffic into another store
            options=[("grpc.so_reuseport", 0),
                     ("grpc.max_receive_message_length", cfg.max_recv_msg_size_mib * _MIB),
                     ("grpc.max_send_message_length", 4 * _MIB)],
        )
        handlers = [
            grpc.method_handlers_generic_handler(codec.grpc_service, {
                "Export": grpc.unary_unary_rpc_method_handler(self._grpc_method(codec))})
            for name, codec in SIGNALS.items() if name in self.consumers
        ]
        server.add_generic_rpc_handlers(tuple(handlers))
        host, port = parse_endpoint(cfg.endpoint)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            if cfg.tls is not None:
                self.grpc_port = server.add_secure_port(address, cfg.tls.grpc_credentials())
            else:
                self.grpc_port = server.add_insecure_port(address)
        except RuntimeError as exc:
            # grpcio says only "Failed to bind"; the reason (address in use, no such address) is the OS's
            reason = _bind_error(host, port) or str(exc)
            raise SpanhouseError(f"receiver {self.id} (OTLP/gRPC): cannot listen on {cfg.endpoint}: {reason}") from None
        if not self.grpc_port:
            reason = _bind_error(host, port) or "grpcio could not bind it"
            raise SpanhouseError(f"receiver {self.id} (OTLP/gRPC): cannot listen on {cfg.endpoint}: {reason}")
        server.start()
        self.grpc_server = server
        log.info("receiver %s: OTLP/gRPC%s on %s:%d", self.id, " (TLS)" if cfg.tls else "", host,
                 self.grpc_port)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, host: Any) -> None:
        protocols = self.config.protocols
        if protocols.grpc is not None:
            self._start_grpc(protocols.grpc)
        if protocols.http is not None:
            tls = protocols.http.tls.server_context() if protocols.http.tls is not None else None
            self.http = HttpServer(protocols.http.endpoint, self.handle_http,
                                   f"receiver {self.id} (OTLP/HTTP)", tls, limits=protocols.http.server_limits(),
                                   render_error=self._http_server_error)
            self.http.start()

    @property
    def http_port(self) -> int:
        return self.http.port if self.http else 0

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop accepting; requests in flight finish (gRPC gets `timeout` seconds of grace)."""
        if self.grpc_server is not None:
            self.grpc_server.stop(grace=timeout).wait(timeout)
            self.grpc_server = None
        if self.http is not None:
            self.http.shutdown(timeout)
            self.http = None


def _bind_error(host: str, port: int) -> str | None:
    """Why the OS refuses to bind `host:port` (e.g. "Address already in use"), or None if it does not."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT is no reason
            sock.bind((host, port))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _grpc_abort(context: grpc.ServicerContext, st: WireStatus) -> None:
    status = status_pb2.Status(code=st.grpc.value[0], message=st.message)
    if st.retry_after is not None:
        delay = duration_pb2.Duration(seconds=int(st.retry_after), nanos=int(st.retry_after % 1 * 1e9))
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
    context.abort(st.grpc, st.message)


def new_factory() -> Factory:
    return Factory(kind=Kind.RECEIVER, type="otlp", config=OtlpReceiverConfig, create=OtlpReceiver,
                   signals=frozenset({"traces", "logs"}), stability="beta")
