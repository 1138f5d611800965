"""Which spans are model calls: one rule for genai_cost, `spanhouse costs` and `top-traces`,
`spanhouse trace`, the hourly rollup and the Grafana dashboards, so that they count the same calls.

- A span whose `gen_ai.operation.name` is `chat`, `text_completion`, `generate_content` or
  `embeddings` (`MODEL_CALL_OPERATIONS`) is a model call.
- A span whose operation is another one of the conventions (`invoke_agent`, `invoke_workflow`,
  `execute_tool`, `retrieval`, `plan`, ...: `NOT_MODEL_CALL_OPERATIONS`) is not: usage or a cost it
  carries was summed from the calls below it, so genai_cost marks it `aggregated` and prices nothing.
- Any other span (no operation, or one the conventions do not define, such as `responses`, `Chat` or
  `rerank`) is a model call when it carries token counts or a cost, and otherwise neither priced nor
  unpriced: a Vercel AI SDK `ai.generateText` or an OpenInference CHAIN span that only names its model.

- A model call that only wraps another one (its child in the trace reports the same token counts: an
  agent framework and the provider SDK both instrumented, as OpenInference's openai-agents and openai
  instrumentations do) is not counted again: genai_cost marks the outer one `aggregated`.

genai_cost gives every model call a priced or an unpriced `spanhouse.cost.source`
(`MODEL_CALL_SOURCES`), so a stored span is a model call when its cost source is one of
`MODEL_CALL_SOURCES`, or, when it has no cost source, its operation is one of
`MODEL_CALL_OPERATIONS` (`is_model_call`, `model_call_sql`). Without genai_cost in the pipeline only
the second half applies.
"""

from __future__ import annotations

from spanhouse import semconv as sc

_OP = sc.GenAiOperationNameValues
_SRC = sc.SpanhouseCostSourceValues

MODEL_CALL_OPERATIONS: tuple[str, ...] = (
    _OP.CHAT.value,
    _OP.TEXT_COMPLETION.value,
    _OP.GENERATE_CONTENT.value,
    _OP.EMBEDDINGS.value,
)
NOT_MODEL_CALL_OPERATIONS: frozenset[str] = frozenset(op.value for op in _OP) - frozenset(MODEL_CALL_OPERATIONS)

COST_PARTS: tuple[str, ...] = (
    sc.SPANHOUSE_COST_INPUT_USD,
    sc.SPANHOUSE_COST_OUTPUT_USD,
    sc.SPANHOUSE_COST_CACHE_USD,
    sc.SPANHOUSE_COST_REASONING_USD,
)
"""The parts of a model call's `spanhouse.cost.usd`, as genai_normalize maps and genai_cost writes them."""

PRICED_SOURCES: tuple[str, ...] = (_SRC.COMPUTED.value, _SRC.OVERRIDE.value, _SRC.REPORTED.value)
"""Model calls with a cost."""
UNPRICED_SOURCES: tuple[str, ...] = (
    _SRC.UNKNOWN_MODEL.value,
    _SRC.NO_MODEL.value,
    _SRC.NO_USAGE.value,
    _SRC.INVALID_USAGE.value,
)
"""Model calls without a cost, each with the reason; listed by `spanhouse costs --unpriced`."""
MODEL_CALL_SOURCES: tuple[str, ...] = PRICED_SOURCES + UNPRICED_SOURCES

_MODEL_CALL_OPERATIONS = frozenset(MODEL_CALL_OPERATIONS)
_MODEL_CALL_SOURCES = frozenset(MODEL_CALL_SOURCES)


def is_model_call(operation: str, source: str) -> bool:
    """Whether a stored span, by its `gen_ai.operation.name` and `spanhouse.cost.source`, is a model call."""
    return source in _MODEL_CALL_SOURCES or (not source and operation in _MODEL_CALL_OPERATIONS)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def model_call_sql(prefix: str = "") -> str:
    """The rule as a ClickHouse condition on `genai_spans` columns (`prefix` qualifies them, e.g. `s.`)."""
    return (f"({_in(prefix + 'CostSource', MODEL_CALL_SOURCES)} OR ({prefix}CostSource = '' AND "
            f"{_in(prefix + 'Operation', MODEL_CALL_OPERATIONS)}))")


def unpriced_sql(prefix: str = "") -> str:
    """A model call without a cost, as a ClickHouse condition on `genai_spans` columns."""
    return _in(prefix + "CostSource", UNPRICED_SOURCES)
