"""An experiment, run by hand: would spanhouse store more spans/s on this machine if the Python stages
ran in worker processes instead of on the server's one CPU thread?

Each variant stores the benchmark payload in a fresh embedded ClickHouse for `--seconds`. With 0 workers,
threads of this process decode each request, run the default GenAI processors and encode the insert
body, as the server does (one GIL). With N workers, N processes do that work, taking request bytes and
giving back the JSONColumns insert body, so only bytes cross between processes. Either way one thread
of this process merges bodies into inserts of 8,192 spans or what came within 1 s, as the default
sending queue does.

    python benchmarks/worker_processes.py --seconds 20      # 0, 1 and 2 workers; prints JSON

For each variant: stored spans/s (rows counted in ClickHouse once everything is inserted) and CPU
seconds per 1k spans of all processes, the embedded ClickHouse included.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import payload  # noqa: E402
from procs import cpu_seconds, tree_pids  # noqa: E402
from targets import GENAI_PROCESSORS  # noqa: E402

MERGE_ROWS, FLUSH_S = 8192, 1.0  # the default sending queue's batch: min_size, flush_timeout
_chain: list = []


def _start_chain() -> None:
    """Build the processors with their default configs (in each worker, or once in-process)."""
    from spanhouse import gcpolicy
    from spanhouse.component import ComponentID, CreateSettings, Kind, default_registry

    logging.disable(logging.WARNING)  # the random-key warning of genai_redact, once per process
    registry = default_registry()
    for name in GENAI_PROCESSORS:
        factory = registry.get(Kind.PROCESSOR, name)
        proc = factory.create(CreateSettings(ComponentID(name)), factory.config())
        if hasattr(proc, "start"):
            proc.start(None)
        _chain.append(proc)
    gcpolicy.settle()


def _work(body: bytes) -> tuple[bytes, int]:
    """One request: decode, the processors, the insert body. Returns (JSONColumns body, spans)."""
    from spanhouse.exporters.clickhouse import TRACE_COLUMNS, trace_columns
    from spanhouse.exporters.clickhouse_encode import encode_columns
    from spanhouse.otlp.decode import decode_traces_protobuf

    batch = decode_traces_protobuf(body).batch
    for proc in _chain:
        batch = proc.process(batch)
    encoded = encode_columns(TRACE_COLUMNS, trace_columns(batch))
    if encoded is None:
        raise RuntimeError("the payload could not be encoded as JSONColumns")
    return encoded, len(batch)


def _tree_cpu() -> float:
    total = 0.0
    for pid in tree_pids(os.getpid()):
        try:
            total += cpu_seconds(pid)
        except OSError:
            pass
    return total


def run_variant(workers: int, seconds: float, requests: int, traces_per_request: int) -> dict:
    """One variant, in this process; `main` gives each variant a fresh process (one embedded store each)."""
    from spanhouse.exporters.clickhouse import TRACE_COLUMNS
    from spanhouse.store import connect, create_schema, settings_from

    bodies = [payload.build_request(1000 + i, traces_per_request, "mixed").SerializeToString()
              for i in range(requests)]
    # the pool is started before the embedded ClickHouse loads, so no worker inherits its threads
    pool = multiprocessing.get_context("forkserver").Pool(workers, initializer=_start_chain) if workers else None
    if pool is None:
        _start_chain()
        run = _work
    else:
        for _ in range(workers):  # the pool answers (processors built) before the clock starts
            pool.apply(time.sleep, (0,))
        run = lambda body: pool.apply(_work, (body,))  # noqa: E731
    workdir = tempfile.mkdtemp(prefix="spanhouse-workers-")
    settings = settings_from({"endpoint": f"chdb://{workdir}", "database": "otel", "create_schema": True})
    client = connect(settings)
    create_schema(client, settings)
    table = settings.table(settings.traces_table_name)

    done: queue.Queue = queue.Queue(maxsize=32)
    stop_at = time.monotonic() + seconds
    errors: list[str] = []

    def produce(k: int) -> None:
        i = k
        try:
            while time.monotonic() < stop_at:
                done.put(run(bodies[i % len(bodies)]))
                i += 1
        except Exception as exc:  # reported in the result, not lost in a thread
            errors.append(repr(exc))
        finally:
            done.put(None)

    producers = [threading.Thread(target=produce, args=(k,)) for k in range(2 * workers or 1)]
    cpu0, t0 = _tree_cpu(), time.monotonic()
    for t in producers:
        t.start()
    inserted, running = 0, len(producers)
    while running:
        parts, rows, item = [], 0, done.get()
        flush_at = time.monotonic() + FLUSH_S
        while True:
            if item is None:
                running -= 1
            else:
                parts.append(item[0])
                rows += item[1]
            wait = flush_at - time.monotonic()
            if rows >= MERGE_ROWS or not running or wait <= 0:
                break
            try:
                item = done.get(timeout=wait)
            except queue.Empty:
                break
        if parts:
            client.raw_insert(table, TRACE_COLUMNS, iter(parts), fmt="JSONColumns",
                              settings={"insert_deduplication_token": uuid.uuid4().hex})
            inserted += rows
    elapsed, cpu = time.monotonic() - t0, _tree_cpu() - cpu0
    for t in producers:
        t.join()
    stored = int(client.query(f"SELECT count() FROM {table}").result_rows[0][0])
    if pool is not None:
        pool.terminate()
    return {"workers": workers, "seconds": round(elapsed, 1), "inserted_spans": inserted, "stored_spans": stored,
            "stored_spans_per_s": round(stored / elapsed, 1),
            "cpu_s_per_1k_spans": round(cpu / stored * 1000, 4) if stored else None, "errors": errors}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--workers", default="0,1,2", help="worker counts to compare, each in a fresh process")
    ap.add_argument("--requests", type=int, default=16, help="distinct requests cycled through")
    ap.add_argument("--traces-per-request", type=int, default=100, help="5 spans per trace")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(run_variant(args.child, args.seconds, args.requests, args.traces_per_request)))
        return
    results = []
    for n in (int(w) for w in args.workers.split(",") if w):
        out = subprocess.run([sys.executable, __file__, "--child", str(n), "--seconds", str(args.seconds),
                              "--requests", str(args.requests), "--traces-per-request", str(args.traces_per_request)],
                             capture_output=True, text=True, timeout=args.seconds + 600)
        if out.returncode != 0:
            results.append({"workers": n, "error": (out.stderr.strip().splitlines() or ["failed"])[-1]})
        else:
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(json.dumps({"name": "worker_processes", "cores": os.cpu_count(), "variants": results}, indent=2))


if __name__ == "__main__":
    main()
