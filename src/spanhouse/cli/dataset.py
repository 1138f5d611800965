"""`spanhouse dataset`: build datasets from failed production traces, import, export, list, show, delete.

Reading goes where the other reading commands read (`-c`, `--endpoint`); writing goes to the running
service's OTLP receiver (`--otlp-endpoint`, default the config's), as `spanhouse.dataset.example` log
records through its logs pipeline, so the service stays the store's only writer.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from spanhouse import semconv as sc
from spanhouse.cli._common import clean, config_option, database_option, endpoint_option, plain, time_ns
from spanhouse.cli._otlp import check_reachable, default_endpoint
from spanhouse.cli._report import wide_console
from spanhouse.datasets import read, select, send
from spanhouse.datasets.examples import DatasetFileError, Example, parse_lines, write_lines
from spanhouse.errors import SpanhouseError
from spanhouse.fsprivate import open_private_file
from spanhouse.reader import Reader, clickhouse_message, open_reader

_STORED = "stored within about a second"


def _otlp_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--protocol", type=click.Choice(["http", "grpc"]), default=None,
                      help="[default: http, or grpc when the config's receiver has only gRPC]")(fn)
    return click.option("--otlp-endpoint", help="Where to send the examples: the running service's OTLP "
                                                "receiver [default: the otlp receiver of the config].")(fn)


def _target(config_path: str | None, otlp_endpoint: str | None, protocol: str | None) -> tuple[str, str]:
    if otlp_endpoint is None:
        otlp_endpoint, protocol = default_endpoint(config_path, protocol, "logs")
    protocol = protocol or "http"
    check_reachable(otlp_endpoint, "--otlp-endpoint")
    return otlp_endpoint, protocol


def _reading(reader: Reader, what: Callable[[], Any]) -> Any:
    try:
        return what()
    except SpanhouseError:
        raise
    except Exception as exc:
        raise SpanhouseError(f"reading {reader.via} failed: {clickhouse_message(exc)}") from None


def _tenant(reader: Reader, name: str, tenant: str | None) -> str:
    """The tenant whose dataset `name` is meant: `tenant`, else the only one that has it."""
    tenants = _reading(reader, lambda: read.tenants_of(reader, name))
    if tenant is not None:
        if tenant not in tenants:
            raise SpanhouseError(f"tenant {tenant!r} has no dataset {name!r}" + _known(reader))
        return tenant
    if not tenants:
        raise SpanhouseError(f"there is no dataset {name!r} in {reader.via}" + _known(reader))
    if len(tenants) > 1:
        raise SpanhouseError(f"dataset {name!r} exists for tenants {', '.join(map(repr, tenants))}: pick one "
                             "with --tenant")
    return tenants[0]


def _known(reader: Reader) -> str:
    names = sorted({d.name for d in _reading(reader, lambda: read.datasets(reader))})
    return f" (datasets: {', '.join(names[:20])})" if names else " (no dataset has examples yet)"


@click.group("dataset")
def command() -> None:
    """Datasets of examples: build one from failed production traces, edit it as JSON lines, run a
    candidate over it (spanhouse.sdk.dataset_example), take it away."""


@command.command("create")
@click.argument("name")
@click.option("--from-traces", is_flag=True, help="Add the failed model calls of stored traces (required).")
@click.option("--errors", is_flag=True, help="Select calls whose status is error [the default when no "
                                             "--trace-errors, --score-below or --label is given].")
@click.option("--trace-errors", is_flag=True, help="Select the calls of traces in which any span's status is "
                                                   "error: a tool, a validator or the call itself.")
@click.option("--score-below", "scores", multiple=True, metavar="EVALUATION=THRESHOLD",
              help="Select calls with a score of EVALUATION below THRESHOLD (repeatable).")
@click.option("--label", "labels", multiple=True, metavar="[EVALUATION=]LABEL",
              help="Select calls with an evaluation result labelled LABEL, e.g. fail (repeatable).")
@click.option("--feature", default="", help="Only calls of this spanhouse.feature.")
@click.option("--prompt", default="", metavar="NAME[:VERSION]", help="Only calls that ran under this prompt "
                                                                     "(named by the call or an ancestor).")
@click.option("--service", default="", help="Only calls of this service.name.")
@click.option("--environment", default="", help="Only calls of this deployment.environment.name.")
@click.option("--tenant", "tenant_filter", default="", help="Only calls of this tenant.")
@click.option("--since", default="24h", show_default=True, help="A duration before now (24h, 7d) or an ISO 8601 "
                                                                "time.")
@click.option("--until", default=None, help="... and before this (same forms) [default: now].")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True,
              help="At most this many calls, newest first.")
@_otlp_options
@config_option
@endpoint_option
@database_option
def create(name: str, from_traces: bool, errors: bool, trace_errors: bool, scores: tuple[str, ...],
           labels: tuple[str, ...], feature: str, prompt: str, service: str, environment: str, tenant_filter: str,
           since: str, until: str | None, limit: int, otlp_endpoint: str | None, protocol: str | None,
           config_path: str | None, endpoint: str | None, database: str | None) -> None:
    """Add the failed model calls of stored traces to dataset NAME, one example per call: its input
    messages as stored (redacted as stored), no expected output yet, the call as its source. A call
    already in the dataset is left as it is (its example id is trace_id:span_id)."""
    if not from_traces:
        raise click.UsageError("pass --from-traces to build the dataset from stored traces (to add examples "
                               "written by hand, use `spanhouse dataset import NAME FILE.jsonl`)")
    failure = select.Failure(errors or not (trace_errors or scores or labels), trace_errors,
                             tuple(_score(s) for s in scores), tuple(_label(v) for v in labels))
    prompt_name, _, prompt_version = prompt.partition(":")
    scope = select.Scope(time_ns(since, "--since", 0), time_ns(until, "--until", time.time_ns() + 60 * 10**9),
                         service, environment, feature, tenant_filter, prompt_name, prompt_version, limit)
    if scope.since_ns >= scope.until_ns:
        raise click.BadParameter("--since must be before --until", param_hint="--since")
    target = _target(config_path, otlp_endpoint, protocol)
    reader = open_reader(config_path=config_path, endpoint=endpoint, database=database)
    try:
        found = _reading(reader, lambda: select.failed_calls(reader, scope, failure))
        present = _reading(reader, lambda: read.example_ids(reader, name)) if found else set()
    finally:
        reader.close()
    new = [(example, env) for example, env in found if example.id not in present]
    if new:
        send.send(send.records(name, [e for e, _ in new],
                               attributes=[{sc.DEPLOYMENT_ENVIRONMENT_NAME: env} if env else {} for _, env in new]),
                  *target)
    kept = len(found) - len(new)
    click.echo(f"added {len(new)} example(s) to dataset {name!r}: {len(found)} failed call(s) selected"
               + (f", {kept} already in it" if kept else "")
               + ("" if found or failure.trace_errors else
                  "; to select the calls of traces that failed at a tool or a validator, add --trace-errors")
               + (f"; {_STORED}: spanhouse dataset show {name}" if new else ""))


def _score(text: str) -> tuple[str, float]:
    evaluation, sep, threshold = text.rpartition("=")
    try:
        if not sep or not evaluation:
            raise ValueError
        return evaluation, float(threshold)
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected EVALUATION=THRESHOLD, e.g. citation_quality=0.85",
                                 param_hint="--score-below") from None


def _label(text: str) -> tuple[str, str]:
    evaluation, _, label = text.rpartition("=")
    if not label:
        raise click.BadParameter(f"{text!r}: expected LABEL or EVALUATION=LABEL, e.g. fail",
                                 param_hint="--label")
    return evaluation, label


@command.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--environment", default="", help="deployment.environment.name of the records: the pipeline's "
                                                "genai_redact applies that environment's policy [default: none, "
                                                "the default policy].")
@click.option("--replace", is_flag=True, help="Make the dataset exactly the file: also delete the stored examples "
                                              "whose ids are not in it (lines dropped from an exported file).")
@click.option("--tenant", default=None, help="With --replace: the tenant whose dataset NAME it is [default: the "
                                             "only one].")
@_otlp_options
@config_option
@endpoint_option
@database_option
def import_(name: str, file: str, environment: str, replace: bool, tenant: str | None, otlp_endpoint: str | None,
            protocol: str | None, config_path: str | None, endpoint: str | None, database: str | None) -> None:
    """Add or replace examples of dataset NAME from FILE, one JSON object per line: {"id", "input",
    "expected_output", "metadata", "source"} as `export` writes them (only input is required). An example
    with the id of one already stored replaces it; with --replace, stored examples not in FILE are deleted.
    A file with a bad line is not sent at all."""
    try:
        with (sys.stdin.buffer if file == "-" else open(file, "rb")) as f:
            examples = parse_lines(f, "standard input" if file == "-" else file)
    except OSError as exc:
        raise SpanhouseError(f"cannot read {file}: {exc.strerror or exc}") from None
    except DatasetFileError:
        raise
    if not examples:
        raise SpanhouseError(f"{file} holds no example (one JSON object per line)")
    target = _target(config_path, otlp_endpoint, protocol)
    stale: list[str] = []
    owner = ""
    if replace:
        reader = open_reader(config_path=config_path, endpoint=endpoint, database=database)
        try:
            if tenant is not None or _reading(reader, lambda: read.tenants_of(reader, name)):
                owner = _tenant(reader, name, tenant)
                stale = sorted(_reading(reader, lambda: read.example_ids(reader, name, owner))
                               - {e.id for e in examples})
        finally:
            reader.close()
    batch = send.records(name, examples, environment=environment)
    if stale:
        # without auth the tenant is the one the record names; with auth the receiver stamps the token's
        batch += send.records(name, [Example(i, "") for i in stale], deleted=True,
                              attributes=[{sc.SPANHOUSE_TENANT_ID: owner} if owner else {}] * len(stale))
    send.send(batch, *target)
    click.echo(f"sent {len(examples)} example(s) to dataset {name!r} (new, or replacing those with the same id)"
               + (f" and deleted {len(stale)} not in {file}" if replace else "") + f"; {_STORED}")


@command.command("export")
@click.argument("name")
@click.option("-o", "--output", default="-", show_default=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="File to write (created 0600, replaced if it exists); - is standard output.")
@click.option("--tenant", default=None, help="The tenant whose dataset NAME to export [default: the only one].")
@config_option
@endpoint_option
@database_option
def export(name: str, output: str, tenant: str | None, config_path: str | None, endpoint: str | None,
           database: str | None) -> None:
    """Write dataset NAME as JSON lines ({"id", "input", "expected_output", "metadata", "source"}), the
    form `import` reads: edit it, check it into a repository, or take it with you."""
    reader = open_reader(config_path=config_path, endpoint=endpoint, database=database)
    count = 0
    try:
        owner = _tenant(reader, name, tenant)
        fd = None if output == "-" else open_private_file(output, truncate=True)
        try:
            rows = _reading(reader, lambda: list(read.examples(reader, name, owner)))
            data = b"".join(write_lines(e for e, _ in rows))
            count = len(rows)
            if fd is None:
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
            else:
                _write_all(fd, data)
        except OSError as exc:
            raise SpanhouseError(f"cannot write {output}: {exc.strerror or exc}") from None
        finally:
            if fd is not None:
                os.close(fd)
    finally:
        reader.close()
    where = "standard output" if output == "-" else output
    click.echo(f"exported {count} example(s) of dataset {name!r} to {where}", err=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


@command.command("list")
@config_option
@endpoint_option
@database_option
def list_(config_path: str | None, endpoint: str | None, database: str | None) -> None:
    """The datasets, with their example counts and last change."""
    from rich.table import Table

    reader = open_reader(config_path=config_path, endpoint=endpoint, database=database)
    try:
        found = _reading(reader, lambda: read.datasets(reader))
    finally:
        reader.close()
    if not found:
        click.echo("no dataset has examples yet: spanhouse dataset create NAME --from-traces, or "
                   "spanhouse dataset import NAME FILE.jsonl")
        return
    table = Table("dataset", "tenant", "examples", "with expected output", "last change (UTC)")
    for d in found:
        table.add_row(plain(d.name), plain(d.tenant or "-"), str(d.examples), str(d.with_expected),
                      d.last_change.strftime("%Y-%m-%d %H:%M:%S"))
    wide_console().print(table)


@command.command("show")
@click.argument("name")
@click.option("--tenant", default=None, help="The tenant whose dataset NAME to show [default: the only one].")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@config_option
@endpoint_option
@database_option
def show(name: str, tenant: str | None, limit: int, config_path: str | None, endpoint: str | None,
         database: str | None) -> None:
    """The examples of dataset NAME, with the trace each came from (open it with `spanhouse trace`)."""
    from rich.table import Table

    reader = open_reader(config_path=config_path, endpoint=endpoint, database=database)
    try:
        owner = _tenant(reader, name, tenant)
        rows = _reading(reader, lambda: _first(read.examples(reader, name, owner), limit + 1))
    finally:
        reader.close()
    table = Table("example id", "expected output", "input", "changed (UTC)")
    table.add_column("source trace", no_wrap=True, min_width=32)
    for example, when in rows[:limit]:
        table.add_row(plain(example.id), plain(_excerpt(example.expected_output) or "-"),
                      plain(_excerpt(example.input)), when.strftime("%Y-%m-%d %H:%M:%S"), example.trace_id or "-")
    wide_console().print(table)
    more = f" (first {limit}; --limit for more)" if len(rows) > limit else ""
    click.echo(f"dataset {clean(name)!r}{' of tenant ' + repr(owner) if owner else ''}: {min(len(rows), limit)} "
               f"example(s) shown{more}; open a source with: spanhouse trace <source trace>")


def _first(rows: Any, n: int) -> list[tuple[Example, Any]]:
    out = []
    for row in rows:
        out.append(row)
        if len(out) >= n:
            break
    return out


def _excerpt(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


@command.command("delete")
@click.argument("name")
@click.argument("ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Delete every example of the dataset.")
@click.option("--tenant", default=None, help="The tenant whose dataset NAME it is [default: the only one].")
@_otlp_options
@config_option
@endpoint_option
@database_option
def delete(name: str, ids: tuple[str, ...], everything: bool, tenant: str | None, otlp_endpoint: str | None,
           protocol: str | None, config_path: str | None, endpoint: str | None, database: str | None) -> None:
    """Delete examples IDS (or --all) of dataset NAME."""
    if bool(ids) == everything:
        raise click.UsageError("name the example ids to delete, or pass --all")
    reader = open_reader(config_path=config_path, endpoint=endpoint, database=database)
    try:
        owner = _tenant(reader, name, tenant)
        present = _reading(reader, lambda: read.example_ids(reader, name, owner))
    finally:
        reader.close()
    unknown = sorted(set(ids) - present)
    if unknown:
        raise SpanhouseError(f"dataset {name!r} has no example {', '.join(map(repr, unknown[:10]))}; nothing "
                             "was deleted (`spanhouse dataset show` lists the ids)")
    chosen = sorted(present) if everything else list(dict.fromkeys(ids))
    target = _target(config_path, otlp_endpoint, protocol)
    # without auth the tenant is the one the record names; with auth the receiver stamps the token's
    marks = [{sc.SPANHOUSE_TENANT_ID: owner} if owner else {}] * len(chosen)
    send.send(send.records(name, [Example(i, "") for i in chosen], deleted=True, attributes=marks), *target)
    click.echo(f"deleted {len(chosen)} example(s) of dataset {name!r}; {_STORED}")
