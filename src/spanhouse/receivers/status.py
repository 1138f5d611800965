"""The one place where errors become wire statuses (HTTP codes and gRPC status codes)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import grpc

from spanhouse.errors import (
    BatchTooLarge,
    InvalidRequest,
    Overloaded,
    PermanentError,
    RequestTooLarge,
    RetryableError,
    SpanhouseError,
    Unauthenticated,
    UnsupportedMedia,
)
from spanhouse.otlp.values import exception_without_message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WireStatus:
    http: int
    grpc: grpc.StatusCode
    message: str
    retry_after: float | None = None

    @property
    def retry_after_header(self) -> str | None:
        return None if self.retry_after is None else str(max(1, math.ceil(self.retry_after)))


def wire_status(exc: BaseException) -> WireStatus:
    """HTTP and gRPC statuses for an error raised while receiving (OTLP spec, spanhouse mapping)."""
    msg = str(exc) or type(exc).__name__
    if isinstance(exc, (RequestTooLarge, BatchTooLarge)):
        return WireStatus(413, grpc.StatusCode.RESOURCE_EXHAUSTED, msg)
    if isinstance(exc, UnsupportedMedia):
        return WireStatus(415, grpc.StatusCode.INVALID_ARGUMENT, msg)
    if isinstance(exc, Unauthenticated):
        return WireStatus(401, grpc.StatusCode.UNAUTHENTICATED, msg)
    if isinstance(exc, (InvalidRequest, PermanentError)):
        return WireStatus(400, grpc.StatusCode.INVALID_ARGUMENT, msg)
    if isinstance(exc, Overloaded):
        # throttling: gRPC clients retry RESOURCE_EXHAUSTED only when RetryInfo comes with it (always here)
        return WireStatus(429, grpc.StatusCode.RESOURCE_EXHAUSTED, msg, exc.retry_after or 1.0)
    if isinstance(exc, RetryableError):
        return WireStatus(503, grpc.StatusCode.UNAVAILABLE, msg, exc.retry_after or 1.0)
    if not isinstance(exc, SpanhouseError):
        # what failed was reading data not yet redacted: the message may quote it
        log.error("unexpected error while receiving: %s", exception_without_message(exc))
        msg = f"spanhouse could not store the data right now ({type(exc).__name__}); retry later"
    return WireStatus(503, grpc.StatusCode.UNAVAILABLE, msg, 5.0)
