"""A fake OpenAI-compatible HTTP API on 127.0.0.1, for driving the real `openai` client.

It answers `POST /v1/chat/completions` (plain, streamed with `stream_options.include_usage`, and tool
calls) and `POST /v1/embeddings` with fixed, known content and token counts, so a test can assert
exactly what an instrumentation recorded. Every request body is kept in `requests`.
"""

from __future__ import annotations

import base64
import json
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# What every chat answer reports: prompt tokens include the cached ones, as OpenAI counts them.
PROMPT_TOKENS = 42
CACHED_TOKENS = 16
COMPLETION_TOKENS = 7
EMBEDDING_TOKENS = 8
EMBEDDING_DIMENSIONS = 4
RESPONSE_ID = "chatcmpl-conformance-1"
ANSWER = "Paris is the capital of France."
TOOL_CALL_ID = "call_weather_1"
TOOL_NAME = "get_weather"
TOOL_ARGUMENTS = '{"city": "Paris"}'
WEATHER_ANSWER = "It is sunny in Paris."
CREATED = 1_760_000_000


def response_model(request_model: str) -> str:
    """The dated model name the fake reports, so request and response models differ as with OpenAI."""
    return f"{request_model}-2025-01-01"


def _usage() -> dict[str, Any]:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }


def _wants_tool_call(body: dict[str, Any]) -> bool:
    messages = body.get("messages") or []
    return bool(body.get("tools")) and bool(messages) and messages[-1].get("role") != "tool"


def _answer(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    return WEATHER_ANSWER if messages and messages[-1].get("role") == "tool" else ANSWER


def chat_completion(body: dict[str, Any]) -> dict[str, Any]:
    if _wants_tool_call(body):
        message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [{
            "id": TOOL_CALL_ID, "type": "function",
            "function": {"name": TOOL_NAME, "arguments": TOOL_ARGUMENTS}}]}
        finish = "tool_calls"
    else:
        message, finish = {"role": "assistant", "content": _answer(body)}, "stop"
    return {
        "id": RESPONSE_ID, "object": "chat.completion", "created": CREATED,
        "model": response_model(body["model"]), "system_fingerprint": "fp_conformance",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": _usage(),
    }


def chat_chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    base = {"id": RESPONSE_ID, "object": "chat.completion.chunk", "created": CREATED,
            "model": response_model(body["model"]), "system_fingerprint": "fp_conformance"}
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    usage_field = {"usage": None} if include_usage else {}
    chunks = [{**base, **usage_field, "choices": [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    if _wants_tool_call(body):
        chunks.append({**base, **usage_field, "choices": [{"index": 0, "finish_reason": None, "delta": {
            "tool_calls": [{"index": 0, "id": TOOL_CALL_ID, "type": "function",
                            "function": {"name": TOOL_NAME, "arguments": ""}}]}}]})
        half = len(TOOL_ARGUMENTS) // 2
        for piece in (TOOL_ARGUMENTS[:half], TOOL_ARGUMENTS[half:]):
            chunks.append({**base, **usage_field, "choices": [{"index": 0, "finish_reason": None, "delta": {
                "tool_calls": [{"index": 0, "function": {"arguments": piece}}]}}]})
        finish = "tool_calls"
    else:
        words = _answer(body).split(" ")
        for i, word in enumerate(words):
            text = word if i == 0 else " " + word
            chunks.append({**base, **usage_field,
                           "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})
        finish = "stop"
    chunks.append({**base, **usage_field, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if include_usage:
        chunks.append({**base, "choices": [], "usage": _usage()})
    return chunks


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    inputs = body.get("input")
    count = len(inputs) if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else 1
    vector: Any = [0.25 * (k + 1) for k in range(EMBEDDING_DIMENSIONS)]
    if body.get("encoding_format") == "base64":  # the client asks for packed little-endian float32
        vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return {
        "object": "list", "model": response_model(body["model"]),
        "data": [{"object": "embedding", "index": i, "embedding": vector} for i in range(count)],
        "usage": {"prompt_tokens": EMBEDDING_TOKENS, "total_tokens": EMBEDDING_TOKENS},
    }


class FakeOpenAI:
    """The fake API server; `base_url` is what `openai.OpenAI(base_url=...)` takes."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append((self.path, body))
                if self.path == "/v1/chat/completions":
                    if body.get("stream"):
                        self._stream(chat_chunks(body))
                    else:
                        self._json(200, chat_completion(body))
                elif self.path == "/v1/embeddings":
                    self._json(200, embeddings(body))
                else:
                    self._json(404, {"error": {"message": f"no route {self.path}",
                                               "type": "invalid_request_error"}})

            def _json(self, status: int, doc: dict[str, Any]) -> None:
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, chunks: list[dict[str, Any]]) -> None:
                events = [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks]
                data = b"".join(events) + b"data: [DONE]\n\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="fake-openai", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
