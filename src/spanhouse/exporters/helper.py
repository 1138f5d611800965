"""The exporter helper: exporter authors write `push(batch)`; queueing, retries and timeouts are added
here, with the OpenTelemetry Collector's keys and defaults (`sending_queue`, `retry_on_failure`,
`timeout`).

An exporter's config dataclass inherits `ExporterHelperSettings`; its factory wraps the component with
`HelperExporter`. Permanent errors (`PermanentError`: the data is bad) are never retried.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterator

from spanhouse.component import ConfigIssue, Exporter
from spanhouse.config import Duration
from spanhouse.errors import PermanentError, RetryableError

log = logging.getLogger(__name__)


class QueueStorage(str, Enum):
    MEMORY = "memory"
    FILE = "file"


@dataclass(frozen=True, kw_only=True)
class QueueSettings:
    enabled: bool = False
    """Accept batches into a queue and export them in the background."""
    num_consumers: int = 10
    queue_size: int = 1000
    """Batches the queue holds; when full, new data is refused with a retryable error."""
    storage: QueueStorage = QueueStorage.MEMORY
    directory: str = ""
    """With `storage: file`, where queued batches are kept (fsynced before a client is answered)."""

    def validate(self) -> Iterator[ConfigIssue]:
        if self.num_consumers <= 0:
            yield ConfigIssue("num_consumers", "must be greater than 0")
        if self.queue_size <= 0:
            yield ConfigIssue("queue_size", "must be greater than 0")
        if self.storage is QueueStorage.FILE and not self.directory:
            yield ConfigIssue("directory", "storage: file needs a directory, e.g. ./spanhouse-data/queue")


@dataclass(frozen=True, kw_only=True)
class RetrySettings:
    enabled: bool = True
    initial_interval: Duration = Duration(5.0)
    max_interval: Duration = Duration(30.0)
    max_elapsed_time: Duration = Duration(300.0)
    """Give up after this long; 0 retries forever."""
    multiplier: float = 1.5
    randomization_factor: float = 0.5

    def validate(self) -> Iterator[ConfigIssue]:
        if self.initial_interval.seconds <= 0:
            yield ConfigIssue("initial_interval", "must be greater than 0")
        if self.max_interval < self.initial_interval:
            yield ConfigIssue("max_interval", "must be at least initial_interval")
        if self.multiplier < 1:
            yield ConfigIssue("multiplier", "must be 1 or greater")
        if not 0 <= self.randomization_factor < 1:
            yield ConfigIssue("randomization_factor", "must be in [0, 1)")

    def delays(self) -> Iterator[float]:
        """Backoff delays with jitter: initial × multiplierⁿ, capped at max_interval."""
        interval = self.initial_interval.seconds
        while True:
            jitter = interval * self.randomization_factor
            yield random.uniform(interval - jitter, interval + jitter)
            interval = min(interval * self.multiplier, self.max_interval.seconds)


@dataclass(frozen=True, kw_only=True)
class ExporterHelperSettings:
    """Mix-in for exporter configs: the Collector's exporterhelper keys."""

    timeout: Duration = Duration(5.0)
    """Longest time one push may take before it counts as failed."""
    sending_queue: QueueSettings = field(default_factory=QueueSettings)
    retry_on_failure: RetrySettings = field(default_factory=RetrySettings)

    def validate(self) -> Iterator[ConfigIssue]:
        if self.timeout.seconds <= 0:
            yield ConfigIssue("timeout", "must be greater than 0, e.g. 5s")


class Pusher(Exporter):
    """What an exporter author writes: `push(batch)` sends one batch or raises."""

    def push(self, batch: Any) -> None:
        raise NotImplementedError

    def consume(self, batch: Any) -> None:
        self.push(batch)


class HelperExporter(Exporter):
    """Wraps a `Pusher` with retries (and, where configured, a sending queue).

    `consume` returns once the batch is pushed or durably queued; it raises `RetryableError` when
    the batch could not be delivered in time, and `PermanentError` at once for bad data.
    """

    def __init__(self, pusher: Pusher, settings: ExporterHelperSettings, name: str):
        self.pusher = pusher
        self.settings = settings
        self.name = name
        self._stopping = False

    def start(self, host: Any) -> None:
        self.pusher.start(host)

    def consume(self, batch: Any) -> None:
        retry = self.settings.retry_on_failure
        if not retry.enabled:
            self.pusher.push(batch)
            return
        deadline = time.monotonic() + retry.max_elapsed_time.seconds if retry.max_elapsed_time.seconds else None
        delays = retry.delays()
        while True:
            try:
                self.pusher.push(batch)
                return
            except PermanentError:
                raise
            except RetryableError as exc:
                delay = max(next(delays), exc.retry_after or 0)
                if self._stopping or (deadline is not None and time.monotonic() + delay > deadline):
                    raise
                log.warning("exporter %s: %s; retrying in %.1fs", self.name, exc, delay)
                time.sleep(delay)

    def shutdown(self, timeout: float = 10.0) -> None:
        self._stopping = True
        self.pusher.shutdown(timeout)
