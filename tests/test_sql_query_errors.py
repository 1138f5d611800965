"""What the sql_query endpoint answers a client's mistakes: ClickHouse's own HTTP status for each error
code, one clean message, and nothing run that was not what the client sent."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

import pytest
from support import service_config, start_service, unique_database


@pytest.fixture(scope="module")
def running():
    """One service for the module: the tests only send mistakes, which change nothing stored."""
    db = unique_database("sql_errors")
    svc = start_service(service_config(db), db)
    yield svc
    svc.stop()


def _ask(running, params: dict[str, str] | None = None, body: bytes | None = None, method: str | None = None,
         headers: dict[str, str] | None = None):
    query = urllib.parse.urlencode({"database": running.database, **(params or {})})
    req = urllib.request.Request(f"http://127.0.0.1:{running.sql_port}/?{query}", data=body, method=method,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read().decode()


@pytest.mark.parametrize("params, status, code, message", [
    ({"query": "SELECT {x:NoSuchType}", "param_x": "1"}, 404, 50, "Unknown data type family: NoSuchType"),
    ({"query": "SELECT 1", "default_format": "NoSuchFormat"}, 404, 73, "Unknown format NoSuchFormat"),
    ({"query": "SELECT 1 FORMAT NoSuch"}, 404, 73, "Unknown format NoSuch"),
    ({"query": "SELECT 1", "limit": "x"}, 400, 72, "Cannot read floating point value here"),
    ({"query": "SELECT nosuchcolumn"}, 404, 47, "nosuchcolumn"),
    ({"query": "SELECT 1", "no_such_setting": "1"}, 404, 115, "no_such_setting"),
    # ClickHouse itself answers these 500: the same status, so clients treat them as they would there
    ({"query": "SELECT {x:UInt8}"}, 500, 456, "Substitution `x` is not set"),
    ({"query": "SELECT intDiv(1, 0)"}, 500, 153, "Division by zero"),
])
def test_errors_get_clickhouses_status_and_one_clean_message(running, params, status, code, message):
    got, headers, body = _ask(running, params)
    assert (got, headers["X-ClickHouse-Exception-Code"]) == (status, str(code)), body
    assert body.startswith(f"Code: {code}. DB::Exception: ") and message in body
    assert body.count("Code:") == 1 and body.count("DB::Exception") == 1, body
    assert "(version" not in body and body.rstrip().endswith(")") and body.count(body.rstrip()[-10:]) == 1


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_refused_not_run(running, method):
    body = b"SELECT 1" if method != "DELETE" else None
    status, headers, text = _ask(running, {"query": "SELECT 1"} if body is None else None, body, method)
    assert status == 405 and headers["Allow"] == "GET, HEAD, POST"
    assert headers["X-ClickHouse-Exception-Code"] == "36" and f"method {method} is not supported" in text


def test_a_body_that_is_not_utf8_is_refused_rather_than_changed(running):
    status, headers, text = _ask(running, body=b"SELECT '\xff\xfe' AS v")
    assert status == 400 and headers["X-ClickHouse-Exception-Code"] == "36"
    assert "the request body is not valid UTF-8 (byte 8)" in text
    form = (b'--b\r\nContent-Disposition: form-data; name="query"\r\n\r\nSELECT \'\xc3\x28\'\r\n--b--\r\n')
    status, _, text = _ask(running, body=form, headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert status == 400 and "form field 'query' is not valid UTF-8" in text
    status, _, text = _ask(running, body="SELECT 'é✓' AS v".encode())
    assert (status, text) == (200, "é✓\n")
