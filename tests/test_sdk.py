"""`spanhouse.sdk`: in-app redaction before export, the prompt/feature/tenant marks, and the promise
that the application never waits for spanhouse (down or slow)."""

from __future__ import annotations

import json
import logging
import selectors
import socket
import threading

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from support import free_port, service_config, start_service, unique_database

from spanhouse import sdk
from spanhouse import semconv as sc
from spanhouse.redact import RedactionSettings, Redactor

KEY = "sdk-redaction-key-0123456789"
EMAIL = "maria.garcia@example.com"
CARD = "4111 1111 1111 1111"
MESSAGES = json.dumps(
    [{"role": "user", "parts": [{"type": "text", "content": f"I am {EMAIL}, card {CARD}"}]}]
)


def provider_with(exporter, policy="redacted", resource=None):
    provider = TracerProvider(resource=Resource.create(resource or {sc.SERVICE_NAME: "app"}))
    provider.add_span_processor(sdk.MarkingSpanProcessor())
    redacting = sdk.RedactingSpanExporter(exporter, Redactor(RedactionSettings(hash_key=KEY)), policy)
    provider.add_span_processor(SimpleSpanProcessor(redacting))
    return provider


def test_spans_are_redacted_before_they_leave_the_process():
    memory = InMemorySpanExporter()
    provider = provider_with(memory, resource={sc.SERVICE_NAME: "app", "host.owner": EMAIL})
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span(
        "chat gpt-4o",
        attributes={
            sc.GEN_AI_INPUT_MESSAGES: MESSAGES,
            sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
            sc.USER_ID: "u-1",
            "tags": ("vip", EMAIL),
        },
    ) as span:
        span.add_event("exception", {sc.EXCEPTION_MESSAGE: f"no user {EMAIL}"})
        span.set_status(Status(StatusCode.ERROR, f"declined {CARD}"))
    provider.shutdown()
    (out,) = memory.get_finished_spans()
    everything = (
        repr(dict(out.attributes))
        + repr([dict(e.attributes) for e in out.events])
        + repr(dict(out.resource.attributes))
        + repr(out.status.description)
    )
    assert EMAIL not in everything and "4111" not in everything
    content = json.loads(out.attributes[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"]
    assert content.startswith("I am <EMAIL:") and "<CARD:" in content
    assert out.attributes[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o" and len(out.attributes[sc.USER_HASH]) == 64
    assert out.attributes[sc.SPANHOUSE_REDACTION_POLICY] == "redacted"
    assert out.attributes[f"{sc.SPANHOUSE_REDACTION_DETECTIONS}.email"] == 4
    assert out.status.status_code is StatusCode.ERROR and out.status.description.startswith("declined <CARD:")
    assert out.resource.attributes[sc.SERVICE_NAME] == "app"


def test_span_and_event_names_are_redacted_before_a_wrapped_exporter_sees_them():
    """A vendor exporter wrapped by the redacting one receives names as the server would store them."""
    memory = InMemorySpanExporter()
    provider = provider_with(memory)
    with provider.get_tracer("tests").start_as_current_span(f"lookup {EMAIL}") as span:
        span.add_event(f"evt {EMAIL}", {"m": "x"})
        span.add_event("exception", {sc.EXCEPTION_TYPE: "ValueError"})
    with provider.get_tracer("tests").start_as_current_span("chat gpt-4o"):
        pass
    provider.shutdown()
    named, plain = memory.get_finished_spans()
    assert named.name.startswith("lookup <EMAIL:") and EMAIL not in named.name
    assert [e.name for e in named.events] == [f"evt {named.name.removeprefix('lookup ')}", "exception"]
    assert list(named.attributes[sc.SPANHOUSE_REDACTION_MASKED_KEYS]) == ["span:name", "event:name"]
    assert plain.name == "chat gpt-4o" and sc.SPANHOUSE_REDACTION_MASKED_KEYS not in plain.attributes


def test_metadata_only_in_app_and_rules_when_no_policy_is_fixed():
    memory = InMemorySpanExporter()
    provider = provider_with(memory, policy=None, resource={sc.DEPLOYMENT_ENVIRONMENT_NAME: "staging"})
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("staging chat", attributes={sc.GEN_AI_INPUT_MESSAGES: MESSAGES}):
        pass
    provider.shutdown()
    (staged,) = memory.get_finished_spans()
    assert staged.attributes[sc.SPANHOUSE_REDACTION_POLICY] == "full"
    assert staged.attributes[sc.GEN_AI_INPUT_MESSAGES] == MESSAGES

    memory = InMemorySpanExporter()
    provider = provider_with(memory, policy="metadata_only")
    with provider.get_tracer("tests").start_as_current_span(
        "chat", attributes={sc.GEN_AI_INPUT_MESSAGES: MESSAGES, sc.GEN_AI_USAGE_INPUT_TOKENS: 12}
    ):
        pass
    provider.shutdown()
    (out,) = memory.get_finished_spans()
    assert (
        sc.GEN_AI_INPUT_MESSAGES not in out.attributes and out.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 12
    )
    assert list(out.attributes[sc.SPANHOUSE_REDACTION_DROPPED_KEYS]) == [sc.GEN_AI_INPUT_MESSAGES]


def test_a_redaction_failure_exports_nothing(caplog):
    class Broken(Redactor):
        def attributes(self, attrs, *args, **kwargs):
            raise RuntimeError(f"bug at {attrs[sc.GEN_AI_INPUT_MESSAGES]}")  # messages may quote values

    memory = InMemorySpanExporter()
    exporter = sdk.RedactingSpanExporter(memory, Broken(RedactionSettings(hash_key=KEY)), None)
    span = (
        TracerProvider()
        .get_tracer("tests")
        .start_span("chat", attributes={sc.GEN_AI_INPUT_MESSAGES: MESSAGES})
    )
    span.end()
    with caplog.at_level("ERROR"):
        assert exporter.export([span]) is SpanExportResult.FAILURE
    assert memory.get_finished_spans() == () and exporter.failed_batches == 1
    assert "RuntimeError" in caplog.text and EMAIL not in caplog.text


def test_marks_stamp_spans_started_inside_the_block():
    memory = InMemorySpanExporter()
    provider = provider_with(memory, policy="full")
    tracer = provider.get_tracer("tests")
    with sdk.feature("ticket_reply"), sdk.tenant("acme"):
        with sdk.prompt("ticket_reply_prompt", version="v17"):
            with tracer.start_as_current_span("chat"):
                tracer.start_span("child").end()
        with tracer.start_as_current_span("after prompt", attributes={sc.SPANHOUSE_FEATURE: "explicit"}):
            pass
    with tracer.start_as_current_span("outside"):
        pass

    @sdk.prompt("classify_prompt", version=3)
    def classify():
        tracer.start_span("classify").end()

    classify()
    provider.shutdown()
    spans = {s.name: s.attributes for s in memory.get_finished_spans()}
    for name in ("chat", "child"):
        assert spans[name][sc.GEN_AI_PROMPT_NAME] == "ticket_reply_prompt"
        assert spans[name][sc.GEN_AI_PROMPT_VERSION] == "v17"
        assert (
            spans[name][sc.SPANHOUSE_FEATURE] == "ticket_reply"
            and spans[name][sc.SPANHOUSE_TENANT_ID] == "acme"
        )
    assert sc.GEN_AI_PROMPT_NAME not in spans["after prompt"]
    assert spans["after prompt"][sc.SPANHOUSE_FEATURE] == "explicit"
    assert not {sc.GEN_AI_PROMPT_NAME, sc.SPANHOUSE_FEATURE, sc.SPANHOUSE_TENANT_ID} & set(spans["outside"])
    assert spans["classify"][sc.GEN_AI_PROMPT_VERSION] == "3"


def test_a_nested_prompt_without_a_version_does_not_inherit_one_and_async_functions_are_marked():
    import asyncio

    memory = InMemorySpanExporter()
    provider = provider_with(memory, policy="full")
    tracer = provider.get_tracer("tests")
    with sdk.prompt("ticket_reply_prompt", version="v17"):
        with sdk.prompt("summarize_prompt"):
            tracer.start_span("inner").end()
        tracer.start_span("outer again").end()

    @sdk.feature("async_feature")
    @sdk.prompt("async_prompt", version="a1")
    async def handler(n: int) -> int:
        await asyncio.sleep(0)
        tracer.start_span(f"async {n}").end()
        return n

    async def both() -> list[int]:
        return await asyncio.gather(handler(1), handler(2))

    assert asyncio.run(both()) == [1, 2]
    provider.shutdown()
    spans = {s.name: dict(s.attributes) for s in memory.get_finished_spans()}
    assert spans["inner"][sc.GEN_AI_PROMPT_NAME] == "summarize_prompt"
    assert sc.GEN_AI_PROMPT_VERSION not in spans["inner"]
    assert spans["outer again"][sc.GEN_AI_PROMPT_VERSION] == "v17"
    for name in ("async 1", "async 2"):
        assert spans[name][sc.GEN_AI_PROMPT_NAME] == "async_prompt" and spans[name][sc.GEN_AI_PROMPT_VERSION] == "a1"
        assert spans[name][sc.SPANHOUSE_FEATURE] == "async_feature"


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"policy": "secret"}, "policy must be one of"),
        ({"protocol": "thrift"}, "protocol must be one of"),
        ({"timeout": 0}, "timeout must be greater than 0"),
        ({"max_queue_size": 10, "max_export_batch_size": 20}, "max_queue_size >= max_export_batch_size"),
        ({"hash_key": "short"}, "hash_key: use at least 16 characters"),
    ],
)
def test_configure_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sdk.configure("http://127.0.0.1:4318", set_global=False, **kwargs)
    with pytest.raises(ValueError):
        sdk.prompt("")


def test_configure_sends_redacted_spans_to_spanhouse(running):
    provider = sdk.configure(
        running.http_url,
        policy="redacted",
        service_name="support-copilot",
        environment="staging",
        hash_key=KEY,
        schedule_delay=0.05,
        set_global=False,
    )
    tracer = provider.get_tracer("tests")
    with sdk.prompt("ticket_reply_prompt", version="v17"), sdk.feature("ticket_reply"):
        with tracer.start_as_current_span(
            "chat gpt-4o",
            attributes={
                sc.GEN_AI_OPERATION_NAME: "chat",
                sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
                sc.GEN_AI_INPUT_MESSAGES: MESSAGES,
            },
        ) as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
    rows = running.wait_rows(
        "SELECT SpanAttributes, ResourceAttributes FROM otel_traces WHERE TraceId = {t:String}",
        1,
        parameters={"t": trace_id},
    )
    ((attrs, resource),) = rows
    assert EMAIL not in repr(rows) and "4111" not in repr(rows)
    assert attrs[sc.SPANHOUSE_REDACTION_POLICY] == "redacted"
    assert json.loads(attrs[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"].startswith("I am <EMAIL:")
    assert attrs[sc.GEN_AI_PROMPT_NAME] == "ticket_reply_prompt" and attrs[sc.GEN_AI_PROMPT_VERSION] == "v17"
    assert attrs[sc.SPANHOUSE_FEATURE] == "ticket_reply"
    assert (
        resource[sc.SERVICE_NAME] == "support-copilot"
        and resource[sc.DEPLOYMENT_ENVIRONMENT_NAME] == "staging"
    )


class _SilentServer:
    """Accepts TCP connections on 127.0.0.1, reads what the client sends and never answers: a spanhouse
    that hangs. It counts requests received and connections the client gave up on (closed), so a test
    can tell whether an export was still waiting for its answer when the application's call returned."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.requests = threading.Event()  # set once a client has sent something
        self.given_up = 0  # connections the client closed without an answer
        self._stop = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.sock, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.05):
                if key.fileobj is self.sock:
                    conn = self.sock.accept()[0]
                    self.conns.append(conn)
                    self._selector.register(conn, selectors.EVENT_READ)
                    continue
                try:
                    data = key.fileobj.recv(65536)
                except OSError:
                    data = b""
                if data:
                    self.requests.set()
                else:
                    self._selector.unregister(key.fileobj)
                    self.given_up += 1

    def wait_for_a_request(self):
        assert self.requests.wait(60), "no export reached the server"

    def close(self):
        self._stop.set()
        self._thread.join()
        self._selector.close()
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.mark.parametrize("state", ["down", "hanging"])
def test_instrumented_calls_do_not_wait_for_spanhouse_when_it_is_down_or_hangs(state, caplog):
    """The application never waits for spanhouse: redaction and export run on the SDK's own thread, so
    with spanhouse hanging every instrumented call (a prompt block and a span with message content)
    returns while an export still waits for its answer; nothing raises; shutdown returns at its bound,
    not when the hanging export gives up."""
    server = _SilentServer() if state == "hanging" else None
    port = server.port if server else free_port()
    provider = sdk.configure(
        f"http://127.0.0.1:{port}",
        policy="redacted",
        hash_key=KEY,
        # far longer than the test, shorter than the SDK's own 30 s shutdown wait: an export that ended
        # before shutdown returned was waited for
        timeout=1.0 if state == "down" else 20.0,
        max_queue_size=256,
        max_export_batch_size=64,
        schedule_delay=0.02,
        shutdown_timeout=1.0,
        set_global=False,
    )
    tracer = provider.get_tracer("tests")
    caplog.set_level(logging.WARNING, logger="opentelemetry.exporter")
    caller = threading.get_ident()

    def exporter_records():
        return [r for r in caplog.records if r.name.startswith("opentelemetry.exporter")]

    def on_callers_thread():  # an export that failed reports it on the thread that ran it
        return [r for r in exporter_records() if r.thread == caller]

    try:
        for i in range(1500):
            with sdk.prompt("ticket_reply_prompt", version="v17"):
                with tracer.start_as_current_span("chat gpt-4o") as span:
                    span.set_attribute(sc.GEN_AI_INPUT_MESSAGES, MESSAGES)
                    span.set_attribute(sc.GEN_AI_USAGE_INPUT_TOKENS, i)
            assert not on_callers_thread(), "an instrumented call exported on the application's thread"
            if server:
                assert server.given_up == 0, "an instrumented call waited for spanhouse"
        if server:
            server.wait_for_a_request()
        provider.shutdown()
        if server:
            assert server.given_up == 0, "shutdown waited for the hanging export"
    finally:
        if server:
            server.close()
    assert not on_callers_thread()
    if state == "down":
        assert exporter_records(), "the refused exports were not reported"


def test_force_flush_keeps_its_timeout_when_spanhouse_hangs():
    """Serverless handlers flush per request: with spanhouse hanging, the flush must give up at its
    timeout and say so (the SDK's own ignores the timeout, waits for every queued batch and reports
    success)."""
    server = _SilentServer()
    provider = sdk.configure(f"http://127.0.0.1:{server.port}", hash_key=KEY, timeout=20.0, max_queue_size=2048,
                             max_export_batch_size=512, schedule_delay=30.0, shutdown_timeout=0.5, set_global=False)
    tracer = provider.get_tracer("tests")
    try:
        for _ in range(500):
            tracer.start_span("chat").end()
        assert provider.force_flush(timeout_millis=300) is False
        server.wait_for_a_request()
        assert server.given_up == 0, "the flush waited for the hanging export"
        assert provider.force_flush(timeout_millis=100) is False  # joins the flush still running
        assert server.given_up == 0
    finally:
        provider.shutdown()
        server.close()


EXIT_SCRIPT = """
import logging, socket
logging.disable(logging.CRITICAL)
from spanhouse import sdk, semconv as sc
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
provider = sdk.configure(f"http://127.0.0.1:{port}", hash_key="k" * 20, timeout=0.5, max_queue_size=64,
                         max_export_batch_size=8, schedule_delay=0.01, shutdown_timeout=0.2, set_global=False)
tracer = provider.get_tracer("exit-test")
big = "Order for maria@example.com, card 4111 1111 1111 1111. " * 40000
for _ in range(64):
    with tracer.start_as_current_span("chat") as span:
        span.set_attribute(sc.GEN_AI_INPUT_MESSAGES, big)
print("done")
"""


def test_the_application_exits_cleanly_while_spans_are_being_redacted(tmp_path):
    """The export thread is a daemon; were it inside the RE2 extension when the interpreter exits,
    the process would abort (SIGABRT). Exit with spanhouse down and large spans still queued."""
    import subprocess
    import sys

    script = tmp_path / "app.py"
    script.write_text(EXIT_SCRIPT)
    for _ in range(2):
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip() == "done"


def test_marks_reach_log_events_so_a_feature_rule_covers_their_content():
    """Instrumentations that send prompts as log events: a `spanhouse.feature` rule can only choose the
    policy of a log record that carries the feature, which `MarkingLogRecordProcessor` stamps."""
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from support import service_config, start_service, unique_database

    database = unique_database("sdklogs")
    pipeline = {"receivers": ["otlp"], "processors": ["genai_redact", "batch"], "exporters": ["clickhouse"]}
    redact = {"hash_key": KEY, "rules": [{"when": {sc.SPANHOUSE_FEATURE: "kyc-*"}, "policy": "metadata_only"}]}
    config = service_config(database, processor_configs={"genai_redact": redact, "batch": {"timeout": "20ms"}},
                            pipelines={"traces": dict(pipeline), "logs": pipeline})
    svc = start_service(config, database)
    try:
        provider = LoggerProvider(resource=Resource.create({sc.SERVICE_NAME: "kyc-app"}))
        provider.add_log_record_processor(sdk.MarkingLogRecordProcessor())
        provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=svc.http_url + "/v1/logs")))
        logger = provider.get_logger("tests.sdk")
        body = {"role": "user", "content": "My passport number is X1234567, name Jane Roe"}
        with sdk.feature("kyc-onboarding"):
            logger.emit(event_name="gen_ai.user.message", body=body, attributes={"gen_ai.system": "openai"})
            logger.emit(event_name="gen_ai.user.message", body=body, attributes={sc.SPANHOUSE_FEATURE: "own"})
        provider.shutdown()
        rows = svc.wait_rows(
            "SELECT LogAttributes['spanhouse.feature'] AS f, Body FROM otel_logs ORDER BY f", 2
        )
    finally:
        svc.stop()
    (kyc_feature, kyc_body), (own_feature, own_body) = sorted(rows)
    assert kyc_feature == "kyc-onboarding" and "X1234567" not in kyc_body and "Jane Roe" not in kyc_body
    assert own_feature == "own" and "X1234567" in own_body  # its own feature wins; no rule matches it


def _send_one(provider) -> str:
    """One span through `provider`, flushed by its shutdown; its trace id."""
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("chat env", attributes={sc.GEN_AI_OPERATION_NAME: "chat"}) as s:
        trace_id = format(s.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id


def _stored(svc, trace_id: str) -> bool:
    return bool(svc.wait_rows("SELECT 1 FROM otel_traces WHERE TraceId = {t:String}", 1, timeout=10,
                              parameters={"t": trace_id}))


@pytest.fixture
def otlp_env(monkeypatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
                 "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_configure_follows_the_otlp_endpoint_variables(otlp_env):
    """OTEL_EXPORTER_OTLP_ENDPOINT is a base URL (HTTP appends v1/traces to its path), the traces
    variable is used as it is and wins over it, and an explicit endpoint wins over both."""
    db = unique_database("sdk_env")
    receiver = {"protocols": {"grpc": {"endpoint": "127.0.0.1:0"},
                              "http": {"endpoint": "127.0.0.1:0", "traces_url_path": "/otlp/v1/traces"}}}
    svc = start_service(service_config(db, receiver=receiver), db)
    dead = f"http://127.0.0.1:{free_port()}"
    kwargs = {"hash_key": KEY, "schedule_delay": 0.05, "set_global": False}
    try:
        otlp_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", svc.http_url + "/otlp")
        assert _stored(svc, _send_one(sdk.configure(**kwargs)))

        otlp_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", dead)
        otlp_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", svc.http_url + "/otlp/v1/traces")
        assert _stored(svc, _send_one(sdk.configure(**kwargs)))

        otlp_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", dead)
        assert _stored(svc, _send_one(sdk.configure(svc.http_url + "/otlp/v1/traces", **kwargs)))

        otlp_env.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        otlp_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{svc.grpc_endpoint}")
        otlp_env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        assert _stored(svc, _send_one(sdk.configure(**kwargs)))
    finally:
        svc.stop()


def test_the_endpoint_rules_of_the_otel_variables():
    from spanhouse.sdk._configure import resolve_endpoint

    base, traces = "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    assert resolve_endpoint(None, None, {}) == ("http://127.0.0.1:4318/v1/traces", "http/protobuf")
    assert resolve_endpoint(None, "grpc", {}) == ("http://127.0.0.1:4317", "grpc")
    assert resolve_endpoint(None, None, {base: "http://c:4318/collector/"})[0] == "http://c:4318/collector/v1/traces"
    assert resolve_endpoint(None, None, {base: "http://c:4318/v1/traces"})[0] == "http://c:4318/v1/traces/v1/traces"
    assert resolve_endpoint(None, None, {base: "http://a:1", traces: "http://c:4318/"})[0] == "http://c:4318/"
    assert resolve_endpoint("http://c:4318", None, {traces: "http://b:1/x"})[0] == "http://c:4318/v1/traces"
    assert resolve_endpoint(None, None, {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                                         "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc", base: "http://c:4317"}) == (
        "http://c:4317", "grpc")
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_PROTOCOL must be one of http/protobuf, grpc, got "
                                         "'http/json'"):
        resolve_endpoint(None, None, {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
