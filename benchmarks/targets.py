"""The servers a benchmark run measures, each started as a subprocess on free ports of 127.0.0.1:
spanhouse with a given pipeline, the null receiver, Arize Phoenix and MLflow (in virtualenvs of their own
under benchmarks/.work/, created on first use). Each target says where to send OTLP and how many spans it
has stored so far."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

from procs import free_port, stop_process, wait_http, wait_port

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
REPO = HERE.parent


class Target:
    """A server under test. `start()` returns once it accepts OTLP; `stored()` counts spans queryable."""

    name = "target"
    kind = "spanhouse"
    transports = ("http-protobuf", "http-json", "grpc")
    headers: dict[str, str] = {}

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.info: dict = {}

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def url(self, transport: str) -> str:
        return self.grpc_url if transport == "grpc" else self.http_url

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _spawn(self, cmd: list[str], env: dict | None = None, cwd: Path | None = None) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "server.log", "wb")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                     cwd=cwd or self.workdir, start_new_session=True)

    def stored(self) -> int:
        raise NotImplementedError

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join((self.workdir / "server.log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


# --- spanhouse ---------------------------------------------------------------------------------

GENAI_PROCESSORS = ("genai_normalize", "genai_cost", "genai_redact")

# name → (GenAI processors wanted, file-backed sending queue)
SPANHOUSE_CONFIGS: dict[str, tuple[tuple[str, ...], bool]] = {
    "full_default": (GENAI_PROCESSORS, True),
    "no_redact": (("genai_normalize", "genai_cost"), True),
    "storage_only": ((), False),
}


def installed_processors() -> set[str]:
    from spanhouse.component import Kind, default_registry

    return set(default_registry().types(Kind.PROCESSOR))


class Spanhouse(Target):
    """`spanhouse serve` as the default config runs it: memory_limiter (1 GiB) → [GenAI processors] →
    clickhouse (own chDB) with the file-backed sending queue batching inserts; without the queue
    (`storage_only`), the batch processor batches and answers wait for the insert."""

    kind = "spanhouse"

    def __init__(self, workdir: Path, config_name: str):
        super().__init__(workdir)
        wanted, queue = SPANHOUSE_CONFIGS[config_name]
        have = installed_processors()
        self.name = f"spanhouse:{config_name}"
        self.processors = ["memory_limiter", *[p for p in wanted if p in have], *([] if queue else ["batch"])]
        self.missing = [p for p in wanted if p not in have]
        self.queue = queue
        self.sql_port = free_port()
        self.health_port = free_port()
        store = workdir / "store"
        exporter: dict = {"endpoint": f"chdb://{store}", "database": "otel", "ttl": "720h", "create_schema": True}
        if queue:
            exporter["sending_queue"] = {"storage": "file", "directory": str(workdir / "queue"),
                                         "batch": {"flush_timeout": "1s", "min_size": 8192}}
        self.config = {
            "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": self.grpc_url},
                                                 "http": {"endpoint": f"127.0.0.1:{self.http_port}"}}}},
            "processors": {"memory_limiter": {"limit_mib": 1024},
                           **({} if queue else {"batch": {"send_batch_size": 8192, "timeout": "200ms"}}),
                           **{p: {} for p in self.processors if p.startswith("genai_")}},
            "exporters": {"clickhouse": exporter},
            "extensions": {"health_check": {"endpoint": f"127.0.0.1:{self.health_port}"},
                           "sql_query": {"endpoint": f"127.0.0.1:{self.sql_port}"}},
            "service": {"extensions": ["health_check", "sql_query"],
                        "pipelines": {"traces": {"receivers": ["otlp"], "processors": self.processors,
                                                 "exporters": ["clickhouse"]}}},
        }
        self.info = {"processors": self.processors, "missing_processors": self.missing,
                     "file_queue_configured": queue}

    @property
    def signature(self) -> tuple:
        """Two configs with the same signature run the same code."""
        return tuple(self.processors), self.queue

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        path = self.workdir / "config.yaml"
        path.write_text(json.dumps(self.config, indent=2))
        self._spawn([sys.executable, "-m", "spanhouse.cli", "serve", "-c", str(path)])
        wait_http(f"http://127.0.0.1:{self.health_port}/", timeout=180, proc=self.proc)

    def query(self, sql: str) -> str:
        url = f"http://127.0.0.1:{self.sql_port}/?" + urllib.parse.urlencode({"query": sql})
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.read().decode()

    def stored(self) -> int:
        return int(self.query("SELECT count() FROM otel.otel_traces").strip())


class NullReceiver(Target):
    """Parses each request and answers; stores nothing (its `stored` is what it acknowledged)."""

    name = "null_receiver"
    kind = "baseline"

    def __init__(self, workdir: Path):
        super().__init__(workdir)
        self.acked = 0

    def start(self) -> None:
        self._spawn([sys.executable, str(HERE / "null_receiver.py"), "--http-port", str(self.http_port),
                     "--grpc-port", str(self.grpc_port)])
        wait_port(self.http_port, proc=self.proc)

    def stored(self) -> int:
        return self.acked


# --- peers -------------------------------------------------------------------------------------


def ensure_venv(name: str, package: str, executable: str) -> Path:
    """benchmarks/.work/venv-<name> with `package` installed (pip, on first use); returns its bin dir."""
    venv = WORK / f"venv-{name}"
    bindir = venv / "bin"
    if not (bindir / executable).exists():
        WORK.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(bindir / "pip"), "install", "--quiet", package], check=True)
    return bindir


def _package_version(bindir: Path, package: str) -> str:
    script = f"import importlib.metadata as m; print(m.version({package!r}))"
    out = subprocess.run([str(bindir / "python"), "-c", script],
                         capture_output=True, text=True)
    return out.stdout.strip()


def _sqlite_count(path: Path, table: str) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as c:
            return int(c.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except sqlite3.Error:
        return 0


class Phoenix(Target):
    """`phoenix serve` (SQLite in its working dir); OTLP/HTTP protobuf on /v1/traces, OTLP/gRPC."""

    name = "arize_phoenix"
    kind = "peer"
    transports = ("http-protobuf", "grpc")

    def start(self) -> None:
        bindir = ensure_venv("phoenix", "arize-phoenix", "phoenix")
        self.info = {"version": _package_version(bindir, "arize-phoenix"), "storage": "sqlite"}
        data = self.workdir / "phoenix"
        data.mkdir(parents=True, exist_ok=True)
        self._spawn([str(bindir / "phoenix"), "serve"], env={
            "PHOENIX_WORKING_DIR": str(data), "PHOENIX_PORT": str(self.http_port),
            "PHOENIX_GRPC_PORT": str(self.grpc_port), "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_TELEMETRY_ENABLED": "false"})
        wait_http(f"{self.http_url}/healthz", timeout=240, proc=self.proc, ok=(200,))
        self.db = data / "phoenix.db"

    def stored(self) -> int:
        return _sqlite_count(self.db, "spans")


class Mlflow(Target):
    """`mlflow server` with a SQLite store; OTLP/HTTP protobuf on /v1/traces with x-mlflow-experiment-id."""

    name = "mlflow"
    kind = "peer"
    transports = ("http-protobuf",)

    def start(self) -> None:
        bindir = ensure_venv("mlflow", "mlflow", "mlflow")
        self.info = {"version": _package_version(bindir, "mlflow"), "storage": "sqlite"}
        self.db = self.workdir / "mlflow.db"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._spawn([str(bindir / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.http_port),
                     "--backend-store-uri", f"sqlite:///{self.db}", "--default-artifact-root",
                     str(self.workdir / "artifacts"), "--workers", "1"])
        wait_http(f"{self.http_url}/health", timeout=240, proc=self.proc)
        req = urllib.request.Request(f"{self.http_url}/api/2.0/mlflow/experiments/create",
                                     data=json.dumps({"name": "spanhouse-bench"}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            self.headers = {"x-mlflow-experiment-id": str(json.load(r)["experiment_id"])}

    def stored(self) -> int:
        return _sqlite_count(self.db, "spans")


def clean(workdir: Path) -> None:
    shutil.rmtree(workdir, ignore_errors=True)
