"""Retention rules: how long a stored row is kept, by its environment, tenant, feature or service.

The clickhouse exporter's `ttl` is the retention of rows no rule matches; `retention` lists rules, the
first one a row matches decides its retention. A rule becomes one ClickHouse TTL entry per table,
`<time> + toIntervalDay(n) DELETE WHERE <this rule> AND NOT <every earlier rule>`, and the rows no rule
matches get `ttl` under `NOT (<any rule>)`: each row falls under exactly one entry, or under none when
its retention is forever (`ttl: 0`).

A row's environment, tenant and feature are the values `genai_spans` shows (the views'
expressions), so a row's retention agrees with what the dashboards group it by.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spanhouse import semconv
from spanhouse.component import ConfigIssue
from spanhouse.config import Duration

MATCH_KEYS = ("environment", "tenant", "feature", "service")


@dataclass(frozen=True, kw_only=True)
class RetentionRule:
    """One entry of the clickhouse exporter's `retention`: rows that match every key given (a list
    matches any of its values) are kept for `ttl`, and `ttl: 0` keeps them forever. A row that matches
    an earlier rule is never touched by this one."""

    environment: Any = None
    tenant: Any = None
    feature: Any = None
    service: Any = None
    ttl: Duration | None = None

    def validate(self) -> Iterator[ConfigIssue]:
        given = 0
        for key in MATCH_KEYS:
            value = getattr(self, key)
            if value is None:
                continue
            given += 1
            values = value if isinstance(value, (list, tuple)) else [value]
            if not values:
                yield ConfigIssue(key, "an empty list matches no row: give at least one value")
            elif not all(isinstance(v, str) for v in values):
                yield ConfigIssue(key, "expected a string or a list of strings")
        if not given:
            yield ConfigIssue("", f"a rule needs at least one of {', '.join(MATCH_KEYS)} (a rule matching every "
                                  "row is the exporter's own `ttl`)")
        if self.ttl is None:
            yield ConfigIssue("ttl", "missing: how long the rows this rule matches are kept, e.g. 72h (0 keeps "
                                     "them forever)")
        elif self.ttl.seconds < 0:
            yield ConfigIssue("ttl", "must not be negative")
        elif self.ttl.seconds % 1:
            yield ConfigIssue("ttl", "must be a whole number of seconds, e.g. 72h")

    def values(self, key: str) -> tuple[str, ...]:
        value = getattr(self, key)
        if value is None:
            return ()
        return tuple(value) if isinstance(value, (list, tuple)) else (value,)

    @property
    def seconds(self) -> int:
        return int(self.ttl.seconds) if self.ttl is not None else 0


@dataclass(frozen=True)
class Fields:
    """The SQL of each match key on one table."""

    environment: str
    tenant: str
    feature: str
    service: str


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _resource_first(resource: str, record: str, name: str) -> str:
    key = _literal(name)
    return f"if({resource}[{key}] != '', {resource}[{key}], {record}[{key}])"


def map_fields(record: str, resource: str = "ResourceAttributes") -> Fields:
    """The views' expressions over a raw table's attribute maps: environment from the resource, else
    the record; feature and tenant from the record, else the resource (031_genai_spans_mv.sql)."""
    return Fields(environment=_resource_first(resource, record, semconv.DEPLOYMENT_ENVIRONMENT_NAME),
                  tenant=_resource_first(record, resource, semconv.SPANHOUSE_TENANT_ID),
                  feature=_resource_first(record, resource, semconv.SPANHOUSE_FEATURE),
                  service="ServiceName")


TYPED_FIELDS = Fields(environment="Environment", tenant="TenantId", feature="Feature", service="ServiceName")
"""The typed columns of the derived tables, which their views fill with `map_fields`' expressions."""


def condition(rule: RetentionRule, fields: Fields) -> str:
    return " AND ".join(f"{getattr(fields, key)} IN ({', '.join(map(_literal, rule.values(key)))})"
                        for key in MATCH_KEYS if getattr(rule, key) is not None)


def _interval(column: str, seconds: int) -> str:
    for unit, size in (("Day", 86400), ("Hour", 3600), ("Minute", 60)):
        if seconds % size == 0:
            return f"{column} + toInterval{unit}({seconds // size})"
    return f"{column} + toIntervalSecond({seconds})"


def _where(conditions: Sequence[str], position: int) -> str:
    """The WHERE of the rows that fall under rule `position` (the default when it is past the rules)."""
    if position == len(conditions):
        return "NOT (" + " OR ".join(f"({c})" for c in conditions) + ")" if conditions else ""
    return " AND ".join([f"({conditions[position]})"] + [f"NOT ({c})" for c in conditions[:position]])


def ttl_entries(column: str, ttl: Duration, rules: Sequence[RetentionRule],
                fields: Fields | None) -> list[str]:
    """The TTL entries of a table whose time is `column`. `fields` None: a table without the rules'
    columns, which keeps its rows as long as the longest retention of all."""
    if fields is None:
        seconds = longest_seconds(ttl, rules)
        return [_interval(column, seconds)] if seconds else []
    conditions = [condition(rule, fields) for rule in rules]
    wanted = [rule.seconds for rule in rules] + [int(ttl.seconds)]
    entries = []
    for position, seconds in enumerate(wanted):
        if seconds:
            where = _where(conditions, position)
            entries.append(_interval(column, seconds) + (f" DELETE WHERE {where}" if where else ""))
    return entries


def longest_seconds(ttl: Duration, rules: Sequence[RetentionRule]) -> int:
    """The longest retention any row gets, 0 meaning forever."""
    all_seconds = [int(ttl.seconds)] + [rule.seconds for rule in rules]
    return 0 if 0 in all_seconds else max(all_seconds)


def shortest_seconds(ttl: Duration, rules: Sequence[RetentionRule]) -> int:
    """The shortest retention any row gets, 0 when every row is kept forever."""
    return min((s for s in [int(ttl.seconds)] + [rule.seconds for rule in rules] if s), default=0)


def row_values(resource: Mapping[str, str], record: Mapping[str, str], service: str) -> dict[str, str]:
    """A row's match values from its string attribute maps, as `map_fields` reads them in SQL."""
    def first(one: Mapping[str, str], other: Mapping[str, str], name: str) -> str:
        return one.get(name) or other.get(name, "")

    return {"environment": first(resource, record, semconv.DEPLOYMENT_ENVIRONMENT_NAME),
            "tenant": first(record, resource, semconv.SPANHOUSE_TENANT_ID),
            "feature": first(record, resource, semconv.SPANHOUSE_FEATURE),
            "service": service}


def decide(values: Mapping[str, str], ttl: Duration, rules: Sequence[RetentionRule]) -> tuple[int, int | None]:
    """(retention in seconds, 0 forever; the index of the rule that decided it, None for `ttl`)."""
    for index, rule in enumerate(rules):
        if all(values[key] in rule.values(key) for key in MATCH_KEYS if getattr(rule, key) is not None):
            return rule.seconds, index
    return int(ttl.seconds), None


# --- what a table has ------------------------------------------------------------------------

_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'")
_ENTRY = re.compile(r"^(.+?)\+toInterval(Day|Hour|Minute|Second)(\d+)(?:WHERE(.+))?$", re.S)
_UNIT_SECONDS = {"Day": 86400, "Hour": 3600, "Minute": 60, "Second": 1}


def _normal(text: str) -> str:
    """`text` without the whitespace, parentheses and DELETE keywords ClickHouse adds or drops when it
    re-renders a TTL (string literals kept as they are), so a TTL compares with the one written."""
    out, pos = [], 0
    for found in _QUOTED.finditer(text):
        out.append(re.sub(r"[\s()]|\bDELETE\b", "", text[pos:found.start()]))
        out.append(found.group(0))
        pos = found.end()
    out.append(re.sub(r"[\s()]|\bDELETE\b", "", text[pos:]))
    return "".join(out)


def split_entries(clause: str) -> list[str]:
    """The comma-separated entries of a TTL clause (commas inside parentheses or strings kept)."""
    entries, depth, start, pos = [], 0, 0, 0
    while pos < len(clause):
        char = clause[pos]
        if char == "'":
            found = _QUOTED.match(clause, pos)
            pos = found.end() if found else len(clause)
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            entries.append(clause[start:pos].strip())
            start = pos + 1
        pos += 1
    if clause[start:].strip():
        entries.append(clause[start:].strip())
    return entries


@dataclass(frozen=True)
class Entry:
    seconds: int
    where: str
    """Normalized (`_normal`); '' for an entry without WHERE."""


def parse(clause: str, column: str) -> list[Entry] | None:
    """The entries of a TTL clause counted from `column`, or None when one is not of the shape spanhouse
    writes (a TTL written by hand: tiering to a volume, GROUP BY, another column)."""
    entries = []
    for text in split_entries(clause):
        found = _ENTRY.match(_normal(text))
        if found is None or found.group(1) != _normal(column):
            return None
        entries.append(Entry(int(found.group(3)) * _UNIT_SECONDS[found.group(2)], found.group(4) or ""))
    return entries


def never_shorter(have: list[Entry], column: str, ttl: Duration, rules: Sequence[RetentionRule],
                  fields: Fields | None) -> bool:
    """Whether no row kept under the TTL `have` gets a shorter retention under the wanted one (0 being
    forever, the longest). When `have` was written for the same rules in the same order, each of its
    entries is one rule's (or the default's) and they compare one by one; otherwise the wanted shortest
    must be at least the longest `have` can keep a row, which is forever once rules decided it."""
    if fields is None:
        wanted_seconds = [longest_seconds(ttl, rules)]
        conditions: list[str] = []
    else:
        wanted_seconds = [rule.seconds for rule in rules] + [int(ttl.seconds)]
        conditions = [condition(rule, fields) for rule in rules]
    positions = {_normal(_where(conditions, p)): p for p in range(len(wanted_seconds))}
    had = [0] * len(wanted_seconds)  # a rule without an entry keeps its rows forever
    if all(e.where in positions for e in have) and len({e.where for e in have}) == len(have):
        for e in have:
            had[positions[e.where]] = e.seconds
        return all(_at_least(w, h) for w, h in zip(wanted_seconds, had))
    longest_had = have[0].seconds if len(have) == 1 and not have[0].where else 0
    return all(_at_least(w, longest_had) for w in wanted_seconds)


def _at_least(wanted: int, had: int) -> bool:
    return wanted == 0 or (had != 0 and wanted >= had)


def shown(clause: str) -> str:
    """A TTL clause for a log line: as it is, or, with rules (whose values are long), its intervals."""
    if " WHERE " not in f" {clause} ":
        return clause or "none"
    entries = split_entries(clause)
    intervals = [re.sub(r"\s+(?:DELETE\s+)?WHERE\b.*$", "", e, flags=re.S) for e in entries]
    return f"a TTL by rules ({'; '.join(intervals)}, each WHERE its rule)"


def same(have: str, wanted: str) -> bool:
    """Whether two TTL clauses are the same, one of them as ClickHouse re-renders it."""
    return _normal(have) == _normal(wanted)
