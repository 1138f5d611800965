"""The serving process's garbage-collector settings (`spanhouse.gcpolicy`)."""

from __future__ import annotations

import gc
import os
import signal
import threading

from support import service_config, unique_database

from spanhouse import gcpolicy
from spanhouse.config import parse_config
from spanhouse.service import Service


def _restore(old: tuple[int, int, int]) -> None:
    gc.unfreeze()
    gc.set_threshold(*old)


def test_settle_freezes_what_exists_and_collects_less_often():
    old = gc.get_threshold()
    try:
        gcpolicy.settle()
        assert gc.get_threshold() == gcpolicy.THRESHOLDS
        assert gcpolicy.THRESHOLDS[0] > old[0]
        assert gc.get_freeze_count() > 0
        assert gc.isenabled()  # cycles are still collected, only less often
    finally:
        _restore(old)


def test_serve_settles_the_collector_once_the_service_has_started(monkeypatch):
    """`Service.run` (what `spanhouse serve` calls) applies the policy once, after start, while serving."""
    service = Service(parse_config(service_config(unique_database("gc"))))
    calls: list[bool] = []
    settled = threading.Event()

    def settle() -> None:
        calls.append(service.host.ready.is_set())
        settled.set()

    monkeypatch.setattr(gcpolicy, "settle", settle)

    def stop_when_settled() -> None:
        settled.wait(60)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=stop_when_settled, daemon=True).start()
    service.run()
    assert calls == [True]
