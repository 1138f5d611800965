"""Per-signal OTLP codecs: how each signal's export request is decoded and its response encoded.

Receivers look signals up here, so both transports handle every signal the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from spanhouse.otlp.decode import Decoded, DecodeLimits, decode_traces_json, decode_traces_protobuf
from spanhouse.otlp.decode_logs import decode_logs_json, decode_logs_protobuf


@dataclass(frozen=True)
class SignalCodec:
    name: str
    http_path: str
    grpc_service: str
    decode_protobuf: Callable[[bytes, DecodeLimits], Decoded]
    decode_json: Callable[[bytes, DecodeLimits], Decoded]
    response_type: Any
    rejected_field: str

    def response(self, rejected: int = 0, message: str = "") -> Any:
        resp = self.response_type()
        if rejected or message:
            setattr(resp.partial_success, self.rejected_field, rejected)
            resp.partial_success.error_message = message
        return resp

    def encode_response(self, resp: Any, as_json: bool) -> bytes:
        if as_json:
            return json_format.MessageToJson(resp, indent=None).encode()
        return resp.SerializeToString()


TRACES = SignalCodec(
    name="traces",
    http_path="/v1/traces",
    grpc_service="opentelemetry.proto.collector.trace.v1.TraceService",
    decode_protobuf=decode_traces_protobuf,
    decode_json=decode_traces_json,
    response_type=trace_service_pb2.ExportTraceServiceResponse,
    rejected_field="rejected_spans",
)

LOGS = SignalCodec(
    name="logs",
    http_path="/v1/logs",
    grpc_service="opentelemetry.proto.collector.logs.v1.LogsService",
    decode_protobuf=decode_logs_protobuf,
    decode_json=decode_logs_json,
    response_type=logs_service_pb2.ExportLogsServiceResponse,
    rejected_field="rejected_log_records",
)

SIGNALS: dict[str, SignalCodec] = {TRACES.name: TRACES, LOGS.name: LOGS}
