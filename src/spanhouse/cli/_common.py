"""Options and helpers shared by the reading commands."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import click

from spanhouse.config import Duration

config_option = click.option(
    "-c", "--config", "config_path", type=click.Path(dir_okay=False),
    help="Config whose store to read [default: ./otel-collector-config.yaml, else the built-in one].")
endpoint_option = click.option(
    "--endpoint", help="Read from this store instead: a ClickHouse HTTP endpoint (http://host:8123 or a "
                       "spanhouse sql_query endpoint such as http://127.0.0.1:8124), or an embedded store "
                       "as chdb://PATH (opened directly, or through the config's sql_query endpoint while "
                       "`spanhouse serve` holds it).")
database_option = click.option("--database", help="Database to read [default: the exporter's, otel].")


def verbosity_level(verbose: int) -> int:
    """The log level of `-v` flags counted `verbose` times: WARNING, INFO (-v), DEBUG (-vv)."""
    return logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG


# control characters in stored text (model output, span names) would drive the reader's terminal:
# shown escaped instead (\x1b), never interpreted
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}


def clean(text: str) -> str:
    """`text` with control characters written as `\\xNN` escapes, for printing stored data."""
    return text.translate(_CONTROLS)


def plain(text: str) -> Any:
    """Stored text as a console cell: no markup interpreted, control characters escaped."""
    from rich.text import Text

    return Text(clean(text))


def time_ns(value: str | None, option: str, default: int) -> int:
    """A duration before now (`24h`, `7d`) or an ISO 8601 date or time (UTC unless it says otherwise)."""
    if not value:
        return default
    try:
        return time.time_ns() - int(Duration.parse(value).seconds * 1e9)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither a duration before now (24h, 7d) nor an ISO 8601 time "
                                 "(2026-01-31, 2026-01-31T12:00:00Z)", param_hint=option) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp()) * 10**9 + when.microsecond * 1000
