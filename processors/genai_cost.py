"""`genai_cost`: prices every model-call span from its token counts.

Which spans are model calls is decided by `spanhouse.modelcalls`, the rule every view shares: a span
whose `gen_ai.operation.name` is `chat`, `text_completion`, `generate_content` or `embeddings`; or a
span with no operation or one the conventions do not define (`responses`, `rerank`, ...) that carries
token counts or a cost. A model call is priced from the model it names (`gen_ai.response.model`, else
`gen_ai.request.model`) and its token counts; a price override may match either (one for the response
model wins, then one for the requested model, then one for the model genai-prices identifies the response
model as, then genai-prices' price of the response model, then its price of the requested model when it
lists no price for the response model).

Agent, workflow, tool and the other operations of the conventions are not model calls: usage or a
cost they carry was summed from the calls below them, so they are marked
`spanhouse.cost.source = aggregated`, a reported cost is removed from them, and the cost of a trace
is the sum over its model calls. A remote `invoke_agent` (CLIENT) span is treated the same way:
whether it has priced descendants is only known once the whole trace is stored, which a processor
that sees batches cannot know.

One model call reported by two nested spans (an agent framework's instrumentation and the provider SDK's,
both on: each span a model call, the inner one the child of the outer, with the same token counts) is
priced once: the span seen second, normally the outer one, is marked `aggregated` and is not a model call
(see `spanhouse.modelcalls`).

Priced token kinds: uncached input, cache reads, cache writes, output and reasoning, plus audio and
image input, output and cache reads (`gen_ai.usage.audio.*`, `gen_ai.usage.image.*`), each at its own
rate where the price has one and at the rate of its total otherwise, exactly as genai-prices'
`calc_price`. A price override has text rates only: audio and image tokens are priced at them.

What a priced span gets: `spanhouse.cost.usd` (the total) with `spanhouse.cost.input_usd` (uncached
input, audio and image input included), `spanhouse.cost.output_usd`, `spanhouse.cost.cache_usd`
(when the span has cache tokens), `spanhouse.cost.reasoning_usd` (when the price has a reasoning
rate), `spanhouse.cost.source` (`computed` or `override`) and `spanhouse.cost.price_id`. Every other
model call gets the reason it has no cost, never $0: `unknown_model` (no price; also every call served by a
self-hosted runtime such as `ollama` or `vllm` that no override prices), `no_model` (token
counts but no model), `no_usage` (no token counts) or `invalid_usage` (a count that is not a whole
number from 0 to 10^10, or parts that add up to more than their total). A count sent as text
(`" 1000 "`) or as a float is written back as the int it was priced on, so the stored count and the
cost agree. A model call that already has a cost (reported by the SDK, or mapped by genai_normalize)
keeps it, marked `reported`, when it is a finite number >= 0; any other value (NaN, infinity, a
negative amount, text) is removed with a warning and the call priced as if none was sent. So is a
reported 0 for a call with tokens to a model that has a price: SDKs report 0 when they could not price
a call.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from spanhouse import semconv as sc
from spanhouse.component import ConfigIssue, Factory, Kind, Processor
from spanhouse.modelcalls import COST_PARTS, MODEL_CALL_OPERATIONS, NOT_MODEL_CALL_OPERATIONS
from spanhouse.otlp.values import describe
from spanhouse.pricing import Override, PriceBook, TokenUsage, parse_valid_from, self_hosted

log = logging.getLogger(__name__)

_MODEL_CALLS = frozenset(MODEL_CALL_OPERATIONS)
_SOURCE = sc.SpanhouseCostSourceValues
_MAX_LOGGED_MODELS = 1000
MAX_TOKENS_PER_CALL = 10**10
"""A larger token count in one call is taken as corrupt (`invalid_usage`), never priced."""
# the token counts of a span: the input and output totals, then their parts, in TokenUsage's field order
_USAGE_KEYS = (
    sc.GEN_AI_USAGE_INPUT_TOKENS,
    sc.GEN_AI_USAGE_OUTPUT_TOKENS,
    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
    sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS,
    sc.GEN_AI_USAGE_AUDIO_OUTPUT_TOKENS,
    sc.GEN_AI_USAGE_AUDIO_CACHE_READ_INPUT_TOKENS,
    sc.GEN_AI_USAGE_IMAGE_INPUT_TOKENS,
    sc.GEN_AI_USAGE_IMAGE_OUTPUT_TOKENS,
    sc.GEN_AI_USAGE_IMAGE_CACHE_READ_INPUT_TOKENS,
)
# a reported cost with its parts: removed together from a span that is not a model call, or when the
# total is not a cost
_COST_KEYS = (sc.SPANHOUSE_COST_USD, *COST_PARTS, sc.SPANHOUSE_COST_PRICE_ID)


@dataclass(frozen=True, kw_only=True)
class PriceOverrideConfig:
    """One user price, in USD per million tokens. Set `model` (exact, case-insensitive) or `regex`
    (Python syntax, must match the whole model name); a span's response model is tried first, then
    its requested model, then the model genai-prices identifies the response model as (`gpt-4o-mini` for
    `gpt-4o-mini-2024-07-18`; a span that names no provider is then of the provider genai-prices finds)."""

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


def _usd(value: Any) -> Any:
    """A reported cost: the value itself if it is a finite number >= 0, a float for a string that
    reads as one, None for anything else (NaN, infinity, a negative amount, text, a bool)."""
    t = type(value)
    if t is float:
        return value if value >= 0 and math.isfinite(value) else None
    if t is int:
        return value if value >= 0 else None
    if t is str:
        try:
            number = float(value)
        except ValueError:
            return None
        return number if number >= 0 and math.isfinite(number) else None
    return None


_ABSENT = object()
_WITH_USAGE = frozenset((_SOURCE.COMPUTED.value, _SOURCE.OVERRIDE.value, _SOURCE.REPORTED.value,
                         _SOURCE.UNKNOWN_MODEL.value))
_RECENT_CALLS = 20_000
"""Model calls remembered to find a call reported twice across batches (a few MB)."""


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
        # recent model calls with usage, to find one call reported by two nested spans:
        # (trace id, span id) → (parent span id, token counts), and (trace id, parent span id, token
        # counts) → span id
        self._calls: OrderedDict[tuple[str, str], tuple[str, tuple[int, int]]] = OrderedDict()
        self._children: dict[tuple[str, str, tuple[int, int]], str] = {}

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
                outcome = self._price(attrs, starts[i], batch, i)
                if outcome:
                    if outcome in _WITH_USAGE:
                        outcome = self._once(attrs, outcome, batch, i)
                    counts[outcome] += 1
        if counts:
            with self._lock:
                self.counts.update(counts)
        return batch

    def _price(self, attrs: dict[str, Any], start_ns: int, batch: Any, i: int) -> str | None:
        source = attrs.get(sc.SPANHOUSE_COST_SOURCE)
        if source is not None and source != _SOURCE.REPORTED.value:
            return None  # decided already (a span that went through genai_cost before)
        has_usage = sc.GEN_AI_USAGE_INPUT_TOKENS in attrs or sc.GEN_AI_USAGE_OUTPUT_TOKENS in attrs
        has_cost = sc.SPANHOUSE_COST_USD in attrs
        op = attrs.get(sc.GEN_AI_OPERATION_NAME)
        if type(op) is not str:
            op = ""  # a list or map sent as the operation names none
        if op not in _MODEL_CALLS:
            if not (has_usage or has_cost):
                return None  # no model call: an outer span that names its model, a tool without usage
            if op in NOT_MODEL_CALL_OPERATIONS:
                return self._aggregated(attrs, op, has_cost, batch, i)
        if has_cost:
            if self._reported(attrs, batch, i) and not (has_usage and self._unpriced_zero(attrs, start_ns, batch, i)):
                attrs[sc.SPANHOUSE_COST_SOURCE] = _SOURCE.REPORTED.value
                return _SOURCE.REPORTED.value
            attrs.pop(sc.SPANHOUSE_COST_SOURCE, None)
        if not has_usage:
            attrs[sc.SPANHOUSE_COST_SOURCE] = _SOURCE.NO_USAGE.value
            return _SOURCE.NO_USAGE.value
        usage = self._usage(attrs, batch, i)
        if usage is None:
            attrs[sc.SPANHOUSE_COST_SOURCE] = _SOURCE.INVALID_USAGE.value
            return _SOURCE.INVALID_USAGE.value
        requested = attrs.get(sc.GEN_AI_REQUEST_MODEL)
        model = attrs.get(sc.GEN_AI_RESPONSE_MODEL) or requested
        if not model or not isinstance(model, str):
            attrs[sc.SPANHOUSE_COST_SOURCE] = _SOURCE.NO_MODEL.value
            self._warn(batch, i, _SOURCE.NO_MODEL.value,
                       "a model call (operation %r) has token counts but names no model (%s or %s); its spans are "
                       "marked no_model and listed by `spanhouse costs --unpriced`",
                       op, sc.GEN_AI_RESPONSE_MODEL, sc.GEN_AI_REQUEST_MODEL)
            return _SOURCE.NO_MODEL.value
        provider = attrs.get(sc.GEN_AI_PROVIDER_NAME) or attrs.get(sc.GEN_AI_SYSTEM) or ""
        if not isinstance(provider, str):
            provider = str(provider)
        try:
            cost = self.book.price(provider, model, usage, start_ns, requested if type(requested) is str else "")
        except ValueError as exc:  # parts larger than their total: audio input above the input, ...
            attrs[sc.SPANHOUSE_COST_SOURCE] = _SOURCE.INVALID_USAGE.value
            self._warn(batch, i, "inconsistent-usage",
                       "the token counts of a %r call do not add up (%s); such spans are marked invalid_usage "
                       "and not priced", model, exc)
            return _SOURCE.INVALID_USAGE.value
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

    def _reported(self, attrs: dict[str, Any], batch: Any, i: int) -> bool:
        """Keep a reported cost that is a finite number ≥ 0 (a numeric string is stored as a number);
        remove one that is not, with its parts, so the span is priced from its tokens instead."""
        sent = attrs[sc.SPANHOUSE_COST_USD]
        usd = _usd(sent)
        if usd is None:
            for key in _COST_KEYS:
                attrs.pop(key, None)
            self._warn(batch, i, "invalid-cost",
                       "%s = %s is not a cost (a finite number >= 0 of US dollars); it is not kept: such spans "
                       "are priced from their token counts, or marked unpriced", sc.SPANHOUSE_COST_USD, describe(sent))
            return False
        if usd is not sent:
            attrs[sc.SPANHOUSE_COST_USD] = usd
        for key in COST_PARTS:
            part = attrs.get(key)
            if part is not None and _usd(part) is None:
                del attrs[key]
                self._warn(batch, i, "invalid-cost-part",
                           "%s = %s is not a cost (a finite number >= 0 of US dollars); it is removed, the "
                           "reported total is kept", key, describe(part))
        return True

    def _once(self, attrs: dict[str, Any], outcome: str, batch: Any, i: int) -> str:
        """One model call reported by two nested spans (an agent framework's and the provider SDK's
        instrumentation, both on): the span whose parent or child is a model call with the same token
        counts is marked `aggregated`, so the call is priced and counted once. The outer span is marked
        when the inner one came first (spans end, and are exported, inner first); otherwise the later."""
        tokens = (attrs.get(sc.GEN_AI_USAGE_INPUT_TOKENS, 0), attrs.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS, 0))
        if not (tokens[0] or tokens[1]):
            return outcome
        trace, span, parent = batch.trace_id[i], batch.span_id[i], batch.parent_span_id[i]
        with self._lock:
            twin = (trace, span, tokens) in self._children or (
                parent and self._calls.get((trace, parent), ("", None))[1] == tokens)
            if not twin:
                self._remember(trace, span, parent, tokens)
            elif parent:
                # a third span of the same call above this one (framework → library → SDK) is a twin too
                self._children[(trace, parent, tokens)] = span
        if not twin:
            return outcome
        for key in _COST_KEYS:
            attrs.pop(key, None)
        attrs[sc.SPANHOUSE_COST_SOURCE] = _SOURCE.AGGREGATED.value
        self._warn(batch, i, "nested-call",
                   "a model call is reported by two nested spans with the same token counts, as when an agent "
                   "framework and the provider SDK are both instrumented; one of them is marked aggregated so the "
                   "call is priced and counted once")
        return _SOURCE.AGGREGATED.value

    def _remember(self, trace: str, span: str, parent: str, tokens: tuple[int, int]) -> None:
        calls = self._calls
        calls[(trace, span)] = (parent, tokens)
        if parent:
            self._children[(trace, parent, tokens)] = span
        while len(calls) > _RECENT_CALLS:
            (old_trace, old_span), (old_parent, old_tokens) = calls.popitem(last=False)
            if old_parent and self._children.get((old_trace, old_parent, old_tokens)) == old_span:
                del self._children[(old_trace, old_parent, old_tokens)]

    def _unpriced_zero(self, attrs: dict[str, Any], start_ns: int, batch: Any, i: int) -> bool:
        """A reported cost of 0 for a call with tokens to a model that has a price is what an SDK
        reports when it could not price the call (LiteLLM for some Anthropic calls): the reported cost
        is removed, to be priced from the tokens. Other reported costs stay as sent."""
        if attrs[sc.SPANHOUSE_COST_USD] != 0:
            return False
        usage = self._usage(dict(attrs), batch, i)
        if usage is None or not (usage.input or usage.output):
            return False
        requested = attrs.get(sc.GEN_AI_REQUEST_MODEL)
        model = attrs.get(sc.GEN_AI_RESPONSE_MODEL) or requested
        if not model or not isinstance(model, str):
            return False
        provider = str(attrs.get(sc.GEN_AI_PROVIDER_NAME) or attrs.get(sc.GEN_AI_SYSTEM) or "")
        try:
            cost = self.book.price(provider, model, usage, start_ns, requested if type(requested) is str else "")
        except ValueError:
            return False
        if cost is None or cost.total == 0:
            return False
        for key in _COST_KEYS:
            attrs.pop(key, None)
        self._warn(batch, i, "zero-cost",
                   "a %r call with token counts was reported to cost 0 (%s), though the model has a price; "
                   "such calls are priced from their tokens", model, sc.SPANHOUSE_COST_USD)
        return True

    def _aggregated(self, attrs: dict[str, Any], op: str, has_cost: bool, batch: Any, i: int) -> str:
        """A span that is not a model call but carries usage or a cost: its calls are priced, it is not."""
        if has_cost:
            reported = attrs.get(sc.SPANHOUSE_COST_USD)
            for key in _COST_KEYS:
                attrs.pop(key, None)
            self._warn(batch, i, "aggregated-cost",
                       "a cost was reported on a %r span (here %s); it is removed and the span marked aggregated, "
                       "since a trace's cost is the sum over its model calls", op, describe(reported))
        attrs[sc.SPANHOUSE_COST_SOURCE] = _SOURCE.AGGREGATED.value
        return _SOURCE.AGGREGATED.value

    def _usage(self, attrs: dict[str, Any], batch: Any, i: int) -> TokenUsage | None:
        get = attrs.get
        values = []
        for key in _USAGE_KEYS:
            raw = get(key, _ABSENT)
            if raw is _ABSENT:
                values.append(0)
            elif type(raw) is int and 0 <= raw <= MAX_TOKENS_PER_CALL:
                values.append(raw)
            else:
                n = _count(raw)
                if n is None or n > MAX_TOKENS_PER_CALL:
                    self._log_bad(key, raw, batch, i)
                    return None
                attrs[key] = n  # " 1000 " or 1000.0: stored as the count it was priced on
                values.append(n)
        tin, tout, cache_read, cache_write, reasoning = values[:5]
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
        return TokenUsage(tin, tout, cache_read, cache_write, reasoning, *values[5:])

    def _log_unknown(self, provider: str, model: str) -> None:
        key = (provider, model)
        if key in self._logged or len(self._logged) >= _MAX_LOGGED_MODELS:
            return
        self._logged.add(key)
        if provider not in self.config.providers and self_hosted(provider):
            log.warning(
                "genai_cost: model %r is served by %r, a self-hosted runtime, which has no list price; its "
                "spans are marked unknown_model and listed by `spanhouse costs --unpriced`. Price it under "
                "processors::genai_cost::overrides (with provider: %s; 0 if it costs nothing per token).",
                model, provider, provider,
            )
            return
        log.warning(
            "genai_cost: no price for model %r (provider %r); its spans are marked unknown_model and "
            "listed by `spanhouse costs --unpriced`. Add a price under processors::genai_cost::overrides.",
            model,
            provider or "unknown",
        )

    def _log_bad(self, key: str, value: Any, batch: Any, i: int) -> None:
        self._warn(batch, i, f"bad-count {key}",
                   "%s = %s is not a token count (a whole number from 0 to %d); spans with such values are "
                   "marked invalid_usage and not priced", key, describe(value), MAX_TOKENS_PER_CALL)

    def _warn(self, batch: Any, i: int, reason: str, message: str, *args: Any) -> None:
        """Log `message` once per (service, reason): a problem is said once, not for every span."""
        service = str(batch.resource_attributes(i).get(sc.SERVICE_NAME, "") or "unknown")
        key = (service, "\0" + reason)  # beside the (provider, model) pairs of _log_unknown
        if key in self._logged or len(self._logged) >= _MAX_LOGGED_MODELS:
            return
        self._logged.add(key)
        log.warning("genai_cost: service %r: " + message, service, *args)


def new_factory() -> Factory:
    return Factory(
        kind=Kind.PROCESSOR,
        type="genai_cost",
        config=GenAiCostConfig,
        create=lambda settings, cfg: GenAiCost(cfg),
        stability="development",
    )
