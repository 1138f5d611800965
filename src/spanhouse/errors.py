"""The errors spanhouse raises, and what each means to a caller.

SpanhouseError
├── ConfigError            the configuration cannot start a service; lists every problem
├── RequestError           a client sent something the receiver cannot accept (never retried)
│   ├── InvalidRequest     undecodable body or wrong shape          → HTTP 400 / INVALID_ARGUMENT
│   ├── RequestTooLarge    body or decompressed body over the limit → HTTP 413 / RESOURCE_EXHAUSTED
│   ├── UnsupportedMedia   Content-Type or Content-Encoding unknown → HTTP 415
│   └── Unauthenticated    missing or unknown bearer token          → HTTP 401 / UNAUTHENTICATED
└── ExportError            a pipeline stage could not deliver a batch
    ├── PermanentError     the data itself is bad; retrying cannot help → HTTP 400
    │   └── BatchTooLarge  a batch larger than a sending queue can ever hold → HTTP 413 / RESOURCE_EXHAUSTED
    └── RetryableError     try again later (optional delay)            → HTTP 503 / UNAVAILABLE
        └── Overloaded     a sending queue is full: slow down          → HTTP 429 / RESOURCE_EXHAUSTED

Receivers map these to the wire in one place (`spanhouse.receivers.status`).
"""

from __future__ import annotations


class SpanhouseError(Exception):
    """Root of every error spanhouse raises on purpose."""


class ConfigError(SpanhouseError):
    """The configuration is invalid. `problems` holds every problem found, each prefixed with its path."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in self.problems))


class RequestError(SpanhouseError):
    """A request was refused before any of its data was accepted; the client must not retry it unchanged."""


class InvalidRequest(RequestError):
    """The request body could not be decoded or has the wrong shape."""


class RequestTooLarge(RequestError):
    """The request body, or its decompressed form, is larger than the configured limit."""


class UnsupportedMedia(RequestError):
    """The Content-Type or Content-Encoding is not one the receiver accepts."""


class Unauthenticated(RequestError):
    """The request carries no valid credentials."""


class ExportError(SpanhouseError):
    """A stage could not deliver a batch."""


class PermanentError(ExportError):
    """Delivery failed because of the data; retrying the same batch cannot succeed."""


class BatchTooLarge(PermanentError):
    """A batch is larger than an exporter's sending queue could ever hold (its whole disk budget);
    retrying the same batch cannot succeed, so receivers answer like a body over the size limit."""


class RetryableError(ExportError):
    """Delivery failed for now; the same batch may succeed later. `retry_after` is a hint in seconds."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Overloaded(RetryableError):
    """A bounded buffer (an exporter's sending queue) is full; the client should slow down and retry.

    Receivers answer HTTP 429 with `Retry-After` and gRPC RESOURCE_EXHAUSTED with `RetryInfo`, which
    OTLP clients retry.
    """
