"""vercel_ai.yaml: the Vercel AI SDK's ai.* spans, and @ai-sdk/otel's spec-style spans."""

from __future__ import annotations

import json

import pytest
from normalize_support import batch_of, messages, processor

from spanhouse import semconv as sc

VERCEL = sc.SpanhouseNormalizedFromValues.VERCEL_AI.value
PROMPT_MESSAGES = [
    {"role": "system", "content": "You are a support agent."},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Where is order 42?"},
            {"type": "image", "image": "https://x.test/receipt.png", "mimeType": "image/png"},
        ],
    },
    {
        "role": "assistant",
        "content": [
            {"type": "reasoning", "text": "Need the order."},
            {"type": "tool-call", "toolCallId": "c1", "toolName": "lookup", "args": {"id": 42}},
        ],
    },
    {
        "role": "tool",
        "content": [
            {"type": "tool-result", "toolCallId": "c1", "toolName": "lookup", "result": {"status": "shipped"}}
        ],
    },
]


def trace():
    """generateText with one tool round trip: outer span, two doGenerate spans, one toolCall span."""
    common = {
        "ai.model.id": "gpt-4o-mini",
        "ai.model.provider": "openai.chat",
        "ai.telemetry.functionId": "reply",
        "ai.telemetry.metadata.sessionId": "sess-3",
        "ai.telemetry.metadata.userId": "u-3",
    }
    outer = {
        "name": "ai.generateText",
        "attributes": {
            **common,
            "ai.operationId": "ai.generateText",
            "operation.name": "ai.generateText reply",
            "ai.prompt": json.dumps({"system": "You are a support agent.", "prompt": "Where is order 42?"}),
            "ai.response.text": "Order 42 shipped.",
            "ai.response.finishReason": "stop",
            "ai.usage.promptTokens": 900,
            "ai.usage.completionTokens": 60,
        },
    }
    step1 = {
        "name": "ai.generateText.doGenerate",
        "attributes": {
            **common,
            "ai.operationId": "ai.generateText.doGenerate",
            "ai.prompt.messages": json.dumps(PROMPT_MESSAGES[:2]),
            "ai.prompt.format": "messages",
            "ai.prompt.tools": [
                json.dumps(
                    {
                        "type": "function",
                        "name": "lookup",
                        "description": "Find an order",
                        "parameters": {"type": "object"},
                    }
                )
            ],
            "ai.response.toolCalls": json.dumps(
                [{"toolCallType": "function", "toolCallId": "c1", "toolName": "lookup", "args": '{"id":42}'}]
            ),
            "ai.response.finishReason": "tool-calls",
            "ai.response.model": "gpt-4o-mini-2024-07-18",
            "ai.response.id": "chatcmpl-1",
            "ai.response.msToFirstChunk": 412.5,
            "ai.usage.promptTokens": 400,
            "ai.usage.completionTokens": 20,
            "ai.usage.cachedInputTokens": 128,
            "ai.settings.maxOutputTokens": 300,
            "ai.settings.temperature": 0.2,
            "gen_ai.system": "openai.chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.prompt_tokens": 400,
            "gen_ai.usage.completion_tokens": 20,
        },
    }
    tool = {
        "name": "ai.toolCall",
        "attributes": {
            "ai.operationId": "ai.toolCall",
            "ai.toolCall.name": "lookup",
            "ai.toolCall.id": "c1",
            "ai.toolCall.args": '{"id":42}',
            "ai.toolCall.result": '{"status":"shipped"}',
        },
    }
    step2 = {
        "name": "ai.generateText.doGenerate",
        "attributes": {
            **common,
            "ai.operationId": "ai.generateText.doGenerate",
            "ai.prompt.messages": json.dumps(PROMPT_MESSAGES),
            "ai.response.text": "Order 42 shipped.",
            "ai.response.finishReason": "stop",
            "ai.usage.promptTokens": 500,
            "ai.usage.completionTokens": 40,
        },
    }
    b = processor().process(batch_of(outer, step1, tool, step2))
    return b.attributes


def test_provider_calls_are_chat_and_carry_usage():
    _, step1, _, step2 = trace()
    for span in (step1, step2):
        assert span[sc.GEN_AI_OPERATION_NAME] == "chat"
        assert span[sc.GEN_AI_PROVIDER_NAME] == "openai"
        assert span[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
        assert span[sc.GEN_AI_CONVERSATION_ID] == "sess-3" and span[sc.USER_ID] == "u-3"
        assert VERCEL in span[sc.SPANHOUSE_NORMALIZED_FROM]
    assert (step1[sc.GEN_AI_USAGE_INPUT_TOKENS], step1[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (400, 20)
    assert step1[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 128
    assert (step2[sc.GEN_AI_USAGE_INPUT_TOKENS], step2[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (500, 40)
    assert (
        step1[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
        and step1[sc.GEN_AI_RESPONSE_ID] == "chatcmpl-1"
    )
    assert step1[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] == pytest.approx(0.4125)
    assert step1[sc.GEN_AI_REQUEST_MAX_TOKENS] == 300 and step1[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert step1[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ["tool-calls"]


def test_outer_span_is_not_a_model_call_and_its_usage_is_not_mapped():
    outer, *_ = trace()
    assert sc.GEN_AI_OPERATION_NAME not in outer
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in outer and sc.GEN_AI_USAGE_OUTPUT_TOKENS not in outer
    assert outer["ai.usage.promptTokens"] == 900  # kept as sent
    assert messages(outer[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [
        {"type": "text", "content": "You are a support agent."}
    ]
    assert messages(outer[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "Where is order 42?"


def test_summed_model_call_tokens_equal_the_outer_total():
    spans = trace()
    calls = [s for s in spans if s.get(sc.GEN_AI_OPERATION_NAME) in ("chat", "text_completion", "embeddings")]
    assert sum(s[sc.GEN_AI_USAGE_INPUT_TOKENS] for s in calls) == spans[0]["ai.usage.promptTokens"]


def test_prompt_messages_tools_and_output():
    _, step1, tool, step2 = trace()
    assert messages(step1[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [
        {"type": "text", "content": "You are a support agent."}
    ]
    assert messages(step1[sc.GEN_AI_INPUT_MESSAGES]) == [
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "Where is order 42?"},
                {
                    "type": "uri",
                    "modality": "image",
                    "uri": "https://x.test/receipt.png",
                    "mime_type": "image/png",
                },
            ],
        }
    ]
    assert json.loads(step1[sc.GEN_AI_TOOL_DEFINITIONS]) == [
        {
            "type": "function",
            "name": "lookup",
            "description": "Find an order",
            "parameters": {"type": "object"},
        }
    ]
    assert messages(step1[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "finish_reason": "tool_call",
            "parts": [{"type": "tool_call", "id": "c1", "name": "lookup", "arguments": {"id": 42}}],
        }
    ]
    history = messages(step2[sc.GEN_AI_INPUT_MESSAGES])
    assert [m["role"] for m in history] == ["user", "assistant", "tool"]
    assert history[1]["parts"] == [
        {"type": "reasoning", "content": "Need the order."},
        {"type": "tool_call", "id": "c1", "name": "lookup", "arguments": {"id": 42}},
    ]
    assert history[2]["parts"] == [
        {"type": "tool_call_response", "id": "c1", "response": {"status": "shipped"}}
    ]
    assert tool[sc.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert tool[sc.GEN_AI_TOOL_NAME] == "lookup" and tool[sc.GEN_AI_TOOL_CALL_ID] == "c1"
    assert json.loads(tool[sc.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"id": 42}


@pytest.mark.parametrize(
    "provider_id, expected",
    [
        ("anthropic.messages", "anthropic"),
        ("google.generative-ai", "gcp.gemini"),
        ("google.vertex.chat", "gcp.vertex_ai"),
        ("azure-openai.chat", "azure.ai.openai"),
        ("amazon-bedrock", "aws.bedrock"),
        ("mistral.chat", "mistral_ai"),
        ("xai.chat", "x_ai"),
        ("fireworks.chat", "fireworks"),
    ],
)
def test_provider_ids(provider_id, expected):
    b = processor().process(
        batch_of(
            {
                "name": "ai.generateText.doGenerate",
                "attributes": {
                    "ai.operationId": "ai.generateText.doGenerate",
                    "ai.model.provider": provider_id,
                    "ai.model.id": "m",
                },
            }
        )
    )
    assert b.attributes[0][sc.GEN_AI_PROVIDER_NAME] == expected


@pytest.mark.parametrize(
    "output, response",
    [
        ({"type": "json", "value": {"t": 12}}, {"t": 12}),
        ({"type": "text", "value": "12C"}, "12C"),
        ({"type": "error-text", "value": "no such city"}, "no such city"),
        ({"type": "error-json", "value": {"code": 404}}, {"code": 404}),
        # parts, and shapes this list does not know, are kept as sent
        ({"type": "content", "value": [{"type": "text", "text": "12C"}]},
         {"type": "content", "value": [{"type": "text", "text": "12C"}]}),
        ({"type": "execution-denied", "reason": "no"}, {"type": "execution-denied", "reason": "no"}),
    ],
)
def test_v5_tool_result_output_is_unwrapped(output, response):
    prompt = [
        {"role": "tool", "content": [{"type": "tool-result", "toolCallId": "t1", "toolName": "x", "output": output}]}
    ]
    b = processor().process(
        batch_of(
            {
                "name": "ai.generateText.doGenerate",
                "attributes": {
                    "ai.operationId": "ai.generateText.doGenerate",
                    "ai.prompt.messages": json.dumps(prompt),
                },
            }
        )
    )
    assert messages(b.attributes[0][sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "t1", "response": response}]}
    ]


def test_object_generation_and_embeddings():
    b = processor().process(
        batch_of(
            {
                "name": "ai.generateObject.doGenerate",
                "attributes": {
                    "ai.operationId": "ai.generateObject.doGenerate",
                    "ai.model.id": "gpt-4o",
                    "ai.model.provider": "openai.chat",
                    "ai.response.object": json.dumps({"label": "refund"}),
                    "ai.usage.inputTokens": 50,
                    "ai.usage.outputTokens": 8,
                    "ai.usage.reasoningTokens": 2,
                },
            },
            {
                "name": "ai.embedMany.doEmbed",
                "attributes": {
                    "ai.operationId": "ai.embedMany.doEmbed",
                    "ai.model.id": "text-embedding-3-small",
                    "ai.model.provider": "openai.embedding",
                    "ai.usage.tokens": 33,
                },
            },
            {
                "name": "ai.embedMany",
                "attributes": {
                    "ai.operationId": "ai.embedMany",
                    "ai.usage.tokens": 33,
                    "ai.model.id": "text-embedding-3-small",
                },
            },
        )
    )
    obj, emb, outer = b.attributes
    assert obj[sc.GEN_AI_OUTPUT_TYPE] == "json"
    assert messages(obj[sc.GEN_AI_OUTPUT_MESSAGES])[0]["parts"] == [
        {"type": "text", "content": '{"label": "refund"}'}
    ]
    assert obj[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 2
    assert emb[sc.GEN_AI_OPERATION_NAME] == "embeddings" and emb[sc.GEN_AI_USAGE_INPUT_TOKENS] == 33
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in outer and sc.GEN_AI_OPERATION_NAME not in outer


def test_ai_sdk_otel_spec_spans_are_fixed_not_rebuilt():
    """@ai-sdk/otel writes canonical names; agent spans carry aggregate usage under a non-model-call op."""
    b = processor().process(
        batch_of(
            {
                "name": "invoke_agent reply",
                "attributes": {
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.agent.name": "reply",
                    "gen_ai.provider.name": "azure.openai",
                    "gen_ai.usage.input_tokens": 900,
                    "gen_ai.usage.output_tokens": 60,
                },
            },
            {
                "name": "chat gemini",
                "attributes": {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "google.vertex_ai",
                    "gen_ai.request.model": "gemini",
                    "gen_ai.input.messages": json.dumps(
                        [
                            {
                                "role": "tool",
                                "parts": [{"type": "tool_call_response", "id": "c1", "result": "ok"}],
                            }
                        ]
                    ),
                },
            },
        )
    )
    agent, chat = b.attributes
    assert agent[sc.GEN_AI_PROVIDER_NAME] == "azure.ai.openai"
    assert agent[sc.GEN_AI_OPERATION_NAME] == "invoke_agent" and agent[sc.GEN_AI_USAGE_INPUT_TOKENS] == 900
    assert chat[sc.GEN_AI_PROVIDER_NAME] == "gcp.vertex_ai"
    assert messages(chat[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0] == {
        "type": "tool_call_response",
        "id": "c1",
        "response": "ok",
    }


def test_function_id_names_the_workflow_of_every_span_of_the_run():
    """ai 6.0: telemetry.functionId is on the outer call, its provider calls and its tool calls."""
    spans = [
        {"name": "ai.generateText", "attributes": {"ai.operationId": "ai.generateText",
                                                   "ai.telemetry.functionId": "weather-fn"}},
        {"name": "ai.toolCall", "attributes": {"ai.operationId": "ai.toolCall", "ai.telemetry.functionId": "weather-fn",
                                               "ai.toolCall.name": "get_weather"}},
    ]
    out = processor().process(batch_of(*spans)).attributes
    assert [a[sc.GEN_AI_WORKFLOW_NAME] for a in out] == ["weather-fn", "weather-fn"]
    assert all(sc.SPANHOUSE_FEATURE not in a for a in out)
