"""One instrumentation library, instrumented around the real `openai` client, in a process of its own.

    python scenario.py LIBRARY --openai URL --otlp URL [--transport http|grpc]

Each library patches the `openai` module globally and reads its semantic-convention and content
settings from the environment once, so every run gets a fresh interpreter. The calls go to the fake
OpenAI server; spans and log records go to spanhouse over OTLP with the real SDK exporters. The last
line of stdout is JSON: call name → the hex trace id of the parent span wrapping that call.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

LIBRARIES = ("openai_v2", "openinference", "traceloop", "traceloop_events")
MODEL = "gpt-4o-mini"
EMBEDDING_MODEL = "text-embedding-3-small"
SYSTEM = "Be brief."
QUESTION = "What is the capital of France?"
WEATHER_QUESTION = "What is the weather in Paris?"
TOOL_RESULT = "sunny, 24 C"
CONVERSATION_ID = "conv-42"
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
CALLS = ("chat", "stream", "tool_call", "tool_result", "embeddings")


def _providers(otlp: str, transport: str):
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if transport == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        spans = OTLPSpanExporter(endpoint=otlp, insecure=True)
        logs = OTLPLogExporter(endpoint=otlp, insecure=True)
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        spans = OTLPSpanExporter(endpoint=otlp + "/v1/traces")
        logs = OTLPLogExporter(endpoint=otlp + "/v1/logs")
    resource = Resource.create({"service.name": "conformance"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(spans))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(logs))
    return tracer_provider, logger_provider


def _instrument(library: str, tracer_provider, logger_provider) -> None:
    if library == "openai_v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)
    elif library == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=tracer_provider)
    else:
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor(use_attributes=library != "traceloop_events").instrument(
            tracer_provider=tracer_provider, logger_provider=logger_provider)


def _conversation(library: str):
    """The library's way to tie calls to a conversation, where it has one."""
    if library == "openinference":
        from openinference.instrumentation import using_session

        return using_session(CONVERSATION_ID)
    return nullcontext()


def run(library: str, openai_url: str, otlp: str, transport: str) -> dict[str, str]:
    tracer_provider, logger_provider = _providers(otlp, transport)
    _instrument(library, tracer_provider, logger_provider)
    import openai

    client = openai.OpenAI(base_url=openai_url, api_key="sk-conformance", max_retries=0, timeout=10)
    tracer = tracer_provider.get_tracer("conformance.scenario")
    ids: dict[str, str] = {}

    @contextmanager
    def call(name: str) -> Iterator[None]:
        """A parent span per call, so the test finds each call's GenAI span by trace id."""
        with tracer.start_as_current_span(f"scenario {name}") as span:
            ids[name] = format(span.get_span_context().trace_id, "032x")
            yield

    with _conversation(library):
        with call("chat"):
            client.chat.completions.create(model=MODEL, messages=[
                {"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}])
        with call("stream"):
            stream = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": QUESTION}], stream=True,
                stream_options={"include_usage": True})
            for _ in stream:
                pass
        with call("tool_call"):
            first = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": WEATHER_QUESTION}], tools=TOOLS)
        with call("tool_result"):
            tool_call = first.choices[0].message.tool_calls[0]
            client.chat.completions.create(model=MODEL, tools=TOOLS, messages=[
                {"role": "user", "content": WEATHER_QUESTION},
                first.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": tool_call.id, "content": TOOL_RESULT}])
        with call("embeddings"):
            client.embeddings.create(model=EMBEDDING_MODEL, input=["hello world"])
    tracer_provider.shutdown()
    logger_provider.shutdown()
    return ids


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("library", choices=LIBRARIES)
    parser.add_argument("--openai", required=True, help="base URL of the (fake) OpenAI API")
    parser.add_argument("--otlp", required=True,
                        help="OTLP endpoint: http://host:port, or host:port for grpc")
    parser.add_argument("--transport", choices=("http", "grpc"), default="http")
    args = parser.parse_args(argv)
    ids = run(args.library, args.openai, args.otlp, args.transport)
    print(json.dumps(ids))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
