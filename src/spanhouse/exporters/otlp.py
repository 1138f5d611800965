"""`otlp` exporter: forwards processed spans over OTLP/gRPC to any OTLP backend (Jaeger, Tempo, an
OpenTelemetry Collector, an APM vendor's endpoint), with the Collector's keys: `endpoint`, `tls`,
`headers`, `compression`, `timeout`, `sending_queue`, `retry_on_failure`.

Answers of the peer map to the OTLP retry rules: UNAVAILABLE, CANCELLED, DEADLINE_EXCEEDED, ABORTED,
OUT_OF_RANGE, DATA_LOSS (and RESOURCE_EXHAUSTED carrying RetryInfo) are retried, honouring the peer's
RetryInfo delay; every other code is permanent. A `partial_success` is logged and not retried.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from spanhouse.batch import SpanBatch
from spanhouse.component import ConfigIssue, Factory, Kind
from spanhouse.errors import PermanentError, RetryableError
from spanhouse.exporters.helper import ExporterHelperSettings, ForwardQueueSettings, HelperExporter, Pusher
from spanhouse.exporters.otlpcommon import ClientTLSSettings, log_partial_success
from spanhouse.exporters.otlpvalid import ValidOtlp
from spanhouse.otlp.encode import encode_traces_protobuf

log = logging.getLogger(__name__)

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_RETRYABLE = frozenset({
    grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED,
    grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS,
})
_COMPRESSION = {"gzip": grpc.Compression.Gzip, "none": grpc.Compression.NoCompression,
                "": grpc.Compression.NoCompression}


@dataclass(frozen=True, kw_only=True)
class OtlpExporterConfig(ExporterHelperSettings):
    sending_queue: ForwardQueueSettings = field(default_factory=ForwardQueueSettings)
    endpoint: str = ""
    """`host:port` of the OTLP/gRPC peer; `https://host:port` forces TLS, `http://host:port` plaintext."""
    tls: ClientTLSSettings = field(default_factory=ClientTLSSettings)
    headers: dict[str, str] = field(default_factory=dict)
    """Sent as gRPC metadata with every export, e.g. an API key."""
    compression: str = "gzip"
    """gzip or none."""
    balancer_name: str = ""

    def validate(self) -> Iterator[ConfigIssue]:
        yield from ExporterHelperSettings.validate(self)
        if not self.endpoint:
            yield ConfigIssue("endpoint", "required: host:port of the OTLP/gRPC receiver, e.g. jaeger:4317")
        elif ":" not in self.target:
            yield ConfigIssue("endpoint", f"{self.endpoint!r} has no port; write host:port such as jaeger:4317")
        if self.compression not in _COMPRESSION:
            yield ConfigIssue("compression", f"{self.compression!r} is not one of gzip, none")
        for key in self.headers:
            if key != key.lower() or not key:
                yield ConfigIssue(f"headers::{key}", "gRPC metadata keys must be lowercase")
        if self.tls.insecure_skip_verify and not self.tls.insecure:
            # grpcio offers no way to skip verification; accepting the key would fail every export later
            yield ConfigIssue("tls::insecure_skip_verify", "not available over gRPC: give the peer's CA "
                                                           "certificate in tls::ca_file, or use the otlphttp exporter")

    @property
    def target(self) -> str:
        return self.endpoint.split("://", 1)[-1].rstrip("/")

    @property
    def secure(self) -> bool:
        if self.endpoint.startswith("https://"):
            return True
        if self.endpoint.startswith("http://"):
            return False
        return not self.tls.insecure


def classify_grpc_error(err: grpc.RpcError, what: str) -> Exception:
    """RetryableError (with the peer's RetryInfo delay) or PermanentError, per the OTLP spec."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = (err.details() if hasattr(err, "details") else "") or str(code)
    delay = _retry_delay(err)
    if code in _RETRYABLE or (code is grpc.StatusCode.RESOURCE_EXHAUSTED and delay is not None):
        return RetryableError(f"{what}: the peer answered {code.name}: {details}", retry_after=delay)
    return PermanentError(f"{what}: the peer refused the data with {code.name}: {details}")


def _retry_delay(err: grpc.RpcError) -> float | None:
    trailers = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    for key, value in trailers or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


class OtlpGrpcExporter(Pusher):
    """Sends each batch as one `ExportTraceServiceRequest` on a long-lived gRPC channel."""

    def __init__(self, config: OtlpExporterConfig, name: str = "otlp"):
        self.config = config
        self.name = name
        self.channel: grpc.Channel | None = None
        self._call: Any = None
        self._metadata = tuple(config.headers.items())
        self.valid = ValidOtlp(name)

    def start(self, host: Any) -> None:
        cfg = self.config
        options = []
        if cfg.tls.server_name_override:
            options.append(("grpc.ssl_target_name_override", cfg.tls.server_name_override))
        if cfg.balancer_name:
            options.append(("grpc.lb_policy_name", cfg.balancer_name))
        compression = _COMPRESSION[cfg.compression]
        if cfg.secure:
            creds = grpc.ssl_channel_credentials(root_certificates=cfg.tls.read("ca_file"),
                                                 private_key=cfg.tls.read("key_file"),
                                                 certificate_chain=cfg.tls.read("cert_file"))
            self.channel = grpc.secure_channel(cfg.target, creds, options=options, compression=compression)
        else:
            self.channel = grpc.insecure_channel(cfg.target, options=options, compression=compression)
        self._call = self.channel.unary_unary(EXPORT_METHOD, request_serializer=None,
                                              response_deserializer=ExportTraceServiceResponse.FromString)
        log.info("exporter %s: forwarding spans over OTLP/gRPC to %s", self.name, cfg.target)

    def push(self, batch: SpanBatch) -> None:
        if not len(batch):
            return
        if self._call is None:
            raise RetryableError(f"exporter {self.name} is not started")
        batch, body = self.valid.encode(batch, encode_traces_protobuf)
        if body is None:
            return
        what = f"export of {len(batch)} spans to {self.config.target}"
        try:
            resp = self._call(body, timeout=self.config.timeout.seconds, metadata=self._metadata or None)
        except grpc.RpcError as err:
            raise classify_grpc_error(err, what) from None
        if resp.HasField("partial_success"):
            log_partial_success(self.name, resp.partial_success.rejected_spans, resp.partial_success.error_message)

    def shutdown(self, timeout: float = 10.0) -> None:
        channel, self.channel, self._call = self.channel, None, None
        if channel is not None:
            channel.close()


def new_factory() -> Factory:
    return Factory(kind=Kind.EXPORTER, type="otlp", config=OtlpExporterConfig,
                   create=lambda settings, cfg: HelperExporter(OtlpGrpcExporter(cfg, str(settings.id)), cfg,
                                                               str(settings.id)),
                   stability="development")
