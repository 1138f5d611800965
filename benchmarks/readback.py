"""Reading back at volume: fill a fresh store with N synthetic spans (default 10 million, written by
ClickHouse itself through spanhouse's schema and views, ~300 B of attributes each, 5 spans per trace
over the last 24 h), then time what users run:

- `spanhouse trace <id>`'s query (`load_trace`, through the trace-id lookup table), in-process;
- the most expensive traces of the last 24 h (`genai_spans`, sum of CostUsd per trace, top 10);
- what the CLI itself runs over the last 24 h: `spanhouse top-traces` by cost and by duration (cost,
  tokens, root, status and copies of each trace) and the summary of `spanhouse costs`.

Run by hand: `python benchmarks/readback.py --spans 10000000` (prints JSON; needs ~2 GB of disk).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from spanhouse import semconv as sc  # noqa: E402
from spanhouse.analytics import summary, top_traces  # noqa: E402
from spanhouse.cli.trace import load_trace  # noqa: E402
from spanhouse.reader import Reader  # noqa: E402
from spanhouse.store import StoreSettings, connect, create_schema  # noqa: E402

FILL = """
INSERT INTO {traces} (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName,
                      ResourceAttributes, SpanAttributes, Duration, StatusCode)
SELECT
    now64(9) - toIntervalSecond(intDiv(number, 5) * 86000 / {traces_n}) + toIntervalMillisecond(number % 5 * 300)
        AS Timestamp,
    lower(hex(MD5(toString(intDiv(number, 5))))) AS TraceId,
    substring(lower(hex(MD5(toString(number)))), 1, 16) AS SpanId,
    if(number % 5 = 0, '', substring(lower(hex(MD5(toString(number - number % 5)))), 1, 16)) AS ParentSpanId,
    ['invoke_workflow support_copilot', 'chat gpt-4o-mini', 'retrieval kb_articles',
     'execute_tool lookup_order', 'chat gpt-4o'][number % 5 + 1] AS SpanName,
    if(number % 5 = 0, 'Server', 'Client') AS SpanKind,
    'support-copilot' AS ServiceName,
    map({service}, 'support-copilot', {environment}, 'production') AS ResourceAttributes,
    if(number % 5 IN (1, 4),
       map({operation}, 'chat', {provider}, 'openai', {model}, if(number % 5 = 1, 'gpt-4o-mini', 'gpt-4o'),
           {input_tokens}, toString(200 + number % 1500), {output_tokens}, toString(10 + number % 400),
           {cost}, toString(round((200 + number % 1500) * 2.5e-6 + (10 + number % 400) * 1e-5, 6)),
           {conversation}, concat('conv-', toString(intDiv(number, 50)))),
       map({operation}, 'invoke_workflow', {conversation}, concat('conv-', toString(intDiv(number, 50)))))
        AS SpanAttributes,
    (100 + number % 3000) * 1000000 AS Duration,
    if(number % 97 = 0, 'Error', 'Unset') AS StatusCode
FROM numbers({start}, {count})
"""

TOP_COST = """
SELECT TraceId, sum(CostUsd) AS cost, count() AS calls
FROM {genai_spans}
WHERE Timestamp >= now() - INTERVAL 24 HOUR
GROUP BY TraceId ORDER BY cost DESC LIMIT 10
"""


def _lit(s: str) -> str:
    return "'" + s.replace("'", "\\'") + "'"


def run(spans: int, workdir: Path, repeats: int = 20) -> dict:
    settings = StoreSettings(endpoint=f"chdb://{workdir / 'store'}", database="otel")
    client = connect(settings)
    create_schema(client, settings)
    traces = f"`{settings.database}`.`{settings.traces_table_name}`"
    names = {"service": sc.SERVICE_NAME, "environment": sc.DEPLOYMENT_ENVIRONMENT_NAME,
             "operation": sc.GEN_AI_OPERATION_NAME, "provider": sc.GEN_AI_PROVIDER_NAME,
             "model": sc.GEN_AI_REQUEST_MODEL, "input_tokens": sc.GEN_AI_USAGE_INPUT_TOKENS,
             "output_tokens": sc.GEN_AI_USAGE_OUTPUT_TOKENS, "cost": sc.SPANHOUSE_COST_USD,
             "conversation": sc.GEN_AI_CONVERSATION_ID}
    t0 = time.monotonic()
    step = 1_000_000
    for start in range(0, spans, step):
        client.command(FILL.format(traces=traces, traces_n=max(1, spans // 5), start=start,
                                   count=min(step, spans - start), **{k: _lit(v) for k, v in names.items()}))
    fill_s = time.monotonic() - t0
    stored = client.query(f"SELECT count() FROM {traces}").result_rows[0][0]
    ids = [r[0] for r in client.query(f"SELECT TraceId FROM {traces} WHERE ParentSpanId = '' "
                                      f"ORDER BY cityHash64(TraceId) LIMIT {repeats}").result_rows]
    reader = Reader(client, settings, "direct")
    load_trace(reader, ids[0])  # first query: caches and marks
    trace_ms = []
    for tid in ids:
        t = time.perf_counter()
        found = load_trace(reader, tid)
        trace_ms.append((time.perf_counter() - t) * 1000)
        assert len(found) == 5, (tid, len(found))
    top_sql = TOP_COST.format(genai_spans=f"`{settings.database}`.`genai_spans`")
    top_ms = []
    for _ in range(5):
        t = time.perf_counter()
        rows = client.query(top_sql).result_rows
        top_ms.append((time.perf_counter() - t) * 1000)
    cli: dict[str, dict] = {}
    # what the CLI runs over the last 24 h: `top-traces` (by cost, by duration) and `costs`' summary
    for name, fn in (("top_traces_cost", lambda: top_traces(reader, 86400, "cost", 10)),
                     ("top_traces_duration", lambda: top_traces(reader, 86400, "duration", 10)),
                     ("costs_summary", lambda: summary(reader, 86400))):
        ms = []
        for _ in range(5):
            t = time.perf_counter()
            fn()
            ms.append((time.perf_counter() - t) * 1000)
        cli[name] = {"p50": round(statistics.median(ms), 1), "max": round(max(ms), 1)}
    client.close()
    return {"name": "readback", "spans": stored, "fill_seconds": round(fill_s, 1), "cli_24h_ms": cli,
            "trace_lookup_ms": {"p50": round(statistics.median(trace_ms), 1), "max": round(max(trace_ms), 1),
                                "runs": len(trace_ms)},
            "top_cost_traces_24h_ms": {"p50": round(statistics.median(top_ms), 1), "max": round(max(top_ms), 1),
                                       "rows": len(rows)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spans", type=int, default=10_000_000)
    ap.add_argument("--workdir", help="directory for the store (default: a temporary one)")
    args = ap.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="spanhouse-readback-"))
    print(json.dumps(run(args.spans, workdir), indent=2))


if __name__ == "__main__":
    main()
