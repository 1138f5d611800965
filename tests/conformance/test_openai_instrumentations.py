"""Conformance: real OpenAI instrumentation libraries, around the real `openai` client, exporting over
OTLP to a running spanhouse, each produce the `genai_spans` row the schema promises.

Every library runs `scenario.py` in a process of its own (they patch `openai` globally and read
their settings from the environment once) against the fake OpenAI API in `fake_openai.py`, which
answers with fixed models, texts and token counts. Each call's row is read from `genai_spans_full`
(`genai_spans` with content resolved from span attributes or log records).

Libraries whose spans use foreign attribute names need the `genai_normalize` processor; the service
runs it when it is installed, and those tests are expected to fail (not strictly) without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from conformance import fake_openai as fake
from conformance import scenario
from support import service_config, start_service, unique_database

HERE = Path(__file__).resolve().parent
OPT_IN = {"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental"}
CAPTURE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ROLES = {"system", "user", "assistant", "tool"}


@dataclass(frozen=True)
class Run:
    """One library in one configuration, and what its pinned version records."""

    name: str
    library: str
    env: dict[str, str] = field(default_factory=dict)
    transport: str = "http"
    cache_read: int = 0
    """Cached prompt tokens the library reports (the fake always sends 16)."""
    conversation_id: str = ""
    foreign_names: bool = False
    """Its spans need genai_normalize for every canonical column."""
    legacy_provider: bool = False
    """It names the provider with the deprecated gen_ai.system, which genai_normalize renames."""
    stream_output: bool = True
    """The streamed answer reaches spanhouse tied to the span."""
    tool_response_id: bool = True
    """It records which tool call a tool result answers."""


RUNS = [
    # GenAI semconv 1.30 (the default): content as deprecated per-message log events.
    Run("openai_v2-default", "openai_v2", {CAPTURE: "true"}, legacy_provider=True),
    # Newest conventions: content as span attributes, or as one operation.details log event.
    Run("openai_v2-latest-span", "openai_v2", {**OPT_IN, CAPTURE: "SPAN_ONLY"}, transport="grpc"),
    Run("openai_v2-latest-event", "openai_v2", {**OPT_IN, CAPTURE: "EVENT_ONLY"}),
    Run("openinference", "openinference", cache_read=fake.CACHED_TOKENS,
        conversation_id=scenario.CONVERSATION_ID, foreign_names=True),
    Run("traceloop", "traceloop", cache_read=fake.CACHED_TOKENS, transport="grpc"),
    # use_attributes=False: content as deprecated per-message log events. The streamed choice event is
    # emitted after the span has ended, outside its context (no trace or span id), so it cannot be
    # joined; the tool message event leaves out the tool call id.
    Run("traceloop-events", "traceloop_events", cache_read=fake.CACHED_TOKENS, stream_output=False,
        tool_response_id=False),
]

ROW_SQL = """
SELECT ServiceName, Operation, Provider, RequestModel, ResponseModel, InputTokens, OutputTokens,
       CacheReadTokens, ConversationId, SystemInstructions, InputMessages, OutputMessages, ContentSource
FROM genai_spans_full WHERE TraceId = {t:String}
"""
COLUMNS = ("service", "operation", "provider", "request_model", "response_model", "input_tokens",
           "output_tokens", "cache_read", "conversation_id", "system", "inputs", "outputs", "content_source")


def _run_scenario(run: Run, openai_url: str, svc: Any) -> dict[str, str] | str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACELOOP_", "OPENINFERENCE_"))}
    env.update(run.env, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    otlp = svc.grpc_endpoint if run.transport == "grpc" else svc.http_url
    proc = subprocess.run(
        [sys.executable, str(HERE / "scenario.py"), run.library, "--openai", openai_url, "--otlp", otlp,
         "--transport", run.transport], env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 or not proc.stdout.strip():
        return f"scenario {run.name} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    return orjson.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def results():
    """Run every library's scenario once against one spanhouse; yields (service, {run: {call: trace id}})."""
    database = unique_database("conf")
    procs = {"genai_normalize": {}, "batch": {"timeout": "20ms"}}
    pipelines = {
        "traces": {"receivers": ["otlp"], "exporters": ["clickhouse"], "processors": ["genai_normalize", "batch"]},
        "logs": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["clickhouse"]},
    }
    svc = start_service(service_config(database, processor_configs=procs, pipelines=pipelines), database)
    api = fake.FakeOpenAI().start()
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            outcomes = pool.map(lambda r: _run_scenario(r, api.base_url, svc), RUNS)
            done = dict(zip((r.name for r in RUNS), outcomes))
        yield svc, done
    finally:
        api.stop()
        svc.stop()


def row_of(results: Any, run: Run, call: str) -> dict[str, Any]:
    svc, done = results
    ids = done[run.name]
    if isinstance(ids, str):
        pytest.fail(ids)
    rows = svc.rows(ROW_SQL, {"t": ids[call]})
    assert len(rows) == 1, f"{run.name}/{call}: expected one GenAI span in the trace, found {len(rows)}"
    return dict(zip(COLUMNS, rows[0]))


# --- message helpers --------------------------------------------------------------------------


def parse_messages(raw: str, what: str) -> list[dict]:
    """The messages, after checking they are canonical: [{role, parts: [{type, ...}]}]."""
    assert raw, f"{what}: no messages"
    messages = orjson.loads(raw)
    assert isinstance(messages, list) and messages, f"{what}: not a non-empty JSON array: {raw}"
    for m in messages:
        assert isinstance(m, dict) and m.get("role") in ROLES, f"{what}: bad message {m}"
        assert isinstance(m.get("parts"), list) and m["parts"], f"{what}: message without parts {m}"
        check_parts(m["parts"], what)
    return messages


def check_parts(parts: list, what: str) -> None:
    for p in parts:
        assert isinstance(p, dict) and isinstance(p.get("type"), str), f"{what}: bad part {p}"
        if p["type"] == "text":
            assert isinstance(p.get("content"), str), f"{what}: text part without content {p}"
        if p["type"] == "tool_call":
            assert isinstance(p.get("name"), str) and p["name"], f"{what}: tool call without a name {p}"
        if p["type"] == "tool_call_response":
            assert "response" in p or "result" in p, f"{what}: tool response without a response {p}"


def texts(messages: list[dict], role: str) -> list[str]:
    return [p["content"] for m in messages if m["role"] == role for p in m["parts"] if p["type"] == "text"]


def parts_of(messages: list[dict], kind: str) -> list[dict]:
    return [p for m in messages for p in m["parts"] if p["type"] == kind]


def arguments(part: dict) -> Any:
    args = part.get("arguments")
    return orjson.loads(args) if isinstance(args, str) else args


def system_texts(row: dict, inputs: list[dict]) -> list[str]:
    """System instructions may be their own field or a system message in the input."""
    own = []
    if row["system"]:
        parts = orjson.loads(row["system"])
        assert isinstance(parts, list), f"system instructions are not an array of parts: {row['system']}"
        check_parts(parts, "system instructions")
        own = [p["content"] for p in parts if p["type"] == "text"]
    return own + texts(inputs, "system")


# --- the assertions -----------------------------------------------------------------------------


def _params() -> list:
    return [pytest.param(r, id=r.name) for r in RUNS]


@pytest.mark.parametrize("run", _params())
def test_chat(results, run):
    row = row_of(results, run, "chat")
    _check_usage(row, run, scenario.MODEL, fake.PROMPT_TOKENS, fake.COMPLETION_TOKENS, run.cache_read)
    inputs = parse_messages(row["inputs"], "input")
    assert system_texts(row, inputs) == [scenario.SYSTEM]
    assert texts(inputs, "user") == [scenario.QUESTION]
    assert texts(parse_messages(row["outputs"], "output"), "assistant") == [fake.ANSWER]


@pytest.mark.parametrize("run", _params())
def test_streaming_chat_with_usage(results, run):
    row = row_of(results, run, "stream")
    _check_usage(row, run, scenario.MODEL, fake.PROMPT_TOKENS, fake.COMPLETION_TOKENS, run.cache_read)
    assert texts(parse_messages(row["inputs"], "input"), "user") == [scenario.QUESTION]
    if run.stream_output:
        assert texts(parse_messages(row["outputs"], "output"), "assistant") == [fake.ANSWER]
    else:
        assert row["outputs"] == ""


@pytest.mark.parametrize("run", _params())
def test_tool_call(results, run):
    row = row_of(results, run, "tool_call")
    _check_usage(row, run, scenario.MODEL, fake.PROMPT_TOKENS, fake.COMPLETION_TOKENS, run.cache_read)
    assert texts(parse_messages(row["inputs"], "input"), "user") == [scenario.WEATHER_QUESTION]
    (call,) = parts_of(parse_messages(row["outputs"], "output"), "tool_call")
    assert call["name"] == fake.TOOL_NAME and call.get("id") == fake.TOOL_CALL_ID
    assert arguments(call) == orjson.loads(fake.TOOL_ARGUMENTS)


@pytest.mark.parametrize("run", _params())
def test_tool_result_round_trip(results, run):
    row = row_of(results, run, "tool_result")
    _check_usage(row, run, scenario.MODEL, fake.PROMPT_TOKENS, fake.COMPLETION_TOKENS, run.cache_read)
    inputs = parse_messages(row["inputs"], "input")
    assert [m["role"] for m in inputs] == ["user", "assistant", "tool"]
    (call,) = parts_of(inputs, "tool_call")
    assert call["name"] == fake.TOOL_NAME and arguments(call) == orjson.loads(fake.TOOL_ARGUMENTS)
    (response,) = parts_of(inputs, "tool_call_response")
    assert response.get("id") == (fake.TOOL_CALL_ID if run.tool_response_id else None)
    assert response.get("response", response.get("result")) == scenario.TOOL_RESULT
    assert texts(parse_messages(row["outputs"], "output"), "assistant") == [fake.WEATHER_ANSWER]


@pytest.mark.parametrize("run", _params())
def test_embeddings(results, run):
    row = row_of(results, run, "embeddings")
    assert row["operation"] == "embeddings"
    _check_usage(row, run, scenario.EMBEDDING_MODEL, fake.EMBEDDING_TOKENS, 0, 0)


@pytest.mark.parametrize("run", [pytest.param(r, id=r.name) for r in RUNS if r.legacy_provider])
@pytest.mark.parametrize("call", scenario.CALLS)
def test_legacy_provider_name_is_normalized(results, run, call):
    assert row_of(results, run, call)["provider"] == "openai"


def test_every_run_sent_content_the_way_its_configuration_says(results):
    """Content came from span attributes or from log records, as each configuration promises; a
    regression in the log join would otherwise hide behind attribute content (and vice versa)."""
    svc, done = results
    expected = {"openai_v2-default": "log", "openai_v2-latest-span": "span", "openai_v2-latest-event": "log",
                "traceloop": "span", "traceloop-events": "log"}
    for name, source in expected.items():
        ids = done[name]
        assert not isinstance(ids, str), ids
        (got,), = svc.rows("SELECT ContentSource FROM genai_spans_full WHERE TraceId = {t:String}",
                           {"t": ids["chat"]})
        assert got == source, name


def _check_usage(row: dict, run: Run, model: str, input_tokens: int, output_tokens: int,
                 cache_read: int) -> None:
    assert row["service"] == "conformance"
    expected_operation = "embeddings" if model == scenario.EMBEDDING_MODEL else "chat"
    assert row["operation"] == expected_operation
    if not run.legacy_provider:
        assert row["provider"] == "openai"
    assert row["request_model"] == model
    assert row["response_model"] == fake.response_model(model)
    assert (row["input_tokens"], row["output_tokens"], row["cache_read"]) == (input_tokens, output_tokens,
                                                                              cache_read)
    assert row["conversation_id"] == run.conversation_id
