"""The Grafana ClickHouse data source's macro and variable expansion, for the macros spanhouse's dashboards
use (grafana/clickhouse-datasource `pkg/macros/macros.go`, template variables as Grafana interpolates
them): `$__timeFilter(col)`, `$__timeFilter_ms(col)`, `$__fromTime`, `$__toTime`, `$__timeInterval(col)`,
`$__interval_s`, `$__conditionalAll(condition, $var)`, `$var`, `${var}` and `${var:singlequote}`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ALL = "$__all"


@dataclass
class Context:
    from_s: int
    to_s: int
    interval_s: int = 60
    variables: dict[str, list[str]] = field(default_factory=dict)
    """Variable name → selected values; `[ALL]` means "All"."""


def _args(sql: str, open_paren: int) -> tuple[list[str], int]:
    """Top-level comma-separated arguments of the call whose '(' is at `open_paren`; returns the index
    after the closing ')'."""
    depth, start, args, i = 0, open_paren + 1, [], open_paren
    quote = ""
    while i < len(sql):
        c = sql[i]
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"`":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[start:i].strip())
                return args, i + 1
        elif c == "," and depth == 1:
            args.append(sql[start:i].strip())
            start = i + 1
        i += 1
    raise ValueError(f"unbalanced parentheses in {sql!r}")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _is_all(ctx: Context, ref: str) -> bool:
    name = ref.strip().lstrip("$").strip("{}").split(":")[0]
    return ctx.variables.get(name) == [ALL]


def _function_macros(sql: str, ctx: Context) -> str:
    pattern = re.compile(r"\$__(conditionalAll|timeFilter_ms|timeFilter|timeInterval)\(")
    while True:
        m = pattern.search(sql)
        if not m:
            return sql
        args, end = _args(sql, m.end() - 1)
        name = m.group(1)
        if name == "conditionalAll":
            condition, ref = ",".join(args[:-1]), args[-1]
            text = "1=1" if _is_all(ctx, ref) else f"({condition})"
        elif name == "timeFilter":
            text = f"{args[0]} >= toDateTime({ctx.from_s}) AND {args[0]} <= toDateTime({ctx.to_s})"
        elif name == "timeFilter_ms":
            text = (f"{args[0]} >= fromUnixTimestamp64Milli({ctx.from_s * 1000}) AND "
                    f"{args[0]} <= fromUnixTimestamp64Milli({ctx.to_s * 1000})")
        else:
            text = f"toStartOfInterval(toDateTime({args[0]}), INTERVAL {ctx.interval_s} second)"
        sql = sql[:m.start()] + text + sql[end:]


def expand(sql: str, ctx: Context) -> str:
    """`sql` with every macro and variable replaced, ready to send to ClickHouse."""
    sql = _function_macros(sql, ctx)
    sql = sql.replace("$__fromTime", f"toDateTime({ctx.from_s})").replace("$__toTime", f"toDateTime({ctx.to_s})")
    sql = sql.replace("$__interval_s", str(ctx.interval_s))

    def variable(m: re.Match) -> str:
        name, fmt = m.group(1) or m.group(3), m.group(2)
        if name not in ctx.variables:
            raise KeyError(f"the dashboard uses variable ${name}, which the test does not set")
        values = ctx.variables[name]
        if fmt == "singlequote":
            return ",".join(_quote(v) for v in values)
        return ",".join(values)

    sql = re.sub(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)", variable, sql)
    if "$" in sql:
        raise ValueError(f"unexpanded macro left in: {sql}")
    return sql
