"""Microseconds per span of the genai_cost processor, beside genai-prices' own `calc_price` per span.

    python benchmarks/bench_cost.py [--spans 20000] [--rounds 5]

The workload is a realistic mix: chat calls across OpenAI, Anthropic, Google and Azure models with
cache and reasoning tokens, embeddings, agent and tool spans (not priced), an unknown model and a
config override. Each round builds fresh attribute dicts (the processor writes into them) and times
only `process`. The baseline prices the same model calls with `genai_prices.calc_price` directly (its
own model-lookup cache helps it; it still builds a `Usage` and validates the price row per call), as a
processor calling the library per span would. Both run in the same process, on the same data.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime

from genai_prices import Usage, calc_price
from spanhouse.processors.genai_cost import GenAiCost, GenAiCostConfig, PriceOverrideConfig

from spanhouse import semconv as sc
from spanhouse.batch import Resource, Scope, SpanBatch
from spanhouse.pricing import PROVIDER_IDS

OP = sc.GenAiOperationNameValues
MODELS = [
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4o"),
    ("openai", "o3-mini"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5"),
    ("gcp.vertex_ai", "gemini-2.5-pro"),
    ("azure.ai.openai", "gpt-4o"),
    ("openai", "text-embedding-3-small"),
    ("acme-ai", "acme-large-7"),
    ("ollama", "llama-local"),
]


def span_attrs(rng: random.Random) -> dict:
    roll = rng.random()
    if roll < 0.25:  # agent, workflow and tool spans
        op = rng.choice([OP.INVOKE_AGENT.value, OP.EXECUTE_TOOL.value, OP.RETRIEVAL.value])
        attrs = {sc.GEN_AI_OPERATION_NAME: op}
        if op == OP.INVOKE_AGENT.value:
            attrs.update(
                {
                    sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
                    sc.GEN_AI_USAGE_INPUT_TOKENS: 9_000,
                    sc.GEN_AI_USAGE_OUTPUT_TOKENS: 700,
                }
            )
        return attrs
    provider, model = rng.choice(MODELS)
    embed = "embedding" in model
    tin = rng.randint(200, 20_000)
    attrs = {
        sc.GEN_AI_OPERATION_NAME: OP.EMBEDDINGS.value if embed else OP.CHAT.value,
        sc.GEN_AI_PROVIDER_NAME: provider,
        sc.GEN_AI_REQUEST_MODEL: model,
        sc.GEN_AI_USAGE_INPUT_TOKENS: tin,
    }
    if not embed:
        tout = rng.randint(10, 2_000)
        attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = tout
        attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = rng.choice([0, 0, tin // 2])
        if provider == "anthropic":
            attrs[sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] = rng.choice([0, tin // 4])
        if model == "o3-mini":
            attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = tout // 2
    return attrs


def make_batch(templates: list[dict], start_ns: int) -> SpanBatch:
    batch = SpanBatch()
    batch.resources.append(Resource({}))
    batch.scopes.append(Scope())
    for i, attrs in enumerate(templates):
        batch.append(
            resource=0,
            scope=0,
            trace_id=f"{i // 8:032x}",
            span_id=f"{i + 1:016x}",
            name="span",
            start_time_unix_nano=start_ns,
            end_time_unix_nano=start_ns,
            attributes=dict(attrs),
        )
    return batch


def baseline(templates: list[dict], when: datetime) -> float:
    """Seconds to price the model calls with genai_prices.calc_price, one call per span."""
    t0 = time.perf_counter()
    for a in templates:
        model = a.get(sc.GEN_AI_REQUEST_MODEL)
        op = a.get(sc.GEN_AI_OPERATION_NAME)
        if not model or op not in (OP.CHAT.value, OP.EMBEDDINGS.value):
            continue
        usage = Usage(
            input_tokens=a[sc.GEN_AI_USAGE_INPUT_TOKENS],
            output_tokens=a.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS, 0),
            cache_read_tokens=a.get(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, 0),
            cache_write_tokens=a.get(sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, 0),
            output_reasoning_tokens=a.get(sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, 0),
        )
        provider = a[sc.GEN_AI_PROVIDER_NAME]
        try:
            calc_price(
                usage, model, provider_id=PROVIDER_IDS.get(provider, provider), genai_request_timestamp=when
            )
        except LookupError:
            pass
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    templates = [span_attrs(rng) for _ in range(args.spans)]
    start_ns = time.time_ns()
    proc = GenAiCost(
        GenAiCostConfig(overrides=[PriceOverrideConfig(model="llama-local", input=0.1, output=0.2)])
    )
    proc.process(make_batch(templates[:100], start_ns))  # warm the lookup cache, as a running service has

    timings = []
    for _ in range(args.rounds):
        batch = make_batch(templates, start_ns)
        t0 = time.perf_counter()
        proc.process(batch)
        timings.append(time.perf_counter() - t0)
    base = [
        baseline(templates, datetime.fromtimestamp(start_ns / 1e9, UTC))
        for _ in range(max(1, args.rounds // 2))
    ]

    per_span = statistics.median(timings) / args.spans * 1e6
    per_span_base = statistics.median(base) / args.spans * 1e6
    calls = sum(
        1 for a in templates if a.get(sc.GEN_AI_OPERATION_NAME) in (OP.CHAT.value, OP.EMBEDDINGS.value)
    )
    print(f"spans per batch            {args.spans} ({calls} model calls, rest agent/tool/retrieval spans)")
    print(
        f"genai_cost.process         {per_span:6.2f} µs/span (median of {args.rounds} rounds; "
        f"{per_span * args.spans / calls:.2f} µs per model call)"
    )
    print(f"calc_price per span        {per_span_base:6.2f} µs/span (baseline: calc_price per model call)")
    print(f"outcomes                   {dict(sorted(proc.counts.items()))}")


if __name__ == "__main__":
    main()
