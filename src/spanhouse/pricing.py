"""Prices for LLM calls: the `genai-prices` snapshot plus user overrides, looked up once per model.

`PriceBook.price(provider, model, usage, start_ns)` returns the cost of one model call, split into
uncached input, cache (reads + writes), output and reasoning, or None when the model has no price; it
raises ValueError for usage whose parts add up to more than their total.

Token semantics (the OpenTelemetry GenAI conventions): `input` is the total input, cache reads and
cache writes are parts of it; `output` is the total output, reasoning tokens are part of it. Audio and
image tokens are parts of the input and output too (and audio and image cache reads parts of the
cache reads). Each part is priced once, at its own rate where the price has one: cache tokens at the
cache rates, audio and image tokens at their modality rates, reasoning tokens at a reasoning rate;
a part whose rate the price lacks is priced with the total it belongs to (audio input at the input
rate, as genai-prices does). Parts that add up to more than their total (audio input above the
input) make the usage invalid (`ValueError`), as in genai-prices, rather than a negative price.

Prices from `genai-prices` are computed exactly as `genai_prices.calc_price` does (same unit
registry, same leaf decomposition, same `calc_unit_price`, Decimal arithmetic), but the price row of
a (provider, model) pair is found and prepared once and cached, so the hot path does a few Decimal
multiplications per span instead of a model search and a price-table validation.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from genai_prices import data_snapshot
from genai_prices.data_units import unit_data
from genai_prices.decompose import is_descendant_or_self
from genai_prices.types import ModelPrice, calc_unit_price
from genai_prices.units import UnitRegistry
from genai_prices.validation import validate_priced_units

from spanhouse import semconv as sc

log = logging.getLogger(__name__)

_P = sc.GenAiProviderNameValues
# OpenTelemetry `gen_ai.provider.name` values → genai-prices provider ids, where they differ or where
# genai-prices' own provider matching would pick the wrong one (`azure.ai.openai` contains "openai").
PROVIDER_IDS: Mapping[str, str] = {
    _P.OPENAI.value: "openai",
    _P.ANTHROPIC.value: "anthropic",
    _P.GCP_GEN_AI.value: "google",
    _P.GCP_VERTEX_AI.value: "google",
    _P.GCP_GEMINI.value: "google",
    _P.COHERE.value: "cohere",
    _P.AZURE_AI_INFERENCE.value: "azure",
    _P.AZURE_AI_OPENAI.value: "azure",
    _P.AWS_BEDROCK.value: "aws",
    _P.PERPLEXITY.value: "perplexity",
    _P.X_AI.value: "x-ai",
    _P.DEEPSEEK.value: "deepseek",
    _P.GROQ.value: "groq",
    _P.MISTRAL_AI.value: "mistral",
    _P.MOONSHOT_AI.value: "moonshotai",
}

# `gen_ai.provider.name` (or `gen_ai.system`) values of runtimes that serve models on the application's
# own hardware. Their calls have no list price: a model name such as `deepseek-r1:8b` would otherwise be
# matched to a cloud API's price (DeepSeek's own, for a distilled 8B model run locally), so only price
# overrides apply to them. Compared lower-cased, with `-`, ` ` and `.` read as `_`.
SELF_HOSTED_PROVIDERS = frozenset({
    "ollama", "vllm", "lm_studio", "lmstudio", "llama_cpp", "llamacpp", "llamafile", "localai", "local_ai",
    "tgi", "text_generation_inference", "sglang", "triton", "xinference", "koboldcpp", "gpt4all", "mlx",
    "mlx_lm", "openllm",
})
_SEPARATORS = str.maketrans({"-": "_", " ": "_", ".": "_"})


def self_hosted(provider: str) -> bool:
    """True for a provider name that is a self-hosted model runtime (`ollama`, `vllm`, `llama.cpp`, ...)."""
    return provider.strip().lower().translate(_SEPARATORS) in SELF_HOSTED_PROVIDERS


_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)
_MAX_ENTRIES = 20_000
_MAX_MODEL_LENGTH = 512

_REQUESTS = "requests"


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Token counts of one model call, with `input` and `output` as totals (parts included): cache
    reads and writes and audio and image input are parts of `input`; reasoning and audio and image
    output parts of `output`; audio and image cache reads parts of `cache_read` and of their modality."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0
    audio_input: int = 0
    audio_output: int = 0
    audio_cache_read: int = 0
    image_input: int = 0
    image_output: int = 0
    image_cache_read: int = 0


# The usage keys of genai-prices' unit registry that span attributes fill → the TokenUsage field.
USAGE_FIELDS: Mapping[str, str] = {
    "input_tokens": "input",
    "output_tokens": "output",
    "cache_read_tokens": "cache_read",
    "cache_write_tokens": "cache_write",
    "output_reasoning_tokens": "reasoning",
    "input_audio_tokens": "audio_input",
    "output_audio_tokens": "audio_output",
    "cache_audio_read_tokens": "audio_cache_read",
    "input_image_tokens": "image_input",
    "output_image_tokens": "image_output",
    "cache_image_read_tokens": "image_cache_read",
}


@dataclass(frozen=True, slots=True)
class Cost:
    """The cost of one model call in USD. `total` includes per-request fees, which no part holds;
    `reasoning` is None when the price has no separate reasoning rate."""

    total: Decimal
    input: Decimal
    output: Decimal
    cache: Decimal
    reasoning: Decimal | None
    source: str
    price_id: str


@dataclass(frozen=True, slots=True)
class Override:
    """A user price (USD per million tokens) for models matching `model` exactly (case-insensitively)
    or `regex` (full match), optionally only for one provider, from `valid_from` (UTC midnight) on."""

    name: str
    model: str = ""
    regex: re.Pattern[str] | None = None
    provider: str = ""
    input: Decimal = _ZERO
    output: Decimal = _ZERO
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    reasoning: Decimal | None = None
    valid_from: date | None = None
    valid_from_ns: int = -1

    def __post_init__(self) -> None:
        if self.valid_from is not None:
            midnight = datetime(self.valid_from.year, self.valid_from.month, self.valid_from.day, tzinfo=UTC)
            object.__setattr__(self, "valid_from_ns", int(midnight.timestamp()) * 1_000_000_000)

    def matches(self, provider: str, provider_id: str, model: str) -> bool:
        if self.provider and self.provider.lower() not in (provider.lower(), provider_id):
            return False
        if self.regex is not None:
            return self.regex.fullmatch(model) is not None
        return self.model.lower() == model.lower()

    def cost(self, usage: TokenUsage) -> Cost:
        """Audio and image tokens are priced at the text rates: an override has no modality rates."""
        cache_read_rate = self.input if self.cache_read is None else self.cache_read
        cache_write_rate = self.input if self.cache_write is None else self.cache_write
        uncached = usage.input - usage.cache_read - usage.cache_write
        input_usd = Decimal(uncached) * self.input / _MILLION
        cache_usd = (
            Decimal(usage.cache_read) * cache_read_rate + Decimal(usage.cache_write) * cache_write_rate
        ) / _MILLION
        if self.reasoning is None:
            output_usd, reasoning_usd = Decimal(usage.output) * self.output / _MILLION, None
        else:
            output_usd = Decimal(usage.output - usage.reasoning) * self.output / _MILLION
            reasoning_usd = Decimal(usage.reasoning) * self.reasoning / _MILLION
        total = input_usd + cache_usd + output_usd + (reasoning_usd or _ZERO)
        return Cost(
            total,
            input_usd,
            output_usd,
            cache_usd,
            reasoning_usd,
            sc.SpanhouseCostSourceValues.OVERRIDE.value,
            f"override/{self.name}",
        )


class _Rates:
    """One genai-prices price row, prepared: its priced units in decomposition order (most specific
    first, as genai-prices orders them), each with the priced units below it and the part it counts in."""

    __slots__ = ("units", "tiered", "has_reasoning_rate")

    def __init__(self, model_price: ModelPrice, registry: UnitRegistry):
        priced = []
        for key, value in model_price.__dict__.items():
            if key.startswith("_") or value is None:
                continue
            try:
                priced.append((registry.unit_for_price_key(key), value))
            except KeyError:  # a price key this genai-prices version does not know; it skips it too
                continue
        validate_priced_units(tuple(u for u, _ in priced), registry)
        priced.sort(key=lambda up: (-len(up[0].dimensions), up[0].usage_key))
        units = []
        for unit, price in priced:
            below = tuple(o.usage_key for o, _ in priced if o is not unit and is_descendant_or_self(unit, o))
            field = USAGE_FIELDS.get(unit.usage_key)  # None: a unit spans do not report (web searches, ...)
            units.append((unit.usage_key, field, price, unit.per, below, _part(unit.dimensions)))
        self.units = tuple(units)
        self.tiered = any(not isinstance(p, Decimal) for _, _, p, *_ in units)
        self.has_reasoning_rate = any(part == "reasoning" for *_, part in units)

    def cost(self, usage: TokenUsage, price_id: str) -> Cost:
        """Raises ValueError when the parts of a count exceed it (genai-prices refuses such usage too)."""
        leaves: dict[str, int] = {}
        parts = {"input": _ZERO, "output": _ZERO, "cache": _ZERO, "reasoning": _ZERO, "other": _ZERO}
        total = _ZERO
        for key, field, price, per, below, part in self.units:
            if key == _REQUESTS:
                count = 1
            else:
                count = getattr(usage, field) if field else 0
                for b in below:
                    count -= leaves[b]
                if count < 0:
                    raise ValueError(f"the parts of {key} add up to {-count} more than its count")
            leaves[key] = count
            if count:
                value = calc_unit_price(price, count, usage.input, per)
                parts[part] += value
                total += value
        return Cost(
            total,
            parts["input"],
            parts["output"],
            parts["cache"],
            parts["reasoning"] if self.has_reasoning_rate else None,
            sc.SpanhouseCostSourceValues.COMPUTED.value,
            price_id,
        )


def _part(dimensions: Mapping[str, str]) -> str:
    if dimensions.get("family") != "tokens":
        return "other"
    token_type = dimensions.get("token_type")
    if token_type in ("cache_read", "cache_write"):
        return "cache"
    direction = dimensions.get("direction")
    if direction == "output":
        return "reasoning" if token_type == "reasoning" else "output"
    return "input" if direction == "input" else "other"


class _Entry:
    """What is known about one (provider, model) pair: the overrides that may apply (newest
    `valid_from` first), those that name the model as genai-prices identifies it (`identified`: tried
    after the requested model's), and the genai-prices model, if any."""

    __slots__ = ("overrides", "model", "price_id", "static_rates", "identified")

    def __init__(
        self, overrides: tuple[Override, ...], model: Any, price_id: str, static_rates: _Rates | None,
        identified: tuple[Override, ...] = (),
    ):
        self.overrides = overrides
        self.model = model
        self.price_id = price_id
        self.static_rates = static_rates
        self.identified = identified


class PriceBook:
    """Finds the price of a model call: an override valid at the span's start time wins (one matching
    the response model, then one matching the requested model, then one matching the model genai-prices
    identifies the response model as: `gpt-4o-mini` for `gpt-4o-mini-2024-07-18`, of the provider
    genai-prices finds when the span names none), then the genai-prices snapshot
    (historic rows chosen by the span's start time). A call served by a self-hosted runtime
    (`SELF_HOSTED_PROVIDERS`, unless `provider_ids` maps that name) is priced by overrides only.
    Thread-safe; lookups are cached per (provider, model) and the cache is dropped when the
    genai-prices snapshot changes."""

    def __init__(self, overrides: Sequence[Override] = (), provider_ids: Mapping[str, str] | None = None):
        # Stable sort: among overrides with the same valid_from, the first configured wins.
        self._overrides = tuple(sorted(overrides, key=lambda o: o.valid_from or date.min, reverse=True))
        self._provider_ids = {**PROVIDER_IDS, **(provider_ids or {})}
        self._registry = UnitRegistry(unit_data)
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._by_request: dict[tuple[str, str], tuple[Override, ...]] = {}
        self._rates: dict[int, tuple[ModelPrice, _Rates | None]] = {}
        self._snapshot = data_snapshot.get_snapshot()

    def refresh(self) -> None:
        """Drop cached lookups if genai-prices' data changed (its optional updater swaps snapshots)."""
        snapshot = data_snapshot.get_snapshot()
        if snapshot is not self._snapshot:
            with self._lock:
                self._snapshot = snapshot
                self._entries = {}
                self._rates = {}

    def provider_id(self, provider: str) -> str:
        return self._provider_ids.get(provider, provider.lower())

    def price(
        self, provider: str, model: str, usage: TokenUsage, start_ns: int, request_model: str = ""
    ) -> Cost | None:
        """The cost of a call to `model` (the response model, else the requested one). An override
        matching `model` wins, then one matching `request_model` (real traffic asks for `gpt-4o` and
        is answered by `gpt-4o-2024-08-06`), then genai-prices' price of `model`, then its price of
        `request_model`. Last among the overrides, one for the model genai-prices identifies `model` as
        (Langfuse's OpenAI wrapper sends only the dated response model, and no provider)."""
        entry = self._entries.get((provider, model))
        if entry is None:
            entry = self._lookup(provider, model)
        override = _valid(entry.overrides, start_ns)
        if override is None and request_model and request_model != model and self._overrides:
            override = _valid(self._requested_overrides(provider, request_model), start_ns)
        if override is None and entry.identified:
            override = _valid(entry.identified, start_ns)
        if override is not None:
            return override.cost(usage)
        if entry.model is None and request_model and request_model != model:
            # a response model genai-prices does not list (a dated or regional variant) is priced as
            # the model asked for, when that one has a price
            entry = self._entries.get((provider, request_model)) or self._lookup(provider, request_model)
        if entry.model is None:
            return None
        rates = entry.static_rates
        if rates is None:
            when = datetime.fromtimestamp(start_ns / 1e9, UTC) if start_ns > 0 else datetime.now(UTC)
            rates = self._prepared(entry.model.get_prices(when))
            if rates is None:
                return None
        return rates.cost(usage, entry.price_id)

    def _matching(self, provider: str, model: str) -> tuple[Override, ...]:
        provider_id = self.provider_id(provider) if provider else ""
        return tuple(o for o in self._overrides if o.matches(provider, provider_id, model[:_MAX_MODEL_LENGTH]))

    def _requested_overrides(self, provider: str, model: str) -> tuple[Override, ...]:
        """The overrides matching a requested model (no genai-prices lookup: its price is not used)."""
        found = self._by_request.get((provider, model))
        if found is None:
            found = self._matching(provider, model)
            with self._lock:
                if len(self._by_request) >= _MAX_ENTRIES:
                    self._by_request = {}
                self._by_request[(provider, model)] = found
        return found

    def _lookup(self, provider: str, model: str) -> _Entry:
        provider_id = self.provider_id(provider) if provider else ""
        ref = model[:_MAX_MODEL_LENGTH]
        overrides = self._matching(provider, model)
        local = provider not in self._provider_ids and self_hosted(provider)
        found = None if local else self._find(provider_id, ref)
        static = None
        price_id = ""
        identified: tuple[Override, ...] = ()
        if found is not None:
            gp_provider, gp_model = found
            price_id = f"{gp_provider.id}/{gp_model.id}"
            if not overrides and self._overrides:
                identified = self._matching(provider or gp_provider.id, gp_model.id)
            if isinstance(gp_model.prices, ModelPrice):
                static = self._prepared(gp_model.prices)
                if static is None:
                    found = None
        entry = _Entry(overrides, found[1] if found else None, price_id, static, identified)
        with self._lock:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries = {}
            self._entries[(provider, model)] = entry
        return entry

    def _find(self, provider_id: str, model: str) -> tuple[Any, Any] | None:
        """genai-prices' match for the pair; a provider it does not know, or that does not list the
        model (an OpenAI-compatible API serving another vendor's model), falls back to matching by
        the model name alone."""
        snapshot = self._snapshot
        for pid in (provider_id, None) if provider_id else (None,):
            try:
                return snapshot.find_provider_model(model, None, pid, None)
            except LookupError:
                continue
        return self._listed_once(model)

    def _listed_once(self, model: str) -> tuple[Any, Any] | None:
        """The providers that list `model` by name (genai-prices matches a model without a provider
        only through each provider's name patterns, which miss e.g. `text-embedding-3-small`): their
        entry when they all charge the same (Azure mirrors OpenAI), else None, since guessing between
        different prices would make the cost up."""
        snapshot = self._snapshot
        ref = model.lower()
        listed = []
        for p in snapshot.providers:
            try:
                found = p.find_model(ref, all_providers=snapshot.providers)
            except Exception:  # a provider entry genai-prices itself cannot evaluate for this name
                continue
            if found is not None:
                listed.append((p, found))
        if listed and all(m.prices == listed[0][1].prices for _, m in listed[1:]):
            return listed[0]
        return None

    def _prepared(self, model_price: ModelPrice) -> _Rates | None:
        key = id(model_price)
        cached = self._rates.get(key)
        if cached is not None and cached[0] is model_price:
            return cached[1]
        try:
            rates: _Rates | None = _Rates(model_price, self._registry)
        except ValueError as exc:
            log.warning(
                "genai-prices price row %r cannot be used (%s); its model is treated as unpriced",
                model_price,
                exc,
            )
            rates = None
        with self._lock:
            self._rates[key] = (model_price, rates)
        return rates


def _valid(overrides: tuple[Override, ...], start_ns: int) -> Override | None:
    """The first of `overrides` (newest `valid_from` first) that applies at `start_ns`."""
    for override in overrides:
        if override.valid_from_ns <= start_ns:
            return override
    return None


def parse_valid_from(value: Any) -> date:
    """A `valid_from` value from YAML: a date, a datetime (its UTC date) or an ISO `YYYY-MM-DD` string."""
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected a date like 2025-01-31, got {value!r}")
