"""Realistic LLM trace payloads for the benchmarks, built directly as OTLP protobuf messages.

Every trace is one agent turn: a workflow root, a retrieval, two model calls (a small classifier and
the reply) and a tool call. The model calls carry ~1.5 KB of message JSON that contains an e-mail
address and a phone number (what `genai_redact` must find), token counts, prompt name/version and the
usual request parameters. `convention` picks how the model calls are spelled: the canonical
OpenTelemetry GenAI names (`genai`), OpenInference's flattened `llm.*` names (`openinference`), or
alternating traces of both (`mixed`).

Everything but the timestamps is derived from `seed`; timestamps start at the previous full hour, so
stores with a retention TTL keep the rows.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from spanhouse import semconv as sc

OP = sc.GenAiOperationNameValues

# OpenInference's attribute names (Arize-ai/openinference semantic conventions); benchmark data only.
OI_SPAN_KIND = "openinference.span.kind"
OI_MODEL = "llm.model_name"
OI_PROVIDER = "llm.provider"
OI_SYSTEM = "llm.system"
OI_PARAMS = "llm.invocation_parameters"
OI_PROMPT_TOKENS = "llm.token_count.prompt"
OI_COMPLETION_TOKENS = "llm.token_count.completion"
OI_TOTAL_TOKENS = "llm.token_count.total"
OI_CACHE_READ = "llm.token_count.prompt_details.cache_read"
OI_INPUT_VALUE = "input.value"
OI_INPUT_MIME = "input.mime_type"
OI_OUTPUT_VALUE = "output.value"
OI_OUTPUT_MIME = "output.mime_type"
OI_TEMPLATE_VERSION = "llm.prompt_template.version"
OI_TEMPLATE = "llm.prompt_template.template"
OI_METADATA = "metadata"
OI_TAGS = "tag.tags"
OI_SESSION = "session.id"
OI_USER = "user.id"

CONVENTIONS = ("genai", "openinference", "mixed")

_CUSTOMERS = [("Ana Lopez", "ana.lopez@example.com", "+1 415 555 0142"),
              ("Jonas Weber", "j.weber@example.org", "+49 30 1234 5678"),
              ("Priya Natarajan", "priya.n@example.net", "(212) 555-0187"),
              ("Tom O'Brien", "tobrien@example.co.uk", "+44 20 7946 0958")]
_ISSUES = ["I was charged twice for order {order}, can I get a refund for the duplicate charge?",
           "My package for order {order} has been stuck in transit for 9 days, where is it?",
           "The blender from order {order} arrived broken. I'd like my money back please.",
           "Can you change the delivery address on order {order} before it ships? I moved last week."]
_POLICY = ("Refunds are issued to the original payment method within 5 business days. Duplicate charges "
           "are reversed automatically once the bank confirms the second authorization. Damaged items can be "
           "returned within 30 days with a photo of the damage; a prepaid label is e-mailed to the customer. "
           "Address changes are possible until the parcel leaves the warehouse.")
_MODELS = [("openai", "gpt-4o", "gpt-4o-2024-08-06"),
           ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929")]
_SMALL = ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18")
SPANS_PER_TRACE = 5


def _v(value) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, (list, tuple)):
        out = AnyValue()
        out.array_value.values.extend(_v(x) for x in value)
        return out
    return AnyValue(string_value=str(value))


def _attrs(target, attrs: dict) -> None:
    target.extend(KeyValue(key=k, value=_v(v)) for k, v in attrs.items())


def _messages(parts: list[tuple[str, str]]) -> str:
    return json.dumps([{"role": r, "parts": [{"type": "text", "content": t}]} for r, t in parts])


@dataclass
class _Ctx:
    rng: random.Random
    trace_id: bytes
    t: int

    def span_id(self) -> bytes:
        return self.rng.randbytes(8)

    def step(self, ms: float) -> int:
        self.t += int(ms * 1e6)
        return self.t


def _span(ctx: _Ctx, parent: bytes, name: str, kind: int, start: int, end: int, attrs: dict,
          error: str = "") -> Span:
    sp = Span(trace_id=ctx.trace_id, span_id=ctx.span_id(), parent_span_id=parent, name=name, kind=kind,
              start_time_unix_nano=start, end_time_unix_nano=end)
    _attrs(sp.attributes, attrs)
    if error:
        sp.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=error))
    return sp


def _model_call(ctx: _Ctx, parent: bytes, convention: str, model: tuple[str, str, str], prompt: str,
                version: str, system: str, user_text: str, answer: str, tin: int, tout: int, cached: int,
                common: dict, history: list[tuple[str, str]]) -> Span:
    provider, req, resp = model
    start = ctx.step(ctx.rng.uniform(2, 10))
    end = ctx.step(ctx.rng.uniform(300, 3000))
    temperature = round(ctx.rng.uniform(0, 1), 2)
    if convention == "genai":
        attrs = {
            sc.GEN_AI_OPERATION_NAME: OP.CHAT.value, sc.GEN_AI_PROVIDER_NAME: provider,
            sc.GEN_AI_REQUEST_MODEL: req, sc.GEN_AI_RESPONSE_MODEL: resp,
            sc.GEN_AI_RESPONSE_ID: f"resp_{ctx.rng.randrange(16**16):016x}",
            sc.GEN_AI_REQUEST_TEMPERATURE: temperature, sc.GEN_AI_REQUEST_MAX_TOKENS: 1024,
            sc.GEN_AI_REQUEST_TOP_P: 0.95, sc.GEN_AI_PROMPT_NAME: prompt, sc.GEN_AI_PROMPT_VERSION: version,
            sc.GEN_AI_USAGE_INPUT_TOKENS: tin, sc.GEN_AI_USAGE_OUTPUT_TOKENS: tout,
            sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: cached, sc.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"],
            sc.GEN_AI_SYSTEM_INSTRUCTIONS: json.dumps([{"type": "text", "content": system}]),
            sc.GEN_AI_INPUT_MESSAGES: _messages(history + [("user", user_text)]),
            sc.GEN_AI_OUTPUT_MESSAGES: _messages([("assistant", answer)]),
            sc.SERVER_ADDRESS: f"api.{provider}.com", sc.SERVER_PORT: 443,
            **common,
        }
    else:
        attrs = {
            OI_SPAN_KIND: "LLM", OI_MODEL: resp, OI_PROVIDER: provider, OI_SYSTEM: provider,
            OI_PARAMS: json.dumps({"model": req, "temperature": temperature, "max_tokens": 1024, "top_p": 0.95}),
            OI_PROMPT_TOKENS: tin, OI_COMPLETION_TOKENS: tout, OI_TOTAL_TOKENS: tin + tout, OI_CACHE_READ: cached,
            "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": system,
            "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.content": history[0][1],
            "llm.input_messages.2.message.role": "assistant", "llm.input_messages.2.message.content": history[1][1],
            "llm.input_messages.3.message.role": "user", "llm.input_messages.3.message.content": user_text,
            "llm.output_messages.0.message.role": "assistant", "llm.output_messages.0.message.content": answer,
            OI_INPUT_VALUE: json.dumps({"messages": [{"role": "user", "content": user_text[:200]}]}),
            OI_INPUT_MIME: "application/json", OI_OUTPUT_VALUE: answer[:200], OI_OUTPUT_MIME: "text/plain",
            OI_TEMPLATE_VERSION: version, OI_METADATA: json.dumps({"prompt": prompt}), OI_TAGS: ["support"],
            **common,
        }
    return _span(ctx, parent, f"{OP.CHAT.value} {req}", Span.SPAN_KIND_CLIENT, start, end, attrs)


def _trace(rng: random.Random, start_ns: int, convention: str) -> list[Span]:
    ctx = _Ctx(rng, rng.randbytes(16), start_ns)
    name, email, phone = rng.choice(_CUSTOMERS)
    order = f"#{rng.choice('ABC')}-{rng.randrange(10**5):05d}"
    issue = rng.choice(_ISSUES).format(order=order)
    tenant = rng.choice(["acme", "globex", "initech"])
    conversation = f"conv-{rng.randrange(16**12):012x}"
    user = f"user-{rng.randrange(10**6):06d}"
    common = {sc.GEN_AI_CONVERSATION_ID: conversation, sc.SPANHOUSE_FEATURE: "support_copilot",
              sc.SPANHOUSE_TENANT_ID: tenant, sc.SESSION_ID: conversation, sc.USER_ID: user,
              sc.GEN_AI_AGENT_NAME: "support_copilot", sc.GEN_AI_AGENT_ID: f"agent-{tenant}-01",
              "app.request.id": f"req-{rng.randrange(16**16):016x}",
              "app.region": rng.choice(["eu-west-1", "us-east-1"]),
              "app.ticket.channel": rng.choice(["email", "chat", "web"])}
    ticket = (f"Hello, this is {name}. {issue} You can reach me at {email} or call me on {phone} any time "
              f"after 9am. My account was opened in {rng.randrange(2012, 2025)} and I have been a loyal "
              f"customer since then, so I would really appreciate a quick answer. Thanks, {name.split()[0]}.")
    history = [("user", f"Hi, I am {name} and I have a question about an earlier order of mine, placed with the "
                        f"address on file. My e-mail is {email}. I tried the help center first but could not find "
                        "anything about my case, and the chat bot kept sending me back to the same page."),
               ("assistant", "Of course! Could you describe the problem and give me the order number? "
                             "I can look it up in the order system and check the delivery status for you.")]
    root_id = ctx.span_id()
    t0 = ctx.t
    spans: list[Span] = []
    cls = _model_call(ctx, root_id, convention, _SMALL, "classify_intent", "v3",
                      "Classify the support ticket into refund, shipping, account or billing. Answer with one "
                      "word.", ticket, "refund", rng.randint(180, 260), rng.randint(2, 6), 0, common, history)
    spans.append(cls)
    docs = [{"id": f"kb-{rng.randrange(1000):04d}", "score": round(rng.uniform(0.4, 0.95), 3),
             "content": (_POLICY + " " + _POLICY)[rng.randrange(0, 80):][:rng.randrange(380, 520)]}
            for _ in range(3)]
    r_start = ctx.step(3)
    spans.append(_span(ctx, root_id, f"{OP.RETRIEVAL.value} kb_articles", Span.SPAN_KIND_CLIENT, r_start,
                       ctx.step(rng.uniform(40, 160)), {
                           sc.GEN_AI_OPERATION_NAME: OP.RETRIEVAL.value, sc.GEN_AI_DATA_SOURCE_ID: "kb_articles",
                           sc.GEN_AI_RETRIEVAL_QUERY_TEXT: issue, sc.GEN_AI_RETRIEVAL_TOP_K: len(docs),
                           sc.GEN_AI_RETRIEVAL_DOCUMENTS: json.dumps(docs), "db.system.name": "qdrant",
                           "db.collection.name": "kb_articles", "server.address": "qdrant.internal", **common}))
    failed = rng.random() < 0.1
    t_start = ctx.step(2)
    tool_attrs = {sc.GEN_AI_OPERATION_NAME: OP.EXECUTE_TOOL.value, sc.GEN_AI_TOOL_NAME: "lookup_order",
                  sc.GEN_AI_TOOL_TYPE: "function", sc.GEN_AI_TOOL_CALL_ID: f"call_{rng.randrange(16**12):012x}",
                  sc.GEN_AI_TOOL_CALL_ARGUMENTS: json.dumps({"order_id": order, "customer_email": email}), **common}
    if failed:
        tool_attrs[sc.ERROR_TYPE] = "TimeoutError"
    else:
        tool_attrs[sc.GEN_AI_TOOL_CALL_RESULT] = json.dumps({
            "order_id": order, "status": "shipped", "carrier": "UPS", "eta_days": rng.randrange(1, 6),
            "customer": {"name": name, "email": email, "phone": phone},
            "items": [{"sku": f"SKU-{rng.randrange(10**6):06d}", "title": "Countertop blender, 1.5 l, stainless steel",
                       "qty": 1, "price": round(rng.uniform(20, 200), 2)} for _ in range(rng.randrange(1, 4))],
            "history": [{"at": f"2026-11-{d:02d}T09:00:00Z", "event": "in transit"} for d in range(1, 4)]})
    spans.append(_span(ctx, root_id, "execute_tool lookup_order", Span.SPAN_KIND_INTERNAL, t_start,
                       ctx.step(rng.uniform(60, 1500)), tool_attrs, "orders API timed out" if failed else ""))
    cached = rng.choice([0, 1024, 2048])
    answer = (f"Hi {name.split()[0]}, thanks for reaching out. {_POLICY[:rng.randrange(200, 380)]} I have noted "
              f"your contact details ({email}, {phone}) on the ticket so the team can follow up. [kb-0001]")
    reply = _model_call(ctx, root_id, convention, rng.choice(_MODELS), "ticket_reply_prompt",
                             rng.choice(["v17", "v18"]),
                             "You are a support agent for an online shop. Be concise, cite knowledge-base "
                             "articles by id, never promise refunds that the policy does not allow. " + _POLICY,
                             ticket, answer, cached + rng.randint(900, 1600), rng.randint(150, 420), cached,
                             common, history)
    for eval_name, explanation in (("citation_quality", "share of claims in the reply backed by a cited article"),
                                   ("policy_compliance", "the reply follows the refund and privacy policy")):
        score = round(rng.uniform(0.4, 1.0), 2)
        ev = reply.events.add(time_unix_nano=reply.end_time_unix_nano, name=sc.EVENT_GEN_AI_EVALUATION_RESULT)
        _attrs(ev.attributes, {sc.GEN_AI_EVALUATION_NAME: eval_name, sc.GEN_AI_EVALUATION_SCORE_VALUE: score,
                               sc.GEN_AI_EVALUATION_SCORE_LABEL: "pass" if score >= 0.7 else "fail",
                               sc.GEN_AI_EVALUATION_EXPLANATION: explanation})
    spans.append(reply)
    root = _span(ctx, b"", "invoke_workflow support_copilot", Span.SPAN_KIND_SERVER, t0, ctx.step(5), {
        sc.GEN_AI_OPERATION_NAME: OP.INVOKE_WORKFLOW.value, sc.GEN_AI_WORKFLOW_NAME: "support_copilot",
        "support.ticket.id": f"T-{rng.randrange(10**6):06d}", "support.customer.plan": rng.choice(["free", "pro"]),
        "http.route": "/api/tickets/{id}/reply", "http.request.method": "POST",
        "http.response.status_code": 200, "support.ticket.body": ticket, "support.reply.body": answer,
        **common})
    root.span_id = root_id
    return [root, *spans]


def build_request(seed: int, traces: int, convention: str = "genai", start_ns: int | None = None,
                  ) -> ExportTraceServiceRequest:
    """One export request with `traces` traces (5 spans each) from one service, deterministic in `seed`."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}")
    rng = random.Random(seed)
    if start_ns is None:
        # recent, so stores with a TTL keep the rows: the start of the previous hour, plus the seed in ms
        hour = 3600 * 10**9
        start_ns = time.time_ns() // hour * hour - hour + (seed % 3_600_000) * 10**6
    start = start_ns
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    _attrs(rs.resource.attributes, {
        sc.SERVICE_NAME: "support-copilot", sc.SERVICE_VERSION: "2026.11.3",
        sc.DEPLOYMENT_ENVIRONMENT_NAME: "production", "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry", "telemetry.sdk.version": "1.45.0",
        "host.name": f"copilot-{seed % 4}", "process.pid": 4242 + seed % 4})
    ss = rs.scope_spans.add()
    ss.scope.name = "support_copilot.agent"
    ss.scope.version = "1.0.0"
    for i in range(traces):
        conv = convention if convention != "mixed" else CONVENTIONS[i % 2]
        ss.spans.extend(_trace(rng, start + i * 50_000_000, conv))
    return req


def stats(req: ExportTraceServiceRequest) -> dict:
    """Spans, bytes per span and attributes per span of a request (for the results file)."""
    spans = [sp for rs in req.resource_spans for ss in rs.scope_spans for sp in ss.spans]
    size = req.ByteSize()
    return {"spans": len(spans), "bytes": size, "bytes_per_span": round(size / max(1, len(spans))),
            "attributes_per_span": round(sum(len(sp.attributes) for sp in spans) / max(1, len(spans)), 1)}
