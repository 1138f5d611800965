"""Spans with sensitive values through a running spanhouse with `genai_redact`, one policy each,
read back from ClickHouse: no sensitive value in any stored column, JSON content still parses, and
the redaction record is on every span."""

from __future__ import annotations

import json

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, set_span_in_context
from support import sdk_spans, service_config, start_service

from spanhouse import semconv as sc

KEY = "e2e-redaction-key-0123456789"
PEM_BODY = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0"
SECRETS = {
    "email": "maria.garcia@example.com",
    "phone": "+44 20 7946 0958",
    "card": "4111 1111 1111 1111",
    "iban": "DE89 3704 0044 0532 0130 00",
    "ssn": "123-45-6789",
    "ipv4": "203.0.113.77",
    "openai_key": "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3iJk",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "private_key": PEM_BODY,
    "url_password": "Tr0ub4dor-and-3",
}
USER_TEXT = (
    f"Hi, I'm Maria ({SECRETS['email']}, {SECRETS['phone']}). I was charged twice on {SECRETS['card']}; "
    f"please refund to {SECRETS['iban']}. SSN {SECRETS['ssn']}. My key {SECRETS['openai_key']} and token "
    f"{SECRETS['jwt']} stopped working.\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n"
    f"-----END RSA PRIVATE KEY-----\nDB: postgres://app:{SECRETS['url_password']}@db.internal:5432/crm"
)
INPUT = [
    {"role": "system", "parts": [{"type": "text", "content": "You are a support agent."}]},
    {"role": "user", "parts": [{"type": "text", "content": USER_TEXT}]},
]
OUTPUT = [{"role": "assistant", "parts": [{"type": "text", "content": f"I wrote to {SECRETS['email']}."}]}]
DOCS = [{"id": "kb-7", "score": 0.82, "content": f"Customer {SECRETS['email']} asked about refunds"}]
CONTENT = [sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_TOOL_CALL_ARGUMENTS]
RULES = [
    {"when": {sc.SPANHOUSE_FEATURE: "kyc-*"}, "policy": "metadata_only"},
    {"when": {sc.DEPLOYMENT_ENVIRONMENT_NAME: "production"}, "policy": "redacted"},
    {"when": {sc.DEPLOYMENT_ENVIRONMENT_NAME: ["staging", "development"]}, "policy": "full"},
]


def trace_with_secrets(tracer):
    root = tracer.start_span(
        "POST /tickets",
        kind=SpanKind.SERVER,
        attributes={"client.address": SECRETS["ipv4"], sc.USER_ID: SECRETS["email"]},
    )
    ctx = set_span_in_context(root)
    chat = tracer.start_span(
        "chat gpt-4o",
        context=ctx,
        kind=SpanKind.CLIENT,
        attributes={
            sc.GEN_AI_OPERATION_NAME: "chat",
            sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
            sc.GEN_AI_PROVIDER_NAME: "openai",
            sc.GEN_AI_PROMPT_NAME: "ticket_reply_prompt",
            sc.GEN_AI_PROMPT_VERSION: "v17",
            sc.GEN_AI_USAGE_INPUT_TOKENS: 812,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 64,
            sc.GEN_AI_INPUT_MESSAGES: json.dumps(INPUT),
            sc.GEN_AI_OUTPUT_MESSAGES: json.dumps(OUTPUT, ensure_ascii=False),
            sc.USER_ID: SECRETS["email"],
        },
    )
    chat.add_event(
        "exception",
        {sc.EXCEPTION_TYPE: "ValueError", sc.EXCEPTION_MESSAGE: f"card {SECRETS['card']} declined"},
    )
    # senders put values in names and keys too: an event named after a user, a key holding an address
    chat.add_event(f"retry for {SECRETS['ssn']}", {f"peer {SECRETS['ipv4']}": 1})
    chat.set_attribute(f"app.reply_to {SECRETS['email']}", True)
    chat.end()
    tool = tracer.start_span(
        "execute_tool refund",
        context=ctx,
        kind=SpanKind.INTERNAL,
        links=[Link(chat.get_span_context(), {"note": f"for {SECRETS['email']}"})],
        attributes={
            sc.GEN_AI_OPERATION_NAME: "execute_tool",
            sc.GEN_AI_TOOL_NAME: "refund",
            sc.GEN_AI_TOOL_CALL_ARGUMENTS: json.dumps({"iban": SECRETS["iban"]}),
            sc.GEN_AI_RETRIEVAL_DOCUMENTS: json.dumps(DOCS),
        },
    )
    tool.set_status(Status(StatusCode.ERROR, f"refund to {SECRETS['iban']} rejected"))
    tool.end()
    root.end()


@pytest.fixture(scope="module")
def service():
    from support import unique_database

    db = unique_database("redact")
    cfg = service_config(
        db,
        processor_configs={"genai_redact": {"hash_key": KEY, "rules": RULES}, "batch": {"timeout": "20ms"}},
    )
    svc = start_service(cfg, db)
    yield svc
    svc.stop()


def _send(service, transport: str, resource: dict, build=trace_with_secrets) -> str:
    spans = sdk_spans(build, resource)
    exporter = (
        GrpcExporter(endpoint=service.grpc_endpoint, insecure=True, timeout=10)
        if transport == "grpc"
        else HttpExporter(endpoint=service.http_url + "/v1/traces", timeout=10)
    )
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    return format(spans[0].context.trace_id, "032x")


def _rows(service, trace_id: str) -> dict[str, tuple]:
    rows = service.wait_rows(
        "SELECT SpanName, SpanAttributes, ResourceAttributes, Events.Attributes, Links.Attributes, "
        "StatusMessage FROM otel_traces WHERE TraceId = {t:String}",
        3,
        parameters={"t": trace_id},
    )
    assert len(rows) == 3
    return {r[0]: r for r in rows}


def _stored_text(service, trace_id: str) -> str:
    """Every stored column of the trace in otel_traces and genai_spans, as one string."""
    rows = service.rows("SELECT * FROM otel_traces WHERE TraceId = {t:String}", {"t": trace_id})
    rows += service.rows("SELECT * FROM genai_spans WHERE TraceId = {t:String}", {"t": trace_id})
    return repr(rows)


def _leaks(text: str) -> list[str]:
    leaked = [name for name, value in SECRETS.items() if value in text]
    digits = "".join(c for c in SECRETS["card"] if c.isdigit())
    return leaked + (["card digits"] if digits in text else [])


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_production_is_redacted_everywhere(service, transport):
    trace_id = _send(
        service,
        transport,
        {
            sc.SERVICE_NAME: "support",
            sc.DEPLOYMENT_ENVIRONMENT_NAME: "production",
            "host.owner": SECRETS["email"],
        },
    )
    rows = _rows(service, trace_id)
    assert _leaks(_stored_text(service, trace_id)) == []

    _, attrs, resource, _, _, _ = rows["chat gpt-4o"]
    assert attrs[sc.SPANHOUSE_REDACTION_POLICY] == "redacted"
    messages = json.loads(attrs[sc.GEN_AI_INPUT_MESSAGES])
    user = messages[1]["parts"][0]["content"]
    assert messages[0]["parts"][0]["content"] == "You are a support agent."
    for token in (
        "<EMAIL:",
        "<PHONE:",
        "<CARD:",
        "<IBAN:",
        "<SSN:",
        "<OPENAI_KEY:",
        "<JWT:",
        "<PRIVATE_KEY:",
        "<URL_PASSWORD:",
    ):
        assert token in user, token
    assert json.loads(attrs[sc.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"].startswith(
        "I wrote to <EMAIL:"
    )
    assert attrs[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o" and attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == "812"
    assert (
        attrs[sc.GEN_AI_PROMPT_VERSION] == "v17"
        and len(attrs[sc.USER_HASH]) == 64
        and sc.USER_ID not in attrs
    )
    assert int(attrs[f"{sc.SPANHOUSE_REDACTION_DETECTIONS}.email"]) >= 2
    masked = json.loads(attrs[sc.SPANHOUSE_REDACTION_MASKED_KEYS])
    assert {
        sc.GEN_AI_INPUT_MESSAGES,
        sc.GEN_AI_OUTPUT_MESSAGES,
        f"event:{sc.EXCEPTION_MESSAGE}",
        "resource:host.owner",
    } <= set(masked)
    assert resource["host.owner"].startswith("<EMAIL:")
    assert any(k.startswith("app.reply_to <EMAIL:") for k in attrs) and "event:name" in masked

    _, tool_attrs, _, _, links, status = rows["execute_tool refund"]
    assert json.loads(tool_attrs[sc.GEN_AI_TOOL_CALL_ARGUMENTS])["iban"].startswith("<IBAN:")
    assert json.loads(tool_attrs[sc.GEN_AI_RETRIEVAL_DOCUMENTS])[0]["id"] == "kb-7"
    assert status.startswith("refund to <IBAN:") and links[0]["note"].startswith("for <EMAIL:")
    root_attrs = rows["POST /tickets"][1]
    assert root_attrs["client.address"].startswith("<IPV4:")
    assert root_attrs[sc.SPANHOUSE_REDACTION_POLICY] == "redacted"


def test_equal_values_get_equal_tokens_across_spans_and_requests(service):
    resource = {sc.SERVICE_NAME: "support", sc.DEPLOYMENT_ENVIRONMENT_NAME: "production"}
    first, second = _send(service, "http", resource), _send(service, "grpc", resource)
    hashes = {
        r[0]
        for t in (first, second)
        for r in service.rows(
            "SELECT SpanAttributes[{k:String}] FROM otel_traces "
            "WHERE TraceId = {t:String} AND SpanName = 'chat gpt-4o'",
            {"k": sc.USER_HASH, "t": t},
        )
    }
    assert len(hashes) == 1


def test_staging_keeps_content_under_the_full_policy(service):
    trace_id = _send(service, "http", {sc.SERVICE_NAME: "support", sc.DEPLOYMENT_ENVIRONMENT_NAME: "staging"})
    rows = _rows(service, trace_id)
    _, attrs, *_ = rows["chat gpt-4o"]
    assert attrs[sc.SPANHOUSE_REDACTION_POLICY] == "full"
    assert json.loads(attrs[sc.GEN_AI_INPUT_MESSAGES]) == INPUT
    assert attrs[sc.USER_ID] == SECRETS["email"]


def test_regulated_feature_stores_metadata_only(service):
    trace_id = _send(
        service,
        "grpc",
        {
            sc.SERVICE_NAME: "kyc",
            sc.DEPLOYMENT_ENVIRONMENT_NAME: "production",
            sc.SPANHOUSE_FEATURE: "kyc-onboarding",
        },
    )
    rows = _rows(service, trace_id)
    assert _leaks(_stored_text(service, trace_id)) == []
    _, attrs, *_ = rows["chat gpt-4o"]
    assert attrs[sc.SPANHOUSE_REDACTION_POLICY] == "metadata_only"
    assert not set(CONTENT) & set(attrs)
    assert {sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES} <= set(
        json.loads(attrs[sc.SPANHOUSE_REDACTION_DROPPED_KEYS])
    )
    assert attrs[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o" and attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == "64"
    _, tool_attrs, *_ = rows["execute_tool refund"]
    assert json.loads(tool_attrs[sc.GEN_AI_RETRIEVAL_DOCUMENTS]) == [{"id": "kb-7", "score": 0.82}]
    genai = service.rows(
        "SELECT InputMessages, RequestModel, InputTokens FROM genai_spans "
        "WHERE TraceId = {t:String} AND Operation = 'chat'",
        {"t": trace_id},
    )
    assert genai == [("", "gpt-4o", 812)]


# the red team's misses, each sent as an application sends it and looked for in every stored column
LABELLED = {"db.password": "Tr0ub4dor-Example", "x-api-key": "k3y-0f-the-Api-9182", "client_secret": "c9Fq2LmX0pWz"}
END_USER = {sc.ENDUSER_ID: "alice.w-4471", sc.USER_NAME: "awonder", sc.USER_FULL_NAME: "Alice Wonderland",
            sc.USER_EMAIL: "alice.wonder@example.org"}
AWS_ID, AWS_SECRET = "AKIAQ3EGRSTUVWXYZ234", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYz9EXAMPLE1"
SHAPES = {"card": "4111.1111.1111.1111", "aws_secret": AWS_SECRET}
PHONE = "5551234567"
PRODUCTION = {sc.SERVICE_NAME: "support", sc.DEPLOYMENT_ENVIRONMENT_NAME: "production"}


def _one_span(attributes: dict, event: dict | None = None):
    def build(tracer):
        span = tracer.start_span("execute_tool lookup", kind=SpanKind.INTERNAL, attributes=attributes)
        if event:
            span.add_event("tool.call", event)
        span.end()

    return build


def test_keys_that_name_a_secret_or_a_phone_label_their_values_end_to_end(service):
    attributes = {**LABELLED, sc.GEN_AI_OPERATION_NAME: "execute_tool",
                  "http.request.header.authorization": ["Token tok-7Hq2Lr9Wx4Zp"]}
    event = {"user.phone": PHONE}
    trace_id = _send(service, "http", PRODUCTION, _one_span(attributes, event))
    stored = _stored_text(service, trace_id)
    assert [v for v in [*LABELLED.values(), "tok-7Hq2Lr9Wx4Zp", PHONE] if v in stored] == []
    (attrs,) = [r[1] for r in _rows_of(service, trace_id)]
    assert attrs["db.password"].startswith("<PASSWORD:") and attrs[sc.GEN_AI_OPERATION_NAME] == "execute_tool"


def test_end_user_names_and_ids_are_hashed_end_to_end(service):
    trace_id = _send(service, "grpc", PRODUCTION, _one_span(dict(END_USER)))
    assert [v for v in END_USER.values() if v in _stored_text(service, trace_id)] == []
    (attrs,) = [r[1] for r in _rows_of(service, trace_id)]
    assert len(attrs[sc.USER_HASH]) == 64 and len(attrs[sc.USER_NAME]) == 64
    assert attrs[sc.USER_EMAIL].startswith("<EMAIL:") and sc.ENDUSER_ID not in attrs


def test_dotted_cards_and_aws_key_pairs_are_replaced_end_to_end(service):
    result = f"card on file {SHAPES['card']}; creds {AWS_ID},{AWS_SECRET}"
    trace_id = _send(service, "http", PRODUCTION, _one_span({sc.GEN_AI_TOOL_CALL_RESULT: result}))
    stored = _stored_text(service, trace_id)
    digits = SHAPES["card"].replace(".", "")
    assert [v for v in (SHAPES["card"], digits, AWS_ID, AWS_SECRET) if v in stored] == []
    (attrs,) = [r[1] for r in _rows_of(service, trace_id)]
    assert attrs[sc.GEN_AI_TOOL_CALL_RESULT].startswith("card on file <CARD:")


def _rows_of(service, trace_id: str) -> list[tuple]:
    return service.wait_rows("SELECT SpanName, SpanAttributes FROM otel_traces WHERE TraceId = {t:String}", 1,
                             parameters={"t": trace_id})
