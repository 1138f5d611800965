"""The `spanhouse` command: serve, demo, sql, trace, costs, top-traces, dataset, compare, gate, schema, export."""

from __future__ import annotations

import logging
import sys

import click

from spanhouse.cli._common import verbosity_level
from spanhouse.errors import ConfigError, SpanhouseError


class _Group(click.Group):
    """Turns spanhouse's own errors into a message and exit status 1 or 2, never a traceback."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.secho("spanhouse: the configuration has problems:", fg="red", err=True)
            for p in exc.problems:
                click.echo(f"  {p}", err=True)
            sys.exit(2)
        except SpanhouseError as exc:
            click.secho(f"spanhouse: {exc}", fg="red", err=True)
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="spanhouse")
def main(verbose: int) -> None:
    """spanhouse: an OpenTelemetry-native tracking backend for LLM applications, stored in ClickHouse."""
    logging.basicConfig(level=verbosity_level(verbose), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _register() -> None:
    from spanhouse.cli import compare, costs, dataset, demo, export, gate, schema, serve, sql, top_traces, trace

    for module in (serve, demo, sql, trace, costs, top_traces, dataset, compare, gate, schema, export):
        main.add_command(module.command)


_register()
