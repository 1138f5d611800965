"""Encode a `LogBatch` as an OTLP `ExportLogsServiceRequest`: protobuf bytes or OTLP/JSON.

The logs counterpart of `spanhouse.otlp.encode`, sharing its grouping and value encoding: records are
grouped back under their resource and scope (first-seen order), bodies and attributes keep their
types, and the JSON form follows the OTLP/JSON rules (hex ids, integer enums, 64-bit integers as strings).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from spanhouse.logbatch import LogBatch
from spanhouse.otlp.encode import (
    _compact,
    _groups,
    _id_bytes,
    _set_attributes,
    _set_value,
    json_attributes,
    json_request,
    json_value,
    set_resource,
    set_scope,
)


def to_logs_request(batch: LogBatch) -> ExportLogsServiceRequest:
    """The batch as an `ExportLogsServiceRequest` message."""
    req = ExportLogsServiceRequest()
    for r, scopes in _groups(batch):
        resource = batch.resources[r]
        rl = req.resource_logs.add()
        set_resource(rl, resource)
        for s, records in scopes:
            sl = rl.scope_logs.add()
            set_scope(sl, batch.scopes[s])
            for i in records:
                lr = sl.log_records.add()
                lr.time_unix_nano = batch.time_unix_nano[i]
                lr.observed_time_unix_nano = batch.observed_time_unix_nano[i]
                lr.severity_number = batch.severity_number[i]
                lr.severity_text = batch.severity_text[i]
                if batch.body[i] is not None:
                    _set_value(lr.body, batch.body[i])
                _set_attributes(lr.attributes, batch.attributes[i])
                lr.dropped_attributes_count = batch.dropped_attributes_count[i]
                lr.flags = batch.flags[i]
                lr.trace_id = _id_bytes(batch.trace_id[i])
                lr.span_id = _id_bytes(batch.span_id[i])
                lr.event_name = batch.event_name[i]
    return req


def encode_logs_protobuf(batch: LogBatch) -> bytes:
    """The batch as a serialized `ExportLogsServiceRequest`."""
    return to_logs_request(batch).SerializeToString()


def _json_record(batch: LogBatch, i: int) -> dict[str, Any]:
    record = _compact({
        "timeUnixNano": str(batch.time_unix_nano[i]),
        "observedTimeUnixNano": str(batch.observed_time_unix_nano[i]),
        "severityNumber": batch.severity_number[i],
        "severityText": batch.severity_text[i],
        "attributes": json_attributes(batch.attributes[i]),
        "droppedAttributesCount": batch.dropped_attributes_count[i],
        "flags": batch.flags[i],
        "traceId": batch.trace_id[i],
        "spanId": batch.span_id[i],
        "eventName": batch.event_name[i],
    })
    if batch.body[i] is not None:
        record["body"] = json_value(batch.body[i])
    return record


def encode_logs_json(batch: LogBatch) -> dict[str, Any]:
    """The batch as an OTLP/JSON `ExportLogsServiceRequest` object (`{"resourceLogs": [...]}`)."""
    return json_request(batch, ("resourceLogs", "scopeLogs", "logRecords"), _json_record)
