"""`spanhouse schema`: print the DDL the clickhouse exporter runs, rendered for a configuration."""

from __future__ import annotations

import click

from spanhouse.component import Kind
from spanhouse.config import load_config
from spanhouse.store import FULL_TEXT_MIN_VERSION, StoreSettings, render_schema, settings_from


@click.command("schema")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              help="Config whose clickhouse exporter to render for [default: ./otel-collector-config.yaml].")
@click.option("--server-version", default=".".join(map(str, FULL_TEXT_MIN_VERSION)), show_default=True,
              help="ClickHouse version to render for (text indexes from 26.2, bloom filters before).")
def command(config_path: str | None, server_version: str) -> None:
    """Print the schema (database, tables, materialized views) as SQL, for `create_schema: false` setups."""
    config = load_config(config_path)
    found = config.first(Kind.EXPORTER, "clickhouse")
    store = settings_from(vars(found[1])) if found else StoreSettings()
    version = tuple(int(p) for p in server_version.split(".") if p.isdigit())
    for name, sql in render_schema(store, version):
        click.echo(f"-- {name}\n{sql};\n")
