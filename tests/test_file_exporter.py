"""The `file` exporter: spans and log records from the real SDK exporters, received over 127.0.0.1, are
written as OTLP/JSON lines (or length-prefixed protobuf) that opentelemetry-proto parses back into the
requests the SDK sent, field for field."""

from __future__ import annotations

import base64
import os
import shutil
import stat
import struct
import urllib.error
import urllib.request

import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from support import sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc
from spanhouse.config import parse_config
from spanhouse.errors import ConfigError

RESOURCE = {sc.SERVICE_NAME: "file-app", sc.SERVICE_VERSION: "2.0"}


def typed_spans() -> list:
    def build(tracer):
        with tracer.start_as_current_span("invoke_agent planner", kind=SpanKind.SERVER) as root:
            with tracer.start_as_current_span(
                    "chat gpt-4o", kind=SpanKind.CLIENT,
                    links=[Link(root.get_span_context(), {"link.why": "planned", "link.n": 2})],
                    attributes={sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
                                sc.GEN_AI_USAGE_INPUT_TOKENS: 1234, sc.GEN_AI_REQUEST_TEMPERATURE: 0.25,
                                "app.flag": True, "app.floats": [1.5, 2.0], "app.ints": [1, -9223372036854775808],
                                "app.tags": ["a", "b"]}) as span:
                span.add_event(sc.EVENT_GEN_AI_EVALUATION_RESULT, {sc.GEN_AI_EVALUATION_NAME: "relevance",
                                                                   sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.75})
                span.set_status(Status(StatusCode.ERROR, "upstream timeout"))

    return sdk_spans(build, RESOURCE)


def sdk_log_records() -> InMemoryLogRecordExporter:
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create(RESOURCE))
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("tests.file", "0.3")
    logger.emit(event_name=sc.EVENT_GEN_AI_EVALUATION_RESULT, body={"score": 0.5, "labels": ["ok", 1, 2.5]},
                attributes={sc.GEN_AI_EVALUATION_NAME: "groundedness", "n": 3})
    logger.emit(body="plain text", severity_text="WARN", attributes={"bytes": b"\x00\xff"})
    provider.shutdown()
    return memory


def start_with_file(file_cfg: dict, logs: bool = True):
    db = unique_database("file")
    pipeline = {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["clickhouse", "file"]}
    pipelines = {"traces": pipeline, **({"logs": dict(pipeline)} if logs else {})}
    return start_service(service_config(db, extensions={}, exporters={"file": file_cfg}, pipelines=pipelines), db)


def send_spans(svc, spans) -> None:
    exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces", timeout=10)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()


_IDS = frozenset({"traceId", "spanId", "parentSpanId"})


def _ids_as_base64(node):
    """OTLP/JSON writes ids in hex where protobuf's JSON mapping expects base64: convert before parsing."""
    if isinstance(node, dict):
        return {k: base64.b64encode(bytes.fromhex(v)).decode() if k in _IDS else _ids_as_base64(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_ids_as_base64(x) for x in node]
    return node


def read_json_lines(path: str) -> tuple[list, list]:
    """The requests of an OTLP/JSON lines file, parsed by opentelemetry-proto's json_format."""
    traces, logs = [], []
    with open(path, "rb") as f:
        for line in f:
            assert line.endswith(b"\n")
            doc = _ids_as_base64(orjson.loads(line))
            if "resourceSpans" in doc:
                traces.append(json_format.ParseDict(doc, ExportTraceServiceRequest()))
            else:
                logs.append(json_format.ParseDict(doc, ExportLogsServiceRequest()))
    return traces, logs


def spans_of(requests) -> dict:
    return {(s.span_id, s.name): (rs.resource, ss.scope, s) for r in requests for rs in r.resource_spans
            for ss in rs.scope_spans for s in ss.spans}


def records_of(requests) -> list:
    found = [(rl.resource, sl.scope, lr) for r in requests for rl in r.resource_logs for sl in rl.scope_logs
             for lr in sl.log_records]
    return sorted(found, key=lambda x: x[2].time_unix_nano)


def test_what_arrives_is_written_as_otlp_json_lines_that_parse_into_the_sent_requests(tmp_path):
    path = str(tmp_path / "out" / "telemetry.jsonl")
    spans = typed_spans()
    svc = start_with_file({"path": path})
    try:
        send_spans(svc, spans)
        memory = sdk_log_records()
        exporter = OTLPLogExporter(endpoint=svc.http_url + "/v1/logs", timeout=10)
        assert exporter.export(memory.get_finished_logs()).name == "SUCCESS"
        exporter.shutdown()
    finally:
        svc.stop()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    traces, written_logs = read_json_lines(path)
    got, sent = spans_of(traces), spans_of([encode_spans(spans)])
    assert set(got) == set(sent) and len(got) == 2
    for key, (resource, scope, span) in sent.items():
        assert got[key] == (resource, scope, span), key  # ids, times, kind, status, events, links, typed values
    sent_logs = records_of([encode_logs(memory.get_finished_logs())])
    assert records_of(written_logs) == sent_logs and len(sent_logs) == 2


def test_proto_format_is_length_prefixed_requests_and_append_keeps_what_was_there(tmp_path):
    path = str(tmp_path / "telemetry.binpb")
    with open(path, "wb") as f:
        f.write(b"")
    spans = typed_spans()
    for _ in range(2):  # the second start appends
        svc = start_with_file({"path": path, "format": "proto", "append": True}, logs=False)
        try:
            send_spans(svc, spans)
        finally:
            svc.stop()
    data, requests = open(path, "rb").read(), []
    while data:
        (n,) = struct.unpack(">I", data[:4])
        requests.append(ExportTraceServiceRequest.FromString(data[4:4 + n]))
        data = data[4 + n:]
    assert len(requests) == 2
    assert spans_of(requests[:1]) == spans_of(requests[1:]) == spans_of([encode_spans(spans)])


def test_without_append_a_restart_empties_the_file(tmp_path):
    path = str(tmp_path / "t.jsonl")
    for _ in range(2):
        svc = start_with_file({"path": path}, logs=False)
        try:
            send_spans(svc, typed_spans())
        finally:
            svc.stop()
    assert len(read_json_lines(path)[0]) == 1


def test_rotation_keeps_max_backups_whole_files(tmp_path):
    path = str(tmp_path / "big.jsonl")
    svc = start_with_file({"path": path, "rotation": {"max_megabytes": 1, "max_backups": 2}}, logs=False)

    def build(tracer):
        tracer.start_span("big", attributes={"blob": "x" * 400_000}).end()

    try:
        for _ in range(10):  # 4 MB in 10 requests: files of 2 requests, the oldest removed
            send_spans(svc, sdk_spans(build, RESOURCE))
    finally:
        svc.stop()
    names = sorted(os.listdir(tmp_path))
    assert len(names) == 3 and "big.jsonl" in names, names
    for name in names:
        assert os.path.getsize(tmp_path / name) <= 1 << 20
        traces, _ = read_json_lines(str(tmp_path / name))
        assert traces and all(len(spans_of([t])) == 1 for t in traces)


def test_a_write_that_fails_is_a_clear_error_to_the_client_and_nothing_partial_is_kept(tmp_path):
    directory = tmp_path / "gone"
    path = str(directory / "t.jsonl")
    svc = start_with_file({"path": path}, logs=False)
    body = orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "s",
        "startTimeUnixNano": "1760000000000000000", "endTimeUnixNano": "1760000000100000000"}]}]}]})
    try:
        shutil.rmtree(directory)
        req = urllib.request.Request(svc.http_url + "/v1/traces", data=body,
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        message = err.value.read().decode()
        assert err.value.code == 503
        assert "exporter file: cannot write 1 traces records to " + path in message
        assert "directory no longer exists" in message
        os.mkdir(directory)  # back again: a new file is written
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
    finally:
        svc.stop()
    assert len(read_json_lines(path)[0]) == 1


@pytest.mark.parametrize("cfg, fragment", [
    ({}, "exporters::file::path: required"),
    ({"path": "x.jsonl", "format": "yaml"}, "exporters::file::format: 'yaml' is not one of json, proto"),
    ({"path": "x.jsonl", "rotation": {"max_megabytes": 0}}, "exporters::file::rotation::max_megabytes"),
    ({"path": "x.jsonl", "flush_interval": "0"}, "exporters::file::flush_interval"),
])
def test_config_problems_are_reported(cfg, fragment):
    config = service_config("unused", extensions={}, exporters={"file": cfg})
    config["service"]["pipelines"]["traces"]["exporters"] = ["file"]
    with pytest.raises(ConfigError) as err:
        parse_config(config)
    assert any(fragment in p for p in err.value.problems), err.value.problems
