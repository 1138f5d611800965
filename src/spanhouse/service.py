"""Build and run the pipelines of a validated `ServiceConfig`.

Receivers are shared by every pipeline that names them; processors are built once per pipeline;
exporters once per (id, signal). Data flows in the receiver's thread: decode → processors in order →
each exporter; the receiver answers when every exporter has accepted the batch durably. Records an
exporter would accept but not keep (`Exporter.refuses`: older than the store's retention) are taken out
of the request once, after the processors, and the receiver answers them as rejected. A processor
that holds data (`batch`) is flushed by a per-pipeline ticker and at shutdown.

Start order: exporters (they open the store), processors, extensions (some read the store), receivers;
then the service reports ready.
Shutdown is the reverse, and flushes held data before exporters close.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from spanhouse import cpu, gcpolicy
from spanhouse.batch import Ack
from spanhouse.component import (
    Component,
    ComponentID,
    CreateSettings,
    Exporter,
    Kind,
    Processor,
    Refusal,
    Registry,
    default_registry,
)
from spanhouse.config import ServiceConfig
from spanhouse.errors import ConfigError, RetryableError, SpanhouseError
from spanhouse.otlp.values import exception_without_message

log = logging.getLogger(__name__)

ACK_TIMEOUT_S = 60.0


@dataclass
class Host:
    """What a component can see of the running service: the config and the other components."""

    config: ServiceConfig
    exporters: dict[tuple[ComponentID, str], Exporter] = field(default_factory=dict)
    extensions: dict[ComponentID, Component] = field(default_factory=dict)
    receivers: dict[ComponentID, Component] = field(default_factory=dict)
    ready: threading.Event = field(default_factory=threading.Event)
    started_at: float = field(default_factory=time.time)


class Pipeline:
    """One signal's path from receivers through processors to exporters; a `Consumer` for receivers."""

    def __init__(self, id: ComponentID, processors: list[tuple[ComponentID, Processor]],
                 exporters: list[tuple[ComponentID, Exporter]], ack_timeout: float = ACK_TIMEOUT_S):
        self.id = id
        self.processors = processors
        self.exporters = exporters
        self.ack_timeout = ack_timeout
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def consume(self, batch: Any) -> Refusal | None:
        ack = Ack()
        batch.acks.append(ack)
        refusal = self._run(batch, 0)
        ack.wait(self.ack_timeout)
        return refusal

    def _run(self, batch: Any, start: int) -> Refusal | None:
        """Process `batch` from processor `start` on and export it; resolves its acknowledgements."""
        out, refusal = cpu.run(self._process, batch, start)
        if out is not None:
            self._export(out)
        return refusal

    def _process(self, batch: Any, start: int) -> tuple[Any | None, Refusal | None]:
        """The processors from `start` on (on the CPU thread), then what the exporters refuse; the batch
        is None when nothing is left to export. A request's records are screened once, with the values
        the processors left, before a holding processor (`batch`) merges them with other requests' and
        the request's own answer could no longer say which were refused."""
        refusal = None
        screened = start > 0  # a batch a holding processor released was screened before it was held
        for pid, proc in self.processors[start:]:
            if not screened and getattr(proc, "flush_interval", None) is not None:
                batch, refusal = self._screen(batch)
                screened = True
                if len(batch) == 0:
                    batch.succeed()
                    return None, refusal
            try:
                batch = proc.process(batch)
            except Exception as exc:  # resolve, never leave a receiver waiting on a lost batch
                if not isinstance(exc, SpanhouseError):
                    # processors see spans before redaction: the message may quote a value
                    log.error("pipeline %s: processor %s failed: %s", self.id, pid, exception_without_message(exc))
                    # the client sees which component failed, not Python's message about its internals
                    exc = RetryableError(f"processor {pid} failed on this request ({type(exc).__name__}); "
                                         "the spanhouse log has the details", retry_after=5)
                batch.fail(exc)
                return None, refusal
            if len(batch) == 0:
                batch.succeed()
                return None, refusal
        if not screened:
            batch, refusal = self._screen(batch)
            if len(batch) == 0:
                batch.succeed()
                return None, refusal
        return batch, refusal

    def _screen(self, batch: Any) -> tuple[Any, Refusal | None]:
        """`batch` without the records any exporter of this pipeline refuses (`Exporter.refuses`): none of
        the exporters gets them, so what is forwarded matches what is stored and what the client is told."""
        refused: set[int] = set()
        messages: list[str] = []
        for _, exp in self.exporters:
            refuses = getattr(exp, "refuses", None)  # duck-typed exporters that refuse nothing need not define it
            found = refuses(batch) if refuses is not None else None
            if found is not None and found[0]:
                refused.update(found[0])
                messages.append(found[1])
        if not refused:
            return batch, None
        kept = batch.take(i for i in range(len(batch)) if i not in refused)
        kept.acks = batch.acks
        return kept, Refusal(len(refused), "; ".join(messages))

    def _export(self, batch: Any) -> None:
        first_error: Exception | None = None
        for eid, exp in self.exporters:
            try:
                exp.consume(batch)
            except Exception as exc:
                if not isinstance(exc, SpanhouseError):
                    log.exception("exporter %s: unexpected error", eid)
                first_error = first_error or exc
        if first_error is not None:
            batch.fail(first_error)
        else:
            batch.succeed()

    def flush(self, force: bool = False) -> None:
        """Push what holding processors have ready (everything, when `force`) down the pipeline."""
        for i, (_, proc) in enumerate(self.processors):
            if proc.flush_interval is None:
                continue
            while (held := proc.flush(force)) is not None and len(held):
                self._run(held, i + 1)

    def start(self) -> None:
        intervals = [p.flush_interval for _, p in self.processors if p.flush_interval]
        if not intervals:
            return
        tick = min(max(min(intervals) / 4, 0.005), 1.0)

        def loop() -> None:
            while not self._stop.wait(tick):
                try:
                    self.flush()
                except Exception:
                    log.exception("pipeline %s: flush failed", self.id)

        self._ticker = threading.Thread(target=loop, name=f"flush-{self.id}", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        self.flush(force=True)


class FanoutConsumer:
    """Hands a batch to several pipelines; every pipeline but the last gets its own copy."""

    def __init__(self, pipelines: list[Pipeline]):
        self.pipelines = pipelines

    def consume(self, batch: Any) -> Refusal | None:
        last = len(self.pipelines) - 1
        return Refusal.merge([p.consume(batch if i == last else batch.copy()) for i, p in enumerate(self.pipelines)])


class Service:
    """A running configuration. `start()` raises `ConfigError`/`SpanhouseError` with what to fix."""

    def __init__(self, config: ServiceConfig, registry: Registry | None = None):
        if config.for_reading:
            raise ValueError("a configuration loaded for_reading skipped the checks serving needs; load it "
                             "without for_reading to serve it")
        self.config = config
        self.registry = registry or default_registry()
        self.host = Host(config)
        self.pipelines: dict[ComponentID, Pipeline] = {}
        self._processors: list[tuple[str, Component]] = []
        self._started: list[tuple[str, Component]] = []
        self._stopped = threading.Event()
        self._shutdown_lock = threading.Lock()
        self._built = False

    def _factory(self, kind: Kind, cid: ComponentID):
        factory = self.registry.get(kind, cid.type)
        if factory is None:
            raise ConfigError([f"{kind.value}::{cid}: no factory for type {cid.type!r}"])
        return factory

    def build(self) -> None:
        cfg = self.config
        for eid in cfg.service_extensions:
            ext = self._factory(Kind.EXTENSION, eid).create(CreateSettings(eid), cfg.extensions[eid])
            self.host.extensions[eid] = ext
        for pid, p in cfg.pipelines.items():
            exporters = []
            for eid in p.exporters:
                key = (eid, pid.type)
                if key not in self.host.exporters:
                    exp = self._factory(Kind.EXPORTER, eid).create(CreateSettings(eid, signal=pid.type),
                                                                   cfg.exporters[eid])
                    self.host.exporters[key] = exp
                exporters.append((eid, self.host.exporters[key]))
            processors = []
            for prid in p.processors:
                proc = self._factory(Kind.PROCESSOR, prid).create(CreateSettings(prid, signal=pid.type),
                                                                  cfg.processors[prid])
                processors.append((prid, proc))
                self._processors.append((f"processor {prid} in {pid}", proc))
            self.pipelines[pid] = Pipeline(pid, processors, exporters)
        consumers: dict[ComponentID, dict[str, list[Pipeline]]] = {}
        for pid, p in cfg.pipelines.items():
            for rid in p.receivers:
                consumers.setdefault(rid, {}).setdefault(pid.type, []).append(self.pipelines[pid])
        for rid, by_signal in consumers.items():
            fanouts = {sig: ps[0] if len(ps) == 1 else FanoutConsumer(ps) for sig, ps in by_signal.items()}
            settings = CreateSettings(rid, consumers=fanouts)
            receiver = self._factory(Kind.RECEIVER, rid).create(settings, cfg.receivers[rid])
            self.host.receivers[rid] = receiver
        self._built = True

    def start(self) -> None:
        if not self._built:
            self.build()
        order: list[tuple[str, Component]] = (
            [(f"exporter {i}/{sig}", e) for (i, sig), e in self.host.exporters.items()]
            + self._processors
            + [(f"extension {i}", e) for i, e in self.host.extensions.items()]
            + [(f"receiver {i}", r) for i, r in self.host.receivers.items()]
        )
        for what, comp in order:
            try:
                comp.start(self.host)
            except Exception as exc:
                self.shutdown()
                if isinstance(exc, SpanhouseError):
                    raise SpanhouseError(f"{what} failed to start: {exc}") from exc
                raise SpanhouseError(f"{what} failed to start: {type(exc).__name__}: {exc}") from exc
            self._started.append((what, comp))
        for p in self.pipelines.values():
            p.start()
        self.host.ready.set()
        log.info("spanhouse started: %s", ", ".join(str(r) for r in self.host.receivers))

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop receivers, flush held data, close exporters and extensions. Idempotent."""
        with self._shutdown_lock:
            if self._stopped.is_set():
                return
            self.host.ready.clear()
            started = dict((id(c), w) for w, c in self._started)
            receivers = [r for r in self.host.receivers.values() if id(r) in started]
            _shutdown_all(receivers, timeout)
            for p in self.pipelines.values():
                p.stop()
            rest = [c for _, c in reversed(self._started) if c not in receivers]
            _shutdown_all(rest, timeout)
            self._stopped.set()
            log.info("spanhouse stopped")

    def wait(self) -> None:
        self._stopped.wait()

    def run(self) -> None:
        """Start, then serve until SIGINT or SIGTERM; shut down gracefully. A signal that arrives while
        starting is kept: the start completes, then the service stops as after any signal."""
        stop: list[int] = []

        # The handler only records the signal: it runs on the main thread between bytecodes, possibly
        # while that thread holds a lock (an Event's condition), so it must not take locks itself.
        def on_signal(signum: int, frame: Any) -> None:
            stop.append(signum)

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            gcpolicy.settle()
            if stop:
                log.info("stopping: a signal arrived while starting")
            while not stop:
                time.sleep(0.2)
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            self.shutdown()


def _shutdown_all(components: Iterable[Component], timeout: float) -> None:
    for comp in components:
        try:
            comp.shutdown(timeout)
        except Exception:
            log.exception("shutdown of %s failed", type(comp).__name__)
