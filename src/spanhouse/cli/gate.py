"""`spanhouse gate`: fail a CI build when the candidate crosses a threshold on the dataset's examples.

Exit status: 0 every check passed (or blocking is off), 1 a check failed and blocking is on, 2 the gate
cannot decide (a bad gate file or option, no paired examples, the store unreachable), with the reason.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from spanhouse import comparison, gate
from spanhouse.cli._common import clean, config_option, database_option, endpoint_option
from spanhouse.cli._report import format_option, ms, usd, window_seconds, write_json
from spanhouse.cli.compare import empty_reason, read
from spanhouse.config import Duration
from spanhouse.errors import SpanhouseError
from spanhouse.reader import Reader, open_reader

POLL_S = 1.0
"""How often --wait reads the store again."""


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        seconds = Duration.parse(value).seconds
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if seconds > 3600:
        raise click.BadParameter("must be at most 1h, e.g. 60s")
    return seconds


def _scores(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str] | None:
    out = {}
    for v in values:
        name, eq, minimum = v.partition("=")
        if not eq or not name.strip():
            raise click.BadParameter(f"{v!r}: expected NAME=MINIMUM, e.g. policy_compliance=0.98")
        out[name.strip()] = minimum.strip()
    return out or None


def _unusable(problems: list[str], fmt: str, extra: dict[str, Any] | None = None) -> None:
    if fmt == "json":
        write_json({**(extra or {}), "exit_code": gate.EXIT_UNUSABLE, "problems": problems})
    click.secho("spanhouse gate: cannot decide:", fg="red", err=True)
    for p in problems:
        click.echo(f"  {clean(p)}", err=True)
    sys.exit(gate.EXIT_UNUSABLE)


def _settle(reader: Reader, cfg: gate.GateConfig, seconds: int, wait: float) -> comparison.Comparison:
    """Read the runs; with `wait`, again every POLL_S until they are ready (`gate.ready`) and, without an
    expected number of examples, the same as one poll before, or until `wait` has passed."""
    deadline = time.monotonic() + wait
    previous = None
    while True:
        result = read(reader, cfg.dataset, cfg.baseline, cfg.candidate, seconds)
        shape = (result.runs, len(result.pairs), tuple(e["n"] for e in map(result.evaluation, cfg.min_scores)))
        done = gate.ready(result, cfg) and (cfg.expected_examples is not None or shape == previous)
        if done or time.monotonic() >= deadline:
            return result
        if previous is None:
            want = f"{cfg.expected_examples} expected" if cfg.expected_examples else "the"
            click.echo(f"gate: {len(result.pairs)} of {want} paired examples stored; waiting up to "
                       f"{Duration(wait)} for the runs", err=True)
        previous = shape
        time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))


def _value(check: gate.Check) -> tuple[str, str]:
    if check.kind == "max_cost_increase":
        return f"{check.value * 100:+.1f}%", f"<= {check.threshold * 100:+.1f}%"
    if check.kind == "max_p95_latency_ms":
        return ms(check.value), f"<= {ms(check.threshold)}"
    return f"{check.value:.4g}", f">= {check.threshold:g}"


@click.command("gate")
@click.argument("gate_path", metavar="[GATE_FILE]", required=False, type=click.Path(dir_okay=False))
@click.option("--dataset", help="The dataset's name (overrides the gate file).")
@click.option("--baseline", help=comparison.SELECTOR_HELP)
@click.option("--candidate", help=comparison.SELECTOR_HELP)
@click.option("--min-score", "min_scores", multiple=True, callback=_scores,
              help="NAME=MINIMUM, repeatable; sets that evaluation's minimum, the file's others still hold.")
@click.option("--max-cost-increase", help="Largest allowed increase of the mean cost per example: 0.10 = 10%.")
@click.option("--max-p95-latency-ms", help="Largest allowed p95 of the candidate's workflow (root span) latency.")
@click.option("--block/--advisory", "block", default=None,
              help="Fail the build on a crossed threshold (block_on_regression), or only report it.")
@click.option("--expected-examples", type=int, help="Paired examples the gate needs (and waits for).")
@click.option("--wait", default="0s", callback=_duration, show_default=True,
              help="Wait up to this long for the runs to be stored, e.g. 30s (CI: spans may still be in a batch).")
@click.option("--since", help="Window the runs started in [default: 7d].")
@format_option
@config_option
@endpoint_option
@database_option
def command(gate_path: str | None, dataset: str | None, baseline: str | None, candidate: str | None,
            min_scores: dict[str, str] | None, max_cost_increase: str | None, max_p95_latency_ms: str | None,
            block: bool | None, expected_examples: int | None, wait: float, since: str | None, fmt: str,
            config_path: str | None, endpoint: str | None, database: str | None) -> None:
    """Check the candidate against the baseline on the same dataset examples; exit 1 when a threshold is
    crossed (0 with --advisory), 2 when the gate cannot decide (bad config, no paired examples).

    GATE_FILE (YAML) holds dataset, baseline, candidate, min_scores, max_cost_increase,
    max_p95_latency_ms, block_on_regression, expected_examples and since; the flags override it."""
    overrides = {"dataset": dataset, "baseline": baseline, "candidate": candidate, "min_scores": min_scores,
                 "max_cost_increase": max_cost_increase, "max_p95_latency_ms": max_p95_latency_ms,
                 "block_on_regression": block, "expected_examples": expected_examples, "since": since}
    try:
        cfg = gate.load(gate_path, overrides)
    except gate.Unusable as exc:
        _unusable(exc.problems, fmt)
    seconds = window_seconds(cfg.since)
    try:
        reader = open_reader(config_path=config_path, endpoint=endpoint, database=database)
        try:
            result = _settle(reader, cfg, seconds, wait)
            reason = "" if result.pairs else empty_reason(reader, result)
        finally:
            reader.close()
    except SpanhouseError as exc:
        _unusable([str(exc)], fmt)
    head = {"dataset": cfg.dataset, "baseline": str(cfg.baseline), "candidate": str(cfg.candidate),
            "paired_examples": len(result.pairs)}
    if reason:
        _unusable([f"no paired examples: {reason}"], fmt, head)
    try:
        checks = gate.evaluate(result, cfg)
    except gate.Unusable as exc:
        _unusable(exc.problems, fmt, head)
    code = gate.exit_code(checks, cfg)
    failed = [c for c in checks if not c.passed]
    if fmt == "json":
        write_json({**head, "blocking": cfg.block_on_regression, "passed": not failed, "exit_code": code,
                    "checks": [c.as_dict() for c in checks], "comparison": result.as_dict(10)})
        sys.exit(code)
    cost = result.cost()
    click.echo(clean(f"gate: candidate {cfg.candidate} vs baseline {cfg.baseline} on dataset {cfg.dataset!r}: "
                     f"{len(result.pairs)} paired examples ({result.only_baseline} only on the baseline, "
                     f"{result.only_candidate} only on the candidate); cost per example "
                     f"{usd(cost['baseline_mean_usd'])} → {usd(cost['candidate_mean_usd'])}"))
    for c in checks:
        value, threshold = _value(c)
        mark = click.style("PASS", fg="green") if c.passed else click.style("FAIL", fg="red")
        click.echo(f"  {mark}  {c.kind:<18} {clean(c.name):<24} {value:>10}  {threshold:<12} (n={c.n})")
        if not c.passed:
            for r in c.runs:
                click.echo(clean(f"        example {r['example']}: candidate trace {r['candidate_trace_id']}, "
                                 f"baseline trace {r['baseline_trace_id']}"))
    if not failed:
        click.secho(f"gate passed: {len(checks)} checks", fg="green")
    elif code:
        click.secho(f"gate failed: {len(failed)} of {len(checks)} checks (spanhouse trace TRACE_ID opens a run)",
                    fg="red")
    else:
        click.secho(f"gate failed {len(failed)} of {len(checks)} checks; advisory (block_on_regression: false), "
                    "so the build is not failed", fg="yellow")
    sys.exit(code)
