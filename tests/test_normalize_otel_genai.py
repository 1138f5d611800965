"""otel_genai.yaml: older OpenTelemetry GenAI names, v1.41 renames, deprecated events, inference,
and the guarantees every mapping shares (never overwrite, unknown untouched, normalized_from)."""

from __future__ import annotations

import json

import pytest
from normalize_support import batch_of, messages, normalize, normalize_span, processor

from spanhouse import semconv as sc
from spanhouse.batch import Event

V1_36 = sc.SpanhouseNormalizedFromValues.OTEL_GENAI_V1_36.value
CURRENT = sc.SpanhouseNormalizedFromValues.OTEL_GENAI.value


def test_v1_36_names_are_renamed_and_the_originals_kept():
    attrs = {
        "gen_ai.system": "openai",
        "gen_ai.usage.prompt_tokens": 120,
        "gen_ai.usage.completion_tokens": 30,
        "gen_ai.openai.request.seed": 7,
        "gen_ai.openai.request.response_format": "json_schema",
        "gen_ai.openai.response.system_fingerprint": "fp_1",
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
    }
    out = normalize(attrs)
    assert out[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert out[sc.GEN_AI_USAGE_INPUT_TOKENS] == 120 and out[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 30
    assert out[sc.GEN_AI_REQUEST_SEED] == 7
    assert out[sc.GEN_AI_OUTPUT_TYPE] == "json"
    assert out[sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] == "fp_1"
    assert out["gen_ai.system"] == "openai" and out["gen_ai.usage.prompt_tokens"] == 120
    assert out[sc.SPANHOUSE_NORMALIZED_FROM] == [V1_36]
    # no operation was sent; a request model makes it a chat span
    assert out[sc.GEN_AI_OPERATION_NAME] == "chat"


@pytest.mark.parametrize(
    "system, provider",
    [
        ("xai", "x_ai"),
        ("az.ai.openai", "azure.ai.openai"),
        ("az.ai.inference", "azure.ai.inference"),
        ("vertex_ai", "gcp.vertex_ai"),
        ("gemini", "gcp.gemini"),
        ("Anthropic", "anthropic"),
        ("MistralAI", "mistral_ai"),
        ("AWS", "aws.bedrock"),
        ("ibm.watson.ai", "ibm.watsonx.ai"),
        ("openai.chat", "openai"),
        ("groq", "groq"),
        ("vLLM", "vLLM"),
    ],
)
def test_gen_ai_system_values_are_mapped(system, provider):
    assert normalize({"gen_ai.system": system})[sc.GEN_AI_PROVIDER_NAME] == provider


def test_framework_names_are_not_providers():
    out = normalize({"gen_ai.system": "langchain", sc.GEN_AI_OPERATION_NAME: "chat"})
    assert sc.GEN_AI_PROVIDER_NAME not in out


def test_newest_renames_cache_creation_becomes_cache_write():
    out = normalize(
        {
            sc.GEN_AI_OPERATION_NAME: "chat",
            sc.GEN_AI_USAGE_INPUT_TOKENS: 1000,
            "gen_ai.usage.cache_creation.input_tokens": 200,
            "gen_ai.usage.cache_read_input_tokens": 300,
            "gen_ai.usage.reasoning_tokens": 40,
        }
    )
    assert out[sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] == 200
    assert out[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 300
    assert out[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 40
    assert out[sc.GEN_AI_USAGE_INPUT_TOKENS] == 1000  # cache is part of input: nothing added
    assert sc.SPANHOUSE_USAGE_INPUT_INCLUDES_CACHE_ADJUSTED not in out
    assert out[sc.SPANHOUSE_NORMALIZED_FROM] == [V1_36, CURRENT]


def test_retrieval_top_k_moves_to_the_retrieval_attribute():
    out = normalize({sc.GEN_AI_OPERATION_NAME: "retrieval", sc.GEN_AI_REQUEST_TOP_K: 5.0})
    assert out[sc.GEN_AI_RETRIEVAL_TOP_K] == 5 and type(out[sc.GEN_AI_RETRIEVAL_TOP_K]) is int
    assert out[sc.GEN_AI_REQUEST_TOP_K] == 5.0  # a canonical name: kept, even with drop_original
    assert out[sc.SPANHOUSE_NORMALIZED_FROM] == [CURRENT]
    # an inferred retrieval operation counts too; a retriever's own top_k is never replaced
    out = normalize({sc.GEN_AI_RETRIEVAL_QUERY_TEXT: "q", sc.GEN_AI_REQUEST_TOP_K: 3})
    assert out[sc.GEN_AI_OPERATION_NAME] == "retrieval" and out[sc.GEN_AI_RETRIEVAL_TOP_K] == 3
    out = normalize({sc.GEN_AI_OPERATION_NAME: "retrieval", sc.GEN_AI_REQUEST_TOP_K: 3, sc.GEN_AI_RETRIEVAL_TOP_K: 8})
    assert out[sc.GEN_AI_RETRIEVAL_TOP_K] == 8
    # on model calls top_k is a sampling parameter
    chat = {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "m", sc.GEN_AI_REQUEST_TOP_K: 40}
    assert normalize(dict(chat)) == chat


def test_whole_number_doubles_in_int_attributes_become_ints():
    proc = processor()
    attrs = {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_REQUEST_MODEL: "m",
        sc.GEN_AI_REQUEST_TOP_K: 40.0,
        sc.GEN_AI_USAGE_INPUT_TOKENS: 120.0,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 30,
        sc.GEN_AI_REQUEST_TEMPERATURE: 1.0,  # a double attribute: not touched
        sc.SERVER_PORT: 443.0,  # the cast covers gen_ai.* only
    }
    before = proc.conversion_errors
    (out,) = proc.process(batch_of({"attributes": attrs})).attributes
    assert out == {
        **attrs,
        sc.GEN_AI_REQUEST_TOP_K: 40,
        sc.GEN_AI_USAGE_INPUT_TOKENS: 120,
        sc.SPANHOUSE_NORMALIZED_FROM: [CURRENT],
    }
    assert type(out[sc.GEN_AI_REQUEST_TOP_K]) is int and type(out[sc.GEN_AI_USAGE_INPUT_TOKENS]) is int
    assert type(out[sc.SERVER_PORT]) is float and proc.conversion_errors == before
    # beside foreign attributes (the engine's full path) too
    out = normalize({"llm.request.type": "chat", "gen_ai.system": "openai", sc.GEN_AI_REQUEST_TOP_K: 8.0})
    assert out[sc.GEN_AI_REQUEST_TOP_K] == 8 and type(out[sc.GEN_AI_REQUEST_TOP_K]) is int


@pytest.mark.parametrize("value", [40.7, float("inf"), 1e30])
@pytest.mark.parametrize("foreign", [False, True])
def test_other_doubles_in_int_attributes_stay_as_sent_and_are_counted(value, foreign):
    proc = processor()
    attrs = {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_TOP_K: value}
    if foreign:
        attrs["gen_ai.system"] = "openai"
    before = proc.conversion_errors
    (out,) = proc.process(batch_of({"attributes": attrs})).attributes
    assert out[sc.GEN_AI_REQUEST_TOP_K] == value and type(out[sc.GEN_AI_REQUEST_TOP_K]) is float
    assert proc.conversion_errors == before + 1
    assert proc.normalizer.converter_exceptions == 0


def test_every_registry_rename_is_mapped():
    out = normalize({old: ("x" if sc.ATTRIBUTE_TYPES[old] == "string" else 5) for old in sc.RENAMED})
    for old, new in sc.RENAMED.items():
        assert new in out, f"{old} -> {new} not mapped"


def test_canonical_values_are_never_overwritten():
    attrs = {
        sc.GEN_AI_PROVIDER_NAME: "anthropic",
        "gen_ai.system": "openai",
        sc.GEN_AI_USAGE_INPUT_TOKENS: 50,
        "gen_ai.usage.prompt_tokens": 999,
        sc.GEN_AI_OPERATION_NAME: "text_completion",
        sc.GEN_AI_INPUT_MESSAGES: '[{"role":"user","parts":[{"type":"text","content":"kept"}]}]',
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": "ignored",
    }
    out = normalize(dict(attrs))
    for key in (
        sc.GEN_AI_PROVIDER_NAME,
        sc.GEN_AI_USAGE_INPUT_TOKENS,
        sc.GEN_AI_OPERATION_NAME,
        sc.GEN_AI_INPUT_MESSAGES,
    ):
        assert out[key] == attrs[key]
    assert sc.SPANHOUSE_NORMALIZED_FROM not in out  # nothing was taken from the foreign names


def test_unknown_attributes_and_unknown_conventions_pass_untouched():
    attrs = {
        "http.method": "GET",
        "app.ticket.priority": 2,
        "custom.payload": {"a": [1, 2]},
        "db.system.name": "postgresql",
    }
    out = normalize(dict(attrs))
    assert out == attrs


def test_resource_canonical_value_wins_and_old_resource_name_is_renamed():
    b = batch_of(
        {"attributes": {"deployment.environment": "staging-span"}},
        resource={"service.name": "svc", "deployment.environment": "prod"},
    )
    processor().process(b)
    assert b.resources[0].attributes[sc.DEPLOYMENT_ENVIRONMENT_NAME] == "prod"
    assert sc.DEPLOYMENT_ENVIRONMENT_NAME not in b.attributes[0]  # the resource already has it


def test_indexed_prompt_and_completion_become_canonical_messages():
    attrs = {
        sc.GEN_AI_OPERATION_NAME: "chat",
        "gen_ai.system": "openai",
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "You are terse.",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": "Weather in Paris?",
        "gen_ai.prompt.2.role": "assistant",
        "gen_ai.prompt.2.tool_calls.0.id": "call_1",
        "gen_ai.prompt.2.tool_calls.0.name": "weather",
        "gen_ai.prompt.2.tool_calls.0.arguments": '{"city": "Paris"}',
        "gen_ai.prompt.3.role": "tool",
        "gen_ai.prompt.3.tool_call_id": "call_1",
        "gen_ai.prompt.3.content": "18C",
        "gen_ai.prompt.10.role": "user",
        "gen_ai.prompt.10.content": "thanks",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "It is 18C.",
        "gen_ai.completion.0.finish_reason": "stop",
    }
    out = normalize(attrs)
    inp = messages(out[sc.GEN_AI_INPUT_MESSAGES])
    assert [m["role"] for m in inp] == ["user", "assistant", "tool", "user"]  # by index, 10 after 3
    assert inp[1]["parts"] == [
        {"type": "tool_call", "id": "call_1", "name": "weather", "arguments": {"city": "Paris"}}
    ]
    assert inp[2]["parts"] == [{"type": "tool_call_response", "id": "call_1", "response": "18C"}]
    assert messages(out[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "You are terse."}]
    assert messages(out[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "It is 18C."}], "finish_reason": "stop"}
    ]
    assert out[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]


def test_completion_tool_calls_and_finish_reason_vocabulary():
    out = normalize(
        {
            sc.GEN_AI_OPERATION_NAME: "chat",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.finish_reason": "tool_calls",
            "gen_ai.completion.0.tool_calls.0.id": "c9",
            "gen_ai.completion.0.tool_calls.0.name": "lookup",
            "gen_ai.completion.0.tool_calls.0.arguments": '{"q": 1}',
        }
    )
    msg = messages(out[sc.GEN_AI_OUTPUT_MESSAGES])[0]
    assert msg["finish_reason"] == "tool_call"  # canonical enum in the message
    assert out[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ["tool_calls"]  # as the provider said it
    assert msg["parts"][0] == {"type": "tool_call", "id": "c9", "name": "lookup", "arguments": {"q": 1}}


@pytest.mark.parametrize("reason", ["stop", "length", "content_filter", "tool_call", "compaction", "error"])
def test_canonical_finish_reasons_in_any_case(reason):
    # the FinishReason enum of gen-ai-output-messages.json
    out = normalize(
        {
            sc.GEN_AI_OPERATION_NAME: "chat",
            "gen_ai.completion.0.content": "x",
            "gen_ai.completion.0.finish_reason": reason.upper(),
        }
    )
    assert messages(out[sc.GEN_AI_OUTPUT_MESSAGES])[0]["finish_reason"] == reason
    assert out[sc.GEN_AI_RESPONSE_FINISH_REASONS] == [reason.upper()]


@pytest.mark.parametrize(
    "value",
    [
        "What is the capital of France?",
        json.dumps([{"role": "user", "content": "What is the capital of France?"}]),
        [{"role": "user", "content": "What is the capital of France?"}],
    ],
)
def test_obsolete_prompt_string_or_list(value):
    out = normalize({sc.GEN_AI_OPERATION_NAME: "chat", "gen_ai.prompt": value, "gen_ai.completion": "Paris."})
    assert messages(out[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "What is the capital of France?"}]}
    ]
    assert messages(out[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Paris."}]}
    ]


def test_deprecated_span_events_become_messages():
    T = 1
    events = [
        Event(T, sc.EVENT_GEN_AI_SYSTEM_MESSAGE, {"gen_ai.system": "openai", "content": "Be brief."}),
        Event(
            T,
            sc.EVENT_GEN_AI_USER_MESSAGE,
            {"gen_ai.event.content": json.dumps({"role": "user", "content": "Hi"})},
        ),
        Event(
            T,
            sc.EVENT_GEN_AI_ASSISTANT_MESSAGE,
            {
                "gen_ai.event.content": json.dumps(
                    {
                        "tool_calls": [
                            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                        ]
                    }
                )
            },
        ),
        Event(
            T,
            sc.EVENT_GEN_AI_TOOL_MESSAGE,
            {"gen_ai.event.content": json.dumps({"content": "42", "id": "c1"})},
        ),
        Event(
            T,
            sc.EVENT_GEN_AI_CHOICE,
            {
                "gen_ai.event.content": json.dumps(
                    {"index": 0, "finish_reason": "stop", "message": {"content": "The answer is 42."}}
                )
            },
        ),
        Event(T, "unrelated.event", {"x": 1}),
    ]
    out, evs, _ = normalize_span({sc.GEN_AI_OPERATION_NAME: "chat", "gen_ai.system": "openai"}, events=events)
    assert messages(out[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be brief."}]
    inp = messages(out[sc.GEN_AI_INPUT_MESSAGES])
    assert [m["role"] for m in inp] == ["user", "assistant", "tool"]
    assert inp[1]["parts"][0]["name"] == "f"
    assert inp[2]["parts"] == [{"type": "tool_call_response", "id": "c1", "response": "42"}]
    assert messages(out[sc.GEN_AI_OUTPUT_MESSAGES])[0]["parts"] == [
        {"type": "text", "content": "The answer is 42."}
    ]
    assert len(evs) == 6  # the events are kept


_WEATHER_CALL = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}
_WEATHER_PART = {"type": "tool_call", "id": "call_1", "name": "weather", "arguments": {"city": "Oslo"}}


@pytest.mark.parametrize(
    ("content", "parts"),
    [(None, [_WEATHER_PART]), ("Checking.", [{"type": "text", "content": "Checking."}, _WEATHER_PART])],
)
def test_choice_event_tool_calls_beside_the_message(content, parts):
    # the spec's (and OpenLLMetry's) gen_ai.choice body: tool_calls at the top, not in the message
    body = {"index": 0, "message": {"content": content}, "finish_reason": "tool_calls", "tool_calls": [_WEATHER_CALL]}
    out, _, _ = normalize_span(
        {sc.GEN_AI_OPERATION_NAME: "chat"},
        events=[Event(1, sc.EVENT_GEN_AI_CHOICE, {"gen_ai.event.content": json.dumps(body)})],
    )
    assert messages(out[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": parts, "finish_reason": "tool_call"}
    ]
    assert out[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ["tool_calls"]


def test_attributes_beat_events_with_the_same_content():
    kept = '[{"role":"user","parts":[{"type":"text","content":"from the attribute"}]}]'
    out, _, _ = normalize_span(
        {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_INPUT_MESSAGES: kept},
        events=[Event(1, sc.EVENT_GEN_AI_USER_MESSAGE, {"content": "from the event"})],
    )
    assert out[sc.GEN_AI_INPUT_MESSAGES] == kept
    # indexed attributes (a lower form than the canonical one) also beat events
    out, _, _ = normalize_span(
        {sc.GEN_AI_OPERATION_NAME: "chat", "gen_ai.prompt.0.content": "indexed"},
        events=[Event(1, sc.EVENT_GEN_AI_USER_MESSAGE, {"content": "from the event"})],
    )
    assert messages(out[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "indexed"


def test_content_events_of_semantic_kernel_and_operation_details():
    events = [
        Event(
            1,
            sc.EVENT_GEN_AI_CONTENT_PROMPT,
            {"gen_ai.prompt": json.dumps([{"role": "user", "content": "q"}])},
        ),
        Event(
            2,
            sc.EVENT_GEN_AI_CONTENT_COMPLETION,
            {"gen_ai.completion": json.dumps([{"role": "assistant", "content": "a"}])},
        ),
    ]
    out, _, _ = normalize_span({sc.GEN_AI_OPERATION_NAME: "chat"}, events=events)
    assert messages(out[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"] == [{"type": "text", "content": "q"}]
    assert messages(out[sc.GEN_AI_OUTPUT_MESSAGES])[0]["parts"] == [{"type": "text", "content": "a"}]
    details = Event(
        1,
        sc.EVENT_GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS,
        {
            sc.GEN_AI_INPUT_MESSAGES: '[{"role":"user","parts":[{"type":"text","content":"d"}]}]',
            sc.GEN_AI_TOOL_DEFINITIONS: '[{"type":"function","name":"t"}]',
        },
    )
    out, _, _ = normalize_span({sc.GEN_AI_OPERATION_NAME: "chat"}, events=[details])
    assert messages(out[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "d"
    assert messages(out[sc.GEN_AI_TOOL_DEFINITIONS])[0]["name"] == "t"


def test_span_events_can_be_switched_off():
    out, _, _ = normalize_span(
        {sc.GEN_AI_OPERATION_NAME: "chat"},
        span_events=False,
        events=[Event(1, sc.EVENT_GEN_AI_USER_MESSAGE, {"content": "x"})],
    )
    assert sc.GEN_AI_INPUT_MESSAGES not in out


def test_spelling_fixes_on_canonical_values():
    msgs = [{"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "result": {"ok": True}}]}]
    out = normalize(
        {
            sc.GEN_AI_OPERATION_NAME: "chat",
            sc.GEN_AI_PROVIDER_NAME: "azure.openai",
            sc.GEN_AI_INPUT_MESSAGES: json.dumps(msgs),
        }
    )
    assert out[sc.GEN_AI_PROVIDER_NAME] == "azure.ai.openai"
    assert messages(out[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0] == {
        "type": "tool_call_response",
        "id": "c1",
        "response": {"ok": True},
    }
    assert out[sc.SPANHOUSE_NORMALIZED_FROM] == [CURRENT]
    # already right: nothing changes and nothing is recorded
    good = {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.GEN_AI_INPUT_MESSAGES: '[{"role":"user","parts":[{"type":"text","content":"result"}]}]',
    }
    assert normalize(dict(good)) == good


@pytest.mark.parametrize(
    "attrs, operation",
    [
        ({sc.GEN_AI_TOOL_NAME: "lookup", sc.GEN_AI_REQUEST_MODEL: "m"}, "execute_tool"),
        ({sc.GEN_AI_RETRIEVAL_DOCUMENTS: '[{"id": "d1"}]'}, "retrieval"),
        ({sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT: 1536, sc.GEN_AI_REQUEST_MODEL: "e"}, "embeddings"),
        ({sc.GEN_AI_REQUEST_MODEL: "gpt-4o"}, "chat"),
        ({"gen_ai.prompt.0.content": "hi"}, "chat"),
        (
            {sc.GEN_AI_TOOL_DEFINITIONS: '[{"type":"function","name":"t"}]', sc.GEN_AI_REQUEST_MODEL: "m"},
            "chat",
        ),
    ],
)
def test_operation_inference_order(attrs, operation):
    assert normalize(attrs)[sc.GEN_AI_OPERATION_NAME] == operation


def test_no_inference_without_genai_signals():
    assert sc.GEN_AI_OPERATION_NAME not in normalize({sc.GEN_AI_AGENT_NAME: "billing", "http.route": "/x"})


def test_uncached_input_is_corrected_once():
    # Raw Anthropic counts: input excludes both cache counts.
    out = normalize(
        {
            sc.GEN_AI_OPERATION_NAME: "chat",
            sc.GEN_AI_USAGE_INPUT_TOKENS: 10,
            sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 2000,
            sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: 300,
        }
    )
    assert out[sc.GEN_AI_USAGE_INPUT_TOKENS] == 2310
    assert out[sc.SPANHOUSE_USAGE_INPUT_INCLUDES_CACHE_ADJUSTED] is True
    again = normalize(dict(out))
    assert again[sc.GEN_AI_USAGE_INPUT_TOKENS] == 2310  # idempotent


def test_drop_original_removes_consumed_foreign_keys_only():
    attrs = {
        "gen_ai.system": "openai",
        "gen_ai.usage.prompt_tokens": 3,
        "gen_ai.prompt.0.content": "hi",
        "gen_ai.prompt.0.role": "user",
        "session.id": "s",
        "http.method": "GET",
        sc.GEN_AI_REQUEST_MODEL: "m",
    }
    out = normalize(attrs, drop_original=True)
    assert "gen_ai.system" not in out and "gen_ai.usage.prompt_tokens" not in out
    assert not [k for k in out if k.startswith("gen_ai.prompt.0")]
    assert out["http.method"] == "GET" and out[sc.SESSION_ID] == "s" and out[sc.GEN_AI_REQUEST_MODEL] == "m"
    assert out[sc.GEN_AI_PROVIDER_NAME] == "openai" and out[sc.GEN_AI_USAGE_INPUT_TOKENS] == 3


def test_normalized_from_is_extended_not_replaced():
    out = normalize({sc.SPANHOUSE_NORMALIZED_FROM: ["openinference"], "gen_ai.system": "xai"})
    assert out[sc.SPANHOUSE_NORMALIZED_FROM] == ["openinference", V1_36]


def test_a_batch_of_mixed_spans_keeps_every_span():
    spans = [
        {"attributes": {"gen_ai.system": "xai"}},
        {"attributes": {"http.method": "GET"}},
        {"attributes": {"gen_ai.prompt.0.content": {"not": "text"}}},
    ]
    b = processor().process(batch_of(*spans))
    assert len(b) == 3
    assert b.attributes[0][sc.GEN_AI_PROVIDER_NAME] == "x_ai"
    assert b.attributes[1] == {"http.method": "GET"}
    assert messages(b.attributes[2][sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == '{"not":"text"}'
