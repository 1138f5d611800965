"""A release gate: the candidate's runs over a dataset checked against thresholds and the baseline's runs.

The gate file, in the words teams use (every key but the three names is optional; at least one check):

    dataset: support-golden
    baseline: ticket_reply_prompt:v17        # a selector, as `spanhouse compare` takes them
    candidate: ticket_reply_prompt:v18       # also accepted as release_candidate
    min_scores: {policy_compliance: 0.98, citation_quality: 0.90}
    max_cost_increase: 0.10                  # 10% over the baseline's mean cost per example
    max_p95_latency_ms: 8000                 # the candidate's workflow (root span) p95
    block_on_regression: true                # false: report, exit 0
    expected_examples: 50                    # wait for and require this many paired examples
    since: 7d                                # the window the runs started in

Checks read the paired examples only (`spanhouse.comparison`). A score check reads the candidate's mean
(for a label-only evaluation its pass rate). Outcomes: `PASSED`, `FAILED`, or `Unusable` raised with the
reason when the data cannot decide (no paired example, an evaluation without results, unpriced runs).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from spanhouse.comparison import Comparison, Selector, nearest_rank
from spanhouse.config import Duration, substitute_env

EXIT_PASSED, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2
TRACES_SHOWN = 5
"""How many runs behind a failed check are named."""

_KEYS = ("dataset", "baseline", "candidate", "release_candidate", "min_scores", "max_cost_increase",
         "max_p95_latency_ms", "block_on_regression", "expected_examples", "since")


class Unusable(Exception):
    """The gate cannot decide: its config is wrong or the stored runs cannot answer it. Exit 2."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class GateConfig:
    """A validated gate: the names are set and every threshold is a finite number."""

    dataset: str
    baseline: Selector
    candidate: Selector
    min_scores: dict[str, float] = field(default_factory=dict)
    max_cost_increase: float | None = None
    max_p95_latency_ms: float | None = None
    block_on_regression: bool = True
    expected_examples: int | None = None
    since: str = "7d"


def _number(problems: list[str], key: str, value: Any, minimum: float | None = None) -> float | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        problems.append(f"{key}: expected a number, got {value!r}")
        return None
    if not math.isfinite(number) or (minimum is not None and number < minimum):
        problems.append(f"{key}: expected a finite number" + (f" of at least {minimum:g}" if minimum is not None
                                                              else "") + f", got {value!r}")
        return None
    return number


def parse(data: Any, overrides: dict[str, Any] | None = None) -> GateConfig:
    """A gate from the file's mapping (None: no file) and the command line's `overrides` (None values
    left out). Raises Unusable listing every problem."""
    problems: list[str] = []
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise Unusable([f"the gate file must be a mapping of keys ({', '.join(_KEYS)}), got {type(data).__name__}"])
    unknown = sorted(str(k) for k in data if k not in _KEYS)
    if unknown:
        problems.append(f"unknown keys {', '.join(unknown)}; expected {', '.join(_KEYS)}")
    if "candidate" in data and "release_candidate" in data:
        problems.append("candidate and release_candidate name the same thing: give one")
    merged = {**data, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    if isinstance(data.get("min_scores"), dict) and (overrides or {}).get("min_scores"):
        # `--min-score NAME=MIN` sets that evaluation's minimum; the file's others still hold
        merged["min_scores"] = {**data["min_scores"], **overrides["min_scores"]}
    if "release_candidate" in merged and "candidate" not in merged:
        merged["candidate"] = merged["release_candidate"]
    names: dict[str, Any] = {}
    for key in ("dataset", "baseline", "candidate"):
        value = merged.get(key)
        if value is None or not str(value).strip():
            problems.append(f"{key}: missing" + (" (the dataset's name)" if key == "dataset" else
                                                  " (e.g. ticket_reply_prompt:v17, model=gpt-4o, release=1.4.2, "
                                                  "experiment=ci-1234)"))
            continue
        if isinstance(value, (dict, list)):
            problems.append(f"{key}: expected a string, got {type(value).__name__}")
            continue
        if key == "dataset":
            names[key] = str(value).strip()
            continue
        try:
            names[key] = Selector.parse(str(value))
        except ValueError as exc:
            problems.append(f"{key}: {exc}")
    min_scores: dict[str, float] = {}
    raw_scores = merged.get("min_scores") or {}
    if not isinstance(raw_scores, dict):
        problems.append("min_scores: expected a mapping of evaluation name to minimum, e.g. {policy_compliance: 0.98}")
    else:
        for name, value in raw_scores.items():
            number = _number(problems, f"min_scores::{name}", value)
            if number is not None:
                min_scores[str(name)] = number
    cost = _number(problems, "max_cost_increase", merged.get("max_cost_increase"), minimum=-1.0)
    latency = _number(problems, "max_p95_latency_ms", merged.get("max_p95_latency_ms"), minimum=0.0)
    block = merged.get("block_on_regression", True)
    if not isinstance(block, bool):
        problems.append(f"block_on_regression: expected true or false, got {block!r}")
    expected = merged.get("expected_examples")
    if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int) or expected < 1):
        problems.append(f"expected_examples: expected a whole number of at least 1, got {expected!r}")
        expected = None
    since = str(merged.get("since", "7d"))
    try:
        if Duration.parse(since).seconds < 1:
            raise ValueError("must be at least 1s")
    except ValueError as exc:
        problems.append(f"since: {exc}")
    if not (min_scores or cost is not None or latency is not None) and not problems:
        problems.append("no check configured: set min_scores, max_cost_increase or max_p95_latency_ms")
    if problems:
        raise Unusable(problems)
    return GateConfig(names["dataset"], names["baseline"], names["candidate"], min_scores, cost, latency,
                      bool(block), expected, since)


def load(path: str | None, overrides: dict[str, Any]) -> GateConfig:
    """The gate file at `path` (`${env:VAR}` substituted, as the service config is) merged with `overrides`."""
    data = None
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise Unusable([f"cannot read the gate file {path}: {getattr(exc, 'strerror', None) or exc}"]) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise Unusable([f"{path} is not valid YAML: {str(exc).splitlines()[0]}"]) from None
        warnings: list[str] = []
        problems: list[str] = []
        data = substitute_env(data, os.environ, "", warnings, problems)
        if problems:
            raise Unusable(problems)
    return parse(data, overrides)


@dataclass
class Check:
    """One threshold: the value found, the threshold, whether it passed, and the runs behind a failure."""

    kind: str
    name: str
    value: float
    threshold: float
    passed: bool
    n: int
    runs: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.kind, "name": self.name, "value": self.value, "threshold": self.threshold,
                "passed": self.passed, "n": self.n, "runs": self.runs}


def _runs(pairs: list[tuple[Any, float]]) -> list[dict[str, str]]:
    return [{"example": p.example, "candidate_trace_id": p.candidate.trace_id,
             "baseline_trace_id": p.baseline.trace_id} for p, _ in pairs[:TRACES_SHOWN]]


def ready(result: Comparison, gate: GateConfig) -> bool:
    """Whether the stored runs are complete enough to decide: the expected number of paired examples,
    each with every evaluation the gate checks."""
    want = gate.expected_examples or 1
    return len(result.pairs) >= want and all(result.evaluation(n)["n"] >= want for n in gate.min_scores)


def evaluate(result: Comparison, gate: GateConfig) -> list[Check]:
    """Every check of `gate` on `result`; raises Unusable when the runs cannot decide one."""
    pairs = result.pairs
    if gate.expected_examples and len(pairs) < gate.expected_examples:
        raise Unusable([f"expected {gate.expected_examples} paired examples, found {len(pairs)} "
                        f"({result.only_baseline} only on the baseline, {result.only_candidate} only on the "
                        "candidate): the runs are missing or not stored yet (--wait)"])
    problems: list[str] = []
    checks: list[Check] = []
    found = result.evaluation_names()
    for name, minimum in gate.min_scores.items():
        e = result.evaluation(name)
        if not e["n"]:
            problems.append(f"no paired example has results of evaluation {name!r} on both sides (evaluations "
                            f"found: {', '.join(found) or 'none'})")
            continue
        if gate.expected_examples and e["n"] < gate.expected_examples:
            problems.append(f"evaluation {name!r} has results for {e['n']} of the {gate.expected_examples} expected "
                            "examples on both sides")
            continue
        low = sorted(((p, v) for p in pairs if (v := result.value(p.candidate, name)) is not None and v < minimum),
                     key=lambda pv: (pv[1], pv[0].example))
        value = e["candidate_mean"]
        checks.append(Check("min_score", name, value, minimum, value >= minimum, e["n"], _runs(low)))
    if gate.max_cost_increase is not None:
        unpriced = sum(p.baseline.unpriced_calls + p.candidate.unpriced_calls for p in pairs)
        cost = result.cost()
        if unpriced:
            problems.append(f"{unpriced} model calls of the paired runs have no cost (an unknown model?): the cost "
                            "increase is not known; see spanhouse costs --unpriced")
        elif cost["delta_pct"] is not None:
            worse = sorted(((p, d) for p in pairs if (d := p.candidate.cost_usd - p.baseline.cost_usd) > 0),
                           key=lambda pd: (-pd[1], pd[0].example))
            delta = cost["delta_pct"]
            checks.append(Check("max_cost_increase", "cost per example", delta, gate.max_cost_increase,
                                delta <= gate.max_cost_increase, len(pairs), _runs(worse)))
    if gate.max_p95_latency_ms is not None:
        timed = [(p, p.candidate.root_ms) for p in pairs if p.candidate.root_ms is not None]
        if not timed:
            problems.append("no candidate run has its root span stored: no workflow latency")
        else:
            p95 = nearest_rank([t for _, t in timed], 0.95) or 0.0
            slow = sorted(((p, t) for p, t in timed if t > gate.max_p95_latency_ms),
                          key=lambda pt: (-pt[1], pt[0].example))
            checks.append(Check("max_p95_latency_ms", "workflow p95", p95, gate.max_p95_latency_ms,
                                p95 <= gate.max_p95_latency_ms, len(timed), _runs(slow)))
    if problems:
        raise Unusable(problems)
    return checks


def exit_code(checks: list[Check], gate: GateConfig) -> int:
    return EXIT_FAILED if gate.block_on_regression and not all(c.passed for c in checks) else EXIT_PASSED

