"""One command for the whole benchmark: the native ceiling, the null receiver, spanhouse's pipelines,
Arize Phoenix and MLflow, measured in one run on this machine with the same payload; then the in-process
per-stage profile. Prints a table and writes benchmarks/results/<timestamp>.json with machine info.

    python benchmarks/run_all.py                       # everything, ~15 minutes on 2 cores
    python benchmarks/run_all.py --skip-peers --seconds 10
    python benchmarks/run_all.py --soak 600            # adds a 10-minute RSS soak of the full pipeline
    python benchmarks/run_all.py --readback-spans 0    # without the 10-million-span read-back

For each server: clients send pre-serialized requests (500 spans, ~2.3 KB/span) as fast as they are
acknowledged for `--seconds`; `acked/s` is what the clients saw, `stored/s` counts until the rows are
queryable (spanhouse: `count()` through its sql_query endpoint; peers: their SQLite `spans` table).
Then a second phase sends at half the acknowledged rate, on a fixed schedule, for the latency
percentiles. RSS is sampled from /proc (peak = max of samples and VmHWM); CPU is user+system time of
the server's process tree during the throughput phase.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen  # noqa: E402
import payload  # noqa: E402
import targets  # noqa: E402
from procs import ResourceMonitor  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def machine_info() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    versions = {}
    for pkg in ("chdb", "chdb-core", "clickhouse-connect", "protobuf", "grpcio", "orjson", "opentelemetry-proto"):
        try:
            import importlib.metadata as md

            versions[pkg] = md.version(pkg)
        except Exception:
            versions[pkg] = ""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout
    return {"cpu_model": cpu, "cores": os.cpu_count(), "ram_gib": round(mem_kib / 2**20, 1),
            "python": platform.python_version(), "platform": platform.platform(), "packages": versions,
            "git_commit": commit.strip(), "load_average_start": os.getloadavg()}


def wait_stored(target: targets.Target, expected: int, *, stall: float, limit: float) -> tuple[float, int]:
    """Poll `stored()` until it reaches `expected`, stops growing for `stall` s, or `limit` s pass.
    Returns (monotonic time the last growth was seen, count)."""
    start = time.monotonic()
    last, last_change = target.stored(), time.monotonic()
    while last < expected and time.monotonic() - start < limit:
        time.sleep(0.25)
        n = target.stored()
        if n != last:
            last, last_change = n, time.monotonic()
        elif time.monotonic() - last_change > stall:
            break
    return last_change, last


def measure(target: targets.Target, transport: str, gzip_on: bool, args: argparse.Namespace, *,
            peer: bool = False, soak: float = 0.0) -> dict:
    bodies = loadgen.Bodies(transport, gzip_on, traces_per_request=args.traces_per_request,
                            convention=args.convention, seed=args.seed)
    url = target.url(transport)
    row: dict = {"name": target.name, "kind": target.kind, "transport": transport + ("+gzip" if gzip_on else ""),
                 **target.info}
    t_start = time.monotonic()
    target.start()
    row["startup_s"] = round(time.monotonic() - t_start, 1)
    row.update(target.info)
    monitor = ResourceMonitor(target.pid).start()
    try:
        warm = loadgen.run_load(bodies, url, concurrency=1, max_requests=2, duration=120, headers=target.headers)
        if isinstance(target, targets.NullReceiver):
            target.acked += warm.spans_ok
        wait_stored(target, warm.spans_ok, stall=60, limit=300)
        base = target.stored()
        cpu0 = monitor.cpu()
        t0 = time.monotonic()
        res = loadgen.run_load(bodies, url, concurrency=args.concurrency,
                               duration=args.peer_seconds if peer else args.seconds,
                               max_requests=args.peer_requests if peer else 0, headers=target.headers,
                               retry_refused=not peer)
        if isinstance(target, targets.NullReceiver):
            target.acked += res.spans_ok
        stored_at, count = wait_stored(target, base + res.spans_ok, stall=60 if peer else 30,
                                       limit=args.peer_wait if peer else 180)
        stored = count - base
        cpu = monitor.cpu() - cpu0
        e2e_seconds = max(stored_at, res.finished) - t0
        row.update({
            "throughput": res.summary(),
            "acked_spans_per_s": round(res.spans_per_s, 1),
            "stored_spans": stored,
            "stored_spans_per_s": round(stored / e2e_seconds, 1) if e2e_seconds > 0 else 0.0,
            "lost_spans": max(0, res.spans_ok - stored),
            "cpu_s_per_1k_spans": round(cpu / max(1, stored) * 1000, 4),
        })
        if not peer and res.requests_ok:
            rate = 0.5 * res.requests_ok / res.seconds
            lat = loadgen.run_load(bodies, url, concurrency=max(4, args.concurrency), duration=args.latency_seconds,
                                   rate=rate, headers=target.headers)
            if isinstance(target, targets.NullReceiver):
                target.acked += lat.spans_ok
            wait_stored(target, target.stored() + 0, stall=5, limit=5)
            row["half_rate_latency"] = lat.summary()
        if soak and res.requests_ok:
            _, before = wait_stored(target, 1 << 62, stall=10, limit=120)  # earlier phases fully stored
            monitor.samples.clear()
            rate = 0.9 * res.requests_ok / res.seconds
            s = loadgen.run_load(bodies, url, concurrency=max(4, args.concurrency), duration=soak, rate=rate,
                                 headers=target.headers)
            growth = {**monitor.growth(), "peak_rss_mib": round(monitor.peak_mib, 1)}
            _, after = wait_stored(target, before + s.spans_ok, stall=30, limit=300)
            row["soak"] = {"seconds": soak, "target_rate_spans_per_s": round(rate * bodies.spans_per_request, 1),
                           "load": s.summary(), **growth, "stored_spans": after - before,
                           "lost_spans": max(0, s.spans_ok - (after - before))}
        row["peak_rss_mib"] = round(monitor.peak_mib, 1)
        row["ok"] = stored >= res.spans_ok and res.requests_failed == 0
    except Exception as exc:
        row["error"] = f"{type(exc).__name__}: {exc}"
        row["server_log_tail"] = target.log_tail()
    finally:
        monitor.stop()
        target.stop()
    return row


def run_script(script: str, extra: list[str], timeout: float) -> dict:
    out = subprocess.run([sys.executable, str(HERE / script), *extra], capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0:
        return {"name": script, "error": out.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(out.stdout)


def fmt(x, digits=0) -> str:
    if x is None or x == "":
        return "-"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def table(rows: list[dict], ceiling: float) -> str:
    head = ("system", "transport", "acked/s", "stored/s", "% native", "p50 ms", "p99 ms", "p99@½ ms",
            "peak RSS MiB", "CPU s/1k", "lost")
    lines = [head]
    for r in rows:
        tp = r.get("throughput", {}).get("latency_ms", {})
        half = r.get("half_rate_latency", {}).get("latency_ms", {})
        stored = r.get("stored_spans_per_s")
        pct = f"{100 * stored / ceiling:.0f}%" if stored and ceiling else "-"
        label = r["name"] + (" (ERROR)" if "error" in r else "") + ("*" if r.get("missing_processors") else "")
        lines.append((label, r.get("transport", "in-process"),
                      fmt(r.get("acked_spans_per_s")), fmt(stored), pct, fmt(tp.get("p50"), 1), fmt(tp.get("p99"), 1),
                      fmt(half.get("p99"), 1), fmt(r.get("peak_rss_mib")), fmt(r.get("cpu_s_per_1k_spans"), 3),
                      fmt(r.get("lost_spans"))))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = []
    for k, line in enumerate(lines):
        cells = (str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
        out.append("  ".join(cells))
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="throughput phase per server")
    ap.add_argument("--latency-seconds", type=float, default=15.0, help="half-rate latency phase per server")
    ap.add_argument("--concurrency", type=int, default=32,
                    help="concurrent clients (acks wait for storage, so a full 8192-span batch needs 17 requests "
                         "in flight; 32 let the next batch fill while one is inserted)")
    ap.add_argument("--traces-per-request", type=int, default=100, help="5 spans per trace")
    ap.add_argument("--convention", choices=payload.CONVENTIONS, default="mixed")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--configs", default=",".join(targets.SPANHOUSE_CONFIGS),
                    help="spanhouse pipelines: " + ", ".join(targets.SPANHOUSE_CONFIGS))
    ap.add_argument("--transports", default="http-protobuf,http-json,grpc,http-protobuf+gzip",
                    help="transports for the storage_only pipeline (the others use http-protobuf)")
    ap.add_argument("--skip-peers", action="store_true", help="skip Arize Phoenix and MLflow")
    ap.add_argument("--peer-seconds", type=float, default=30.0)
    ap.add_argument("--peer-requests", type=int, default=12, help="requests sent to each peer (500 spans each)")
    ap.add_argument("--peer-wait", type=float, default=300.0, help="longest wait for a peer to store what it acked")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds of the native ceiling and the spanhouse pipelines over HTTP protobuf, interleaved; "
                         "each row reports its median round and keeps every round's rate")
    ap.add_argument("--soak", type=float, default=0.0, help="seconds of RSS soak for the first spanhouse config")
    ap.add_argument("--skip-profile", action="store_true")
    ap.add_argument("--readback-spans", type=int, default=10_000_000,
                    help="spans in the read-back store (trace lookup, top-cost traces); 0 skips it")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--keep", action="store_true", help="keep the servers' stores and logs (a temporary directory)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="spanhouse-bench-"))
    info = machine_info()
    sample = payload.stats(payload.build_request(args.seed * 1000, args.traces_per_request, args.convention))
    print(f"machine: {info['cpu_model']}, {info['cores']} cores, {info['ram_gib']} GiB; "
          f"load {info['load_average_start']}")
    print(f"payload: {sample}")
    rows: list[dict] = []

    # rounds interleave the ceiling and the pipelines, so a machine that slows down mid-run slows all alike
    rounds: dict[str, list[dict]] = {}
    skipped: list[dict] = []
    for rnd in range(max(1, args.repeat)):
        tag = f" (round {rnd + 1} of {args.repeat})" if args.repeat > 1 else ""
        print(f"native ceiling (chDB parses the protobuf itself){tag} ...", flush=True)
        native = run_script("native_ceiling.py", ["--seconds", str(args.seconds), "--traces-per-request",
                                                  str(args.traces_per_request), "--convention", args.convention,
                                                  "--workdir", str(work / f"native-{rnd}")], timeout=args.seconds + 600)
        native.setdefault("name", "native_ceiling")
        native["transport"] = "in-process"
        rounds.setdefault("native_ceiling", []).append(native)
        seen: dict[tuple, str] = {}
        for i, name in enumerate(c for c in args.configs.split(",") if c):
            target = targets.Spanhouse(work / f"spanhouse-{name}-{rnd}", name)
            if target.signature in seen:
                if rnd == 0:
                    why = f"same pipeline as {seen[target.signature]} on this branch"
                    skipped.append({"name": target.name, "kind": "spanhouse", "transport": "http-protobuf",
                                    **target.info, "skipped": why})
                continue
            seen[target.signature] = target.name
            print(f"{target.name} {target.processors} (missing: {target.missing or 'none'}){tag} ...", flush=True)
            soak = args.soak if i == 0 and rnd == 0 else 0.0
            rounds.setdefault(target.name, []).append(measure(target, "http-protobuf", False, args, soak=soak))
    rows.append(median_round(rounds.pop("native_ceiling")))
    ceiling = float(rows[0].get("stored_spans_per_s") or 0)

    print("null receiver ...", flush=True)
    rows.append(measure(targets.NullReceiver(work / "null"), "http-protobuf", False, args))
    rows.extend(median_round(runs) for runs in rounds.values())
    rows.extend(skipped)
    if "storage_only" in args.configs.split(","):
        for tr in (t for t in args.transports.split(",") if t and t != "http-protobuf"):
            transport, gzip_on = tr.split("+")[0], tr.endswith("+gzip")
            print(f"spanhouse:storage_only over {tr} ...", flush=True)
            rows.append(measure(targets.Spanhouse(work / f"spanhouse-{tr}", "storage_only"), transport, gzip_on, args))

    if not args.skip_peers:
        for cls in (targets.Phoenix, targets.Mlflow):
            target = cls(work / cls.name)
            print(f"{target.name} ...", flush=True)
            rows.append(measure(target, "http-protobuf", False, args, peer=True))

    profile = {}
    if not args.skip_profile:
        print("per-stage profile (in-process) ...", flush=True)
        profile = run_script("profile_stages.py", ["--json"], timeout=900)

    readback = {}
    if args.readback_spans:
        print(f"read-back in {args.readback_spans:,} spans ...", flush=True)
        readback = run_script("readback.py", ["--spans", str(args.readback_spans), "--workdir",
                                              str(work / "readback")], timeout=3600)

    info["load_average_end"] = os.getloadavg()
    result = {"started": datetime.now(UTC).isoformat(timespec="seconds"), "machine": info,
              "payload": sample, "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "rows": rows, "ratios": ratios(rows, ceiling),
              "cpu_budget": cpu_budget(rows, ceiling, info["cores"] or 1), "profile": profile, "readback": readback}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    print()
    print(table([r for r in rows if "skipped" not in r], ceiling))
    if any(r.get("missing_processors") for r in rows):
        print("* GenAI processors not installed on this branch ran without them; see missing_processors in the JSON")
    for r in rows:
        if r.get("rounds_stored_spans_per_s"):
            print(f"{r['name']}: median of stored/s per round {r['rounds_stored_spans_per_s']}")
    print()
    for k, v in result["ratios"].items():
        print(f"{k}: {v}")
    for name, b in result["cpu_budget"].items():
        line = f"{name}: {b['cpu_us_per_span']} CPU µs per stored span"
        if "budget_us_per_span" in b:
            line += (f"; {b['target_ratio']:.0%} of the ceiling ({b['target_spans_per_s']:,} spans/s) allows at "
                     f"most {b['budget_us_per_span']} with all {info['cores']} cores busy")
        print(line)
    if profile.get("stages"):
        print()
        print(profile.get("table", ""))
    if readback:
        print()
        print(f"read-back: {json.dumps(readback)}")
    print(f"\nwritten to {path}")
    if args.keep:
        print(f"stores and server logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def median_round(runs: list[dict]) -> dict:
    """The round with the median stored spans/s (the lower middle of an even count), with every round's
    rate under `rounds_stored_spans_per_s`, in the order they ran; a single round as it is."""
    if len(runs) == 1:
        return runs[0]
    ranked = sorted(runs, key=lambda r: float(r.get("stored_spans_per_s") or 0))
    row = dict(ranked[(len(ranked) - 1) // 2])
    row["rounds_stored_spans_per_s"] = [r.get("stored_spans_per_s") for r in runs]
    if any(r.get("soak") for r in runs):
        row["soak"] = next(r["soak"] for r in runs if r.get("soak"))
    return row


def ratios(rows: list[dict], ceiling: float) -> dict:
    by = {r["name"] + ("" if r.get("transport") in ("http-protobuf", "in-process") else f" [{r['transport']}]"): r
          for r in rows if "skipped" not in r}
    out = {}

    def rate(name: str) -> float:
        return float(by.get(name, {}).get("stored_spans_per_s") or 0)

    def label(name: str) -> str:
        missing = by.get(name, {}).get("missing_processors")
        return f"{name} (without {', '.join(missing)}: not on this branch)" if missing else name

    for name in ("spanhouse:full_default", "spanhouse:no_redact", "spanhouse:storage_only"):
        if rate(name) and ceiling:
            out[f"{label(name)} / native_ceiling"] = round(rate(name) / ceiling, 3)
    best = next((n for n in ("spanhouse:full_default", "spanhouse:no_redact", "spanhouse:storage_only") if rate(n)), "")
    for peer in ("arize_phoenix", "mlflow"):
        if best and rate(peer):
            out[f"{label(best)} / {peer}"] = round(rate(best) / rate(peer), 1)
    return out


TARGET_RATIOS = {"spanhouse:full_default": 0.70, "spanhouse:no_redact": 0.80}
"""The issue's targets: stored spans/s as a share of the native ceiling."""


def cpu_budget(rows: list[dict], ceiling: float, cores: int) -> dict:
    """For each pipeline with a target, the server's CPU time per stored span (its process tree, the
    embedded ClickHouse included) beside the most it could spend and still reach the target with every
    core busy; storage_only, which runs no processors, is given for its CPU time only. A pipeline over
    its budget cannot reach its target by running stages in parallel, only by doing less work per span."""
    out: dict = {}
    if not ceiling:
        return out
    for r in rows:
        name = r.get("name")
        cpu = r.get("cpu_s_per_1k_spans")
        if r.get("transport") != "http-protobuf" or not cpu or "error" in r:
            continue
        if name in TARGET_RATIOS:
            target = TARGET_RATIOS[name]
            out[name] = {"cpu_us_per_span": round(cpu * 1000, 1), "target_ratio": target,
                         "target_spans_per_s": round(target * ceiling),
                         "budget_us_per_span": round(cores * 1e6 / (target * ceiling), 1)}
        elif name == "spanhouse:storage_only":
            out[name] = {"cpu_us_per_span": round(cpu * 1000, 1)}
    return out


if __name__ == "__main__":
    main()
