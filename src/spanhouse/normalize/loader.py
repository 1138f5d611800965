"""Mapping files: read, validate, and build the typed specs of `spanhouse.normalize.spec`.

`load_mappings()` reads the shipped files (and any extra files a user configures), checks every name
against the generated registry, and raises `MappingError` listing every problem with its path
(`openinference.yaml::attributes::llm.model_name[1]::to: ...`). Nothing here runs per span.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from spanhouse import semconv as sc
from spanhouse.errors import ConfigError
from spanhouse.normalize.coerce import CURRENT
from spanhouse.normalize.spec import (
    CombineRule,
    ComposePart,
    ComposeRule,
    EventSpec,
    FamilyList,
    FamilyRule,
    FixRule,
    InferRule,
    Mappings,
    ObjectField,
    ObjectRule,
    OperationRule,
    Rule,
    Source,
    SpanNameRule,
    SumRule,
    ValueMap,
)

SHARED_FILE = "values.yaml"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# What a rename's `format` turns a value into; the converters live in spanhouse.normalize.formats.
FORMATS = frozenset(
    {
        "chat",
        "text",
        "vercel_prompt",
        "events",
        "tool_definitions",
        "documents",
        "call_arguments",
        "tool_result",
        "provider_model",
        "since_start",
        "evaluation_score",
    }
)
FAMILY_FORMATS = frozenset({"messages", "tool_definitions", "documents", "evaluations"})
_OPERATIONS = frozenset(v.value for v in sc.GenAiOperationNameValues)
_EVENT_NAMES = frozenset(v for k, v in vars(sc).items() if k.startswith("EVENT_"))
_EVENT_KINDS = frozenset({"system", "input", "output", "details"})
_INT_ATTRIBUTES = frozenset(k for k in CURRENT if sc.ATTRIBUTE_TYPES[k] == "int")


class MappingError(ConfigError):
    """A mapping file is malformed; `problems` lists each problem with its file and path."""


# --- reading ------------------------------------------------------------------------------------


def shipped_files() -> list[tuple[str, str]]:
    """(file name, text) of every mapping file shipped in the package, shared values first."""
    root = resources.files("spanhouse.mappings")
    files = sorted(p.name for p in root.iterdir() if p.name.endswith(".yaml"))
    files.sort(key=lambda n: n != SHARED_FILE)
    return [(n, root.joinpath(n).read_text(encoding="utf-8")) for n in files]


_shipped: Mappings | None = None


def load_mappings(extra: Iterable[str | Path] = ()) -> Mappings:
    """The shipped mappings plus `extra` files (a source named like a shipped one replaces it).

    Raises `MappingError` listing every problem found."""
    global _shipped
    extra = [Path(p) for p in extra]
    if not extra and _shipped is not None:
        return _shipped
    texts = shipped_files()
    problems: list[str] = []
    for p in extra:
        try:
            texts.append((str(p), p.read_text(encoding="utf-8")))
        except OSError as exc:
            problems.append(f"{p}: cannot read the mapping file: {exc.strerror or exc}")
    result = parse_mappings(texts, problems)
    if not extra:
        _shipped = result
    return result


def parse_mappings(texts: list[tuple[str, str]], problems: list[str] | None = None) -> Mappings:
    """Validate mapping files given as (name, YAML text); the shared file must come first."""
    problems = problems if problems is not None else []
    docs: list[tuple[str, dict]] = []
    for name, text in texts:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            problems.append(f"{name}: not valid YAML: {exc}")
            continue
        if not isinstance(doc, dict):
            problems.append(f"{name}: expected a mapping at the top level")
            continue
        docs.append((name, doc))
    shared = next((d for n, d in docs if Path(n).name == SHARED_FILE), {})
    p = _Parser(problems)
    groups = p.groups(shared.get("operation_groups"), f"{SHARED_FILE}::operation_groups")
    value_maps = p.value_maps(shared.get("value_maps"), f"{SHARED_FILE}::value_maps", {})
    by_name: dict[str, Source] = {}
    for name, doc in docs:
        if Path(name).name == SHARED_FILE:
            continue
        src = p.source(Path(name).stem, doc, name, value_maps, groups)
        if src is not None:
            by_name[src.name] = src
    if problems:
        raise MappingError(problems)
    ordered = sorted(by_name.values(), key=lambda s: (s.precedence, s.name))
    return Mappings(tuple(ordered), value_maps, groups)


# --- validation -----------------------------------------------------------------------------------


def is_attribute(key: str) -> bool:
    """A canonical attribute name, or a key under a template attribute (`gen_ai.prompt.variable.x`)."""
    if key in sc.ATTRIBUTE_TYPES:
        return True
    head, _, _ = key.rpartition(".")
    return sc.ATTRIBUTE_TYPES.get(head, "").startswith("template[")


def enum_values(attribute: str) -> list[str]:
    """The enum members the generator made for `attribute` (its naming rule: `gen_ai.provider.name` →
    `GenAiProviderNameValues`), or [] when it has none."""
    cls = getattr(sc, "".join(p.capitalize() for p in re.split(r"[._]", attribute)) + "Values", None)
    return [m.value for m in cls] if cls is not None else []


class _Parser:
    """Builds specs from YAML documents, recording every problem instead of stopping at the first."""

    def __init__(self, problems: list[str]):
        self.problems = problems

    def bad(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def keys(self, node: dict, allowed: set[str], path: str) -> None:
        for k in node:
            if k not in allowed:
                self.bad(f"{path}::{k}", f"unknown key; valid keys are: {', '.join(sorted(allowed))}")

    def mapping(self, node: Any, path: str) -> dict:
        if node is None:
            return {}
        if not isinstance(node, dict):
            self.bad(path, f"expected a mapping, got {type(node).__name__}")
            return {}
        return node

    def str_list(self, node: Any, path: str) -> tuple[str, ...]:
        if node is None:
            return ()
        if isinstance(node, str):
            return (node,)
        if not isinstance(node, list) or not all(isinstance(x, str) and x for x in node):
            self.bad(path, "expected a list of non-empty strings")
            return ()
        return tuple(node)

    def target(self, to: Any, path: str, *, event_ok: bool = False) -> str:
        if not isinstance(to, str) or not to:
            self.bad(path, "expected a canonical attribute name")
            return ""
        if event_ok and to in _EVENT_NAMES:
            return to
        if not is_attribute(to):
            self.bad(
                path,
                f"{to!r} is not an attribute of the spanhouse registry (semconv/model); add it there first",
            )
        return to

    def operation(self, value: Any, path: str) -> str | None:
        if value is None:
            return None
        if value not in _OPERATIONS:
            self.bad(
                path,
                f"{value!r} is not a gen_ai.operation.name value "
                f"({', '.join(sorted(_OPERATIONS))}) or ~ for none",
            )
            return None
        return value

    def only(self, node: Any, path: str, groups: dict[str, frozenset[str]]) -> frozenset[str] | None:
        if node is None:
            return None
        ops: set[str] = set()
        for i, item in enumerate(self.str_list(node, path)):
            if item in groups:
                ops |= groups[item]
            elif item in _OPERATIONS:
                ops.add(item)
            else:
                self.bad(
                    f"{path}[{i}]",
                    f"{item!r} is neither an operation nor a group ({', '.join(sorted(groups))})",
                )
        return frozenset(ops)

    def flag(self, node: dict, key: str, path: str, default: bool) -> bool:
        value = node.get(key, default)
        if not isinstance(value, bool):
            self.bad(f"{path}::{key}", "expected true or false")
            return default
        return value

    def source_name(self, node: dict, path: str, default: str) -> str:
        value = node.get("source", default)
        if not isinstance(value, str) or not _NAME_RE.match(value):
            self.bad(f"{path}::source", "expected a lower_snake_case convention name")
            return default
        return value

    # shared data

    def groups(self, node: Any, path: str) -> dict[str, frozenset[str]]:
        out = {}
        for name, ops in self.mapping(node, path).items():
            out[name] = frozenset(
                o
                for i, o in enumerate(self.str_list(ops, f"{path}::{name}"))
                if self.operation(o, f"{path}::{name}[{i}]")
            )
        return out

    def value_maps(self, node: Any, path: str, shared: dict[str, ValueMap]) -> dict[str, ValueMap]:
        out = dict(shared)
        for name, spec in self.mapping(node, path).items():
            out[name] = self.value_map(name, spec, f"{path}::{name}", out)
        return out

    def value_map(self, name: str, spec: Any, path: str, known: dict[str, ValueMap]) -> ValueMap:
        spec = self.mapping(spec, path)
        self.keys(spec, {"map", "extends", "identity_from", "by_prefix", "unmapped"}, path)
        table: dict[str, str | None] = {}
        base = spec.get("extends")
        if base is not None:
            if base not in known:
                self.bad(f"{path}::extends", f"unknown value map {base!r}")
            else:
                table.update(known[base].map)
        identity = spec.get("identity_from")
        if identity is not None:
            values = enum_values(self.target(identity, f"{path}::identity_from"))
            if not values:
                self.bad(f"{path}::identity_from", f"{identity!r} has no enum values in the registry")
            table.update({v.lower(): v for v in values})
        for k, v in self.mapping(spec.get("map"), f"{path}::map").items():
            if v is not None and not isinstance(v, str):
                self.bad(f"{path}::map::{k}", "expected a string or ~")
                continue
            table[str(k).lower()] = v
        unmapped = spec.get("unmapped", known[base].unmapped if base in known else "keep")
        if unmapped not in ("keep", "first_segment", "drop"):
            self.bad(f"{path}::unmapped", "expected keep, first_segment or drop")
        by_prefix = self.flag(spec, "by_prefix", path, known[base].by_prefix if base in known else False)
        return ValueMap(name, table, by_prefix, unmapped)

    def values(self, node: Any, path: str, maps: dict[str, ValueMap]) -> ValueMap | None:
        if node is None:
            return None
        if isinstance(node, str):
            if node not in maps:
                self.bad(path, f"unknown value map {node!r}; define it under value_maps")
                return None
            return maps[node]
        return self.value_map(path.rsplit("::", 1)[-1], {"map": node}, path, maps)

    # one source file

    def source(
        self,
        name: str,
        doc: dict,
        file: str,
        shared_maps: dict[str, ValueMap],
        groups: dict[str, frozenset[str]],
    ) -> Source | None:
        path = Path(file).name
        self.keys(
            doc,
            {
                "source",
                "precedence",
                "description",
                "detect",
                "decode_json",
                "operation",
                "attributes",
                "objects",
                "indexed",
                "combine",
                "sum",
                "compose",
                "fix",
                "span_name",
                "resource_attributes",
                "events",
                "keep",
                "value_maps",
            },
            path,
        )
        if not _NAME_RE.match(name):
            self.bad(path, "a mapping file name must be lower_snake_case.yaml")
            return None
        source = self.source_name(doc, path, name)
        precedence = doc.get("precedence")
        if not isinstance(precedence, int) or isinstance(precedence, bool) or not 0 <= precedence < 1000:
            self.bad(f"{path}::precedence", "expected an integer from 0 to 999 (lower wins)")
            precedence = 999
        maps = self.value_maps(doc.get("value_maps"), f"{path}::value_maps", shared_maps)
        ctx = _FileContext(path, source, maps, groups, self.flag(doc, "decode_json", path, False))
        operations, infer = self.operations(doc.get("operation"), ctx)
        combines = self.combines(doc.get("combine"), ctx)  # ranked ahead of the single-attribute rules
        return Source(
            name=name,
            source=source,
            precedence=precedence,
            description=str(doc.get("description") or ""),
            detect=self.str_list(doc.get("detect"), f"{path}::detect"),
            decode_json=ctx.decode_json,
            operations=operations,
            infer=infer,
            rules=self.rules(doc.get("attributes"), f"{path}::attributes", ctx),
            sums=self.sums(doc.get("sum"), ctx),  # ranked after the single-attribute rules
            objects=self.objects(doc.get("objects"), ctx),
            families=self.families(doc.get("indexed"), ctx),
            combines=combines,
            composes=self.composes(doc.get("compose"), ctx),
            fixes=self.fixes(doc.get("fix"), ctx),
            span_name=self.span_name(doc.get("span_name"), ctx),
            resource_rules=self.rules(doc.get("resource_attributes"), f"{path}::resource_attributes", ctx),
            events=self.events(doc.get("events"), ctx),
            keep=self.str_list(doc.get("keep"), f"{path}::keep"),
        )

    def operations(
        self, node: Any, ctx: _FileContext
    ) -> tuple[tuple[OperationRule, ...], tuple[InferRule, ...]]:
        path = f"{ctx.path}::operation"
        if node is None:
            return (), ()
        if not isinstance(node, list):
            self.bad(path, "expected a list of operation rules")
            return (), ()
        rules, infer = [], []
        for i, item in enumerate(node):
            ipath = f"{path}[{i}]"
            item = self.mapping(item, ipath)
            self.keys(
                item, {"from", "values", "present", "operation", "span_names", "infer", "source"}, ipath
            )
            source = self.source_name(item, ipath, ctx.source)
            if "from" in item:
                values = {
                    str(k).lower(): self.operation(v, f"{ipath}::values::{k}")
                    for k, v in self.mapping(item.get("values"), f"{ipath}::values").items()
                }
                rules.append(OperationRule(ctx.next(), source, key=str(item["from"]), values=values))
            elif "present" in item:
                rules.append(
                    OperationRule(
                        ctx.next(),
                        source,
                        present=str(item["present"]),
                        operation=self.operation(item.get("operation"), f"{ipath}::operation"),
                    )
                )
            elif "span_names" in item:
                names = {
                    str(k): self.operation(v, f"{ipath}::span_names::{k}")
                    for k, v in self.mapping(item["span_names"], f"{ipath}::span_names").items()
                }
                rules.append(OperationRule(ctx.next(), source, span_names=names))
            elif "infer" in item:
                for j, inf in enumerate(item["infer"] or []):
                    jpath = f"{ipath}::infer[{j}]"
                    inf = self.mapping(inf, jpath)
                    self.keys(inf, {"any_of", "operation"}, jpath)
                    keys = self.str_list(inf.get("any_of"), f"{jpath}::any_of")
                    for k in keys:
                        self.target(k, f"{jpath}::any_of")
                    op = self.operation(inf.get("operation"), f"{jpath}::operation")
                    if op:
                        infer.append(InferRule(op, keys))
            else:
                self.bad(ipath, "expected one of from, present, span_names or infer")
        return tuple(rules), tuple(infer)

    def rules(self, node: Any, path: str, ctx: _FileContext) -> tuple[Rule, ...]:
        out = []
        for key, spec in self.mapping(node, path).items():
            specs = spec if isinstance(spec, list) else [spec]
            for i, one in enumerate(specs):
                rpath = f"{path}::{key}" + (f"[{i}]" if isinstance(spec, list) else "")
                rule = self.rule(str(key), one, rpath, ctx)
                if rule is not None:
                    out.append(rule)
        return tuple(out)

    def rule(self, key: str, spec: Any, path: str, ctx: _FileContext) -> Rule | None:
        if isinstance(spec, str):
            spec = {"to": spec}
        spec = self.mapping(spec, path)
        self.keys(
            spec,
            {
                "to",
                "values",
                "scale",
                "const",
                "hash",
                "format",
                "only",
                "weak",
                "fallback",
                "drop",
                "source",
            },
            path,
        )
        fmt = spec.get("format", "")
        if fmt and fmt not in FORMATS:
            self.bad(f"{path}::format", f"unknown format {fmt!r}; known: {', '.join(sorted(FORMATS))}")
        scale = spec.get("scale")
        if scale is not None and (not isinstance(scale, (int, float)) or isinstance(scale, bool)):
            self.bad(f"{path}::scale", "expected a number")
            scale = None
        digest = spec.get("hash", "")
        if digest not in ("", "sha256"):
            self.bad(f"{path}::hash", "only sha256 is supported")
        return Rule(
            key=key,
            to=self.target(spec.get("to"), f"{path}::to", event_ok=fmt == "evaluation_score"),
            order=ctx.next(),
            source=self.source_name(spec, path, ctx.source),
            values=self.values(spec.get("values"), f"{path}::values", ctx.maps),
            scale=float(scale) if scale is not None else None,
            const=spec.get("const"),
            hash=digest,
            format=fmt,
            only=self.only(spec.get("only"), f"{path}::only", ctx.groups),
            weak=self.flag(spec, "weak", path, False),
            fallback=self.flag(spec, "fallback", path, False),
            drop=self.flag(spec, "drop", path, True),
        )

    def objects(self, node: Any, ctx: _FileContext) -> tuple[ObjectRule, ...]:
        path = f"{ctx.path}::objects"
        out = []
        for key, spec in self.mapping(node, path).items():
            opath = f"{path}::{key}"
            spec = self.mapping(spec, opath)
            self.keys(spec, {"fields", "expand", "only", "weak", "drop", "source"}, opath)
            fields = []
            for to, paths in self.mapping(spec.get("fields"), f"{opath}::fields").items():
                fields.append(self.object_field(str(to), paths, f"{opath}::fields::{to}", ctx))
            expand = spec.get("expand", "")
            if expand and not sc.ATTRIBUTE_TYPES.get(expand, "").startswith("template["):
                self.bad(f"{opath}::expand", f"{expand!r} is not a template attribute of the registry")
            if not fields and not expand:
                self.bad(opath, "give fields or expand")
            out.append(
                ObjectRule(
                    str(key),
                    ctx.next(),
                    self.source_name(spec, opath, ctx.source),
                    tuple(fields),
                    expand,
                    self.only(spec.get("only"), f"{opath}::only", ctx.groups),
                    self.flag(spec, "weak", opath, False),
                    self.flag(spec, "drop", opath, True),
                )
            )
        return tuple(out)

    def object_field(self, to: str, node: Any, path: str, ctx: _FileContext) -> ObjectField:
        self.target(to, path)
        spec: dict = {"paths": node} if not isinstance(node, dict) else node
        self.keys(spec, {"paths", "uncached", "values", "format"}, path)
        paths: list[tuple[str, ...] | str] = []
        raw = spec.get("paths")
        for i, p in enumerate(raw if isinstance(raw, list) else [raw]):
            if isinstance(p, str) and p:
                paths.append(p)
            elif isinstance(p, dict) and set(p) == {"sum"}:
                paths.append(self.str_list(p["sum"], f"{path}[{i}]::sum"))
            else:
                self.bad(f"{path}[{i}]", "expected a key path or {sum: [paths]}")
        fmt = spec.get("format", "")
        if fmt and fmt not in FORMATS:
            self.bad(f"{path}::format", f"unknown format {fmt!r}")
        return ObjectField(
            to,
            tuple(paths),
            self.flag(spec, "uncached", path, False),
            self.values(spec.get("values"), f"{path}::values", ctx.maps),
            fmt,
        )

    def families(self, node: Any, ctx: _FileContext) -> tuple[FamilyRule, ...]:
        path = f"{ctx.path}::indexed"
        out = []
        for prefix, spec in self.mapping(node, path).items():
            fpath = f"{path}::{prefix}"
            spec = self.mapping(spec, fpath)
            self.keys(
                spec, {"to", "format", "item", "lists", "bare", "only", "weak", "drop", "source"}, fpath
            )
            fmt = spec.get("format", "messages")
            if fmt not in FAMILY_FORMATS:
                self.bad(
                    f"{fpath}::format", f"unknown format {fmt!r}; known: {', '.join(sorted(FAMILY_FORMATS))}"
                )
            item = {str(k): str(v) for k, v in self.mapping(spec.get("item"), f"{fpath}::item").items()}
            lists = {}
            for name, lspec in self.mapping(spec.get("lists"), f"{fpath}::lists").items():
                lspec = self.mapping(lspec, f"{fpath}::lists::{name}")
                self.keys(lspec, {"path", "item"}, f"{fpath}::lists::{name}")
                lists[str(name)] = FamilyList(
                    str(lspec.get("path", "")),
                    {
                        str(k): str(v)
                        for k, v in self.mapping(lspec.get("item"), f"{fpath}::lists::{name}::item").items()
                    },
                )
            out.append(
                FamilyRule(
                    str(prefix),
                    self.target(spec.get("to"), f"{fpath}::to", event_ok=fmt == "evaluations"),
                    ctx.next(),
                    self.source_name(spec, fpath, ctx.source),
                    fmt,
                    item,
                    lists,
                    self.flag(spec, "bare", fpath, False),
                    self.only(spec.get("only"), f"{fpath}::only", ctx.groups),
                    self.flag(spec, "weak", fpath, False),
                    self.flag(spec, "drop", fpath, True),
                )
            )
        return tuple(out)

    def combines(self, node: Any, ctx: _FileContext) -> tuple[CombineRule, ...]:
        path = f"{ctx.path}::combine"
        out = []
        for to, spec in self.mapping(node, path).items():
            cpath = f"{path}::{to}"
            spec = self.mapping(spec, cpath)
            self.keys(spec, {"from", "values", "source"}, cpath)
            keys = self.str_list(spec.get("from"), f"{cpath}::from")
            if len(keys) != 2:
                self.bad(f"{cpath}::from", "expected exactly two attribute names")
                continue
            values = {
                str(k).lower(): v for k, v in self.mapping(spec.get("values"), f"{cpath}::values").items()
            }
            out.append(
                CombineRule(
                    self.target(to, cpath),
                    (keys[0], keys[1]),
                    values,
                    ctx.next(),
                    self.source_name(spec, cpath, ctx.source),
                )
            )
        return tuple(out)

    def sums(self, node: Any, ctx: _FileContext) -> tuple[SumRule, ...]:
        path = f"{ctx.path}::sum"
        out = []
        for to, spec in self.mapping(node, path).items():
            spath = f"{path}::{to}"
            spec = self.mapping(spec, spath)
            self.keys(spec, {"from", "only", "source"}, spath)
            target = self.target(to, spath)
            if target and sc.ATTRIBUTE_TYPES.get(target) not in ("int", "double"):
                self.bad(spath, f"{target!r} is not a number (int or double) attribute")
            keys = self.str_list(spec.get("from"), f"{spath}::from")
            if len(keys) < 2:
                self.bad(f"{spath}::from", "expected two or more attribute names")
                continue
            out.append(
                SumRule(
                    target,
                    keys,
                    ctx.next(),
                    self.source_name(spec, spath, ctx.source),
                    self.only(spec.get("only"), f"{spath}::only", ctx.groups),
                )
            )
        return tuple(out)

    def span_name(self, node: Any, ctx: _FileContext) -> tuple[SpanNameRule, ...]:
        path = f"{ctx.path}::span_name"
        out = []
        for to, spec in self.mapping(node, path).items():
            spath = f"{path}::{to}"
            spec = self.mapping(spec, spath)
            self.keys(spec, {"only", "source"}, spath)
            target = self.target(to, spath)
            if target and sc.ATTRIBUTE_TYPES.get(target) != "string":
                self.bad(spath, f"{target!r} is not a string attribute")
            out.append(
                SpanNameRule(
                    target,
                    ctx.next(),
                    self.source_name(spec, spath, ctx.source),
                    self.only(spec.get("only"), f"{spath}::only", ctx.groups),
                )
            )
        return tuple(out)

    def composes(self, node: Any, ctx: _FileContext) -> tuple[ComposeRule, ...]:
        path = f"{ctx.path}::compose"
        out = []
        for to, spec in self.mapping(node, path).items():
            cpath = f"{path}::{to}"
            spec = self.mapping(spec, cpath)
            self.keys(spec, {"role", "parts", "finish_reason", "source"}, cpath)
            parts = []
            for i, part in enumerate(spec.get("parts") or []):
                ppath = f"{cpath}::parts[{i}]"
                part = self.mapping(part, ppath)
                self.keys(part, {"from", "type"}, ppath)
                if part.get("type") not in ("text", "reasoning", "tool_calls"):
                    self.bad(f"{ppath}::type", "expected text, reasoning or tool_calls")
                parts.append(
                    ComposePart(self.str_list(part.get("from"), f"{ppath}::from"), str(part.get("type")))
                )
            out.append(
                ComposeRule(
                    self.target(to, cpath),
                    str(spec.get("role", "assistant")),
                    tuple(parts),
                    self.str_list(spec.get("finish_reason"), f"{cpath}::finish_reason"),
                    ctx.next(),
                    self.source_name(spec, cpath, ctx.source),
                )
            )
        return tuple(out)

    def fixes(self, node: Any, ctx: _FileContext) -> tuple[FixRule, ...]:
        path = f"{ctx.path}::fix"
        out = []
        for key, spec in self.mapping(node, path).items():
            fpath = f"{path}::{key}"
            spec = self.mapping(spec, fpath)
            self.keys(spec, {"values", "format", "source"}, fpath)
            fmt = spec.get("format", "")
            if fmt not in ("", "chat", "int"):
                self.bad(f"{fpath}::format", "expected chat or int")
            if fmt == "int":
                keys = self.int_attributes(str(key), fpath)
            elif str(key).endswith("*"):
                self.bad(fpath, "a prefix (`*`) is only supported with format: int")
                continue
            else:
                keys = (self.target(key, fpath),)
            source = self.source_name(spec, fpath, ctx.source)
            values = self.values(spec.get("values"), f"{fpath}::values", ctx.maps)
            out += [FixRule(k, source, values, fmt) for k in keys]
        return tuple(out)

    def int_attributes(self, key: str, path: str) -> tuple[str, ...]:
        """The current int attributes a `format: int` fix names: one, or all under a `prefix.*`."""
        if key.endswith("*"):
            found = tuple(k for k in sorted(_INT_ATTRIBUTES) if k.startswith(key[:-1]))
            if not found:
                self.bad(path, f"no int attribute of the registry starts with {key[:-1]!r}")
            return found
        if key not in _INT_ATTRIBUTES:
            self.bad(path, f"{key!r} is not a current int attribute of the spanhouse registry")
            return ()
        return (key,)

    def events(self, node: Any, ctx: _FileContext) -> EventSpec | None:
        if node is None:
            return None
        path = f"{ctx.path}::events"
        node = self.mapping(node, path)
        self.keys(node, {"kinds", "name_attribute", "body_attributes", "meta_attributes", "source"}, path)
        kinds = {}
        for name, spec in self.mapping(node.get("kinds"), f"{path}::kinds").items():
            kpath = f"{path}::kinds::{name}"
            spec = self.mapping(spec, kpath)
            self.keys(spec, {"into", "role", "attribute"}, kpath)
            if name not in _EVENT_NAMES:
                self.bad(kpath, f"{name!r} is not an event of the spanhouse registry")
            if spec.get("into") not in _EVENT_KINDS:
                self.bad(f"{kpath}::into", f"expected one of {', '.join(sorted(_EVENT_KINDS))}")
            if "attribute" in spec:
                self.target(spec["attribute"], f"{kpath}::attribute")
            kinds[str(name)] = dict(spec)
        return EventSpec(
            kinds,
            str(node.get("name_attribute", "")),
            self.str_list(node.get("body_attributes"), f"{path}::body_attributes"),
            self.str_list(node.get("meta_attributes"), f"{path}::meta_attributes"),
            self.source_name(node, path, ctx.source),
        )


class _FileContext:
    """Per-file state while parsing: path for messages, default source, value maps, rule order."""

    def __init__(
        self,
        path: str,
        source: str,
        maps: dict[str, ValueMap],
        groups: dict[str, frozenset[str]],
        decode_json: bool,
    ):
        self.path = path
        self.source = source
        self.maps = maps
        self.groups = groups
        self.decode_json = decode_json
        self._order = 0

    def next(self) -> int:
        self._order += 1
        return self._order
