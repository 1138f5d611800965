"""Helpers for tests that run real spanhouse services on 127.0.0.1 with the embedded ClickHouse.

One process can open one chDB store path, so every in-process service of a test session shares the
session's store and isolates itself in a database of its own.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import set_span_in_context

from spanhouse.component import ComponentID
from spanhouse.config import parse_config
from spanhouse.service import Service
from spanhouse.store import StoreSettings, connect

_counter = itertools.count()


def chdb_endpoint() -> str:
    return "chdb://" + os.environ["SPANHOUSE_TEST_CHDB"]


def unique_database(prefix: str = "t") -> str:
    return f"{prefix}_{os.getpid()}_{next(_counter)}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_config(database: str, *, processors: list[str] | None = None, processor_configs: dict | None = None,
                   exporter: dict | None = None, receiver: dict | None = None, extensions: dict | None = None,
                   exporters: dict | None = None, pipelines: dict | None = None) -> dict:
    """A Collector-format config on free ports (port 0) that stores into `database`."""
    ch = {"endpoint": chdb_endpoint(), "database": database, "create_schema": True}
    ch.update(exporter or {})
    exts = {"health_check": {"endpoint": "127.0.0.1:0"}, "sql_query": {"endpoint": "127.0.0.1:0"}}
    if extensions is not None:
        exts = extensions
    procs = processor_configs if processor_configs is not None else {"batch": {"timeout": "20ms"}}
    return {
        "receivers": {"otlp": receiver or {"protocols": {"grpc": {"endpoint": "127.0.0.1:0"},
                                                         "http": {"endpoint": "127.0.0.1:0"}}}},
        "processors": procs,
        "exporters": {"clickhouse": ch, **(exporters or {})},
        "extensions": exts,
        "service": {
            "extensions": list(exts),
            "pipelines": pipelines or {"traces": {"receivers": ["otlp"],
                                                  "processors": processors if processors is not None else list(procs),
                                                  "exporters": ["clickhouse"]}},
        },
    }


@dataclass
class Running:
    service: Service
    database: str

    @property
    def receiver(self) -> Any:
        return self.service.host.receivers[ComponentID("otlp")]

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.receiver.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.receiver.grpc_port}"

    def extension(self, type_: str) -> Any:
        return self.service.host.extensions[ComponentID(type_)]

    @property
    def sql_port(self) -> int:
        return self.extension("sql_query").server.port

    @property
    def store(self) -> StoreSettings:
        return StoreSettings(endpoint=chdb_endpoint(), database=self.database)

    def client(self) -> Any:
        return connect(self.store, use_database=True)

    def rows(self, sql: str, parameters: dict | None = None) -> list[tuple]:
        client = self.client()
        try:
            return client.query(sql, parameters=parameters).result_rows
        finally:
            client.close()

    def wait_rows(self, sql: str, expected: int, timeout: float = 10.0, parameters: dict | None = None) -> list[tuple]:
        """Rows of `sql` once there are at least `expected` of them: covers batching delays, and the moment
        in which an insert's rows are visible in its table but not yet in its views' tables."""
        deadline = time.monotonic() + timeout
        rows = self.rows(sql, parameters)
        while len(rows) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
            rows = self.rows(sql, parameters)
        return rows

    def stop(self) -> None:
        self.service.shutdown()


def start_service(config: dict, database: str) -> Running:
    service = Service(parse_config(config))
    service.start()
    return Running(service, database)


def sdk_spans(build, resource: dict | None = None) -> list:
    """Record spans with the real OpenTelemetry SDK: `build(tracer)` creates them."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(resource or {"service.name": "test-svc"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    build(provider.get_tracer("tests.support", "0.1"))
    provider.shutdown()
    return list(memory.get_finished_spans())


def enc(value) -> str:
    """A value JSON-encoded, as MLflow sends every span attribute."""
    return json.dumps(value)


def mlflow_span(tracer, name, parent, at, span_type, **attrs):
    """A span as MLflow's tracing provider exports it: every value JSON-encoded."""
    context = set_span_in_context(parent) if parent is not None else None
    return tracer.start_span(name, context=context, start_time=at, attributes={
        "mlflow.traceRequestId": enc("tr-test"), "mlflow.spanType": enc(span_type), **attrs})


def linked(name: str, version: str) -> dict:
    """The attribute MLflow sets on the span a registered prompt was loaded under."""
    return {"mlflow.linkedPrompts": enc([{"name": name, "version": version}])}
