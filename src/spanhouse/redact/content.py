"""Which attributes are content and which are metadata, as data.

Content (dropped under `metadata_only`): messages, system instructions, tool call arguments and
results, retrieval and memory queries and records, prompt variables, the obsolete prompt/completion
attributes, and the foreign attributes that carry the same things (`semconv/mappings/
redaction/content.yaml`). `gen_ai.retrieval.documents` keeps only its documents' ids and scores.

Metadata (kept as sent under every policy, never scanned): ids, names, models, versions, enums and
spanhouse's own attributes, so a policy never turns a model name or a release into a token. Numbers
and booleans are metadata wherever they appear (tokens, costs, timings, scores), except integers long
enough to be a card or phone number, which are scanned.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml

from spanhouse import semconv as sc
from spanhouse.redact.globs import KeyMatcher

CONTENT_KEYS: frozenset[str] = frozenset(
    {
        sc.GEN_AI_INPUT_MESSAGES,
        sc.GEN_AI_OUTPUT_MESSAGES,
        sc.GEN_AI_SYSTEM_INSTRUCTIONS,
        sc.GEN_AI_TOOL_CALL_ARGUMENTS,
        sc.GEN_AI_TOOL_CALL_RESULT,
        sc.GEN_AI_RETRIEVAL_QUERY_TEXT,
        sc.GEN_AI_MEMORY_QUERY_TEXT,
        sc.GEN_AI_MEMORY_RECORDS,
        sc.GEN_AI_EVALUATION_EXPLANATION,
        sc.GEN_AI_PROMPT,
        sc.GEN_AI_COMPLETION,
    }
)
"""Canonical content attributes."""

CONTENT_GLOBS: tuple[str, ...] = (
    f"{sc.GEN_AI_PROMPT_VARIABLE}.*",
    f"{sc.GEN_AI_PROMPT}.*",
    f"{sc.GEN_AI_COMPLETION}.*",
)
"""Canonical content attribute families (prompt variables, indexed prompts and completions)."""

DOCUMENT_KEYS: frozenset[str] = frozenset({sc.GEN_AI_RETRIEVAL_DOCUMENTS})
"""Attributes holding a JSON list of documents, reduced to their metadata fields under metadata_only."""

MESSAGE_EVENTS: frozenset[str] = frozenset(
    {
        sc.EVENT_GEN_AI_SYSTEM_MESSAGE,
        sc.EVENT_GEN_AI_USER_MESSAGE,
        sc.EVENT_GEN_AI_ASSISTANT_MESSAGE,
        sc.EVENT_GEN_AI_TOOL_MESSAGE,
        sc.EVENT_GEN_AI_CHOICE,
        sc.EVENT_GEN_AI_CONTENT_PROMPT,
        sc.EVENT_GEN_AI_CONTENT_COMPLETION,
    }
)
"""Events whose body is a message: under metadata_only only their metadata attributes stay."""

GENAI_EVENT_PREFIX = sc.EVENT_GEN_AI_CHOICE.split(".", 1)[0] + "."
"""Every GenAI event name starts with this. Apart from the message events above, the GenAI events
(`gen_ai.client.inference.operation.details`, `gen_ai.evaluation.result`, ...) define no log body:
what a sender puts there anyway (the messages, an evaluation's explanation) is content, so under
metadata_only such a body keeps only its metadata members too."""

METADATA_KEYS: frozenset[str] = frozenset(
    {
        sc.SERVICE_NAME,
        sc.SERVICE_VERSION,
        sc.DEPLOYMENT_ENVIRONMENT_NAME,
        sc.DEPLOYMENT_ENVIRONMENT,
        sc.GEN_AI_OPERATION_NAME,
        sc.GEN_AI_PROVIDER_NAME,
        sc.GEN_AI_SYSTEM,
        sc.GEN_AI_OUTPUT_TYPE,
        sc.GEN_AI_REQUEST_MODEL,
        sc.GEN_AI_RESPONSE_MODEL,
        sc.GEN_AI_RESPONSE_ID,
        sc.GEN_AI_RESPONSE_STATUS,
        sc.GEN_AI_RESPONSE_FINISH_REASONS,
        sc.GEN_AI_REQUEST_REASONING_LEVEL,
        sc.GEN_AI_REQUEST_ENCODING_FORMATS,
        sc.GEN_AI_REQUEST_PREVIOUS_RESPONSE_ID,
        sc.GEN_AI_REQUEST_STREAM_CURSOR,
        sc.GEN_AI_PROMPT_NAME,
        sc.GEN_AI_PROMPT_VERSION,
        sc.GEN_AI_TOOL_NAME,
        sc.GEN_AI_TOOL_TYPE,
        sc.GEN_AI_TOOL_CALL_ID,
        sc.GEN_AI_AGENT_ID,
        sc.GEN_AI_AGENT_NAME,
        sc.GEN_AI_AGENT_VERSION,
        sc.GEN_AI_WORKFLOW_NAME,
        sc.GEN_AI_DATA_SOURCE_ID,
        sc.GEN_AI_MEMORY_STORE_ID,
        sc.GEN_AI_MEMORY_RECORD_ID,
        sc.GEN_AI_EVALUATION_NAME,
        sc.OPENAI_API_TYPE,
        sc.OPENAI_REQUEST_SERVICE_TIER,
        sc.OPENAI_RESPONSE_SERVICE_TIER,
        sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT,
        sc.GEN_AI_OPENAI_REQUEST_SERVICE_TIER,
        sc.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER,
        sc.GEN_AI_OPENAI_RESPONSE_SYSTEM_FINGERPRINT,
        sc.AWS_BEDROCK_GUARDRAIL_ID,
        sc.AWS_BEDROCK_KNOWLEDGE_BASE_ID,
        sc.ERROR_TYPE,
        sc.EXCEPTION_TYPE,
        sc.USER_HASH,
    }
)
"""Metadata attributes besides spanhouse's own (every `spanhouse.*` key is metadata too).
Conversation and session ids are not here: applications choose them, sometimes an email, so they
are scanned (a token keeps them joinable). Nor is an evaluation's score label: SDKs take any string
there (a reviewer's free-text verdict), so it is scanned."""

SPANHOUSE_PREFIX = sc.SPANHOUSE_FEATURE.split(".", 1)[0] + "."


@lru_cache(maxsize=1)
def _mapping() -> dict:
    text = resources.files("spanhouse.redact").joinpath("content.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text) or {}


def foreign_content_globs() -> tuple[str, ...]:
    """Foreign content attribute names and globs, from the mapping data."""
    groups = _mapping().get("content") or {}
    return tuple(name for names in groups.values() for name in names or ())


def document_metadata_fields() -> frozenset[str]:
    return frozenset(_mapping().get("document_metadata_fields") or ())


def message_event_metadata() -> frozenset[str]:
    return frozenset(_mapping().get("message_event_metadata") or ()) | {
        sc.GEN_AI_SYSTEM,
        sc.GEN_AI_PROVIDER_NAME,
    }


CONTENT_EVENTS: frozenset[str] = frozenset({sc.EVENT_SPANHOUSE_DATASET_EXAMPLE})
"""Other events whose body is content: a dataset example's input and expected output."""


def is_genai_event(name: str) -> bool:
    """True for a message event, any other GenAI event (see `GENAI_EVENT_PREFIX`) or a `CONTENT_EVENTS`
    one: under metadata_only their bodies keep only their metadata members."""
    return name in MESSAGE_EVENTS or name.startswith(GENAI_EVENT_PREFIX) or name in CONTENT_EVENTS


def is_metadata(key: str) -> bool:
    return key in METADATA_KEYS or key.startswith(SPANHOUSE_PREFIX)


@lru_cache(maxsize=1)
def content_matcher() -> KeyMatcher:
    """Matches every content attribute name, canonical or foreign."""
    return KeyMatcher(tuple(CONTENT_KEYS) + CONTENT_GLOBS + foreign_content_globs())
