"""`spanhouse sql`: run read-only SQL against the store."""

from __future__ import annotations

import re
import sys
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import click
import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from spanhouse.cli._common import clean, config_option, database_option, endpoint_option
from spanhouse.errors import SpanhouseError
from spanhouse.reader import clickhouse_message, open_reader


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


_ID_COLUMN = re.compile(r"(id|Id|ID)$")
_PIPE_WIDTH = 200  # output that is not a terminal is read by tools and pagers, as `spanhouse trace` does


def _cell(value: Any) -> Text:
    """A table cell: stored text as it is (no console markup), control characters escaped."""
    if isinstance(value, (dict, list, tuple)):
        return Text(clean(orjson.dumps(value, default=_default).decode()))  # orjson leaves C1 controls
    if value is None:
        return Text("NULL", style="dim")
    return Text(clean(str(value)))


@click.command("sql")
@click.argument("query")
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True, help="Output format (a FORMAT clause in the query wins).")
@config_option
@endpoint_option
@database_option
def command(query: str, fmt: str, config_path: str | None, endpoint: str | None, database: str | None) -> None:
    """Run one read-only SQL statement (SELECT, SHOW, DESCRIBE, EXPLAIN) against the store.

    Works while `spanhouse serve` runs (through its sql_query endpoint) and while it does not.
    """
    reader = open_reader(config_path=config_path, endpoint=endpoint, database=database)
    try:
        _print(reader, query, fmt)
    except SpanhouseError:
        raise
    except Exception as exc:
        raise SpanhouseError(clickhouse_message(exc)) from None
    finally:
        reader.close()


def _print(reader: Any, query: str, fmt: str) -> None:
    checked = reader.check(query)
    if checked.format:
        sys.stdout.buffer.write(reader.raw(checked.sql, None))
        return
    if fmt == "csv":
        sys.stdout.buffer.write(reader.raw(checked.sql, "CSVWithNames"))
        return
    result = reader.query(checked.sql)
    if fmt == "json":
        rows = [dict(zip(result.column_names, row)) for row in result.result_rows]
        sys.stdout.buffer.write(orjson.dumps(rows, default=_default, option=orjson.OPT_INDENT_2) + b"\n")
        return
    cells = [[_cell(v) for v in row] for row in result.result_rows]
    console = Console()
    if not console.is_terminal:
        console = Console(width=_PIPE_WIDTH)
    names = [clean(c) for c in result.column_names]
    ids = [bool(_ID_COLUMN.search(name)) for name in result.column_names]
    widths = [max([len(name)] + [row[i].cell_len for row in cells]) for i, name in enumerate(names)]
    shown = _columns_that_fit(widths, ids, console.width)
    table = Table(*(escape(n) for n in names[:shown]), show_lines=False, header_style="bold")
    for row in cells:
        table.add_row(*row[:shown])
    for i in range(shown):
        if ids[i]:  # an id cut or wrapped cannot be pasted into `spanhouse trace`
            table.columns[i].no_wrap = True
            table.columns[i].min_width = widths[i]
    console.print(table)
    if shown < len(names):
        console.print(f"{len(names) - shown} of {len(names)} columns not shown (from {names[shown]} on): "
                      "use --format json or --format csv, or select fewer columns", style="yellow", markup=False)
    console.print(f"[dim]{len(result.result_rows)} row(s) · {reader.via}[/dim]")


_NARROWEST = 8  # a column narrower than this (its header cut to a few letters) tells the reader nothing


def _columns_that_fit(widths: list[int], ids: list[bool], width: int) -> int:
    """How many of the first columns fit in `width`: each as narrow as it can be read (an id whole, any
    other at `_NARROWEST` or its natural width), plus padding and borders; at least one."""
    used = 1  # the table's left border
    for i, (natural, whole) in enumerate(zip(widths, ids)):
        used += (natural if whole else min(natural, _NARROWEST)) + 3  # two spaces of padding, one border
        if used > width:
            return max(i, 1)
    return len(widths)
