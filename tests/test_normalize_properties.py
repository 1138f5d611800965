"""genai_normalize on arbitrary input: never raises, never loses or changes what was sent."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from normalize_support import batch_of, processor

from spanhouse import semconv as sc
from spanhouse.batch import Event
from spanhouse.normalize import load_mappings

MAPPINGS = load_mappings()
FOREIGN = sorted(
    {r.key for s in MAPPINGS.sources for r in s.rules}
    | {o.key for s in MAPPINGS.sources for o in s.objects}
    | {op.key for s in MAPPINGS.sources for op in s.operations if op.key}
    | {k for s in MAPPINGS.sources for r in s.sums for k in r.keys}
    | {f"{f.prefix}.0.{p}" for s in MAPPINGS.sources for f in s.families for p in f.item.values()}
)
CANONICAL = [
    sc.GEN_AI_OPERATION_NAME,
    sc.GEN_AI_PROVIDER_NAME,
    sc.GEN_AI_REQUEST_MODEL,
    sc.GEN_AI_USAGE_INPUT_TOKENS,
    sc.GEN_AI_USAGE_OUTPUT_TOKENS,
    sc.GEN_AI_INPUT_MESSAGES,
    sc.GEN_AI_CONVERSATION_ID,
]
# Canonical values genai_normalize may correct in place (documented `fix:` entries and §7.11).
FIXABLE = {
    sc.GEN_AI_PROVIDER_NAME,
    sc.GEN_AI_INPUT_MESSAGES,
    sc.GEN_AI_OUTPUT_MESSAGES,
    sc.GEN_AI_OPERATION_NAME,
    sc.GEN_AI_USAGE_INPUT_TOKENS,
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "LLM",
            "chat",
            "generation",
            '"CHAIN"',
            "openai",
            "az.ai.openai",
            "[]",
            "{}",
            '[{"type": 1}]',
            "null",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
json_values = values.map(lambda v: json.dumps(v, default=str))
attributes = st.dictionaries(
    st.sampled_from(FOREIGN + CANONICAL), st.one_of(values, json_values), max_size=12
)


EVENT_NAMES = sorted(MAPPINGS.source("otel_genai").events.kinds) + [
    sc.EVENT_GEN_AI_EVALUATION_RESULT,
    "other",
]
EVENT_KEYS = [
    "gen_ai.event.content",
    "content",
    "role",
    "gen_ai.prompt",
    "gen_ai.completion",
    "message",
    "id",
]
events = st.lists(
    st.builds(
        Event,
        st.integers(0, 10),
        st.sampled_from(EVENT_NAMES),
        st.dictionaries(st.sampled_from(EVENT_KEYS + CANONICAL), st.one_of(values, json_values), max_size=4),
    ),
    max_size=4,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attributes, events)
def test_arbitrary_input_never_fails_and_keeps_what_was_sent(attrs, evs):
    proc = processor()
    before = (proc.failed_spans, proc.normalizer.converter_exceptions)
    b = proc.process(batch_of({"attributes": attrs, "events": evs}))
    assert (proc.failed_spans, proc.normalizer.converter_exceptions) == before  # converters never raise either
    out = b.attributes[0]
    assert b.events[0][: len(evs)] == evs  # events are kept; evaluation results may be added after them
    for key, value in attrs.items():
        assert key in out
        if key not in FIXABLE and key != sc.SPANHOUSE_NORMALIZED_FROM:
            assert out[key] is value or out[key] == value
    for key in set(out) - set(attrs):
        kind = sc.ATTRIBUTE_TYPES.get(
            key, "template[string]" if key.startswith(sc.GEN_AI_PROMPT_VARIABLE) else None
        )
        assert kind is not None, key
        assert has_type(out[key], kind), (key, kind, out[key])


def has_type(value, kind: str) -> bool:
    """A value as the registry types it (`any` content is stored as JSON text)."""
    if kind == "int":
        return type(value) is int
    if kind == "double":
        return type(value) is float
    if kind in ("string", "template[string]", "any"):
        return type(value) is str
    if kind == "boolean":
        return type(value) is bool
    if kind == "string[]":
        return type(value) is list and all(type(v) is str for v in value)
    return False


def test_a_span_that_cannot_be_normalized_is_logged_without_the_exception_message(caplog, monkeypatch):
    """genai_normalize runs before genai_redact: an exception's message may quote a value (`invalid
    literal for int(): '<the value>'`), so the log names the exception and where, never its message."""
    proc = processor()
    value = "maria.garcia@example.com"

    def broken(*args, **kwargs):
        raise ValueError(f"invalid literal for int() with base 10: {value!r}")

    monkeypatch.setattr(proc.normalizer, "normalize", broken)
    with caplog.at_level("ERROR"):
        proc.process(batch_of({"attributes": {sc.GEN_AI_USAGE_INPUT_TOKENS: value}}))
    assert proc.failed_spans == 1 and "could not be normalized" in caplog.text and "ValueError" in caplog.text
    assert "maria.garcia" not in caplog.text
