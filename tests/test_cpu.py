"""The CPU thread (`spanhouse.cpu`): results, errors and re-entry."""

from __future__ import annotations

import threading

import pytest

from spanhouse import cpu


def test_run_returns_results_raises_errors_and_runs_nested_calls_in_place():
    assert cpu.run(lambda a, b=0: a + b, 2, b=3) == 5
    with pytest.raises(ZeroDivisionError):
        cpu.run(lambda: 1 / 0)
    names = cpu.run(lambda: (threading.current_thread().name, cpu.run(lambda: threading.current_thread().name)))
    assert names[0] == names[1] and names[0].startswith("spanhouse-cpu")
    assert names[0] != threading.current_thread().name
