"""`spanhouse compare`: two prompt versions, models, releases or experiments side by side on one dataset."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from spanhouse import comparison
from spanhouse import semconv as sc
from spanhouse.cli._common import config_option, database_option, endpoint_option, plain
from spanhouse.cli._report import format_option, ms, pct, usd, wide_console, window_seconds, write_json
from spanhouse.errors import SpanhouseError
from spanhouse.reader import Reader, clickhouse_message, open_reader

dataset_option = click.option("--dataset", required=True,
                              help=f"The dataset's name ({sc.SPANHOUSE_DATASET_NAME} on the runs' root spans).")
since_option = click.option("--since", default="7d", show_default=True,
                            help="Read the runs started in this window ending now: 24h, 7d, 30d.")


def selector(ctx: click.Context, param: click.Parameter, value: str | None) -> comparison.Selector | None:
    if value is None:
        return None
    try:
        return comparison.Selector.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def read(reader: Reader, dataset: str, baseline: comparison.Selector, candidate: comparison.Selector,
         seconds: int) -> comparison.Comparison:
    """The comparison, or a SpanhouseError with ClickHouse's message (a schema too old, a store unreachable)."""
    try:
        return comparison.read_comparison(reader, dataset, baseline, candidate, seconds)
    except SpanhouseError:
        raise
    except Exception as exc:
        raise SpanhouseError(f"could not read the runs: {clickhouse_message(exc)}") from None


def empty_reason(reader: Reader, result: comparison.Comparison) -> str:
    names = comparison.dataset_names(reader, result.seconds) if not result.runs else []
    return result.empty_reason(names)


@click.command("compare")
@dataset_option
@click.option("--baseline", callback=selector, required=True, help=comparison.SELECTOR_HELP)
@click.option("--candidate", callback=selector, required=True, help=comparison.SELECTOR_HELP)
@since_option
@click.option("--top", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="Per-example regressions to list.")
@format_option
@config_option
@endpoint_option
@database_option
def command(dataset: str, baseline: comparison.Selector, candidate: comparison.Selector, since: str, top: int,
            fmt: str, config_path: str | None, endpoint: str | None, database: str | None) -> None:
    """Compare the candidate's runs over a dataset with the baseline's, example by example.

    A run is a trace whose root span carries spanhouse.dataset.name and spanhouse.dataset.example.id; it
    belongs to a side when one of its spans matches the side's selector (a run matching both belongs to
    neither). Runs are paired by example id; of several runs of one example on one side the latest counts.
    Quality comes from the evaluation results stored for the runs' traces, whenever they arrived.
    """
    seconds = window_seconds(since)
    reader = open_reader(config_path=config_path, endpoint=endpoint, database=database)
    try:
        result = read(reader, dataset, baseline, candidate, seconds)
        reason = "" if result.pairs else empty_reason(reader, result)
    finally:
        reader.close()
    if fmt == "json":
        data = result.as_dict(top)
        if reason:
            data["reason"] = reason
        write_json(data)  # no pairs is data to a script, with the reason
        return
    if reason:
        raise SpanhouseError(f"nothing to compare: {reason} ({reader.via})")
    show(result, top, reader.via)


def _num(value: float | None, kind: str = "score") -> str:
    if value is None:
        return "—"
    return pct(value) if kind == "label" else f"{value:.4g}"


def _delta(value: float | None, kind: str = "score") -> str:
    if value is None:
        return "—"
    text = f"{value * 100:+.1f} pts" if kind == "label" else f"{value:+.4g}"
    return f"[red]{text}[/]" if value < 0 else f"[green]{text}[/]" if value > 0 else text


def show(result: comparison.Comparison, top: int, via: str) -> None:
    data: dict[str, Any] = result.as_dict(top)
    console = wide_console()
    ex, runs = data["examples"], data["runs"]
    head = Table.grid(padding=(0, 2))
    head.add_column(style="dim")
    head.add_column()
    head.add_row("dataset", plain(result.dataset))
    head.add_row("baseline → candidate", plain(f"{result.baseline} → {result.candidate}"))
    head.add_row("examples", f"{ex['paired']} paired · {ex['only_baseline']} only baseline · "
                             f"{ex['only_candidate']} only candidate")
    notes = [f"{runs['superseded'][s]} earlier {s} runs superseded" for s in ("baseline", "candidate")
             if runs["superseded"][s]]
    if runs["ambiguous"]:
        notes.append(f"{runs['ambiguous']} runs match both selectors (left out)")
    if runs["without_example_id"]:
        notes.append(f"{runs['without_example_id']} runs without an example id (left out)")
    if notes:
        head.add_row("runs", " · ".join(notes))
    console.print(head)
    table = Table("evaluation", "n paired", "baseline", "candidate", "delta", title="Quality (mean score; "
                  "pass rate for label-only evaluations)", header_style="bold")
    for e in data["evaluations"]:
        name = plain(e["name"])
        if e["kind"] == "label":
            name.append(" (pass rate)", style="dim")
        table.add_row(name, str(e["n"]), _num(e["baseline_mean"], e["kind"]), _num(e["candidate_mean"], e["kind"]),
                      _delta(e["delta"], e["kind"]))
    if not data["evaluations"]:
        table.add_row("(no evaluation results stored for these runs)", "", "", "", "")
    console.print(table)
    cost, lb, lc = data["cost_per_example"], data["latency_ms"]["baseline"], data["latency_ms"]["candidate"]
    side = Table("", "baseline", "candidate", "change", title="Cost and latency (paired examples)",
                 header_style="bold")
    side.add_row("cost per example (mean)", usd(cost["baseline_mean_usd"]), usd(cost["candidate_mean_usd"]),
                 "—" if cost["delta_pct"] is None else f"{cost['delta_pct'] * 100:+.1f}%")
    side.add_row("workflow latency p50", ms(lb["p50_ms"]), ms(lc["p50_ms"]), "")
    side.add_row("workflow latency p95", ms(lb["p95_ms"]), ms(lc["p95_ms"]), "")
    console.print(side)
    if cost["baseline_unpriced_calls"] or cost["candidate_unpriced_calls"]:
        console.print(f"[yellow]model calls without a cost: baseline {cost['baseline_unpriced_calls']}, candidate "
                      f"{cost['candidate_unpriced_calls']} (spanhouse costs --unpriced)[/]")
    if data["regressions"]:
        worst = Table("example", "evaluation", "baseline", "candidate", "delta", "baseline trace",
                      "candidate trace", title=f"Worst regressions (top {top})", header_style="bold")
        for r in data["regressions"]:
            kind = "label" if r["evaluation"] in result.label_only else "score"
            worst.add_row(plain(r["example"]), plain(r["evaluation"]), _num(r["baseline"], kind),
                          _num(r["candidate"], kind), _delta(r["delta"], kind), r["baseline_trace_id"],
                          r["candidate_trace_id"])
        console.print(worst)
    console.print(f"[dim]spanhouse trace TRACE_ID opens a run · {via}[/dim]")
