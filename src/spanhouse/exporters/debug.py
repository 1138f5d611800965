"""`debug` exporter: writes what it receives to the log, for trying pipelines out."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import Any

from spanhouse.component import Exporter, Factory, Kind
from spanhouse.otlp.values import as_string

log = logging.getLogger(__name__)


class Verbosity(str, Enum):
    BASIC = "basic"
    NORMAL = "normal"
    DETAILED = "detailed"


@dataclass(frozen=True, kw_only=True)
class DebugConfig:
    verbosity: Verbosity = Verbosity.BASIC
    """basic: one line per batch; normal: one line per span; detailed: every attribute too."""


class DebugExporter(Exporter):
    """Logs batches at INFO; never fails, so it never holds up a pipeline."""

    def __init__(self, config: DebugConfig, signal: str):
        self.config = config
        self.signal = signal
        self.received = 0

    def consume(self, batch: Any) -> None:
        self.received += len(batch)
        log.info("%s: %d received (%d total)", self.signal, len(batch), self.received)
        if self.config.verbosity is Verbosity.BASIC or self.signal != "traces":
            return
        for i in range(len(batch)):
            dur_ms = (batch.end_time_unix_nano[i] - batch.start_time_unix_nano[i]) / 1e6
            log.info("  span %s/%s %r parent=%s %.1fms status=%d", batch.trace_id[i], batch.span_id[i],
                     batch.name[i], batch.parent_span_id[i] or "-", dur_ms, batch.status_code[i])
            if self.config.verbosity is Verbosity.DETAILED:
                for k, v in batch.attributes[i].items():
                    log.info("    %s = %s", k, as_string(v)[:200])


def new_factory() -> Factory:
    return Factory(kind=Kind.EXPORTER, type="debug", config=DebugConfig,
                   create=lambda settings, cfg: DebugExporter(cfg, settings.signal),
                   signals=frozenset({"traces", "logs"}), stability="development")
