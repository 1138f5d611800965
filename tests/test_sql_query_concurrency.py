"""sql_query runs several readers' queries at once on the embedded store, and no query outlives the
endpoint's time limit, whatever `max_execution_time` it sets itself."""

from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest
from support import service_config, start_service, unique_database

from spanhouse.config import parse_config
from spanhouse.errors import ConfigError

SLOW = "SELECT sleepEachRow(0.5) FROM numbers(40) SETTINGS max_block_size = 1, max_execution_time = 0"
RUNNING = ("SELECT count() FROM system.processes WHERE query LIKE '%sleepEachRow(0.5)%' "
           "AND query NOT LIKE '%system.processes%'")


def _get(port: int, db: str, query: str, **settings: str):
    url = f"http://127.0.0.1:{port}/?" + urllib.parse.urlencode({"database": db, "query": query, **settings})
    try:
        with urllib.request.urlopen(url, timeout=120) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read().decode()


def test_a_slow_query_neither_blocks_other_readers_nor_outlives_the_limit():
    db = unique_database("concurrent")
    svc = start_service(service_config(db, extensions={"sql_query": {
        "endpoint": "127.0.0.1:0", "max_execution_time": "3s"}}), db)
    try:
        slow: list = []
        worker = threading.Thread(target=lambda: slow.append(_get(svc.sql_port, db, SLOW, max_execution_time="0")))
        worker.start()
        seen = []
        # another reader's query answers while the slow one is still running (it sees it in the engine)
        for _ in range(200):
            status, _, body = _get(svc.sql_port, db, RUNNING)
            seen.append((status, body))
            if (status, body) == (200, "1\n") or not worker.is_alive():
                break
        worker.join(timeout=60)
        assert (200, "1\n") in seen, seen[-3:]
        status, headers, body = slow[0]
        # without the cap it sleeps its 20 s and answers 200
        assert status == 408 and headers["X-ClickHouse-Exception-Code"] == "159", (status, body)
        assert "ran longer than 3 s, the endpoint's limit" in body and "(TIMEOUT_EXCEEDED)" in body
        # the cancelled query's session serves the next queries, with the endpoint's settings again
        for _ in range(6):
            assert _get(svc.sql_port, db, "SELECT getSetting('max_execution_time')")[::2] == (200, "3\n")
    finally:
        svc.stop()


@pytest.mark.parametrize("value", [0, -1])
def test_max_concurrent_queries_must_allow_one(value):
    db = unique_database("concurrent")
    with pytest.raises(ConfigError, match="max_concurrent_queries"):
        parse_config(service_config(db, extensions={"sql_query": {
            "endpoint": "127.0.0.1:0", "max_concurrent_queries": value}}))


def test_with_a_clickhouse_server_a_query_is_still_read_only_and_bounded_in_time(tmp_path):
    """The same guarantees when the store is a ClickHouse server (the stand-in: chDB behind ClickHouse's
    HTTP interface): the client's `readonly` does not replace the endpoint's, and a server that does not
    answer within the limit gets the query cancelled and the client a TIMEOUT_EXCEEDED."""
    from procs import StandIn

    standin = StandIn.start(tmp_path / "clickhouse")
    db = unique_database("server")
    svc = None
    try:
        svc = start_service(service_config(db, exporter={"endpoint": standin.endpoint, "compress": "none"},
                                           extensions={"sql_query": {"endpoint": "127.0.0.1:0",
                                                                     "max_execution_time": "2s"}}), db)
        assert _get(svc.sql_port, db, "SELECT getSetting('readonly')", readonly="0")[::2] == (200, "2\n")
        standin.mode("slow", delay=6)
        status, headers, body = _get(svc.sql_port, db, "SELECT 1", max_execution_time="0")
        # without the limit it waits 6 s per request to the server and answers 200
        assert status == 408 and headers["X-ClickHouse-Exception-Code"] == "159", (status, body)
        assert "did not answer within 2 s, the endpoint's limit" in body
        standin.mode("ok")
    finally:
        if svc is not None:
            svc.stop()
        standin.stop()
