"""Process helpers for the benchmarks: free ports, waiting for a server, and reading a process's CPU
time, resident memory and peak resident memory from /proc (the embedded ClickHouse is in the process)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 120.0, proc: subprocess.Popen | None = None, ok=(200,)) -> None:
    """Wait until `url` answers with one of `ok`; fail early if `proc` exits."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status in ok:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code in ok:
                return
            last = str(exc)
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:g}s ({last})")


def wait_port(port: int, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"port {port} did not open within {timeout:g}s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its reaped children (all its threads included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / CLOCK_TICKS


def tree_pids(pid: int) -> list[int]:
    """`pid` and its live descendants (servers such as Phoenix run workers in child processes)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class ResourceMonitor:
    """Samples RSS of a process tree once a second; `peak_mib` is the larger of the sampled maximum and
    the kernel's high-water mark (VmHWM) of the main process."""

    def __init__(self, pid: int, interval: float = 1.0):
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.monotonic()

    def start(self) -> ResourceMonitor:
        self._thread.start()
        return self

    def rss_mib(self) -> float:
        return sum(status_kib(p, "VmRSS") for p in tree_pids(self.pid)) / 1024

    def cpu(self) -> float:
        total = 0.0
        for p in tree_pids(self.pid):
            try:
                total += cpu_seconds(p)
            except OSError:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append((time.monotonic() - self._t0, self.rss_mib()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def peak_mib(self) -> float:
        sampled = max((m for _, m in self.samples), default=0.0)
        return max(sampled, status_kib(self.pid, "VmHWM") / 1024)

    def growth(self) -> dict:
        """RSS over the run: mean of the first and the last fifth of the samples, to show (no) growth."""
        if len(self.samples) < 5:
            return {}
        k = max(1, len(self.samples) // 5)
        first = sum(m for _, m in self.samples[:k]) / k
        last = sum(m for _, m in self.samples[-k:]) / k
        return {"rss_first_fifth_mib": round(first, 1), "rss_last_fifth_mib": round(last, 1),
                "samples": len(self.samples)}


def stop_process(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM the process group it leads, then SIGKILL after `timeout`."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
