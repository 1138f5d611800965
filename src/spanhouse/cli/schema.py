"""`spanhouse schema`: print the DDL the clickhouse exporter runs, rendered for a configuration."""

from __future__ import annotations

import os

import click

from spanhouse.component import Kind
from spanhouse.config import load_config
from spanhouse.errors import SpanhouseError
from spanhouse.store import (
    FULL_TEXT_MIN_VERSION,
    StoreError,
    StoreSettings,
    chdb_path,
    connect,
    render_schema,
    settings_from,
)
from spanhouse.store import apply_retention as store_apply_retention


@click.command("schema")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              help="Config whose clickhouse exporter to render for [default: ./otel-collector-config.yaml].")
@click.option("--server-version", default=".".join(map(str, FULL_TEXT_MIN_VERSION)), show_default=True,
              help="ClickHouse version to render for (text indexes from 26.2, bloom filters before).")
@click.option("--apply-retention", is_flag=True,
              help="Instead of printing: set every table's retention to the config's ttl and retention rules, "
                   "shorter ones included (rows older than it are deleted). spanhouse serve only ever lengthens a "
                   "retention; stop it first when the store is embedded.")
def command(config_path: str | None, server_version: str, apply_retention: bool) -> None:
    """Print the schema (database, tables, materialized views) as SQL, for `create_schema: false` setups."""
    config = load_config(config_path, for_reading=True)
    found = config.first(Kind.EXPORTER, "clickhouse")
    store = settings_from(vars(found[1])) if found else StoreSettings()
    if apply_retention:
        _apply_retention(store)
        return
    version = tuple(int(p) for p in server_version.split(".") if p.isdigit())
    for name, sql in render_schema(store, version):
        click.echo(f"-- {name}\n{sql};\n")


def _apply_retention(store: StoreSettings) -> None:
    if store.embedded and not os.path.isdir(chdb_path(store.endpoint)):
        raise SpanhouseError(f"nothing has been stored in {store.endpoint} yet: there is no retention to change")
    client = connect(store)
    try:
        changed = store_apply_retention(client, store, shorten=True)
    except StoreError:
        raise
    except Exception as exc:
        raise SpanhouseError(f"could not change the retention in {store.endpoint}: {exc}") from None
    finally:
        client.close()
    ttl = f"ttl {store.ttl}" if store.ttl.seconds else "no ttl (kept forever)"
    if store.retention:
        ttl += f" and {len(store.retention)} retention rule{'s' if len(store.retention) > 1 else ''}"
    if changed:
        click.echo(f"retention set to {ttl} on: {', '.join(changed)}")
    else:
        click.echo(f"every table already has {ttl}")
