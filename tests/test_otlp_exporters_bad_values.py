"""A span the `otlp`/`otlphttp` exporters cannot send as valid OTLP is dropped with one error line; the good
spans of its batch are forwarded to a real local OTLP capture server, and nothing is retried or held up."""

from __future__ import annotations

import gzip
import http.server
import logging
import threading
from concurrent import futures

import grpc
import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from procs import wait_until

from spanhouse import semconv as sc
from spanhouse.batch import Event, Link, Resource, Scope, SpanBatch
from spanhouse.config import Duration
from spanhouse.exporters.helper import ForwardQueueSettings, HelperExporter
from spanhouse.exporters.otlp import OtlpExporterConfig, OtlpGrpcExporter
from spanhouse.exporters.otlpcommon import ClientTLSSettings
from spanhouse.exporters.otlphttp import OtlpHttpExporter, OtlpHttpExporterConfig

SECRET = "private-user-value"
GOOD_ID = "11" * 16


class Capture:
    """An OTLP/gRPC and OTLP/HTTP receiver that keeps every request it is sent, parsed as the Collector would."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.bodies: list[bytes] = []
        capture = self

        class Servicer(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request, context):  # noqa: N802 - the generated name
                capture.requests.append(request)
                return trace_service_pb2.ExportTraceServiceResponse()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                capture.bodies.append(body)
                req = trace_service_pb2.ExportTraceServiceRequest()
                if "json" in self.headers["Content-Type"]:
                    json_format.Parse(body, req)  # strict OTLP/JSON, as protojson in the Collector
                else:
                    req.ParseFromString(body)
                capture.requests.append(req)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Servicer(), self.grpc)
        self.grpc_port = self.grpc.add_insecure_port("127.0.0.1:0")
        self.grpc.start()
        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.http_url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def names(self) -> list[str]:
        return sorted(s.name for r in self.requests for rs in r.resource_spans for ss in rs.scope_spans
                      for s in ss.spans)

    def stop(self) -> None:
        self.grpc.stop(0)
        self.http.shutdown()


@pytest.fixture
def capture():
    c = Capture()
    yield c
    c.stop()


def mixed_batch() -> SpanBatch:
    """Two good spans around bad ones: the shapes an encoder cannot send as valid OTLP."""
    b = SpanBatch()
    b.resources.append(Resource({sc.SERVICE_NAME: "svc"}))
    b.scopes.append(Scope("s"))

    def span(name: str, sid: int, **over) -> None:
        over.setdefault("attributes", {"v": SECRET})
        b.append(resource=0, scope=0, trace_id=GOOD_ID, span_id=f"{sid:016x}", name=name, start_time_unix_nano=1,
                 end_time_unix_nano=2, **over)

    span("good-1", 1, events=[Event(1, "e", {})])
    span("bad-flags", 2, flags=1 << 40)
    span("bad-link-id", 3, links=[Link("abc", "aabbcc", "", {})])
    span("bad-link-flags", 4, links=[Link(GOOD_ID, "22" * 8, "", {}, flags=1 << 33)])
    span("bad-string", 5, attributes={"v": "\ud800"})  # not UTF-8: no field check knows it, the encoder does
    span("good-2", 6, links=[Link(GOOD_ID, "22" * 8, "", {}, flags=1)])
    return b


def pushers(capture: Capture) -> list:
    return [OtlpGrpcExporter(OtlpExporterConfig(endpoint=f"127.0.0.1:{capture.grpc_port}",
                                                tls=ClientTLSSettings(insecure=True)), "otlp/c"),
            OtlpHttpExporter(OtlpHttpExporterConfig(endpoint=capture.http_url), "otlphttp/proto"),
            OtlpHttpExporter(OtlpHttpExporterConfig(endpoint=capture.http_url, encoding="json",
                                                    compression="none"), "otlphttp/json")]


@pytest.mark.parametrize("which", [0, 1, 2], ids=["otlp", "otlphttp-proto", "otlphttp-json"])
def test_unencodable_spans_are_dropped_and_the_good_ones_forwarded(capture, caplog, which):
    pusher = pushers(capture)[which]
    pusher.start(None)
    try:
        with caplog.at_level(logging.WARNING):
            pusher.push(mixed_batch())  # does not raise: nothing here can pass on a retry
    finally:
        pusher.shutdown()
    assert capture.names() == ["good-1", "good-2"]
    sent = capture.requests[0].resource_spans[0].scope_spans[0].spans
    assert sent[1].links[0].flags == 1 and sent[0].events[0].name == "e"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    text = errors[0].getMessage()
    assert "dropping 4 of 6 span(s)" in text and "2 other span(s) of the batch forwarded" in text
    assert pusher.name in text
    for why in ("flags do not fit in 32 bits: 1", "link trace_id is not 16 bytes: 1",
                "link flags do not fit in 32 bits: 1", "cannot be encoded (UnicodeEncodeError): 1"
                if which < 2 else "cannot be encoded (TypeError): 1"):
        assert why in text
    assert SECRET not in caplog.text and "abc" not in text and str(1 << 40) not in text
    assert pusher.valid.dropped == 4
    if which == 2:
        doc = orjson.loads(capture.bodies[0])
        spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
        assert [s["traceId"] for s in spans] == [GOOD_ID, GOOD_ID]


def test_a_batch_with_only_bad_spans_sends_nothing_and_holds_up_nothing(capture):
    """Through the helper and its queue: the bad batch is not retried, and a good batch behind it goes out."""
    bad = mixed_batch().take([1, 2, 3])
    good = mixed_batch().take([0])
    for pusher in pushers(capture):
        settings = OtlpExporterConfig(endpoint="x:1", sending_queue=ForwardQueueSettings(num_consumers=1))
        helper = HelperExporter(pusher, settings, pusher.name)
        helper.start(None)
        try:
            helper.consume(bad)
            helper.consume(good)
            assert wait_until(lambda h=helper: h.stats["delivered"] == 2, 30)
            assert helper.stats["retries"] == 0 and helper.stats["lost"] == 0
        finally:
            helper.shutdown(Duration(1.0).seconds)
    assert capture.names() == ["good-1"] * 3
