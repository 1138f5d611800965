"""A durable sending queue: an append-only log of segment files with group commit.

Guarantees:

- `put` returns only after the item's record is written and fsynced; concurrent puts share one
  fsync (group commit), so a durable queue costs little more than a memory one under load.
- On start, every item that was not acknowledged is replayed in order, with the token it had, and
  merged groups are replayed as the same groups (their record is fsynced before they are first
  delivered); items that were not in a recorded group are replayed one by one, never merged, since
  one may have been delivered alone. Retried and replayed deliveries therefore carry the same
  deduplication tokens.
- Sequence numbers, which make the tokens, are never handed out twice: every segment starts with
  the highest number used so far, so deleting delivered segments does not reset the count.
- A damaged record inside the log (not a torn end) is skipped and logged as an error with the count
  of lost batches; the records after it are still replayed.
- A torn record at the end of the log (a crash during a write) is cut off; it was never acknowledged
  to a client, because acknowledgement waits for the fsync.
- The directory is locked: a second process cannot use the same queue.
- The queue holds at most `queue_size` items and `max_disk_mib` of records not yet delivered; beyond
  either, `put` raises `Overloaded`. Its files hold at most one segment (an eighth of the budget, 1 to
  64 MiB) more. Delivered records never make `put` refuse when nothing is left to deliver: the queue
  then starts a new segment and deletes the old ones. A record larger than the whole budget can never
  fit and raises `BatchTooLarge`, naming the setting to change.

Layout: `DIR/queue.id` (the queue's id, the prefix of every token), `DIR/LOCK`, and
`DIR/<segment>.log` files. A record is `length u32, crc32 u32, kind u8, payload`. An item is stored
either as a pickled batch (`ITEM`) or as the bytes of an `Encoded` batch with its format (`ENCODED`),
which are read back without unpickling anything. Segments are deleted oldest first, once every item
in them is acknowledged.

Pickling and unpickling run on the CPU thread (`spanhouse.cpu`), as all Python-heavy work does.
"""

from __future__ import annotations

import errno
import fcntl
import io
import itertools
import logging
import os
import pickle
import struct
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

from spanhouse import cpu
from spanhouse.errors import BatchTooLarge, Overloaded, RetryableError, SpanhouseError
from spanhouse.exporters.queue import QUEUE_FULL_RETRY_AFTER_S, BaseQueue, Encoded, Item, Unit
from spanhouse.fsprivate import make_private_dirs

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<IIB")
_ITEM = struct.Struct("<QI")
_GROUP = struct.Struct("<II")
_SEQ = struct.Struct("<Q")
_FORMAT = struct.Struct("<H")
ITEM, GROUP, ACK, ENCODED, SEQ = 1, 2, 3, 4, 5
_MIB = 1 << 20
_SEQ_RECORD = _HEADER.size + _SEQ.size

# Classes a queued batch may contain. Anything else in a record is refused when it is read back, so a
# tampered queue file cannot make the unpickler call arbitrary code.
_ALLOWED_MODULES = {"spanhouse.batch", "spanhouse.logbatch"}
_ALLOWED_CLASSES: set[tuple[str, str]] = set()


def register_queue_type(cls: type) -> type:
    """Allow instances of `cls` inside batches stored in file queues (for batch types outside
    `spanhouse.batch`, e.g. another signal's). Usable as a class decorator."""
    _ALLOWED_CLASSES.add((cls.__module__, cls.__qualname__))
    return cls


class QueueCorrupt(SpanhouseError):
    """A stored record cannot be read back; it is dropped and logged."""


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module in _ALLOWED_MODULES or (module, name) in _ALLOWED_CLASSES:
            return super().find_class(module, name)
        raise QueueCorrupt(f"queued record refers to {module}.{name}, which is not a batch type")


def encode_batch(batch: Any) -> bytes:
    """The batch without its acknowledgements (they belong to this process's requests)."""
    acks = getattr(batch, "acks", None)
    if acks:
        batch.acks = []
    try:
        return pickle.dumps(batch, protocol=5)
    finally:
        if acks:
            batch.acks = acks


def decode_batch(data: bytes) -> Any:
    try:
        return _Unpickler(io.BytesIO(data)).load()
    except QueueCorrupt:
        raise
    except Exception as exc:
        raise QueueCorrupt(f"queued record cannot be decoded: {type(exc).__name__}: {exc}") from None


def _frame(kind: int, payload: bytes) -> bytes:
    return _HEADER.pack(len(payload), zlib.crc32(payload, kind), kind) + payload


def _item_record(seq: int, batch: Any, pickled: bytes | None) -> bytes:
    """The record of one item: the pickled batch, or an `Encoded` batch's format and bytes."""
    if pickled is not None:
        return _frame(ITEM, _ITEM.pack(seq, len(batch)) + pickled)
    fmt = batch.format.encode()
    head = _ITEM.pack(seq, batch.size) + _FORMAT.pack(len(fmt)) + fmt
    crc = zlib.crc32(head, ENCODED)
    for part in batch.parts:
        crc = zlib.crc32(part, crc)
    length = len(head) + sum(len(p) for p in batch.parts)
    return b"".join((_HEADER.pack(length, crc, ENCODED), head, *batch.parts))


def _read_encoded(payload: bytes) -> Encoded:
    """The `Encoded` batch of an `ENCODED` record's payload."""
    try:
        _, size = _ITEM.unpack_from(payload)
        (n,) = _FORMAT.unpack_from(payload, _ITEM.size)
        start = _ITEM.size + _FORMAT.size
        fmt = payload[start:start + n].decode()
    except (struct.error, UnicodeDecodeError) as exc:
        raise QueueCorrupt(f"queued encoded record cannot be read: {exc}") from None
    return Encoded((payload[start + n:],), size, fmt)


@dataclass
class _Slot:
    record: bytes
    item: bool = False
    location: tuple[int, int, int] | None = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class _Segment:
    number: int
    path: str
    size: int
    live: int = 0
    read_fd: int | None = None


@dataclass
class _Recovered:
    items: dict[int, Item] = field(default_factory=dict)
    acked: set[int] = field(default_factory=set)
    groups: list[tuple[str, int, list[int]]] = field(default_factory=list)
    torn: int = 0
    damaged: int = 0
    high_water: int = 0
    """The highest sequence number a `SEQ` record says was ever handed out."""
    seq_seen: bool = False
    """Whether any segment holds a `SEQ` record (versions before them wrote none)."""


class _Log:
    """The segment files. `append` writes records and returns once they are fsynced; writers that
    arrive while a write is in progress are flushed together by the next writer (group commit).

    Each segment counts its undelivered items (`live`): an item counts from the moment it is written
    until `settle`. Segments are deleted oldest first, and only once every item in them and in the
    segments before them is settled and a newer segment holds the count (`counted`)."""

    def __init__(self, directory: str, segment_bytes: int):
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.segments: dict[int, _Segment] = {}
        self._cond = threading.Condition()
        self._buf: list[_Slot] = []
        self._flushing = False
        self._fd: int | None = None
        self._active: _Segment | None = None
        self._closed = False
        self._read_lock = threading.Lock()
        self.high_water = 0
        """The highest sequence number handed out; every new segment starts with it (a `SEQ` record)."""
        self.counted = False
        """The active segment starts with a durable `SEQ` record, so older segments may be deleted."""

    @property
    def disk_bytes(self) -> int:
        return sum(s.size for s in list(self.segments.values()))

    @property
    def active_number(self) -> int:
        return self._active.number if self._active else 0

    def path(self, number: int) -> str:
        return os.path.join(self.directory, f"{number:012d}.log")

    def open_new(self, number: int) -> None:
        """Start segment `number` with a `SEQ` record of `high_water`, fsynced before it becomes the
        active segment: older segments may be deleted only once the newest one holds the count. On
        failure the new file is removed and the active segment stays as it was."""
        path = self.path(number)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        head = _frame(SEQ, _SEQ.pack(self.high_water))
        try:
            view = memoryview(head)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
            _fsync_dir(self.directory)
        except OSError:
            os.close(fd)
            try:
                os.unlink(path)
            except OSError:
                pass
            raise
        with self._cond:
            if self._fd is not None:
                os.close(self._fd)
            self._fd = fd
            self._active = self.segments[number] = _Segment(number, path, len(head))
            self.counted = True

    def reopen(self, number: int) -> None:
        """Append to existing segment `number` (when no new one can be started). Until a later
        `open_new` succeeds, `counted` is False and no segment may be deleted."""
        seg = self.segments[number]
        self._fd = os.open(seg.path, os.O_WRONLY | os.O_APPEND)
        self._active = seg
        self.counted = False

    def append(self, record: bytes, item: bool = False) -> tuple[int, int, int]:
        """Write `record` (an item's, when `item`: it then counts as live in its segment)."""
        slot = _Slot(record, item)
        with self._cond:
            if self._closed:
                raise RetryableError("the sending queue is closed", retry_after=1.0)
            self._buf.append(slot)
            while not slot.done:
                if self._flushing:
                    self._cond.wait()
                    continue
                self._flushing = True
                batch, self._buf = self._buf, []
                self._cond.release()
                try:
                    self._write(batch)
                finally:
                    self._cond.acquire()
                    # counted before the next write may rotate: a segment is never deleted between an
                    # item's write and its count
                    for s in batch:
                        if s.item and s.error is None:
                            self.segments[s.location[0]].live += 1  # type: ignore[index]
                    self._delete_settled()
                    self._flushing = False
                    self._cond.notify_all()
        if slot.error is not None:
            raise slot.error
        assert slot.location is not None
        return slot.location

    def _write(self, batch: list[_Slot]) -> None:
        try:
            seg = self._active
            assert seg is not None and self._fd is not None
            if seg.size >= self.segment_bytes or not self.counted:
                self.open_new(seg.number + 1)
                seg = self._active
                assert seg is not None and self._fd is not None
            start = seg.size
            offset = start
            for s in batch:
                s.location = (seg.number, offset, len(s.record))
                offset += len(s.record)
            data = b"".join(s.record for s in batch)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view):]
                os.fsync(self._fd)
            except OSError:
                try:
                    os.ftruncate(self._fd, start)
                except OSError:
                    pass
                raise
            seg.size = offset
        except OSError as exc:
            err = self._write_error(exc)
            for s in batch:
                s.error, s.location = err, None
        except BaseException as exc:  # never leave a writer waiting
            for s in batch:
                s.error, s.location = RetryableError(f"sending queue write failed: {exc}"), None
        finally:
            for s in batch:
                s.done = True

    def _write_error(self, exc: OSError) -> RetryableError:
        if exc.errno == errno.ENOSPC:
            return Overloaded(f"the disk of the sending queue in {self.directory} is full; retry later",
                              retry_after=QUEUE_FULL_RETRY_AFTER_S)
        return RetryableError(f"cannot write to the sending queue in {self.directory}: "
                              f"{exc.strerror or exc}", retry_after=5.0)

    def rotate_if_settled(self) -> None:
        """When no item in any segment is undelivered, start a new segment and delete the others, so
        that records already delivered stop taking disk. Does nothing otherwise (or when the active
        segment holds nothing but its count). Raises `RetryableError` when no segment can be started."""
        with self._cond:
            while self._flushing:
                self._cond.wait()
            active = self._active
            if (self._closed or active is None or any(s.live for s in self.segments.values())
                    or (self.counted and len(self.segments) == 1 and active.size <= _SEQ_RECORD)):
                return
            self._flushing = True  # holds off writers: nothing is written while the segment changes
        try:
            self.open_new(active.number + 1)
        except OSError as exc:
            raise self._write_error(exc) from None
        finally:
            with self._cond:
                self._flushing = False
                self._delete_settled()
                self._cond.notify_all()

    def settle(self, locations: list[tuple[int, int, int]]) -> None:
        """The items at `locations` are delivered (or dropped for good): delete what is settled."""
        with self._cond:
            for number, _, _ in locations:
                seg = self.segments.get(number)
                if seg is not None:
                    seg.live -= 1
            self._delete_settled()

    def delete_settled(self) -> None:
        with self._cond:
            self._delete_settled()

    def _delete_settled(self) -> None:
        """Delete the settled segments older than the active one (the caller holds `_cond`)."""
        if not self.counted:
            return
        for number in sorted(self.segments):
            seg = self.segments[number]
            if number >= self.active_number or seg.live > 0:
                break
            self.delete(number)

    def read(self, location: tuple[int, int, int]) -> tuple[int, bytes]:
        number, offset, length = location
        seg = self.segments.get(number)
        if seg is None:
            raise QueueCorrupt(f"segment {number} of the sending queue is gone")
        with self._read_lock:
            if seg.read_fd is None:
                seg.read_fd = os.open(seg.path, os.O_RDONLY)
            raw = os.pread(seg.read_fd, length, offset)
        return _check(raw, f"{seg.path} at {offset}")

    def delete(self, number: int) -> None:
        seg = self.segments.pop(number)
        if seg.read_fd is not None:
            os.close(seg.read_fd)
        try:
            os.unlink(seg.path)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        with self._cond:
            while self._flushing:
                self._cond.wait()
            self._closed = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            for seg in self.segments.values():
                if seg.read_fd is not None:
                    os.close(seg.read_fd)
                    seg.read_fd = None


def _check(raw: bytes, where: str) -> tuple[int, bytes]:
    if len(raw) < _HEADER.size:
        raise QueueCorrupt(f"short record in {where}")
    length, crc, kind = _HEADER.unpack_from(raw)
    payload = raw[_HEADER.size:_HEADER.size + length]
    if len(payload) != length or zlib.crc32(payload, kind) != crc:
        raise QueueCorrupt(f"damaged record in {where}")
    return kind, payload


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileQueue(BaseQueue):
    """A `BaseQueue` whose items are durable in `directory` before `put` returns; see the module doc."""

    def __init__(self, directory: str, capacity: int, max_disk_bytes: int, name: str):
        self.directory = os.path.abspath(directory)
        self.max_disk_bytes = max_disk_bytes
        try:
            make_private_dirs(self.directory)  # like its segments (0600): owner only
            self._lock_fd = os.open(os.path.join(self.directory, "LOCK"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SpanhouseError(f"exporter {name}: cannot use the queue directory {self.directory}: "
                                 f"{exc.strerror or exc}") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise SpanhouseError(f"exporter {name}: the queue directory {self.directory} is in use by "
                                 "another process or by another exporter of this config; give each exporter "
                                 "of each spanhouse its own sending_queue::directory") from None
        super().__init__(capacity, name, _queue_id(self.directory))
        self._log = _Log(self.directory, max(_MIB, min(64 * _MIB, max_disk_bytes // 8)))
        self._reserved_bytes = 0
        self._live_bytes = 0
        """Bytes of the records not yet delivered: what the disk budget counts. Files hold delivered
        records too until their segment is deleted; they may exceed the budget by one segment."""
        self.replayed = 0
        try:
            self._recover()
        except BaseException:
            self._log.close()
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            raise

    # --- start: replay ------------------------------------------------------------------

    def _recover(self) -> None:
        names = os.listdir(self.directory)
        numbers = sorted(int(n[:-4]) for n in names if n.endswith(".log") and n[:-4].isdigit())
        rec = _Recovered()
        for i, number in enumerate(numbers):
            path = self._log.path(number)
            size = _scan(path, number, rec, last=i == len(numbers) - 1)
            self._log.segments[number] = _Segment(number, path, size)
        for item in rec.items.values():
            item.token = f"{self.uid}:{item.seq}"
        grouped: set[int] = set()
        units: list[Unit] = []
        for token, split, seqs in rec.groups:
            members = [rec.items[s] for s in seqs
                       if s in rec.items and s not in rec.acked and s not in grouped]
            if members:
                grouped.update(m.seq for m in members)
                units.append(Unit(members, token, split=split, recorded=True))
        for seq in sorted(rec.items):
            if seq not in rec.acked and seq not in grouped:
                item = rec.items[seq]
                units.append(Unit([item], item.token, alone=True))
        units.sort(key=lambda u: u.items[0].seq)
        now = time.monotonic()
        for u in units:
            for item in u.items:
                item.enqueued = now
                self._log.segments[item.location[0]].live += 1  # type: ignore[index]
                self._live_bytes += item.location[2]  # type: ignore[index]
        self._pending.extend(units)
        self._count = sum(len(u.items) for u in units)
        self.replayed = self._count
        # Sequence numbers make the deduplication tokens, and ClickHouse remembers recent tokens: a number
        # must never be handed out twice, even once the segments that held it are deleted. The new
        # segment starts with the highest number used so far, written before any old segment goes.
        last = max(max(rec.items, default=0), rec.high_water)
        if not rec.seq_seen:
            # No segment says how far numbering went: a new queue, or one an older version wrote (and
            # perhaps emptied) whose numbers may still be in ClickHouse's window. Numbers then start
            # above a clock reading in microseconds, which no counter of a queue ever reached.
            last = max(last, time.time_ns() // 1000)
        self._seq = itertools.count(last + 1)
        self._log.high_water = last
        try:
            self._log.open_new((numbers[-1] + 1) if numbers else 1)
        except OSError as exc:
            if not numbers:
                raise SpanhouseError(f"exporter {self.name}: cannot start the sending queue in {self.directory}: "
                                     f"{exc.strerror or exc}") from None
            # a full disk must not keep the service from starting and draining what is queued
            log.error("exporter %s: cannot start a new segment of the sending queue in %s (%s); appending to "
                      "the last one and deleting none until one can be started", self.name, self.directory,
                      exc.strerror or exc)
            self._log.reopen(numbers[-1])
        self._log.delete_settled()
        if rec.damaged:
            log.error("exporter %s: %d damaged record(s) in the sending queue %s were skipped: a batch each "
                      "is lost, or, for the record of a delivery or a merge, a batch may be stored twice",
                      self.name, rec.damaged, self.directory)
        if self.replayed or rec.torn:
            torn = f" ({rec.torn} torn record(s) at the end of the log dropped)" if rec.torn else ""
            log.info("exporter %s: replaying %d queued batches from %s%s", self.name, self.replayed,
                     self.directory, torn)

    # --- the queue interface -------------------------------------------------------------

    def put(self, batch: Any) -> None:
        encoded = isinstance(batch, Encoded)
        pickled = None if encoded else cpu.run(encode_batch, batch)
        size = len(batch)
        with self._cond:
            seq = self._admit()
            self._log.high_water = max(self._log.high_water, seq)
            record = _item_record(seq, batch, pickled)
            try:
                self._make_room(len(record))
            except BaseException:
                self._reserved -= 1
                raise
            self._reserved_bytes += len(record)
        try:
            location = self._log.append(record, item=True)
        except BaseException:
            with self._cond:
                self._reserved -= 1
                self._reserved_bytes -= len(record)
            raise
        with self._cond:
            self._reserved_bytes -= len(record)
            self._live_bytes += len(record)
        self._enqueue(Item(seq, size, f"{self.uid}:{seq}", time.monotonic(), location=location, encoded=encoded))

    def _make_room(self, n: int) -> None:
        """Raise unless a record of `n` bytes fits the budget (the caller holds `_cond`). Undelivered bytes
        are the budget; the files may exceed it by one segment, no more, since one undelivered batch keeps
        every later segment from being deleted. When nothing is undelivered, the records already
        delivered are dropped (a new segment) rather than refusing."""
        if n > self.max_disk_bytes:
            log.warning("exporter %s: refused a batch of %s: it is larger than the sending queue's disk budget "
                        "(max_disk_mib: %d)", self.name, _size(n), self.max_disk_bytes // _MIB)
            raise BatchTooLarge(
                f"a batch of {_size(n)} (as queued) is larger than the whole disk budget of the sending queue "
                f"of exporter {self.name} ({self.max_disk_bytes // _MIB} MiB): raise its "
                "sending_queue::max_disk_mib, or send smaller requests (or lower the batch processor's "
                "send_batch_max_size)")
        full = Overloaded(f"the sending queue of exporter {self.name} has used its disk budget of "
                          f"{self.max_disk_bytes // _MIB} MiB with batches not yet delivered; retry later",
                          retry_after=QUEUE_FULL_RETRY_AFTER_S)
        if self._live_bytes + self._reserved_bytes + n > self.max_disk_bytes:
            raise full
        files_limit = self.max_disk_bytes + self._log.segment_bytes - self._reserved_bytes - n
        if self._log.disk_bytes > files_limit:
            self._log.rotate_if_settled()
            if self._log.disk_bytes > files_limit:
                raise full

    def prepare(self, unit: Unit) -> None:
        if not unit.grouped or unit.recorded:
            return
        token = unit.token.encode()
        seqs = b"".join(_SEQ.pack(i.seq) for i in unit.items)
        payload = _GROUP.pack(len(unit.items), unit.split) + seqs + token
        self._log.append(_frame(GROUP, payload))
        unit.recorded = True

    def load(self, unit: Unit) -> list[Any]:
        records = [self._log.read(item.location) for item in unit.items]  # type: ignore[arg-type]
        for item, (kind, _) in zip(unit.items, records):
            if kind not in (ITEM, ENCODED):
                raise QueueCorrupt(f"record {item.seq} is not a queued batch")
        if all(kind == ENCODED for kind, _ in records):
            return [_read_encoded(payload) for _, payload in records]
        return cpu.run(_decode_records, records)

    def done(self, unit: Unit) -> None:
        try:
            self._log.append(_frame(ACK, b"".join(_SEQ.pack(i.seq) for i in unit.items)))
        except SpanhouseError as exc:
            # Without the record the items are replayed at the next start, each alone under the token it
            # was delivered with (grouped ones as their recorded group), so the backend recognises them.
            log.warning("exporter %s: could not record delivery in the queue: %s", self.name, exc)
        with self._cond:
            for item in unit.items:
                self._live_bytes -= item.location[2]  # type: ignore[index]
            self._log.settle([item.location for item in unit.items])  # type: ignore[misc]
        super().done(unit)

    @property
    def disk_bytes(self) -> int:
        return self._log.disk_bytes

    def shutdown(self) -> None:
        """Close the log and release the directory; what is still queued is replayed at the next start."""
        self.close()
        self._log.close()
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
        except OSError:
            pass


def _size(n: int) -> str:
    return f"{n / _MIB:.1f} MiB" if n >= _MIB else f"{max(1, n // 1024)} KiB"


def _decode_records(records: list[tuple[int, bytes]]) -> list[Any]:
    return [_read_encoded(p) if kind == ENCODED else decode_batch(p[_ITEM.size:]) for kind, p in records]


def _queue_id(directory: str) -> str:
    path = os.path.join(directory, "queue.id")
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
        if text:
            return text
    except FileNotFoundError:
        pass
    except (UnicodeDecodeError, OSError) as exc:
        reason = "is not the id spanhouse wrote" if isinstance(exc, UnicodeDecodeError) else exc.strerror or exc
        raise SpanhouseError(f"the sending queue's id file {path} {reason}: restore it from a backup, or delete "
                             "it (batches replayed from this queue may then be stored a second time)") from None
    uid = uuid.uuid4().hex[:16]
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(uid + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(directory)
    return uid


def pending_batches(directory: str) -> int:
    """How many batches a file queue left in `directory` holds undelivered (0 when there is none);
    reads without changing anything."""
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    rec = _Recovered()
    for number in sorted(int(n[:-4]) for n in names if n.endswith(".log") and n[:-4].isdigit()):
        try:
            _scan(os.path.join(directory, f"{number:012d}.log"), number, rec, last=False, repair=False)
        except OSError:
            continue
    return len(set(rec.items) - rec.acked)


def _scan(path: str, number: int, rec: _Recovered, last: bool, repair: bool = True) -> int:
    """Read the records of one segment into `rec`; returns the segment's valid size. A damaged record
    whose length still fits the segment is skipped and counted (`rec.damaged`), and reading goes on
    after it. A record that runs past the end is a torn write when it ends the newest segment, and is
    cut off; anywhere else it ends the segment (what follows cannot be framed)."""
    with open(path, "r+b" if repair else "rb") as f:
        data = f.read()
        pos = 0
        while pos < len(data):
            whole_header = len(data) - pos >= _HEADER.size
            end = pos + _HEADER.size + (_HEADER.unpack_from(data, pos)[0] if whole_header else 0)
            try:
                kind, payload = _check(data[pos:end], path)
            except QueueCorrupt:
                if whole_header and end < len(data):
                    rec.damaged += 1  # a bad checksum inside the log: this record is lost, not the rest
                    pos = end
                    continue
                if last:
                    rec.torn += 1
                    f.truncate(pos)
                    f.flush()
                    os.fsync(f.fileno())
                elif repair:
                    rec.damaged += 1
                    log.error("sending queue segment %s is damaged at offset %d; the %d bytes after it are "
                              "skipped", path, pos, len(data) - pos)
                break
            if kind == SEQ:
                rec.high_water = max(rec.high_water, _SEQ.unpack_from(payload)[0])
                rec.seq_seen = True
            elif kind in (ITEM, ENCODED):
                seq, size = _ITEM.unpack_from(payload)
                rec.items[seq] = Item(seq, size, "", 0.0, location=(number, pos, end - pos),
                                      encoded=kind == ENCODED)
            elif kind == GROUP:
                n, split = _GROUP.unpack_from(payload)
                seqs = [s for (s,) in _SEQ.iter_unpack(payload[_GROUP.size:_GROUP.size + 8 * n])]
                rec.groups.append((payload[_GROUP.size + 8 * n:].decode(), split, seqs))
            elif kind == ACK:
                rec.acked.update(s for (s,) in _SEQ.iter_unpack(payload))
            pos = end
        return pos
