"""The native ceiling: ClickHouse (chDB, in-process) parses the very ExportTraceServiceRequest bytes the
load generator sends, with its own Protobuf input format, and stores them in spanhouse's `otel_traces`
(same DDL, same materialized views). No Python touches a span.

The request is read as `ProtobufSingle` through `file()` with a structure shaped like the proto
(`input_format_protobuf_oneof_presence=1` says which AnyValue field is set), and one
`INSERT ... SELECT` flattens resource → scope → span with ARRAY JOIN and stringifies attribute values
as the Collector does (ints in decimal, bools `true`/`false`, arrays as JSON). Nested array/kvlist
values deeper than one level are outside this schema (the benchmark payload has none).

Run by hand: `python benchmarks/native_ceiling.py --seconds 20` (prints JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import payload  # noqa: E402
import protoschema  # noqa: E402

_ONEOF = ("Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, "
          "'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8)")
_SCALAR = "string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String"
_VALUE = (f"Tuple({_SCALAR}, array_value Tuple(values Array(Tuple({_SCALAR}, value {_ONEOF}))), "
          f"value {_ONEOF})")
_KVS = f"Array(Tuple(key String, value {_VALUE}))"
STRUCTURE = (
    "resource_spans Array(Tuple("
    f"resource Tuple(attributes {_KVS}), "
    "scope_spans Array(Tuple(scope Tuple(name String, version String), "
    "spans Array(Tuple(trace_id String, span_id String, trace_state String, parent_span_id String, "
    "name String, kind Int32, start_time_unix_nano UInt64, end_time_unix_nano UInt64, "
    f"attributes {_KVS}, "
    f"events Array(Tuple(time_unix_nano UInt64, name String, attributes {_KVS})), "
    f"links Array(Tuple(trace_id String, span_id String, trace_state String, attributes {_KVS})), "
    "status Tuple(message String, code Int32)))))))"
)


def _scalar(v: str) -> str:
    """The Collector's string form of a scalar AnyValue held in tuple `v`."""
    return (f"multiIf({v}.value = 'string_value', {v}.string_value, {v}.value = 'int_value', toString({v}.int_value), "
            f"{v}.value = 'bool_value', if({v}.bool_value, 'true', 'false'), "
            f"{v}.value = 'double_value', toString({v}.double_value), "
            f"{v}.value = 'bytes_value', base64Encode({v}.bytes_value), '')")


def _any(v: str) -> str:
    array = f"concat('[', arrayStringConcat(arrayMap(x -> if(x.value = 'string_value', toJSONString(x.string_value), " \
            f"{_scalar('x')}), {v}.array_value.values), ','), ']')"
    return f"if({v}.value = 'array_value', {array}, {_scalar(v)})"


def _map(kvs: str) -> str:
    return f"mapFromArrays(arrayMap(kv -> kv.key, {kvs}), arrayMap(kv -> {_any('kv.value')}, {kvs}))"


def _hex(b: str) -> str:
    return f"lower(hex({b}))"


_KINDS = "['Unspecified', 'Internal', 'Server', 'Client', 'Producer', 'Consumer']"
_STATUS = "['Unset', 'Ok', 'Error']"

SELECT = f"""
SELECT
    fromUnixTimestamp64Nano(toInt64(sp.start_time_unix_nano)) AS Timestamp,
    {_hex('sp.trace_id')} AS TraceId, {_hex('sp.span_id')} AS SpanId, {_hex('sp.parent_span_id')} AS ParentSpanId,
    sp.trace_state AS TraceState, sp.name AS SpanName,
    {_KINDS}[if(sp.kind BETWEEN 0 AND 5, sp.kind + 1, 1)] AS SpanKind,
    res['service.name'] AS ServiceName, res AS ResourceAttributes,
    ss.scope.name AS ScopeName, ss.scope.version AS ScopeVersion,
    {_map('sp.attributes')} AS SpanAttributes,
    if(sp.end_time_unix_nano >= sp.start_time_unix_nano, sp.end_time_unix_nano - sp.start_time_unix_nano, 0)
        AS Duration,
    {_STATUS}[if(sp.status.code BETWEEN 0 AND 2, sp.status.code + 1, 1)] AS StatusCode,
    sp.status.message AS StatusMessage,
    arrayMap(e -> fromUnixTimestamp64Nano(toInt64(e.time_unix_nano)), sp.events) AS `Events.Timestamp`,
    arrayMap(e -> e.name, sp.events) AS `Events.Name`,
    arrayMap(e -> {_map('e.attributes')}, sp.events) AS `Events.Attributes`,
    arrayMap(l -> lower(hex(l.trace_id)), sp.links) AS `Links.TraceId`,
    arrayMap(l -> lower(hex(l.span_id)), sp.links) AS `Links.SpanId`,
    arrayMap(l -> l.trace_state, sp.links) AS `Links.TraceState`,
    arrayMap(l -> {_map('l.attributes')}, sp.links) AS `Links.Attributes`
FROM (
    SELECT {_map('rs.resource.attributes')} AS res, rs.scope_spans AS scope_spans
    FROM file({{path}}, 'ProtobufSingle', {{structure}})
    ARRAY JOIN resource_spans AS rs
)
ARRAY JOIN scope_spans AS ss
ARRAY JOIN ss.spans AS sp
"""

COLUMNS = ("Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName, "
           "ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode, StatusMessage, "
           "`Events.Timestamp`, `Events.Name`, `Events.Attributes`, `Links.TraceId`, `Links.SpanId`, "
           "`Links.TraceState`, `Links.Attributes`")


def _quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


class NativeIngest:
    """A chDB store with spanhouse's schema that ingests raw OTLP protobuf requests by itself."""

    def __init__(self, workdir: Path, database: str = "otel"):
        from chdb import session

        from spanhouse.store import StoreSettings, render_schema

        self.workdir = workdir
        self.schema_dir = workdir / "proto"
        self.format_schema = protoschema.write_schema(self.schema_dir)
        self.spool = Path(tempfile.mkdtemp(prefix="native-ceiling-", dir="/dev/shm" if os.path.isdir("/dev/shm")
                                           else None))
        # ClickHouse resolves .proto imports relative to the working directory of the engine
        os.chdir(self.schema_dir)
        self.session = session.Session(str(workdir / "chdb"))
        version = self.session.query("SELECT version()", "TSV").bytes().decode().strip()
        self.clickhouse_version = version
        major_minor = tuple(int(x) for x in version.split(".")[:2])
        settings = StoreSettings(endpoint=f"chdb://{workdir / 'chdb'}", database=database)
        for _, sql in render_schema(settings, major_minor):
            self.session.query(sql)
        self.table = settings.table(settings.traces_table_name)
        self._n = 0
        self._lock = threading.Lock()

    def insert(self, body: bytes) -> None:
        with self._lock:
            self._n += 1
            path = self.spool / f"req-{self._n}.bin"
        path.write_bytes(body)
        try:
            sql = (f"INSERT INTO {self.table} ({COLUMNS}) "
                   + SELECT.format(path=_quote(str(path)), structure=_quote(STRUCTURE))
                   + f" SETTINGS format_schema={_quote(self.format_schema)}, input_format_protobuf_oneof_presence=1")
            self.session.query(sql)
        finally:
            path.unlink(missing_ok=True)

    def count(self) -> int:
        return int(self.session.query(f"SELECT count() FROM {self.table}", "TSV").bytes().decode().strip())

    def query(self, sql: str) -> str:
        return self.session.query(sql, "TSV").bytes().decode()

    def close(self) -> None:
        self.session.close()
        shutil.rmtree(self.spool, ignore_errors=True)


def run(workdir: Path, *, seconds: float = 20.0, threads: int = 2, traces_per_request: int = 100,
        requests_per_insert: int = 16, convention: str = "mixed", seed: int = 1, pool: int = 4) -> dict:
    """Ingest pre-serialized requests for `seconds` from `threads` threads; spans/s stored and CPU.

    `requests_per_insert` requests are stored by one INSERT, as spanhouse's `batch` processor does (16
    requests of 500 spans ≈ its send_batch_size of 8192): serialized protobuf messages concatenate into
    one valid message, so ClickHouse still parses the bytes the clients sent."""
    from procs import ResourceMonitor, cpu_seconds

    bodies = []
    for i in range(pool):
        parts = [payload.build_request(seed * 1000 + i * requests_per_insert + j, traces_per_request,
                                       convention).SerializeToString() for j in range(requests_per_insert)]
        bodies.append(b"".join(parts))
    spans_per = traces_per_request * payload.SPANS_PER_TRACE * requests_per_insert
    ingest = NativeIngest(workdir)
    ingest.insert(bodies[0])  # warm-up: schema parsing, first part
    base = ingest.count()
    monitor = ResourceMonitor(os.getpid()).start()
    cpu0 = cpu_seconds(os.getpid())
    sent = [0]
    lock = threading.Lock()
    t0 = time.monotonic()
    deadline = t0 + seconds

    def worker(k: int) -> None:
        i = k
        while time.monotonic() < deadline:
            ingest.insert(bodies[i % len(bodies)])
            i += threads
            with lock:
                sent[0] += spans_per

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.monotonic() - t0
    stored = ingest.count() - base
    cpu = cpu_seconds(os.getpid()) - cpu0
    monitor.stop()
    check = ingest.query(f"SELECT SpanKind, StatusCode, SpanAttributes['{payload.sc.GEN_AI_USAGE_INPUT_TOKENS}'], "
                         f"SpanAttributes['{payload.sc.GEN_AI_RESPONSE_FINISH_REASONS}'] FROM {ingest.table} "
                         "WHERE SpanName LIKE 'chat%' LIMIT 1").strip()
    ingest.close()
    return {"name": "native_ceiling", "kind": "baseline", "stored_spans": stored, "seconds": round(elapsed, 3),
            "stored_spans_per_s": round(stored / elapsed, 1), "threads": threads, "sample_row": check,
            "spans_per_insert": spans_per,
            "cpu_s_per_1k_spans": round(cpu / max(1, stored) * 1000, 4), "peak_rss_mib": round(monitor.peak_mib, 1),
            "clickhouse_version": ingest.clickhouse_version, "ok": stored == sent[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description="chDB parses OTLP protobuf itself and stores it in otel_traces")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--traces-per-request", type=int, default=100)
    ap.add_argument("--requests-per-insert", type=int, default=16)
    ap.add_argument("--convention", choices=payload.CONVENTIONS, default="mixed")
    ap.add_argument("--workdir", help="directory for the store (default: a temporary one)")
    args = ap.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="spanhouse-native-"))
    print(json.dumps(run(workdir, seconds=args.seconds, threads=args.threads,
                         traces_per_request=args.traces_per_request, requests_per_insert=args.requests_per_insert,
                         convention=args.convention), indent=2))


if __name__ == "__main__":
    main()
