"""Encode a `LogBatch` as an OTLP `ExportLogsServiceRequest`: protobuf bytes or OTLP/JSON.

The logs counterpart of `spanhouse.otlp.encode`, sharing its grouping and value encoding: records are
grouped back under their resource and scope (first-seen order), bodies and attributes keep their
types, and the JSON form follows the OTLP/JSON rules (hex ids, integer enums, 64-bit integers as strings).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from spanhouse.logbatch import LogBatch
from spanhouse.otlp.encode import _compact, _groups, _id_bytes, _set_attributes, _set_value, json_attributes, json_value


def to_logs_request(batch: LogBatch) -> ExportLogsServiceRequest:
    """The batch as an `ExportLogsServiceRequest` message."""
    req = ExportLogsServiceRequest()
    for r, scopes in _groups(batch):
        resource = batch.resources[r]
        rl = req.resource_logs.add()
        rl.schema_url = resource.schema_url
        _set_attributes(rl.resource.attributes, resource.attributes)
        rl.resource.dropped_attributes_count = resource.dropped_attributes_count
        for s, records in scopes:
            scope = batch.scopes[s]
            sl = rl.scope_logs.add()
            sl.schema_url = scope.schema_url
            sl.scope.name = scope.name
            sl.scope.version = scope.version
            _set_attributes(sl.scope.attributes, scope.attributes)
            sl.scope.dropped_attributes_count = scope.dropped_attributes_count
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
    resource_logs = []
    for r, scopes in _groups(batch):
        resource = batch.resources[r]
        scope_logs = []
        for s, records in scopes:
            scope = batch.scopes[s]
            scope_logs.append(_compact({
                "scope": _compact({"name": scope.name, "version": scope.version,
                                   "attributes": json_attributes(scope.attributes),
                                   "droppedAttributesCount": scope.dropped_attributes_count}),
                "logRecords": [_json_record(batch, i) for i in records],
                "schemaUrl": scope.schema_url,
            }))
        resource_logs.append(_compact({
            "resource": _compact({"attributes": json_attributes(resource.attributes),
                                  "droppedAttributesCount": resource.dropped_attributes_count}),
            "scopeLogs": scope_logs,
            "schemaUrl": resource.schema_url,
        }))
    return {"resourceLogs": resource_logs}
