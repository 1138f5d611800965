"""traceloop.yaml (with otel_genai.yaml for the gen_ai.* names OpenLLMetry still writes)."""

from __future__ import annotations

import hashlib
import json

from normalize_support import messages, normalize

from spanhouse import semconv as sc

TRACELOOP = sc.SpanhouseNormalizedFromValues.TRACELOOP.value
V1_36 = sc.SpanhouseNormalizedFromValues.OTEL_GENAI_V1_36.value


def test_anthropic_chat_span():
    attrs = {
        "llm.request.type": "chat",
        "gen_ai.system": "Anthropic",
        "gen_ai.request.model": "claude-sonnet-4",
        "gen_ai.response.model": "claude-sonnet-4-20250514",
        "gen_ai.request.max_tokens": 1024,
        "llm.top_k": 40,
        "llm.is_streaming": True,
        "llm.request.reasoning_effort": "high",
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "You are helpful.",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": json.dumps(
            [
                {"type": "text", "text": "Hi"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
            ]
        ),
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "Hello!",
        "gen_ai.completion.0.finish_reason": "end_turn",
        # OpenLLMetry's Anthropic instrumentation already sums cache into input.
        "gen_ai.usage.prompt_tokens": 2300,
        "gen_ai.usage.completion_tokens": 40,
        "gen_ai.usage.cache_read_input_tokens": 2000,
        "gen_ai.usage.cache_creation_input_tokens": 200,
        "llm.usage.total_tokens": 2340,
        "traceloop.workflow.name": "support",
        "traceloop.association.properties.session_id": "sess-1",
        "traceloop.association.properties.user_id": "user-1",
        "llm.request.functions.0.name": "lookup_order",
        "llm.request.functions.0.description": "Find an order",
        "llm.request.functions.0.parameters": json.dumps(
            {"type": "object", "properties": {"id": {"type": "string"}}}
        ),
    }
    out = normalize(attrs)
    assert out[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert out[sc.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert out[sc.GEN_AI_REQUEST_TOP_K] == 40 and out[sc.GEN_AI_REQUEST_STREAM] is True
    assert out[sc.GEN_AI_REQUEST_REASONING_LEVEL] == "high"
    assert out[sc.GEN_AI_USAGE_INPUT_TOKENS] == 2300  # not adjusted: cache 2200 <= 2300
    assert out[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 2000
    assert out[sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] == 200
    assert sc.GEN_AI_USAGE_TOTAL_TOKENS not in out
    assert out[sc.GEN_AI_WORKFLOW_NAME] == "support"
    assert out[sc.GEN_AI_CONVERSATION_ID] == "sess-1" and out[sc.USER_ID] == "user-1"
    inp = messages(out[sc.GEN_AI_INPUT_MESSAGES])
    assert inp == [
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "Hi"},
                {"type": "blob", "modality": "image", "content": "iVBOR", "mime_type": "image/png"},
            ],
        }
    ]
    assert messages(out[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "You are helpful."}]
    assert messages(out[sc.GEN_AI_OUTPUT_MESSAGES])[0]["finish_reason"] == "stop"
    assert out[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ["end_turn"]
    assert json.loads(out[sc.GEN_AI_TOOL_DEFINITIONS]) == [
        {
            "type": "function",
            "name": "lookup_order",
            "description": "Find an order",
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
        }
    ]
    assert out[sc.SPANHOUSE_NORMALIZED_FROM] == [V1_36, TRACELOOP]


def test_workflow_task_agent_and_tool_spans():
    workflow = normalize(
        {
            "traceloop.span.kind": "workflow",
            "traceloop.workflow.name": "support",
            "traceloop.entity.name": "support",
            "traceloop.entity.input": json.dumps({"args": ["Where is my order?"], "kwargs": {}}),
            "traceloop.entity.output": json.dumps("It shipped."),
        }
    )
    assert workflow[sc.GEN_AI_OPERATION_NAME] == "invoke_workflow"
    assert messages(workflow[sc.GEN_AI_OUTPUT_MESSAGES])[0]["parts"] == [
        {"type": "text", "content": "It shipped."}
    ]
    task = normalize(
        {
            "traceloop.span.kind": "task",
            "traceloop.entity.name": "format",
            "traceloop.entity.input": "{}",
            "gen_ai.request.model": "gpt-4o",
        }
    )
    assert sc.GEN_AI_OPERATION_NAME not in task  # a task is no GenAI operation, even with a model name
    agent = normalize({"traceloop.span.kind": "agent", "traceloop.entity.name": "triage"})
    assert agent[sc.GEN_AI_OPERATION_NAME] == "invoke_agent" and agent[sc.GEN_AI_AGENT_NAME] == "triage"
    tool = normalize(
        {
            "traceloop.span.kind": "tool",
            "traceloop.entity.name": "lookup_order",
            "traceloop.entity.input": json.dumps({"args": [], "kwargs": {"id": 42}}),
            "traceloop.entity.output": json.dumps({"status": "shipped"}),
        }
    )
    assert tool[sc.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert tool[sc.GEN_AI_TOOL_NAME] == "lookup_order"
    assert json.loads(tool[sc.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"id": 42}  # the keyword arguments of the call
    assert json.loads(tool[sc.GEN_AI_TOOL_CALL_RESULT]) == {"status": "shipped"}
    assert sc.GEN_AI_AGENT_NAME not in tool


def test_prompt_registry_attributes():
    out = normalize(
        {
            "llm.request.type": "completion",
            "gen_ai.request.model": "gpt-3.5-turbo-instruct",
            "traceloop.prompt.key": "ticket_reply",
            "traceloop.prompt.version": 12,
            "traceloop.prompt.template": "Reply to {ticket}",
            "traceloop.prompt.template_variables": json.dumps({"ticket": "T-1"}),
            "gen_ai.request.n": 2,
            "gen_ai.response.finish_reason": "length",
        }
    )
    assert out[sc.GEN_AI_OPERATION_NAME] == "text_completion"
    assert out[sc.GEN_AI_PROMPT_NAME] == "ticket_reply"
    assert out[sc.GEN_AI_PROMPT_VERSION] == "12"
    assert out[sc.SPANHOUSE_PROMPT_TEMPLATE_HASH] == hashlib.sha256(b"Reply to {ticket}").hexdigest()
    assert out[f"{sc.GEN_AI_PROMPT_VARIABLE}.ticket"] == "T-1"
    assert out[sc.GEN_AI_REQUEST_CHOICE_COUNT] == 2
    assert out[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ["length"]


def test_embedding_and_rerank_request_types():
    assert (
        normalize({"llm.request.type": "embedding", "gen_ai.request.model": "e"})[sc.GEN_AI_OPERATION_NAME]
        == "embeddings"
    )
    assert sc.GEN_AI_OPERATION_NAME not in normalize(
        {"llm.request.type": "rerank", "gen_ai.request.model": "r"}
    )


def test_tool_arguments_keep_the_call_shape_when_it_has_positional_arguments():
    """traceloop-sdk 0.62 records a @tool's call as {"args": [...], "kwargs": {...}}: without positional
    arguments the kwargs are the arguments; with them (their names unknown) the call is kept as sent."""
    def tool_args(call):
        out = normalize({"traceloop.span.kind": "tool", "traceloop.entity.name": "get_weather",
                         "traceloop.entity.input": json.dumps(call)})
        return json.loads(out[sc.GEN_AI_TOOL_CALL_ARGUMENTS])

    assert tool_args({"args": [], "kwargs": {"city": "Paris"}}) == {"city": "Paris"}
    assert tool_args({"args": ["Paris"], "kwargs": {}}) == {"args": ["Paris"], "kwargs": {}}
