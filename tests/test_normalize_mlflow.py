"""mlflow.yaml: MLflow tracing spans, whose values are all JSON-encoded."""

from __future__ import annotations

import json

import pytest
from normalize_support import messages, normalize

from spanhouse import semconv as sc

MLFLOW = sc.SpanhouseNormalizedFromValues.MLFLOW.value


def enc(value):
    return json.dumps(value)


def chat_model_span(**extra):
    """An OpenAI autolog span."""
    return {
        "mlflow.traceRequestId": enc("tr-5b8efff7"),
        "mlflow.spanType": enc("CHAT_MODEL"),
        "mlflow.spanFunctionName": enc("create"),
        "mlflow.message.format": enc("openai"),
        "mlflow.llm.model": enc("gpt-4o-mini"),
        "mlflow.llm.provider": enc("openai"),
        "mlflow.spanInputs": enc(
            {
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Capital of France?"},
                ],
                "model": "gpt-4o-mini",
                "temperature": 0,
            }
        ),
        "mlflow.spanOutputs": enc(
            {
                "id": "chatcmpl-9",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "Paris."},
                    }
                ],
            }
        ),
        "mlflow.chat.tokenUsage": enc({"input_tokens": 21, "output_tokens": 2, "total_tokens": 23}),
        "mlflow.llm.cost": enc({"input_cost": 0.0000032, "output_cost": 0.0000012, "total_cost": 0.0000044}),
        "mlflow.chat.tools": enc(
            [{"type": "function", "function": {"name": "geo", "parameters": {"type": "object"}}}]
        ),
        "mlflow.linkedPrompts": enc([{"name": "capital_prompt", "version": "3"}]),
        **extra,
    }


def test_chat_model_span():
    out = normalize(chat_model_span())
    assert out[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert out[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini" and out[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert (out[sc.GEN_AI_USAGE_INPUT_TOKENS], out[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (21, 2)
    assert out[sc.SPANHOUSE_COST_USD] == pytest.approx(0.0000044)
    assert out[sc.SPANHOUSE_COST_SOURCE] == "reported"
    assert messages(out[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be brief."}]
    assert messages(out[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Capital of France?"}]}
    ]
    assert messages(out[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Paris."}], "finish_reason": "stop"}
    ]
    assert out[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]
    assert json.loads(out[sc.GEN_AI_TOOL_DEFINITIONS]) == [
        {"type": "function", "name": "geo", "parameters": {"type": "object"}}
    ]
    assert out[sc.GEN_AI_PROMPT_NAME] == "capital_prompt" and out[sc.GEN_AI_PROMPT_VERSION] == "3"
    assert out[sc.SPANHOUSE_NORMALIZED_FROM] == [MLFLOW]
    assert out["mlflow.spanType"] == enc("CHAT_MODEL")  # originals kept as sent


def test_anthropic_usage_with_uncached_input_is_corrected():
    out = normalize(
        chat_model_span(
            **{
                "mlflow.chat.tokenUsage": enc(
                    {
                        "input_tokens": 12,
                        "output_tokens": 30,
                        "total_tokens": 42,
                        "cache_read_input_tokens": 4000,
                        "cache_creation_input_tokens": 0,
                    }
                )
            }
        )
    )
    assert out[sc.GEN_AI_USAGE_INPUT_TOKENS] == 4012
    assert out[sc.SPANHOUSE_USAGE_INPUT_INCLUDES_CACHE_ADJUSTED] is True


def test_chain_span_and_trace_totals_are_not_usage():
    out = normalize(
        {
            "mlflow.spanType": enc("CHAIN"),
            "mlflow.spanInputs": enc({"question": "q"}),
            "mlflow.trace.tokenUsage": enc({"input_tokens": 500, "output_tokens": 50}),
            "mlflow.chat.tokenUsage": enc({"input_tokens": 500}),
            "mlflow.llm.model": enc("gpt-4o"),
        }
    )
    assert sc.GEN_AI_OPERATION_NAME not in out
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in out
    assert out[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o"


def test_tool_and_retriever_spans():
    tool = normalize(
        {
            "mlflow.spanType": enc("TOOL"),
            "mlflow.spanInputs": enc({"city": "Paris"}),
            "mlflow.spanOutputs": enc("18C"),
        }
    )
    assert tool[sc.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert json.loads(tool[sc.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"city": "Paris"}
    assert tool[sc.GEN_AI_TOOL_CALL_RESULT] == "18C"
    retr = normalize(
        {
            "mlflow.spanType": enc("RETRIEVER"),
            "mlflow.spanInputs": enc("refund policy"),
            "mlflow.spanOutputs": enc(
                [{"page_content": "Refunds in 30 days.", "metadata": {"id": "kb-3"}, "id": "doc-1"}]
            ),
        }
    )
    assert retr[sc.GEN_AI_OPERATION_NAME] == "retrieval"
    assert retr[sc.GEN_AI_RETRIEVAL_QUERY_TEXT] == "refund policy"
    assert json.loads(retr[sc.GEN_AI_RETRIEVAL_DOCUMENTS]) == [
        {"id": "doc-1", "content": "Refunds in 30 days.", "metadata": {"id": "kb-3"}}
    ]


def test_session_and_user():
    out = normalize(
        {"mlflow.spanType": enc("AGENT"), "mlflow.trace.session": enc("s-1"), "mlflow.trace.user": enc("u")}
    )
    assert out[sc.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert out[sc.GEN_AI_CONVERSATION_ID] == "s-1" and out[sc.USER_ID] == "u"
    root = normalize({"mlflow.spanType": enc("AGENT"), "session.id": "s-2"})
    assert root[sc.GEN_AI_CONVERSATION_ID] == "s-2"


def autolog_span(**extra):
    """An OpenAI autolog span as mlflow 3.17 sends it: the request's keyword arguments as attributes, the
    response's model in mlflow.llm.model, no mlflow.llm.provider."""
    return {
        "mlflow.traceRequestId": enc("tr-51d9d541"),
        "mlflow.spanType": enc("CHAT_MODEL"),
        "mlflow.spanInputs": enc({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}],
                                  "user": "enduser-99"}),
        "model": enc("gpt-4o-mini"),
        "user": enc("enduser-99"),
        "mlflow.message.format": enc("openai"),
        "mlflow.llm.model": enc("gpt-4o-mini-2024-07-18"),
        "mlflow.chat.tokenUsage": enc({"input_tokens": 42, "output_tokens": 7, "total_tokens": 49,
                                       "cache_read_input_tokens": 16}),
        **extra,
    }


def test_autolog_request_and_response_models_and_provider():
    out = normalize(autolog_span())
    assert out[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert out[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert out[sc.GEN_AI_PROVIDER_NAME] == "openai"
    # the request model from the span inputs alone
    span = autolog_span()
    del span["model"]
    out = normalize(span)
    assert out[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    # no request model anywhere (a dspy span): mlflow.llm.model is the only model named
    span = autolog_span(**{"mlflow.message.format": enc("dspy"), "mlflow.spanInputs": enc({"q": "x"})})
    del span["model"]
    out = normalize(span)
    assert out[sc.GEN_AI_REQUEST_MODEL] == out[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert sc.GEN_AI_PROVIDER_NAME not in out  # a framework's format names no provider
    # mlflow.llm.provider, when sent, wins over the format
    out = normalize(autolog_span(**{"mlflow.llm.provider": enc("azure")}))
    assert out[sc.GEN_AI_PROVIDER_NAME] == "azure.ai.openai"


@pytest.mark.parametrize("fmt, provider", [("anthropic", "anthropic"), ("gemini", "gcp.gemini"),
                                            ("openai-agent", None), ("langchain", None)])
def test_message_format_names_a_provider_only_for_provider_clients(fmt, provider):
    out = normalize(autolog_span(**{"mlflow.message.format": enc(fmt)}))
    assert out.get(sc.GEN_AI_PROVIDER_NAME) == provider


def test_failed_autolog_call_has_its_requested_model():
    span = autolog_span()
    del span["mlflow.llm.model"], span["mlflow.chat.tokenUsage"]
    out = normalize(span | {"model": enc("broken-model")})
    assert out[sc.GEN_AI_REQUEST_MODEL] == "broken-model" and sc.GEN_AI_RESPONSE_MODEL not in out
