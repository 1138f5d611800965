"""Fault injection with real processes: every span that got a 200 is stored exactly once.

What is real and what is simulated:

- `spanhouse serve` runs as a real subprocess; clients speak real OTLP/HTTP over loopback.
- Storage is always the real ClickHouse engine (chDB). In the outage scenarios it runs in a second
  process (tests/chstandin.py) behind a ClickHouse-HTTP endpoint, so the `clickhouse` exporter uses
  its `http://` path; the outage is simulated at that network boundary: the port is closed
  (connections refused), every request answers 503, inserts run but their answer is replaced by a
  503 (an ambiguous failure), or every request is delayed.
- Crashes are real: SIGKILL and SIGTERM to the serve process.

Each scenario prints its figures (spans sent / acknowledged / stored / duplicates).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest
from procs import Load, Serve, StandIn, stored, wait_until

FAST_RETRY = {"initial_interval": "100ms", "max_interval": "500ms", "max_elapsed_time": "0"}


def _get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _report(name: str, figures: dict) -> None:
    print(f"\n[{name}] " + ", ".join(f"{k}={v}" for k, v in figures.items()))


@pytest.fixture
def standin(tmp_path):
    s = StandIn.start(tmp_path / "clickhouse")
    yield s
    s.stop()


def test_clickhouse_outage_from_start_then_recovery_stores_every_acknowledged_span_once(tmp_path, standin):
    standin.mode("refuse")  # ClickHouse is down before spanhouse starts
    serve = Serve.configure(tmp_path / "serve", exporter={
        "endpoint": standin.endpoint, "compress": "none", "timeout": "2s",
        "sending_queue": {"storage": "file", "directory": "./queue", "queue_size": 25, "num_consumers": 2,
                          "batch": {"min_size": 200, "flush_timeout": "50ms"}},
        "retry_on_failure": FAST_RETRY})
    try:
        serve.start()
        load = Load(serve.http_url, spans=20)
        # room in the queue: accepted (fsynced) while ClickHouse refuses connections
        load.run(0, 25, threads=4)
        assert load.statuses == {200: 25}, load.statuses
        # the Jaeger API started too, and says the store does not answer yet
        status, body = _get_json(serve.jaeger_url + "/api/services")
        assert status == 500 and "could not answer" in body["errors"][0]["msg"]
        # the queue is full: throttled with a retryable 429 and Retry-After, never an unbounded buffer
        standin.mode("503")
        load.run(25, 10, threads=2)
        assert load.statuses.get(429) == 10 and load.retry_after, load.statuses
        # ClickHouse runs the inserts but the answers are lost: spanhouse must retry, and the retries
        # must not duplicate anything (insert deduplication tokens)
        standin.mode("lost-ack")
        assert wait_until(lambda: standin.stats()["inserts_run"] >= 2, 60)
        standin.mode("ok")
        wait_until(lambda: stored(standin.rows, load)["stored"] >= load.acked_spans, 90)
        time.sleep(1.0)  # let any straggling retry land, so a duplicate would show
        figures = stored(standin.rows, load)
        _report("clickhouse outage", figures | {"answers": dict(sorted(load.statuses.items())),
                                                 "inserts_lost_ack": standin.stats()["inserts_run"]
                                                 - standin.stats()["inserts_answered"]})
        assert figures["missing"] == 0 and figures["duplicates"] == 0
        assert figures["stored"] == figures["acknowledged"] == 25 * 20
        assert _get_json(serve.jaeger_url + "/api/services") == (200, {
            "data": ["faults"], "total": 1, "limit": 0, "offset": 0, "errors": None})
        # the derived tables were not duplicated either
        assert standin.rows("SELECT count() FROM otel.otel_traces_trace_id_ts")[0][0] >= 25
        # a second outage, now that the exporter is connected: the same again
        standin.mode("refuse")
        load.run(100, 10, threads=2)
        standin.mode("ok")
        wait_until(lambda: stored(standin.rows, load)["missing"] == 0, 60)
        time.sleep(1.0)
        again = stored(standin.rows, load)
        _report("second outage", again | {"answers": dict(sorted(load.statuses.items()))})
        assert again["missing"] == 0 and again["duplicates"] == 0 and again["stored"] == 35 * 20
        assert serve.terminate() == 0
    finally:
        serve.cleanup()


def test_kill9_and_sigterm_mid_load_lose_and_duplicate_nothing(tmp_path):
    serve = Serve.configure(tmp_path / "serve", exporter={
        "endpoint": f"chdb://{tmp_path / 'store'}", "database": "otel",
        # a long flush timeout keeps acknowledged batches in the queue when the process dies
        "sending_queue": {"storage": "file", "directory": "./queue", "num_consumers": 2,
                          "batch": {"min_size": 100000, "flush_timeout": "700ms"}},
        "retry_on_failure": FAST_RETRY})
    load = Load(serve.http_url, spans=25)
    try:
        serve.start()
        stop = threading.Event()
        sender = threading.Thread(target=load.run, args=(0, 100000, 4, stop))
        sender.start()
        wait_until(lambda: len(load.acked) >= 60, 30, 0.02)
        serve.kill9()
        stop.set()
        sender.join()
        acked_before = len(load.acked)

        serve.start()
        assert "replaying" in serve.output()
        stop = threading.Event()
        sender = threading.Thread(target=load.run, args=(100000, 100000, 4, stop))
        sender.start()
        wait_until(lambda: len(load.acked) >= acked_before + 60, 30, 0.02)
        assert serve.terminate() == 0  # graceful: in-flight requests answered, the queue kept
        stop.set()
        sender.join()

        serve.start()
        figures = wait_until(lambda: (f := stored(serve.rows, load))["missing"] == 0 and f, 60)
        time.sleep(1.0)
        figures = stored(serve.rows, load)
        _report("kill -9 and SIGTERM", figures | {"answers": dict(sorted(load.statuses.items()))})
        assert figures["missing"] == 0 and figures["duplicates"] == 0
        assert figures["acknowledged"] >= 120 * 25
        assert serve.terminate() == 0
    finally:
        serve.cleanup()


def test_slow_exporter_with_a_full_queue_pushes_back_and_memory_stays_under_the_limit(tmp_path, standin):
    limit_mib = 600
    serve = Serve.configure(tmp_path / "serve", exporter={
        "endpoint": standin.endpoint, "compress": "none", "timeout": "10s",
        "sending_queue": {"enabled": True, "storage": "memory", "queue_size": 8, "num_consumers": 1},
        "retry_on_failure": FAST_RETRY},
        processors={"memory_limiter": {"limit_mib": limit_mib, "spike_limit_mib": 100,
                                       "check_interval": "100ms"}})
    try:
        serve.start()
        standin.mode("slow", delay=2.0)
        load = Load(serve.http_url, spans=2000, pad=200)  # about 0.9 MB of JSON per request
        peak = [serve.rss_mib()]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak.append(serve.rss_mib())
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        load.run(0, 60, threads=6)
        stop.set()
        sampler.join()
        assert load.statuses.get(429, 0) + load.statuses.get(503, 0) > 0, load.statuses
        assert set(load.statuses) <= {200, 429, 503}, load.statuses
        assert max(peak) < limit_mib, f"peak RSS {max(peak):.0f} MiB"
        standin.mode("ok")
        figures = wait_until(lambda: (f := stored(standin.rows, load))["missing"] == 0 and f, 90)
        figures = stored(standin.rows, load)
        _report("slow exporter", figures | {"answers": dict(sorted(load.statuses.items())),
                                            "peak_rss_mib": round(max(peak)), "limit_mib": limit_mib})
        assert figures["missing"] == 0 and figures["duplicates"] == 0
        assert serve.terminate() == 0
    finally:
        serve.cleanup()


def test_serve_without_clickhouse_and_no_queue_answers_503_and_recovers(tmp_path, standin):
    standin.mode("refuse")
    serve = Serve.configure(tmp_path / "serve", exporter={
        "endpoint": standin.endpoint, "compress": "none", "timeout": "1s",
        "retry_on_failure": {"enabled": False}})
    try:
        serve.start()
        load = Load(serve.http_url, spans=5)
        assert load.send(0) == 503 and load.retry_after
        standin.mode("ok")
        assert wait_until(lambda: load.send(1) == 200, 30, 0.5)
        assert standin.rows("SELECT count() FROM otel.otel_traces")[0][0] == 5
        assert serve.terminate() == 0
    finally:
        serve.cleanup()

