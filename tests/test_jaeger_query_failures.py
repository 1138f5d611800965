"""When the store cannot answer jaeger_query, the client gets a 500 with a message, and the log says
which route failed and how, without the request's values (service names, tag values are user data)."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request

from support import service_config, start_service, unique_database

SECRET_SERVICE = "payroll-svc-4471"
SECRET_TAG = "alice.secret@example.com"


def _get(base: str, path: str, params: dict | None = None) -> tuple[int, dict]:
    url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_a_store_failure_is_logged_without_the_requests_values(caplog):
    db = unique_database("jaegerfail")
    svc = start_service(service_config(db, extensions={"jaeger_query": {"endpoint": "127.0.0.1:0"}}), db)
    try:
        base = f"http://127.0.0.1:{svc.extension('jaeger_query').server.port}"
        client = svc.client()
        try:
            # the store loses the table every read needs: each query fails with ClickHouse's own error
            client.command(f"RENAME TABLE {db}.otel_traces TO {db}.otel_traces_gone")
        finally:
            client.close()
        caplog.set_level(logging.WARNING, logger="spanhouse.extensions.jaeger_query")
        requests = [
            (f"/api/services/{SECRET_SERVICE}/operations", None),
            ("/api/traces", {"service": SECRET_SERVICE, "tags": json.dumps({"user.email": SECRET_TAG})}),
            ("/api/v3/traces", {"query.serviceName": SECRET_SERVICE, "query.attributes":
                                json.dumps({"user.email": SECRET_TAG}), "query.startTimeMin": "2026-01-01T00:00:00Z",
                                "query.startTimeMax": "2027-01-01T00:00:00Z"}),
        ]
        for path, params in requests:
            status, body = _get(base, path, params)
            assert status == 500 and "could not answer" in json.dumps(body), body
        logged = [r.getMessage() for r in caplog.records if r.name == "spanhouse.extensions.jaeger_query"]
        failure = ": DatabaseError (ClickHouse error code 60)"
        for route in ("/api/services/*/operations", "/api/traces", "/api/v3/traces"):
            assert f"jaeger_query: GET {route} failed{failure}" in logged, logged
        text = "\n".join(logged)
        assert SECRET_SERVICE not in text and SECRET_TAG not in text and "otel_traces" not in text, text
    finally:
        svc.stop()
