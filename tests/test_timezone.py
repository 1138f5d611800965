"""The store and the CLI keep UTC whatever the time zone of the machine the embedded engine runs on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

# 11:45:30 UTC; in Asia/Kolkata (UTC+5:30) that is 17:15:30, and its hour starts at 11:30 UTC
START_NS = 1_765_107_930 * 10**9

SCRIPT = textwrap.dedent(f"""
    import json, sys
    from spanhouse import semconv as sc
    from spanhouse.batch import Resource, Scope, SpanBatch
    from spanhouse.exporters.clickhouse import ClickHouseConfig, ClickHouseExporter
    from spanhouse.store import connect

    store = sys.argv[1]
    batch = SpanBatch()
    batch.resources.append(Resource({{sc.SERVICE_NAME: "tz"}}))
    batch.scopes.append(Scope("s"))
    batch.append(resource=0, scope=0, trace_id="ab" * 16, span_id="cd" * 8, name="chat gpt-4o",
                 start_time_unix_nano={START_NS}, end_time_unix_nano={START_NS} + 10**9,
                 attributes={{sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "gpt-4o"}})
    config = ClickHouseConfig(endpoint="chdb://" + store, database="otel")
    exporter = ClickHouseExporter(config)
    exporter.start(None)
    exporter.push(batch)
    exporter.shutdown()
    client = connect(config)
    hours = client.query("SELECT toString(Hour, 'UTC') FROM otel.genai_rollup_hourly").result_rows
    shown = client.query("SELECT Timestamp FROM otel.otel_traces").result_rows
    print(json.dumps({{"hours": [h for (h,) in hours], "shown": [str(t)[:19] for (t,) in shown]}}))
""")


def test_rollup_hours_and_shown_times_are_utc_on_a_machine_in_another_time_zone(tmp_path):
    env = dict(os.environ, TZ="Asia/Kolkata")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "store")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["hours"] == ["2025-12-07 11:00:00"]
    assert out["shown"] == ["2025-12-07 11:45:30"]  # what the CLI prints under "start (UTC)"
