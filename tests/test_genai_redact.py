"""The `genai_redact` processor on SpanBatches: policies, field rules, content rules, the record,
events, links and resources, every span kind, and its configuration errors."""

from __future__ import annotations

import json
import logging

import pytest
from spanhouse.processors.genai_redact import GenaiRedactConfig, GenaiRedactProcessor

from spanhouse import semconv as sc
from spanhouse.batch import Event, Link, Resource, Scope, SpanBatch
from spanhouse.component import ComponentID
from spanhouse.config import load_config, parse_config
from spanhouse.errors import ConfigError
from spanhouse.logbatch import LogBatch
from spanhouse.redact.settings import FieldRule, PatternSpec, PolicyRule

KEY = "test-key-0123456789abcdef"
EMAIL = "maria.garcia@example.com"
CARD = "4111 1111 1111 1111"
MESSAGES = json.dumps(
    [{"role": "user", "parts": [{"type": "text", "content": f"I am {EMAIL}, card {CARD}"}]}]
)
DETECTIONS = sc.SPANHOUSE_REDACTION_DETECTIONS + "."


def make_batch(resources: list[dict], spans: list[dict]) -> SpanBatch:
    """`spans`: dicts with `resource` (index), `attributes`, optional `events`, `links`, `kind`."""
    batch = SpanBatch()
    batch.resources = [Resource(dict(r)) for r in resources]
    batch.scopes = [Scope("tests")]
    for n, s in enumerate(spans):
        batch.append(
            resource=s.get("resource", 0),
            scope=0,
            trace_id=f"{n:032x}",
            span_id=f"{n + 1:016x}",
            name="chat gpt-4o",
            start_time_unix_nano=1,
            end_time_unix_nano=2,
            kind=s.get("kind", 3),
            attributes=dict(s["attributes"]),
            events=s.get("events"),
            links=s.get("links"),
        )
    return batch


def chat_attrs(**extra) -> dict:
    return {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
        sc.GEN_AI_USAGE_INPUT_TOKENS: 120,
        sc.GEN_AI_RESPONSE_ID: "chatcmpl-123",
        sc.USER_ID: "user-42",
        sc.GEN_AI_INPUT_MESSAGES: MESSAGES,
        sc.SPANHOUSE_COST_USD: 0.0012,
        **extra,
    }


def env(name: str | None) -> dict:
    r = {sc.SERVICE_NAME: "support-copilot"}
    if name:
        r[sc.DEPLOYMENT_ENVIRONMENT_NAME] = name
    return r


def run(batch: SpanBatch, **config) -> SpanBatch:
    return GenaiRedactProcessor(GenaiRedactConfig(hash_key=KEY, **config)).process(batch)


def test_default_rules_choose_the_policy_by_environment():
    envs = ["production", "staging", "development", None, "qa"]
    batch = run(
        make_batch([env(e) for e in envs], [{"resource": i, "attributes": chat_attrs()} for i in range(5)])
    )
    policies = [a[sc.SPANHOUSE_REDACTION_POLICY] for a in batch.attributes]
    assert policies == ["redacted", "full", "full", "redacted", "redacted"]
    for attrs, policy in zip(batch.attributes, policies):
        leaked = EMAIL in attrs[sc.GEN_AI_INPUT_MESSAGES]
        assert leaked is (policy == "full")


def test_redacted_policy_masks_values_keeps_metadata_and_records_it():
    batch = run(make_batch([env("production")], [{"attributes": chat_attrs()}]))
    attrs = batch.attributes[0]
    content = json.loads(attrs[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"]
    assert content.startswith("I am <EMAIL:") and "<CARD:" in content
    assert attrs[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o" and attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == 120
    assert attrs[sc.GEN_AI_RESPONSE_ID] == "chatcmpl-123" and attrs[sc.SPANHOUSE_COST_USD] == 0.0012
    assert sc.USER_ID not in attrs and len(attrs[sc.USER_HASH]) == 64
    assert attrs[DETECTIONS + "email"] == 1 and attrs[DETECTIONS + "card"] == 1
    assert attrs[sc.SPANHOUSE_REDACTION_MASKED_KEYS] == [sc.GEN_AI_INPUT_MESSAGES]
    assert attrs[sc.SPANHOUSE_REDACTION_HASHED_KEYS] == [sc.USER_ID]
    assert EMAIL not in repr(attrs) and "4111" not in repr(attrs)


def test_metadata_only_drops_content_canonical_and_foreign():
    docs = json.dumps([{"id": "kb-1", "score": 0.9, "content": f"contact {EMAIL}"}, {"id": 42, "score": 0.5}])
    attrs = chat_attrs(
        **{
            sc.GEN_AI_OUTPUT_MESSAGES: "[]",
            sc.GEN_AI_SYSTEM_INSTRUCTIONS: "be nice",
            sc.GEN_AI_TOOL_CALL_ARGUMENTS: '{"q": 1}',
            sc.GEN_AI_RETRIEVAL_DOCUMENTS: docs,
            f"{sc.GEN_AI_PROMPT_VARIABLE}.customer": "Maria",
            f"{sc.GEN_AI_PROMPT}.0.content": "hi",
            sc.GEN_AI_PROMPT_NAME: "ticket_reply",
            sc.GEN_AI_PROMPT_VERSION: "v17",
            "input.value": "raw prompt",
            "llm.input_messages.0.message.content": "hello",
            "gen_ai.task.input": '{"messages": ["Weather in Paris?"]}',  # OpenLLMetry langchain 0.62
            "gen_ai.task.output": '{"messages": ["It is sunny in Paris."]}',
            "ticket.note": f"call {EMAIL}",
        }
    )
    events = [
        Event(
            3,
            sc.EVENT_GEN_AI_USER_MESSAGE,
            {"content": f"I am {EMAIL}", "index": 0, sc.GEN_AI_SYSTEM: "openai"},
        ),
        Event(
            4,
            sc.EVENT_GEN_AI_EVALUATION_RESULT,
            {
                sc.GEN_AI_EVALUATION_NAME: "relevance",
                sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.4,
                sc.GEN_AI_EVALUATION_EXPLANATION: f"mentions {EMAIL}",
            },
        ),
    ]
    rules = [{"when": {sc.SPANHOUSE_FEATURE: "kyc-*"}, "policy": "metadata_only"}]
    batch = run(
        make_batch(
            [env("production")],
            [{"attributes": {**attrs, sc.SPANHOUSE_FEATURE: "kyc-onboarding"}, "events": events}],
        ),
        rules=[PolicyRule(**r) for r in rules],
    )
    out = batch.attributes[0]
    assert out[sc.SPANHOUSE_REDACTION_POLICY] == "metadata_only"
    gone = {
        sc.GEN_AI_INPUT_MESSAGES,
        sc.GEN_AI_OUTPUT_MESSAGES,
        sc.GEN_AI_SYSTEM_INSTRUCTIONS,
        sc.GEN_AI_TOOL_CALL_ARGUMENTS,
        f"{sc.GEN_AI_PROMPT_VARIABLE}.customer",
        f"{sc.GEN_AI_PROMPT}.0.content",
        "input.value",
        "llm.input_messages.0.message.content",
        "gen_ai.task.input",
        "gen_ai.task.output",
    }
    assert not gone & set(out)
    assert set(out[sc.SPANHOUSE_REDACTION_DROPPED_KEYS]) >= gone
    assert json.loads(out[sc.GEN_AI_RETRIEVAL_DOCUMENTS]) == [
        {"id": "kb-1", "score": 0.9},
        {"id": 42, "score": 0.5},
    ]
    assert out[sc.GEN_AI_PROMPT_NAME] == "ticket_reply" and out[sc.GEN_AI_PROMPT_VERSION] == "v17"
    assert out["ticket.note"].startswith("call <EMAIL:")  # not content, but still scanned
    message, evaluation = batch.events[0]
    assert message.attributes == {"index": 0, sc.GEN_AI_SYSTEM: "openai"}
    assert evaluation.attributes == {
        sc.GEN_AI_EVALUATION_NAME: "relevance",
        sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.4,
    }
    assert EMAIL not in repr(batch.attributes) + repr(batch.events)


@pytest.mark.parametrize("environment, feature", [("production", "support"), ("production", "kyc-onboarding")])
def test_an_evaluation_score_label_is_scanned_under_redacted_and_metadata_only(environment, feature):
    """SDKs accept any text as a score label (OpenLIT's `log_score(name, "<text>")`): a reviewer's
    verdict quoting the user is scanned like other text, and a plain label stays as it was."""
    verdict = f"wrong answer, email me at {EMAIL} card {CARD}"
    events = [Event(4, sc.EVENT_GEN_AI_EVALUATION_RESULT,
                    {sc.GEN_AI_EVALUATION_NAME: "review", sc.GEN_AI_EVALUATION_SCORE_LABEL: verdict}),
              Event(5, sc.EVENT_GEN_AI_EVALUATION_RESULT,
                    {sc.GEN_AI_EVALUATION_NAME: "relevance", sc.GEN_AI_EVALUATION_SCORE_LABEL: "relevant"})]
    rules = [PolicyRule(when={sc.SPANHOUSE_FEATURE: "kyc-*"}, policy="metadata_only")]
    batch = run(make_batch([env(environment)], [{"attributes": chat_attrs(**{sc.SPANHOUSE_FEATURE: feature}),
                                                  "events": events}]), rules=rules)
    review, relevance = batch.events[0]
    label = review.attributes[sc.GEN_AI_EVALUATION_SCORE_LABEL]
    assert EMAIL not in label and "4111" not in label and label.startswith("wrong answer, email me at <EMAIL:")
    assert relevance.attributes[sc.GEN_AI_EVALUATION_SCORE_LABEL] == "relevant"


def test_openinference_explanations_are_content_in_every_scope():
    """OpenInference evaluations and annotations explain themselves in free text that can quote the
    conversation (span-, trace- and session-scoped): dropped under metadata_only like
    `gen_ai.evaluation.explanation`; their names, scores and labels stay."""
    attrs = {
        "evaluations.0.evaluation.name": "faithfulness", "evaluations.0.evaluation.score": 0.2,
        "evaluations.0.evaluation.explanation": "the reply repeats the customer's diagnosis",
        "annotations.0.annotation.explanation": "the user said her husband left",
        "trace.evaluations.0.evaluation.explanation": "asked about the divorce papers",
        "session.annotations.1.annotation.explanation": "mentions the pregnancy",
    }
    rules = [PolicyRule(when={sc.SPANHOUSE_FEATURE: "kyc-*"}, policy="metadata_only")]
    batch = make_batch([env("production")], [{"attributes": {**attrs, sc.SPANHOUSE_FEATURE: "kyc-onboarding"}}])
    out = run(batch, rules=rules).attributes[0]
    explained = {k for k in attrs if k.endswith("explanation")}
    assert not explained & set(out) and set(out[sc.SPANHOUSE_REDACTION_DROPPED_KEYS]) >= explained
    assert out["evaluations.0.evaluation.name"] == "faithfulness" and out["evaluations.0.evaluation.score"] == 0.2


def test_rules_see_span_attributes_globs_and_deprecated_environment_names():
    rules = [
        PolicyRule(
            when={sc.DEPLOYMENT_ENVIRONMENT_NAME: "prod-*", sc.SPANHOUSE_TENANT_ID: ["acme", "globex"]},
            policy="metadata_only",
        ),
        PolicyRule(when={sc.DEPLOYMENT_ENVIRONMENT_NAME: "staging"}, policy="full"),
    ]
    resources = [env("prod-eu"), env("prod-eu"), {sc.DEPLOYMENT_ENVIRONMENT: "staging"}]
    spans = [
        {"resource": 0, "attributes": chat_attrs(**{sc.SPANHOUSE_TENANT_ID: "acme"})},
        {"resource": 1, "attributes": chat_attrs(**{sc.SPANHOUSE_TENANT_ID: "initech"})},
        {"resource": 2, "attributes": chat_attrs()},
    ]
    batch = run(make_batch(resources, spans), rules=rules)
    assert [a[sc.SPANHOUSE_REDACTION_POLICY] for a in batch.attributes] == [
        "metadata_only",
        "redacted",
        "full",
    ]


@pytest.mark.parametrize("kind", range(6))
def test_every_span_kind_and_events_links_resources_are_redacted(kind):
    resource = {**env("production"), "host.owner": EMAIL}
    span = {
        "kind": kind,
        "attributes": {"note": f"mail {EMAIL}"},
        "events": [Event(5, "exception", {sc.EXCEPTION_MESSAGE: f"no user {EMAIL}"})],
        "links": [Link("ab" * 16, "cd" * 8, "", {"reason": f"follows up {EMAIL}"})],
    }
    batch = run(make_batch([resource], [span]))
    assert EMAIL not in repr(batch.attributes) + repr(batch.events) + repr(batch.links) + repr(
        batch.resources
    )
    attrs = batch.attributes[0]
    assert attrs[DETECTIONS + "email"] == 4
    assert set(attrs[sc.SPANHOUSE_REDACTION_MASKED_KEYS]) == {
        "note",
        f"event:{sc.EXCEPTION_MESSAGE}",
        "link:reason",
        "resource:host.owner",
    }
    assert batch.resources[0].attributes[sc.DEPLOYMENT_ENVIRONMENT_NAME] == "production"


def test_a_shared_resource_gets_the_strictest_policy_of_its_spans():
    rules = [PolicyRule(when={sc.SPANHOUSE_FEATURE: "kyc"}, policy="metadata_only")]
    resource = {**env("staging"), sc.GEN_AI_SYSTEM_INSTRUCTIONS: "be nice"}
    batch = run(
        make_batch(
            [resource],
            [{"attributes": chat_attrs()}, {"attributes": chat_attrs(**{sc.SPANHOUSE_FEATURE: "kyc"})}],
        ),
        rules=rules + [PolicyRule(when={sc.DEPLOYMENT_ENVIRONMENT_NAME: "staging"}, policy="full")],
    )
    assert sc.GEN_AI_SYSTEM_INSTRUCTIONS not in batch.resources[0].attributes
    assert [a[sc.SPANHOUSE_REDACTION_POLICY] for a in batch.attributes] == ["full", "metadata_only"]


def test_field_rules():
    fields = [
        FieldRule(keys=["customer.email"], action="drop"),
        FieldRule(keys=["customer.*"], action="mask"),
        FieldRule(keys=[sc.USER_ID], action="hash", to=sc.USER_HASH),
        FieldRule(keys=["session.token"], action="hash"),
        FieldRule(keys=[sc.GEN_AI_TOOL_CALL_RESULT], action="truncate", length=20),
        FieldRule(keys=["debug.raw"], action="keep"),
    ]
    attrs = {
        "customer.email": EMAIL,
        "customer.name": "Maria",
        "customer.tier": 3,
        sc.USER_ID: "u-1",
        "session.token": "abc",
        sc.GEN_AI_TOOL_CALL_RESULT: f"order shipped to {EMAIL} yesterday",
        "debug.raw": f"raw {EMAIL}",
    }
    out = run(make_batch([env("production")], [{"attributes": attrs}]), fields=fields).attributes[0]
    assert (
        "customer.email" not in out
        and out["customer.name"] == "<MASKED>"
        and out["customer.tier"] == "<MASKED>"
    )
    assert sc.USER_ID not in out and len(out[sc.USER_HASH]) == 64
    assert len(out["session.token"]) == 64 and out["session.token"] != "abc"
    assert (
        out[sc.GEN_AI_TOOL_CALL_RESULT].startswith("order shipped to <E")
        and len(out[sc.GEN_AI_TOOL_CALL_RESULT]) == 20
    )
    assert out["debug.raw"] == f"raw {EMAIL}"
    assert out[sc.SPANHOUSE_REDACTION_DROPPED_KEYS] == ["customer.email"]
    assert set(out[sc.SPANHOUSE_REDACTION_MASKED_KEYS]) == {
        "customer.name",
        "customer.tier",
        sc.GEN_AI_TOOL_CALL_RESULT,
    }
    assert out[sc.SPANHOUSE_REDACTION_HASHED_KEYS] == [sc.USER_ID, "session.token"]
    assert out[sc.SPANHOUSE_REDACTION_TRUNCATED_KEYS] == [sc.GEN_AI_TOOL_CALL_RESULT]


def test_every_foreign_content_attribute_of_the_mappings_is_dropped_under_metadata_only():
    """What a mapping file copies into a canonical content attribute is content too, whichever
    instrumentation sent it (checked against the shipped mapping data, so a new mapping cannot
    forget its redaction entry)."""
    from spanhouse.normalize import load_mappings
    from spanhouse.redact import content

    sources = load_mappings().sources
    foreign = {
        rule.key
        for source in sources
        for rule in source.rules
        if content.content_matcher()(rule.to) and not content.is_metadata(rule.to)
    }
    # indexed families: every member of one rebuilt into a content attribute, and the member an
    # evaluation family reads its explanation from (rebuilt into events, not attributes)
    for family in (f for source in sources for f in source.families):
        members = family.item.values() if content.content_matcher()(family.to) else (
            [family.item["explanation"]] if "explanation" in family.item else [])
        foreign.update(f"{family.prefix}.0.{member}" for member in members)
    foreign = sorted(foreign)
    assert {"gen_ai.tool.input", "ai.toolCall.output", "mlflow.chat.messages", "input.value",
            "evaluations.0.evaluation.explanation", "llm.input_messages.0.message.content"} <= set(foreign)
    attrs = {key: f"Passport P1234567 of Jane Roe, {n}" for n, key in enumerate(foreign)}
    rules = [PolicyRule(when={sc.SPANHOUSE_FEATURE: "kyc-*"}, policy="metadata_only")]
    batch = make_batch([env("production")], [{"attributes": {**attrs, sc.SPANHOUSE_FEATURE: "kyc-onboarding"}}])
    out = run(batch, rules=rules).attributes[0]
    assert [k for k in foreign if k in out] == []
    assert set(out[sc.SPANHOUSE_REDACTION_DROPPED_KEYS]) == set(foreign)


def test_openinference_embedding_text_and_request_parameters_are_content():
    """OpenInference puts embedded text in `embedding.embeddings.N.embedding.text` and the whole
    request (a predicted output, the end user) in `llm.invocation_parameters`."""
    params = '{"model": "gpt-4o", "prediction": {"content": "salary of Jane Roe is 250000"}, "user": "c-1"}'
    attrs = {"embedding.embeddings.0.embedding.text": "Jane Roe, passport P1234567",
             "embedding.embeddings.1.embedding.text": "second text", "llm.invocation_parameters": params}
    rules = [PolicyRule(when={sc.SPANHOUSE_FEATURE: "kyc-*"}, policy="metadata_only")]
    batch = make_batch([env("production")], [{"attributes": {**attrs, sc.SPANHOUSE_FEATURE: "kyc-onboarding"}}])
    out = run(batch, rules=rules).attributes[0]
    assert not set(attrs) & set(out) and set(out[sc.SPANHOUSE_REDACTION_DROPPED_KEYS]) == set(attrs)


def test_logfire_request_and_response_vercel_embedded_text_and_reranker_query_are_content():
    """Logfire's OpenAI and Anthropic spans carry the whole request and reply in `request_data` and
    `response_data`, Vercel's embed spans the embedded text in `ai.value` / `ai.values`, OpenInference's
    reranker spans the query in `reranker.query`: nothing a detector finds, all dropped under metadata_only."""
    phrase = "patient reports chest pain"
    attrs = {
        "request_data": json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": phrase}]}),
        "response_data": json.dumps({"message": {"role": "assistant", "content": phrase}}),
        "ai.value": json.dumps(phrase),
        "ai.values": [json.dumps(phrase), json.dumps("second text")],
        "reranker.query": phrase,
        "prompt": phrase,  # pydantic-ai's agent run
        "logfire.msg": f"running agent on {phrase}",
        "mlflow.traceInputs": json.dumps({"question": phrase}),
        "mlflow.traceOutputs": json.dumps(phrase),
        "gen_ai.content.prompt": phrase,  # older OpenLIT, as a span attribute
        "gen_ai.content.completion": phrase,
        "retrieval.documents.0.document.metadata": json.dumps({"title": phrase}),
    }
    rules = [PolicyRule(when={sc.SPANHOUSE_FEATURE: "kyc-*"}, policy="metadata_only")]
    batch = make_batch([env("production")], [{"attributes": {**attrs, sc.SPANHOUSE_FEATURE: "kyc-onboarding"}}])
    out = run(batch, rules=rules).attributes[0]
    assert not set(attrs) & set(out) and set(out[sc.SPANHOUSE_REDACTION_DROPPED_KEYS]) == set(attrs)
    assert phrase not in repr(out)


def test_the_prompt_template_hash_is_kept_under_metadata_only_as_documented():
    """A decision, not an accident: the template is dropped under metadata_only, its plain SHA-256
    stays (it identifies a template version; templates are application code, not user data), and
    the README's metadata_only row and the attribute's own documentation say so, with the risk (a
    guessed template can be confirmed)."""
    import hashlib
    from pathlib import Path

    from normalize_support import batch_of, processor

    template = "Answer {question} for {customer} politely"
    spans = [{"attributes": {"openinference.span.kind": "LLM", "llm.prompt_template.template": template}},
             {"attributes": {"traceloop.span.kind": "task", "traceloop.prompt.template": template}}]
    batch = processor().process(batch_of(*spans, resource={**env("production"), sc.SPANHOUSE_FEATURE: "kyc-x"}))
    rules = [PolicyRule(when={sc.SPANHOUSE_FEATURE: "kyc-*"}, policy="metadata_only")]
    for out in run(batch, rules=rules).attributes:
        assert out[sc.SPANHOUSE_PROMPT_TEMPLATE_HASH] == hashlib.sha256(template.encode()).hexdigest()
        assert template not in repr(out)
    root = Path(__file__).resolve().parent.parent
    row = next(line for line in (root / "README.md").read_text(encoding="utf-8").splitlines()
               if line.startswith("| `metadata_only` |"))
    assert sc.SPANHOUSE_PROMPT_TEMPLATE_HASH in row and "guessed" in row
    assert "confirmed against the hash" in (root / "semconv" / "docs" / "spanhouse.md").read_text(encoding="utf-8")


FOREIGN_USER_IDS = ["langfuse.user.id", "traceloop.association.properties.user_id", "ai.telemetry.metadata.userId",
                    "mlflow.trace.user", "gen_ai.user", "llm.user", "gen_ai.request.user", "user",
                    "safety_identifier"]


def test_the_user_id_rule_hashes_the_foreign_forms_of_user_id_too():
    """genai_normalize copies each instrumentation's user id into `user.id`; the default hash rule on
    `user.id` must not leave the foreign copy readable beside the hash."""
    attrs = {key: "customer-8812" for key in FOREIGN_USER_IDS}
    out = run(make_batch([env("production")], [{"attributes": {**attrs, sc.USER_ID: "customer-8812"}},
                                               {"attributes": {"langfuse.user.id": "customer-9"}}]))
    both, foreign_only = out.attributes
    assert "customer-8812" not in repr(both) and "customer-9" not in repr(foreign_only)
    proc = GenaiRedactProcessor(GenaiRedactConfig(hash_key=KEY))
    assert both[sc.USER_HASH] == proc.redactor.hasher.hex("customer-8812")
    assert foreign_only[sc.USER_HASH] == proc.redactor.hasher.hex("customer-9")
    assert set(both[sc.SPANHOUSE_REDACTION_HASHED_KEYS]) == {sc.USER_ID, *FOREIGN_USER_IDS}
    # the value of the key the rule names wins over a foreign form sent first (MLflow JSON-encodes)
    out = run(make_batch([env("production")], [{"attributes": {"mlflow.trace.user": '"u-1"', sc.USER_ID: "u-1"}}]))
    assert out.attributes[0][sc.USER_HASH] == proc.redactor.hasher.hex("u-1")
    # under full the rule does not act, on the canonical key or its foreign forms
    out = run(make_batch([env("staging")], [{"attributes": dict(attrs)}])).attributes[0]
    assert all(out[k] == "customer-8812" for k in FOREIGN_USER_IDS)


def test_end_user_ids_and_names_of_the_otel_registry_are_hashed_by_default():
    proc = GenaiRedactProcessor(GenaiRedactConfig(hash_key=KEY))
    hexof = proc.redactor.hasher.hex
    users = {sc.ENDUSER_ID: "alice.w-4471", sc.USER_NAME: "awonder", sc.USER_FULL_NAME: "Alice Wonderland",
             sc.USER_EMAIL: "alice.wonder@example.org"}
    out = proc.process(make_batch([env("production")], [{"attributes": dict(users)}])).attributes[0]
    assert not any(v in repr(out) for v in users.values())
    assert out[sc.USER_HASH] == hexof("alice.w-4471") and sc.ENDUSER_ID not in out
    assert out[sc.USER_NAME] == hexof("awonder") and out[sc.USER_FULL_NAME] == hexof("Alice Wonderland")
    assert out[sc.USER_EMAIL].startswith("<EMAIL:")  # the email detector's token, joinable with the text's
    assert set(out[sc.SPANHOUSE_REDACTION_HASHED_KEYS]) == {sc.ENDUSER_ID, sc.USER_NAME, sc.USER_FULL_NAME}
    # user.id wins over enduser.id, whichever comes first
    for attrs in ({sc.ENDUSER_ID: "e-1", sc.USER_ID: "u-1"}, {sc.USER_ID: "u-1", sc.ENDUSER_ID: "e-1"}):
        out = proc.process(make_batch([env("production")], [{"attributes": attrs}])).attributes[0]
        assert out[sc.USER_HASH] == hexof("u-1") and "e-1" not in repr(out)
    # under full they stay, as user.id does
    out = proc.process(make_batch([env("staging")], [{"attributes": dict(users)}])).attributes[0]
    assert all(out[k] == v for k, v in users.items())


def test_the_user_id_rule_reaches_the_end_user_inside_request_parameters():
    """OpenInference records the whole request in `llm.invocation_parameters`, with the end user as
    OpenAI's `user` or Anthropic's `metadata.user_id`; genai_normalize reads `user.id` from there, so
    the default hash rule on `user.id` hashes the member in place too, whether the object came as JSON
    text or as a structured value, and a drop rule removes it."""
    proc = GenaiRedactProcessor(GenaiRedactConfig(hash_key=KEY))
    digest = proc.redactor.hasher.hex("customer-8812")
    text = json.dumps({"model": "gpt-4o", "user": "customer-8812", "temperature": 0.2})
    structured = {"model": "claude-sonnet-4", "metadata": {"user_id": "customer-8812"}}
    spans = [{"attributes": {"llm.invocation_parameters": text, sc.USER_ID: "customer-8812"}},
             {"attributes": {"llm.invocation_parameters": structured}}]
    as_text, as_map = run(make_batch([env("production")], spans)).attributes
    assert "customer-8812" not in repr(as_text) + repr(as_map)
    assert json.loads(as_text["llm.invocation_parameters"]) == {"model": "gpt-4o", "user": digest, "temperature": 0.2}
    assert as_map["llm.invocation_parameters"] == {"model": "claude-sonnet-4", "metadata": {"user_id": digest}}
    assert structured["metadata"]["user_id"] == "customer-8812"  # the input map is not changed in place
    assert "llm.invocation_parameters.user" in as_text[sc.SPANHOUSE_REDACTION_HASHED_KEYS]
    assert as_map[sc.SPANHOUSE_REDACTION_HASHED_KEYS] == ["llm.invocation_parameters.metadata.user_id"]
    # under full the rule does not act; a drop rule removes the member and keeps the rest
    assert run(make_batch([env("staging")], spans)).attributes[0]["llm.invocation_parameters"] == text
    drop = [FieldRule(keys=[sc.USER_ID], action="drop")]
    out = run(make_batch([env("production")], spans), fields=drop).attributes[0]
    assert json.loads(out["llm.invocation_parameters"]) == {"model": "gpt-4o", "temperature": 0.2}
    assert "llm.invocation_parameters.user" in out[sc.SPANHOUSE_REDACTION_DROPPED_KEYS]


@pytest.mark.parametrize("depth", [5000, 100_000])
@pytest.mark.parametrize("key", ["llm.invocation_parameters", "input.value"])
def test_request_parameters_nested_too_deeply_to_read_drop_that_value_only(caplog, key, depth):
    """A request object nested deeper than a JSON parser goes (orjson: 1024 levels; json: Python's
    recursion limit) may still hold the end user: that one value fails closed, the rest of the span stays."""
    deep = '{"user": "customer-8812", "x": ' + "[" * depth + "]" * depth + "}"
    attrs = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o", "output.value": "the answer",
             sc.GEN_AI_PROMPT_NAME: "ticket_reply", key: deep}
    with caplog.at_level(logging.WARNING):
        out = run(make_batch([env("production")], [{"attributes": attrs}])).attributes[0]
    assert key not in out and out[sc.SPANHOUSE_REDACTION_DROPPED_KEYS] == [key]
    assert out["output.value"] == "the answer" and out[sc.GEN_AI_PROMPT_NAME] == "ticket_reply"
    assert not caplog.records


def test_retrieval_documents_nested_too_deeply_to_write_back_are_dropped_alone(caplog):
    docs = json.dumps([{"id": [[[[["kb"]]]]], "score": 0.5}]).replace('"kb"', "[" * 300 + '"kb"' + "]" * 300)
    attrs = chat_attrs(**{sc.GEN_AI_RETRIEVAL_DOCUMENTS: docs, sc.SPANHOUSE_FEATURE: "kyc-onboarding"})
    with caplog.at_level(logging.WARNING):
        out = run(make_batch([env("production")], [{"attributes": attrs}]),
                  rules=[PolicyRule(when={sc.SPANHOUSE_FEATURE: "kyc-*"}, policy="metadata_only")]).attributes[0]
    assert out[sc.SPANHOUSE_REDACTION_POLICY] == "metadata_only"
    assert sc.GEN_AI_RETRIEVAL_DOCUMENTS not in out
    assert sc.GEN_AI_RETRIEVAL_DOCUMENTS in out[sc.SPANHOUSE_REDACTION_DROPPED_KEYS]
    assert out[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o" and out[sc.GEN_AI_RESPONSE_ID] == "chatcmpl-123"
    assert not caplog.records


def test_keep_and_truncate_rules_act_only_on_the_keys_they_name():
    fields = [FieldRule(keys=[sc.GEN_AI_TOOL_CALL_ARGUMENTS], action="keep"),
              FieldRule(keys=[sc.GEN_AI_TOOL_CALL_RESULT], action="truncate", length=5),
              FieldRule(keys=[sc.GEN_AI_INPUT_MESSAGES], action="drop")]
    attrs = {"gen_ai.tool.input": f"to {EMAIL}", sc.GEN_AI_TOOL_CALL_ARGUMENTS: f"to {EMAIL}",
             "gen_ai.tool.output": "long result", "mlflow.chat.messages": MESSAGES}
    out = run(make_batch([env("production")], [{"attributes": attrs}]), fields=fields).attributes[0]
    assert out[sc.GEN_AI_TOOL_CALL_ARGUMENTS] == f"to {EMAIL}" and out["gen_ai.tool.input"].startswith("to <EMAIL:")
    assert out["gen_ai.tool.output"] == "long result" and "mlflow.chat.messages" not in out


def test_hash_target_set_by_the_application_is_kept():
    out = run(
        make_batch([env("production")], [{"attributes": {sc.USER_ID: "u-1", sc.USER_HASH: "app-hash"}}])
    )
    assert out.attributes[0][sc.USER_HASH] == "app-hash" and sc.USER_ID not in out.attributes[0]


def test_user_patterns_and_detector_selection():
    out = run(
        make_batch([env("production")], [{"attributes": {"note": f"EMP-123456 {EMAIL} 203.0.113.9"}}]),
        patterns=[PatternSpec(name="employee_id", regex=r"\bEMP-[0-9]{6}\b")],
        detectors=["ipv4"],
    )
    note = out.attributes[0]["note"]
    assert note.startswith("<EMPLOYEE_ID:") and EMAIL in note and "<IPV4:" in note


def test_an_existing_in_app_record_is_merged():
    attrs = {
        sc.SPANHOUSE_REDACTION_POLICY: "metadata_only",
        DETECTIONS + "email": 2,
        sc.SPANHOUSE_REDACTION_DROPPED_KEYS: [sc.GEN_AI_INPUT_MESSAGES],
        "note": f"mail {EMAIL}",
    }
    out = run(make_batch([env("production")], [{"attributes": attrs}])).attributes[0]
    assert out[sc.SPANHOUSE_REDACTION_POLICY] == "metadata_only"
    assert out[DETECTIONS + "email"] == 3
    assert out[sc.SPANHOUSE_REDACTION_DROPPED_KEYS] == [sc.GEN_AI_INPUT_MESSAGES]


def test_unscannable_values_are_dropped_and_recorded():
    attrs = {"blob": b"\xff\xfe\x00binary", "huge": "x" * 5000, "fine": "ok"}
    out = run(make_batch([env("production")], [{"attributes": attrs}]), max_value_bytes=4096).attributes[0]
    assert "blob" not in out and "huge" not in out and out["fine"] == "ok"
    assert out[sc.SPANHOUSE_REDACTION_DROPPED_KEYS] == ["blob", "huge"]


@pytest.mark.parametrize("policy", ["redacted", "metadata_only"])
def test_bytes_that_are_not_utf8_text_are_dropped_though_they_decode(policy):
    """UTF-16 text of ASCII decodes as UTF-8 (with NULs between its letters, where no detector sees an
    e-mail): it is binary to the detectors and dropped, like bytes that do not decode."""
    attrs = {"utf16": EMAIL.encode("utf-16-le"), "utf32": EMAIL.encode("utf-32"),
             "utf8": f"to {EMAIL}".encode(), "plain": b"ok"}
    out = run(make_batch([env("production")], [{"attributes": attrs}]), default_policy=policy,
              rules=[PolicyRule(when={sc.SERVICE_NAME: "*"}, policy=policy)]).attributes[0]
    assert "utf16" not in out and "utf32" not in out and out["plain"] == b"ok"
    assert out["utf8"].startswith("to <EMAIL:")
    assert out[sc.SPANHOUSE_REDACTION_DROPPED_KEYS] == ["utf16", "utf32"]


def test_a_failure_inside_redaction_fails_closed(caplog, monkeypatch):
    proc = GenaiRedactProcessor(GenaiRedactConfig(hash_key=KEY))

    def broken(*args, **kwargs):
        raise RuntimeError(f"bug while scanning {EMAIL!r}")  # messages may quote the value

    # both ways into the text redactor: structured values, and strings (through the batch's memo)
    monkeypatch.setattr(proc.redactor.text, "value", broken)
    monkeypatch.setattr(proc.redactor.text, "text", broken)
    batch = make_batch(
        [env("production")],
        [
            {
                "attributes": chat_attrs(note="x"),
                "events": [Event(1, "exception", {sc.EXCEPTION_MESSAGE: "boom"})],
            }
        ],
    )
    batch.name[0] = f"chat for {EMAIL}"
    with caplog.at_level(logging.ERROR):
        out = proc.process(batch)
    attrs = out.attributes[0]
    assert out.name[0] == "chat" and "span:name" in attrs[sc.SPANHOUSE_REDACTION_DROPPED_KEYS]
    assert sc.GEN_AI_INPUT_MESSAGES not in attrs and "note" not in attrs
    assert attrs[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o" and attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == 120
    assert f"event:{sc.EXCEPTION_MESSAGE}" in attrs[sc.SPANHOUSE_REDACTION_DROPPED_KEYS]
    # the scope's name cannot be scanned either: it is dropped too (and counted as a failure)
    assert out.scopes[0].name == "" and "scope:name" in attrs[sc.SPANHOUSE_REDACTION_DROPPED_KEYS]
    assert "content was dropped" in caplog.text and proc.failed_spans == 2
    assert "RuntimeError" in caplog.text and EMAIL not in caplog.text


def test_the_default_pipelines_run_genai_redact_last_on_traces_and_logs():
    cfg = load_config("otel-collector-config.yaml")
    traces = [str(p) for p in cfg.pipelines[ComponentID("traces")].processors]
    assert traces.index("memory_limiter") < traces.index("genai_normalize") < traces.index("genai_redact")
    assert traces[-1] == "genai_redact"  # after normalize and cost, so every canonical value is scanned
    logs = [str(p) for p in cfg.pipelines[ComponentID("logs")].processors]
    assert "genai_redact" in logs
    redact = next(c for i, c in cfg.processors.items() if i.type == "genai_redact")
    assert redact.default_policy.value == "redacted" and [r.policy.value for r in redact.rules] == [
        "redacted",
        "full",
    ]


def _problems(processor_config: dict) -> list[str]:
    data = {
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}},
        "processors": {"genai_redact": processor_config},
        "exporters": {"debug": {}},
        "service": {
            "pipelines": {
                "traces": {"receivers": ["otlp"], "processors": ["genai_redact"], "exporters": ["debug"]}
            }
        },
    }
    with pytest.raises(ConfigError) as err:
        parse_config(data, env={})
    return err.value.problems


@pytest.mark.parametrize(
    "config,expected",
    [
        (
            {"default_policy": "secret"},
            "processors::genai_redact::default_policy: 'secret' is not one of full, redacted, metadata_only",
        ),
        (
            {"rules": [{"policy": "full"}]},
            "processors::genai_redact::rules[0]::when: needs at least one condition",
        ),
        (
            {"rules": [{"when": {"a": {"b": 1}}, "policy": "full"}]},
            "processors::genai_redact::rules[0]::when::a: ",
        ),
        (
            {"fields": [{"keys": ["x"], "action": "truncate"}]},
            "processors::genai_redact::fields[0]::length: truncate",
        ),
        (
            {"fields": [{"keys": ["x"], "action": "mask", "to": "y"}]},
            "processors::genai_redact::fields[0]::to: ",
        ),
        ({"fields": [{"keys": [], "action": "drop"}]}, "processors::genai_redact::fields[0]::keys: "),
        (
            {"fields": [{"keys": ["x"], "action": "shred"}]},
            "processors::genai_redact::fields[0]::action: 'shred'",
        ),
        (
            {"patterns": [{"name": "emp", "regex": "(a)\\1"}]},
            "processors::genai_redact::patterns[0]::regex: not a valid RE2 pattern",
        ),
        (
            {"patterns": [{"name": "emp", "regex": "a*"}]},
            "processors::genai_redact::patterns[0]::regex: matches the empty",
        ),
        ({"patterns": [{"name": "Emp ID", "regex": "x"}]}, "processors::genai_redact::patterns[0]::name: "),
        (
            {"patterns": [{"name": "email", "regex": "x"}]},
            "processors::genai_redact::patterns[0]::name: 'email' is a built-in",
        ),
        (
            {"patterns": [{"name": "e", "regex": "x", "group": 2}]},
            "processors::genai_redact::patterns[0]::group: ",
        ),
        (
            {"detectors": ["email", "passport"]},
            "processors::genai_redact::detectors[1]: unknown detector 'passport'",
        ),
        ({"hash_key": "short"}, "processors::genai_redact::hash_key: use at least 16 characters"),
        ({"token_length": 4}, "processors::genai_redact::token_length: must be between 8 and 64"),
        ({"max_value_bytes": 10}, "processors::genai_redact::max_value_bytes: must be at least 1024"),
        ({"policy": "full"}, "processors::genai_redact::policy: unknown setting"),
    ],
)
def test_config_errors_name_the_setting(config, expected):
    problems = _problems(config)
    assert any(p.startswith(expected) for p in problems), problems


def test_status_messages_are_scanned_under_redacting_policies():
    batch = make_batch(
        [env("production"), env("staging")], [{"attributes": {}}, {"resource": 1, "attributes": {}}]
    )
    batch.status_code = [2, 2]
    batch.status_message = [f"no account for {EMAIL}", f"no account for {EMAIL}"]
    out = run(batch)
    assert out.status_message[0].startswith("no account for <EMAIL:") and out.status_message[1].endswith(
        EMAIL
    )
    assert out.attributes[0][sc.SPANHOUSE_REDACTION_MASKED_KEYS] == ["status:message"]


def test_application_chosen_ids_are_scanned_and_stay_joinable():
    spans = [{"attributes": {sc.SESSION_ID: EMAIL, sc.GEN_AI_CONVERSATION_ID: "conv-42"}} for _ in range(2)]
    out = run(make_batch([env("production")], spans)).attributes
    assert out[0][sc.SESSION_ID].startswith("<EMAIL:") and out[0][sc.SESSION_ID] == out[1][sc.SESSION_ID]
    assert out[0][sc.GEN_AI_CONVERSATION_ID] == "conv-42"


@pytest.mark.parametrize("policy", ["redacted", "metadata_only"])
def test_a_metadata_copy_of_a_foreign_key_a_detector_changed_gets_the_same_token(policy):
    """genai_normalize copies foreign ids and names into metadata keys, which detectors skip; when a
    detector tokenizes the foreign key, the copy must not keep the clear value beside it (the record
    would list the foreign key as masked while the value sits in the copy)."""
    from normalize_support import batch_of, processor

    vercel = {"ai.model.id": "gpt-4o", "ai.model.provider": "openai.chat",
              "ai.operationId": "ai.generateText.doGenerate", "ai.response.id": f"resp {EMAIL}",
              "ai.toolCall.id": EMAIL, "ai.toolCall.name": f"lookup-{EMAIL}"}
    langfuse = {"langfuse.observation.type": "generation", "langfuse.observation.prompt.name": EMAIL}
    logfire = {"logfire.msg": "agent run", "agent_name": EMAIL}
    mlflow = {"mlflow.spanType": '"CHAT_MODEL"', "mlflow.llm.model": json.dumps(EMAIL),  # a JSON-encoded copy
              "mlflow.linkedPrompts": json.dumps([{"name": EMAIL, "version": "3"}])}  # a member copy
    batch = batch_of(*({"attributes": a} for a in (vercel, langfuse, logfire, mlflow)),
                     resource={**env("production"), sc.SPANHOUSE_FEATURE: "kyc-onboarding"})
    batch = processor().process(batch)
    copies = [
        (0, "ai.response.id", sc.GEN_AI_RESPONSE_ID),
        (0, "ai.toolCall.id", sc.GEN_AI_TOOL_CALL_ID),
        (0, "ai.toolCall.name", sc.GEN_AI_TOOL_NAME),
        (1, "langfuse.observation.prompt.name", sc.GEN_AI_PROMPT_NAME),
        (2, "agent_name", sc.GEN_AI_AGENT_NAME),
        (3, "mlflow.llm.model", sc.GEN_AI_REQUEST_MODEL),
        (3, "mlflow.linkedPrompts", sc.GEN_AI_PROMPT_NAME),
    ]
    for i, _, copy in copies:
        assert EMAIL in batch.attributes[i][copy]  # the copies are made
    rules = [PolicyRule(when={sc.SPANHOUSE_FEATURE: "kyc-*"}, policy=policy)]
    out = run(batch, rules=rules).attributes
    assert EMAIL not in repr(out)
    for i, foreign, copy in copies:
        assert "<EMAIL:" in out[i][copy]
        assert {foreign, copy} <= set(out[i][sc.SPANHOUSE_REDACTION_MASKED_KEYS])
    assert out[0][sc.GEN_AI_TOOL_CALL_ID] == out[0]["ai.toolCall.id"]  # the same token: still joinable
    assert out[2][sc.GEN_AI_AGENT_NAME] == out[2]["agent_name"]
    assert out[0][sc.GEN_AI_REQUEST_MODEL] == "gpt-4o" and out[0][sc.GEN_AI_PROVIDER_NAME] == "openai"


def test_a_metadata_key_is_left_alone_when_its_foreign_source_had_nothing_to_find():
    attrs = {"agent_name": "triage", sc.GEN_AI_AGENT_NAME: "triage", "ticket.note": f"call {EMAIL}",
             sc.GEN_AI_RESPONSE_ID: f"resp {EMAIL}"}  # sent by the application: metadata, not a copy
    out = run(make_batch([env("production")], [{"attributes": attrs}])).attributes[0]
    assert out[sc.GEN_AI_AGENT_NAME] == "triage" and out[sc.GEN_AI_RESPONSE_ID] == f"resp {EMAIL}"
    assert out[sc.SPANHOUSE_REDACTION_MASKED_KEYS] == ["ticket.note"]


def log_records(resources: list[dict], records: list[dict]) -> LogBatch:
    """A real `LogBatch` (the logs pipeline's unit of work) with these resources and records."""
    batch = LogBatch()
    batch.resources = [Resource(dict(r)) for r in resources]
    batch.scopes = [Scope()]
    for r in records:
        batch.append(resource=r.get("resource", 0), scope=0, body=r.get("body"),
                     attributes=dict(r.get("attributes", {})), event_name=r.get("event_name", ""))
    return batch


def test_log_records_bodies_attributes_and_resources_are_redacted():
    message = {"content": f"I am {EMAIL}, card {CARD}", "role": "user"}
    logs = log_records(
        [env("production"), {**env("production"), sc.SPANHOUSE_FEATURE: "kyc-onboarding"}],
        [
            {
                "event_name": sc.EVENT_GEN_AI_USER_MESSAGE,
                "body": dict(message),
                "attributes": {sc.GEN_AI_SYSTEM: "openai"},
            },
            {"body": f"login failed for {EMAIL}", "attributes": {"client.ip": "203.0.113.7"}},
            {"resource": 1, "event_name": sc.EVENT_GEN_AI_USER_MESSAGE, "body": dict(message)},
            {"resource": 1, "body": b"\xff\xfe binary"},
        ],
    )
    rules = [PolicyRule(when={sc.SPANHOUSE_FEATURE: "kyc-*"}, policy="metadata_only")]
    out = run(logs, rules=rules)
    user, app, kyc, binary = range(4)
    assert out.body[user]["content"].startswith("I am <EMAIL:") and out.body[user]["role"] == "user"
    assert out.attributes[user][sc.SPANHOUSE_REDACTION_MASKED_KEYS] == ["body"]
    assert out.body[app].startswith("login failed for <EMAIL:")
    assert out.attributes[app]["client.ip"].startswith("<IPV4:")
    assert (
        out.body[kyc] == {"role": "user"}
        and out.attributes[kyc][sc.SPANHOUSE_REDACTION_POLICY] == "metadata_only"
    )
    assert out.attributes[kyc][sc.SPANHOUSE_REDACTION_DROPPED_KEYS] == ["body"]
    assert out.body[binary] is None and out.attributes[binary][sc.SPANHOUSE_REDACTION_DROPPED_KEYS] == [
        "body"
    ]
    assert EMAIL not in repr(out.body) + repr(out.attributes)


def test_metadata_only_keeps_only_metadata_in_the_body_of_any_genai_event():
    """The semantic conventions put the messages of `operation.details` and the explanation of
    `evaluation.result` in attributes; a sender that puts them in the body instead is not let
    through: under metadata_only the body of every GenAI event keeps only its metadata members."""
    phrase = "patient reports chest pain"
    messages = [{"role": "user", "parts": [{"type": "text", "content": phrase}]}]
    logs = log_records(
        [{**env("production"), sc.SPANHOUSE_FEATURE: "kyc-onboarding"}],
        [
            {
                "event_name": sc.EVENT_GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS,
                "body": {sc.GEN_AI_INPUT_MESSAGES: messages, sc.GEN_AI_REQUEST_MODEL: "gpt-4o"},
                "attributes": {sc.GEN_AI_OPERATION_NAME: "chat"},
            },
            {
                "event_name": sc.EVENT_GEN_AI_EVALUATION_RESULT,
                "body": {"explanation": phrase, sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.4},
                "attributes": {sc.GEN_AI_EVALUATION_NAME: "relevance"},
            },
            {"event_name": sc.EVENT_GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS, "body": phrase},
            {"body": f"{phrase}, mail {EMAIL}"},  # an application's log line: not content, scanned
            # a role or finish reason is kept only when it is one: free text there may be content
            {"event_name": sc.EVENT_GEN_AI_CHOICE,
             "body": {"index": 0, "finish_reason": "STOP", "role": "bot", "message": {"content": phrase}}},
            {"event_name": sc.EVENT_GEN_AI_CHOICE,
             "body": {"index": 1, "finish_reason": phrase, "role": phrase, "message": {"content": phrase}}},
        ],
    )
    rules = [PolicyRule(when={sc.SPANHOUSE_FEATURE: "kyc-*"}, policy="metadata_only")]
    out = run(logs, rules=rules)
    details, evaluation, text, app, choice, odd = range(6)
    assert out.body[choice] == {"index": 0, "finish_reason": "STOP", "role": "bot"}
    assert out.body[odd] == {"index": 1}
    assert out.body[details] == {sc.GEN_AI_REQUEST_MODEL: "gpt-4o"}
    assert out.body[evaluation] == {sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.4}
    assert out.body[text] is None
    for i in (details, evaluation, text):
        assert out.attributes[i][sc.SPANHOUSE_REDACTION_DROPPED_KEYS] == ["body"]
    assert out.body[app].startswith(f"{phrase}, mail <EMAIL:")
    assert phrase not in repr(out.body[:3] + out.body[4:]) + repr(out.attributes)


def test_genai_redact_is_accepted_in_a_logs_pipeline():
    data = {
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}},
        "processors": {"genai_redact": {}},
        "exporters": {"debug": {}},
        "service": {
            "pipelines": {
                "logs": {"receivers": ["otlp"], "processors": ["genai_redact"], "exporters": ["debug"]}
            }
        },
    }
    assert parse_config(data, env={}).pipelines


def test_a_text_repeated_across_spans_is_redacted_and_counted_in_every_span():
    # the same conversation history sent with three calls, once as a status message too
    spans = [{"attributes": chat_attrs()} for _ in range(3)]
    batch = make_batch([env("production")], spans)
    batch.status_message[2] = f"rejected {EMAIL}"
    batch.status_message[1] = f"rejected {EMAIL}"
    out = run(batch)
    first = out.attributes[0][sc.GEN_AI_INPUT_MESSAGES]
    for i, attrs in enumerate(out.attributes):
        assert attrs[sc.GEN_AI_INPUT_MESSAGES] == first and EMAIL not in first
        assert attrs[DETECTIONS + "card"] == 1
        assert attrs[DETECTIONS + "email"] == (1 if i == 0 else 2)
    assert out.status_message[1] == out.status_message[2] and EMAIL not in out.status_message[1]


def test_without_a_key_every_redaction_processor_of_a_process_uses_the_same_key(caplog, monkeypatch):
    """The traces and the logs pipelines each have a genai_redact: with no hash_key, one random key per
    process keeps the same e-mail joinable across spans and log records (and is warned about once)."""
    from spanhouse.redact import keys

    monkeypatch.setattr(keys, "_PROCESS_KEY", [])  # as at the start of a process
    with caplog.at_level("WARNING", logger="spanhouse.redact.keys"):
        spans_proc = GenaiRedactProcessor(GenaiRedactConfig())
        logs_proc = GenaiRedactProcessor(GenaiRedactConfig())
    span = spans_proc.process(make_batch([env("production")], [{"attributes": {"note": f"write to {EMAIL}"}}]))
    log = logs_proc.process(log_records([env("production")], [{"body": f"write to {EMAIL}"}]))
    token = span.attributes[0]["note"].removeprefix("write to ")
    assert token.startswith("<EMAIL:") and log.body[0] == f"write to {token}"
    assert spans_proc.redactor.hasher.hex("u-1") == logs_proc.redactor.hasher.hex("u-1")
    assert caplog.text.count("no hash_key is configured") == 1


def test_span_names_are_scanned_under_redacting_policies():
    """Instrumentations put paths and queries in span names; the detectors reach them, and a name with
    nothing sensitive, or a name under `full`, stays as sent."""
    batch = make_batch([env("production"), env("staging")],
                       [{"attributes": {}}, {"attributes": {}}, {"resource": 1, "attributes": {}}])
    batch.name[0] = f"GET /users/{EMAIL}/cards/{CARD}"
    batch.name[2] = f"GET /users/{EMAIL}"
    out = run(batch)
    assert out.name[0].startswith("GET /users/<EMAIL:") and EMAIL not in out.name[0] and CARD not in out.name[0]
    assert out.attributes[0][sc.SPANHOUSE_REDACTION_MASKED_KEYS] == ["span:name"]
    assert out.name[1] == "chat gpt-4o" and sc.SPANHOUSE_REDACTION_MASKED_KEYS not in out.attributes[1]
    assert out.name[2] == f"GET /users/{EMAIL}"  # staging: full


def _spans_with_a_secret_in_every_slot() -> SpanBatch:
    batch = make_batch(
        [{**env("production"), f"owner {EMAIL}": "v"}],
        [
            {
                "attributes": {
                    **chat_attrs(),
                    f"app {EMAIL}": f"to {EMAIL}",
                    "app.kvlist": {f"inner {EMAIL}": "v", "plain": "v"},
                    "app.note": "nothing here",
                },
                "events": [
                    Event(1, f"evt {EMAIL}", {f"ev {EMAIL}": 1}),
                    Event(2, f"evt {EMAIL}", {}),
                    Event(3, "exception", {sc.EXCEPTION_MESSAGE: "boom"}),
                ],
                "links": [Link("ab" * 16, "cd" * 8, f"k3={EMAIL}", {f"link {EMAIL}": True})],
            }
        ],
    )
    batch.trace_state[0] = f"vendor={EMAIL}"
    batch.resources[0].schema_url = f"https://schemas.example/{EMAIL}"
    batch.scopes[0] = Scope(f"scope {EMAIL}", f"1.0 {EMAIL}", {f"scope {EMAIL}": EMAIL, "scope.ok": "ok"},
                            f"https://schemas.example/{EMAIL}")
    return batch


@pytest.mark.parametrize("policy", ["redacted", "metadata_only"])
def test_names_keys_trace_states_scopes_and_schema_urls_are_scanned(policy):
    """Every string the sender chose is scanned, not only attribute values: event names, trace states,
    the scope's name, version and attributes, schema URLs and attribute keys at every level. A key in
    which a detector fires is replaced by its redacted form; every other key stays exact."""
    out = run(_spans_with_a_secret_in_every_slot(), default_policy=policy,
              rules=[PolicyRule(when={sc.SERVICE_NAME: "*"}, policy=policy)])
    attrs, event, link = out.attributes[0], out.events[0][0], out.links[0][0]
    everything = repr((out.attributes, out.events, out.links, out.trace_state, out.resources, out.scopes))
    assert EMAIL not in everything
    assert out.events[0][0].name.startswith("evt <EMAIL:") and out.events[0][1].name == event.name
    assert out.events[0][2].name == "exception"
    assert out.trace_state[0].startswith("vendor=<EMAIL:") and link.trace_state.startswith("k3=<EMAIL:")
    scope = out.scopes[0]
    assert scope.name.startswith("scope <EMAIL:") and scope.version.startswith("1.0 <EMAIL:")
    assert scope.schema_url.startswith("https://schemas.example/<EMAIL:") and scope.attributes["scope.ok"] == "ok"
    assert out.resources[0].schema_url.startswith("https://schemas.example/<EMAIL:")
    token = event.name.removeprefix("evt ")
    assert f"app {token}" in attrs and f"ev {token}" in event.attributes and f"link {token}" in link.attributes
    assert f"owner {token}" in out.resources[0].attributes
    # known names, and keys no detector fires in, are exact and keep their place
    assert list(attrs)[:4] == list(chat_attrs())[:4] and attrs["app.note"] == "nothing here"
    assert out.resources[0].attributes[sc.SERVICE_NAME] == "support-copilot"
    if policy == "redacted":
        assert attrs[f"app {token}"] == f"to {token}"
        assert attrs["app.kvlist"] == {f"inner {token}": "v", "plain": "v"}
        assert scope.attributes[f"scope {token}"] == token
    masked = attrs[sc.SPANHOUSE_REDACTION_MASKED_KEYS]
    for label in ("event:name", "span:trace_state", "link:trace_state", "scope:name", "scope:version",
                  "scope:schema_url", "resource:schema_url", f"key:app {token}", f"event:key:ev {token}",
                  f"link:key:link {token}", f"resource:key:owner {token}", f"scope:key:scope {token}"):
        assert label in masked, label
    assert EMAIL not in repr(masked) + repr(attrs.get(sc.SPANHOUSE_REDACTION_DROPPED_KEYS))


def test_names_and_keys_stay_as_sent_under_full():
    batch = _spans_with_a_secret_in_every_slot()
    batch.resources[0].attributes[sc.DEPLOYMENT_ENVIRONMENT_NAME] = "staging"
    out = run(batch)
    assert out.events[0][0].name == f"evt {EMAIL}" and out.scopes[0].name == f"scope {EMAIL}"
    assert f"app {EMAIL}" in out.attributes[0] and out.trace_state[0] == f"vendor={EMAIL}"


def test_a_name_repeated_across_a_batch_is_scanned_once(monkeypatch):
    proc = GenaiRedactProcessor(GenaiRedactConfig(hash_key=KEY))
    seen = []
    text = proc.redactor.text.text

    def counting(s, counts):
        seen.append(s)
        return text(s, counts)

    monkeypatch.setattr(proc.redactor.text, "text", counting)
    spans = [{"attributes": {}, "events": [Event(1, f"evt {EMAIL}", {})]} for _ in range(20)]
    out = proc.process(make_batch([env("production")], spans))
    assert seen.count(f"evt {EMAIL}") == 1 and seen.count("tests") == 1
    assert all(a[DETECTIONS + "email"] == 1 for a in out.attributes)


def test_log_record_severity_text_event_name_scope_and_keys_are_scanned():
    logs = log_records(
        [env("production")],
        [
            {"body": {"content": "hi", f"note {EMAIL}": "v", "role": "user"}, "event_name": f"app {EMAIL}",
             "attributes": {f"app {EMAIL}": "v", "app.x": "y"}},
        ],
    )
    logs.severity_text[0] = f"INFO {EMAIL}"
    logs.scopes[0] = Scope(f"lscope {EMAIL}", f"v {EMAIL}", {f"k {EMAIL}": "v"})
    out = run(logs)
    everything = repr((out.body, out.attributes, out.event_name, out.severity_text, out.scopes))
    assert EMAIL not in everything
    token = out.severity_text[0].removeprefix("INFO ")
    assert token.startswith("<EMAIL:") and out.event_name[0] == f"app {token}"
    assert out.body[0] == {"content": "hi", f"note {token}": "v", "role": "user"}
    assert out.attributes[0]["app.x"] == "y" and out.attributes[0][f"app {token}"] == "v"
    masked = out.attributes[0][sc.SPANHOUSE_REDACTION_MASKED_KEYS]
    for label in ("log:severity_text", "log:event_name", "body", f"key:app {token}", "scope:name",
                  "scope:version", f"scope:key:k {token}"):
        assert label in masked, label


def test_end_users_the_sdks_send_in_request_attributes_are_hashed_after_normalization():
    """The end user OpenAI's `user=` names, as real SDKs record it: OpenLIT 1.45 in gen_ai.request.user,
    MLflow 3.17 autolog as the `user` attribute and inside mlflow.spanInputs (values JSON-encoded),
    OpenInference's OpenAI instrumentation inside the request body in input.value of the LLM span. After
    genai_normalize and the default rules, no copy is left in clear and user.hash is filled."""
    from normalize_support import processor as normalizer

    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "user": "enduser-99"}
    openlit = {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai",
               sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini", "telemetry.sdk.name": "openlit",
               "gen_ai.request.user": "enduser-99"}
    mlflow = {"mlflow.traceRequestId": '"tr-1"', "mlflow.spanType": '"CHAT_MODEL"',
              "mlflow.spanInputs": json.dumps(body), "model": '"gpt-4o-mini"', "user": '"enduser-99"',
              "mlflow.message.format": '"openai"', "mlflow.llm.model": '"gpt-4o-mini-2024-07-18"'}
    oi_llm = {"openinference.span.kind": "LLM", "llm.system": "openai", "input.value": json.dumps(body),
              "input.mime_type": "application/json", "llm.invocation_parameters": '{"model":"gpt-4o-mini"}'}
    chain_input = json.dumps({"user": "alice-the-bot", "question": "hi"})
    oi_chain = {"openinference.span.kind": "CHAIN", "input.value": chain_input}
    openlit_no_user = {**openlit, "gen_ai.request.user": ""}
    batch = make_batch([env("production")], [{"attributes": a} for a in
                                             (openlit, mlflow, oi_llm, oi_chain, openlit_no_user)])
    out = run(normalizer().process(batch)).attributes
    proc = GenaiRedactProcessor(GenaiRedactConfig(hash_key=KEY))
    digest = proc.redactor.hasher.hex("enduser-99")
    for attrs in out[:3]:
        assert "enduser-99" not in repr(attrs), attrs
        assert attrs[sc.USER_HASH] == digest
    assert json.loads(out[1]["mlflow.spanInputs"])["user"] == digest
    assert json.loads(out[2]["input.value"])["user"] == digest
    assert json.loads(out[2]["input.value"])["messages"] == body["messages"]  # the rest as sent
    assert "input.value.user" in out[2][sc.SPANHOUSE_REDACTION_HASHED_KEYS]
    # a chain's input is the application's own object: its `user` is not read as the end user
    assert out[3]["input.value"] == chain_input and sc.USER_HASH not in out[3]
    # OpenLIT sends an empty gen_ai.request.user when the request names no user
    assert sc.USER_HASH not in out[4] and sc.USER_ID not in out[4]
