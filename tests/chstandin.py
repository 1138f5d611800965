"""A ClickHouse HTTP endpoint backed by the real embedded engine (chDB), with switchable faults.

Run as a process of its own (one chDB store per process):

    python tests/chstandin.py STORE_DIR DATA_PORT CONTROL_PORT

It serves the part of ClickHouse's HTTP interface that `clickhouse-connect` uses (queries, DDL, and
`INSERT ... FORMAT <format>` bodies (Native or JSONColumns), settings as URL parameters, errors with
`X-ClickHouse-Exception-Code`), executing everything on chDB. So `spanhouse serve` with an `http://`
endpoint pointed here stores into a real ClickHouse engine, across a real network boundary where the
tests inject faults. `POST http://127.0.0.1:CONTROL_PORT/mode?m=...` switches the fault:

- `ok`         forward everything
- `503`        answer every request with HTTP 503 (ClickHouse overloaded / behind a failing proxy)
- `refuse`     close the data port: connections are refused (ClickHouse down)
- `lost-ack`   run inserts, then answer 503 as if the response were lost (the ambiguous failure that
               deduplication tokens exist for); other queries are forwarded
- `slow`       wait `delay` seconds (URL parameter) before forwarding each request

`GET /stats` on the control port returns JSON counters (requests, inserts run, inserts answered).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import clickhouse_connect

_NOT_SETTINGS = {"query", "database", "default_format", "user", "password", "query_id", "session_id",
                 "session_timeout", "session_check", "compress", "decompress", "enable_http_compression",
                 "wait_end_of_query", "buffer_size", "quota_key", "send_progress_in_http_headers",
                 "http_headers_progress_interval_ms", "client_protocol_version",
                 "cancel_http_readonly_queries_on_client_close"}
_INSERT_SETTINGS = ("insert_deduplication_token", "insert_deduplicate",
                    "deduplicate_blocks_in_dependent_materialized_views")
_FORMAT_RE = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)


class StandIn:
    def __init__(self, store: str):
        self.client = clickhouse_connect.get_client(interface="chdb", path=store)
        self.lock = threading.Lock()
        self.mode = "ok"
        self.delay = 0.0
        self.stats = {"requests": 0, "inserts_run": 0, "inserts_answered": 0, "refused_503": 0}

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        params = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        body = _read_body(h)
        self.stats["requests"] += 1
        mode = self.mode
        if mode == "slow":
            time.sleep(self.delay)
        if mode == "503":
            self.stats["refused_503"] += 1
            return _reply(h, 503, b"Code: 999. DB::Exception: stand-in outage. (UNKNOWN_EXCEPTION)\n",
                          {"X-ClickHouse-Exception-Code": "999"})
        if split.path == "/ping":
            return _reply(h, 200, b"Ok.\n")
        query = params.get("query", "")
        is_insert = False
        if query.lstrip()[:6].upper() == "INSERT":
            data, is_insert = body, True
        elif body[:6].upper() == b"INSERT":
            newline = body.find(b"\n")
            query, data = body[:newline].decode(), body[newline + 1:]
            is_insert = True
        else:
            query = f"{query} {body.decode()}" if query else body.decode()
        settings = {k: v for k, v in params.items() if k not in _NOT_SETTINGS and not k.startswith("param_")}
        qparams = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        try:
            with self.lock:
                if params.get("database"):
                    self.client.command(f"USE `{params['database']}`")
                first_word = query.lstrip().split(" ", 1)[0].upper()
                fmt = "TabSeparated"
                if is_insert:
                    out = self._insert(query, data, settings)
                    self.stats["inserts_run"] += 1
                elif first_word == "SET":
                    out = b""  # no sessions here: a session setting (readonly) must not leak to other clients
                elif first_word in ("CREATE", "DROP", "ALTER", "USE", "TRUNCATE", "RENAME"):
                    self.client.command(query, settings=settings or None)
                    out = b""
                else:
                    m = _FORMAT_RE.search(query)
                    fmt = m.group(1) if m else params.get("default_format", "TabSeparated")
                    out = self.client.raw_query(query, parameters=qparams or None, settings=settings or None,
                                                fmt=None if m else fmt)
        except Exception as exc:
            code = getattr(exc, "code", None) or 1002
            text = str(exc).strip() or type(exc).__name__
            return _reply(h, 500, f"Code: {code}. DB::Exception: {text}\n".encode(),
                          {"X-ClickHouse-Exception-Code": str(code)})
        if is_insert and mode == "lost-ack":
            lost = b"Code: 999. DB::Exception: stand-in lost the answer. (UNKNOWN_EXCEPTION)\n"
            return _reply(h, 503, lost, {"X-ClickHouse-Exception-Code": "999"})
        if is_insert:
            self.stats["inserts_answered"] += 1
        summary = json.dumps({"read_rows": "0", "written_rows": "0", "result_rows": "0"})
        _reply(h, 200, out, {"X-ClickHouse-Format": fmt, "X-ClickHouse-Timezone": "UTC",
                             "X-ClickHouse-Summary": summary,
                             "X-ClickHouse-Query-Id": params.get("query_id", "q")})

    def _insert(self, statement: str, data: bytes, settings: dict) -> bytes:
        m = _FORMAT_RE.search(statement)
        fmt = m.group(1) if m else "Native"
        head = _FORMAT_RE.sub("", statement).strip()
        with tempfile.NamedTemporaryFile(suffix=".native", delete=False) as f:
            f.write(data)
        try:
            clause = ", ".join(f"{k} = {v}" if v.isdigit() else f"{k} = '{v}'" for k, v in settings.items()
                               if k in _INSERT_SETTINGS)
            sql = f"{head} FROM INFILE '{f.name}'" + (f" SETTINGS {clause}" if clause else "")
            sql += f" FORMAT {fmt}"
            self.client.command(sql)
        finally:
            os.unlink(f.name)
        return b""


def _read_body(h: BaseHTTPRequestHandler) -> bytes:
    if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int(h.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while h.rfile.readline().strip():
                    pass
                return b"".join(parts)
            parts.append(h.rfile.read(size))
            h.rfile.readline()
    length = int(h.headers.get("Content-Length") or 0)
    return h.rfile.read(length) if length else b""


def _reply(h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict | None = None) -> None:
    h.send_response(status)
    h.send_header("Content-Type", "text/plain; charset=UTF-8")
    h.send_header("Content-Length", str(len(body)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(body)


def _server(port: int, fn) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _any(self) -> None:
            fn(self)

        do_GET = do_POST = _any

    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.allow_reuse_address = True
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return srv


def main() -> None:
    store, data_port, control_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    standin = StandIn(store)
    state = {"data": _server(data_port, standin.handle)}

    def control(h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        params = {k: v[-1] for k, v in parse_qs(split.query).items()}
        if split.path == "/stats":
            return _reply(h, 200, json.dumps(standin.stats).encode())
        mode = params.get("m", "ok")
        standin.delay = float(params.get("delay", "0"))
        if mode == "refuse" and state["data"] is not None:
            state["data"].shutdown()
            state["data"].server_close()
            state["data"] = None
        elif mode != "refuse" and state["data"] is None:
            state["data"] = _server(data_port, standin.handle)
        standin.mode = mode
        _reply(h, 200, f"mode {mode}\n".encode())

    _server(control_port, control)
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
