"""Shared pieces of the analytics commands (`costs`, `top-traces`): window, formats, output."""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson
from rich.console import Console

from spanhouse import analytics
from spanhouse.cli.sql import _default
from spanhouse.config import Duration

since_option = click.option(
    "--since", default="24h", show_default=True, help="Window ending now, as a duration: 30m, 24h, 7d."
)
format_option = click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)


STATUS_STYLES = {"ok": "green", "degraded": "yellow", "error": "red", analytics.NO_ROOT: "yellow"}
"""How a trace's status (`spanhouse trace`, `top-traces`) is coloured."""

# ClickHouse's DateTime64 arithmetic overflows long before this; no store holds older data
_MAX_WINDOW_S = 36500 * 86400


def window_seconds(since: str) -> int:
    try:
        seconds = Duration.parse(since).seconds
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    if seconds < 1:
        raise click.BadParameter("must be at least 1s, e.g. 24h", param_hint="--since")
    if seconds > _MAX_WINDOW_S:
        raise click.BadParameter("must be at most 36500d (100 years), e.g. 30d", param_hint="--since")
    return int(seconds)


def usd(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    return f"${value:.6f}" if abs(value) < 0.01 else f"${value:.4f}" if abs(value) < 100 else f"${value:,.2f}"


def ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1000:.2f}s" if value >= 1000 else f"{value:.0f}ms"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def write_json(data: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(data, default=_default, option=orjson.OPT_INDENT_2) + b"\n")


def wide_console() -> Console:
    """A console for wide tables: the terminal's width, or 180 columns when output is not a terminal."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=180)
    return console
