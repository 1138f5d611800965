"""openlit.yaml: OpenLIT's cost, token details, tool and retrieval names, evaluation scores."""

from __future__ import annotations

import json

from normalize_support import messages, normalize_span

from spanhouse import semconv as sc
from spanhouse.batch import Event

OPENLIT = sc.SpanhouseNormalizedFromValues.OPENLIT.value


def test_chat_span_with_reported_cost_and_details():
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 500,
        "gen_ai.usage.output_tokens": 120,
        "gen_ai.usage.total_tokens": 620,
        "gen_ai.usage.prompt_tokens_details.cached_tokens": 256,
        "gen_ai.usage.completion_tokens_details.reasoning_tokens": 64,
        "gen_ai.usage.completion_tokens_details.audio_tokens": 3,
        "gen_ai.usage.cost": 0.000195,
        "gen_ai.environment": "production",
        "gen_ai.request.is_stream": False,
        "gen_ai.eval.groundedness": 0.72,
        "gen_ai.eval.answer_relevancy": "0.9",
    }
    out, events, _ = normalize_span(attrs, end=2)
    assert out[sc.SPANHOUSE_COST_USD] == 0.000195
    assert out[sc.SPANHOUSE_COST_SOURCE] == "reported"
    assert out[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 256
    assert out[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 64
    assert out[sc.GEN_AI_USAGE_AUDIO_OUTPUT_TOKENS] == 3
    assert out[sc.GEN_AI_USAGE_INPUT_TOKENS] == 500
    assert out[sc.DEPLOYMENT_ENVIRONMENT_NAME] == "production"
    assert out[sc.GEN_AI_REQUEST_STREAM] is False
    scores = {
        e.attributes[sc.GEN_AI_EVALUATION_NAME]: e.attributes[sc.GEN_AI_EVALUATION_SCORE_VALUE]
        for e in events
    }
    assert scores == {"groundedness": 0.72, "answer_relevancy": 0.9}
    assert all(e.name == sc.EVENT_GEN_AI_EVALUATION_RESULT for e in events)
    assert OPENLIT in out[sc.SPANHOUSE_NORMALIZED_FROM]


def test_older_releases_provider_and_operation_spellings():
    out, _, _ = normalize_span(
        {
            "gen_ai.operation.name": "embedding",
            "gen_ai.system": "azure_openai",
            "gen_ai.request.model": "text-embedding-3-large",
            "gen_ai.usage.input_tokens": 12,
        }
    )
    assert out[sc.GEN_AI_OPERATION_NAME] == "embeddings"
    assert out[sc.GEN_AI_PROVIDER_NAME] == "azure.ai.openai"


def test_framework_span_is_not_priced_or_given_a_provider():
    out, _, _ = normalize_span(
        {"gen_ai.operation.name": "framework", "gen_ai.system": "langchain", "gen_ai.usage.cost": 0.5}
    )
    assert out[sc.GEN_AI_OPERATION_NAME] == "framework"  # non-spec operations are kept
    assert sc.GEN_AI_PROVIDER_NAME not in out
    assert sc.SPANHOUSE_COST_USD not in out


def test_tool_and_retrieval_names():
    out, _, _ = normalize_span(
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "search",
            "gen_ai.tool.args": json.dumps({"q": "refund"}),
            "gen_ai.tool.output": "3 hits",
        }
    )
    assert json.loads(out[sc.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"q": "refund"}
    assert out[sc.GEN_AI_TOOL_CALL_RESULT] == "3 hits"
    out, _, _ = normalize_span(
        {"gen_ai.operation.name": "retrieval", "gen_ai.retrieval.query": "refund policy"}
    )
    assert out[sc.GEN_AI_RETRIEVAL_QUERY_TEXT] == "refund policy"


def test_older_openlit_content_events_and_strings():
    events = [
        Event(1, sc.EVENT_GEN_AI_CONTENT_PROMPT, {"gen_ai.prompt": "user: Where is my order?"}),
        Event(2, sc.EVENT_GEN_AI_CONTENT_COMPLETION, {"gen_ai.completion": "It shipped yesterday."}),
    ]
    out, _, _ = normalize_span(
        {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o"},
        events=events,
    )
    assert messages(out[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "user: Where is my order?"}]}
    ]
    assert messages(out[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "It shipped yesterday."}]}
    ]
