"""`spanhouse demo`: send a realistic support-copilot agent workload with the OpenTelemetry SDK.

Each trace: receive ticket → classify intent → retrieve documents → tool call (sometimes failing and
retried) → generate the reply (two models, two prompt versions, evaluation results) → validate (fails
when the reply cites nothing). Spans are recorded by the SDK and sent with its OTLP exporter.
"""

from __future__ import annotations

import json
import random
import shlex
import time
from typing import Any

import click
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from spanhouse import semconv as sc
from spanhouse.cli._otlp import Refusals, check_reachable, default_endpoint, signal_url
from spanhouse.errors import SpanhouseError

OP = sc.GenAiOperationNameValues
WORKFLOW = "support_copilot"

TICKETS = [
    ("refund", "I was charged twice for order #A-10234, can I get a refund for the duplicate?"),
    ("shipping", "My package for order #B-55120 has been stuck in transit for 9 days."),
    ("account", "I can't log in after resetting my password, it says the link expired."),
    ("billing", "Why did my plan go from $29 to $49 this month? I didn't upgrade."),
    ("refund", "The blender arrived broken. I'd like my money back please."),
    ("shipping", "Can you change the delivery address on order #C-77002 before it ships?"),
]
KB = {
    "refund": ["kb-refund-policy", "kb-duplicate-charges", "kb-damaged-items"],
    "shipping": ["kb-shipping-times", "kb-address-change", "kb-lost-packages"],
    "account": ["kb-password-reset", "kb-login-issues", "kb-2fa"],
    "billing": ["kb-plan-pricing", "kb-proration", "kb-invoices"],
}
REPLY_MODELS = [
    ("openai", "gpt-4o", "gpt-4o-2024-08-06"),
    ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
]
CLASSIFY_MODEL = ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18")
PLANS = ["free", "pro", "enterprise"]
TENANTS = ["acme", "globex", "initech"]


def _messages(role_texts: list[tuple[str, str]]) -> str:
    return json.dumps([{"role": r, "parts": [{"type": "text", "content": t}]} for r, t in role_texts])


class _Clock:
    """Synthetic, strictly increasing timestamps, so a trace has realistic step durations without sleeping."""

    def __init__(self, start_ns: int):
        self.now = start_ns

    def step(self, ms: float) -> int:
        self.now += int(ms * 1e6)
        return self.now


def _trace(tracer: Any, rng: random.Random, clock: _Clock, environment: str) -> str:
    intent, ticket = rng.choice(TICKETS)
    plan, tenant = rng.choice(PLANS), rng.choice(TENANTS)
    provider, model, resp_model = rng.choice(REPLY_MODELS)
    prompt_version = rng.choice(["v17", "v18"])
    conversation = f"conv-{rng.randrange(16**8):08x}"
    t0 = clock.now
    root = tracer.start_span(
        f"{OP.INVOKE_WORKFLOW.value} {WORKFLOW}", kind=SpanKind.INTERNAL, start_time=t0, attributes={
            sc.GEN_AI_OPERATION_NAME: OP.INVOKE_WORKFLOW.value, sc.GEN_AI_WORKFLOW_NAME: WORKFLOW,
            sc.SPANHOUSE_FEATURE: WORKFLOW, sc.SPANHOUSE_TENANT_ID: tenant, sc.GEN_AI_CONVERSATION_ID: conversation,
            "support.ticket.id": f"T-{rng.randrange(10**6):06d}", "support.customer.plan": plan,
        })
    ctx = set_span_in_context(root)

    def model_call(name_op: str, mdl: tuple[str, str, str], prompt: str, version: str, msgs_in: str,
                   out_text: str, tin: int, tout: int, cached: int, ms: float, temperature: float) -> Any:
        prov, req, resp = mdl
        start = clock.step(rng.uniform(2, 10))
        span = tracer.start_span(f"{name_op} {req}", context=ctx, kind=SpanKind.CLIENT, start_time=start, attributes={
            sc.GEN_AI_OPERATION_NAME: name_op, sc.GEN_AI_PROVIDER_NAME: prov, sc.GEN_AI_REQUEST_MODEL: req,
            sc.GEN_AI_RESPONSE_MODEL: resp, sc.GEN_AI_RESPONSE_ID: f"resp_{rng.randrange(16**12):012x}",
            sc.GEN_AI_REQUEST_TEMPERATURE: temperature, sc.GEN_AI_REQUEST_MAX_TOKENS: 1024,
            sc.GEN_AI_PROMPT_NAME: prompt, sc.GEN_AI_PROMPT_VERSION: version,
            sc.GEN_AI_USAGE_INPUT_TOKENS: tin, sc.GEN_AI_USAGE_OUTPUT_TOKENS: tout,
            sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: cached, sc.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"],
            sc.GEN_AI_INPUT_MESSAGES: msgs_in, sc.GEN_AI_OUTPUT_MESSAGES: _messages([("assistant", out_text)]),
            sc.GEN_AI_CONVERSATION_ID: conversation, sc.SPANHOUSE_FEATURE: WORKFLOW, sc.SPANHOUSE_TENANT_ID: tenant,
        })
        clock.step(ms)
        return span

    cls = model_call(OP.CHAT.value, CLASSIFY_MODEL, "classify_intent", "v3",
                     _messages([("system", "Classify the support ticket intent."), ("user", ticket)]),
                     intent, rng.randint(180, 260), rng.randint(2, 6), 0, rng.uniform(250, 700), 0.0)
    cls.end(end_time=clock.now)

    docs = KB[intent] + [f"kb-misc-{rng.randrange(100):02d}"]
    weak = rng.random() < 0.2
    scores = [round(rng.uniform(0.2, 0.45) if weak else rng.uniform(0.6, 0.93), 3) for _ in docs]
    ret = tracer.start_span(f"{OP.RETRIEVAL.value} kb_articles", context=ctx, kind=SpanKind.CLIENT,
                            start_time=clock.step(3), attributes={
        sc.GEN_AI_OPERATION_NAME: OP.RETRIEVAL.value, sc.GEN_AI_DATA_SOURCE_ID: "kb_articles",
        sc.GEN_AI_RETRIEVAL_QUERY_TEXT: ticket, sc.GEN_AI_RETRIEVAL_TOP_K: len(docs),
        sc.GEN_AI_RETRIEVAL_DOCUMENTS: json.dumps([{"id": d, "score": s} for d, s in zip(docs, scores)]),
    })
    clock.step(rng.uniform(40, 160))
    ret.end(end_time=clock.now)

    order_id = f"#{rng.choice('ABC')}-{rng.randrange(10**5):05d}"
    for attempt in range(2):
        failed = attempt == 0 and rng.random() < 0.15
        tool = tracer.start_span("execute_tool lookup_order", context=ctx, kind=SpanKind.INTERNAL,
                                 start_time=clock.step(2), attributes={
            sc.GEN_AI_OPERATION_NAME: OP.EXECUTE_TOOL.value, sc.GEN_AI_TOOL_NAME: "lookup_order",
            sc.GEN_AI_TOOL_TYPE: "function", sc.GEN_AI_TOOL_CALL_ID: f"call_{rng.randrange(16**10):010x}",
            sc.GEN_AI_TOOL_CALL_ARGUMENTS: json.dumps({"order_id": order_id}),
        })
        clock.step(rng.uniform(1500, 3000) if failed else rng.uniform(60, 240))
        if failed:
            tool.set_attribute(sc.ERROR_TYPE, "TimeoutError")
            tool.set_status(Status(StatusCode.ERROR, "orders API did not answer within 1.5s"))
        else:
            tool.set_attribute(sc.GEN_AI_TOOL_CALL_RESULT, json.dumps({"order_id": order_id, "status": "shipped"}))
        tool.end(end_time=clock.now)
        if not failed:
            break

    cached = rng.choice([0, 1024, 2048])
    tin = cached + rng.randint(900, 1600)
    reply_text = f"Thanks for reaching out about your {intent} request. Per our policy [{docs[0]}], ..."
    gen = model_call(OP.CHAT.value, (provider, model, resp_model), "ticket_reply_prompt", prompt_version,
                     _messages([("system", "You are a support agent. Cite knowledge-base articles."),
                                ("user", ticket)]),
                     reply_text, tin, rng.randint(150, 420), cached, rng.uniform(1200, 4200), 0.3)
    quality = rng.gauss(0.72 if prompt_version == "v18" else 0.86, 0.12) - (0.3 if weak else 0)
    citation = round(min(1.0, max(0.0, quality)), 2)
    policy = round(1.0 if rng.random() > 0.05 else 0.5, 2)
    for name, score, explanation in (("citation_quality", citation, "share of claims backed by a cited article"),
                                     ("policy_compliance", policy, "reply follows the refund and privacy policy")):
        gen.add_event(sc.EVENT_GEN_AI_EVALUATION_RESULT, {
            sc.GEN_AI_EVALUATION_NAME: name, sc.GEN_AI_EVALUATION_SCORE_VALUE: score,
            sc.GEN_AI_EVALUATION_SCORE_LABEL: "pass" if score >= 0.7 else "fail",
            sc.GEN_AI_EVALUATION_EXPLANATION: explanation,
        }, timestamp=clock.now)
    gen.end(end_time=clock.now)

    val = tracer.start_span("validate_reply", context=ctx, kind=SpanKind.INTERNAL, start_time=clock.step(2),
                            attributes={"guardrail.name": "citation_check"})
    clock.step(rng.uniform(5, 30))
    if citation < 0.6:
        val.set_attribute(sc.ERROR_TYPE, "missing_citation")
        val.set_status(Status(StatusCode.ERROR, "reply cites no knowledge-base article"))
        root.set_attribute("support.outcome", "degraded_quality")
    else:
        root.set_attribute("support.outcome", "answered")
    val.end(end_time=clock.now)
    root.end(end_time=clock.step(5))
    return format(root.get_span_context().trace_id, "032x")


def _exporter(endpoint: str, protocol: str, refusals: Refusals) -> Any:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(endpoint=endpoint.split("://")[-1], insecure=True, timeout=10)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter(endpoint=signal_url(endpoint, "traces"), timeout=10, session=refusals.session)


@click.command("demo")
@click.option("--endpoint", help="OTLP endpoint [default: the otlp receiver of the config].")
@click.option("--protocol", type=click.Choice(["http", "grpc"]), default=None,
              help="[default: http, or grpc when the config's receiver has only gRPC]")
@click.option("--traces", "n_traces", type=click.IntRange(1, 100_000), default=20, show_default=True)
@click.option("--environment", default="staging", show_default=True)
@click.option("--seed", type=int, default=None, help="Seed for a reproducible workload.")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), help="Config to find the receiver in.")
def command(endpoint: str | None, protocol: str | None, n_traces: int, environment: str, seed: int | None,
            config_path: str | None) -> None:
    """Send a realistic multi-step agent workload so there is data to look at."""
    if endpoint is None:
        endpoint, protocol = default_endpoint(config_path, protocol)
    protocol = protocol or "http"
    check_reachable(endpoint)
    rng = random.Random(seed)
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({
        sc.SERVICE_NAME: "support-copilot", sc.SERVICE_VERSION: "2026.11.3",
        sc.DEPLOYMENT_ENVIRONMENT_NAME: environment,
    }))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(__name__, "1.0")
    clock = _Clock(time.time_ns() - n_traces * 15 * 10**9)
    trace_ids = []
    for _ in range(n_traces):
        trace_ids.append(_trace(tracer, rng, clock, environment))
        clock.step(rng.uniform(1000, 12000))
    spans = memory.get_finished_spans()
    refusals = Refusals()
    exporter = _exporter(endpoint, protocol, refusals)
    try:
        for i in range(0, len(spans), 512):
            if exporter.export(spans[i:i + 512]) is not SpanExportResult.SUCCESS:
                why = refusals.why()
                raise SpanhouseError(f"the OTLP exporter could not deliver spans to {endpoint} over {protocol}"
                                     + (why or "; is `spanhouse serve` running there?"))
    finally:
        exporter.shutdown()
        provider.shutdown()
    click.echo(f"sent {len(spans)} spans in {len(trace_ids)} traces to {endpoint} ({protocol})")
    for tid in trace_ids:
        click.echo(f"  {tid}")
    config_arg = f"-c {shlex.quote(config_path)} " if config_path else ""
    click.echo(f"try:  spanhouse trace {config_arg}{trace_ids[-1]}   (stored within about a second)")
