"""The attributes that tie a run to a dataset example (`spanhouse compare`, `spanhouse gate`) are the
application's ids, not user data: genai_normalize and genai_redact keep them as sent under every policy,
next to content the detectors and metadata_only act on."""

from __future__ import annotations

import json

import pytest
from spanhouse.processors.genai_normalize import NormalizeConfig, NormalizeProcessor
from spanhouse.processors.genai_redact import GenaiRedactConfig, GenaiRedactProcessor

from spanhouse import semconv as sc
from spanhouse.batch import Resource, Scope, SpanBatch

# an example id a detector reads as a card number when it scans it (ids exported from other systems are
# often long numbers): scanned, it would be masked and every such example would pair with every other
RUN = {sc.SPANHOUSE_DATASET_NAME: "support-golden", sc.SPANHOUSE_DATASET_EXAMPLE_ID: "4111111111111111",
       sc.SPANHOUSE_EXPERIMENT_NAME: "ci-1234"}
MESSAGES = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "I am maria@example.com"}]}])


def batch(attrs: dict) -> SpanBatch:
    b = SpanBatch()
    b.resources = [Resource({sc.SERVICE_NAME: "support-copilot"})]
    b.scopes = [Scope("tests")]
    b.append(resource=0, scope=0, trace_id="1" * 32, span_id="2" * 16, name="support_workflow",
             start_time_unix_nano=1, end_time_unix_nano=2, kind=1, attributes=dict(attrs))
    return b


@pytest.mark.parametrize("policy", ["full", "redacted", "metadata_only"])
def test_normalize_and_redact_keep_the_dataset_attributes_under_every_policy(policy):
    # a root that is also a model call with content: the strictest case for the redaction rules
    attrs = {**RUN, sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
             sc.GEN_AI_INPUT_MESSAGES: MESSAGES}
    out = NormalizeProcessor(NormalizeConfig()).process(batch(attrs))
    out = GenaiRedactProcessor(GenaiRedactConfig(hash_key="k" * 32, default_policy=policy)).process(out)
    kept = out.attributes[0]
    assert {k: kept.get(k) for k in RUN} == RUN
    assert kept[sc.SPANHOUSE_REDACTION_POLICY] == policy
    if policy != "full":  # the policy did act on the content beside them
        assert "maria@example.com" not in str(kept.get(sc.GEN_AI_INPUT_MESSAGES, ""))
