"""Sending examples to a running spanhouse as `spanhouse.dataset.example` OTLP log records, with the
OpenTelemetry SDK's own exporters (so OTEL_EXPORTER_OTLP_HEADERS carries a bearer token, as for any app)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk._logs.export import LogRecordExportResult as ExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from spanhouse import semconv as sc
from spanhouse.cli._otlp import Refusals, signal_url
from spanhouse.datasets.examples import Example
from spanhouse.errors import SpanhouseError

SERVICE_NAME = "spanhouse-dataset"
"""The `service.name` of the records the CLI sends."""
CHUNK = 256


def _context(example: Example) -> Any:
    if not example.trace_id:
        return None
    span = SpanContext(int(example.trace_id, 16), int(example.span_id, 16), True, TraceFlags(1))
    return set_span_in_context(NonRecordingSpan(span))


def records(dataset: str, examples: Sequence[Example], *, deleted: bool = False, environment: str = "",
            attributes: Sequence[Mapping[str, str]] = ()) -> list[Any]:
    """The log records for `examples`, one each, timed now in order (the newest record of an id wins).
    `environment` (of the resource) or a record's own `deployment.environment.name` in `attributes[i]`
    chooses the redaction policy the pipeline applies. The tenant is left to the receiver, which stamps
    the token's when auth is on."""
    resource = {sc.SERVICE_NAME: SERVICE_NAME}
    if environment:
        resource[sc.DEPLOYMENT_ENVIRONMENT_NAME] = environment
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create(resource))
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger(__name__)
    start = time.time_ns()
    for i, example in enumerate(examples):
        attrs: dict[str, Any] = {**(attributes[i] if i < len(attributes) else {}),
                                 sc.SPANHOUSE_DATASET_NAME: dataset, sc.SPANHOUSE_DATASET_EXAMPLE_ID: example.id}
        if deleted:
            attrs[sc.SPANHOUSE_DATASET_EXAMPLE_DELETED] = True
        body = {} if deleted else {"input": example.input, "expected_output": example.expected_output,
                                   "metadata": dict(example.metadata)}
        logger.emit(timestamp=start + i, event_name=sc.EVENT_SPANHOUSE_DATASET_EXAMPLE, body=body,
                    attributes=attrs, context=_context(example))
    provider.shutdown()
    return list(memory.get_finished_logs())


def exporter(endpoint: str, protocol: str, refusals: Refusals) -> Any:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcExporter

        return GrpcExporter(endpoint=endpoint.split("://")[-1], insecure=True, timeout=10)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpExporter

    return HttpExporter(endpoint=signal_url(endpoint, "logs"), timeout=10, session=refusals.session)


def send(batch: Sequence[Any], endpoint: str, protocol: str) -> None:
    """Export `batch` in requests of `CHUNK` records; raises `SpanhouseError` saying what the endpoint
    answered and how many records it had already taken (sending again is harmless: same ids)."""
    refusals = Refusals("`spanhouse dataset`", "logs")
    out = exporter(endpoint, protocol, refusals)
    sent = 0
    try:
        for i in range(0, len(batch), CHUNK):
            chunk = batch[i:i + CHUNK]
            if out.export(chunk) is not ExportResult.SUCCESS:
                why = refusals.why() or "; is `spanhouse serve` running there, with a logs pipeline?"
                done = f" ({sent} of {len(batch)} were taken before; sending again is harmless)" if sent else ""
                raise SpanhouseError(f"the OTLP exporter could not deliver dataset examples to {endpoint} over "
                                     f"{protocol}{why}{done}")
            sent += len(chunk)
    finally:
        out.shutdown()
