"""`batch`: groups spans into larger batches before export, so ClickHouse gets few, large inserts."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from spanhouse.component import ConfigIssue, Factory, Kind, Processor
from spanhouse.config import Duration

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class BatchConfig:
    send_batch_size: int = 8192
    """Spans that trigger sending the held batch at once."""
    send_batch_max_size: int = 0
    """Upper bound of one sent batch; 0 means no bound. Must be ≥ send_batch_size when set."""
    timeout: Duration = Duration(0.2)
    """Longest time a span is held before the batch is sent regardless of size; 0 passes every batch on
    at once, unchanged (sizes are then not enforced)."""

    def validate(self) -> Iterator[ConfigIssue]:
        if self.send_batch_size <= 0:
            yield ConfigIssue("send_batch_size", "must be greater than 0")
        if self.send_batch_max_size < 0:
            yield ConfigIssue("send_batch_max_size", "must be 0 (no bound) or greater")
        elif 0 < self.send_batch_max_size < self.send_batch_size:
            yield ConfigIssue("send_batch_max_size", "must be greater than or equal to send_batch_size")
        if self.timeout.seconds < 0:
            yield ConfigIssue("timeout", "must not be negative")


CLIENT_PATIENCE_S = 5.0
"""A batch timeout above this is warned about: half the OpenTelemetry SDK exporters' default timeout."""


class BatchProcessor(Processor):
    """Holds batches until `send_batch_size` spans or `timeout` is reached, then emits them as one.

    Held requests keep their acknowledgements: a client is answered only once its spans, sent in a
    merged batch, are stored. Thread-safe: receivers call `process` concurrently.
    """

    def __init__(self, config: BatchConfig):
        self.config = config
        self.flush_interval = config.timeout.seconds or None
        if config.timeout.seconds > CLIENT_PATIENCE_S:
            log.warning("batch: timeout %s holds each client's answer until its batch is stored; OpenTelemetry "
                        "SDK exporters give up after 10 s and send again (the spans are then stored twice). "
                        "Keep it under %gs, or batch in the exporter's sending_queue (answered at once)",
                        config.timeout, CLIENT_PATIENCE_S)
        self._lock = threading.Lock()
        self._held: list[Any] = []
        self._held_spans = 0
        self._oldest = 0.0

    def process(self, batch: Any) -> Any:
        if self.flush_interval is None:
            return batch
        with self._lock:
            if not self._held:
                self._oldest = time.monotonic()
            self._held.append(batch)
            self._held_spans += len(batch)
            if self._held_spans < self.config.send_batch_size:
                return type(batch)()
            return self._bounded(self._take())

    def flush(self, force: bool = False) -> Any | None:
        with self._lock:
            if not self._held:
                return None
            if not force and time.monotonic() - self._oldest < self.config.timeout.seconds:
                return None
            return self._bounded(self._take())

    def _take(self) -> Any:
        held = self._held
        self._held, self._held_spans = [], 0
        return type(held[0]).concat(held)

    def _bounded(self, batch: Any) -> Any:
        """Split off what exceeds `send_batch_max_size` and hold it for the next send."""
        limit = self.config.send_batch_max_size
        if not limit or len(batch) <= limit:
            return batch
        first, *rest = batch.split(limit)
        # the rest is as old as the data it came with, so `_oldest` stays and the next flush sends it
        self._held.extend(rest)
        self._held_spans += sum(len(b) for b in rest)
        return first

    def shutdown(self, timeout: float = 10.0) -> None:
        """Held data is flushed by the pipeline (`flush(force=True)`) before shutdown is called."""


def new_factory() -> Factory:
    return Factory(kind=Kind.PROCESSOR, type="batch", config=BatchConfig,
                   create=lambda settings, cfg: BatchProcessor(cfg), signals=frozenset({"traces", "logs"}),
                   stability="beta")
