"""genai_cost: the pricing rules, checked against genai-prices' own calculation."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price
from spanhouse.processors.genai_cost import GenAiCost, GenAiCostConfig, PriceOverrideConfig
from support import service_config

from spanhouse import semconv as sc
from spanhouse.batch import Resource, Scope, SpanBatch
from spanhouse.config import parse_config
from spanhouse.errors import ConfigError
from spanhouse.modelcalls import is_model_call
from spanhouse.otlp.values import describe

OP = sc.GenAiOperationNameValues
SRC = sc.SpanhouseCostSourceValues
NOW_NS = int(datetime(2026, 6, 1, 12, tzinfo=UTC).timestamp() * 1e9)


def ns(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, 12, tzinfo=UTC).timestamp() * 1e9)


def run(
    spans: list[dict], config: GenAiCostConfig | None = None, starts: list[int] | None = None
) -> GenAiCost:
    """Process `spans` (attribute dicts, changed in place) in one batch."""
    proc = GenAiCost(config or GenAiCostConfig())
    batch = SpanBatch()
    batch.resources.append(Resource({}))
    batch.scopes.append(Scope())
    for i, attrs in enumerate(spans):
        batch.append(
            resource=0,
            scope=0,
            trace_id="a" * 32,
            span_id=f"{i + 1:016x}",
            name="s",
            start_time_unix_nano=(starts or [NOW_NS] * len(spans))[i],
            end_time_unix_nano=NOW_NS + 1,
            attributes=attrs,
        )
    proc.process(batch)
    return proc


def chat(provider: str, model: str, **tokens: int) -> dict:
    keys = {
        "input": sc.GEN_AI_USAGE_INPUT_TOKENS,
        "output": sc.GEN_AI_USAGE_OUTPUT_TOKENS,
        "cache_read": sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        "cache_write": sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
        "reasoning": sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        "audio_input": sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS,
        "audio_output": sc.GEN_AI_USAGE_AUDIO_OUTPUT_TOKENS,
        "audio_cache_read": sc.GEN_AI_USAGE_AUDIO_CACHE_READ_INPUT_TOKENS,
        "image_input": sc.GEN_AI_USAGE_IMAGE_INPUT_TOKENS,
        "image_output": sc.GEN_AI_USAGE_IMAGE_OUTPUT_TOKENS,
        "image_cache_read": sc.GEN_AI_USAGE_IMAGE_CACHE_READ_INPUT_TOKENS,
    }
    attrs = {
        sc.GEN_AI_OPERATION_NAME: tokens.pop("op", OP.CHAT.value),
        sc.GEN_AI_PROVIDER_NAME: provider,
        sc.GEN_AI_REQUEST_MODEL: model,
    }
    attrs.update({keys[k]: v for k, v in tokens.items()})
    return attrs


def reference(provider_id: str, model: str, when_ns: int = NOW_NS, **tokens: int):
    usage = Usage(
        input_tokens=tokens.get("input", 0),
        output_tokens=tokens.get("output", 0),
        cache_read_tokens=tokens.get("cache_read", 0),
        cache_write_tokens=tokens.get("cache_write", 0),
        output_reasoning_tokens=tokens.get("reasoning", 0),
        input_audio_tokens=tokens.get("audio_input", 0),
        output_audio_tokens=tokens.get("audio_output", 0),
        cache_audio_read_tokens=tokens.get("audio_cache_read", 0),
        input_image_tokens=tokens.get("image_input", 0),
        output_image_tokens=tokens.get("image_output", 0),
        cache_image_read_tokens=tokens.get("image_cache_read", 0),
    )
    return calc_price(
        usage,
        model,
        provider_id=provider_id,
        genai_request_timestamp=datetime.fromtimestamp(when_ns / 1e9, UTC),
    )


@pytest.mark.parametrize(
    "provider, provider_id, model, tokens",
    [
        # OpenAI: prompt tokens include the cached ones
        ("openai", "openai", "gpt-4o-mini", dict(input=12_000, cache_read=8_192, output=640)),
        # Anthropic: cache writes and reads, long context (tiered prices above 200k input)
        (
            "anthropic",
            "anthropic",
            "claude-sonnet-4-5",
            dict(input=5_000, cache_read=1_000, cache_write=2_000, output=300),
        ),
        (
            "anthropic",
            "anthropic",
            "claude-sonnet-4-5",
            dict(input=250_000, cache_read=1_000, cache_write=60_000, output=900),
        ),
        # reasoning model whose reasoning tokens are ordinary output tokens
        ("openai", "openai", "o3-mini", dict(input=1_000, output=3_000, reasoning=2_000)),
        # reasoning model with a separate reasoning rate
        ("perplexity", "perplexity", "sonar-deep-research", dict(input=1_000, output=3_000, reasoning=2_000)),
        # embeddings: input only
        ("openai", "openai", "text-embedding-3-small", dict(input=4_096)),
        # OTel provider names that differ from genai-prices ids
        (
            "gcp.vertex_ai",
            "google",
            "gemini-2.5-pro",
            dict(input=1_000, cache_read=100, output=300, reasoning=50),
        ),
        ("azure.ai.openai", "azure", "gpt-4o", dict(input=1_000, output=300)),
        ("x_ai", "x-ai", "grok-3", dict(input=1_000, output=300)),
    ],
)
def test_costs_equal_genai_prices(provider, provider_id, model, tokens):
    attrs = chat(provider, model, **tokens)
    run([attrs])
    ref = reference(provider_id, model, **tokens)
    assert Decimal(repr(attrs[sc.SPANHOUSE_COST_USD])) == ref.total_price
    assert attrs[sc.SPANHOUSE_COST_SOURCE] == SRC.COMPUTED.value
    assert attrs[sc.SPANHOUSE_COST_PRICE_ID] == f"{ref.provider.id}/{ref.model.id}"
    # the parts split genai-prices' input and output prices without counting anything twice
    parts_in = attrs[sc.SPANHOUSE_COST_INPUT_USD] + attrs.get(sc.SPANHOUSE_COST_CACHE_USD, 0.0)
    parts_out = attrs[sc.SPANHOUSE_COST_OUTPUT_USD] + attrs.get(sc.SPANHOUSE_COST_REASONING_USD, 0.0)
    assert parts_in == pytest.approx(float(ref.input_price), rel=1e-12, abs=1e-15)
    assert parts_out == pytest.approx(float(ref.output_price), rel=1e-12, abs=1e-15)
    assert (sc.SPANHOUSE_COST_CACHE_USD in attrs) == bool(
        tokens.get("cache_read") or tokens.get("cache_write")
    )


def test_cache_parts_are_priced_at_their_own_rates():
    attrs = chat(
        "anthropic", "claude-sonnet-4-5", input=5_000, cache_read=1_000, cache_write=2_000, output=300
    )
    run([attrs])
    # $3 input, $0.30 cache read, $3.75 cache write, $15 output per million tokens
    assert attrs[sc.SPANHOUSE_COST_INPUT_USD] == pytest.approx(2_000 * 3 / 1e6)
    assert attrs[sc.SPANHOUSE_COST_CACHE_USD] == pytest.approx((1_000 * 0.30 + 2_000 * 3.75) / 1e6)
    assert attrs[sc.SPANHOUSE_COST_OUTPUT_USD] == pytest.approx(300 * 15 / 1e6)


def test_reasoning_rate_is_carved_out_of_output():
    attrs = chat("perplexity", "sonar-deep-research", input=1_000, output=3_000, reasoning=2_000)
    run([attrs])
    assert attrs[sc.SPANHOUSE_COST_OUTPUT_USD] == pytest.approx(1_000 * 8 / 1e6)
    assert attrs[sc.SPANHOUSE_COST_REASONING_USD] == pytest.approx(2_000 * 3 / 1e6)
    plain = chat("openai", "o3-mini", input=1_000, output=3_000, reasoning=2_000)
    run([plain])
    assert sc.SPANHOUSE_COST_REASONING_USD not in plain


def test_historic_spans_get_historic_prices():
    # claude-sonnet-4-6 had long-context tiers until 2026-03-13 and flat prices after
    tokens = dict(input=300_000, output=1_000)
    old, new = (
        chat("anthropic", "claude-sonnet-4-6", **tokens),
        chat("anthropic", "claude-sonnet-4-6", **tokens),
    )
    run([old, new], starts=[ns(2026, 1, 10), ns(2026, 6, 1)])
    old_ref = reference("anthropic", "claude-sonnet-4-6", ns(2026, 1, 10), **tokens).total_price
    new_ref = reference("anthropic", "claude-sonnet-4-6", ns(2026, 6, 1), **tokens).total_price
    assert old_ref != new_ref
    assert Decimal(repr(old[sc.SPANHOUSE_COST_USD])) == old_ref
    assert Decimal(repr(new[sc.SPANHOUSE_COST_USD])) == new_ref


def test_response_model_is_priced_before_request_model():
    attrs = chat("openai", "gpt-4o", input=1_000, output=100)
    attrs[sc.GEN_AI_RESPONSE_MODEL] = "gpt-4o-mini-2024-07-18"
    run([attrs])
    assert attrs[sc.SPANHOUSE_COST_PRICE_ID] == "openai/gpt-4o-mini"


def test_overrides_win_exact_regex_and_valid_from():
    config = GenAiCostConfig(
        overrides=[
            PriceOverrideConfig(
                name="contract-2025", model="gpt-4o", input=2.0, output=8.0, valid_from="2025-01-01"
            ),
            PriceOverrideConfig(
                name="contract-2026",
                model="GPT-4o",
                input=1.0,
                output=4.0,
                cache_read=0.5,
                valid_from="2026-03-01",
            ),
            PriceOverrideConfig(name="local", regex=r"llama-3\.\d+-.*", provider="ollama", input=0, output=0),
            PriceOverrideConfig(name="reasoner", regex="my-reasoner", input=1, output=2, reasoning=10),
        ]
    )
    before, old, new = (chat("openai", "gpt-4o", input=1_000, cache_read=400, output=100) for _ in range(3))
    local = chat("ollama", "llama-3.1-8b", input=1_000, output=100)
    other_provider = chat("groq", "llama-3.1-8b", input=1_000, output=100)
    reasoner = chat("acme", "my-reasoner", input=1_000, output=1_000, reasoning=600)
    proc = run(
        [before, old, new, local, other_provider, reasoner],
        config,
        starts=[ns(2024, 6, 1), ns(2025, 6, 1), ns(2026, 6, 1)] + [NOW_NS] * 3,
    )
    # before every valid_from: genai-prices
    assert before[sc.SPANHOUSE_COST_SOURCE] == SRC.COMPUTED.value
    assert (
        Decimal(repr(before[sc.SPANHOUSE_COST_USD]))
        == reference("openai", "gpt-4o", ns(2024, 6, 1), input=1_000, cache_read=400, output=100).total_price
    )
    # the newest override valid at the span's start time
    assert old[sc.SPANHOUSE_COST_SOURCE] == SRC.OVERRIDE.value
    assert old[sc.SPANHOUSE_COST_PRICE_ID] == "override/contract-2025"
    assert old[sc.SPANHOUSE_COST_USD] == pytest.approx(
        (1_000 * 2.0 + 100 * 8.0) / 1e6
    )  # cache read at input rate
    assert new[sc.SPANHOUSE_COST_PRICE_ID] == "override/contract-2026"
    assert new[sc.SPANHOUSE_COST_USD] == pytest.approx((600 * 1.0 + 400 * 0.5 + 100 * 4.0) / 1e6)
    assert new[sc.SPANHOUSE_COST_CACHE_USD] == pytest.approx(400 * 0.5 / 1e6)
    # regex, restricted to one provider; a free local model costs a real $0, marked override
    assert local[sc.SPANHOUSE_COST_SOURCE] == SRC.OVERRIDE.value and local[sc.SPANHOUSE_COST_USD] == 0.0
    assert other_provider[sc.SPANHOUSE_COST_SOURCE] != SRC.OVERRIDE.value
    assert reasoner[sc.SPANHOUSE_COST_USD] == pytest.approx((1_000 * 1 + 400 * 2 + 600 * 10) / 1e6)
    assert reasoner[sc.SPANHOUSE_COST_REASONING_USD] == pytest.approx(600 * 10 / 1e6)
    assert proc.counts[SRC.OVERRIDE.value] == 4


def test_unknown_model_gets_no_cost_and_is_counted(caplog):
    spans = [chat("acme-ai", "acme-large-7", input=100, output=10) for _ in range(3)]
    with caplog.at_level("WARNING"):
        proc = run(spans)
    for attrs in spans:
        assert attrs[sc.SPANHOUSE_COST_SOURCE] == SRC.UNKNOWN_MODEL.value
        assert sc.SPANHOUSE_COST_USD not in attrs
    assert proc.counts[SRC.UNKNOWN_MODEL.value] == 3
    assert [r.getMessage() for r in caplog.records if "acme-large-7" in r.getMessage()][0].count(
        "override"
    ) == 1
    assert sum("acme-large-7" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("provider", ["ollama", "vLLM", "llama.cpp", "lm-studio"])
def test_a_self_hosted_runtime_is_never_given_a_cloud_price(provider, caplog):
    """genai-prices matches `deepseek-r1:8b` by name to DeepSeek's API; served by Ollama on the
    application's own hardware it has no list price, unless an override gives it one."""
    local = chat(provider, "deepseek-r1:8b", input=1_000, output=100)
    cloud = chat("", "deepseek-r1:8b", input=1_000, output=100)
    with caplog.at_level("WARNING"):
        proc = run([local, cloud])
    assert local[sc.SPANHOUSE_COST_SOURCE] == SRC.UNKNOWN_MODEL.value and sc.SPANHOUSE_COST_USD not in local
    assert cloud[sc.SPANHOUSE_COST_SOURCE] == SRC.COMPUTED.value  # the guess self-hosted calls used to get
    assert proc.counts[SRC.UNKNOWN_MODEL.value] == 1
    assert [r.getMessage() for r in caplog.records if "self-hosted" in r.getMessage()] == [
        f"genai_cost: model 'deepseek-r1:8b' is served by {provider!r}, a self-hosted runtime, which has no "
        "list price; its spans are marked unknown_model and listed by `spanhouse costs --unpriced`. Price it "
        f"under processors::genai_cost::overrides (with provider: {provider}; 0 if it costs nothing per token)."
    ]

    priced = chat(provider, "deepseek-r1:8b", input=1_000_000, output=0)
    run([priced], GenAiCostConfig(overrides=[PriceOverrideConfig(model="deepseek-r1:8b", provider=provider,
                                                                 input=0.05, output=0.1)]))
    assert priced[sc.SPANHOUSE_COST_SOURCE] == SRC.OVERRIDE.value
    assert priced[sc.SPANHOUSE_COST_USD] == pytest.approx(0.05)

    mapped = chat(provider, "deepseek-reasoner", input=1_000, output=100)
    run([mapped], GenAiCostConfig(providers={provider: "deepseek"}))  # "it is really DeepSeek's API"
    assert mapped[sc.SPANHOUSE_COST_SOURCE] == SRC.COMPUTED.value


def test_a_model_without_a_provider_is_priced_when_the_providers_listing_it_agree():
    """MLflow and Langfuse spans often carry no provider; genai-prices' name patterns miss models such
    as text-embedding-3-small, which OpenAI and Azure list at the same price."""
    embed = {sc.GEN_AI_OPERATION_NAME: OP.EMBEDDINGS.value, sc.GEN_AI_REQUEST_MODEL: "text-embedding-3-small",
             sc.GEN_AI_USAGE_INPUT_TOKENS: 1_000}
    unknown = {**embed, sc.GEN_AI_REQUEST_MODEL: "acme-embed-9"}
    run([embed, unknown])
    assert embed[sc.SPANHOUSE_COST_USD] == pytest.approx(
        float(reference("openai", "text-embedding-3-small", input=1_000).total_price))
    assert embed[sc.SPANHOUSE_COST_SOURCE] == SRC.COMPUTED.value
    assert unknown[sc.SPANHOUSE_COST_SOURCE] == SRC.UNKNOWN_MODEL.value and sc.SPANHOUSE_COST_USD not in unknown


def test_reported_costs_are_kept():
    sdk = chat("openai", "gpt-4o", input=1_000, output=100)
    sdk[sc.SPANHOUSE_COST_USD] = 0.5
    normalized = chat("openai", "gpt-4o", input=1_000, output=100)
    normalized.update({sc.SPANHOUSE_COST_USD: 0.25, sc.SPANHOUSE_COST_SOURCE: SRC.REPORTED.value})
    proc = run([sdk, normalized])
    assert sdk[sc.SPANHOUSE_COST_USD] == 0.5 and sdk[sc.SPANHOUSE_COST_SOURCE] == SRC.REPORTED.value
    assert sc.SPANHOUSE_COST_INPUT_USD not in sdk and sc.SPANHOUSE_COST_PRICE_ID not in sdk
    assert normalized == {
        **chat("openai", "gpt-4o", input=1_000, output=100),
        sc.SPANHOUSE_COST_USD: 0.25,
        sc.SPANHOUSE_COST_SOURCE: SRC.REPORTED.value,
    }
    assert proc.counts == {SRC.REPORTED.value: 2}  # a mapped cost is checked, and kept, too


def test_a_reported_zero_for_a_priced_model_is_priced_from_its_tokens(caplog):
    """LiteLLM reports llm.cost.total = 0 for Anthropic calls it could not price; kept, such calls read
    as free and never show among the unpriced ones."""
    tokens = dict(input=350, cache_read=200, cache_write=50, output=20)
    zero = chat("anthropic", "claude-sonnet-4-20250514", **tokens)
    zero.update({sc.SPANHOUSE_COST_USD: 0.0, sc.SPANHOUSE_COST_INPUT_USD: 0.0,
                 sc.SPANHOUSE_COST_SOURCE: SRC.REPORTED.value})
    free = chat("ollama", "llama3.1:8b", input=350, output=20)  # no price: the reported 0 is all there is
    free[sc.SPANHOUSE_COST_USD] = 0
    empty = chat("anthropic", "claude-sonnet-4-20250514")  # no tokens: nothing to price it from
    empty[sc.SPANHOUSE_COST_USD] = 0
    with caplog.at_level("WARNING"):
        run([zero, free, empty])
    expected = float(reference("anthropic", "claude-sonnet-4-20250514", **tokens).total_price)
    assert expected > 0
    assert zero[sc.SPANHOUSE_COST_SOURCE] == SRC.COMPUTED.value
    assert zero[sc.SPANHOUSE_COST_USD] == pytest.approx(expected)
    assert zero[sc.SPANHOUSE_COST_INPUT_USD] > 0
    assert free[sc.SPANHOUSE_COST_SOURCE] == SRC.REPORTED.value and free[sc.SPANHOUSE_COST_USD] == 0
    assert empty[sc.SPANHOUSE_COST_SOURCE] == SRC.REPORTED.value and empty[sc.SPANHOUSE_COST_USD] == 0
    assert sum("was reported to cost 0" in r.getMessage() for r in caplog.records) == 1


def test_a_response_model_without_a_price_is_priced_as_the_model_requested():
    """Gemini may answer `gemini-2.5-flash` with a variant genai-prices does not list."""
    variant = chat("gcp.gemini", "gemini-2.5-flash", input=1_000, output=100)
    variant[sc.GEN_AI_RESPONSE_MODEL] = "gemini-2.5-flash-acme-variant"
    neither = chat("gcp.gemini", "acme-flash", input=1_000, output=100)
    neither[sc.GEN_AI_RESPONSE_MODEL] = "acme-flash-001"
    run([variant, neither])
    assert variant[sc.SPANHOUSE_COST_SOURCE] == SRC.COMPUTED.value
    assert variant[sc.SPANHOUSE_COST_USD] == pytest.approx(
        float(reference("google", "gemini-2.5-flash", input=1_000, output=100).total_price))
    assert neither[sc.SPANHOUSE_COST_SOURCE] == SRC.UNKNOWN_MODEL.value


def _call_batch(spans: list[tuple[str, str, dict]]) -> SpanBatch:
    """A batch of (span id, parent span id, attributes) in one trace."""
    batch = SpanBatch()
    batch.resources.append(Resource({}))
    batch.scopes.append(Scope())
    for span_id, parent, attrs in spans:
        batch.append(resource=0, scope=0, trace_id="b" * 32, span_id=span_id, parent_span_id=parent,
                     name="response", start_time_unix_nano=NOW_NS, end_time_unix_nano=NOW_NS + 1,
                     attributes=attrs)
    return batch


def test_one_call_reported_by_two_nested_spans_is_priced_and_counted_once(caplog):
    """openinference-instrumentation-openai-agents' `response` span with -openai's `Response` span under
    it, for one HTTP call: inner first (it ends first), then the outer one, in one batch or two."""
    def pair():
        return (chat("openai", "gpt-4o-mini", input=42, output=7, cache_read=16),
                chat("openai", "gpt-4o-mini", input=42, output=7, cache_read=16))

    proc = GenAiCost(GenAiCostConfig())
    inner, outer = pair()
    other = chat("openai", "gpt-4o-mini", input=42, output=8)  # a child with other counts: a call of its own
    with caplog.at_level("WARNING"):
        proc.process(_call_batch([("00000000000000a2", "00000000000000a1", inner),
                                  ("00000000000000a3", "00000000000000a1", other),
                                  ("00000000000000a1", "", outer)]))
    assert inner[sc.SPANHOUSE_COST_SOURCE] == SRC.COMPUTED.value and inner[sc.SPANHOUSE_COST_USD] > 0
    assert other[sc.SPANHOUSE_COST_SOURCE] == SRC.COMPUTED.value
    assert outer[sc.SPANHOUSE_COST_SOURCE] == SRC.AGGREGATED.value and sc.SPANHOUSE_COST_USD not in outer
    assert not is_model_call(outer[sc.GEN_AI_OPERATION_NAME], outer[sc.SPANHOUSE_COST_SOURCE])
    assert is_model_call(inner[sc.GEN_AI_OPERATION_NAME], inner[sc.SPANHOUSE_COST_SOURCE])
    assert proc.counts == {SRC.COMPUTED.value: 2, SRC.AGGREGATED.value: 1}
    assert sum("two nested spans" in r.getMessage() for r in caplog.records) == 1

    inner, middle = pair()  # framework → library → provider SDK, three spans of one call
    outer = chat("openai", "gpt-4o-mini", input=42, output=7, cache_read=16)
    proc.process(_call_batch([("00000000000000c3", "00000000000000c2", inner),
                              ("00000000000000c2", "00000000000000c1", middle),
                              ("00000000000000c1", "", outer)]))
    assert [a[sc.SPANHOUSE_COST_SOURCE] for a in (inner, middle, outer)] == [
        SRC.COMPUTED.value, SRC.AGGREGATED.value, SRC.AGGREGATED.value]

    inner, outer = pair()  # the outer span exported first, in an earlier batch
    proc.process(_call_batch([("00000000000000b1", "", outer)]))
    proc.process(_call_batch([("00000000000000b2", "00000000000000b1", inner)]))
    assert outer[sc.SPANHOUSE_COST_SOURCE] == SRC.COMPUTED.value
    assert inner[sc.SPANHOUSE_COST_SOURCE] == SRC.AGGREGATED.value


def test_the_model_call_rule_counts_spans_without_a_cost_source_by_their_operation():
    assert is_model_call(OP.CHAT.value, "") and is_model_call("", SRC.UNKNOWN_MODEL.value)
    assert not is_model_call(OP.CHAT.value, SRC.AGGREGATED.value)
    assert not is_model_call(OP.INVOKE_AGENT.value, "")


def test_aggregated_usage_is_not_priced():
    agent = chat("openai", "gpt-4o", op=OP.INVOKE_AGENT.value, input=3_000, output=300)
    workflow = chat("openai", "gpt-4o", op=OP.INVOKE_WORKFLOW.value, input=3_000, output=300)
    tool = {sc.GEN_AI_OPERATION_NAME: OP.EXECUTE_TOOL.value, sc.GEN_AI_TOOL_NAME: "search"}
    calls = [
        chat("openai", "gpt-4o", input=1_000, output=100),
        chat("openai", "gpt-4o", input=2_000, output=200),
    ]
    no_op = {
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
        sc.GEN_AI_USAGE_INPUT_TOKENS: 10,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 1,
    }
    run([agent, workflow, tool, *calls, no_op])
    for span in (agent, workflow):
        assert span[sc.SPANHOUSE_COST_SOURCE] == SRC.AGGREGATED.value and sc.SPANHOUSE_COST_USD not in span
    assert sc.SPANHOUSE_COST_SOURCE not in tool
    assert no_op[sc.SPANHOUSE_COST_SOURCE] == SRC.COMPUTED.value
    assert calls[0][sc.SPANHOUSE_COST_USD] + calls[1][sc.SPANHOUSE_COST_USD] == pytest.approx(
        float(reference("openai", "gpt-4o", input=3_000, output=300).total_price)
    )


def test_an_operation_name_that_is_not_a_string_is_ignored():
    """A list or map sent as gen_ai.operation.name must not fail the batch (and the request with it)."""
    listed = chat("openai", "gpt-4o", input=1_000, output=100)
    mapped = chat("openai", "gpt-4o", input=1_000, output=100)
    listed[sc.GEN_AI_OPERATION_NAME], mapped[sc.GEN_AI_OPERATION_NAME] = ["chat"], {"op": "chat"}
    run([listed, mapped])
    price = float(reference("openai", "gpt-4o", input=1_000, output=100).total_price)
    assert listed[sc.SPANHOUSE_COST_USD] == mapped[sc.SPANHOUSE_COST_USD] == pytest.approx(price)


def test_uncached_input_is_never_clamped():
    # a source that sent only the uncached part: 300 uncached + 1000 read + 500 written
    attrs = chat("anthropic", "claude-sonnet-4-5", input=300, cache_read=1_000, cache_write=500, output=50)
    run([attrs])
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == 1_800
    assert attrs[sc.SPANHOUSE_USAGE_INPUT_INCLUDES_CACHE_ADJUSTED] is True
    assert attrs[sc.SPANHOUSE_COST_INPUT_USD] == pytest.approx(300 * 3 / 1e6)
    assert (
        Decimal(repr(attrs[sc.SPANHOUSE_COST_USD]))
        == reference(
            "anthropic", "claude-sonnet-4-5", input=1_800, cache_read=1_000, cache_write=500, output=50
        ).total_price
    )
    # reasoning reported outside the output count
    gemini = chat("gcp.gemini", "gemini-2.5-pro", input=100, output=20, reasoning=500)
    run([gemini])
    assert gemini[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 520
    assert gemini[sc.SPANHOUSE_USAGE_OUTPUT_INCLUDES_REASONING_ADJUSTED] is True


def test_spans_without_usage_or_with_bad_counts_are_marked_not_priced():
    no_usage = chat("openai", "gpt-4o")
    bad = chat("openai", "gpt-4o", input=100)
    bad[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = "lots"
    text_counts = chat("openai", "gpt-4o")
    text_counts.update({sc.GEN_AI_USAGE_INPUT_TOKENS: "1000", sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100.0})
    plain = {"http.method": "GET"}
    run([no_usage, bad, text_counts, plain])
    assert no_usage[sc.SPANHOUSE_COST_SOURCE] == SRC.NO_USAGE.value
    assert bad[sc.SPANHOUSE_COST_SOURCE] == SRC.INVALID_USAGE.value
    assert sc.SPANHOUSE_COST_USD not in bad
    assert (
        Decimal(repr(text_counts[sc.SPANHOUSE_COST_USD]))
        == reference("openai", "gpt-4o", input=1_000, output=100).total_price
    )
    assert plain == {"http.method": "GET"}


def test_lookups_are_cached_per_provider_and_model(monkeypatch):
    proc = GenAiCost(GenAiCostConfig())
    calls = []
    find = proc.book._snapshot.find_provider_model
    monkeypatch.setattr(proc.book._snapshot, "find_provider_model", lambda *a: calls.append(a) or find(*a))
    batch = SpanBatch()
    batch.resources.append(Resource({}))
    batch.scopes.append(Scope())
    for i in range(50):
        batch.append(
            resource=0,
            scope=0,
            trace_id="b" * 32,
            span_id=f"{i + 1:016x}",
            name="chat",
            start_time_unix_nano=NOW_NS,
            end_time_unix_nano=NOW_NS,
            attributes=chat("openai", "gpt-4o-mini" if i % 2 else "gpt-4o", input=10 + i, output=1),
        )
    proc.process(batch)
    assert len(calls) == 2
    assert all(sc.SPANHOUSE_COST_USD in a for a in batch.attributes)


def test_config_errors_name_their_paths():
    config = service_config(
        "x",
        processor_configs={
            "genai_cost": {
                "overrides": [
                    {"model": "a", "input": 1, "output": 2},
                    {"regex": "gpt-(", "input": 1, "output": 2},
                    {"model": "b", "regex": "c", "input": -1, "output": "cheap", "valid_from": "yesterday"},
                    {"model": "d", "input": 1},
                ],
                "surprise": True,
            }
        },
        processors=["genai_cost"],
    )
    with pytest.raises(ConfigError) as err:
        parse_config(config)
    problems = "\n".join(err.value.problems)
    assert (
        "processors::genai_cost::overrides[1]::regex: 'gpt-(' is not a valid regular expression" in problems
    )
    assert (
        "processors::genai_cost::overrides[2]: set exactly one of model (an exact model name) or regex"
        in problems
    )
    assert "processors::genai_cost::overrides[2]::input: must be a non-negative number" in problems
    assert "processors::genai_cost::overrides[2]::output: expected a number, got 'cheap'" in problems
    assert "processors::genai_cost::overrides[2]::valid_from: expected a date like 2025-01-31" in problems
    assert "processors::genai_cost::overrides[3]::output: is required" in problems
    assert "processors::genai_cost::surprise: unknown setting" in problems
    assert "overrides[0]" not in problems


def test_yaml_dates_are_accepted():
    import yaml

    data = service_config(
        "x",
        processor_configs={
            "genai_cost": yaml.safe_load(
                "overrides: [{model: m, input: 1, output: 2, valid_from: 2025-02-01}]\nupdate_prices: false"
            )
        },
        processors=["genai_cost"],
    )
    cfg = next(c for cid, c in parse_config(data).processors.items() if cid.type == "genai_cost")
    assert cfg.overrides[0].build().valid_from.isoformat() == "2025-02-01"
    assert cfg.update_prices is False


@pytest.mark.parametrize("op", ["Chat", "completion", "responses", "generate", "image_generation", "rerank", None])
def test_a_span_with_usage_and_no_or_a_non_standard_operation_is_a_model_call(op):
    """Only the conventions' own non-model-call operations aggregate their children's usage: any other
    span with token counts is a model call, priced like `chat`."""
    attrs = chat("openai", "gpt-4o", input=1_000, output=100)
    if op is None:
        del attrs[sc.GEN_AI_OPERATION_NAME]
    else:
        attrs[sc.GEN_AI_OPERATION_NAME] = op
    proc = run([attrs])
    assert attrs[sc.SPANHOUSE_COST_SOURCE] == SRC.COMPUTED.value
    price = reference("openai", "gpt-4o", input=1_000, output=100).total_price
    assert Decimal(repr(attrs[sc.SPANHOUSE_COST_USD])) == price
    assert proc.counts == {SRC.COMPUTED.value: 1}


def test_spans_that_only_name_a_model_are_neither_priced_nor_unpriced():
    """Vercel's outer ai.generateText and an OpenInference CHAIN name the model of the calls below them;
    a rerank call reports no tokens. None is a model call to price; a `chat` span without usage is."""
    outer = {sc.GEN_AI_REQUEST_MODEL: "gpt-4o", sc.GEN_AI_PROVIDER_NAME: "openai"}
    chain = {sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini", sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini"}
    rerank = {sc.GEN_AI_OPERATION_NAME: "rerank", sc.GEN_AI_PROVIDER_NAME: "cohere",
              sc.GEN_AI_REQUEST_MODEL: "rerank-v3.5"}
    agent_step = {sc.GEN_AI_OPERATION_NAME: "agent_step"}
    plain_chat = chat("openai", "gpt-4o")
    before = [dict(outer), dict(chain), dict(rerank), dict(agent_step)]
    proc = run([outer, chain, rerank, agent_step, plain_chat])
    assert [outer, chain, rerank, agent_step] == before
    assert plain_chat[sc.SPANHOUSE_COST_SOURCE] == SRC.NO_USAGE.value
    assert proc.counts == {SRC.NO_USAGE.value: 1}


def test_a_model_call_with_usage_but_no_model_is_unpriced_no_model(caplog):
    spans = [
        {sc.GEN_AI_OPERATION_NAME: OP.CHAT.value, sc.GEN_AI_PROVIDER_NAME: "openai",
         sc.GEN_AI_USAGE_INPUT_TOKENS: 1_000, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 500}
        for _ in range(3)
    ]
    with caplog.at_level("WARNING"):
        proc = run(spans)
    for attrs in spans:
        assert attrs[sc.SPANHOUSE_COST_SOURCE] == SRC.NO_MODEL.value and sc.SPANHOUSE_COST_USD not in attrs
    assert proc.counts == {SRC.NO_MODEL.value: 3}
    warnings = [r.getMessage() for r in caplog.records if "no_model" in r.getMessage()]
    assert len(warnings) == 1 and "names no model" in warnings[0]


def test_a_cost_reported_on_an_aggregating_span_is_removed(caplog):
    """An agent that reports the cost of its run would be added on top of its priced calls."""
    agent = chat("openai", "gpt-4o-mini", op=OP.INVOKE_AGENT.value, input=2_000, output=200)
    agent.update({sc.SPANHOUSE_COST_USD: 0.00135, sc.SPANHOUSE_COST_INPUT_USD: 0.001})
    workflow = {sc.GEN_AI_OPERATION_NAME: OP.INVOKE_WORKFLOW.value, sc.SPANHOUSE_COST_USD: 0.5}
    calls = [chat("openai", "gpt-4o-mini", input=1_000, output=100) for _ in range(2)]
    with caplog.at_level("WARNING"):
        proc = run([agent, workflow, *calls])
    for span in (agent, workflow):
        assert span[sc.SPANHOUSE_COST_SOURCE] == SRC.AGGREGATED.value
        assert not any(key.startswith("spanhouse.cost.") and key != sc.SPANHOUSE_COST_SOURCE for key in span)
    assert proc.counts == {SRC.AGGREGATED.value: 2, SRC.COMPUTED.value: 2}
    warnings = [r.getMessage() for r in caplog.records if "reported on" in r.getMessage()]
    assert len(warnings) == 1 and "here a float" in warnings[0] and "invoke_agent" in warnings[0]
    assert "0.00135" not in warnings[0]  # a value is described, never quoted


@pytest.mark.parametrize("sent", [float("nan"), float("inf"), -5.0, -1, "abc", "", True, [0.5]])
def test_a_reported_cost_that_is_not_a_cost_is_replaced_by_the_computed_one(sent, caplog):
    priced = chat("openai", "gpt-4o", input=1_000, output=100)
    priced[sc.SPANHOUSE_COST_USD] = sent
    # as genai_normalize leaves a mapped cost: marked reported, with a part
    mapped = {**chat("openai", "gpt-4o", input=1_000, output=100), sc.SPANHOUSE_COST_USD: sent,
              sc.SPANHOUSE_COST_INPUT_USD: 0.1, sc.SPANHOUSE_COST_SOURCE: SRC.REPORTED.value}
    no_usage = {sc.GEN_AI_REQUEST_MODEL: "gpt-4o", sc.SPANHOUSE_COST_USD: sent}
    with caplog.at_level("WARNING"):
        proc = run([priced, mapped, no_usage])
    price = reference("openai", "gpt-4o", input=1_000, output=100)
    for attrs in (priced, mapped):
        assert attrs[sc.SPANHOUSE_COST_SOURCE] == SRC.COMPUTED.value
        assert Decimal(repr(attrs[sc.SPANHOUSE_COST_USD])) == price.total_price
        assert attrs[sc.SPANHOUSE_COST_INPUT_USD] == pytest.approx(float(price.input_price))
    assert no_usage == {sc.GEN_AI_REQUEST_MODEL: "gpt-4o", sc.SPANHOUSE_COST_SOURCE: SRC.NO_USAGE.value}
    assert proc.counts == {SRC.COMPUTED.value: 2, SRC.NO_USAGE.value: 1}
    warnings = [r.getMessage() for r in caplog.records if "is not a cost" in r.getMessage()]
    assert len(warnings) == 1 and describe(sent) in warnings[0]
    assert sent in ("", True) or repr(sent) not in warnings[0]


def test_a_reported_cost_sent_as_text_is_stored_as_a_number_and_bad_parts_are_removed():
    attrs = {**chat("openai", "gpt-4o", input=1_000, output=100), sc.SPANHOUSE_COST_USD: " 0.25 ",
             sc.SPANHOUSE_COST_INPUT_USD: float("nan"), sc.SPANHOUSE_COST_OUTPUT_USD: 0.2}
    zero = {**chat("openai", "gpt-4o"), sc.SPANHOUSE_COST_USD: 0}  # no tokens to price it from instead
    run([attrs, zero])
    assert attrs[sc.SPANHOUSE_COST_USD] == 0.25 and attrs[sc.SPANHOUSE_COST_SOURCE] == SRC.REPORTED.value
    assert sc.SPANHOUSE_COST_INPUT_USD not in attrs and attrs[sc.SPANHOUSE_COST_OUTPUT_USD] == 0.2
    assert zero[sc.SPANHOUSE_COST_USD] == 0 and zero[sc.SPANHOUSE_COST_SOURCE] == SRC.REPORTED.value


def test_counts_sent_as_text_or_floats_are_stored_as_the_ints_they_were_priced_on():
    """The store reads " 1000 " as 0 tokens: the count written back is the one the cost was computed on."""
    attrs = chat("openai", "gpt-4o", cache_read=200.0)
    attrs.update({sc.GEN_AI_USAGE_INPUT_TOKENS: " 1000 ", sc.GEN_AI_USAGE_OUTPUT_TOKENS: "100"})
    run([attrs])
    counts = (sc.GEN_AI_USAGE_INPUT_TOKENS, sc.GEN_AI_USAGE_OUTPUT_TOKENS, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)
    assert [(attrs[k], type(attrs[k])) for k in counts] == [(1_000, int), (100, int), (200, int)]
    price = reference("openai", "gpt-4o", input=1_000, output=100, cache_read=200).total_price
    assert Decimal(repr(attrs[sc.SPANHOUSE_COST_USD])) == price


@pytest.mark.parametrize("count", ["99999999999999999999999", 9 * 10**15, 10**10 + 1, 1e12])
def test_a_count_beyond_ten_billion_is_invalid_usage_never_a_made_up_cost(count, caplog):
    attrs = chat("openai", "gpt-4o", output=100)
    attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = count
    with caplog.at_level("WARNING"):
        proc = run([attrs, chat("openai", "gpt-4o", input=10**10, output=100)])
    assert attrs[sc.SPANHOUSE_COST_SOURCE] == SRC.INVALID_USAGE.value and sc.SPANHOUSE_COST_USD not in attrs
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == count  # kept as sent, for the record
    assert proc.counts == {SRC.INVALID_USAGE.value: 1, SRC.COMPUTED.value: 1}  # 10^10 itself is priced
    (warning,) = [r.getMessage() for r in caplog.records if "not a token count" in r.getMessage()]
    assert describe(count) in warning and str(count) not in warning and "invalid_usage" in warning


@pytest.mark.parametrize(
    "provider, provider_id, model, tokens",
    [
        # the tester's call: 3-9x the text rates for audio
        ("openai", "openai", "gpt-audio", dict(input=2_000, audio_input=1_800, output=1_500, audio_output=1_400)),
        # audio and image input with their own cache-read rates, inside the cache reads
        ("openai", "openai", "gpt-realtime", dict(input=5_000, cache_read=1_000, audio_input=3_000,
                                                  audio_cache_read=500, image_input=500, image_cache_read=100,
                                                  output=800, audio_output=600)),
        ("openai", "openai", "chatgpt-image-latest", dict(input=1_000, cache_read=300, image_input=800,
                                                          image_cache_read=200, output=2_000, image_output=1_800)),
        ("gcp.gen_ai", "google", "gemini-2.5-flash-image", dict(input=100, output=1_500, image_output=1_290)),
        ("gcp.gemini", "google", "gemini-2.5-flash", dict(input=4_000, cache_read=1_000, audio_input=2_000,
                                                          audio_cache_read=400, output=300)),
        # a text model: audio tokens are input tokens at its input rate
        ("openai", "openai", "gpt-4o-mini", dict(input=2_000, audio_input=1_800, output=100)),
    ],
)
def test_audio_and_image_tokens_are_priced_at_their_own_rates(provider, provider_id, model, tokens):
    attrs = chat(provider, model, **tokens)
    run([attrs])
    ref = reference(provider_id, model, **tokens)
    assert attrs[sc.SPANHOUSE_COST_SOURCE] == SRC.COMPUTED.value
    assert Decimal(repr(attrs[sc.SPANHOUSE_COST_USD])) == ref.total_price
    parts_in = attrs[sc.SPANHOUSE_COST_INPUT_USD] + attrs.get(sc.SPANHOUSE_COST_CACHE_USD, 0.0)
    assert parts_in == pytest.approx(float(ref.input_price), rel=1e-12, abs=1e-15)
    assert attrs[sc.SPANHOUSE_COST_OUTPUT_USD] == pytest.approx(float(ref.output_price), rel=1e-12, abs=1e-15)


def test_the_tester_s_audio_call_costs_what_genai_prices_says():
    attrs = chat("openai", "gpt-audio", input=2_000, audio_input=1_800, output=1_500, audio_output=1_400)
    run([attrs])
    assert attrs[sc.SPANHOUSE_COST_USD] == pytest.approx(0.1487)


def test_audio_or_image_parts_above_their_total_are_invalid_usage(caplog):
    attrs = chat("openai", "gpt-audio", input=2_000, audio_input=3_000, output=100)
    with caplog.at_level("WARNING"):
        proc = run([attrs])
    assert attrs[sc.SPANHOUSE_COST_SOURCE] == SRC.INVALID_USAGE.value and sc.SPANHOUSE_COST_USD not in attrs
    assert proc.counts == {SRC.INVALID_USAGE.value: 1}
    assert any("do not add up" in r.getMessage() and "gpt-audio" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError):  # genai-prices refuses the same usage
        reference("openai", "gpt-audio", input=2_000, audio_input=3_000, output=100)


def test_an_override_prices_audio_and_image_tokens_at_its_text_rates():
    config = GenAiCostConfig(overrides=[PriceOverrideConfig(model="gpt-audio", input=1.0, output=2.0)])
    attrs = chat("openai", "gpt-audio", input=2_000, audio_input=1_800, output=1_500, audio_output=1_400)
    run([attrs], config)
    assert attrs[sc.SPANHOUSE_COST_SOURCE] == SRC.OVERRIDE.value
    assert attrs[sc.SPANHOUSE_COST_USD] == pytest.approx((2_000 * 1.0 + 1_500 * 2.0) / 1e6)


def test_the_readme_override_applies_to_a_call_requesting_its_model():
    """OpenAI answers a request for gpt-4o with a dated model: the README's override must still apply."""
    import re
    from pathlib import Path

    import yaml

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```yaml\n(processors:\n  genai_cost:\n.*?)```", readme, re.S)
    data = service_config("x", processor_configs=yaml.safe_load(block)["processors"], processors=["genai_cost"])
    config = next(c for cid, c in parse_config(data).processors.items() if cid.type == "genai_cost")
    attrs = chat("openai", "gpt-4o", input=1_000, cache_read=400, output=100)
    attrs[sc.GEN_AI_RESPONSE_MODEL] = "gpt-4o-2024-08-06"
    run([attrs], config)
    assert attrs[sc.SPANHOUSE_COST_PRICE_ID] == "override/enterprise-contract"
    assert attrs[sc.SPANHOUSE_COST_USD] == pytest.approx((600 * 2.0 + 400 * 1.0 + 100 * 8.0) / 1e6)


def test_an_override_of_the_response_model_wins_over_one_of_the_requested_model():
    requested = PriceOverrideConfig(name="requested", model="gpt-4o", input=2.0, output=8.0)
    answered = PriceOverrideConfig(name="answered", model="gpt-4o-2024-08-06", input=1.0, output=4.0,
                                   valid_from="2026-03-01")
    config = GenAiCostConfig(overrides=[requested, answered])
    before, after, other = (chat("openai", "gpt-4o", input=1_000, output=100) for _ in range(3))
    for attrs in (before, after):
        attrs[sc.GEN_AI_RESPONSE_MODEL] = "gpt-4o-2024-08-06"
    other[sc.GEN_AI_RESPONSE_MODEL] = "gpt-4o-mini-2024-07-18"  # answered by another model: still requested
    run([before, after, other], config, starts=[ns(2026, 1, 10), ns(2026, 6, 1), ns(2026, 6, 1)])
    # the response model's override is not valid yet in January: the requested model's applies
    assert [a[sc.SPANHOUSE_COST_PRICE_ID] for a in (before, after, other)] == [
        "override/requested", "override/answered", "override/requested"]
    # no override at all: genai-prices prices the response model, never the requested one
    plain = chat("openai", "gpt-4o", input=1_000, output=100)
    plain[sc.GEN_AI_RESPONSE_MODEL] = "gpt-4o-mini-2024-07-18"
    run([plain])
    assert plain[sc.SPANHOUSE_COST_PRICE_ID] == "openai/gpt-4o-mini"


def test_a_count_that_is_text_is_logged_by_type_and_length_never_quoted(caplog):
    """genai_cost runs before genai_redact: a value it logs has not been redacted yet, so the log says
    what the value is, not what it says (here an e-mail and a card number in a token count)."""
    sent = "user maria.garcia@example.com card 4111 1111 1111 1111"
    attrs = chat("openai", "gpt-4o", output=100)
    attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = sent
    with caplog.at_level("WARNING"):
        run([attrs])
    assert attrs[sc.SPANHOUSE_COST_SOURCE] == SRC.INVALID_USAGE.value
    (warning,) = [r.getMessage() for r in caplog.records if "not a token count" in r.getMessage()]
    assert f"= a string of {len(sent)} characters is not a token count" in warning
    assert "maria" not in caplog.text and "4111" not in caplog.text


def test_an_override_applies_to_the_model_genai_prices_identifies_the_response_model_as():
    """Langfuse's OpenAI wrapper sends only the dated response model and no provider: the override for
    `gpt-4o-mini` of provider openai applies to it as it does to a call that requested gpt-4o-mini."""
    config = GenAiCostConfig(overrides=[
        PriceOverrideConfig(name="contract", model="gpt-4o-mini", provider="openai", input=1.0, output=1.0)])
    langfuse = {sc.GEN_AI_OPERATION_NAME: OP.CHAT.value, sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
                sc.GEN_AI_USAGE_INPUT_TOKENS: 42, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 7}
    traceloop = chat("openai", "gpt-4o-mini", input=42, output=7)
    traceloop[sc.GEN_AI_RESPONSE_MODEL] = "gpt-4o-mini-2024-07-18"
    other = chat("anthropic", "gpt-4o-mini", input=42, output=7)  # another provider's span: not this override
    other[sc.GEN_AI_RESPONSE_MODEL] = "gpt-4o-mini-2024-07-18"
    run([langfuse, traceloop, other], config)
    assert langfuse[sc.SPANHOUSE_COST_PRICE_ID] == traceloop[sc.SPANHOUSE_COST_PRICE_ID] == "override/contract"
    assert langfuse[sc.SPANHOUSE_COST_USD] == pytest.approx(49 / 1e6)
    assert other[sc.SPANHOUSE_COST_PRICE_ID] != "override/contract"
    # another snapshot genai-prices lists as a model of its own is not the override's model
    gpt4o = {sc.GEN_AI_OPERATION_NAME: OP.CHAT.value, sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06",
            sc.GEN_AI_USAGE_INPUT_TOKENS: 42, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 7}
    run([gpt4o], config)
    assert gpt4o[sc.SPANHOUSE_COST_SOURCE] == SRC.COMPUTED.value
