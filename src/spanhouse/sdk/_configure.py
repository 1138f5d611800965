"""`configure()`: one call that sends an application's spans to spanhouse, redacted in-process."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from spanhouse import semconv as sc
from spanhouse.redact.engine import Redactor
from spanhouse.redact.keys import KEY_ENV
from spanhouse.redact.settings import Policy, RedactionSettings
from spanhouse.sdk._context import MarkingSpanProcessor
from spanhouse.sdk._exporter import RedactingSpanExporter

log = logging.getLogger(__name__)

PROTOCOLS = ("http/protobuf", "grpc")
DEFAULT_ENDPOINTS = {"http/protobuf": "http://127.0.0.1:4318", "grpc": "http://127.0.0.1:4317"}
# the OpenTelemetry SDKs' variables: the signal-specific one wins over the base one
ENDPOINT_ENV, TRACES_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
PROTOCOL_ENV, TRACES_PROTOCOL_ENV = "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
TRACES_PATH = "v1/traces"


class _BoundedBatchSpanProcessor(BatchSpanProcessor):
    """The SDK's batch processor (bounded queue, drops when full, exports on its own thread) with a
    bounded shutdown, so an application exits on time even when spanhouse does not answer, and a
    `force_flush` that keeps its timeout (the SDK's ignores it and reports success): it returns False
    when the flush has not finished in time, and the flush goes on in the background; a flush asked
    for while one is still running waits for that one instead of starting another."""

    def __init__(self, exporter: SpanExporter, shutdown_timeout: float, **kwargs: Any):
        super().__init__(exporter, **kwargs)
        self._shutdown_timeout_ms = shutdown_timeout * 1000
        self._flush_lock = threading.Lock()
        self._flush: tuple[threading.Thread, list[bool]] | None = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        with self._flush_lock:
            if self._flush is None or not self._flush[0].is_alive():
                result: list[bool] = []
                flush = super().force_flush
                thread = threading.Thread(target=lambda: result.append(bool(flush(timeout_millis))),
                                          name="spanhouse-sdk-flush", daemon=True)
                thread.start()
                self._flush = (thread, result)
            thread, result = self._flush
        thread.join(max(timeout_millis, 0) / 1000)
        return not thread.is_alive() and result == [True]

    def shutdown(self) -> None:
        inner = getattr(self, "_batch_processor", None)  # the SDK's worker; its shutdown takes a bound
        if inner is not None and hasattr(inner, "shutdown"):
            inner.shutdown(timeout_millis=self._shutdown_timeout_ms)
        else:
            super().shutdown()


def configure(
    endpoint: str | None = None,
    *,
    policy: str | Policy | None = "redacted",
    service_name: str | None = None,
    environment: str | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    hash_key: str | None = None,
    settings: RedactionSettings | None = None,
    timeout: float = 5.0,
    max_queue_size: int = 2048,
    max_export_batch_size: int = 512,
    schedule_delay: float = 1.0,
    shutdown_timeout: float = 2.0,
    set_global: bool = True,
) -> TracerProvider:
    """Set up a `TracerProvider` that redacts spans in-process and exports them to spanhouse.

    Where to: `endpoint` (a base URL such as http://127.0.0.1:4318, `/v1/traces` appended over HTTP
    unless it is there; for gRPC `host:port` or a URL) and `protocol` ("http/protobuf" or "grpc") when
    given; otherwise the OpenTelemetry SDKs' variables, with their rules: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
    is used as it is, OTEL_EXPORTER_OTLP_ENDPOINT is a base URL to which HTTP appends `v1/traces`, and
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL choose the protocol; failing those,
    http://127.0.0.1:4318 over http/protobuf (grpc: http://127.0.0.1:4317). Headers come from `headers`,
    else from OTEL_EXPORTER_OTLP_(TRACES_)HEADERS, as in the SDK's exporters.

    `policy` ("full", "redacted", "metadata_only") applies to every span; None chooses per span with
    the rules of `settings` (by default: production → redacted, staging/development → full, anything
    else → redacted). `hash_key` defaults to the `SPANHOUSE_REDACTION_KEY` environment variable; use
    the same key as the server so tokens made in-app and in the pipeline match.

    Never slows the application down: spans go into a bounded queue (`max_queue_size`; when it is
    full new spans are dropped and the SDK logs it) and are redacted and exported on a background
    thread, each export bounded by `timeout` seconds, shutdown by `shutdown_timeout`.
    Returns the provider (also installed as the global one when `set_global`)."""
    endpoint, protocol = resolve_endpoint(endpoint, protocol)
    if policy is not None:
        try:
            policy = Policy(policy)
        except ValueError:
            raise ValueError(
                f"policy must be one of full, redacted, metadata_only or None, got {policy!r}"
            ) from None
    for name, value in (
        ("timeout", timeout),
        ("schedule_delay", schedule_delay),
        ("shutdown_timeout", shutdown_timeout),
    ):
        if not value > 0:
            raise ValueError(f"{name} must be greater than 0 seconds, got {value!r}")
    if max_queue_size < 1 or not 1 <= max_export_batch_size <= max_queue_size:
        raise ValueError("need max_queue_size >= max_export_batch_size >= 1")

    settings = settings or RedactionSettings()
    key = hash_key if hash_key is not None else (settings.hash_key or os.environ.get(KEY_ENV, ""))
    if key != settings.hash_key:
        settings = dataclasses.replace(settings, hash_key=key)
    problems = [f"{i.field}: {i.message}" if i.field else i.message for i in settings.validate()]
    if problems:
        raise ValueError("invalid redaction settings: " + "; ".join(problems))
    redactor = Redactor(settings, owner="spanhouse.sdk")

    attrs = dict(resource_attributes or {})
    if service_name:
        attrs[sc.SERVICE_NAME] = service_name
    if environment:
        attrs[sc.DEPLOYMENT_ENVIRONMENT_NAME] = environment
    provider = TracerProvider(resource=Resource.create(attrs))
    provider.add_span_processor(MarkingSpanProcessor())
    exporter = RedactingSpanExporter(_otlp_exporter(endpoint, protocol, headers, timeout), redactor, policy)
    provider.add_span_processor(
        _BoundedBatchSpanProcessor(
            exporter,
            shutdown_timeout,
            max_queue_size=max_queue_size,
            max_export_batch_size=max_export_batch_size,
            schedule_delay_millis=schedule_delay * 1000,
            export_timeout_millis=timeout * 1000,
        )
    )
    if set_global:
        trace.set_tracer_provider(provider)
    return provider


def resolve_endpoint(
    endpoint: str | None, protocol: str | None, env: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """(where spans go, protocol): the arguments when given, else the OpenTelemetry SDKs' variables
    (see `configure`). Over HTTP the result is the full traces URL. Raises ValueError naming a bad
    protocol and where it came from."""
    env = os.environ if env is None else env
    source = "protocol"
    if protocol is None:
        for name in (TRACES_PROTOCOL_ENV, PROTOCOL_ENV):
            if env.get(name, "").strip():
                protocol, source = env[name].strip(), name
                break
        else:
            protocol = "http/protobuf"
    if protocol not in PROTOCOLS:
        raise ValueError(f"{source} must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    http = protocol == "http/protobuf"
    if endpoint is not None:
        url = endpoint.rstrip("/")
        return (url if url.endswith("/" + TRACES_PATH) else f"{url}/{TRACES_PATH}") if http else endpoint, protocol
    if env.get(TRACES_ENDPOINT_ENV, "").strip():
        return env[TRACES_ENDPOINT_ENV].strip(), protocol  # the signal's own URL: used as it is
    base = env.get(ENDPOINT_ENV, "").strip() or DEFAULT_ENDPOINTS[protocol]
    # a base URL: HTTP sends each signal to its path relative to it, gRPC to the address itself
    return (base.rstrip("/") + "/" + TRACES_PATH) if http else base, protocol


def _otlp_exporter(
    endpoint: str, protocol: str, headers: Mapping[str, str] | None, timeout: float
) -> SpanExporter:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        insecure = not endpoint.startswith("https://")
        return GrpcExporter(
            endpoint=endpoint, insecure=insecure, headers=dict(headers or {}), timeout=timeout
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter(endpoint=endpoint, headers=dict(headers or {}), timeout=timeout)
