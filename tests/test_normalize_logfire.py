"""logfire.yaml: Pydantic AI spans as Logfire (or plain OpenTelemetry) exports them."""

from __future__ import annotations

import json

from normalize_support import batch_of, messages, processor

from spanhouse import semconv as sc

LOGFIRE = sc.SpanhouseNormalizedFromValues.LOGFIRE.value
OTEL_PARTS = [
    {"role": "system", "parts": [{"type": "text", "content": "Be concise."}]},
    {"role": "user", "parts": [{"type": "text", "content": "What is 2+2?"}]},
]


def run(*spans):
    return processor().process(batch_of(*spans)).attributes


def test_model_request_span_current_instrumentation():
    (out,) = run(
        {
            "name": "chat gpt-4o",
            "attributes": {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.usage.input_tokens": 300,
                "gen_ai.usage.output_tokens": 12,
                "gen_ai.usage.details.cache_read_tokens": 256,
                "gen_ai.usage.details.input_audio_tokens": 5,
                "gen_ai.input.messages": json.dumps(OTEL_PARTS[1:]),
                "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be concise."}]),
                "gen_ai.output.messages": json.dumps(
                    [
                        {
                            "role": "assistant",
                            "parts": [{"type": "text", "content": "4"}],
                            "finish_reason": "stop",
                        }
                    ]
                ),
                "model_request_parameters": json.dumps(
                    {
                        "function_tools": [
                            {
                                "name": "calc",
                                "description": "Add numbers",
                                "parameters_json_schema": {"type": "object"},
                            }
                        ],
                        "allow_text_output": True,
                    }
                ),
                "logfire.json_schema": "{}",
                "logfire.msg": "chat gpt-4o",
            },
        }
    )
    assert out[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 256
    assert out[sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS] == 5
    assert json.loads(out[sc.GEN_AI_TOOL_DEFINITIONS]) == [
        {"type": "function", "name": "calc", "description": "Add numbers", "parameters": {"type": "object"}}
    ]
    assert messages(out[sc.GEN_AI_INPUT_MESSAGES]) == OTEL_PARTS[1:]  # canonical, kept as sent
    assert out[sc.SPANHOUSE_NORMALIZED_FROM] == [LOGFIRE]


def test_agent_run_span_aggregated_usage_is_never_model_usage():
    agent, older = run(
        {
            "name": "invoke_agent support",
            "attributes": {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "support",
                "agent_name": "support",
                "model_name": "gpt-4o",
                "logfire.msg": "support run",
                "gen_ai.aggregated_usage.input_tokens": 900,
                "gen_ai.aggregated_usage.output_tokens": 40,
                "pydantic_ai.all_messages": json.dumps(OTEL_PARTS),
                "final_result": "4",
            },
        },
        # a release that wrote neither gen_ai.operation.name nor the aggregated names
        {
            "name": "agent run",
            "attributes": {
                "agent_name": "support",
                "model_name": "gpt-4o",
                "logfire.msg": "support run",
                "gen_ai.usage.input_tokens": 900,
                "gen_ai.usage.output_tokens": 40,
                "all_messages_events": json.dumps(
                    [{"event.name": "gen_ai.user.message", "content": "hi", "role": "user"}]
                ),
            },
        },
    )
    assert agent[sc.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in agent
    assert agent["gen_ai.aggregated_usage.input_tokens"] == 900
    assert messages(agent[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be concise."}]
    assert messages(agent[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "4"}]}
    ]
    # The old run span had the sums under gen_ai.usage.*: it is an agent span, never a model call.
    assert older[sc.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert older[sc.GEN_AI_AGENT_NAME] == "support"
    assert messages(older[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "hi"


def test_version_1_events_attribute():
    events = [
        {
            "event.name": "gen_ai.system.message",
            "content": "Be concise.",
            "role": "system",
            "gen_ai.system": "openai",
        },
        {
            "event.name": "gen_ai.user.message",
            "content": [
                {"kind": "text", "content": "Look:"},
                {"kind": "image-url", "url": "https://x.test/a.png"},
            ],
            "role": "user",
            "gen_ai.message.index": 0,
        },
        {
            "event.name": "gen_ai.assistant.message",
            "role": "assistant",
            "gen_ai.message.index": 1,
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "calc", "arguments": '{"a":2}'}}
            ],
        },
        {
            "event.name": "gen_ai.tool.message",
            "role": "tool",
            "id": "t1",
            "name": "calc",
            "content": "4",
            "gen_ai.message.index": 2,
        },
        {"event.name": "gen_ai.choice", "index": 0, "message": {"role": "assistant", "content": "It is 4."}},
    ]
    (out,) = run(
        {
            "name": "chat gpt-4o",
            "attributes": {
                "gen_ai.operation.name": "chat",
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4o",
                "model_request_parameters": "{}",
                "logfire.msg": "chat gpt-4o",
                "events": json.dumps(events),
            },
        }
    )
    assert messages(out[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be concise."}]
    inp = messages(out[sc.GEN_AI_INPUT_MESSAGES])
    assert inp[0]["parts"] == [
        {"type": "text", "content": "Look:"},
        {"type": "uri", "modality": "image", "uri": "https://x.test/a.png"},
    ]
    assert inp[1]["parts"] == [{"type": "tool_call", "id": "t1", "name": "calc", "arguments": {"a": 2}}]
    assert inp[2] == {"role": "tool", "parts": [{"type": "tool_call_response", "id": "t1", "response": "4"}]}
    assert messages(out[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "It is 4."}]}
    ]
    assert out[sc.GEN_AI_PROVIDER_NAME] == "openai"


def test_events_attribute_choice_with_tool_calls():
    call = {"id": "t1", "type": "function", "function": {"name": "calc", "arguments": '{"a":2}'}}
    events = [
        {"event.name": "gen_ai.user.message", "content": "2+2?", "role": "user"},
        {
            "event.name": "gen_ai.choice",
            "index": 0,
            "message": {"role": "assistant", "content": None},
            "finish_reason": "tool_calls",
            "tool_calls": [call],
        },
    ]
    (out,) = run(
        {
            "name": "chat gpt-4o",
            "attributes": {
                "gen_ai.operation.name": "chat",
                "model_request_parameters": "{}",
                "events": json.dumps(events),
            },
        }
    )
    assert messages(out[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "t1", "name": "calc", "arguments": {"a": 2}}],
            "finish_reason": "tool_call",
        }
    ]
    assert out[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ["tool_calls"]


def test_tool_span():
    (out,) = run(
        {
            "name": "running tool",
            "attributes": {
                "gen_ai.tool.name": "calc",
                "gen_ai.tool.call.id": "t1",
                "tool_arguments": '{"a": 2, "b": 2}',
                "tool_response": "4",
                "logfire.msg": "running tool: calc",
            },
        }
    )
    assert out[sc.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert json.loads(out[sc.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"a": 2, "b": 2}
    assert out[sc.GEN_AI_TOOL_CALL_RESULT] == "4"


def test_generic_names_are_left_alone_outside_logfire():
    attrs = {"events": "[1, 2]", "tool_arguments": "x", "final_result": "y"}
    (out,) = run({"attributes": dict(attrs)})
    assert out == attrs
