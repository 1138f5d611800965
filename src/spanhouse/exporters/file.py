"""`file` exporter: writes traces and logs to a file, as the OpenTelemetry Collector's file exporter does.

Keys and defaults are the Collector's: `path` (required), `format` (`json`: one OTLP/JSON
`ExportTraceServiceRequest` or `ExportLogsServiceRequest` per line, which the Collector's `otlpjsonfile`
receiver reads; `proto`: each request's protobuf bytes after their length as 4 bytes big-endian),
`append` (false: the file is emptied at start), `rotation` (`max_megabytes` 100, `max_backups` 100; off
unless the section is given) and `flush_interval` (1s). The traces and logs pipelines of one exporter id
share its file. The file is created readable by its owner only.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from spanhouse.component import ConfigIssue, Factory, Kind
from spanhouse.config import Duration
from spanhouse.errors import PermanentError, RetryableError
from spanhouse.exporters.helper import ExporterHelperSettings, HelperExporter, Pusher, RetrySettings
from spanhouse.fsprivate import open_private_file
from spanhouse.otlp.encode import encode_traces_json, encode_traces_protobuf
from spanhouse.otlp.encode_logs import encode_logs_json, encode_logs_protobuf

log = logging.getLogger(__name__)

_MIB = 1 << 20
_ENCODERS = {
    ("traces", "json"): lambda b: orjson.dumps(encode_traces_json(b)) + b"\n",
    ("traces", "proto"): lambda b: _framed(encode_traces_protobuf(b)),
    ("logs", "json"): lambda b: orjson.dumps(encode_logs_json(b)) + b"\n",
    ("logs", "proto"): lambda b: _framed(encode_logs_protobuf(b)),
}


def _framed(message: bytes) -> bytes:
    return struct.pack(">I", len(message)) + message


def encode_request(signal: str, fmt: str, batch: Any) -> bytes:
    """`batch` as the exporter writes it: one OTLP/JSON line (`json`) or one length-prefixed message (`proto`)."""
    return _ENCODERS[(signal, fmt)](batch)


@dataclass(frozen=True, kw_only=True)
class RotationSettings:
    """`rotation`: start a new file when this one would grow past `max_megabytes`; the full one is kept
    beside it as `NAME-<UTC time>.EXT`, at most `max_backups` of them (0: all)."""

    max_megabytes: int = 100
    max_backups: int = 100

    def validate(self) -> Iterator[ConfigIssue]:
        if self.max_megabytes <= 0:
            yield ConfigIssue("max_megabytes", "must be greater than 0")
        if self.max_backups < 0:
            yield ConfigIssue("max_backups", "must be 0 (keep all) or more")


@dataclass(frozen=True, kw_only=True)
class FileExporterConfig(ExporterHelperSettings):
    # as the Collector's file exporter: a failed write is reported to the client at once, not retried
    retry_on_failure: RetrySettings = field(default_factory=lambda: RetrySettings(enabled=False))
    path: str = ""
    """The file to write; missing directories are created (mode 0700)."""
    format: str = "json"
    """json (OTLP/JSON lines) or proto (length-prefixed protobuf)."""
    append: bool = False
    """Keep what the file holds at start (false: empty it)."""
    rotation: RotationSettings | None = None
    flush_interval: Duration = Duration(1.0)
    """How often written data is forced to disk (fsync); every write reaches the file at once."""

    def validate(self) -> Iterator[ConfigIssue]:
        yield from ExporterHelperSettings.validate(self)
        if not self.path:
            yield ConfigIssue("path", "required: the file to write, e.g. ./export/traces.jsonl")
        elif os.path.isdir(self.path):
            yield ConfigIssue("path", f"{self.path!r} is a directory; name a file in it", serving_only=True)
        if self.format not in ("json", "proto"):
            yield ConfigIssue("format", f"{self.format!r} is not one of json, proto")
        if self.flush_interval.seconds <= 0:
            yield ConfigIssue("flush_interval", "must be greater than 0, e.g. 1s")


class _SharedFile:
    """One open file, written by every signal of one exporter id; each write is whole or not at all."""

    def __init__(self, owner: str, config: FileExporterConfig):
        self.owner = owner
        self.config = config
        self.path = config.path
        self.users = 0
        self._lock = threading.Lock()
        self._fd = open_private_file(self.path, truncate=not config.append)
        self._size = os.fstat(self._fd).st_size
        self._synced_at = time.monotonic()

    def write(self, data: bytes) -> None:
        with self._lock:
            self._reopen_if_moved()
            rotation = self.config.rotation
            if rotation is not None and self._size and self._size + len(data) > rotation.max_megabytes * _MIB:
                self._rotate(rotation)
            before = self._size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view):]
            except OSError:
                self._cut_back(before)
                raise
            self._size = before + len(data)
            if time.monotonic() - self._synced_at >= self.config.flush_interval.seconds:
                os.fsync(self._fd)
                self._synced_at = time.monotonic()

    def _cut_back(self, size: int) -> None:
        """Remove the part of a failed write, so the file holds only whole requests."""
        try:
            os.ftruncate(self._fd, size)
        except OSError:
            log.error("exporter %s: %s may end with a partly written request", self.owner, self.path)

    def _reopen_if_moved(self) -> None:
        """A file moved or deleted under us (by logrotate, a user) would swallow writes: write a new one at
        `path` instead. A missing directory is an error, not created again (it may be an unmounted volume)."""
        try:
            now, ours = os.stat(self.path), os.fstat(self._fd)
            if (now.st_dev, now.st_ino) == (ours.st_dev, ours.st_ino):
                return
        except FileNotFoundError:
            if not os.path.isdir(os.path.dirname(os.path.abspath(self.path))):
                raise FileNotFoundError(errno.ENOENT, "its directory no longer exists") from None
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o600)
        os.close(self._fd)
        self._fd, self._size = fd, os.fstat(fd).st_size

    def _rotate(self, rotation: RotationSettings) -> None:
        stem, ext = os.path.splitext(self.path)
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S.%f")[:-3]
        os.fsync(self._fd)
        os.replace(self.path, f"{stem}-{stamp}{ext}")
        fd = open_private_file(self.path, truncate=True)
        os.close(self._fd)
        self._fd, self._size = fd, 0
        if rotation.max_backups:
            for old in _backups(self.path)[:-rotation.max_backups]:
                try:
                    os.remove(old)
                except OSError as exc:
                    log.warning("exporter %s: cannot remove the old backup %s: %s", self.owner, old, exc.strerror)

    def close(self) -> None:
        with self._lock:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                log.error("exporter %s: cannot flush %s to disk: %s", self.owner, self.path, exc.strerror)
            os.close(self._fd)


def _backups(path: str) -> list[str]:
    """The rotated copies of `path`, oldest first (their names sort by time)."""
    directory = os.path.dirname(os.path.abspath(path))
    stem, ext = os.path.splitext(os.path.basename(path))
    pattern = re.compile(re.escape(stem) + r"-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}" + re.escape(ext) + "$")
    return sorted(os.path.join(directory, n) for n in os.listdir(directory) if pattern.match(n))


_open_files: dict[str, _SharedFile] = {}
_open_lock = threading.Lock()


def _acquire(owner: str, config: FileExporterConfig) -> _SharedFile:
    key = os.path.realpath(config.path)
    with _open_lock:
        shared = _open_files.get(key)
        if shared is None:
            shared = _open_files[key] = _SharedFile(owner, config)
        elif shared.owner != owner:
            raise PermanentError(f"exporter {owner}: {config.path} is already written by exporter {shared.owner}; "
                                 "give each file exporter a path of its own")
        shared.users += 1
        return shared


def _release(shared: _SharedFile) -> None:
    with _open_lock:
        shared.users -= 1
        if shared.users:
            return
        _open_files.pop(os.path.realpath(shared.path), None)
    shared.close()


class FileExporter(Pusher):
    """Appends each batch as one request (a line of OTLP/JSON, or a length-prefixed protobuf message).
    A failed write raises `RetryableError` naming the file and the reason; the file never keeps part of a
    request."""

    def __init__(self, config: FileExporterConfig, owner: str, signal: str):
        self.config = config
        self.owner = owner
        self.signal = signal
        self._encode = _ENCODERS[(signal, config.format)]
        self._file: _SharedFile | None = None

    def start(self, host: Any) -> None:
        try:
            self._file = _acquire(self.owner, self.config)
        except OSError as exc:
            raise PermanentError(f"cannot open {self.config.path} for writing: {exc.strerror or exc}") from None
        log.info("exporter %s: writing %s to %s (%s)", self.owner, self.signal, self.config.path, self.config.format)

    def push(self, batch: Any) -> None:
        if not len(batch):
            return
        if self._file is None:
            raise RetryableError(f"exporter {self.owner} is not started")
        try:
            data = self._encode(batch)
        except (ValueError, TypeError) as exc:  # a value OTLP cannot carry (e.g. flags beyond 32 bits)
            raise PermanentError(f"exporter {self.owner}: {len(batch)} {self.signal} records cannot be encoded as "
                                 f"OTLP: {type(exc).__name__}") from None
        try:
            self._file.write(data)
        except OSError as exc:
            raise RetryableError(f"exporter {self.owner}: cannot write {len(batch)} {self.signal} records to "
                                 f"{self.config.path}: {exc.strerror or exc}", retry_after=5) from None

    def shutdown(self, timeout: float = 10.0) -> None:
        shared, self._file = self._file, None
        if shared is not None:
            _release(shared)


def _create(settings: Any, cfg: FileExporterConfig) -> HelperExporter:
    return HelperExporter(FileExporter(cfg, str(settings.id), settings.signal), cfg,
                          f"{settings.id}/{settings.signal}", settings.signal)


def new_factory() -> Factory:
    return Factory(kind=Kind.EXPORTER, type="file", config=FileExporterConfig, create=_create,
                   signals=frozenset({"traces", "logs"}), stability="development")
