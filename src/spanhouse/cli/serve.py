"""`spanhouse serve`: run the pipelines of a configuration until SIGINT/SIGTERM."""

from __future__ import annotations

import logging

import click

from spanhouse.cli._common import verbosity_level
from spanhouse.config import load_config
from spanhouse.service import Service


@click.command("serve")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              help="Collector-format config file [default: ./otel-collector-config.yaml, else the built-in one].")
def command(config_path: str | None) -> None:
    """Receive OTLP, process, and store spans (default: embedded ClickHouse in ./spanhouse-data)."""
    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    config = load_config(config_path)
    if config.log_level:
        # the config's level, as the Collector's service::telemetry::logs::level; -v/-vv still lower it
        level = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
                 "error": logging.ERROR}[config.log_level]
        verbose = click.get_current_context().find_root().params.get("verbose", 0)
        logging.getLogger().setLevel(min(level, verbosity_level(verbose)) if verbose else level)
    for warning in config.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    service = Service(config)
    service.run()
