"""Sending to a running spanhouse over OTLP from the CLI (`demo`, `dataset`): where its receiver listens,
whether anything does, and what it answered when it refused a request."""

from __future__ import annotations

import socket
import urllib.parse
from typing import Any

import requests
from google.protobuf.message import DecodeError
from google.rpc import status_pb2

from spanhouse.component import Kind
from spanhouse.config import load_config, parse_endpoint
from spanhouse.errors import SpanhouseError

_DEFAULT_PATHS = {"traces": "/v1/traces", "logs": "/v1/logs"}


def signal_url(endpoint: str, signal: str) -> str:
    """`host:port` or a base URL get `/v1/traces` (or `/v1/logs`); a URL with a path is used as it is
    (like the SDK's OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)."""
    url = endpoint if "://" in endpoint else f"http://{endpoint}"
    return url if urllib.parse.urlsplit(url).path.strip("/") else url.rstrip("/") + _DEFAULT_PATHS[signal]


class Refusals:
    """Remembers the last answer an OTLP/HTTP endpoint gave that was not a success: the exporter's own
    request (with the headers it sends, from OTEL_EXPORTER_OTLP_HEADERS) is what is reported."""

    def __init__(self, command: str = "the demo", signal: str = "traces") -> None:
        self.command = command
        self.signal = signal
        self.session = requests.Session()
        self.session.hooks["response"].append(self._record)
        self.last: requests.Response | None = None

    def _record(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if not response.ok:
            self.last = response

    def why(self) -> str:
        """What the endpoint answered, e.g. `: it answers HTTP 413: request has 19 spans, ...`, or ""."""
        response = self.last
        if response is None:
            return ""
        message = ""
        try:
            if "json" in response.headers.get("Content-Type", ""):
                message = str(response.json().get("message", ""))
            else:
                message = status_pb2.Status.FromString(response.content).message
        except (ValueError, AttributeError, DecodeError):
            pass
        sent_token = "authorization" in {k.lower() for k in response.request.headers}
        hint = {401: " (auth is on: the token sent in OTEL_EXPORTER_OTLP_HEADERS was not accepted)" if sent_token
                else f" (auth is on: give {self.command} a token with "
                     "OTEL_EXPORTER_OTLP_HEADERS=\"authorization=Bearer%20<token>\")",
                404: f" (not an OTLP/HTTP {self.signal} path)"}.get(response.status_code, "")
        return f": it answers HTTP {response.status_code}{hint}" + (f": {message}" if message else "")


def default_endpoint(config_path: str | None, protocol: str | None, signal: str = "traces") -> tuple[str, str]:
    """The config's otlp receiver endpoint and protocol (HTTP when it has both and none is asked for)."""
    config = load_config(config_path, for_reading=True)  # the server's tokens and TLS files are not ours
    found = config.first(Kind.RECEIVER, "otlp")
    for proto in (protocol,) if protocol else ("http", "grpc"):
        settings = getattr(found[1].protocols, proto) if found else None
        if settings is not None and proto == "http":
            path = getattr(settings, f"{signal}_url_path")
            if path != _DEFAULT_PATHS[signal]:
                return f"http://{settings.endpoint}{path}", proto
        if settings is not None:
            return settings.endpoint, proto
    proto = protocol or "http"
    return ("127.0.0.1:4317" if proto == "grpc" else "127.0.0.1:4318"), proto


def check_reachable(endpoint: str, option: str = "--endpoint") -> None:
    address = endpoint.split("://")[-1].split("/")[0]
    try:
        host, port = parse_endpoint(address)
        socket.create_connection((host, port), timeout=2).close()
    except (OSError, ValueError) as exc:
        raise SpanhouseError(f"nothing answers at {endpoint} ({exc}); start `spanhouse serve` first or pass "
                             f"{option}") from None
