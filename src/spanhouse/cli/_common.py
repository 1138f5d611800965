"""Options and helpers shared by the reading commands."""

from __future__ import annotations

import logging

import click

config_option = click.option(
    "-c", "--config", "config_path", type=click.Path(dir_okay=False),
    help="Config whose store to read [default: ./otel-collector-config.yaml, else the built-in one].")
endpoint_option = click.option(
    "--endpoint", help="Read from this ClickHouse HTTP endpoint instead (http://host:8123 or a spanhouse "
                       "sql_query endpoint).")
database_option = click.option("--database", help="Database to read [default: the exporter's, otel].")


def verbosity_level(verbose: int) -> int:
    """The log level of `-v` flags counted `verbose` times: WARNING, INFO (-v), DEBUG (-vv)."""
    return logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
