"""Real processes for fault-injection tests: `spanhouse serve` and the ClickHouse stand-in (chstandin.py),
each on free ports on 127.0.0.1, plus a small OTLP/HTTP load generator that records every answer."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import clickhouse_connect
import yaml
from support import free_port

HERE = Path(__file__).parent


def _wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout}s")


@dataclass
class StandIn:
    """The ClickHouse stand-in process: real chDB behind a ClickHouse HTTP endpoint with faults."""

    proc: subprocess.Popen
    data_port: int
    control_port: int

    @classmethod
    def start(cls, store: Path) -> StandIn:
        data, control = free_port(), free_port()
        args = [sys.executable, str(HERE / "chstandin.py"), str(store), str(data), str(control)]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.strip() == b"ready", line
        return cls(proc, data, control)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.data_port}"

    def mode(self, mode: str, delay: float = 0) -> None:
        url = f"http://127.0.0.1:{self.control_port}/mode?m={mode}&delay={delay}"
        with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10):
            pass

    def stats(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.control_port}/stats", timeout=10) as resp:
            return json.loads(resp.read())

    def rows(self, sql: str) -> list[tuple]:
        client = clickhouse_connect.get_client(host="127.0.0.1", port=self.data_port, compress=False)
        try:
            return client.query(sql).result_rows
        finally:
            client.close()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@dataclass
class Serve:
    """`spanhouse serve` in a subprocess, with its own working directory and ports."""

    workdir: Path
    config: dict
    proc: subprocess.Popen | None = None
    log: Any = None

    @classmethod
    def configure(cls, workdir: Path, exporter: dict, processors: dict | None = None,
                  receiver: dict | None = None) -> Serve:
        workdir.mkdir(parents=True, exist_ok=True)
        procs = processors or {}
        cfg = {
            "receivers": {"otlp": receiver or {"protocols": {
                "http": {"endpoint": f"127.0.0.1:{free_port()}"}, "grpc": {"endpoint": f"127.0.0.1:{free_port()}"}}}},
            "processors": procs,
            "exporters": {"clickhouse": exporter},
            # every read extension, as deploy/spanhouse/config.yaml has: none may hold up ingestion
            "extensions": {"health_check": {"endpoint": f"127.0.0.1:{free_port()}"},
                           "sql_query": {"endpoint": f"127.0.0.1:{free_port()}"},
                           "jaeger_query": {"endpoint": f"127.0.0.1:{free_port()}"}},
            "service": {"extensions": ["health_check", "sql_query", "jaeger_query"], "pipelines": {"traces": {
                "receivers": ["otlp"], "processors": list(procs), "exporters": ["clickhouse"]}}},
        }
        (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
        return cls(workdir, cfg)

    @property
    def http_url(self) -> str:
        return "http://" + self.config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]

    @property
    def health_url(self) -> str:
        return "http://" + self.config["extensions"]["health_check"]["endpoint"] + "/"

    @property
    def jaeger_url(self) -> str:
        return "http://" + self.config["extensions"]["jaeger_query"]["endpoint"]

    @property
    def sql_port(self) -> int:
        return int(self.config["extensions"]["sql_query"]["endpoint"].rsplit(":", 1)[1])

    def start(self, timeout: float = 60) -> None:
        self.log = open(self.workdir / "serve.log", "ab")
        args = [sys.executable, "-m", "spanhouse.cli", "-v", "serve", "-c", "config.yaml"]
        self.proc = subprocess.Popen(args, cwd=self.workdir, stdout=self.log, stderr=subprocess.STDOUT)
        _wait_http(self.health_url, timeout, self.proc)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def terminate(self, timeout: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def output(self) -> str:
        return (self.workdir / "serve.log").read_text(errors="replace")

    def rss_mib(self) -> float:
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def rows(self, sql: str) -> list[tuple]:
        client = clickhouse_connect.get_client(host="127.0.0.1", port=self.sql_port, database="otel",
                                               compress=False)
        try:
            return client.query(sql).result_rows
        finally:
            client.close()

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        if self.log is not None:
            self.log.close()


def request_body(request_no: int, spans: int, pad: int = 0) -> bytes:
    """An OTLP/JSON request whose spans are identified by (request_no, index)."""
    now = time.time_ns()
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "faults"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": f"{request_no + 1:032x}", "spanId": f"{i + 1:016x}", "name": "work",
            "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 1000),
            "attributes": [{"key": "pad", "value": {"stringValue": "x" * pad}}] if pad else []}
            for i in range(spans)]}]}]}).encode()


@dataclass
class Load:
    """Sends OTLP/HTTP requests and records the answer to each: `acked` holds the request numbers that
    got 200; `statuses` counts every answer (0 = no answer: connection error or timeout)."""

    url: str
    spans: int
    pad: int = 0
    acked: set[int] = field(default_factory=set)
    statuses: dict[int, int] = field(default_factory=dict)
    sent: int = 0
    retry_after: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, request_no: int) -> int:
        body = request_body(request_no, self.spans, self.pad)
        req = urllib.request.Request(self.url + "/v1/traces", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=20) as resp:
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            if exc.headers.get("Retry-After"):
                with self._lock:
                    self.retry_after.add(exc.headers["Retry-After"])
        except OSError:
            status = 0
        with self._lock:
            self.sent += 1
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 200:
                self.acked.add(request_no)
        return status

    def run(self, first: int, count: int, threads: int, stop: threading.Event | None = None) -> None:
        """Send requests `first`..`first+count-1` from `threads` threads (until `stop` is set)."""
        numbers = iter(range(first, first + count))
        lock = threading.Lock()

        def worker() -> None:
            while stop is None or not stop.is_set():
                with lock:
                    n = next(numbers, None)
                if n is None or self.send(n) == 0:
                    return  # the server is gone: a real client would not hammer a closed port either

        workers = [threading.Thread(target=worker) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    @property
    def acked_spans(self) -> int:
        return len(self.acked) * self.spans


def stored(rows_fn, load: Load) -> dict[str, int]:
    """Figures for a scenario: spans sent, acknowledged, stored, duplicates, and acknowledged-but-missing."""
    total, distinct = rows_fn("SELECT count(), uniqExact(TraceId, SpanId) FROM otel.otel_traces")[0]
    present = {int(t, 16) - 1 for (t,) in rows_fn("SELECT DISTINCT TraceId FROM otel.otel_traces")}
    return {"sent": load.sent * load.spans, "acknowledged": load.acked_spans, "stored": int(total),
            "duplicates": int(total - distinct), "missing": len(load.acked - present) * load.spans}


def wait_until(fn, timeout: float, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)

