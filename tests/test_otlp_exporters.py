"""The `otlp` and `otlphttp` exporters: one pipeline stores in ClickHouse and tees to a second, real
spanhouse instance (its own receiver, its own database), with the first pipeline's processors applied."""

from __future__ import annotations

from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode
from support import Running, free_port, sdk_spans, service_config, start_service, unique_database

from spanhouse import semconv as sc
from spanhouse.batch import Event, Resource, Scope, SpanBatch
from spanhouse.component import Factory, Kind, Processor, Registry, default_registry
from spanhouse.config import parse_config
from spanhouse.errors import PermanentError, RetryableError
from spanhouse.exporters.otlp import OtlpExporterConfig, OtlpGrpcExporter, classify_grpc_error
from spanhouse.exporters.otlphttp import OtlpHttpExporter, OtlpHttpExporterConfig, classify_http_response
from spanhouse.service import Service

STAMP = "stamped-by-first-pipeline"


@dataclass(frozen=True, kw_only=True)
class StampConfig:
    def validate(self):
        return iter(())


class StampProcessor(Processor):
    """Marks every span, so the peer can show that the first pipeline's processors ran before the tee."""

    def process(self, batch: Any) -> Any:
        for attrs in batch.attributes:
            attrs[sc.SPANHOUSE_TENANT_ID] = STAMP
        return batch


def registry() -> Registry:
    stamp = Factory(kind=Kind.PROCESSOR, type="stamp", config=StampConfig,
                    create=lambda settings, cfg: StampProcessor())
    return Registry(list(default_registry()) + [stamp])


@pytest.fixture
def peer():
    """The second spanhouse: receives OTLP and stores into a database of its own."""
    db = unique_database("peer")
    svc = start_service(service_config(db, extensions={}), db)
    yield svc
    svc.stop()


def start_tee(exporter_id: str, exporter_cfg: dict) -> Running:
    db = unique_database("tee")
    cfg = service_config(db, extensions={}, processor_configs={"stamp": {}, "batch": {"timeout": "20ms"}},
                         exporters={exporter_id: exporter_cfg})
    cfg["service"]["pipelines"]["traces"]["exporters"] = ["clickhouse", exporter_id]
    service = Service(parse_config(cfg, registry=registry()), registry())
    service.start()
    return Running(service, db)


def llm_spans() -> list:
    def build(tracer):
        with tracer.start_as_current_span("invoke_workflow support", kind=SpanKind.SERVER):
            with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes={
                    sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
                    sc.GEN_AI_USAGE_INPUT_TOKENS: 1234, sc.GEN_AI_REQUEST_TEMPERATURE: 0.25,
                    sc.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"]}) as span:
                span.add_event(sc.EVENT_GEN_AI_EVALUATION_RESULT, {sc.GEN_AI_EVALUATION_NAME: "relevance",
                                                                   sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.75})
                span.set_status(Status(StatusCode.ERROR, "upstream timeout"))

    return sdk_spans(build, {sc.SERVICE_NAME: "tee-app", sc.SERVICE_VERSION: "1.2.3"})


def send(tee: Running, spans: list) -> None:
    exporter = OTLPSpanExporter(endpoint=tee.grpc_endpoint, insecure=True)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()


def assert_peer_has_the_processed_spans(peer: Running, tee: Running) -> None:
    sql = ("SELECT SpanName, SpanKind, ServiceName, SpanAttributes, ResourceAttributes, StatusCode, StatusMessage, "
           "Events.Name, Events.Attributes, ParentSpanId != '' FROM otel_traces ORDER BY SpanName")
    rows = peer.wait_rows(sql, 2)
    assert [r[0] for r in rows] == ["chat gpt-4o", "invoke_workflow support"]
    chat, root = rows
    assert chat[3][sc.SPANHOUSE_TENANT_ID] == STAMP and root[3][sc.SPANHOUSE_TENANT_ID] == STAMP
    assert (chat[1], chat[2], chat[5], chat[6], chat[9]) == ("Client", "tee-app", "Error", "upstream timeout", 1)
    assert chat[4][sc.SERVICE_VERSION] == "1.2.3"
    assert chat[7] == [sc.EVENT_GEN_AI_EVALUATION_RESULT]
    assert chat[8][0][sc.GEN_AI_EVALUATION_SCORE_VALUE] == "0.75"
    # typed values crossed the wire as typed OTLP values, so the peer's typed columns fill in
    # (a reader can see the insert's rows in otel_traces a moment before its views' rows)
    assert peer.wait_rows("SELECT InputTokens, Temperature, FinishReasons, TenantId FROM genai_spans", 1) == [
        (1234, 0.25, ["stop"], STAMP)]
    assert peer.wait_rows("SELECT EvaluationName, ScoreValue FROM genai_evaluations", 1) == [("relevance", 0.75)]
    # and the first pipeline stored the same spans itself
    assert tee.rows("SELECT count() FROM otel_traces WHERE SpanAttributes[{k:String}] = {v:String}",
                    {"k": sc.SPANHOUSE_TENANT_ID, "v": STAMP}) == [(2,)]
    ids = lambda r: r.rows("SELECT TraceId, SpanId, ParentSpanId FROM otel_traces ORDER BY SpanId")  # noqa: E731
    assert ids(peer) == ids(tee)


@pytest.mark.parametrize("encoding, compression", [("proto", "gzip"), ("json", "none")])
def test_otlphttp_tees_to_a_second_spanhouse(peer, encoding, compression):
    tee = start_tee("otlphttp/apm", {"endpoint": peer.http_url, "encoding": encoding, "compression": compression})
    try:
        send(tee, llm_spans())
        assert_peer_has_the_processed_spans(peer, tee)
    finally:
        tee.stop()


def test_otlp_grpc_tees_to_a_second_spanhouse(peer):
    tee = start_tee("otlp/apm", {"endpoint": peer.grpc_endpoint, "tls": {"insecure": True},
                                 "headers": {"x-tenant": "acme"}})
    try:
        send(tee, llm_spans())
        assert_peer_has_the_processed_spans(peer, tee)
    finally:
        tee.stop()


def tiny_batch() -> SpanBatch:
    b = SpanBatch()
    b.resources.append(Resource({sc.SERVICE_NAME: "x"}))
    b.scopes.append(Scope("s"))
    b.append(resource=0, scope=0, trace_id="1" * 32, span_id="2" * 16, name="n", start_time_unix_nano=1,
             end_time_unix_nano=2, events=[Event(1, "e", {})])
    return b


def test_unreachable_peer_is_retryable():
    for pusher in (OtlpHttpExporter(OtlpHttpExporterConfig(endpoint=f"http://127.0.0.1:{free_port()}")),
                   OtlpGrpcExporter(OtlpExporterConfig(endpoint=f"127.0.0.1:{free_port()}",
                                                       timeout=parse_duration("2s")))):
        pusher.start(None)
        try:
            with pytest.raises(RetryableError):
                pusher.push(tiny_batch())
        finally:
            pusher.shutdown()


def parse_duration(text: str):
    from spanhouse.config import Duration

    return Duration.parse(text)


def test_a_peer_that_refuses_is_permanent(peer):
    # a wrong path answers 404: not retryable per OTLP/HTTP
    pusher = OtlpHttpExporter(OtlpHttpExporterConfig(traces_endpoint=peer.http_url + "/v1/nothing-here"))
    pusher.start(None)
    with pytest.raises(PermanentError, match="HTTP 404"):
        pusher.push(tiny_batch())
    pusher.shutdown()
    # a gRPC server without the trace service answers UNIMPLEMENTED: not retryable
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        grpc_pusher = OtlpGrpcExporter(OtlpExporterConfig(endpoint=f"127.0.0.1:{port}", tls=_insecure()))
        grpc_pusher.start(None)
        with pytest.raises(PermanentError, match="UNIMPLEMENTED"):
            grpc_pusher.push(tiny_batch())
        grpc_pusher.shutdown()
    finally:
        server.stop(0)


def _insecure():
    from spanhouse.exporters.otlpcommon import ClientTLSSettings

    return ClientTLSSettings(insecure=True)


class _FakeRpcError(grpc.RpcError):
    def __init__(self, code, trailers=()):
        self._code, self._trailers = code, trailers

    def code(self):
        return self._code

    def details(self):
        return "peer says no"

    def trailing_metadata(self):
        return self._trailers


def test_response_classification_follows_the_otlp_spec():
    from google.protobuf import duration_pb2
    from google.rpc import error_details_pb2, status_pb2

    for status in (429, 502, 503, 504):
        err = classify_http_response(status, b"", {"Retry-After": "7"}, "x")
        assert isinstance(err, RetryableError) and err.retry_after == 7
    for status in (400, 401, 403, 404, 413, 500):
        assert isinstance(classify_http_response(status, b"bad", {}, "x"), PermanentError)
    for code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED):
        assert isinstance(classify_grpc_error(_FakeRpcError(code), "x"), RetryableError)
    for code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INTERNAL,
                 grpc.StatusCode.RESOURCE_EXHAUSTED):
        assert isinstance(classify_grpc_error(_FakeRpcError(code), "x"), PermanentError)
    status = status_pb2.Status(code=8)
    status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=3)))
    throttled = _FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                              (("grpc-status-details-bin", status.SerializeToString()),))
    err = classify_grpc_error(throttled, "x")
    assert isinstance(err, RetryableError) and err.retry_after == 3


def test_config_problems_are_reported():
    from spanhouse.errors import ConfigError

    cfg = service_config("x", extensions={}, exporters={
        "otlp": {"compression": "lzma"}, "otlphttp": {"endpoint": "collector:4318", "encoding": "xml"}})
    cfg["service"]["pipelines"]["traces"]["exporters"] = ["otlp", "otlphttp"]
    with pytest.raises(ConfigError) as err:
        parse_config(cfg)
    text = "\n".join(err.value.problems)
    assert "exporters::otlp::endpoint: required" in text
    assert "exporters::otlp::compression: 'lzma' is not one of gzip, none" in text
    assert "exporters::otlphttp::endpoint: 'collector:4318' is not an http(s):// URL" in text
    assert "exporters::otlphttp::encoding: 'xml' is not one of proto, json" in text


def test_any_2xx_answer_is_a_success():
    """The Collector's otlphttp exporter takes 200-299 as success; a peer answering 202 or 204 with no body
    has the data, so nothing is retried, resent one by one, or logged as refused."""
    import http.server
    import threading

    answers = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the stdlib's name
            self.rfile.read(int(self.headers["Content-Length"]))
            status = answers.pop(0)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pusher = OtlpHttpExporter(OtlpHttpExporterConfig(endpoint=f"http://127.0.0.1:{server.server_address[1]}"))
    pusher.start(None)
    try:
        for status in (202, 204, 200):
            answers.append(status)
            pusher.push(tiny_batch())
        answers.append(300)
        with pytest.raises(PermanentError, match="HTTP 300"):
            pusher.push(tiny_batch())
    finally:
        pusher.shutdown()
        server.shutdown()


def test_a_forwarding_exporter_queues_by_default_so_a_down_peer_neither_blocks_nor_duplicates():
    """As in the Collector, otlp/otlphttp have an in-memory sending queue unless it is turned off: a peer
    that is down must not hold the client's answer or fail a request clickhouse has already stored
    (the client's retry would store it twice)."""
    from spanhouse.config import parse_config_text

    cfg = parse_config_text("""
receivers: {otlp: {protocols: {http: {}}}}
exporters:
  otlphttp: {endpoint: "http://127.0.0.1:1"}
  otlp: {endpoint: "127.0.0.1:1", sending_queue: {queue_size: 5}}
  otlp/sync: {endpoint: "127.0.0.1:1", sending_queue: {enabled: false}}
service: {pipelines: {traces: {receivers: [otlp], exporters: [otlphttp, otlp, otlp/sync]}}}
""", env={})
    queues = {str(k): v.sending_queue for k, v in cfg.exporters.items()}
    assert queues["otlphttp"].active and queues["otlp"].active and queues["otlp"].queue_size == 5
    assert not queues["otlp/sync"].active

    db = unique_database("tee_down")
    down = {"endpoint": f"http://127.0.0.1:{free_port()}", "retry_on_failure": {"max_elapsed_time": "1s"}}
    config = service_config(db, extensions={}, exporters={"otlphttp/apm": down})
    config["service"]["pipelines"]["traces"]["exporters"] = ["clickhouse", "otlphttp/apm"]
    tee = start_service(config, db)
    try:
        exporter = OTLPSpanExporter(endpoint=tee.grpc_endpoint, insecure=True, timeout=10)
        assert exporter.export(llm_spans()) is SpanExportResult.SUCCESS
        exporter.shutdown()
        tee.wait_rows("SELECT SpanId FROM otel_traces", 2)
        assert len(tee.rows("SELECT SpanId FROM otel_traces")) == 2
    finally:
        tee.stop()
