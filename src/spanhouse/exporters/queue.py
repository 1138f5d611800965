"""Sending queues for the exporter helper: bounded, held in memory or durably on disk.

A queue holds *items*: one accepted batch each, with a delivery token that stays the same however
often the item is retried or replayed. Consumers take *units*: one item, several items merged into
one larger export (`sending_queue.batch`), or a merged group recovered from disk. A unit is settled
with `done` (delivered, or dropped for good) or put back with `release` (deliver it later).

An item holds either a batch or, when the exporter can encode batches itself (`Pusher.encode_for_queue`), an
`Encoded` batch: the bytes the exporter will send, made once when the batch is queued. Consumers then
only move bytes, which keeps Python work (pickling, re-encoding merged batches) off their threads.
Items of the two forms are never merged into one unit.

`MemoryQueue` keeps batches as objects and loses them with the process. `FileQueue`
(`spanhouse.exporters.filequeue`) makes each item durable before `put` returns.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spanhouse.errors import Overloaded, RetryableError

QUEUE_FULL_RETRY_AFTER_S = 1.0


@dataclass(frozen=True, eq=False)
class Encoded:
    """A batch as its exporter encoded it for sending: `parts` are sent in order as one request body
    (several parts when queued batches were merged); `size` counts its records; `format` names the
    encoding, so an exporter can refuse bytes it did not make.

    Guarantees: merging (`concat`) never looks inside the parts. Encoded batches are never split:
    `split` returns the batch whole (they are queued only when no larger than `max_size`)."""

    parts: tuple[bytes, ...]
    size: int
    format: str

    def __len__(self) -> int:
        return self.size

    @classmethod
    def concat(cls, batches: Sequence[Encoded]) -> Encoded:
        formats = {b.format for b in batches}
        if len(formats) != 1:
            raise ValueError(f"cannot merge batches of different encodings: {sorted(formats)}")
        return cls(tuple(p for b in batches for p in b.parts), sum(b.size for b in batches), batches[0].format)

    def split(self, size: int) -> list[Encoded]:
        return [self]


@dataclass(eq=False)
class Item:
    """One accepted batch: where it is (in memory or on disk), its size in records, its token."""

    seq: int
    size: int
    token: str
    enqueued: float
    batch: Any = None
    location: tuple[int, int, int] | None = None
    """File queue: (segment, offset, length) of the stored record."""
    encoded: bool = False
    """The item holds an `Encoded` batch (merged only with other encoded items)."""


@dataclass(eq=False)
class Unit:
    """What a consumer delivers in one go. `split` > 0 cuts the merged batch into pieces of at most that
    many records (each piece gets the token `token/i`); `recorded` means the grouping is durable."""

    items: list[Item]
    token: str
    split: int = 0
    recorded: bool = False
    alone: bool = False
    """Delivered as it is, never merged: a replayed item may have been delivered under its own token
    before the crash, and only that token lets the backend recognise it."""

    @property
    def size(self) -> int:
        return sum(i.size for i in self.items)

    @property
    def grouped(self) -> bool:
        return len(self.items) > 1 or self.split > 0


@dataclass(frozen=True)
class Batching:
    """How consumers merge queued items: up to `min_size` records or `flush_timeout` seconds after the
    oldest item arrived, never more than `max_size` records in one export (0: no bound)."""

    min_size: int
    max_size: int
    flush_timeout: float


class BaseQueue:
    """Bounded FIFO of units shared by the two storages. Thread-safe."""

    def __init__(self, capacity: int, name: str, uid: str | None = None):
        self.capacity = capacity
        self.name = name
        self.uid = uid or uuid.uuid4().hex[:16]
        self._cond = threading.Condition()
        self._pending: deque[Unit] = deque()
        self._count = 0
        self._reserved = 0
        self._closed = False
        self._seq = itertools.count(1)

    def __len__(self) -> int:
        """Items accepted and not yet settled (waiting or being delivered)."""
        return self._count

    @property
    def waiting(self) -> int:
        with self._cond:
            return sum(len(u.items) for u in self._pending)

    def _admit(self) -> int:
        """Reserve room for one item, or raise `Overloaded`/`RetryableError`; returns its sequence number."""
        if self._closed:
            raise RetryableError(f"exporter {self.name} is shutting down; retry later", retry_after=1.0)
        if self._count + self._reserved >= self.capacity:
            raise Overloaded(f"the sending queue of exporter {self.name} is full ({self.capacity} batches "
                             "waiting for delivery); retry later", retry_after=QUEUE_FULL_RETRY_AFTER_S)
        self._reserved += 1
        return next(self._seq)

    def _enqueue(self, item: Item) -> None:
        with self._cond:
            self._reserved -= 1
            self._count += 1
            self._pending.append(Unit([item], item.token))
            self._cond.notify_all()

    def put(self, batch: Any) -> None:
        """Accept a batch (or an `Encoded` one); raises `Overloaded` when full."""
        raise NotImplementedError

    def take(self, batching: Batching | None, stop: threading.Event, wait: float = 0.5) -> Unit | None:
        """The next unit to deliver, merged per `batching`; None after `wait` seconds with nothing to do,
        or once `stop` is set."""
        with self._cond:
            if not self._pending and not stop.is_set():
                self._cond.wait(wait)
            if not self._pending or stop.is_set():
                return None
            first = self._pending.popleft()
            if first.alone and batching is not None and batching.max_size and first.size > batching.max_size:
                # an oversized batch replayed before its split was recorded: split it as it would have been
                return Unit(first.items, f"{self.uid}:g{first.items[0].seq}", split=batching.max_size)
            if batching is None or first.grouped or first.alone:
                return first
            units = [first]
            size = first.size
            deadline = first.items[0].enqueued + batching.flush_timeout
            while size < batching.min_size and not stop.is_set():
                if self._pending:
                    nxt = self._pending[0]
                    if (nxt.grouped or nxt.alone or nxt.items[0].encoded != first.items[0].encoded
                            or (batching.max_size and size + nxt.size > batching.max_size)):
                        break
                    units.append(self._pending.popleft())
                    size += nxt.size
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        items = [i for u in units for i in u.items]
        split = batching.max_size if batching.max_size and size > batching.max_size else 0
        if len(items) == 1 and not split:
            return first
        return Unit(items, f"{self.uid}:g{items[0].seq}", split=split)

    def prepare(self, unit: Unit) -> None:
        """Make the grouping of `unit` durable before it is delivered (file storage)."""

    def load(self, unit: Unit) -> list[Any]:
        """The batches of `unit`'s items, in order."""
        raise NotImplementedError

    def done(self, unit: Unit) -> None:
        """`unit` was delivered (or dropped for good): forget its items."""
        with self._cond:
            self._count -= len(unit.items)
            self._cond.notify_all()

    def release(self, unit: Unit, front: bool = True) -> None:
        """Put `unit` back, to be delivered again later, as the same unit with the same token."""
        with self._cond:
            (self._pending.appendleft if front else self._pending.append)(unit)
            self._cond.notify_all()

    def close(self) -> None:
        """Refuse new items; units already held stay (file storage keeps them for the next start)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def shutdown(self) -> None:
        """Release what the queue holds open (files, locks); called once no consumer runs."""
        self.close()

    def wait_empty(self, timeout: float) -> bool:
        """Wait until every accepted item is settled; False if some are left after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
        return True


class MemoryQueue(BaseQueue):
    """Holds batch objects. Fast, bounded by `queue_size` batches, and lost if the process dies."""

    def put(self, batch: Any) -> None:
        with self._cond:
            seq = self._admit()
        self._enqueue(Item(seq, len(batch), f"{self.uid}:{seq}", time.monotonic(), batch=batch,
                           encoded=isinstance(batch, Encoded)))

    def load(self, unit: Unit) -> list[Any]:
        return [i.batch for i in unit.items]
