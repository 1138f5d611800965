"""`spanhouse export`: stored traces and log records as OTLP requests, in the `file` exporter's format."""

from __future__ import annotations

import os
import sys

import click

from spanhouse.cli._common import config_option, database_option, endpoint_option, time_ns
from spanhouse.errors import SpanhouseError
from spanhouse.export import END_OF_TIME_NS, ExportRange, log_pages, trace_pages
from spanhouse.exporters.file import encode_request
from spanhouse.fsprivate import open_private_file
from spanhouse.jaeger.reader import TraceReader
from spanhouse.reader import clickhouse_message, open_reader


class _Output:
    """Standard output, or a file created readable by its owner only."""

    def __init__(self, path: str):
        self.path = path
        self.fd = None if path == "-" else open_private_file(path, truncate=True)

    def write(self, data: bytes) -> None:
        if self.fd is None:
            sys.stdout.buffer.write(data)
            return
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def close(self) -> None:
        if self.fd is None:
            sys.stdout.buffer.flush()
        else:
            os.fsync(self.fd)
            os.close(self.fd)


@click.command("export")
@click.option("--since", help="Export what started at or after this: a duration before now (24h, 30d) or an "
                              "ISO 8601 time (2026-01-31, 2026-01-31T12:00:00Z). [default: everything stored]")
@click.option("--until", help="... and before this (same forms). [default: now and later]")
@click.option("--service", default="", help="Only spans and log records of this service.name.")
@click.option("--trace-id", "trace_ids", multiple=True, help="Only this trace (repeat for more).")
@click.option("-o", "--output", default="-", show_default=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="File to write (created 0600, replaced if it exists); - is standard output.")
@click.option("--format", "fmt", type=click.Choice(["json", "proto"]), default="json", show_default=True,
              help="json: one OTLP/JSON request per line; proto: length-prefixed protobuf requests.")
@click.option("--logs/--no-logs", default=True, show_default=True, help="Export log records too.")
@config_option
@endpoint_option
@database_option
def command(since: str | None, until: str | None, service: str, trace_ids: tuple[str, ...], output: str, fmt: str,
            logs: bool, config_path: str | None, endpoint: str | None, database: str | None) -> None:
    """Write stored spans and log records as OTLP requests, as the `file` exporter writes them.

    A span or log record is exported when it started in [--since, --until), so adjacent ranges export
    each once. Attributes the schema registry types (gen_ai.usage.input_tokens, ...) get their types
    back; the others are exported as the strings the store holds. Reads like `spanhouse trace`: the
    store directly, or through the sql_query endpoint while `spanhouse serve` runs, in pages.
    """
    what = ExportRange(time_ns(since, "--since", 0), time_ns(until, "--until", END_OF_TIME_NS), service,
                       tuple(t.lower() for t in trace_ids))
    if what.start_ns >= what.end_ns:
        raise click.BadParameter("--since must be before --until", param_hint="--since")
    reader = open_reader(config_path=config_path, endpoint=endpoint, database=database)
    traces = TraceReader(reader.client, reader.tables)
    spans = records = 0
    out = None
    try:
        out = _Output(output)
        for batch in trace_pages(traces, what):
            out.write(encode_request("traces", fmt, batch))
            spans += len(batch)
        if logs:
            for log_batch in log_pages(traces, what):
                out.write(encode_request("logs", fmt, log_batch))
                records += len(log_batch)
        out.close()
    except OSError as exc:
        raise SpanhouseError(f"cannot write {output}: {exc.strerror or exc}" + _so_far(spans, records)) from None
    except SpanhouseError:
        raise
    except Exception as exc:
        raise SpanhouseError(f"reading {reader.via} failed: {clickhouse_message(exc)}" + _so_far(spans, records)) \
            from None
    finally:
        reader.close()
    where = "standard output" if output == "-" else output
    click.echo(f"exported {spans} span(s) and {records} log record(s) from {reader.via} to {where}", err=True)


def _so_far(spans: int, records: int) -> str:
    return f" (after {spans} span(s) and {records} log record(s) were written; the output is incomplete)"
