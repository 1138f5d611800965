"""`spanhouse costs`: where the money goes — totals, cost per request and per successful task, tokens by
kind, latency, retries, and a breakdown by model, feature, tenant, prompt, environment or release."""

from __future__ import annotations

import click
from rich.table import Table

from spanhouse import analytics
from spanhouse.cli._common import config_option, database_option, endpoint_option, plain
from spanhouse.cli._report import (
    format_option,
    ms,
    pct,
    since_option,
    usd,
    wide_console,
    window_seconds,
    write_json,
)
from spanhouse.config import Duration
from spanhouse.errors import SpanhouseError
from spanhouse.reader import Reader, clickhouse_message, open_reader


@click.command("costs")
@since_option
@click.option(
    "--by",
    "by",
    type=click.Choice(list(analytics.DIMENSIONS)),
    default="model",
    show_default=True,
    help="Group model calls by this.",
)
@click.option(
    "--top", type=click.IntRange(1, 10_000), default=20, show_default=True, help="Rows in the breakdown."
)
@click.option(
    "--unpriced",
    is_flag=True,
    help="List the models whose calls got no cost (unknown model, no usage, failed without usage).",
)
@format_option
@config_option
@endpoint_option
@database_option
def command(
    since: str,
    by: str,
    top: int,
    unpriced: bool,
    fmt: str,
    config_path: str | None,
    endpoint: str | None,
    database: str | None,
) -> None:
    """Cost, tokens, latency and retries of the LLM calls in a window (default: the last 24 hours).

    A request is a trace with GenAI spans; its latency is its root span's; a successful task is such a
    trace whose root span did not fail. Tokens and latency per call count model calls only: usage an
    agent span aggregates is not added twice.
    """
    seconds = window_seconds(since)
    reader = open_reader(config_path=config_path, endpoint=endpoint, database=database)
    try:
        if unpriced:
            _unpriced(reader, seconds, fmt)
        else:
            _report(reader, seconds, by, top, fmt)
    except SpanhouseError:
        raise
    except Exception as exc:
        message = clickhouse_message(exc)
        if by == "prompt" and "genai_spans_by_prompt" in message:
            message += (" (the store's schema predates the view: run this version's `spanhouse serve` on it once, "
                        "or apply `spanhouse schema` to the server)")
        raise SpanhouseError(f"could not read costs: {message}") from None
    finally:
        reader.close()


def _window(seconds: int) -> str:
    return f"the last {Duration(float(seconds))}"


def _unpriced(reader: Reader, seconds: int, fmt: str) -> None:
    rows = analytics.unpriced(reader, seconds)
    if fmt == "json":
        write_json(rows)
        return
    console = wide_console()
    if not rows:
        console.print(f"Every model call in {_window(seconds)} has a cost. [dim]({reader.via})[/dim]")
        return
    table = Table(
        "provider",
        "model",
        "reason",
        "spans",
        "input tokens",
        "output tokens",
        "last seen",
        title=f"Model calls without a cost, {_window(seconds)}",
        header_style="bold",
    )
    for r in rows:
        table.add_row(
            plain(r["provider"] or "—"),
            plain(r["model"] or "—"),
            r["source"],
            str(r["spans"]),
            f"{r['input_tokens']:,}",
            f"{r['output_tokens']:,}",
            str(r["last_seen"])[:19],
        )
    console.print(table)
    console.print(
        "[dim]unknown_model: add a price under processors::genai_cost::overrides (logged); no_model: the "
        "instrumentation sent token counts but no model (logged); no_usage: a call that did not fail sent no "
        f"token counts; {analytics.FAILED}: the call failed (status error: HTTP 429 or 500, a timeout) and sent no "
        "token counts, so no charge is known; invalid_usage: a count was not a whole number from 0 to 10^10 "
        f"(logged) · {reader.via}[/dim]"
    )


def _unpriced_note(s: analytics.Summary) -> str:
    missing = s.unpriced_calls - s.failed_unpriced_calls
    parts = [f"{missing} unpriced calls"] if missing else []
    if s.failed_unpriced_calls:
        parts.append(f"{s.failed_unpriced_calls} failed calls without usage, no charge known")
    return "; ".join(parts)


def _label(by: str, key: str) -> str:
    """A row's name in the table: a prompt without a version by its name alone (`name@` in JSON)."""
    return key[:-1] if by == "prompt" and key.endswith("@") else key


def _report(reader: Reader, seconds: int, by: str, top: int, fmt: str) -> None:
    s = analytics.summary(reader, seconds)
    if not s.spans and fmt == "json":
        write_json({"summary": s.as_dict(), "by": by, "rows": []})  # a script reads zeros, not an error
        return
    if not s.spans:
        raise SpanhouseError(
            f"no GenAI spans in {_window(seconds)} in {reader.via}; widen --since, or send some "
            "(spanhouse demo)"
        )
    rows = analytics.breakdown(reader, seconds, by, top)
    if fmt == "json":
        write_json({"summary": s.as_dict(), "by": by, "rows": rows})
        return
    console = wide_console()
    head = Table.grid(padding=(0, 2))
    head.add_column(style="dim")
    head.add_column()
    head.add_row("window", _window(seconds))
    head.add_row(
        "cost",
        usd(s.cost_usd)
        + (f"  ({_unpriced_note(s)}: spanhouse costs --unpriced)" if s.unpriced_calls else ""),
    )
    head.add_row("requests", f"{s.requests:,}  cost per request {usd(s.cost_per_request)}")
    head.add_row(
        "successful tasks",
        f"{s.successful_tasks:,}  cost per successful task {usd(s.cost_per_successful_task)}",
    )
    head.add_row(
        "model calls",
        f"{s.model_calls:,}  failed calls {s.model_call_errors:,}  retries {s.retries:,} "
        f"(retry rate {pct(s.retry_rate)})",
    )
    if s.tool_calls:
        head.add_row(
            "tool calls",
            f"{s.tool_calls:,}  retries {s.tool_retries:,} (retry rate {pct(s.tool_retry_rate)})",
        )
    tk = s.tokens
    head.add_row(
        "tokens",
        f"input {tk['input']:,} (cache read {tk['cache_read']:,}, cache write "
        f"{tk['cache_write']:,})  output {tk['output']:,} (reasoning {tk['reasoning']:,})",
    )
    cl, wl = s.call_latency_ms, s.workflow_latency_ms
    head.add_row("latency per call", f"p50 {ms(cl['p50'])}  p95 {ms(cl['p95'])}  p99 {ms(cl['p99'])}")
    head.add_row(
        "latency per request", f"p50 {ms(wl['p50'])}  p95 {ms(wl['p95'])}  p99 {ms(wl['p99'])}  (root spans)"
    )
    console.print(head)
    header = analytics.DIMENSIONS[by][1]
    table = Table(
        header,
        "cost",
        "share",
        "calls",
        "per call",
        "failed calls",
        "input",
        "cache r/w",
        "output",
        "reasoning",
        "p50",
        "p95",
        "p99",
        title=f"by {by} (top {top})",
        header_style="bold",
    )
    for r in rows:
        t, lat = r["tokens"], r["latency_ms"]
        table.add_row(
            plain(_label(by, r["key"])) if r["key"] else "(none)",
            usd(r["cost_usd"]) + (" *" if r["unpriced_calls"] else ""),
            pct(r["cost_usd"] / s.cost_usd if s.cost_usd else None),
            f"{r['calls']:,}",
            usd(r["cost_per_call_usd"]),
            f"{r['errors']:,}",
            f"{t['input']:,}",
            f"{t['cache_read']:,}/{t['cache_write']:,}",
            f"{t['output']:,}",
            f"{t['reasoning']:,}",
            ms(lat["p50"]),
            ms(lat["p95"]),
            ms(lat["p99"]),
        )
    console.print(table)
    note = "* has calls without a cost · " if any(r["unpriced_calls"] for r in rows) else ""
    console.print(f"[dim]{note}{reader.via}[/dim]")
