"""openinference.yaml: OpenInference spans (flattened and structured values) → canonical attributes."""

from __future__ import annotations

import hashlib
import json

import pytest
from normalize_support import T0, messages, normalize, normalize_span

from spanhouse import semconv as sc
from spanhouse.batch import Event

OI = sc.SpanhouseNormalizedFromValues.OPENINFERENCE.value
REQUEST = {
    "model": "gpt-4o",
    "temperature": 0.3,
    "max_completion_tokens": 512,
    "stop": ["\n\n"],
    "n": 1,
    "reasoning_effort": "low",
    "response_format": {"type": "json_object"},
}


def llm_span(**extra):
    """An LLM span as openinference-instrumentation-openai writes it."""
    return {
        "openinference.span.kind": "LLM",
        "llm.provider": "openai",
        "llm.system": "openai",
        "llm.model_name": "gpt-4o-2024-08-06",
        "llm.invocation_parameters": json.dumps(REQUEST),
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "You answer support tickets.",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.contents.0.message_content.type": "text",
        "llm.input_messages.1.message.contents.0.message_content.text": "What is in this picture?",
        "llm.input_messages.1.message.contents.1.message_content.type": "image",
        "llm.input_messages.1.message.contents.1.message_content.image.image.url": "https://x.test/cat.png",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "A cat.",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_7",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "lookup_order",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"order": 42}',
        "llm.token_count.prompt": 1200,
        "llm.token_count.completion": 80,
        "llm.token_count.total": 1280,
        "llm.token_count.prompt_details.cache_read": 1000,
        "llm.token_count.prompt_details.cache_write": 100,
        "llm.token_count.completion_details.reasoning": 20,
        "llm.cost.prompt": 0.002,
        "llm.cost.completion": 0.0008,
        "llm.cost.total": 0.0028,
        "llm.prompt_template.template": "Answer {question}",
        "llm.prompt_template.version": "v12",
        "llm.prompt_template.variables": json.dumps({"question": "Where is my order?", "tries": 2}),
        "llm.tools.0.tool.json_schema": json.dumps(
            {
                "type": "function",
                "function": {
                    "name": "lookup_order",
                    "description": "Find an order",
                    "parameters": {"type": "object"},
                },
            }
        ),
        "input.value": json.dumps({"messages": [{"role": "user", "content": "raw request"}]}),
        "input.mime_type": "application/json",
        "output.value": "raw response",
        "session.id": "conv-9",
        "user.id": "u-1",
        "metadata": '{"tier": "gold"}',
        **extra,
    }


def test_llm_span_maps_every_kind_of_attribute():
    out = normalize(llm_span())
    assert out[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert out[sc.GEN_AI_PROVIDER_NAME] == "openai"
    # the request's model comes from the invocation parameters, the response's from llm.model_name
    assert out[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert out[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-2024-08-06"
    assert out[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.3
    assert out[sc.GEN_AI_REQUEST_MAX_TOKENS] == 512
    assert out[sc.GEN_AI_REQUEST_STOP_SEQUENCES] == ["\n\n"]
    assert out[sc.GEN_AI_REQUEST_CHOICE_COUNT] == 1
    assert out[sc.GEN_AI_REQUEST_REASONING_LEVEL] == "low"
    assert out[sc.GEN_AI_OUTPUT_TYPE] == "json"
    assert (out[sc.GEN_AI_USAGE_INPUT_TOKENS], out[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (1200, 80)
    assert out[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1000
    assert out[sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] == 100
    assert out[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 20
    assert sc.SPANHOUSE_USAGE_INPUT_INCLUDES_CACHE_ADJUSTED not in out  # 1000 + 100 <= 1200: a total
    assert out[sc.SPANHOUSE_COST_USD] == 0.0028
    assert out[sc.SPANHOUSE_COST_INPUT_USD] == 0.002 and out[sc.SPANHOUSE_COST_OUTPUT_USD] == 0.0008
    assert out[sc.SPANHOUSE_COST_SOURCE] == sc.SpanhouseCostSourceValues.REPORTED.value
    assert out[sc.GEN_AI_PROMPT_VERSION] == "v12"
    assert out[sc.SPANHOUSE_PROMPT_TEMPLATE_HASH] == hashlib.sha256(b"Answer {question}").hexdigest()
    assert out[f"{sc.GEN_AI_PROMPT_VARIABLE}.question"] == "Where is my order?"
    assert out[f"{sc.GEN_AI_PROMPT_VARIABLE}.tries"] == "2"
    assert out[sc.GEN_AI_CONVERSATION_ID] == "conv-9"
    assert out[sc.SPANHOUSE_NORMALIZED_FROM] == [OI]
    assert "llm.token_count.total" in out and sc.GEN_AI_USAGE_TOTAL_TOKENS not in out


def test_flattened_messages_become_canonical_messages():
    out = normalize(llm_span())
    assert messages(out[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [
        {"type": "text", "content": "You answer support tickets."}
    ]
    assert messages(out[sc.GEN_AI_INPUT_MESSAGES]) == [
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "What is in this picture?"},
                {"type": "uri", "modality": "image", "uri": "https://x.test/cat.png"},
            ],
        }
    ]
    assert messages(out[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "A cat."},
                {"type": "tool_call", "id": "call_7", "name": "lookup_order", "arguments": {"order": 42}},
            ],
        }
    ]
    tools = messages(out[sc.GEN_AI_TOOL_DEFINITIONS])
    assert tools == [
        {
            "type": "function",
            "name": "lookup_order",
            "description": "Find an order",
            "parameters": {"type": "object"},
        }
    ]


def test_input_value_is_only_a_fallback():
    out = normalize(llm_span())
    assert "raw request" not in out[sc.GEN_AI_INPUT_MESSAGES]
    bare = {
        k: v for k, v in llm_span().items() if not k.startswith(("llm.input_messages", "llm.output_messages"))
    }
    out = normalize(bare)
    assert messages(out[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "raw request"
    assert messages(out[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "raw response"}]}
    ]


def test_structured_values_are_accepted():
    """The same span with the lists and objects sent as OTLP arrays / kvlists instead of strings."""
    attrs = {
        "openinference.span.kind": "LLM",
        "llm.model_name": "claude-sonnet-4",
        "llm.provider": "anthropic",
        "llm.invocation_parameters": {"temperature": 0.1, "max_tokens": 64},
        "llm.input_messages": [{"message.role": "user", "message.content": "hello"}],
        "llm.output_messages": [{"message": {"role": "assistant", "content": "hi there"}}],
        "retrieval.documents": [{"document.id": "kb-1", "document.score": 0.9}],
        "llm.prompt_template.variables": {"city": "Oslo"},
    }
    out = normalize(attrs)
    assert out[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.1 and out[sc.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert messages(out[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "hello"}]}
    ]
    assert messages(out[sc.GEN_AI_OUTPUT_MESSAGES])[0]["parts"] == [{"type": "text", "content": "hi there"}]
    assert out[f"{sc.GEN_AI_PROMPT_VARIABLE}.city"] == "Oslo"
    assert out[sc.GEN_AI_PROVIDER_NAME] == "anthropic"


@pytest.mark.parametrize(
    "provider, system, expected",
    [
        ("azure", "openai", "azure.ai.openai"),
        ("google", "vertexai", "gcp.vertex_ai"),
        ("google", None, "gcp.gen_ai"),
        ("aws", "anthropic", "aws.bedrock"),
        (None, "mistralai", "mistral_ai"),
        ("xai", None, "x_ai"),
        (None, "vertexai", "gcp.vertex_ai"),
        ("openai", "openai", "openai"),
    ],
)
def test_provider_from_host_and_product(provider, system, expected):
    attrs = {"openinference.span.kind": "LLM", "llm.model_name": "m"}
    if provider:
        attrs["llm.provider"] = provider
    if system:
        attrs["llm.system"] = system
    assert normalize(attrs)[sc.GEN_AI_PROVIDER_NAME] == expected


def test_tool_span():
    out = normalize(
        {
            "openinference.span.kind": "TOOL",
            "tool.name": "lookup_order",
            "tool.description": "Find it",
            "tool_call.id": "call_7",
            "input.value": '{"order": 42}',
            "output.value": '{"status": "shipped"}',
        }
    )
    assert out[sc.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert out[sc.GEN_AI_TOOL_NAME] == "lookup_order" and out[sc.GEN_AI_TOOL_DESCRIPTION] == "Find it"
    assert out[sc.GEN_AI_TOOL_CALL_ID] == "call_7"
    assert json.loads(out[sc.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"order": 42}
    assert json.loads(out[sc.GEN_AI_TOOL_CALL_RESULT]) == {"status": "shipped"}
    assert sc.GEN_AI_INPUT_MESSAGES not in out


def test_a_tool_span_keeps_its_arguments_beside_the_parameter_schema():
    """openinference-instrumentation-openai-agents sends the call's arguments in input.value and the
    tool's parameter schema in tool.parameters; the arguments are what was called with."""
    schema = {"properties": {"city": {"title": "City", "type": "string"}}, "required": ["city"], "type": "object"}
    span = {"openinference.span.kind": "TOOL", "tool.name": "get_weather", "input.value": '{"city": "Paris"}',
            "tool.parameters": json.dumps(schema), "output.value": "sunny"}
    assert json.loads(normalize(span)[sc.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"city": "Paris"}
    del span["input.value"]  # @arizeai/openinference-genai writes the arguments in tool.parameters alone
    assert json.loads(normalize(span)[sc.GEN_AI_TOOL_CALL_ARGUMENTS]) == schema


def test_a_langchain_tool_span_gives_the_tool_message_content_as_the_result():
    """openinference-instrumentation-langchain records a tool's output as the ToolMessage it made."""
    message = {"type": "tool", "data": {"content": "sunny, 24 C in Paris", "type": "tool", "name": "get_weather",
                                        "tool_call_id": "call_1", "status": "success"}}
    span = {"openinference.span.kind": "TOOL", "tool.name": "get_weather", "input.value": '{"city": "Paris"}',
            "output.value": json.dumps(message), "output.mime_type": "application/json"}
    assert normalize(span)[sc.GEN_AI_TOOL_CALL_RESULT] == "sunny, 24 C in Paris"
    span["output.value"] = '{"status": "shipped"}'  # any other result as sent
    assert normalize(span)[sc.GEN_AI_TOOL_CALL_RESULT] == '{"status": "shipped"}'


def test_retriever_span():
    out = normalize(
        {
            "openinference.span.kind": "RETRIEVER",
            "input.value": "refund policy",
            "retrieval.documents.0.document.id": "kb-12",
            "retrieval.documents.0.document.score": 0.82,
            "retrieval.documents.0.document.content": "Refunds within 30 days.",
            "retrieval.documents.0.document.metadata": '{"source": "kb"}',
            "retrieval.documents.1.document.id": 7,
            "retrieval.documents.1.document.score": 0.4,
        }
    )
    assert out[sc.GEN_AI_OPERATION_NAME] == "retrieval"
    assert out[sc.GEN_AI_RETRIEVAL_QUERY_TEXT] == "refund policy"
    assert json.loads(out[sc.GEN_AI_RETRIEVAL_DOCUMENTS]) == [
        {"id": "kb-12", "content": "Refunds within 30 days.", "score": 0.82, "metadata": {"source": "kb"}},
        {"id": 7, "score": 0.4},
    ]


def test_embedding_span():
    out = normalize(
        {
            "openinference.span.kind": "EMBEDDING",
            "embedding.model_name": "text-embedding-3-small",
            "embedding.invocation_parameters": json.dumps({"dimensions": 256, "encoding_format": "float"}),
            "llm.token_count.prompt": 9,
        }
    )
    assert out[sc.GEN_AI_OPERATION_NAME] == "embeddings"
    assert out[sc.GEN_AI_REQUEST_MODEL] == "text-embedding-3-small"
    assert out[sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == 256
    with_model = normalize({"openinference.span.kind": "EMBEDDING", "embedding.model_name": "te-3-2025",
                            "embedding.invocation_parameters": json.dumps({"model": "te-3"})})
    assert (with_model[sc.GEN_AI_REQUEST_MODEL], with_model[sc.GEN_AI_RESPONSE_MODEL]) == ("te-3", "te-3-2025")
    assert out[sc.GEN_AI_REQUEST_ENCODING_FORMATS] == ["float"]
    assert out[sc.GEN_AI_USAGE_INPUT_TOKENS] == 9


def cost_of(out):
    return {k: v for k, v in out.items() if k.startswith("spanhouse.cost.")}


def test_cost_details_become_the_cost_parts():
    reported = sc.SpanhouseCostSourceValues.REPORTED.value
    # the whole tree: the parts are the details, the cache part is reads plus writes
    details = {
        "llm.cost.prompt_details.input": 0.0012,
        "llm.cost.prompt_details.cache_read": 0.0003,
        "llm.cost.prompt_details.cache_write": 0.0005,
        "llm.cost.completion_details.output": 0.0006,
        "llm.cost.completion_details.reasoning": 0.0002,
    }
    out = normalize(llm_span(**details, **{"llm.cost.prompt": 0.002, "llm.cost.total": 0.0028}))
    assert cost_of(out) == {
        sc.SPANHOUSE_COST_USD: 0.0028,
        sc.SPANHOUSE_COST_INPUT_USD: 0.0012,
        sc.SPANHOUSE_COST_CACHE_USD: 0.0008,
        sc.SPANHOUSE_COST_OUTPUT_USD: 0.0006,
        sc.SPANHOUSE_COST_REASONING_USD: 0.0002,
        sc.SPANHOUSE_COST_SOURCE: reported,
    }
    # without llm.cost.total: the prompt and completion totals, which hold the cache part already
    span = llm_span(**{"llm.cost.prompt_details.cache_read": 0.0003})
    del span["llm.cost.total"]
    out = normalize(span)
    assert out[sc.SPANHOUSE_COST_USD] == 0.0028 and out[sc.SPANHOUSE_COST_CACHE_USD] == 0.0003
    # details alone: the total is the sum of the parts
    bare = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o"}
    out = normalize(
        {**bare, "llm.cost.prompt_details.cache_read": 0.0001, "llm.cost.completion_details.reasoning": 0.0002}
    )
    assert cost_of(out) == {
        sc.SPANHOUSE_COST_CACHE_USD: 0.0001,
        sc.SPANHOUSE_COST_REASONING_USD: 0.0002,
        sc.SPANHOUSE_COST_USD: 0.0003,
        sc.SPANHOUSE_COST_SOURCE: reported,
    }
    # never on aggregate spans
    agent = {"openinference.span.kind": "AGENT", "llm.cost.prompt_details.cache_read": 0.0001,
             "llm.cost.prompt_details.cache_write": 0.0001}
    assert cost_of(normalize(agent)) == {}


@pytest.mark.parametrize("kind, operation", [("AGENT", "invoke_agent"), ("CHAIN", None)])
def test_aggregate_spans_get_no_model_call_usage(kind, operation):
    """Agent and chain spans may carry their children's token and cost sums: never mapped."""
    out = normalize(
        {
            "openinference.span.kind": kind,
            "agent.name": "support",
            "llm.model_name": "gpt-4o",
            "llm.token_count.prompt": 5000,
            "llm.token_count.completion": 900,
            "llm.cost.total": 0.2,
            "input.value": "Where is my order?",
            "output.value": "Shipped.",
        }
    )
    assert out.get(sc.GEN_AI_OPERATION_NAME) == operation
    for key in (
        sc.GEN_AI_USAGE_INPUT_TOKENS,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS,
        sc.SPANHOUSE_COST_USD,
        sc.SPANHOUSE_COST_SOURCE,
    ):
        assert key not in out
    if operation == "invoke_agent":
        assert out[sc.GEN_AI_AGENT_NAME] == "support"
        assert messages(out[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "Where is my order?"
    else:  # a chain is not a GenAI operation: no inference either, and no messages
        assert sc.GEN_AI_INPUT_MESSAGES not in out


def test_evaluations_and_annotations_become_evaluation_events():
    attrs = {
        "openinference.span.kind": "LLM",
        "llm.model_name": "m",
        "evaluations.0.evaluation.name": "relevance",
        "evaluations.0.evaluation.score": 0.95,
        "evaluations.0.evaluation.label": "relevant",
        "evaluations.0.evaluation.explanation": "on topic",
        "annotations.0.annotation.name": "hallucination",
        "annotations.0.annotation.label": "factual",
        "annotations.1.annotation.name": "already_there",
        "annotations.1.annotation.score": 1,
    }
    existing = [Event(5, sc.EVENT_GEN_AI_EVALUATION_RESULT, {sc.GEN_AI_EVALUATION_NAME: "already_there"})]
    _, events, _ = normalize_span(attrs, events=existing)
    evals = {
        e.attributes[sc.GEN_AI_EVALUATION_NAME]: e.attributes
        for e in events
        if e.name == sc.EVENT_GEN_AI_EVALUATION_RESULT
    }
    assert evals["relevance"] == {
        sc.GEN_AI_EVALUATION_NAME: "relevance",
        sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.95,
        sc.GEN_AI_EVALUATION_SCORE_LABEL: "relevant",
        sc.GEN_AI_EVALUATION_EXPLANATION: "on topic",
    }
    assert evals["hallucination"][sc.GEN_AI_EVALUATION_SCORE_LABEL] == "factual"
    assert len(events) == 3  # the existing result is not duplicated


@pytest.mark.parametrize("scope", ["trace.evaluations", "trace.annotations", "session.evaluations",
                                   "session.annotations"])
def test_trace_and_session_feedback_become_evaluation_events(scope):
    item = "evaluation" if scope.endswith("evaluations") else "annotation"
    attrs = {"openinference.span.kind": "AGENT", f"{scope}.0.{item}.name": "task_success",
             f"{scope}.0.{item}.score": 1.0, f"{scope}.0.{item}.label": "success",
             f"{scope}.1.{item}.name": "frustration", f"{scope}.1.{item}.label": "none"}
    _, events, _ = normalize_span(attrs)
    evals = {e.attributes[sc.GEN_AI_EVALUATION_NAME]: e.attributes for e in events
             if e.name == sc.EVENT_GEN_AI_EVALUATION_RESULT}
    assert evals == {
        "task_success": {sc.GEN_AI_EVALUATION_NAME: "task_success", sc.GEN_AI_EVALUATION_SCORE_VALUE: 1.0,
                         sc.GEN_AI_EVALUATION_SCORE_LABEL: "success"},
        "frustration": {sc.GEN_AI_EVALUATION_NAME: "frustration", sc.GEN_AI_EVALUATION_SCORE_LABEL: "none"}}


def test_weak_names_need_an_openinference_span():
    """`session.id`, `input.value`, `tool.name` are generic names: without openinference.span.kind they
    are not OpenInference's and are left alone."""
    attrs = {"session.id": "s", "input.value": "x", "tool.name": "t", "agent.name": "a"}
    assert normalize(dict(attrs)) == attrs


def test_canonical_attributes_win_over_openinference():
    out = normalize(
        llm_span(
            **{
                sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
                sc.GEN_AI_USAGE_INPUT_TOKENS: 1500,
                sc.GEN_AI_OPERATION_NAME: "text_completion",
            }
        )
    )
    assert out[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert out[sc.GEN_AI_USAGE_INPUT_TOKENS] == 1500
    assert out[sc.GEN_AI_OPERATION_NAME] == "text_completion"
    assert out[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-2024-08-06"


def test_completions_api_prompts_and_choices():
    out = normalize(
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-3.5-turbo-instruct",
            "llm.prompts.0.prompt.text": "def fib(n):",
            "llm.choices.0.completion.text": " return n",
        }
    )
    assert messages(out[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "def fib(n):"}]}
    ]
    assert messages(out[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": " return n"}]}
    ]


def test_a_failed_call_takes_its_error_type_from_the_recorded_exception():
    """OpenInference records the exception but sets no `error.type`."""
    attrs = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini"}
    details = {sc.EXCEPTION_TYPE: "openai.RateLimitError", sc.EXCEPTION_MESSAGE: "429"}
    raised = Event(T0 + 5, sc.EVENT_EXCEPTION, details)
    failed, _, _ = normalize_span(dict(attrs), events=[raised], status=2)
    assert failed[sc.ERROR_TYPE] == "openai.RateLimitError"
    handled, _, _ = normalize_span(dict(attrs), events=[raised], status=1)  # caught, the call succeeded
    assert sc.ERROR_TYPE not in handled
    own, _, _ = normalize_span({**attrs, sc.ERROR_TYPE: "timeout"}, events=[raised], status=2)
    assert own[sc.ERROR_TYPE] == "timeout"


@pytest.mark.parametrize("params", [
    {"model": "gpt-4o", "user": "customer-8812"},
    {"model": "gpt-4o", "safety_identifier": "customer-8812"},
    {"model": "claude-sonnet-4", "metadata": {"user_id": "customer-8812"}},
])
def test_the_end_user_named_in_the_request_parameters_becomes_user_id(params):
    """OpenAI's `user` / `safety_identifier` and Anthropic's `metadata.user_id` name the end user; they
    become `user.id`, which the default redaction rule hashes."""
    for value in (json.dumps(params), params):
        out = normalize({"openinference.span.kind": "LLM", "llm.invocation_parameters": value})
        assert out[sc.USER_ID] == "customer-8812"


# --- LangChain-serialized messages in input.value / output.value (openinference-instrumentation-langchain)


def lc_dict(kind, content, **fields):
    """A message as LangChain's `messages_to_dict` writes it (the graph state of a LangGraph span)."""
    data = {"content": content, "additional_kwargs": {}, "response_metadata": {}, "type": kind, "name": None,
            "id": None, **fields}
    return {"type": kind, "data": data}


def lc_constructor(cls, content, **fields):
    """A message in LangChain's `lc` serialization (`dumpd`), as on the instrumented model call."""
    kwargs = {"content": content, "type": fields.pop("type", None), **fields}
    return {"lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", cls],
            "kwargs": {k: v for k, v in kwargs.items() if v is not None}}


WEATHER_CALL = {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1", "type": "tool_call"}
WEATHER_STATE = {
    "messages": [
        lc_dict("human", "Weather in Paris?", id="71ac8609"),
        lc_dict("ai", "", name="weather_agent", tool_calls=[WEATHER_CALL], invalid_tool_calls=[],
                response_metadata={"finish_reason": "tool_calls", "model_name": "gpt-4o-mini"}),
        lc_dict("tool", "sunny, 24 C in Paris", name="get_weather", tool_call_id="call_1", artifact=None,
                status="success"),
        lc_dict("ai", "It is sunny in Paris.", name="weather_agent", tool_calls=[], invalid_tool_calls=[]),
    ],
    "remaining_steps": 10006,
}
USER_ASKS = {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}
AGENT_CALLS = {
    "role": "assistant",
    "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}],
    "name": "weather_agent",
}
TOOL_ANSWERS = {
    "role": "tool",
    "parts": [{"type": "tool_call_response", "id": "call_1", "response": "sunny, 24 C in Paris"}],
}
AGENT_ANSWERS = {
    "role": "assistant",
    "parts": [{"type": "text", "content": "It is sunny in Paris."}],
    "name": "weather_agent",
}


def agent_span(input_value, output_value=None):
    attrs = {"openinference.span.kind": "AGENT", "input.value": json.dumps(input_value),
             "input.mime_type": "application/json"}
    if output_value is not None:
        attrs["output.value"] = json.dumps(output_value)
        attrs["output.mime_type"] = "application/json"
    return normalize(attrs)


def test_langgraph_state_messages_keep_their_roles_tool_calls_and_answer():
    """The graph's AGENT span: `(role, text)` tuples in, `messages_to_dict` messages out."""
    out = agent_span({"messages": [["user", "Weather in Paris?"]]}, WEATHER_STATE)
    assert out[sc.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert messages(out[sc.GEN_AI_INPUT_MESSAGES]) == [USER_ASKS]
    assert messages(out[sc.GEN_AI_OUTPUT_MESSAGES]) == [USER_ASKS, AGENT_CALLS, TOOL_ANSWERS, AGENT_ANSWERS]
    assert sc.GEN_AI_RESPONSE_FINISH_REASONS not in out


def test_langgraph_node_span_output_is_the_tool_call_not_an_empty_message():
    """The `agent` node's AGENT span: its update holds the one AI message that calls the tool."""
    node_in = {"messages": WEATHER_STATE["messages"][:1], "remaining_steps": 10006}
    out = agent_span(node_in, {"messages": [WEATHER_STATE["messages"][1]]})
    assert messages(out[sc.GEN_AI_INPUT_MESSAGES]) == [USER_ASKS]
    assert messages(out[sc.GEN_AI_OUTPUT_MESSAGES]) == [AGENT_CALLS]


def test_langchain_lc_constructor_messages():
    """`{"lc": 1, "type": "constructor", ...}` messages, in a batch (a list of lists) as on model calls;
    the type comes from kwargs, else from the class name (`AIMessageChunk` is an AI message)."""
    batch = [[
        lc_constructor("SystemMessage", "You are a weather bot.", type="system"),
        lc_constructor("HumanMessage", "Weather in Paris?", type="human", id="71ac8609"),
        lc_constructor("AIMessage", "", type="ai", name="weather_agent", tool_calls=[WEATHER_CALL]),
        lc_constructor("ToolMessage", "sunny, 24 C in Paris", type="tool", tool_call_id="call_1",
                       name="get_weather"),
    ]]
    out = agent_span({"messages": batch}, {"messages": [lc_constructor("AIMessageChunk", "It is sunny in Paris.",
                                                                       name="weather_agent")]})
    assert messages(out[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "You are a weather bot."}]
    assert messages(out[sc.GEN_AI_INPUT_MESSAGES]) == [USER_ASKS, AGENT_CALLS, TOOL_ANSWERS]
    assert messages(out[sc.GEN_AI_OUTPUT_MESSAGES]) == [AGENT_ANSWERS]


def test_langchain_plain_dict_messages_and_a_single_message():
    plain = [
        {"type": "system", "content": "Be brief."},
        {"type": "human", "content": "Weather in Paris?"},
        {"type": "ai", "content": "", "name": "weather_agent", "tool_calls": [WEATHER_CALL]},
        {"type": "tool", "content": "sunny, 24 C in Paris", "tool_call_id": "call_1"},
    ]
    out = agent_span({"messages": plain}, WEATHER_STATE["messages"][3])  # one message, not in a list
    assert messages(out[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be brief."}]
    assert messages(out[sc.GEN_AI_INPUT_MESSAGES]) == [USER_ASKS, AGENT_CALLS, TOOL_ANSWERS]
    assert messages(out[sc.GEN_AI_OUTPUT_MESSAGES]) == [AGENT_ANSWERS]


def test_langchain_chat_messages_chunks_and_older_tool_calls():
    """A ChatMessage has its own role; a chunk type is its message's; tool calls only in
    `additional_kwargs` (older LangChain) are read; a call both in the content and in `tool_calls` is
    one call."""
    anthropic_call = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
    openai_call = {"id": "call_2", "type": "function",
                   "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}
    out = agent_span(
        {"messages": [lc_dict("chat", "Weather in Paris?", role="human"),
                      {"type": "HumanMessageChunk", "data": {"content": "And in Rome?"}}]},
        {"messages": [
            lc_dict("ai", "", additional_kwargs={"tool_calls": [openai_call]}),
            lc_dict("AIMessageChunk", [{"type": "text", "text": "Checking."}, anthropic_call],
                    tool_calls=[{**WEATHER_CALL, "id": "toolu_1"}]),
        ]},
    )
    assert messages(out[sc.GEN_AI_INPUT_MESSAGES]) == [
        USER_ASKS, {"role": "user", "parts": [{"type": "text", "content": "And in Rome?"}]}]
    assert messages(out[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [
            {"type": "tool_call", "id": "call_2", "name": "get_weather", "arguments": {"city": "Rome"}}]},
        {"role": "assistant", "parts": [
            {"type": "text", "content": "Checking."},
            {"type": "tool_call", "id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}}]},
    ]


@pytest.mark.parametrize("unreadable", [
    {"type": "remove", "data": {"content": "", "id": "71ac8609"}},  # LangGraph's RemoveMessage
    {"type": "critique", "data": {"content": "looks fine"}},  # a type that names no role
    {"type": "chat", "data": {"content": "no role given"}},
    {"lc": 1, "type": "constructor", "id": ["langchain", "schema", "document", "Document"],
     "kwargs": {"page_content": "Paris"}},
])
def test_langchain_values_that_name_no_role_invent_no_message(unreadable):
    """Dropped from a conversation; a value with nothing else is left as sent, not made a message."""
    out = agent_span({"messages": [WEATHER_STATE["messages"][0], unreadable]}, {"messages": [unreadable]})
    assert messages(out[sc.GEN_AI_INPUT_MESSAGES]) == [USER_ASKS]
    assert sc.GEN_AI_OUTPUT_MESSAGES not in out
    assert out["output.value"] == json.dumps({"messages": [unreadable]})
