"""The exporter helper: exporter authors write `push(batch)`; queueing, retries and timeouts are added
here, with the OpenTelemetry Collector's keys and defaults (`sending_queue`, `retry_on_failure`,
`timeout`).

An exporter's config dataclass inherits `ExporterHelperSettings`; its factory wraps the component with
`HelperExporter`. Permanent errors (`PermanentError`: the data is bad) are never retried.

Every delivery carries a token (`delivery_token()` inside `push`) that stays the same when the same
data is pushed again — after a failure, a timeout whose outcome is unknown, or a replay of the file
queue after a restart — so an exporter whose backend can deduplicate (ClickHouse's
`insert_deduplication_token`) stores each accepted batch once.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from spanhouse.component import ConfigIssue, Exporter
from spanhouse.config import Duration
from spanhouse.errors import PermanentError, RetryableError, SpanhouseError
from spanhouse.exporters.filequeue import FileQueue, QueueCorrupt, pending_batches
from spanhouse.exporters.queue import BaseQueue, Batching, Encoded, MemoryQueue, Unit
from spanhouse.fsprivate import make_private_dirs

log = logging.getLogger(__name__)

_MIB = 1 << 20
_QUEUES_FILE = "spanhouse-queues.json"
_token: contextvars.ContextVar[str | None] = contextvars.ContextVar("spanhouse_delivery_token", default=None)


def delivery_token() -> str | None:
    """Inside `Pusher.push`: a token that identifies this data across retries and replays (None outside)."""
    return _token.get()


class QueueStorage(str, Enum):
    MEMORY = "memory"
    FILE = "file"


@dataclass(frozen=True, kw_only=True)
class QueueBatchSettings:
    """`sending_queue.batch`: consumers merge queued batches into larger exports (the Collector's
    recommended place for batching: clients are answered at enqueue time, not after a batch timer)."""

    flush_timeout: Duration = Duration(0.2)
    """Longest time the oldest queued batch waits for more to merge with."""
    min_size: int = 8192
    """Records (spans) that make an export ready at once."""
    max_size: int = 0
    """Most records in one export; larger merged batches are split. 0 means no bound."""

    def validate(self) -> Iterator[ConfigIssue]:
        if self.flush_timeout.seconds <= 0:
            yield ConfigIssue("flush_timeout", "must be greater than 0, e.g. 200ms")
        if self.min_size <= 0:
            yield ConfigIssue("min_size", "must be greater than 0")
        if self.max_size < 0:
            yield ConfigIssue("max_size", "must be 0 (no bound) or greater")
        elif 0 < self.max_size < self.min_size:
            yield ConfigIssue("max_size", "must be 0 or at least min_size")


@dataclass(frozen=True, kw_only=True)
class QueueSettings:
    enabled: bool | None = None
    """Accept batches into a queue and export them in the background. Default: on with `storage: file`,
    off otherwise. An enabled `memory` queue (the Collector's default) answers clients before the data
    is stored, and loses what it holds if the process dies; `file` does not."""
    num_consumers: int = 10
    queue_size: int = 1000
    """Batches (requests) the queue holds; when full, new data is refused with a retryable error (429)."""
    storage: QueueStorage = QueueStorage.MEMORY
    directory: str = ""
    """With `storage: file`, where queued batches are kept (fsynced before a client is answered)."""
    max_disk_mib: int = 1024
    """With `storage: file`, the disk budget of the queue; when used up, new data is refused (429)."""
    batch: QueueBatchSettings | None = None
    """Merge queued batches before export; off unless set (`batch: {}` uses the defaults)."""

    @property
    def active(self) -> bool:
        return self.enabled if self.enabled is not None else self.storage is QueueStorage.FILE

    def validate(self) -> Iterator[ConfigIssue]:
        if self.num_consumers <= 0:
            yield ConfigIssue("num_consumers", "must be greater than 0")
        if self.queue_size <= 0:
            yield ConfigIssue("queue_size", "must be greater than 0")
        if self.storage is QueueStorage.FILE and self.active and not self.directory:
            yield ConfigIssue("directory", "storage: file needs a directory, e.g. ./spanhouse-data/queue")
        if self.max_disk_mib <= 0:
            yield ConfigIssue("max_disk_mib", "must be greater than 0")


@dataclass(frozen=True, kw_only=True)
class RetrySettings:
    enabled: bool = True
    initial_interval: Duration = Duration(5.0)
    max_interval: Duration = Duration(30.0)
    max_elapsed_time: Duration = Duration(300.0)
    """Give up after this long; 0 retries forever. With `storage: file` the batch is not dropped: it goes
    back to the end of the queue and is tried again later."""
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
class ForwardQueueSettings(QueueSettings):
    """`sending_queue` of the exporters that forward to another backend (`otlp`, `otlphttp`): on by
    default, in memory, as in the Collector, so a slow or unreachable peer delays neither the
    clients' answers nor the other exporters of the pipeline."""

    enabled: bool | None = True


@dataclass(frozen=True, kw_only=True)
class ExporterHelperSettings:
    """Mix-in for exporter configs: the Collector's exporterhelper keys."""

    timeout: Duration = Duration(5.0)
    """Longest time one push may take before it counts as failed (given to the pusher as `timeout`)."""
    sending_queue: QueueSettings = field(default_factory=QueueSettings)
    retry_on_failure: RetrySettings = field(default_factory=RetrySettings)

    def validate(self) -> Iterator[ConfigIssue]:
        if self.timeout.seconds <= 0:
            yield ConfigIssue("timeout", "must be greater than 0, e.g. 5s")


class Pusher(Exporter):
    """What an exporter author writes: `push(batch)` sends one batch or raises.

    Raise `PermanentError` when the data itself is refused, `RetryableError` (optionally with
    `retry_after`) for anything that may pass later. `timeout` (seconds) is the longest one push may
    take; pass it to the client library. `delivery_token()` identifies the data across retries.
    """

    timeout: float = 5.0

    def push(self, batch: Any) -> None:
        raise NotImplementedError

    def encode_for_queue(self, batch: Any) -> Encoded | None:
        """Optional: `batch` as the bytes `push` would send, made once when the batch is queued, or None
        to queue the batch itself. A pusher that returns `Encoded` batches must accept them (merged
        with `Encoded.concat`) in `push`."""
        return None

    def consume(self, batch: Any) -> None:
        self.push(batch)

    def state_directory(self) -> str | None:
        """Optional: a local directory that lives as long as the data this pusher writes (an embedded
        store's), where the helper remembers which file queue fed it, so a config that stops using a
        queue which still holds batches is caught even when its `directory` line is gone too."""
        return None


class _Outcome(Enum):
    DELIVERED = "delivered"
    DROPPED = "dropped"
    EXPIRED = "expired"
    STOPPED = "stopped"


class HelperExporter(Exporter):
    """Wraps a `Pusher` with retries and, where configured, a sending queue.

    Without a queue, `consume` returns once the batch is pushed; it raises `RetryableError` when the
    batch could not be delivered in time, and `PermanentError` at once for bad data. With a queue,
    `consume` returns once the batch is queued (durably, with `storage: file`) and raises `Overloaded`
    when the queue is full; `num_consumers` threads deliver in the background, retrying with backoff.
    At shutdown a memory queue is drained for up to the shutdown timeout; a file queue keeps what is
    left for the next start.
    """

    def __init__(self, pusher: Pusher, settings: ExporterHelperSettings, name: str, signal: str = "traces"):
        self.pusher = pusher
        self.settings = settings
        self.name = name
        self.signal = signal
        self.queue: BaseQueue | None = None
        self.stats = {"delivered": 0, "refused": 0, "lost": 0, "retries": 0, "rejected": 0}
        """Pushes delivered, pushes the backend refused as bad data, queued batches lost (unreadable, or
        expired in a memory queue), retries, and records rejected before they were accepted (`refuses`)."""
        self._stopping = False
        self._stop = threading.Event()
        self._consumers: list[threading.Thread] = []
        self._take_lock = threading.Lock()
        self._failing = False
        q = settings.sending_queue.batch
        self._batching = Batching(q.min_size, q.max_size, q.flush_timeout.seconds) if q is not None else None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self, host: Any) -> None:
        self.pusher.timeout = self.settings.timeout.seconds
        q = self.settings.sending_queue
        # one exporter id serves several signals; each keeps its own queue (traces in the directory
        # itself, so queues written before logs existed are still replayed)
        directory = q.directory if self.signal == "traces" else os.path.join(q.directory, self.signal)
        file_queue = bool(q.directory) and q.active and q.storage is QueueStorage.FILE
        if q.directory and not file_queue:
            self._refuse_abandoned(directory, "sending_queue storage is not file")
        state = self.pusher.state_directory()
        if state:
            self._remember_queue(state, os.path.abspath(directory) if file_queue else None)
        if q.active:
            if q.storage is QueueStorage.FILE:
                self.queue = FileQueue(directory, q.queue_size, q.max_disk_mib * _MIB, self.name)
            else:
                self.queue = MemoryQueue(q.queue_size, self.name)
        self.pusher.start(host)
        if self.queue is not None:
            for i in range(q.num_consumers):
                t = threading.Thread(target=self._consume_loop, name=f"{self.name}-consumer-{i}", daemon=True)
                t.start()
                self._consumers.append(t)

    def shutdown(self, timeout: float = 10.0) -> None:
        self._stopping = True
        queue = self.queue
        if queue is not None:
            deadline = time.monotonic() + timeout
            queue.close()
            if isinstance(queue, MemoryQueue) and not queue.wait_empty(timeout):
                log.error("exporter %s: %d queued batches could not be delivered before shutdown and are "
                          "lost", self.name, len(queue))
            self._stop.set()
            queue.close()  # wakes consumers waiting for work, now that they see the stop
            for t in self._consumers:
                t.join(max(0.1, deadline - time.monotonic()))
            if isinstance(queue, FileQueue) and len(queue):
                log.info("exporter %s: %d batch(es) stay in the sending queue in %s; they are delivered at the "
                         "next start (of this version or a later one)", self.name, len(queue), queue.directory)
            queue.shutdown()
        self._stop.set()
        self.pusher.shutdown(timeout)

    # --- accepting ----------------------------------------------------------------------

    def refuses(self, batch: Any) -> tuple[list[int], str] | None:
        refused = self.pusher.refuses(batch)
        if refused is not None:
            self.stats["rejected"] += len(refused[0])
        return refused

    def consume(self, batch: Any) -> None:
        if self.queue is not None:
            self.queue.put(self._queued_form(batch))
            return
        outcome, error = self._push(batch, uuid.uuid4().hex, lambda: self._stopping)
        if outcome is not _Outcome.DELIVERED:
            raise error or RetryableError(f"exporter {self.name} is shutting down; retry later",
                                          retry_after=1.0)

    def _queued_form(self, batch: Any) -> Any:
        """What the queue holds for `batch`: the pusher's encoding when it has one, else the batch. A
        batch over `max_size` stays a batch, so that it can be split at delivery."""
        b = self._batching
        if b is not None and b.max_size and len(batch) > b.max_size:
            return batch
        encoded = self.pusher.encode_for_queue(batch)
        return batch if encoded is None else encoded

    # --- delivering ---------------------------------------------------------------------

    def _refuse_abandoned(self, directory: str, why: str) -> None:
        left = pending_batches(directory)
        if left:
            raise SpanhouseError(
                f"exporter {self.name}: the file queue in {directory} still holds {left} acknowledged batch(es) "
                f"not yet delivered, and this config does not use it ({why}): start once with its "
                "`sending_queue` (`storage: file`, that `directory`) to deliver them, or delete the directory to "
                "discard them")

    def _remember_queue(self, state: str, directory: str | None) -> None:
        """Check the file queue last used for this exporter and signal (recorded in `state`), then record
        the current one (None: no file queue)."""
        path = os.path.join(state, _QUEUES_FILE)
        key = f"{self.name}/{self.signal}"
        try:
            with open(path, encoding="utf-8") as f:
                known = json.load(f)
            if not isinstance(known, dict):
                known = {}
        except FileNotFoundError:
            known = {}
        except (OSError, ValueError) as exc:
            log.warning("exporter %s: cannot read %s (%s); starting it afresh", self.name, path, exc)
            known = {}
        before = known.get(key)
        if isinstance(before, str) and before != directory:
            self._refuse_abandoned(before, "its sending_queue section or directory changed")
        if before == directory:
            return
        if directory is None:
            known.pop(key, None)
        else:
            known[key] = directory
        try:
            make_private_dirs(state)
            tmp = path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(known, f, indent=1)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("exporter %s: cannot write %s (%s): a queue left behind by a later config change will "
                        "not be noticed", self.name, path, exc)

    def _consume_loop(self) -> None:
        queue = self.queue
        assert queue is not None
        while not self._stop.is_set():
            with self._take_lock:
                unit = queue.take(self._batching, self._stop)
            if unit is None:
                continue
            try:
                self._deliver(queue, unit)
            except Exception:  # a consumer must survive anything; the unit is retried later
                log.exception("exporter %s: unexpected error while delivering", self.name)
                queue.release(unit, front=False)
                self._stop.wait(1.0)

    def _deliver(self, queue: BaseQueue, unit: Unit) -> None:
        try:
            queue.prepare(unit)
            batches = queue.load(unit)
        except QueueCorrupt as exc:
            log.error("exporter %s: dropping %d queued batch(es) that cannot be read: %s", self.name,
                      len(unit.items), exc)
            self.stats["lost"] += len(unit.items)
            queue.done(unit)
            return
        stopped = self._stop.is_set
        batch = batches[0] if len(batches) == 1 else type(batches[0]).concat(batches)
        pieces = batch.split(unit.split) if unit.split else [batch]
        outcome = _Outcome.DELIVERED
        for i, piece in enumerate(pieces):
            token = unit.token if len(pieces) == 1 else f"{unit.token}/{i}"
            result, error = self._push(piece, token, stopped)
            if result is _Outcome.DROPPED and len(batches) > 1 and len(pieces) == 1:
                # one bad request must not take the others merged with it down: deliver them one by one
                result = self._deliver_one_by_one(unit, batches, stopped)
            if result in (_Outcome.STOPPED, _Outcome.EXPIRED):
                outcome = result
                break
        if outcome is _Outcome.DELIVERED:
            queue.done(unit)
        elif outcome is _Outcome.STOPPED:
            queue.release(unit)
        elif not isinstance(queue, MemoryQueue):
            log.warning("exporter %s: a queued batch is still not delivered after %s; it goes back to the "
                        "end of the queue", self.name, self.settings.retry_on_failure.max_elapsed_time)
            queue.release(unit, front=False)
        else:
            log.error("exporter %s: dropping %d records after retrying for %s "
                      "(retry_on_failure::max_elapsed_time)", self.name, unit.size,
                      self.settings.retry_on_failure.max_elapsed_time)
            self.stats["lost"] += len(unit.items)
            queue.done(unit)

    def _deliver_one_by_one(self, unit: Unit, batches: list[Any], stopped: Any) -> _Outcome:
        for item, batch in zip(unit.items, batches):
            result, _ = self._push(batch, f"{unit.token}#{item.seq}", stopped)
            if result in (_Outcome.STOPPED, _Outcome.EXPIRED):
                return result
        return _Outcome.DELIVERED

    def _push(self, batch: Any, token: str, stopped: Any) -> tuple[_Outcome, SpanhouseError | None]:
        """Push with retries; never raises. Returns the outcome and, unless delivered, the last error."""
        retry = self.settings.retry_on_failure
        started = time.monotonic()
        delays = retry.delays()
        while True:
            reset = _token.set(token)
            try:
                self.pusher.push(batch)
            except PermanentError as exc:
                log.error("exporter %s: dropping %d records the backend refused: %s", self.name, len(batch),
                          exc)
                self.stats["refused"] += 1
                return _Outcome.DROPPED, exc
            except Exception as exc:
                error = exc if isinstance(exc, RetryableError) else RetryableError(
                    f"exporter {self.name}: {type(exc).__name__}: {exc}", retry_after=None)
                if not isinstance(exc, SpanhouseError):
                    # the traceback once per failing streak, not once per retry
                    log.log(logging.DEBUG if self._failing else logging.WARNING, "exporter %s: unexpected %s "
                            "from push; retrying", self.name, type(exc).__name__, exc_info=not self._failing)
                if not retry.enabled:
                    return _Outcome.EXPIRED, error
                delay = max(next(delays), error.retry_after or 0)
                elapsed = time.monotonic() - started
                if retry.max_elapsed_time.seconds and elapsed + delay > retry.max_elapsed_time.seconds:
                    return _Outcome.EXPIRED, error
                self._note_failure(error, delay)
                self.stats["retries"] += 1
                if self._wait(delay, stopped):
                    return _Outcome.STOPPED, error
                continue
            finally:
                _token.reset(reset)
            self._note_success()
            self.stats["delivered"] += 1
            return _Outcome.DELIVERED, None

    def _wait(self, delay: float, stopped: Any) -> bool:
        """Sleep `delay` seconds; True as soon as the exporter stops."""
        end = time.monotonic() + delay
        while (left := end - time.monotonic()) > 0:
            if stopped():
                return True
            self._stop.wait(min(left, 0.25))
        return bool(stopped())

    def _note_failure(self, error: Exception, delay: float) -> None:
        if not self._failing:
            self._failing = True
            log.warning("exporter %s: delivery failing (%s); retrying with backoff", self.name, error)
        else:
            log.debug("exporter %s: %s; retrying in %.1fs", self.name, error, delay)

    def _note_success(self) -> None:
        if self._failing:
            self._failing = False
            log.warning("exporter %s: delivering again", self.name)
