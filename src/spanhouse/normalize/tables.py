"""Mapping specs compiled into dispatch tables, once, at processor start.

Every rule becomes a `Handler` filed under the exact foreign key it reads (`Tables.exact`), or a
`Family` for indexed keys (`<prefix>.<i>.<sub.path>`), whose layout is precompiled so that one cached
lookup per key says where its value goes. Value conversions are functions built here (a plain rename
calls the registry type's coercer directly). Ranks order candidates: (tier, file precedence, rule
order), lower wins; tier 0 is an attribute, 1 a fallback I/O attribute, 2 a span event, 3 the span name.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable
from typing import Any

from spanhouse import semconv as sc
from spanhouse.normalize import formats as fm
from spanhouse.normalize.coerce import COERCERS, INVALID, lookup, mapped, whole_int
from spanhouse.normalize.events import convert_events
from spanhouse.normalize.paths import get_path, sum_paths
from spanhouse.normalize.spec import (
    ComposeRule,
    EventSpec,
    FamilyRule,
    Mappings,
    ObjectField,
    ObjectRule,
    Rule,
    Source,
    SumRule,
    ValueMap,
)

# handler kinds
RENAME, MULTI, OBJECT, OPER, PRESENT, COMBINE, COMPOSE, FIX, MARK, BARE, EVAL, SUM = range(12)
NONE = object()  # an operation rule that says "not a GenAI operation"
EVENT_TARGETS = (
    sc.GEN_AI_INPUT_MESSAGES,
    sc.GEN_AI_SYSTEM_INSTRUCTIONS,
    sc.GEN_AI_OUTPUT_MESSAGES,
    sc.GEN_AI_RESPONSE_FINISH_REASONS,
)
_MULTI_FORMATS = frozenset({"chat", "text", "vercel_prompt", "events"})
_FAMILY_CACHE_SIZE = 65_536
_TIER = 10_000_000


class Uncached(int):
    """An input token count that excludes cache tokens (Langfuse `input`); fixed after resolution."""


class Handler:
    """A compiled rule filed under the key it reads. `file` decides presence (weak rules), `src` is
    the `normalized_from` credit, `only` the operations it applies on, `fn` converts the value."""

    __slots__ = ("kind", "file", "src", "rank", "weak", "only", "drop", "decode", "target", "fn", "data")

    def __init__(
        self,
        kind: int,
        file: int,
        src: int,
        rank: int,
        *,
        weak: bool = False,
        only: frozenset[str] | None = None,
        drop: bool = True,
        decode: bool = False,
        target: str = "",
        fn: Callable | None = None,
        data: Any = None,
    ):
        self.kind, self.file, self.src, self.rank = kind, file, src, rank
        self.weak, self.only, self.drop, self.decode = weak, only, drop, decode
        self.target, self.fn, self.data = target, fn, data


class Family:
    """An indexed family with its item layout precompiled: `scalars` maps a sub-path (`message.role`)
    to an item field; `lists` holds (sub-path prefix, list field, {leaf path: field}); `paths` is the
    same layout as path tuples, for families sent whole."""

    __slots__ = ("rule", "file", "src", "rank", "decode", "scalars", "lists", "paths")

    def __init__(self, rule: FamilyRule, file: int, src: int, rank: int, decode: bool):
        self.rule, self.file, self.src, self.rank, self.decode = rule, file, src, rank, decode
        self.scalars = {path: name for name, path in rule.item.items()}
        self.lists = [
            (lst.path + ".", name, {p: f for f, p in lst.item.items()}) for name, lst in rule.lists.items()
        ]
        self.paths = (
            [(name, tuple(p.split("."))) for name, p in rule.item.items()],
            [
                (name, tuple(lst.path.split(".")), [(f, tuple(p.split("."))) for f, p in lst.item.items()])
                for name, lst in rule.lists.items()
            ],
        )

    def locate(self, rest: str) -> tuple[int, str | None, int, str] | None:
        """(item index, list field or None, list index, field) for `<i>.<sub.path>`, or None when the
        layout does not name that sub-path."""
        index, _, sub = rest.partition(".")
        if not index.isdigit():
            return None
        field = self.scalars.get(sub)
        if field is not None:
            return int(index), None, 0, field
        for prefix, name, fields in self.lists:
            if sub.startswith(prefix):
                j, _, leaf = sub[len(prefix) :].partition(".")
                if j.isdigit() and leaf in fields:
                    return int(index), name, int(j), fields[leaf]
        return None


class Tables:
    """The compiled form of the enabled mappings: what the engine looks up per key and per span."""

    def __init__(self, mappings: Mappings, conventions: Iterable[str] | None = None,
                 span_events: bool = True):
        wanted = set(conventions) if conventions else None
        self.sources: list[Source] = [s for s in mappings.sources if wanted is None or s.name in wanted]
        self.formats = fm.Formats(mappings.value_maps.get("role"), mappings.value_maps.get("finish_reason"),
                                  mappings.value_maps.get("provider"))
        # where a span names its provider (canonical keys first), for `provider_model`
        self.provider_keys: tuple[str, ...] = (sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_SYSTEM) + tuple(dict.fromkeys(
            r.key for src in self.sources for r in src.rules if r.to == sc.GEN_AI_PROVIDER_NAME))
        self.src_names: list[str] = []
        self.exact: dict[str, list[Handler]] = {}
        self.families: list[Family] = []
        self.span_ops: dict[str, tuple[int, Any, int, int]] = {}
        # `name*` span-name operation rules: (prefix, rank, operation or NONE, src, file)
        self.span_prefixes: list[tuple[str, int, Any, int, int]] = []
        # file index → [(target, only, rank, src)]: the span's name as a canonical value
        self.span_name_rules: dict[int, list[tuple[str, frozenset[str] | None, int, int]]] = {}
        self.infer: list[tuple[str, tuple[str, ...]]] = []
        self.infer_src = -1
        self.composes: list[tuple[ComposeRule, int, int, bool]] = []
        self.resource_rules: list[tuple[str, str]] = []
        self.event_spec: EventSpec | None = next((s.events for s in self.sources if s.events), None)
        self.event_src = -1
        self.event_rank = 0
        for file_index, src in enumerate(self.sources):
            self._compile(file_index, src)
        for key in (sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS):
            self._add(key, Handler(MARK, -1, -1, 0, weak=True))  # so spans with cache counts are checked
        self.prefixes = tuple(f.rule.prefix + "." for f in self.families)
        self.family_cache: dict[str, tuple[int, tuple] | None] = {}
        self.light = frozenset(k for k, hs in self.exact.items() if all(h.kind in (MARK, FIX) for h in hs))
        self.light_unless = self._light_unless()
        self.event_kinds = frozenset(self.event_spec.kinds if self.event_spec and span_events else ())

    def family_of(self, key: str) -> tuple[int, tuple] | None:
        """(family index, where the key goes in the family's items) for a key under an indexed prefix
        whose sub-path the layout names; cached, because the same keys recur span after span."""
        found = None
        for i, fam in enumerate(self.families):
            p = fam.rule.prefix
            n = len(p) + 1
            if key.startswith(p) and key[n - 1 : n] == "." and key[n : n + 1].isdigit():
                where = fam.locate(key[n:])
                found = (i, where) if where is not None else None
                break
        if len(self.family_cache) >= _FAMILY_CACHE_SIZE:
            self.family_cache.clear()
        self.family_cache[key] = found
        return found

    def _light_unless(self) -> dict[str, frozenset[str]]:
        """Keys whose other rules are plain renames limited to some operations (a canonical
        `gen_ai.request.top_k` on retrieval spans): light on a span that names another operation."""
        out = {}
        for key, hs in self.exact.items():
            rules = [h for h in hs if h.kind not in (MARK, FIX)]
            if key not in self.light and all(h.kind == RENAME and h.only and not h.weak for h in rules):
                out[key] = frozenset().union(*(h.only for h in rules))
        return out

    # --- compilation ------------------------------------------------------------------------------

    def _src(self, name: str) -> int:
        if name not in self.src_names:
            self.src_names.append(name)
        return self.src_names.index(name)

    def _add(self, key: str, h: Handler) -> None:
        self.exact.setdefault(key, []).append(h)

    @staticmethod
    def _rank(src: Source, order: int, tier: int = 0) -> int:
        return tier * _TIER + src.precedence * 10_000 + order

    def _compile(self, fi: int, src: Source) -> None:
        for key in src.detect:
            self._add(key, Handler(MARK, fi, self._src(src.source), 0))
        self._compile_operations(fi, src)
        for rule in src.rules:
            self._compile_rule(fi, src, rule)
        for obj in src.objects:
            self._add(obj.key, Handler(OBJECT, fi, self._src(obj.source), self._rank(src, obj.order),
                                       weak=obj.weak, only=obj.only, drop=obj.drop, decode=src.decode_json,
                                       fn=self._object_fn(obj)))
        for fam in src.families:
            f = Family(fam, fi, self._src(fam.source), self._rank(src, fam.order), src.decode_json)
            self.families.append(f)
            if fam.bare:
                self._add(fam.prefix, Handler(BARE, fi, f.src, f.rank, weak=fam.weak, only=fam.only,
                                              drop=fam.drop, decode=src.decode_json, data=f))
        for comb in src.combines:
            h = Handler(COMBINE, fi, self._src(comb.source), self._rank(src, comb.order), target=comb.to,
                        data=comb)
            for key in comb.keys:
                self._add(key, h)
        for rule in src.sums:
            h = Handler(SUM, fi, self._src(rule.source), self._rank(src, rule.order), only=rule.only,
                        decode=src.decode_json, target=rule.to, fn=_sum_fn(rule), data=rule.keys)
            for key in rule.keys:
                self._add(key, h)
        for comp in src.composes:
            index = len(self.composes)
            self.composes.append((comp, self._src(comp.source), self._rank(src, comp.order), src.decode_json))
            for part in comp.parts:
                for key in part.keys:
                    self._add(key, Handler(COMPOSE, fi, self._src(comp.source), 0, data=index))
        for fix in src.fixes:
            self._add(fix.key, Handler(FIX, fi, self._src(fix.source), 0, weak=True, drop=False,
                                       target=fix.key, fn=self._fix_fn(fix.values, fix.format)))
        for sn in src.span_name:
            self.span_name_rules.setdefault(fi, []).append(
                (sn.to, sn.only, self._rank(src, sn.order, tier=3), self._src(sn.source)))
        self.resource_rules += [(rr.key, rr.to) for rr in src.resource_rules]
        if src.events is not None and src.events is self.event_spec:
            self.event_src = self._src(src.events.source)
            self.event_rank = self._rank(src, 0, tier=2)

    def _compile_operations(self, fi: int, src: Source) -> None:
        for op in src.operations:
            s, rank = self._src(op.source), self._rank(src, op.order)
            if op.key:
                self._add(op.key, Handler(OPER, fi, s, rank, decode=src.decode_json, data=op.values))
            elif op.present:
                self._add(op.present, Handler(PRESENT, fi, s, rank,
                                               data=op.operation if op.operation is not None else NONE))
            for name, value in op.span_names.items():
                if name.endswith("*"):
                    self.span_prefixes.append((name[:-1], rank, value if value is not None else NONE, s, fi))
                elif name not in self.span_ops or rank < self.span_ops[name][0]:
                    self.span_ops[name] = (rank, value if value is not None else NONE, s, fi)
        for inf in src.infer:
            self.infer.append((inf.operation, inf.any_of))
            self.infer_src = self._src(src.source)
            for key in inf.any_of:
                self._add(key, Handler(MARK, -1, -1, 0, weak=True))  # so inference sees canonical spans

    def _compile_rule(self, fi: int, src: Source, rule: Rule) -> None:
        s = self._src(rule.source)
        rank = self._rank(src, rule.order, tier=1 if rule.fallback else 0)
        common = dict(weak=rule.weak, only=rule.only, drop=rule.drop, decode=src.decode_json)
        if rule.format == "evaluation_score":
            self._add(rule.key, Handler(EVAL, fi, s, rank, data=rule.key.rsplit(".", 1)[-1], **common))
            return
        kind = MULTI if rule.format in _MULTI_FORMATS else RENAME
        targets = EVENT_TARGETS if rule.format == "events" else multi_targets(rule.to)
        self._add(rule.key, Handler(kind, fi, s, rank, target=rule.to, fn=self._rule_fn(rule), data=targets,
                                    **common))

    def _rule_fn(self, rule: Rule) -> Callable[[Any, Any], Any]:
        """The conversion of one rule: `fn(value, span) -> canonical value | {target: value} | None`."""
        f = self.formats
        to = rule.to
        if rule.format in ("chat", "text", "vercel_prompt"):
            conv = getattr(f, rule.format)
            return lambda v, ctx: conv(v, to)
        if rule.format == "events":
            spec = self.event_spec
            if spec is None:  # the mapping that defines the events is not enabled
                return lambda v, ctx: None
            return lambda v, ctx: convert_events(_event_dicts(v, spec), spec, f).attributes() or None
        if rule.format == "tool_definitions":
            return lambda v, ctx: f.tool_definitions(v)
        if rule.format == "documents":
            return lambda v, ctx: f.documents(v)
        if rule.format == "call_arguments":
            return lambda v, ctx: f.call_arguments(v)
        if rule.format == "since_start":
            return _since_start
        coerce = COERCERS[sc.ATTRIBUTE_TYPES.get(to, "any")]
        if rule.format == "tool_result":
            return lambda v, ctx: coerce(f.tool_result(v))
        if rule.format == "provider_model":
            keys = self.provider_keys
            return lambda v, ctx: coerce(f.provider_model(v, _provider_of(ctx, keys)))
        if rule.const is not None:
            const = coerce(rule.const)
            return lambda v, ctx: const if v not in (None, "", False) else None
        if rule.hash:
            return lambda v, ctx: hashlib.sha256(v.encode()).hexdigest() if isinstance(v, str) and v else None
        vmap, scale = rule.values, rule.scale
        if vmap is not None:
            return lambda v, ctx: map_then(vmap, v, coerce)
        if scale is not None:
            return lambda v, ctx: None if (c := coerce(v)) is None else round(c * scale, 9)
        return coerce  # coercers take (value, ctx=None)

    def _object_fn(self, obj: ObjectRule) -> Callable[[Any, Any], dict | None]:
        """Explodes one JSON object: only the fields whose first path segment is a key of the object are
        tried, so the cost follows the object's size, not the number of declared fields."""
        compiled = []
        by_key: dict[str, list[int]] = {}
        for index, fld in enumerate(obj.fields):
            paths = [
                tuple(p.split(".")) if isinstance(p, str) else tuple(tuple(q.split(".")) for q in p)
                for p in fld.paths
            ]
            coerce = COERCERS[sc.ATTRIBUTE_TYPES.get(fld.to, "any")]
            compiled.append(_FieldReader(fld, coerce, paths, self.formats, self.provider_keys))
            for path in paths:
                for head in {q[0] for q in path} if isinstance(path[0], tuple) else {path[0]}:
                    if index not in by_key.setdefault(head, []):
                        by_key[head].append(index)
        expand = obj.expand

        def explode(value: Any, ctx: Any) -> dict | None:
            v = fm.loads(value)
            if isinstance(v, str):
                v = fm.loads(v)
            out: dict[str, Any] = {}
            if isinstance(v, dict):
                if expand:
                    for k, x in v.items():
                        out[f"{expand}.{k}"] = x if isinstance(x, str) else fm.dumps(x)
                wanted = sorted({i for k in v if k in by_key for i in by_key[k]})
            else:
                wanted = range(len(compiled))  # a list (`0.name` paths)
            for index in wanted:
                compiled[index].read(v, out, ctx)
            return out or None

        return explode

    def _fix_fn(self, vmap: ValueMap | None, fmt: str) -> Callable[[Any], Any]:
        """`fix(value) -> corrected value`, or None when the value is already right (INVALID when it
        cannot be corrected)."""
        if fmt == "chat":
            return self.formats.fix_messages
        if fmt == "int":
            return whole_int

        def fix(value: Any) -> Any:
            found, new = lookup(vmap, value)
            return new if found and new is not None and new != value else None

        return fix


class _FieldReader:
    """Reads one canonical attribute out of an object: the first path holding a convertible value."""

    __slots__ = ("fld", "coerce", "paths", "formats", "plain", "provider_keys")

    def __init__(self, fld: ObjectField, coerce: Callable, paths: list, formats: fm.Formats,
                 provider_keys: tuple[str, ...] = ()):
        self.fld, self.coerce, self.paths, self.formats = fld, coerce, paths, formats
        self.provider_keys = provider_keys
        self.plain = (fld.values is None and not fld.format and not fld.uncached
                      and all(len(p) == 1 and isinstance(p[0], str) for p in paths))

    def read(self, v: Any, out: dict, ctx: Any = None) -> None:
        fld, coerce = self.fld, self.coerce
        if self.plain and type(v) is dict:  # plain keys: the common case
            for (key,) in self.paths:
                raw = v.get(key)
                if raw is not None and (val := coerce(raw)) is not None:
                    out[fld.to] = val
                    return
            return
        for i, path in enumerate(self.paths):
            raw = sum_paths(v, path) if isinstance(path[0], tuple) else get_path(v, path)
            if raw is None:
                continue
            if fld.format == "tool_definitions":
                val = self.formats.tool_definitions(raw)
            elif fld.format == "provider_model":
                val = coerce(self.formats.provider_model(raw, _provider_of(ctx, self.provider_keys)))
            elif fld.values is not None:
                val = map_then(fld.values, raw, coerce)
            else:
                val = coerce(raw)
            if val is None:
                continue
            out[fld.to] = Uncached(val) if fld.uncached and i == 0 and isinstance(val, int) else val
            return


def multi_targets(target: str) -> tuple[str, ...]:
    """What a message conversion aimed at `target` can produce besides it."""
    if target == sc.GEN_AI_INPUT_MESSAGES:
        return (sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_SYSTEM_INSTRUCTIONS)
    if target == sc.GEN_AI_OUTPUT_MESSAGES:
        return (sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_RESPONSE_FINISH_REASONS)
    return (target,)


def decode(value: Any) -> Any:
    """A JSON-encoded value decoded (MLflow encodes every value); other values as they are."""
    return fm.loads(value) if isinstance(value, str) else value


def map_then(vmap: ValueMap, value: Any, coerce: Callable) -> Any:
    v = decode(value) if isinstance(value, str) and value[:1] == '"' else value
    if isinstance(v, str):
        v = mapped(vmap, v)
        if v is None:
            return None
    return coerce(v)


def _provider_of(ctx: Any, keys: tuple[str, ...]) -> Any:
    """The provider the span names as sent (the first of `keys` it has), or None."""
    attrs = getattr(ctx, "attrs", None)
    if not attrs:
        return None
    return next((attrs[k] for k in keys if k in attrs), None)


def _since_start(value: Any, ctx: Any) -> Any:
    try:
        return fm.seconds_since(value, ctx.start)
    except ValueError:
        return INVALID


def _sum_fn(rule: SumRule) -> Callable[[Any, Any], Any]:
    """`fn(decode, span)`: the sum of the rule's attributes the span has, as the target's type; None
    when none of them holds a number (or the doubles add up to infinity)."""
    coerce = COERCERS[sc.ATTRIBUTE_TYPES[rule.to]]
    keys = rule.keys

    def total(dec: bool, ctx: Any) -> Any:
        found = [v for k in keys if k in ctx.attrs
                 if (v := coerce(decode(ctx.attrs[k]) if dec else ctx.attrs[k])) is not None]
        if not found:
            return None
        if isinstance(found[0], float):
            total = sum(found)
            return round(total, 12) if math.isfinite(total) else None
        return sum(found)

    return total


def _event_dicts(value: Any, spec: EventSpec) -> list[dict]:
    """Pydantic AI's `events` attribute: a JSON array of event dicts, each naming itself."""
    v = fm.loads(value)
    if not isinstance(v, list):
        return []
    return [{"name": d.get(spec.name_attribute), "attributes": d} for d in v if isinstance(d, dict)]
