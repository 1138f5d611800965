"""Value converters: foreign message, tool and document shapes → the canonical GenAI JSON.

Canonical messages follow `gen-ai-input-messages.json` / `gen-ai-output-messages.json`:
`[{"role": ..., "parts": [{"type": "text", "content": ...}, ...], "name"?: ..., "finish_reason"?: ...}]`.
Every converter accepts the value as a JSON string or as a structured value (list / dict from an
OTLP array or kvlist), never raises on odd input (it returns None or a best-effort text part), and
never mutates what it was given.

The shapes recognised here are payload shapes (OpenAI, Anthropic, Gemini, Vercel AI SDK, Pydantic
AI, OpenInference, LangChain), not attribute names; which attribute holds which shape is mapping data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from spanhouse import semconv as sc
from spanhouse.normalize.spec import ValueMap

Message = dict[str, Any]
_TEXT_TYPES = frozenset({"text", "input_text", "output_text"})
_REASONING_TYPES = frozenset({"reasoning", "thinking"})
_CANONICAL_TYPES = frozenset(
    {"tool_call", "uri", "blob", "file", "server_tool_call", "server_tool_call_response"}
)
_MODALITIES = ("image", "video", "audio")
_PLAIN_MESSAGE_KEYS = frozenset({"role", "content"})
_ROLES = frozenset({"user", "assistant", "system", "tool"})
# LangChain's ChatMessage: a message whose role is its own `role` field, not its type.
_LC_CHAT = "chat"
_LC_SUFFIXES = ("messagechunk", "message")
# Vercel AI SDK v5 tool outputs whose `value` is the result itself; `content` (parts) and the rest are
# kept as sent.
_VERCEL_VALUE_OUTPUTS = frozenset({"text", "json", "error-text", "error-json"})


def loads(value: Any) -> Any:
    """`value` decoded when it is a string holding a JSON object, array or string; otherwise as is."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, str) and value[:1] in ("{", "[", '"'):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def dumps(value: Any) -> str:
    """Compact JSON text of `value` (non-JSON types as their string)."""
    return orjson.dumps(value, default=str).decode()


def as_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else dumps(value)


def _modality(mime: Any, default: str = "image") -> str:
    if isinstance(mime, str):
        head = mime.split("/", 1)[0]
        if head in _MODALITIES:
            return head
        return "document" if mime else default
    return default


def _media(kind: str, ref: Any, mime: Any = None, modality: str | None = None) -> dict | None:
    """A `uri` part for links, a `blob` part for inline data."""
    if not isinstance(ref, str) or not ref:
        return None
    mod = modality or _modality(mime)
    if ref.startswith(("http://", "https://", "gs://", "s3://", "file://")):
        part = {"type": "uri", "modality": mod, "uri": ref}
    elif ref.startswith("data:"):
        header, _, data = ref.partition(",")
        mime = mime or header[5:].split(";", 1)[0] or None
        part = {"type": "blob", "modality": modality or _modality(mime), "content": data}
    else:
        part = {
            "type": "blob" if kind != "uri" else "uri",
            "modality": mod,
            ("content" if kind != "uri" else "uri"): ref,
        }
    if isinstance(mime, str) and mime:
        part["mime_type"] = mime
    return part


class Formats:
    """The converters, parameterised by the shared value maps (message roles, finish reasons)."""

    def __init__(self, roles: ValueMap | None = None, finish_reasons: ValueMap | None = None,
                 providers: ValueMap | None = None):
        self._roles = roles.map if roles else {}
        self._finish = finish_reasons.map if finish_reasons else {}
        self._providers = providers.map if providers else {}

    def provider_model(self, value: Any, provider: Any = None) -> Any:
        """A LiteLLM-style `provider/model` name (`anthropic/claude-sonnet-4`) → the model alone, when
        the first segment is the span's own `provider`, both as the `provider` map names them and a
        cloud's services counted as one (LiteLLM's `gemini/…` on a `google` span: `gcp.gemini`,
        `gcp.gen_ai`); any other value as sent: `openai/gpt-oss-120b` served by Groq, or
        `mistralai/Mixtral-8x7B` by Together, names an organisation on a hub and is priced as the
        host's model."""
        if isinstance(value, str) and "/" in value and isinstance(provider, str) and provider:
            head, _, model = value.partition("/")
            ours = self._providers.get(head.lower())
            theirs = self._providers.get(provider.lower(), provider.lower())
            if model and ours and ours.split(".")[0] == theirs.split(".")[0]:
                return model
        return value

    # --- parts ----------------------------------------------------------------------------------

    def role(self, value: Any, default: str) -> str:
        if not isinstance(value, str) or not value:
            return default
        mapped = self._roles.get(value.lower())
        return mapped if mapped else value

    def finish_reason(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._finish.get(value.lower(), value)
        return value

    def tool_call(self, item: Any) -> dict | None:
        """A `tool_call` part from OpenAI (`{id, function: {name, arguments}}`), Anthropic `tool_use`,
        Vercel (`toolCallId`, `toolName`, `args`/`input`), Gemini `functionCall` or a flat
        `{id, name, arguments}`."""
        item = loads(item)
        if not isinstance(item, dict):
            return None
        fn = item.get("function") if isinstance(item.get("function"), dict) else item.get("functionCall")
        src = fn if isinstance(fn, dict) else item
        name = src.get("name", item.get("toolName"))
        if not isinstance(name, str) or not name:
            return None
        part: dict[str, Any] = {"type": "tool_call"}
        call_id = item.get("id", item.get("toolCallId", item.get("call_id")))
        if call_id is not None:
            part["id"] = str(call_id)
        part["name"] = name
        for key in ("arguments", "args", "input"):
            if key in src and src[key] is not None:
                part["arguments"] = loads(src[key])
                break
        return part

    def tool_response(self, call_id: Any, response: Any) -> dict:
        part: dict[str, Any] = {"type": "tool_call_response"}
        if call_id is not None:
            part["id"] = str(call_id)
        part["response"] = response
        return part

    def part(self, item: Any) -> dict | None:
        """One canonical part from any known content-part shape; unknown typed parts are kept as
        generic `{type, ...}` parts, untyped values become text."""
        if item is None:
            return None
        if isinstance(item, str):
            return {"type": "text", "content": item}
        if not isinstance(item, dict):
            return {"type": "text", "content": dumps(item)}
        t = item.get("type", item.get("kind"))
        if t is None:
            return self._untyped_part(item)
        t = str(t)
        if t in _TEXT_TYPES:
            content = item.get("content", item.get("text"))
            return {
                "type": "text",
                "content": content if isinstance(content, str) else as_text(content) or "",
            }
        if t in _REASONING_TYPES:
            content = item.get("content", item.get("text", item.get("thinking")))
            return {"type": "reasoning", "content": as_text(content) or ""}
        if t == "tool_call_response":
            if "response" not in item and "result" in item:
                fixed = {k: v for k, v in item.items() if k != "result"}
                fixed["response"] = item["result"]
                return fixed
            return item
        if t == "tool_call" and "args" in item and "arguments" not in item:
            return self.tool_call(item)  # a LangChain standard content block
        if t in _CANONICAL_TYPES:
            return item
        if t in ("tool-call", "tool_use", "function_call"):
            return self.tool_call(item)
        if t in ("tool-result", "tool_result", "function_call_output"):
            response = item.get("result", item.get("output", item.get("content")))
            if (
                t == "tool-result"
                and type(response) is dict
                and response.get("type") in _VERCEL_VALUE_OUTPUTS
                and "value" in response
            ):
                response = response["value"]
            return self.tool_response(
                item.get("toolCallId", item.get("tool_use_id", item.get("call_id"))), response
            )
        if t in ("image_url", "image-url"):
            ref = item.get("image_url", item.get("url"))
            if isinstance(ref, dict):
                ref = ref.get("url")
            return _media("uri", ref, item.get("mime_type"), "image") or item
        if t in ("audio-url", "video-url", "document-url"):
            return _media("uri", item.get("url"), item.get("media_type"), t.split("-", 1)[0]) or item
        if t == "image":
            ref = item.get("image", item.get("image_url", item.get("url")))
            source = item.get("source")
            if isinstance(source, dict):  # Anthropic
                ref = source.get("url") or source.get("data")
                return _media("blob", ref, source.get("media_type"), "image") or item
            if isinstance(ref, dict):
                ref = ref.get("url")
            return _media("blob", ref, item.get("mimeType", item.get("mediaType")), "image") or item
        if t in ("file", "document", "binary"):
            ref = item.get("data", item.get("binary_content", item.get("url")))
            source = item.get("source")
            if isinstance(source, dict):
                ref = source.get("url") or source.get("data")
            mime = item.get("mimeType", item.get("mediaType", item.get("media_type")))
            return _media("blob", ref, mime) or item
        if t == "input_audio":
            audio = item.get("input_audio") or {}
            fmt = audio.get("format") if isinstance(audio, dict) else None
            return (
                _media(
                    "blob",
                    audio.get("data") if isinstance(audio, dict) else None,
                    f"audio/{fmt}" if fmt else None,
                    "audio",
                )
                or item
            )
        return item

    def _untyped_part(self, item: dict) -> dict | None:
        if isinstance(item.get("text"), str):
            return {"type": "text", "content": item["text"]}
        if isinstance(item.get("functionCall"), dict):
            return self.tool_call(item)
        if isinstance(item.get("functionResponse"), dict):
            fr = item["functionResponse"]
            return self.tool_response(fr.get("id"), fr.get("response"))
        for key, kind in (("inlineData", "blob"), ("fileData", "uri")):
            data = item.get(key)
            if isinstance(data, dict):
                return _media(kind, data.get("data", data.get("fileUri")), data.get("mimeType"))
        if "content" in item:
            return {"type": "text", "content": as_text(item["content"]) or ""}
        return {"type": "text", "content": dumps(item)}

    def parts(self, content: Any) -> list[dict]:
        """Parts from message content: text, a part list, or a JSON string holding a part list (some
        SDKs serialise content blocks). Any other string is text, even if it happens to be JSON."""
        if type(content) is str:
            if content[:1] == "[" and '"type"' in content:
                parsed = loads(content)
                if (
                    isinstance(parsed, list)
                    and parsed
                    and all(isinstance(p, dict) and "type" in p for p in parsed)
                ):
                    content = parsed
            if type(content) is str:
                return [{"type": "text", "content": content}] if content else []
        if content is None:
            return []
        if isinstance(content, dict):
            content = [content]
        if isinstance(content, list):
            return [p for p in (self.part(x) for x in content) if p]
        return [{"type": "text", "content": dumps(content)}]

    # --- messages -------------------------------------------------------------------------------

    def _role_word(self, word: Any) -> bool:
        """Whether `word` names a role (a canonical one or one of the `role` map's)."""
        return isinstance(word, str) and ((low := word.lower()) in _ROLES or low in self._roles)

    def _langchain(self, obj: dict) -> tuple[str, dict] | None:
        """(type, fields) of a LangChain-serialized message, without a `role`: `{"type", "data":
        {"content", ...}}` (`messages_to_dict`), `{"lc": 1, "type": "constructor", "id": [...,
        "AIMessage"], "kwargs"}`, or a plain `{"type": "human", "content"}`. The type is lower case,
        without a `Message` or `MessageChunk` suffix (`AIMessageChunk` → `ai`). None for any other
        shape."""
        kind = obj.get("type")
        if obj.get("lc") == 1 and kind == "constructor":
            ids, body = obj.get("id"), obj.get("kwargs")
            if not isinstance(body, dict) or not isinstance(ids, list) or not ids:
                return None
            kind = body.get("type") if isinstance(body.get("type"), str) else ids[-1]
        elif isinstance(kind, str) and isinstance(obj.get("data"), dict) and "content" in obj["data"]:
            body = obj["data"]
        elif "content" in obj and (self._role_word(kind) or kind == _LC_CHAT):
            body = obj
        else:
            return None
        if not isinstance(kind, str):
            return ("", body)
        low = kind.lower()
        for suffix in _LC_SUFFIXES:
            if low.endswith(suffix) and len(low) > len(suffix):
                low = low[: -len(suffix)]
                break
        return (low, body)

    def _langchain_message(self, kind: str, body: dict) -> dict | None:
        """The message fields of a LangChain message with its role, or None for a type that names no
        role (`RemoveMessage`, a non-message object): nothing is guessed."""
        if kind == _LC_CHAT:
            role = body.get("role")
            if not isinstance(role, str) or not role:
                return None
        elif self._role_word(kind):
            role = kind
        else:
            return None
        fields = {**body, "role": role}
        extra = body.get("additional_kwargs")
        if isinstance(extra, dict) and not body.get("tool_calls"):  # before LangChain's own tool_calls
            fields["tool_calls"] = extra.get("tool_calls")
            fields["function_call"] = extra.get("function_call")
        return fields

    def _is_pair(self, obj: Any) -> bool:
        """Whether `obj` is LangChain's `(role, content)` message tuple, sent as a two-item list."""
        return (
            type(obj) is list
            and len(obj) == 2
            and self._role_word(obj[0])
            and isinstance(obj[1], (str, list))
        )

    def message(self, obj: Any, default_role: str) -> Message | None:
        """One canonical message from an OpenAI, Anthropic, Gemini, Vercel, Pydantic AI, OpenInference,
        LangChain or already-canonical message; a bare string is a text message in `default_role`. A
        LangChain message whose type names no role gives None."""
        if type(obj) is dict and type(obj.get("content")) is str and obj.keys() <= _PLAIN_MESSAGE_KEYS:
            # the common {role, content: text} shape, without the general path's checks
            role = self.role(obj.get("role"), default_role)
            if role != "tool":
                return {"role": role, "parts": self.parts(obj["content"])}
        obj = loads(obj)
        if obj is None:
            return None
        if not isinstance(obj, dict):
            if self._is_pair(obj):
                return self.message({"role": obj[0], "content": obj[1]}, default_role)
            text = obj if isinstance(obj, str) else dumps(obj)
            return {"role": default_role, "parts": [{"type": "text", "content": text}]}
        if "role" not in obj and (lc := self._langchain(obj)) is not None:
            obj = self._langchain_message(*lc)
            if obj is None:
                return None
        if "role" not in obj and obj.get("type") in ("function_call", "function_call_output", "reasoning"):
            part = self.part(obj)
            role = "tool" if obj.get("type") == "function_call_output" else "assistant"
            return {"role": role, "parts": [part] if part else []}
        role = self.role(obj.get("role"), default_role)
        if isinstance(obj.get("parts"), list):
            parts = [p for p in (self.part(x) for x in obj["parts"]) if p]
        else:
            content = obj.get("content", obj.get("text"))
            parts = self.parts(content)
            if role == "tool" and not any(p.get("type") == "tool_call_response" for p in parts):
                call_id = obj.get("tool_call_id", obj.get("id", obj.get("tool_use_id")))
                parts = [self.tool_response(call_id, loads(content))]
        called = {p.get("id") for p in parts if p.get("type") == "tool_call"}
        for tc in obj.get("tool_calls") or ():
            part = self.tool_call(tc)
            if part and (part.get("id") is None or part["id"] not in called):  # not twice, as content too
                parts.append(part)
        if isinstance(obj.get("function_call"), dict):
            part = self.tool_call({"function": obj["function_call"]})
            if part:
                parts.append(part)
        msg: Message = {"role": role, "parts": parts}
        name = obj.get("name")
        if isinstance(name, str) and name and role != "tool":
            msg["name"] = name
        reason = obj.get("finish_reason", obj.get("stop_reason"))
        if reason is not None:
            msg["finish_reason"] = reason
        elif not parts and "name" not in msg:
            return None  # a bare role (OpenInference's output of a failed call): no message was sent
        return msg

    def messages(self, value: Any, default_role: str, *, output: bool = False) -> list[Message] | None:
        """A message list from a list of messages, a request (`{messages}`, `{contents}`), a response
        (`{choices}`, `{candidates}`, an Anthropic message), a single message or plain text."""
        v = loads(value)
        if v is None or v == "" or v == []:
            return None
        if isinstance(v, dict):
            if output and isinstance(v.get("choices"), list):
                return [m for m in (self._choice(c) for c in v["choices"]) if m]
            if output and isinstance(v.get("candidates"), list):
                return [m for m in (self._candidate(c) for c in v["candidates"]) if m]
            if output and isinstance(v.get("generations"), list):  # LangChain's LLMResult
                gens = [g for sub in v["generations"] for g in (sub if isinstance(sub, list) else [sub])]
                return [m for m in (self._generation(g) for g in gens) if m] or None
            for key in ("messages", "contents"):
                if isinstance(v.get(key), list):
                    v = v[key]
                    break
            else:
                if output and isinstance(v.get("output"), list) and "role" not in v:
                    v = [x for x in v["output"] if isinstance(x, dict)]
                elif any(k in v for k in ("role", "parts", "content")) or self._langchain(v):
                    m = self.message(v, default_role)
                    return [m] if m else None
                elif isinstance(v.get("prompt"), str):
                    return [{"role": default_role, "parts": [{"type": "text", "content": v["prompt"]}]}]
                else:
                    return [{"role": default_role, "parts": [{"type": "text", "content": dumps(v)}]}]
        if isinstance(v, list):
            if v and all(isinstance(x, list) and not self._is_pair(x) for x in v):
                v = [x for sub in v for x in sub]  # a batch of message lists
            out = [m for m in (self.message(x, default_role) for x in v) if m]
            return out or None
        m = self.message(v, default_role)
        return [m] if m else None

    def _choice(self, choice: Any) -> Message | None:
        if not isinstance(choice, dict):
            return self.message(choice, "assistant")
        body = choice.get("message", choice.get("delta"))
        msg = self.message(body if body is not None else choice.get("text", ""), "assistant")
        if msg is not None and choice.get("finish_reason") is not None:
            msg["finish_reason"] = choice["finish_reason"]
        return msg

    def _generation(self, gen: Any) -> Message | None:
        if not isinstance(gen, dict):
            return self.message(gen, "assistant")
        body = gen.get("message")
        msg = self.message(body if body is not None else gen.get("text", ""), "assistant")
        info = gen.get("generation_info")
        if msg is not None and isinstance(info, dict) and info.get("finish_reason") is not None:
            msg["finish_reason"] = info["finish_reason"]
        return msg

    def _candidate(self, cand: Any) -> Message | None:
        if not isinstance(cand, dict):
            return None
        msg = self.message(cand.get("content") or {}, "assistant")
        if msg is not None and cand.get("finishReason") is not None:
            msg["finish_reason"] = cand["finishReason"]
        return msg

    def split_input(self, messages: list[Message] | None) -> dict[str, Any] | None:
        """{input messages, system instructions}: system messages become `gen_ai.system_instructions`."""
        if not messages:
            return None
        system = [p for m in messages if m.get("role") == "system" for p in m.get("parts", ())]
        rest = [m for m in messages if m.get("role") != "system"]
        out: dict[str, Any] = {}
        if rest:
            out[sc.GEN_AI_INPUT_MESSAGES] = dumps(rest)
        if system:
            out[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = dumps(system)
        return out or None

    def finish_output(self, messages: list[Message] | None) -> dict[str, Any] | None:
        """{output messages, finish reasons}: each message's finish reason mapped to the canonical enum
        in the message, and kept as sent in `gen_ai.response.finish_reasons`."""
        if not messages:
            return None
        reasons = []
        for m in messages:
            if "finish_reason" in m:
                raw = m["finish_reason"]
                reasons.append(str(raw))
                m["finish_reason"] = self.finish_reason(raw)
        out: dict[str, Any] = {sc.GEN_AI_OUTPUT_MESSAGES: dumps(messages)}
        if reasons:
            out[sc.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
        return out

    def chat(self, value: Any, target: str) -> dict[str, Any] | None:
        if target == sc.GEN_AI_OUTPUT_MESSAGES:
            return self.finish_output(self.messages(value, "assistant", output=True))
        if target == sc.GEN_AI_SYSTEM_INSTRUCTIONS:
            parts = self.parts(value)
            return {target: dumps(parts)} if parts else None
        return self.split_input(self.messages(value, "user"))

    def text(self, value: Any, target: str) -> dict[str, Any] | None:
        text = as_text(value)
        if not text:
            return None
        role = "assistant" if target == sc.GEN_AI_OUTPUT_MESSAGES else "user"
        msg = [{"role": role, "parts": [{"type": "text", "content": text}]}]
        return self.chat(msg, target)

    def vercel_prompt(self, value: Any, target: str) -> dict[str, Any] | None:
        """The Vercel AI SDK's outer-span `ai.prompt`: `{system?, prompt?, messages?}`."""
        v = loads(value)
        if not isinstance(v, dict):
            return self.chat(v, target)
        messages: list[Message] = []
        system = v.get("system")
        if isinstance(system, str) and system:
            messages.append({"role": "system", "parts": [{"type": "text", "content": system}]})
        for key in ("messages", "prompt"):
            if v.get(key) is not None:
                messages += self.messages(v[key], "user") or []
        return self.split_input(messages)

    def fix_messages(self, value: Any) -> Any | None:
        """Canonical messages with `tool_call_response.result` renamed to `response`, or None when the
        value needs no fix. Cheap on the common path: a string is parsed only if it mentions both."""
        if isinstance(value, str):
            if '"tool_call_response"' not in value or '"result"' not in value:
                return None
            parsed = loads(value)
        elif isinstance(value, list):
            parsed = value
        else:
            return None
        if not isinstance(parsed, list):
            return None
        changed = False
        out = []
        for m in parsed:
            if isinstance(m, dict) and isinstance(m.get("parts"), list):
                parts = []
                for p in m["parts"]:
                    if (
                        isinstance(p, dict)
                        and p.get("type") == "tool_call_response"
                        and "result" in p
                        and "response" not in p
                    ):
                        p = self.part(p)
                        changed = True
                    parts.append(p)
                m = {**m, "parts": parts}
            out.append(m)
        if not changed:
            return None
        return dumps(out) if isinstance(value, str) else out

    # --- tools, documents, evaluations ----------------------------------------------------------

    def tool_definitions(self, value: Any) -> str | None:
        """`[{type, name, description?, parameters?}]` from OpenAI tools, flat definitions, JSON-string
        lists, OpenInference `tool.json_schema` items or Pydantic AI `function_tools`."""
        v = loads(value)
        if isinstance(v, dict):
            v = v.get("tools", v.get("function_tools", [v]))
        if not isinstance(v, list):
            return None
        out = []
        for t in v:
            t = loads(t)
            if not isinstance(t, dict):
                continue
            schema = loads(t.get("json_schema"))
            if isinstance(schema, dict):
                t = {**{k: x for k, x in t.items() if k != "json_schema"}, **schema}
            fn = t.get("function") if isinstance(t.get("function"), dict) else t
            name = fn.get("name")
            if not isinstance(name, str) or not name:
                continue
            kind = t.get("type")
            d: dict[str, Any] = {"type": kind if isinstance(kind, str) and kind else "function", "name": name}
            if fn.get("description") is not None:
                d["description"] = fn["description"]
            for key in ("parameters", "inputSchema", "input_schema", "parameters_json_schema"):
                if fn.get(key) is not None:
                    d["parameters"] = loads(fn[key])
                    break
            out.append(d)
        return dumps(out) if out else None

    def call_arguments(self, value: Any) -> str | None:
        """Tool-call arguments as JSON text. A decorated Python function's call recorded as
        `{"args": [...], "kwargs": {...}}` (OpenLLMetry's traceloop.entity.input, Langfuse's @observe
        input) is its keyword-argument object when it has no positional arguments; with positional
        ones (whose names are unknown here), and any other value, it is kept as sent."""
        v = loads(value)
        if (isinstance(v, dict) and len(v) == 2 and v.get("args") == [] and isinstance(v.get("kwargs"), dict)):
            return dumps(v["kwargs"])
        if value is None or value == "":
            return None
        return value if isinstance(value, str) else dumps(value)

    def tool_result(self, value: Any) -> Any:
        """A tool's result. LangChain's ToolMessage (what OpenInference's LangChain instrumentation
        records as a tool span's output: `{"type": "tool", "data": {"content": ..., "tool_call_id"}}`
        or its `lc` constructor form) is its content; any other value is kept as sent."""
        v = loads(value)
        if isinstance(v, dict) and (lc := self._langchain(v)) is not None and lc[0] == "tool":
            content = lc[1].get("content")
            return content if isinstance(content, str) else dumps(content)
        return value

    def documents(self, value: Any) -> str | None:
        """`[{id, content?, score?, metadata?}]` from retriever outputs (OpenInference documents,
        LangChain/MLflow `page_content` documents, plain dicts)."""
        v = loads(value)
        if isinstance(v, dict):
            v = v.get("documents", [v])
        if not isinstance(v, list):
            return None
        out = []
        for d in v:
            d = loads(d)
            if not isinstance(d, dict):
                continue
            doc: dict[str, Any] = {}
            meta = loads(d.get("metadata"))
            doc_id = d.get("id")
            if doc_id is None and isinstance(meta, dict):
                doc_id = meta.get("id", meta.get("doc_id"))
            if doc_id is not None:
                doc["id"] = doc_id
            content = d.get("content", d.get("page_content", d.get("text")))
            if content is not None:
                doc["content"] = content
            if d.get("score") is not None:
                doc["score"] = _number(d["score"])
            if meta is not None:
                doc["metadata"] = meta
            if doc:
                out.append(doc)
        return dumps(out) if out else None

    def evaluations(self, items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Attribute maps of `gen_ai.evaluation.result` events from `{name, score, label, explanation}`."""
        out = []
        for item in items:
            name = item.get("name")
            if not isinstance(name, str) or not name:
                continue
            attrs: dict[str, Any] = {sc.GEN_AI_EVALUATION_NAME: name}
            score = _number(item.get("score"))
            if isinstance(score, (int, float)):
                attrs[sc.GEN_AI_EVALUATION_SCORE_VALUE] = float(score)
            if item.get("label") is not None:
                attrs[sc.GEN_AI_EVALUATION_SCORE_LABEL] = str(item["label"])
            if item.get("explanation") is not None:
                attrs[sc.GEN_AI_EVALUATION_EXPLANATION] = str(item["explanation"])
            out.append(attrs)
        return out


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def seconds_since(value: Any, start_unix_nano: int) -> float | None:
    """Seconds from the span start to `value`, an ISO-8601 timestamp (UTC when it names no offset, as
    Langfuse SDKs mean it); None when earlier. Raises ValueError when `value` is no such timestamp."""
    v = loads(value)
    if not isinstance(v, str):
        raise ValueError(f"not an ISO-8601 timestamp: {v!r}")
    ts = datetime.fromisoformat(v)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    delta = ts.timestamp() - start_unix_nano / 1e9
    return round(delta, 6) if delta >= 0 else None
