"""langfuse.yaml: spans from the Langfuse SDKs (v3+)."""

from __future__ import annotations

import json

import pytest
from normalize_support import T0, batch_of, messages, normalize, processor

from spanhouse import semconv as sc

LANGFUSE = sc.SpanhouseNormalizedFromValues.LANGFUSE.value


def generation(**extra):
    return {
        "langfuse.observation.type": "generation",
        "langfuse.observation.model.name": "claude-sonnet-4",
        "langfuse.observation.model.parameters": json.dumps({"temperature": 0.7, "max_tokens": "800"}),
        # Langfuse's `input` excludes the cache counts.
        "langfuse.observation.usage_details": json.dumps(
            {
                "input": 50,
                "output": 200,
                "total": 2550,
                "cache_read_input_tokens": 2000,
                "input_cache_creation_5m": 200,
                "input_cache_creation_1h": 100,
            }
        ),
        "langfuse.observation.cost_details": json.dumps({"input": 0.0021, "output": 0.003, "total": 0.0051}),
        "langfuse.observation.prompt.name": "ticket_reply",
        "langfuse.observation.prompt.version": 12,
        "langfuse.observation.completion_start_time": json.dumps("2025-01-01T00:00:00.750000Z"),
        "langfuse.observation.input": json.dumps(
            [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Refund?"}]
        ),
        "langfuse.observation.output": json.dumps({"role": "assistant", "content": "Yes."}),
        "langfuse.session.id": "sess-7",
        "langfuse.user.id": "user-7",
        "langfuse.environment": "staging",
        "langfuse.release": "2026.11.3",
        "langfuse.trace.name": "support",
        **extra,
    }


def test_generation_maps_usage_cost_prompt_and_io():
    out = normalize(generation(), start=T0)
    assert out[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert out[sc.GEN_AI_RESPONSE_MODEL] == "claude-sonnet-4" and sc.GEN_AI_REQUEST_MODEL not in out
    assert out[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.7 and out[sc.GEN_AI_REQUEST_MAX_TOKENS] == 800
    assert out[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 2000
    assert out[sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] == 300  # 5m + 1h
    assert out[sc.GEN_AI_USAGE_INPUT_TOKENS] == 2350  # 50 uncached + 2000 read + 300 written
    assert out[sc.SPANHOUSE_USAGE_INPUT_INCLUDES_CACHE_ADJUSTED] is True
    assert out[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 200
    assert out[sc.SPANHOUSE_COST_USD] == 0.0051
    assert out[sc.SPANHOUSE_COST_INPUT_USD] == 0.0021 and out[sc.SPANHOUSE_COST_OUTPUT_USD] == 0.003
    assert out[sc.SPANHOUSE_COST_SOURCE] == "reported"
    assert out[sc.GEN_AI_PROMPT_NAME] == "ticket_reply" and out[sc.GEN_AI_PROMPT_VERSION] == "12"
    assert out[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] == pytest.approx(0.75)
    assert messages(out[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be kind."}]
    assert messages(out[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Refund?"}]}
    ]
    assert messages(out[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Yes."}]}
    ]
    assert out[sc.GEN_AI_CONVERSATION_ID] == "sess-7" and out[sc.USER_ID] == "user-7"
    assert out[sc.DEPLOYMENT_ENVIRONMENT_NAME] == "staging" and out[sc.SERVICE_VERSION] == "2026.11.3"
    assert out[sc.SPANHOUSE_NORMALIZED_FROM] == [LANGFUSE]


@pytest.mark.parametrize(
    "sent, seconds",
    [
        ("2025-01-01T00:00:01.250000Z", 1.25),
        ("2025-01-01T00:00:01.250000", 1.25),  # no offset: UTC, as the Langfuse SDKs mean it
        ("2025-01-01T02:00:01.250000+02:00", 1.25),
        ("2024-12-31T23:59:59Z", None),  # before the span started
    ],
)
def test_completion_start_time_with_or_without_offset(sent, seconds):
    proc = processor()
    before = proc.conversion_errors
    (out,) = proc.process(
        batch_of({"attributes": generation(**{"langfuse.observation.completion_start_time": sent})})
    ).attributes
    assert out.get(sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK) == seconds
    assert proc.conversion_errors == before


@pytest.mark.parametrize("sent", ["soon", "2025-13-01T00:00:00Z", 1735689601])
def test_unreadable_completion_start_time_is_counted(sent):
    proc = processor()
    before = proc.conversion_errors
    (out,) = proc.process(
        batch_of({"attributes": generation(**{"langfuse.observation.completion_start_time": sent})})
    ).attributes
    assert sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK not in out
    assert out["langfuse.observation.completion_start_time"] == sent  # left as sent
    assert proc.conversion_errors == before + 1
    assert proc.normalizer.converter_exceptions == 0


def test_structured_usage_without_cache_is_not_adjusted():
    out = normalize(generation(**{"langfuse.observation.usage_details": {"input": 50, "output": 20}}))
    assert out[sc.GEN_AI_USAGE_INPUT_TOKENS] == 50
    assert sc.SPANHOUSE_USAGE_INPUT_INCLUDES_CACHE_ADJUSTED not in out


def test_resource_values_win():
    from normalize_support import batch_of, processor

    b = batch_of(
        {"attributes": generation()},
        resource={"service.name": "svc", "service.version": "1.0", "deployment.environment.name": "prod"},
    )
    out = processor().process(b).attributes[0]
    assert sc.SERVICE_VERSION not in out and sc.DEPLOYMENT_ENVIRONMENT_NAME not in out


@pytest.mark.parametrize(
    "kind, operation",
    [
        ("agent", "invoke_agent"),
        ("span", None),
        ("chain", None),
        ("tool", "execute_tool"),
        ("retriever", "retrieval"),
        ("embedding", "embeddings"),
    ],
)
def test_observation_types(kind, operation):
    out = normalize(generation(**{"langfuse.observation.type": kind}))
    assert out.get(sc.GEN_AI_OPERATION_NAME) == operation
    if operation != "embeddings":  # usage and cost only on model calls
        assert sc.GEN_AI_USAGE_INPUT_TOKENS not in out and sc.SPANHOUSE_COST_USD not in out


def test_tool_observation_io():
    out = normalize(
        {
            "langfuse.observation.type": "tool",
            "langfuse.observation.input": json.dumps({"id": 42}),
            "langfuse.observation.output": json.dumps({"status": "shipped"}),
        }
    )
    assert json.loads(out[sc.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"id": 42}
    assert json.loads(out[sc.GEN_AI_TOOL_CALL_RESULT]) == {"status": "shipped"}


def test_canonical_usage_wins_over_langfuse_usage():
    out = normalize(
        generation(**{sc.GEN_AI_USAGE_INPUT_TOKENS: 2350, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 2000})
    )
    assert out[sc.GEN_AI_USAGE_INPUT_TOKENS] == 2350
    assert sc.SPANHOUSE_USAGE_INPUT_INCLUDES_CACHE_ADJUSTED not in out


# The usage object Langfuse's OpenAI wrapper sends (langfuse 5.2, openai chat completions): OpenAI's own
# shape, totals with nested details.
OPENAI_USAGE = {
    "completion_tokens": 7,
    "prompt_tokens": 42,
    "total_tokens": 49,
    "completion_tokens_details": {
        "accepted_prediction_tokens": 0, "audio_tokens": 0, "reasoning_tokens": 3, "rejected_prediction_tokens": 0,
    },
    "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 16},
}


def test_openai_usage_details_read_cached_and_reasoning_tokens_as_parts_of_the_totals():
    out = normalize(generation(**{"langfuse.observation.usage_details": json.dumps(OPENAI_USAGE)}))
    assert out[sc.GEN_AI_USAGE_INPUT_TOKENS] == 42  # prompt_tokens already includes the cached 16
    assert out[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 16
    assert sc.SPANHOUSE_USAGE_INPUT_INCLUDES_CACHE_ADJUSTED not in out
    assert out[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
    assert out[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 3
    assert out[sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS] == 0


def test_responses_api_usage_details():
    usage = {"input_tokens": 42, "output_tokens": 7, "total_tokens": 49,
             "input_tokens_details": {"cached_tokens": 16}, "output_tokens_details": {"reasoning_tokens": 3}}
    out = normalize(generation(**{"langfuse.observation.usage_details": usage}))
    assert out[sc.GEN_AI_USAGE_INPUT_TOKENS] == 42 and out[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 16
    assert out[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 3


def test_model_name_is_the_response_model():
    """Langfuse's OpenAI wrapper overwrites the requested model with the response's; the requested one
    is sent nowhere."""
    out = normalize(generation(**{"langfuse.observation.model.name": "gpt-4o-mini-2024-07-18"}))
    assert out[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert sc.GEN_AI_REQUEST_MODEL not in out
    # a canonical request model sent beside it is kept
    out = normalize(generation(**{"langfuse.observation.model.name": "gpt-4o-mini-2024-07-18",
                                  sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini"}))
    assert out[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert out[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"


def failed_generation():
    """Langfuse 5.2's OpenAI wrapper on an API error: status ERROR, level ERROR, no exception event."""
    return {"langfuse.observation.type": "generation", "langfuse.observation.model.name": "broken-model",
            "langfuse.observation.level": "ERROR",
            "langfuse.observation.status_message": "Error code: 500 - upstream exploded",
            "langfuse.observation.cost_details": json.dumps({"input": 0, "output": 0, "total": 0})}


def test_a_failed_generation_has_an_error_type():
    from normalize_support import normalize_span

    failed, _, _ = normalize_span(failed_generation(), status=2)
    assert failed[sc.ERROR_TYPE] == "_OTHER"  # the conventions' fallback: Langfuse names no error type
    ok, _, _ = normalize_span(failed_generation(), status=1)
    assert sc.ERROR_TYPE not in ok
    # not a GenAI span: left alone
    plain, _, _ = normalize_span({"http.method": "POST"}, status=2)
    assert sc.ERROR_TYPE not in plain


def test_streamed_generation_finish_reason_from_metadata():
    out = normalize(generation(**{"langfuse.observation.metadata.finish_reason": json.dumps("stop")}))
    assert out[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]


@pytest.mark.parametrize("sent, arguments", [
    ({"args": [], "kwargs": {"city": "Paris"}}, {"city": "Paris"}),  # @observe(as_type="tool") get_weather(city=...)
    ({"args": [], "kwargs": {}}, {}),
    ({"args": ["Paris"], "kwargs": {"unit": "C"}}, {"args": ["Paris"], "kwargs": {"unit": "C"}}),  # names unknown
    ({"city": "Paris"}, {"city": "Paris"}),
])
def test_tool_arguments_of_a_decorated_function_are_its_keyword_arguments(sent, arguments):
    out = normalize({"langfuse.observation.type": "tool", "langfuse.observation.input": json.dumps(sent)})
    assert json.loads(out[sc.GEN_AI_TOOL_CALL_ARGUMENTS]) == arguments
    assert json.loads(out["langfuse.observation.input"]) == sent  # the original as sent
