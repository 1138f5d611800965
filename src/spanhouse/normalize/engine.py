"""The normalization engine: compiled mappings (`tables.Tables`) applied span by span.

Per span the engine makes one pass over the attribute map (one dict lookup per key, plus one
`str.startswith(tuple)` for keys that miss), then works only on the keys that hit:

1. the operation: a canonical `gen_ai.operation.name` wins; else the best-ranked foreign operation
   rule (a rule that says "no operation" stops inference); else inference from the attributes the
   span has or will have (tool → retrieval → embeddings → chat);
2. candidates: every rule that applies offers a value for its canonical target, ranked by (tier,
   file precedence, rule order). Values are computed lazily: the best candidate whose value converts
   wins, and a target already on the span (or its resource) is never replaced;
3. reported costs get `spanhouse.cost.source = reported`; uncached input counts get the cache added
   back and `spanhouse.usage.input_includes_cache_adjusted = true`; evaluation results become
   `gen_ai.evaluation.result` events; `spanhouse.normalized_from` lists the conventions used. All new
   values are written at the end, in one update.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from spanhouse import semconv as sc
from spanhouse.batch import Event
from spanhouse.modelcalls import COST_PARTS
from spanhouse.normalize import formats as fm
from spanhouse.normalize.coerce import COERCERS, CURRENT, INVALID, to_int
from spanhouse.normalize.events import convert_events
from spanhouse.normalize.paths import family_item
from spanhouse.normalize.spec import CombineRule, ComposeRule, Mappings
from spanhouse.normalize.tables import (
    BARE,
    COMBINE,
    COMPOSE,
    EVAL,
    EVENT_TARGETS,
    FIX,
    MARK,
    MULTI,
    NONE,
    OBJECT,
    OPER,
    PRESENT,
    RENAME,
    SUM,
    Family,
    Handler,
    Tables,
    Uncached,
    decode,
    multi_targets,
)

_OP = sc.GEN_AI_OPERATION_NAME
_INPUT = sc.GEN_AI_USAGE_INPUT_TOKENS
_CACHE_READ = sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
_CACHE_WRITE = sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS
_COST_KEYS = (sc.SPANHOUSE_COST_USD,) + COST_PARTS
_NOT_DROPPABLE = CURRENT  # general and canonical names stay even with drop_original
_MISS = object()


class _Memo:
    """A multi-target conversion computed at most once per span, on first use."""

    __slots__ = ("fn", "value", "result", "done")

    def __init__(self, fn: Callable, value: Any):
        self.fn, self.value, self.result, self.done = fn, value, None, False

    def get(self, target: str, ctx: _Span) -> Any:
        if not self.done:
            self.done = True
            self.result = self.fn(self.value, ctx)
        return self.result.get(target) if self.result else None


class _Span:
    """Per-span working state; converters read `attrs` and `start` from it."""

    __slots__ = ("attrs", "start", "resource", "present", "used", "out", "cands", "drops", "evaluations",
                 "op", "explicit_none", "op_cands", "fixes", "deferred", "deferred_fams", "composes",
                 "combines")

    def __init__(self, attrs: dict, start: int, resource: dict, dropping: bool):
        self.attrs, self.start, self.resource = attrs, start, resource
        self.present: set[int] = set()
        self.used: set[int] = set()
        self.out: dict[str, Any] = {}
        self.cands: dict[str, list] = {}
        self.drops: dict[str, bool] | None = {} if dropping else None
        self.evaluations: list[tuple[int, list[dict]]] = []
        self.op: Any = None
        self.explicit_none = False
        self.op_cands: list[tuple] = []
        self.fixes: list[tuple] = []
        self.deferred: list[tuple] = []
        self.deferred_fams: list[tuple] = []
        self.composes: set[int] = set()
        self.combines: dict[int, Handler] = {}

    def consumed(self, key: str, droppable: bool) -> None:
        if self.drops is not None:
            self.drops[key] = self.drops.get(key, True) and droppable


class Normalizer:
    """Applies compiled mappings to spans. Thread-safe: per-span state lives on the call stack.

    Guarantees: a canonical attribute present on the span (or its resource) is never replaced, except
    for the value corrections listed under `fix:` in the mapping files (a misspelled provider, a
    `result` key in a tool response, a whole-number double in an int attribute); foreign attributes
    are kept unless `drop_original`; attributes no mapping names are never touched; a value that
    cannot be converted (a non-whole double in an int attribute, an unreadable time, or a value its
    converter raised on) leaves the span as it was for that attribute and is counted in
    `conversion_errors`; `converter_exceptions` counts the last kind alone, a bug.
    """

    def __init__(self, mappings: Mappings, *, conventions: Iterable[str] | None = None,
                 drop_original: bool = False, span_events: bool = True):
        t = self.tables = Tables(mappings, conventions, span_events)
        self.drop_original = drop_original
        self.conversion_errors = 0
        self.converter_exceptions = 0
        # bound once: these are read for every span
        self._exact, self._prefixes, self._family_cache = t.exact, t.prefixes, t.family_cache
        self._family_of, self._span_ops, self._event_kinds, self._light, self._light_unless = (
            t.family_of, t.span_ops, t.event_kinds, t.light, t.light_unless)
        self._formats = t.formats

    # --- per span ---------------------------------------------------------------------------------

    def normalize_resource(self, attrs: dict[str, Any]) -> None:
        """Resource-level renames (e.g. `deployment.environment`); the canonical name wins if present."""
        for old, new in self.tables.resource_rules:
            if old in attrs and new not in attrs:
                attrs[new] = attrs[old]
                if self.drop_original and old not in _NOT_DROPPABLE:
                    del attrs[old]

    def normalize(self, attrs: dict[str, Any], name: str = "", start_unix_nano: int = 0,
                  end_unix_nano: int = 0, resource: dict[str, Any] | None = None,
                  events: list[Event] | None = None) -> list[Event] | None:
        """Normalize one span's attribute map in place. Returns the span's new event list when events
        were added (evaluation results), else None."""
        exact, prefixes, fcache = self._exact, self._prefixes, self._family_cache
        hits = None
        fams = None
        for key, value in attrs.items():  # the one pass over the span's attributes
            hs = exact.get(key)
            if hs is not None:
                if hits is None:
                    hits = []
                hits.append((key, value, hs))
            elif prefixes and key.startswith(prefixes):
                found = fcache.get(key, _MISS)
                if found is _MISS:
                    found = self._family_of(key)
                if found is not None:
                    if fams is None:
                        fams = {}
                    fams.setdefault(found[0], []).append((found[1], value, key))
        name_op = self._span_ops.get(name) if self._span_ops else None
        evs = None
        if events and self._event_kinds:
            evs = [e for e in events if e.name in self._event_kinds] or None
        if hits is None and fams is None and name_op is None and evs is None:
            return None
        if fams is None and name_op is None and evs is None and self._is_light(attrs, hits):
            return self._apply_light(attrs, hits)
        st = _Span(attrs, start_unix_nano, resource or {}, self.drop_original)
        self._take_hits(st, hits or (), fams, name_op, name)
        self._decide_operation(st)
        self._offer_grouped(st, evs)
        if st.op is None and not st.explicit_none:
            self._infer_operation(st)
        self._offer_conditional(st)
        if name and self.tables.span_name_rules:
            self._offer_span_name(st, name)
        self._resolve(st)
        self._fix(st)
        self._cost(attrs, st.out)
        self._usage(attrs, st.out)
        new_events = self._evaluation_events(st, events, end_unix_nano or start_unix_nano)
        self._commit(attrs, st.out, st.used, st.drops)
        return new_events

    def _is_light(self, attrs: dict, hits: list) -> bool:
        light, unless = self._light, self._light_unless
        op = attrs.get(_OP)
        return all(
            k in light or (type(op) is str and k in unless and op not in unless[k]) for k, _, _ in hits
        )

    def _apply_light(self, attrs: dict, hits: Any) -> None:
        """A span with canonical names only (the common case): value fixes, operation inference and
        cache accounting, without the per-span state of the full path."""
        out: dict[str, Any] = {}
        used: set[int] = set()
        for key, value, hs in hits:
            for h in hs:
                if h.kind == FIX and (new := h.fn(value)) is not None:
                    if new is INVALID:
                        self.conversion_errors += 1
                    else:
                        out[key] = new
                        used.add(h.src)
        if _OP not in attrs:
            for operation, keys in self.tables.infer:
                if any(k in attrs for k in keys):
                    out[_OP] = operation
                    used.add(self.tables.infer_src)
                    break
        self._usage(attrs, out)
        if out:
            self._commit(attrs, out, used, None)
        return None

    def _take_hits(self, st: _Span, hits: Any, fams: dict | None, name_op: Any, name: str) -> None:
        """One loop over the matched keys: the files present, operation rules, fixes, and the
        candidates of every rule that applies. Weak rules wait until presence is known."""
        present, cands = st.present, st.cands
        weak = []
        for key, value, hs in hits:
            for h in hs:
                if h.weak:
                    if h.kind == FIX:
                        st.fixes.append((key, value, h))
                    elif h.kind != MARK:
                        weak.append((key, value, h))
                    continue
                present.add(h.file)
                if h.kind == RENAME and h.only is None:  # the common case, inlined
                    v = decode(value) if h.decode else value
                    lst = cands.get(h.target)
                    if lst is None:
                        cands[h.target] = [(h.rank, h.src, h.fn, v)]
                    else:
                        lst.append((h.rank, h.src, h.fn, v))
                    st.consumed(key, h.drop)
                else:
                    self._take(st, key, value, h)
        families = self.tables.families
        for fi in fams or ():
            if not families[fi].rule.weak:
                present.add(families[fi].file)
        if name_op is not None:
            present.add(name_op[3])
            st.op_cands.append(name_op[:3])
        for key, value, h in weak:
            if h.file in present:
                self._take(st, key, value, h)
        for prefix, rank, op, src, fi in self.tables.span_prefixes:  # loose: only on the file's own spans
            if fi in present and name.startswith(prefix):
                st.op_cands.append((rank, op, src))
        for fi, pairs in (fams or {}).items():
            fam = families[fi]
            if fam.rule.weak and fam.file not in present:
                continue
            if fam.rule.only is not None:
                st.deferred_fams.append((fam, pairs))
            else:
                self._offer_family(st, fam, pairs)

    def _take(self, st: _Span, key: str, value: Any, h: Handler) -> None:
        k = h.kind
        if k == OPER:
            v = decode(value) if h.decode else value
            if isinstance(v, str) and (low := v.lower()) in h.data:
                op = h.data[low]
                st.op_cands.append((h.rank, NONE if op is None else op, h.src))
            return
        if k == PRESENT:
            if value not in (None, ""):
                st.op_cands.append((h.rank, h.data, h.src))
            return
        if k == MARK:
            return
        if k == COMPOSE:
            st.composes.add(h.data)
        elif k == COMBINE:
            st.combines[id(h)] = h
        elif h.only is not None:
            st.deferred.append((key, value, h))
            return
        else:
            self._offer(st, key, value, h)
        st.consumed(key, h.drop)

    def _decide_operation(self, st: _Span) -> None:
        """A canonical operation wins (after its spelling fix); else the best-ranked foreign rule, which
        may say "no GenAI operation" (and so stop inference)."""
        st.op = st.attrs.get(_OP)
        if st.op is not None and not isinstance(st.op, str):
            st.op, st.explicit_none = None, True  # malformed: left as sent, and nothing is inferred over it
        elif st.op is not None:
            for key, value, h in st.fixes:
                if key == _OP and (new := h.fn(value)) is not None:
                    st.out[_OP] = st.op = new
                    st.used.add(h.src)
        elif st.op_cands:
            _, op, src = min(st.op_cands, key=_first)
            if op is NONE:
                st.explicit_none = True
            else:
                st.out[_OP] = st.op = op
                st.used.add(src)

    def _offer_grouped(self, st: _Span, evs: list | None) -> None:
        """Candidates that read several attributes at once: compositions, combinations, span events."""
        for index in st.composes:
            rule, src, rank, dec = self.tables.composes[index]
            _push(st.cands, rule.to, rank, src, self._compose, (rule, dec))
        for h in st.combines.values():
            _push(st.cands, h.target, h.rank, h.src, _combine, h.data)
        if evs:
            self._offer_events(st, evs)

    def _offer_events(self, st: _Span, evs: list[Event]) -> None:
        t = self.tables
        memo = _Memo(self._events_fn, evs)
        for target in EVENT_TARGETS:
            _push(st.cands, target, t.event_rank, t.event_src, memo.get, target)
        for e in evs:
            if t.event_spec.kinds[e.name]["into"] == "details":
                for k, v in e.attributes.items():
                    if k in CURRENT:
                        _push(st.cands, k, t.event_rank, t.event_src, COERCERS[sc.ATTRIBUTE_TYPES[k]], v)

    def _infer_operation(self, st: _Span) -> None:
        """The last resort, from what the span has or will have (Phoenix's order)."""
        for operation, keys in self.tables.infer:
            if any(k in st.attrs or k in st.cands for k in keys):
                st.out[_OP] = st.op = operation
                st.used.add(self.tables.infer_src)
                return

    def _offer_conditional(self, st: _Span) -> None:
        op = st.op
        for key, value, h in st.deferred:
            if op in h.only:
                self._offer(st, key, value, h)
                st.consumed(key, h.drop)
        for fam, pairs in st.deferred_fams:
            if op in fam.rule.only:
                self._offer_family(st, fam, pairs)

    def _offer_span_name(self, st: _Span, name: str) -> None:
        """The span's name, as the last resort for the attributes its convention names only there."""
        rules = self.tables.span_name_rules
        for fi in st.present:
            for target, only, rank, src in rules.get(fi, ()):
                if only is None or st.op in only:
                    _push(st.cands, target, rank, src, _identity, name)

    def _resolve(self, st: _Span) -> None:
        """For each target absent from the span and its resource, the best candidate whose value converts."""
        attrs, resource, out = st.attrs, st.resource, st.out
        for target, lst in st.cands.items():
            if target in attrs or target in resource:
                continue
            if len(lst) > 1:
                lst.sort(key=_first)
            for _, src, fn, arg in lst:
                try:
                    v = fn(arg, st)
                except Exception:  # a converter must not lose the span; the attribute stays as sent
                    self.conversion_errors += 1
                    self.converter_exceptions += 1
                    v = None
                if v is INVALID:
                    self.conversion_errors += 1
                elif v is not None:
                    out[target] = v
                    st.used.add(src)
                    break

    def _fix(self, st: _Span) -> None:
        for key, value, h in st.fixes:
            if key != _OP and (new := h.fn(value)) is not None:
                if new is INVALID:
                    self.conversion_errors += 1
                else:
                    st.out[key] = new
                    st.used.add(h.src)

    def _commit(self, attrs: dict, out: dict, used: set[int], drops: dict[str, bool] | None) -> None:
        """Record the conventions used, drop consumed originals if asked, write everything at once."""
        if used:
            names = [self.tables.src_names[s] for s in sorted(used)]
            prior = attrs.get(sc.SPANHOUSE_NORMALIZED_FROM)
            if isinstance(prior, (list, tuple)):
                names = list(prior) + [n for n in names if n not in prior]
            out[sc.SPANHOUSE_NORMALIZED_FROM] = names
        if drops is not None:
            for key, allowed in drops.items():
                if allowed and key not in _NOT_DROPPABLE and key not in out:
                    attrs.pop(key, None)
        attrs.update(out)

    # --- candidates -------------------------------------------------------------------------------

    def _offer(self, st: _Span, key: str, value: Any, h: Handler) -> None:
        cands = st.cands
        if h.decode:
            value = decode(value)
        k = h.kind
        if k == RENAME:
            _push(cands, h.target, h.rank, h.src, h.fn, value)
        elif k == MULTI:
            memo = _Memo(h.fn, value)
            for target in h.data:
                _push(cands, target, h.rank, h.src, memo.get, target)
        elif k == OBJECT:
            try:
                produced = h.fn(value, st)
            except Exception:  # as in _resolve: the object stays as sent
                self.conversion_errors += 1
                self.converter_exceptions += 1
                produced = None
            for target, v in (produced or {}).items():
                _push(cands, target, h.rank, h.src, _identity, v)
        elif k == BARE:
            fam: Family = h.data
            nodes = fm.loads(value)
            if isinstance(nodes, list):
                self._offer_items(st, fam, [family_item(node, *fam.paths) for node in nodes])
        elif k == EVAL:
            items = self._formats.evaluations([{"name": h.data, "score": decode(value)}])
            if items:
                st.evaluations.append((h.src, items))
        elif k == SUM:
            if key == next(name for name in h.data if name in st.attrs):  # offered once, by the first present
                _push(cands, h.target, h.rank, h.src, h.fn, h.decode)

    def _offer_family(self, st: _Span, fam: Family, pairs: list) -> None:
        """Items rebuilt from flattened keys, by index (`.10` after `.9`)."""
        items: dict[int, tuple[dict, dict]] = {}
        for (index, name, j, field), value, _ in pairs:
            entry = items.get(index)
            if entry is None:
                entry = items[index] = ({}, {})
            if fam.decode:
                value = decode(value)
            if name is None:
                entry[0][field] = value
            else:
                entry[1].setdefault(name, {}).setdefault(j, {})[field] = value
        if st.drops is not None:
            for _, _, key in pairs:
                st.consumed(key, fam.rule.drop)
        ordered = []
        for index in sorted(items):
            item, lists = items[index]
            for name, by_index in lists.items():  # a list field wins over a scalar of the same name
                item[name] = [by_index[j] for j in sorted(by_index)]
            ordered.append(item)
        self._offer_items(st, fam, ordered)

    def _offer_items(self, st: _Span, fam: Family, items: list[dict]) -> None:
        """Offer the canonical value built from a family's items (neutral `{role, content, ...}` dicts)."""
        rule, cands, f = fam.rule, st.cands, self._formats
        if rule.format == "evaluations":
            found = f.evaluations(items)
            if found:
                st.evaluations.append((fam.src, found))
        elif rule.format == "tool_definitions":
            _push(cands, rule.to, fam.rank, fam.src, lambda v, c: f.tool_definitions(v), items)
        elif rule.format == "documents":
            _push(cands, rule.to, fam.rank, fam.src, lambda v, c: f.documents(v), items)
        else:
            to = rule.to
            memo = _Memo(lambda v, c: f.chat(v, to), items)
            for target in multi_targets(to):
                _push(cands, target, fam.rank, fam.src, memo.get, target)

    def _compose(self, arg: tuple[ComposeRule, bool], ctx: _Span) -> Any:
        """One message from parts held in separate attributes (the first present key of each part)."""
        rule, dec = arg
        f = self._formats
        parts: list[dict] = []
        for part in rule.parts:
            raw = next((ctx.attrs[k] for k in part.keys if k in ctx.attrs), None)
            if raw is None:
                continue
            if dec:
                raw = decode(raw)
            if part.type == "tool_calls":
                calls = fm.loads(raw)
                parts += [p for p in map(f.tool_call, calls if isinstance(calls, list) else [calls]) if p]
            elif text := fm.as_text(raw):
                parts.append({"type": part.type, "content": text})
        if not parts:
            return None
        msg: dict[str, Any] = {"role": rule.role, "parts": parts}
        reason = next((ctx.attrs[k] for k in rule.finish_reason if k in ctx.attrs), None)
        if isinstance(reason, (list, tuple)):
            reason = reason[0] if reason else None
        if reason is not None:
            msg["finish_reason"] = reason
        result = f.chat([msg], rule.to)
        return result.get(rule.to) if result else None

    def _events_fn(self, evs: list[Event], ctx: _Span) -> dict[str, Any]:
        dicts = [{"name": e.name, "attributes": e.attributes} for e in evs]
        return convert_events(dicts, self.tables.event_spec, self._formats).attributes()

    # --- accounting -------------------------------------------------------------------------------

    def _cost(self, attrs: dict, out: dict) -> None:
        """A cost taken from the span is `reported`; its total is the sum of its parts if not sent."""
        if not any(k in out for k in _COST_KEYS):
            return
        if sc.SPANHOUSE_COST_USD not in out and sc.SPANHOUSE_COST_USD not in attrs:
            parts = [out[k] for k in COST_PARTS if k in out]
            if parts:
                out[sc.SPANHOUSE_COST_USD] = round(sum(parts), 12)
        if sc.SPANHOUSE_COST_SOURCE not in attrs:
            out[sc.SPANHOUSE_COST_SOURCE] = sc.SpanhouseCostSourceValues.REPORTED.value

    def _usage(self, attrs: dict, out: dict) -> None:
        """`input_tokens` must include the cache counts (conventions §7.11): add them back to a count
        known to exclude them, or to one smaller than the cache counts themselves."""
        inp = out.get(_INPUT)
        if inp is None:
            inp = attrs.get(_INPUT)
            if inp is None:
                return
        total = to_int(inp)
        if total is None:
            return
        read = to_int(out.get(_CACHE_READ, attrs.get(_CACHE_READ))) or 0
        write = to_int(out.get(_CACHE_WRITE, attrs.get(_CACHE_WRITE))) or 0
        if isinstance(inp, Uncached):
            out[_INPUT] = total + read + write  # a plain int from here on
            if read or write:
                out[sc.SPANHOUSE_USAGE_INPUT_INCLUDES_CACHE_ADJUSTED] = True
        elif read + write > total:
            out[_INPUT] = total + read + write
            out[sc.SPANHOUSE_USAGE_INPUT_INCLUDES_CACHE_ADJUSTED] = True

    def _evaluation_events(self, st: _Span, events: list | None, at: int) -> list[Event] | None:
        """One `gen_ai.evaluation.result` event per evaluation the span does not already have."""
        if not st.evaluations:
            return None
        have = {e.attributes.get(sc.GEN_AI_EVALUATION_NAME) for e in events or ()
                if e.name == sc.EVENT_GEN_AI_EVALUATION_RESULT}
        added = []
        for src, items in st.evaluations:
            for attrs in items:
                if attrs[sc.GEN_AI_EVALUATION_NAME] not in have:
                    have.add(attrs[sc.GEN_AI_EVALUATION_NAME])
                    added.append(Event(at, sc.EVENT_GEN_AI_EVALUATION_RESULT, attrs))
                    st.used.add(src)
        return list(events or ()) + added if added else None


def _push(cands: dict, target: str, rank: int, src: int, fn: Callable, arg: Any) -> None:
    lst = cands.get(target)
    if lst is None:
        cands[target] = [(rank, src, fn, arg)]
    else:
        lst.append((rank, src, fn, arg))


def _first(c: tuple) -> int:
    return c[0]


def _identity(value: Any, ctx: _Span) -> Any:
    return value


def _combine(rule: CombineRule, ctx: _Span) -> Any:
    a, b = (ctx.attrs.get(k) for k in rule.keys)
    if not isinstance(a, str) or not isinstance(b, str):
        return None
    return rule.values.get(f"{a}|{b}".lower())
