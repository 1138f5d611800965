"""Cost of `genai_normalize` per span: `python benchmarks/bench_normalize.py [--spans 10000] [--repeat 5]`.

Builds realistic batches (about 25 attributes per span, about 1.5 KB of message text) in several
dialects, runs the processor's `process()` on fresh copies, and prints microseconds per span (best
of `--repeat` runs, in CPU time of this process, so other work on a shared machine does not count;
building the copies is not timed). Run by hand.
"""

from __future__ import annotations

import argparse
import json
import random
import time

from spanhouse.processors.genai_normalize import NormalizeConfig, NormalizeProcessor

from spanhouse.batch import Resource, Scope, SpanBatch

T0 = 1_764_000_000_000_000_000
WORDS = (
    "order refund shipping invoice account password delivery warehouse customer ticket policy "
    "return exchange payment card address tracking status delayed damaged"
).split()


def text(rng: random.Random, chars: int) -> str:
    out = []
    while sum(len(w) + 1 for w in out) < chars:
        out.append(rng.choice(WORDS))
    return " ".join(out)


def openinference(rng: random.Random) -> dict:
    """An OpenInference LLM span: flattened messages, token counts, invocation parameters."""
    return {
        "openinference.span.kind": "LLM",
        "llm.provider": "openai",
        "llm.system": "openai",
        "llm.model_name": "gpt-4o-2024-08-06",
        "llm.invocation_parameters": json.dumps({"temperature": 0.2, "max_tokens": 512, "top_p": 1}),
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": text(rng, 300),
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": text(rng, 500),
        "llm.input_messages.2.message.role": "assistant",
        "llm.input_messages.2.message.content": text(rng, 300),
        "llm.input_messages.3.message.role": "user",
        "llm.input_messages.3.message.content": text(rng, 200),
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": text(rng, 200),
        "llm.token_count.prompt": rng.randint(500, 3000),
        "llm.token_count.completion": rng.randint(20, 400),
        "llm.token_count.total": 3400,
        "llm.token_count.prompt_details.cache_read": 256,
        "llm.prompt_template.version": "v12",
        "session.id": "conv-1",
        "user.id": "u-1",
        "input.mime_type": "application/json",
        "output.mime_type": "text/plain",
        "metadata": json.dumps({"tier": "gold"}),
        "tag.tags": ["support"],
        "http.route": "/v1/chat",
        "thread.id": 4,
    }


def canonical(rng: random.Random) -> dict:
    """A span already in the current OTel GenAI names (the common case once SDKs upgrade)."""
    msgs = [
        {"role": "user", "parts": [{"type": "text", "content": text(rng, 700)}]},
        {"role": "assistant", "parts": [{"type": "text", "content": text(rng, 400)}]},
        {"role": "user", "parts": [{"type": "text", "content": text(rng, 300)}]},
    ]
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 512,
        "gen_ai.request.top_p": 1.0,
        "gen_ai.usage.input_tokens": rng.randint(500, 3000),
        "gen_ai.usage.output_tokens": 120,
        "gen_ai.usage.cache_read.input_tokens": 256,
        "gen_ai.usage.cache_write.input_tokens": 0,
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.input.messages": json.dumps(msgs),
        "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}]),
        "gen_ai.output.messages": json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": "ok"}], "finish_reason": "stop"}]
        ),
        "gen_ai.conversation.id": "conv-1",
        "gen_ai.prompt.name": "reply",
        "gen_ai.prompt.version": "v12",
        "server.address": "api.openai.com",
        "server.port": 443,
        "spanhouse.feature": "support",
        "user.id": "u-1",
        "http.route": "/v1/chat",
        "thread.id": 4,
    }


def traceloop(rng: random.Random) -> dict:
    """OpenLLMetry: v1.36 names with indexed prompts and completions."""
    return {
        "llm.request.type": "chat",
        "gen_ai.system": "Anthropic",
        "gen_ai.request.model": "claude-sonnet-4",
        "gen_ai.response.model": "claude-sonnet-4-20250514",
        "gen_ai.request.max_tokens": 1024,
        "gen_ai.request.temperature": 0.5,
        "llm.is_streaming": False,
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": text(rng, 300),
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": text(rng, 700),
        "gen_ai.prompt.2.role": "assistant",
        "gen_ai.prompt.2.content": text(rng, 300),
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": text(rng, 200),
        "gen_ai.completion.0.finish_reason": "end_turn",
        "gen_ai.usage.prompt_tokens": 2300,
        "gen_ai.usage.completion_tokens": 40,
        "gen_ai.usage.cache_read_input_tokens": 2000,
        "llm.usage.total_tokens": 2340,
        "traceloop.workflow.name": "support",
        "traceloop.association.properties.session_id": "s-1",
        "traceloop.entity.path": "support.reply",
        "http.route": "/v1/chat",
        "thread.id": 4,
    }


def plain(rng: random.Random) -> dict:
    """A non-GenAI span (an HTTP handler): must cost next to nothing."""
    return {f"http.attr_{i}": i for i in range(20)} | {"http.route": "/orders", "http.status_code": 200}


DIALECTS = {"openinference": openinference, "canonical": canonical, "traceloop": traceloop, "plain": plain}


def build(kinds: list, n: int, seed: int = 7) -> SpanBatch:
    rng = random.Random(seed)
    b = SpanBatch()
    b.resources.append(Resource({"service.name": "bench", "deployment.environment.name": "prod"}))
    b.scopes.append(Scope("bench"))
    for i in range(n):
        b.append(
            resource=0,
            scope=0,
            trace_id=f"{i:032x}",
            span_id=f"{i + 1:016x}",
            name="span",
            start_time_unix_nano=T0 + i,
            end_time_unix_nano=T0 + i + 10**9,
            attributes=DIALECTS[kinds[i % len(kinds)]](rng),
        )
    return b


def measure(proc: NormalizeProcessor, template: SpanBatch, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        batch = template.copy()
        t = time.process_time()
        proc.process(batch)
        best = min(best, time.process_time() - t)
    return best / len(template) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--spans", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    proc = NormalizeProcessor(NormalizeConfig())
    sample = build(["openinference", "canonical"], 2)
    attrs = sum(len(a) for a in sample.attributes) / 2
    msg_bytes = len(sample.attributes[1]["gen_ai.input.messages"])
    print(
        f"{args.spans} spans per batch, ~{attrs:.0f} attributes per span, ~{msg_bytes} B of message JSON; "
        f"best of {args.repeat}, CPU time"
    )
    mixes = [
        ("openinference", ["openinference"]),
        ("canonical gen_ai", ["canonical"]),
        ("traceloop (v1.36 gen_ai)", ["traceloop"]),
        ("plain (not GenAI)", ["plain"]),
        (
            "mix: 40% OI, 40% canonical, 20% traceloop",
            ["openinference", "canonical", "openinference", "canonical", "traceloop"],
        ),
    ]
    for label, kinds in mixes:
        us = measure(proc, build(kinds, args.spans), args.repeat)
        print(f"  {label:<45} {us:8.1f} µs/span   {1e6 / us:10,.0f} spans/s")
    if proc.failed_spans or proc.conversion_errors:
        print(f"  failures: {proc.failed_spans} spans, {proc.conversion_errors} conversions")


if __name__ == "__main__":
    main()
