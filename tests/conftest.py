from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# One embedded ClickHouse store per test process (chDB allows one path per process); set before any
# test imports code that opens it. Services isolate themselves in databases of their own.
os.environ.setdefault("SPANHOUSE_TEST_CHDB", tempfile.mkdtemp(prefix="spanhouse-test-chdb-"))

from support import Running, service_config, start_service, unique_database  # noqa: E402


@pytest.fixture
def database() -> str:
    return unique_database()


@pytest.fixture
def running(database: str):
    """A service with the otlp receiver (gRPC and HTTP), batch, clickhouse, health_check and sql_query."""
    svc: Running = start_service(service_config(database), database)
    yield svc
    svc.stop()
