"""`spanhouse top-traces`: the most expensive (or slowest) traces of a window."""

from __future__ import annotations

import click
from rich.table import Table

from spanhouse import analytics
from spanhouse.cli._common import config_option, database_option, endpoint_option, plain
from spanhouse.cli._report import (
    STATUS_STYLES,
    format_option,
    ms,
    since_option,
    usd,
    wide_console,
    window_seconds,
    write_json,
)
from spanhouse.config import Duration
from spanhouse.errors import SpanhouseError
from spanhouse.reader import clickhouse_message, open_reader


@click.command("top-traces")
@click.option(
    "--by",
    "by",
    type=click.Choice(["cost", "duration", "errors"]),
    default="cost",
    show_default=True,
    help="Rank traces by total cost, by duration, or by failed spans (errors: failing traces only).",
)
@since_option
@click.option("--top", type=click.IntRange(1, 10_000), default=10, show_default=True, help="Traces to list.")
@format_option
@config_option
@endpoint_option
@database_option
def command(
    by: str,
    since: str,
    top: int,
    fmt: str,
    config_path: str | None,
    endpoint: str | None,
    database: str | None,
) -> None:
    """List the traces with GenAI spans in a window, most expensive (or slowest, or most failed) first.

    A trace's cost is the sum over its model calls; its errors are its spans with status Error, of any
    kind (agents, tools, model calls, others); open one with `spanhouse trace TRACE_ID`.
    """
    seconds = window_seconds(since)
    reader = open_reader(config_path=config_path, endpoint=endpoint, database=database)
    try:
        rows = analytics.top_traces(reader, seconds, by, top)
    except SpanhouseError:
        raise
    except Exception as exc:
        raise SpanhouseError(f"could not read traces: {clickhouse_message(exc)}") from None
    finally:
        reader.close()
    window = f"the last {Duration(float(seconds))}"
    if fmt == "json":
        write_json(rows)  # [] for an empty window: a script reads no traces, not an error
        return
    if not rows and by == "errors":
        wide_console().print(f"No trace with GenAI spans in {window} has a failed span. [dim]({reader.via})[/dim]")
        return
    if not rows:
        raise SpanhouseError(
            f"no traces with GenAI spans in {window} in {reader.via}; widen --since, or send "
            "some (spanhouse demo)"
        )
    table = Table(
        "trace id",
        "start (UTC)",
        "root",
        "service",
        "status",
        "duration",
        "spans",
        "failed spans",
        "model calls",
        "tokens in→out",
        "cost",
        title=f"Top {len(rows)} traces by {by}, {window}",
        header_style="bold",
    )
    table.columns[0].no_wrap = True
    table.columns[0].min_width = 32
    for r in rows:
        cost = usd(r["cost_usd"]) + (" *" if r["unpriced_calls"] else "")
        table.add_row(
            r["trace_id"],
            str(r["start"])[:19],
            plain(r["root"] or "—"),
            plain(r["service"]),
            f"[{STATUS_STYLES.get(r['status'], 'dim')}]{r['status']}[/]"
            + (f" [yellow]({r['incomplete_model_calls']} incomplete)[/]" if r["incomplete_model_calls"] else ""),
            ms(r["duration_ms"]),
            str(r["spans"]) + (f" (+{r['copies']} copies)" if r["copies"] else ""),
            str(r["errors"]),
            str(r["model_calls"]),
            f"{r['input_tokens']:,}→{r['output_tokens']:,}",
            cost,
        )
    console = wide_console()
    console.print(table)
    note = (
        "* has model calls without a cost (spanhouse costs --unpriced) · "
        if any(r["unpriced_calls"] for r in rows)
        else ""
    )
    if any(r["incomplete_model_calls"] for r in rows):
        note += "incomplete: model calls with no finish reason and no usage (cut off?) · "
    note += "failed spans: of any kind (agents, tools, model calls) · "
    console.print(f"[dim]{note}spanhouse trace TRACE_ID shows one · {reader.via}[/dim]")
