from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# One embedded ClickHouse store per test process (chDB allows one path per process); set before any
# test imports code that opens it. Services isolate themselves in databases of their own.
_OWN_STORE = "SPANHOUSE_TEST_CHDB" not in os.environ
os.environ.setdefault("SPANHOUSE_TEST_CHDB", tempfile.mkdtemp(prefix="spanhouse-test-chdb-"))

from support import Running, service_config, start_service, unique_database  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _embedded_engine():
    """Keeps the test store's embedded engine up for the whole session, and removes the store it made.

    chDB shuts its engine down when the last connection closes and boots it again at the next one,
    loading every database earlier tests left: late in the suite each reopening cost seconds, and a test
    that opens and closes clients in turn (the retention tests) paid it dozens of times."""
    import chdb

    path = os.environ["SPANHOUSE_TEST_CHDB"]
    conn = chdb.connect(path)
    yield
    conn.close()
    if _OWN_STORE:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def database() -> str:
    return unique_database()


@pytest.fixture
def running(database: str):
    """A service with the otlp receiver (gRPC and HTTP), batch, clickhouse, health_check and sql_query."""
    svc: Running = start_service(service_config(database), database)
    yield svc
    svc.stop()
