"""Load generator: pre-serialized OTLP trace requests sent over OTLP/HTTP (protobuf or JSON, gzip on or
off) or OTLP/gRPC by concurrent clients, with per-request acknowledgement latencies.

The client does as little as possible per request so it is not the bottleneck: bodies are built and
serialized once (`Bodies`); per send, only the first four bytes of every trace id are overwritten with a
send counter (uncompressed bodies), so every send stores distinct traces. Gzip bodies are compressed
ahead of time from a pool of distinct requests and repeat after the pool is exhausted.

Run by hand, e.g.:

    python benchmarks/loadgen.py --url http://127.0.0.1:4318 --concurrency 4 --duration 20
"""

from __future__ import annotations

import argparse
import base64
import gzip
import http.client
import itertools
import json
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlparse

import grpc
import payload
from google.protobuf import json_format

GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TRANSPORTS = ("http-protobuf", "http-json", "grpc")


def otlp_json(req) -> bytes:
    """OTLP/JSON of a request: like protobuf's JSON mapping, but ids are hex, as the OTLP spec requires."""
    doc = json_format.MessageToDict(req)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for sp in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in sp:
                        sp[key] = base64.b64decode(sp[key]).hex()
                for lk in sp.get("links", []):
                    for key in ("traceId", "spanId"):
                        if key in lk:
                            lk[key] = base64.b64decode(lk[key]).hex()
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass
class Body:
    """One serialized request, and where its trace ids sit (for per-send stamping)."""

    data: bytes
    spans: int
    id_offsets: list[int] = field(default_factory=list)
    hex_ids: bool = False


class Bodies:
    """A pool of distinct pre-serialized requests for one transport and encoding.

    `next()` returns the bytes to send; for uncompressed bodies each call stamps a fresh counter into
    every trace id, so stored traces never repeat (a 2**32 sends cycle)."""

    def __init__(self, transport: str, gzip_on: bool, *, pool: int = 8, traces_per_request: int = 100,
                 convention: str = "mixed", seed: int = 1):
        self.transport, self.gzip = transport, gzip_on
        self.bodies: list[Body] = []
        for i in range(pool):
            req = payload.build_request(seed * 1000 + i, traces_per_request, convention)
            spans = sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
            trace_ids = {sp.trace_id for rs in req.resource_spans for ss in rs.scope_spans for sp in ss.spans}
            if transport == "http-json":
                data, needles, hex_ids = otlp_json(req), [t.hex().encode() for t in trace_ids], True
            else:
                data, needles, hex_ids = req.SerializeToString(), list(trace_ids), False
            if gzip_on and transport != "grpc":
                self.bodies.append(Body(gzip.compress(data, 6), spans))
                continue
            offsets = []
            for needle in needles:
                at = data.find(needle)
                while at >= 0:
                    offsets.append(at)
                    at = data.find(needle, at + 1)
            self.bodies.append(Body(data, spans, offsets, hex_ids))
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def spans_per_request(self) -> int:
        return self.bodies[0].spans

    def next(self) -> tuple[bytes, int]:
        with self._lock:
            n = next(self._counter)
        body = self.bodies[n % len(self.bodies)]
        if not body.id_offsets:
            return body.data, body.spans
        buf = bytearray(body.data)
        stamp = (b"%08x" % (n & 0xFFFFFFFF)) if body.hex_ids else struct.pack(">I", n & 0xFFFFFFFF)
        width = len(stamp)
        for at in body.id_offsets:
            buf[at:at + width] = stamp
        return bytes(buf), body.spans


class Sender:
    """Sends one body and returns True when the server acknowledged it (HTTP 200 / gRPC OK)."""

    def __init__(self, transport: str, url: str, gzip_on: bool, headers: dict[str, str] | None = None,
                 path: str = "/v1/traces", timeout: float = 60):
        self.transport = transport
        u = urlparse(url if "://" in url else f"http://{url}")
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 4318
        self.path = (u.path.rstrip("/") or "") + path if transport != "grpc" else ""
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json" if transport == "http-json" else "application/x-protobuf"}
        if gzip_on:
            self.headers["Content-Encoding"] = "gzip"
        self.headers.update(headers or {})
        self.gzip = gzip_on
        self._conn: http.client.HTTPConnection | None = None
        self._call: Callable | None = None
        self.last_error = ""
        self.retry_after = 0.0

    def send(self, data: bytes) -> bool:
        if self.transport == "grpc":
            return self._send_grpc(data)
        for attempt in range(2):
            try:
                if self._conn is None:
                    self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                self._conn.request("POST", self.path, body=data, headers=self.headers)
                resp = self._conn.getresponse()
                body = resp.read()
                if resp.status == 200:
                    return True
                self.last_error = f"HTTP {resp.status}: {body[:200]!r}"
                try:
                    self.retry_after = float(resp.getheader("Retry-After", "") or 0)
                except ValueError:
                    self.retry_after = 0.0
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return False
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                self.last_error = f"{type(exc).__name__}: {exc}"
                if attempt:
                    return False
        return False

    def _send_grpc(self, data: bytes) -> bool:
        if self._call is None:
            channel = grpc.insecure_channel(f"{self.host}:{self.port}", options=[
                ("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)])
            self._channel = channel
            self._call = channel.unary_unary(GRPC_METHOD, request_serializer=None, response_deserializer=None)
        try:
            self._call(data, timeout=self.timeout, compression=grpc.Compression.Gzip if self.gzip else None)
            return True
        except grpc.RpcError as exc:
            self.last_error = f"gRPC {exc.code().name}: {exc.details()}"
            return False

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass
class LoadResult:
    """What the clients saw: acknowledged and refused requests, and acknowledgement latencies."""

    started: float
    finished: float
    requests_ok: int = 0
    requests_failed: int = 0
    spans_ok: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    concurrency: int = 1
    target_rps: float = 0.0

    @property
    def seconds(self) -> float:
        return self.finished - self.started

    @property
    def spans_per_s(self) -> float:
        return self.spans_ok / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

    def summary(self) -> dict:
        return {"seconds": round(self.seconds, 3), "requests_ok": self.requests_ok,
                "requests_failed": self.requests_failed, "spans_acked": self.spans_ok,
                "acked_spans_per_s": round(self.spans_per_s, 1), "concurrency": self.concurrency,
                "target_requests_per_s": round(self.target_rps, 2),
                "latency_ms": {f"p{p}": round(self.percentile(p), 2) for p in (50, 95, 99)},
                "errors": dict(sorted(self.errors.items(), key=lambda kv: -kv[1])[:5])}


def run_load(bodies: Bodies, url: str, *, concurrency: int = 4, duration: float = 20.0,
             max_requests: int = 0, rate: float = 0.0, headers: dict[str, str] | None = None,
             path: str = "/v1/traces", retry_refused: bool = True) -> LoadResult:
    """Send for `duration` seconds (or `max_requests` requests) from `concurrency` threads.

    `rate` > 0 paces the whole client to that many requests per second on a fixed schedule (latency at a
    given load); 0 sends as fast as acknowledgements come back. A refused request (e.g. 503) is counted,
    and with `retry_refused` sent again after its Retry-After (else 1 s, doubling up to 8 s), as an OTLP
    exporter would."""
    result = LoadResult(time.monotonic(), 0.0, concurrency=concurrency, target_rps=rate)
    lock = threading.Lock()
    issued = itertools.count()
    deadline = result.started + duration

    def worker() -> None:
        sender = Sender(bodies.transport, url, bodies.gzip, headers, path)
        try:
            while True:
                n = next(issued)
                if max_requests and n >= max_requests:
                    return
                if rate:
                    due = result.started + n / rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                if time.monotonic() >= deadline:
                    return
                data, spans = bodies.next()
                backoff = 1.0
                while True:
                    t0 = time.monotonic()
                    ok = sender.send(data)
                    ms = (time.monotonic() - t0) * 1000
                    with lock:
                        if ok:
                            result.requests_ok += 1
                            result.spans_ok += spans
                            result.latencies_ms.append(ms)
                        else:
                            result.requests_failed += 1
                            key = sender.last_error[:120]
                            result.errors[key] = result.errors.get(key, 0) + 1
                    if ok or not retry_refused or time.monotonic() >= deadline + 30:
                        break
                    # as OTLP exporters do: honour Retry-After, else back off exponentially
                    time.sleep(sender.retry_after or backoff)
                    sender.retry_after, backoff = 0.0, min(backoff * 2, 8.0)
        finally:
            sender.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.finished = time.monotonic()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:4318", help="OTLP/HTTP base URL or gRPC host:port")
    ap.add_argument("--transport", choices=TRANSPORTS, default="http-protobuf")
    ap.add_argument("--gzip", action="store_true")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=0.0, help="requests/s for the whole client (0: as fast as acked)")
    ap.add_argument("--traces-per-request", type=int, default=100)
    ap.add_argument("--convention", choices=payload.CONVENTIONS, default="mixed")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    bodies = Bodies(args.transport, args.gzip, traces_per_request=args.traces_per_request,
                    convention=args.convention, seed=args.seed)
    res = run_load(bodies, args.url, concurrency=args.concurrency, duration=args.duration, rate=args.rate)
    print(json.dumps(res.summary(), indent=2))


if __name__ == "__main__":
    main()
