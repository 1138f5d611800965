"""`genai_cost`: prices every model-call span from its token counts.

Which spans are priced: a span whose `gen_ai.operation.name` is a model call (`chat`,
`text_completion`, `generate_content`, `embeddings`), or that has no operation, and that names a
model (`gen_ai.response.model`, else `gen_ai.request.model`) and carries token counts. Agent,
workflow, tool and other spans that carry usage aggregated from the calls below them are not priced
(`spanhouse.cost.source = aggregated`), so the cost of a trace is the sum over its model calls.
A remote `invoke_agent` (CLIENT) span is treated the same way: whether it has priced descendants is
only known once the whole trace is stored, which a processor that sees batches cannot know.

What a priced span gets: `spanhouse.cost.usd` (the total) with `spanhouse.cost.input_usd` (uncached
input), `spanhouse.cost.output_usd`, `spanhouse.cost.cache_usd` (when the span has cache tokens),
`spanhouse.cost.reasoning_usd` (when the price has a reasoning rate), `spanhouse.cost.source`
(`computed` or `override`) and `spanhouse.cost.price_id`. A model without a price gets no cost and
`unknown_model`, never $0; a model call without token counts gets `no_usage`. A span that already
has a cost (reported by the SDK, or mapped by genai_normalize) keeps it, marked `reported`.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from spanhouse import semconv as sc
from spanhouse.component import ConfigIssue, Factory, Kind, Processor
from spanhouse.pricing import Override, PriceBook, TokenUsage, parse_valid_from

log = logging.getLogger(__name__)

_OP = sc.GenAiOperationNameValues
MODEL_CALLS = frozenset(
    {_OP.CHAT.value, _OP.TEXT_COMPLETION.value, _OP.GENERATE_CONTENT.value, _OP.EMBEDDINGS.value}
)
_SOURCE = sc.SpanhouseCostSourceValues
_MAX_LOGGED_MODELS = 1000


@dataclass(frozen=True, kw_only=True)
class PriceOverrideConfig:
    """One user price, in USD per million tokens. Set `model` (exact, case-insensitive) or `regex`
    (Python syntax, must match the whole model name)."""

    name: str = ""
    """Label recorded in `spanhouse.cost.price_id` as `override/<name>` [default: the model or regex]."""
    model: str = ""
    regex: str = ""
    provider: str = ""
    """Only for spans of this provider (`gen_ai.provider.name`, or the genai-prices provider id)."""
    input: float | None = None
    """Uncached input tokens. Required."""
    output: float | None = None
    """Output tokens (reasoning included unless `reasoning` is set). Required."""
    cache_read: float | None = None
    """Cache-read input tokens [default: the input price]."""
    cache_write: float | None = None
    """Cache-write input tokens [default: the input price]."""
    reasoning: float | None = None
    """Reasoning output tokens [default: priced as output]."""
    valid_from: Any = None
    """First day (UTC, `YYYY-MM-DD`) the price applies to, by span start time [default: always]."""

    def validate(self) -> Iterator[ConfigIssue]:
        if bool(self.model) == bool(self.regex):
            yield ConfigIssue(None, "set exactly one of model (an exact model name) or regex")
        if self.regex:
            try:
                re.compile(self.regex)
            except re.error as exc:
                yield ConfigIssue("regex", f"{self.regex!r} is not a valid regular expression: {exc}")
        for name in ("input", "output", "cache_read", "cache_write", "reasoning"):
            value = getattr(self, name)
            if value is None:
                if name in ("input", "output"):
                    yield ConfigIssue(name, "is required: USD per million tokens, e.g. 2.5 (0 for free)")
            elif not math.isfinite(value) or value < 0:
                yield ConfigIssue(
                    name, f"must be a non-negative number of USD per million tokens, got {value!r}"
                )
        if self.valid_from is not None:
            try:
                parse_valid_from(self.valid_from)
            except ValueError as exc:
                yield ConfigIssue("valid_from", str(exc))

    def build(self) -> Override:
        def rate(value: float | None) -> Decimal | None:
            return None if value is None else Decimal(repr(value))

        return Override(
            name=self.name or self.model or self.regex,
            model=self.model,
            regex=re.compile(self.regex) if self.regex else None,
            provider=self.provider,
            input=rate(self.input) or Decimal(0),
            output=rate(self.output) or Decimal(0),
            cache_read=rate(self.cache_read),
            cache_write=rate(self.cache_write),
            reasoning=rate(self.reasoning),
            valid_from=parse_valid_from(self.valid_from) if self.valid_from is not None else None,
        )


@dataclass(frozen=True, kw_only=True)
class GenAiCostConfig:
    overrides: list[PriceOverrideConfig] = field(default_factory=list)
    """User prices; they win over genai-prices for the spans they match (newest valid_from first)."""
    providers: dict[str, str] = field(default_factory=dict)
    """Extra `gen_ai.provider.name` → genai-prices provider id mappings, e.g. {my-gateway: openai}."""
    update_prices: bool = False
    """Start genai-prices' updater, which DOWNLOADS fresh price data over the network at start and
    hourly. Off by default: prices come from the snapshot bundled with the installed genai-prices."""

    def validate(self) -> Iterator[ConfigIssue]:
        for key, value in self.providers.items():
            if not value.strip():
                yield ConfigIssue(f"providers::{key}", "needs a genai-prices provider id such as openai")


def _count(value: Any) -> int | None:
    """A token count as a non-negative int; None for a value that is not one."""
    if type(value) is int:
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value >= 0 and value.is_integer() else None
    if isinstance(value, str):
        try:
            n = int(value.strip())
        except ValueError:
            return None
        return n if n >= 0 else None
    return None


_ABSENT = object()


class GenAiCost(Processor):
    """Prices model-call spans in place (see the module docstring for the rules).

    Guarantees: a span is priced at most once (a span that already has a cost or a cost source is left
    as it is); cache and reasoning tokens are parts of the input and output totals, priced at their own
    rates and never counted twice; a negative uncached remainder is never clamped: the input (or
    output) count is treated as excluding the parts, corrected on the span and flagged; a model
    without a price is marked `unknown_model`, counted in `counts` and logged once, and has no cost.
    """

    def __init__(self, config: GenAiCostConfig):
        self.config = config
        self.book = PriceBook([o.build() for o in config.overrides], config.providers)
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._logged: set[tuple[str, str]] = set()
        self._updater: Any = None

    def start(self, host: Any) -> None:
        if self.config.update_prices:
            from genai_prices import UpdatePrices

            self._updater = UpdatePrices()
            self._updater.start()
            log.info("genai_cost: genai-prices updater started; it downloads price data at start and hourly")

    def shutdown(self, timeout: float = 10.0) -> None:
        if self._updater is not None:
            self._updater.stop()
            self._updater = None

    def process(self, batch: Any) -> Any:
        self.book.refresh()
        counts: Counter[str] = Counter()
        starts = batch.start_time_unix_nano
        for i, attrs in enumerate(batch.attributes):
            if attrs:
                outcome = self._price(attrs, starts[i])
                if outcome:
                    counts[outcome] += 1
        if counts:
            with self._lock:
                self.counts.update(counts)
        return batch

    def _price(self, attrs: dict[str, Any], start_ns: int) -> str | None:
        if sc.SPANHOUSE_COST_SOURCE in attrs:
            return None
        if sc.SPANHOUSE_COST_USD in attrs:
            attrs[sc.SPANHOUSE_COST_SOURCE] = _SOURCE.REPORTED.value
            return _SOURCE.REPORTED.value
        model = attrs.get(sc.GEN_AI_RESPONSE_MODEL) or attrs.get(sc.GEN_AI_REQUEST_MODEL)
        if not model or not isinstance(model, str):
            return None
        raw_in = attrs.get(sc.GEN_AI_USAGE_INPUT_TOKENS, _ABSENT)
        raw_out = attrs.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS, _ABSENT)
        has_usage = raw_in is not _ABSENT or raw_out is not _ABSENT
        op = attrs.get(sc.GEN_AI_OPERATION_NAME)
        if op and type(op) is str and op not in MODEL_CALLS:
            if not has_usage:
                return None
            attrs[sc.SPANHOUSE_COST_SOURCE] = _SOURCE.AGGREGATED.value
            return _SOURCE.AGGREGATED.value
        usage = self._usage(attrs, raw_in, raw_out, model) if has_usage else None
        if usage is None:
            attrs[sc.SPANHOUSE_COST_SOURCE] = _SOURCE.NO_USAGE.value
            return _SOURCE.NO_USAGE.value
        provider = attrs.get(sc.GEN_AI_PROVIDER_NAME) or attrs.get(sc.GEN_AI_SYSTEM) or ""
        if not isinstance(provider, str):
            provider = str(provider)
        cost = self.book.price(provider, model, usage, start_ns)
        if cost is None:
            attrs[sc.SPANHOUSE_COST_SOURCE] = _SOURCE.UNKNOWN_MODEL.value
            self._log_unknown(provider, model)
            return _SOURCE.UNKNOWN_MODEL.value
        attrs[sc.SPANHOUSE_COST_USD] = float(cost.total)
        attrs[sc.SPANHOUSE_COST_INPUT_USD] = float(cost.input)
        attrs[sc.SPANHOUSE_COST_OUTPUT_USD] = float(cost.output)
        if usage.cache_read or usage.cache_write:
            attrs[sc.SPANHOUSE_COST_CACHE_USD] = float(cost.cache)
        if cost.reasoning is not None and usage.reasoning:
            attrs[sc.SPANHOUSE_COST_REASONING_USD] = float(cost.reasoning)
        attrs[sc.SPANHOUSE_COST_SOURCE] = cost.source
        attrs[sc.SPANHOUSE_COST_PRICE_ID] = cost.price_id
        return cost.source

    def _usage(self, attrs: dict[str, Any], raw_in: Any, raw_out: Any, model: str) -> TokenUsage | None:
        values = []
        for key, raw in (
            (sc.GEN_AI_USAGE_INPUT_TOKENS, raw_in),
            (sc.GEN_AI_USAGE_OUTPUT_TOKENS, raw_out),
            (sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, attrs.get(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, 0)),
            (
                sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
                attrs.get(sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, 0),
            ),
            (sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, attrs.get(sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, 0)),
        ):
            n = 0 if raw is _ABSENT else _count(raw)
            if n is None:
                self._log_bad(key, raw, model)
                return None
            values.append(n)
        tin, tout, cache_read, cache_write, reasoning = values
        if cache_read + cache_write > tin:
            # The source sent the uncached part only; clamping the remainder to 0 would bill the
            # uncached tokens at $0, so the parts are added back and the span says so.
            tin += cache_read + cache_write
            attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = tin
            attrs[sc.SPANHOUSE_USAGE_INPUT_INCLUDES_CACHE_ADJUSTED] = True
        if reasoning > tout:
            tout += reasoning
            attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = tout
            attrs[sc.SPANHOUSE_USAGE_OUTPUT_INCLUDES_REASONING_ADJUSTED] = True
        return TokenUsage(tin, tout, cache_read, cache_write, reasoning)

    def _log_unknown(self, provider: str, model: str) -> None:
        key = (provider, model)
        if key in self._logged or len(self._logged) >= _MAX_LOGGED_MODELS:
            return
        self._logged.add(key)
        log.warning(
            "genai_cost: no price for model %r (provider %r); its spans are marked unknown_model and "
            "listed by `spanhouse costs --unpriced`. Add a price under processors::genai_cost::overrides.",
            model,
            provider or "unknown",
        )

    def _log_bad(self, key: str, value: Any, model: str) -> None:
        marker = ("bad-count", key)
        if marker in self._logged:
            return
        self._logged.add(marker)
        log.warning(
            "genai_cost: %s = %r is not a token count; spans with such values (here model %r) are "
            "marked no_usage and not priced",
            key,
            value,
            model,
        )


def new_factory() -> Factory:
    return Factory(
        kind=Kind.PROCESSOR,
        type="genai_cost",
        config=GenAiCostConfig,
        create=lambda settings, cfg: GenAiCost(cfg),
        stability="development",
    )
