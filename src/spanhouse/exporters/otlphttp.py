"""`otlphttp` exporter: forwards processed spans over OTLP/HTTP (protobuf or JSON) to any OTLP backend,
with the Collector's keys: `endpoint` (the base URL; `/v1/traces` is appended), `traces_endpoint`
(the full URL, wins), `encoding`, `compression`, `headers`, `tls`, `timeout`, `sending_queue`,
`retry_on_failure`.

Answers map to the OTLP/HTTP rules: 429, 502, 503 and 504 (and connection failures) are retried,
honouring `Retry-After`; every other 4xx/5xx is permanent. A `partial_success` is logged, not retried.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import orjson
import urllib3
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from spanhouse.batch import SpanBatch
from spanhouse.component import ConfigIssue, Factory, Kind
from spanhouse.errors import PermanentError, RetryableError
from spanhouse.exporters.helper import ExporterHelperSettings, ForwardQueueSettings, HelperExporter, Pusher
from spanhouse.exporters.otlpcommon import ClientTLSSettings, log_partial_success, retry_after_seconds
from spanhouse.exporters.otlpvalid import ValidOtlp
from spanhouse.otlp.encode import encode_traces_json, encode_traces_protobuf

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
_CONTENT_TYPES = {"proto": "application/x-protobuf", "json": "application/json"}
_COMPRESSORS = {"gzip": lambda b: gzip.compress(b, 6), "deflate": zlib.compress, "none": None, "": None}


@dataclass(frozen=True, kw_only=True)
class OtlpHttpExporterConfig(ExporterHelperSettings):
    sending_queue: ForwardQueueSettings = field(default_factory=ForwardQueueSettings)
    endpoint: str = ""
    """Base URL of the OTLP/HTTP receiver, e.g. http://collector:4318; `/v1/traces` is appended."""
    traces_endpoint: str = ""
    """Full URL for traces; overrides `endpoint`."""
    encoding: str = "proto"
    """proto or json."""
    compression: str = "gzip"
    """gzip, deflate or none."""
    headers: dict[str, str] = field(default_factory=dict)
    tls: ClientTLSSettings = field(default_factory=ClientTLSSettings)

    def validate(self) -> Iterator[ConfigIssue]:
        yield from ExporterHelperSettings.validate(self)
        if not self.endpoint and not self.traces_endpoint:
            yield ConfigIssue("endpoint", "required: the receiver's base URL, e.g. http://collector:4318")
        for name in ("endpoint", "traces_endpoint"):
            value = getattr(self, name)
            try:
                url = urlparse(value)
                ok = url.scheme in ("http", "https") and bool(url.hostname) and (url.port or 1) > 0
            except ValueError:  # a malformed host ("http://[::1") or port
                ok = False
            if value and not ok:
                yield ConfigIssue(name, f"{value!r} is not an http(s):// URL")
        if self.encoding not in _CONTENT_TYPES:
            yield ConfigIssue("encoding", f"{self.encoding!r} is not one of proto, json")
        if self.compression not in _COMPRESSORS:
            yield ConfigIssue("compression", f"{self.compression!r} is not one of gzip, deflate, none")

    @property
    def url(self) -> str:
        return self.traces_endpoint or self.endpoint.rstrip("/") + "/v1/traces"


def classify_http_response(status: int, body: bytes, headers: Any, what: str) -> Exception:
    """RetryableError (with Retry-After) for 429/502/503/504, else PermanentError, with the peer's message."""
    message = _status_message(body, headers.get("Content-Type", "") if headers else "")
    if status in RETRYABLE_STATUSES:
        delay = retry_after_seconds(headers.get("Retry-After") if headers else None)
        return RetryableError(f"{what}: the peer answered HTTP {status}: {message}", retry_after=delay)
    return PermanentError(f"{what}: the peer refused the data with HTTP {status}: {message}")


def _status_message(body: bytes, content_type: str) -> str:
    """The `google.rpc.Status` message of an error body, or the start of the body as text."""
    if not body:
        return "(empty body)"
    try:
        if "json" in content_type:
            return str(orjson.loads(body).get("message")) or body[:200].decode("utf-8", "replace")
        if "protobuf" in content_type:
            return status_pb2.Status.FromString(body).message or "(no message)"
    except Exception:
        pass
    return body[:200].decode("utf-8", "replace").strip()


class OtlpHttpExporter(Pusher):
    """Posts each batch as one `ExportTraceServiceRequest` over a keep-alive connection pool."""

    def __init__(self, config: OtlpHttpExporterConfig, name: str = "otlphttp"):
        self.config = config
        self.name = name
        self.pool: urllib3.PoolManager | None = None
        self.headers = {"Content-Type": _CONTENT_TYPES[config.encoding], "User-Agent": "spanhouse",
                        **config.headers}
        if _COMPRESSORS[config.compression] is not None:
            self.headers["Content-Encoding"] = config.compression
        self.valid = ValidOtlp(name)

    def start(self, host: Any) -> None:
        kwargs: dict[str, Any] = {"maxsize": 4, "retries": False}
        if self.config.url.startswith("https://"):
            kwargs["ssl_context"] = self.config.tls.ssl_context()
            if self.config.tls.server_name_override:
                kwargs["server_hostname"] = self.config.tls.server_name_override
        self.pool = urllib3.PoolManager(**kwargs)
        log.info("exporter %s: forwarding spans over OTLP/HTTP to %s", self.name, self.config.url)

    def _serialize(self, batch: SpanBatch) -> bytes:
        if self.config.encoding == "json":
            return orjson.dumps(encode_traces_json(batch))
        return encode_traces_protobuf(batch)

    def push(self, batch: SpanBatch) -> None:
        if not len(batch):
            return
        if self.pool is None:
            raise RetryableError(f"exporter {self.name} is not started")
        batch, body = self.valid.encode(batch, self._serialize)
        if body is None:
            return
        compress = _COMPRESSORS[self.config.compression]
        url = self.config.url
        what = f"export of {len(batch)} spans to {url}"
        try:
            resp = self.pool.request("POST", url, body=compress(body) if compress else body, headers=self.headers,
                                     timeout=urllib3.Timeout(total=self.config.timeout.seconds),
                                     redirect=False, preload_content=True)
        except urllib3.exceptions.HTTPError as exc:
            raise RetryableError(f"{what}: {type(exc).__name__}: {exc}") from None
        if not 200 <= resp.status < 300:  # any 2xx is a success, as for the Collector's otlphttp exporter
            raise classify_http_response(resp.status, resp.data, resp.headers, what)
        self._partial_success(resp.data, resp.headers.get("Content-Type", ""))

    def _partial_success(self, body: bytes, content_type: str) -> None:
        if not body:
            return
        try:
            if "json" in content_type:
                resp = json_format.Parse(body, ExportTraceServiceResponse(), ignore_unknown_fields=True)
            else:
                resp = ExportTraceServiceResponse.FromString(body)
        except Exception:
            return  # a success answer we cannot read is still a success
        if resp.HasField("partial_success"):
            log_partial_success(self.name, resp.partial_success.rejected_spans, resp.partial_success.error_message)

    def shutdown(self, timeout: float = 10.0) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            pool.clear()


def new_factory() -> Factory:
    return Factory(kind=Kind.EXPORTER, type="otlphttp", config=OtlpHttpExporterConfig,
                   create=lambda settings, cfg: HelperExporter(OtlpHttpExporter(cfg, str(settings.id)), cfg,
                                                               str(settings.id)),
                   stability="development")
