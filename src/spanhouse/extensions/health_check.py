"""`health_check` extension: an HTTP endpoint that says whether the service is up and ready."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from spanhouse.component import Component, ConfigIssue, Factory, Kind
from spanhouse.config import endpoint_issues
from spanhouse.httpserver import HttpServer, Request, Response


@dataclass(frozen=True, kw_only=True)
class HealthCheckConfig:
    endpoint: str = "127.0.0.1:13133"
    path: str = "/"

    def validate(self) -> Iterator[ConfigIssue]:
        yield from endpoint_issues("endpoint", self.endpoint)
        if not self.path.startswith("/"):
            yield ConfigIssue("path", "must start with '/'")


class HealthCheck(Component):
    """Answers `GET path` with 200 once every pipeline runs and 503 before start and during shutdown,
    with the Collector's JSON body (`status`, `upSince`, `uptime`)."""

    def __init__(self, config: HealthCheckConfig):
        self.config = config
        self.server: HttpServer | None = None
        self.host: Any = None

    def start(self, host: Any) -> None:
        self.host = host
        self.server = HttpServer(self.config.endpoint, self.handle, "health_check")
        self.server.start()

    def handle(self, req: Request) -> Response:
        if req.path != self.config.path:
            return Response(404, b"not found\n")
        ready = self.host is not None and self.host.ready.is_set()
        started = self.host.started_at if self.host else time.time()
        body = {
            "status": "Server available" if ready else "Server not available",
            "upSince": datetime.fromtimestamp(started, UTC).isoformat().replace("+00:00", "Z"),
            "uptime": f"{time.time() - started:.3f}s",
        }
        return Response(200 if ready else 503, orjson.dumps(body), "application/json")

    def shutdown(self, timeout: float = 10.0) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None


def new_factory() -> Factory:
    return Factory(kind=Kind.EXTENSION, type="health_check", config=HealthCheckConfig,
                   create=lambda settings, cfg: HealthCheck(cfg), stability="beta")
