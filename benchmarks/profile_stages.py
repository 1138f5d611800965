"""In-process, per-stage cost of spanhouse's hot path in microseconds per span, on the benchmark payload:
decode (OTLP protobuf → SpanBatch), each GenAI processor with its default config (reported `missing`
when it is not installed, never faked), batch (concatenating requests into one 8000-span batch), encode
(the clickhouse exporter's insert encoding) and insert (ClickHouse's side of the same insert: parsing,
materialized views, writing the part). Single-threaded, best of `--repeat` runs.

    python benchmarks/profile_stages.py            # table
    python benchmarks/profile_stages.py --json     # JSON, as run_all.py records it
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import payload  # noqa: E402
from targets import GENAI_PROCESSORS as PROCESSORS  # noqa: E402

from spanhouse.batch import SpanBatch  # noqa: E402
from spanhouse.component import ComponentID, CreateSettings, Kind, default_registry  # noqa: E402
from spanhouse.exporters import clickhouse  # noqa: E402
from spanhouse.otlp.decode import decode_traces_protobuf  # noqa: E402


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _encoder():
    """The exporter's encoder, when this branch has it (the harness also runs on older code)."""
    try:
        from spanhouse.exporters.clickhouse_encode import encode_columns
    except ImportError:
        return None
    return lambda batch: encode_columns(clickhouse.TRACE_COLUMNS, clickhouse.trace_columns(batch))


def run(requests: int = 16, traces_per_request: int = 100, convention: str = "mixed", repeat: int = 3) -> dict:
    bodies = [payload.build_request(1000 + i, traces_per_request, convention).SerializeToString()
              for i in range(requests)]
    spans = requests * traces_per_request * payload.SPANS_PER_TRACE
    stages: list[dict] = []

    def stage(name: str, seconds: float | None, note: str = "") -> None:
        stages.append({"stage": name, "us_per_span": round(seconds / spans * 1e6, 2) if seconds is not None else None,
                       "note": note})

    stage("decode", best(lambda: [decode_traces_protobuf(b) for b in bodies], repeat))

    registry = default_registry()
    fresh = lambda: [decode_traces_protobuf(b).batch for b in bodies]  # noqa: E731
    for name in PROCESSORS:
        factory = registry.get(Kind.PROCESSOR, name)
        if factory is None:
            stage(name, None, "missing (not installed on this branch)")
            continue
        proc = factory.create(CreateSettings(ComponentID(name)), factory.config())
        if hasattr(proc, "start"):
            proc.start(None)
        times = []
        for _ in range(repeat):
            batches = fresh()
            t = time.perf_counter()
            for b in batches:
                proc.process(b)
            times.append(time.perf_counter() - t)
        if hasattr(proc, "shutdown"):
            proc.shutdown()
        stage(name, min(times), "default config")

    batches = fresh()
    stage("batch", best(lambda: SpanBatch.concat(batches), repeat), "concat 16 requests")
    big = SpanBatch.concat(batches)

    store = tempfile.mkdtemp(prefix="spanhouse-profile-")
    exporter = clickhouse.ClickHouseExporter(clickhouse.ClickHouseConfig(endpoint=f"chdb://{store}", database="otel"))
    exporter.start(None)
    encode = getattr(exporter, "insert_encoded", None) and _encoder()
    if encode is not None:
        stage("encode", best(lambda: encode(big), repeat), "trace_columns + JSONColumns (orjson)")
        body = encode(big)
        stage("insert", best(lambda: exporter.insert_encoded(body, len(big)), repeat),
              "ClickHouse parses, runs the views, writes the part (GIL released)")
    else:
        stage("encode", best(lambda: clickhouse.trace_columns(big), repeat), "trace_columns")
    stage("push (encode+insert)", best(lambda: exporter.push(big), repeat), "what the exporter does per batch")
    exporter.shutdown()
    python = sum(s["us_per_span"] or 0 for s in stages if s["stage"] in ("decode", "batch", "encode", *PROCESSORS))
    return {"spans": spans, "bytes_per_span": round(sum(map(len, bodies)) / spans), "stages": stages,
            "python_us_per_span": round(python, 2), "table": render(stages)}


def render(stages: list[dict]) -> str:
    lines = [f"{'stage':<22} {'µs/span':>9}  note", f"{'-' * 22} {'-' * 9}  {'-' * 30}"]
    for s in stages:
        v = "-" if s["us_per_span"] is None else f"{s['us_per_span']:.2f}"
        lines.append(f"{s['stage']:<22} {v:>9}  {s['note']}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--convention", choices=payload.CONVENTIONS, default="mixed")
    args = ap.parse_args()
    out = run(convention=args.convention, repeat=args.repeat)
    print(json.dumps(out, indent=2) if args.json else out["table"])


if __name__ == "__main__":
    main()
