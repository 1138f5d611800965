"""A stream the server closes mid-answer, through the real `openai` client and real instrumentations.

The fake API sends the first two words of the answer, then a broken event, and closes the connection
(no finish reason, no usage). OpenInference and OpenLLMetry/Traceloop end the span with status OK and the
partial output; the upstream openai_v2 instrumentation records finish reason `error` in its choice log
event. `spanhouse trace`
must flag the first two as incomplete and show the third's finish reason, leaving every status as sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner
from support import service_config, start_service, unique_database

from spanhouse.cli import main

SCRIPT = r"""
import json, sys
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
library, api, otlp = sys.argv[1:4]
provider = TracerProvider(resource=Resource.create({"service.name": "stream-cut-" + library}))
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=otlp + "/v1/traces")))
if library == "openinference":
    from openinference.instrumentation.openai import OpenAIInstrumentor
    OpenAIInstrumentor().instrument(tracer_provider=provider)
elif library == "openai_v2":  # content as log events, the default conventions
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    logs = LoggerProvider(resource=provider.resource)
    logs.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=otlp + "/v1/logs")))
    OpenAIInstrumentor().instrument(tracer_provider=provider, logger_provider=logs)
else:
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    OpenAIInstrumentor().instrument(tracer_provider=provider)
import openai
client = openai.OpenAI(base_url=api, api_key="sk-test", max_retries=0, timeout=10)
with provider.get_tracer("app").start_as_current_span("answer") as root:
    got = ""
    try:
        for chunk in client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                    stream_options={"include_usage": True},
                                                    messages=[{"role": "user", "content": "Where is my order?"}]):
            if chunk.choices and chunk.choices[0].delta.content:
                got += chunk.choices[0].delta.content
    except Exception:
        pass
provider.shutdown()
if library == "openai_v2":
    logs.shutdown()
print(json.dumps({"trace_id": format(root.get_span_context().trace_id, "032x"), "got": got}))
"""


class _CutHandler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # keep test output clean
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        base = {"id": "chatcmpl-cut", "object": "chat.completion.chunk", "created": 1_760_000_000,
                "model": "gpt-4o-mini"}
        for delta in ({"role": "assistant", "content": ""}, {"content": "Your"}, {"content": " order"}):
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        self.wfile.write(b'data: {"broken')
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture(scope="module")
def runs():
    db = unique_database("cut")
    procs = {"genai_normalize": {}, "genai_cost": {}, "batch": {"timeout": "20ms"}}
    traces = {"receivers": ["otlp"], "processors": list(procs), "exporters": ["clickhouse"]}
    logs = {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["clickhouse"]}
    svc = start_service(service_config(db, processor_configs=procs, pipelines={"traces": traces, "logs": logs}), db)
    api = ThreadingHTTPServer(("127.0.0.1", 0), _CutHandler)
    api.daemon_threads = True
    threading.Thread(target=api.serve_forever, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACELOOP_", "OPENINFERENCE_"))}
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
               OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
    try:
        done = {}
        for library in ("openinference", "traceloop", "openai_v2"):
            proc = subprocess.run([sys.executable, "-c", SCRIPT, library, f"http://127.0.0.1:{api.server_port}/v1",
                                   svc.http_url], env=env, capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr[-3000:]
            done[library] = json.loads(proc.stdout.strip().splitlines()[-1])
            assert done[library]["got"] == "Your order"
        assert len(svc.wait_rows("SELECT 1 FROM genai_spans", 3)) == 3
        # openai_v2's choice event carries the finish reason: wait for it to be stored beside its span
        assert svc.wait_rows("SELECT 1 FROM genai_spans_full WHERE notEmpty(FinishReasons)", 1)
        yield svc, done
    finally:
        api.shutdown()
        api.server_close()
        svc.stop()


def _trace(svc, trace_id: str, *extra: str) -> str:
    result = CliRunner().invoke(main, ["trace", trace_id, *extra, "--endpoint", f"http://127.0.0.1:{svc.sql_port}",
                                       "--database", svc.database])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("library", ["openinference", "traceloop"])
def test_a_cut_stream_is_flagged_incomplete(runs, library):
    svc, done = runs
    trace_id = done[library]["trace_id"]
    text = _trace(svc, trace_id)
    assert "1 model call incomplete" in text and "incomplete no finish reason and no token usage" in text
    doc = json.loads(_trace(svc, trace_id, "--format", "json"))
    (call,) = [s for s in doc["span_list"] if s["model_call"]]
    assert call["incomplete"] and call["finish_reasons"] == [] and call["status"] != "Error"


def test_a_recorded_error_finish_reason_is_shown_not_flagged(runs):
    svc, done = runs
    doc = json.loads(_trace(svc, done["openai_v2"]["trace_id"], "--format", "json"))
    (call,) = [s for s in doc["span_list"] if s["model_call"]]
    assert (call["finish_reasons"], call["incomplete"]) == (["error"], False)
    assert "finish error" in _trace(svc, done["openai_v2"]["trace_id"])
