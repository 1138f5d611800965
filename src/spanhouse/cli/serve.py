"""`spanhouse serve`: run the pipelines of a configuration until SIGINT/SIGTERM."""

from __future__ import annotations

import logging

import click

from spanhouse.config import load_config
from spanhouse.service import Service


@click.command("serve")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              help="Collector-format config file [default: ./otel-collector-config.yaml, else the built-in one].")
def command(config_path: str | None) -> None:
    """Receive OTLP, process, and store spans (default: embedded ClickHouse in ./spanhouse-data)."""
    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    config = load_config(config_path)
    for warning in config.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    service = Service(config)
    service.run()
