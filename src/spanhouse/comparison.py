"""Two sides of runs over one dataset, paired by example: quality, cost and latency side by side.

A *run* is a trace whose root span carries `spanhouse.dataset.name` (the dataset asked for) and
`spanhouse.dataset.example.id`; it belongs to a side when one of its spans matches that side's selector
(`Selector`). A run matching both selectors belongs to neither and is counted as ambiguous.

- Several runs of one example on one side: the latest (by root span start) counts, the others are
  counted as superseded. Narrow a side to one run of the dataset with `experiment=NAME`.
- Quality: the `gen_ai.evaluation.result` results of `genai_evaluations_full` (one copy of a result sent
  twice) whose trace is the run's, on any of its spans, sent as span events or as log records, whenever
  they arrived (an evaluator that scores the run later counts once its results are stored). Results
  without the run's trace id cannot be told apart by example and are not read. Per run and evaluation
  name: the mean of its numeric scores; for an evaluation that never has a numeric score (labels only),
  its pass rate (`spanhouse.scores`: pass / fail labels).
- Cost: the sum of `CostUsd` over the run's GenAI spans (one copy of each span); `unpriced_calls`
  counts model calls without a known cost (a failed call without usage has no charge and is not one).
- Latency: the root span's duration (the whole workflow); p50 and p95 by nearest rank over the paired
  examples (p95: the smallest duration at least 95% of the runs are at or under).

Every user value reaches ClickHouse as a query parameter; the attribute names come from `spanhouse.semconv`.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from typing import Any

from spanhouse import semconv as sc
from spanhouse.analytics import FUTURE_SKEW_S
from spanhouse.modelcalls import UNPRICED_SOURCES
from spanhouse.reader import Reader
from spanhouse.spancopies import ONE_COPY_SQL

SELECTOR_HELP = ("PROMPT:VERSION (ticket_reply_prompt:v17), model=MODEL, release=SERVICE_VERSION or "
                 "experiment=NAME")
_KINDS = ("prompt", "model", "release", "experiment")


@dataclass(frozen=True)
class Selector:
    """Which runs make one side: a prompt version, a model, a release (`service.version`) or an experiment."""

    kind: str
    value: str
    version: str = ""

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Raises ValueError saying what a selector looks like."""
        text = (text or "").strip()
        kind, eq, value = text.partition("=")
        if eq and kind.strip() in _KINDS:
            kind, value = kind.strip(), value.strip()
        elif eq:
            raise ValueError(f"{text!r}: unknown selector kind {kind.strip()!r}; expected {SELECTOR_HELP}")
        else:
            kind, value = "prompt", text
        if kind == "prompt":
            sep = max(value.rfind(":"), value.rfind("@"))
            name, version = value[:sep].strip(), value[sep + 1:].strip()
            if sep < 0 or not name or not version:
                raise ValueError(f"{text!r}: a prompt selector names a version, as NAME:VERSION; expected "
                                 f"{SELECTOR_HELP}")
            return cls("prompt", name, version)
        if not value:
            raise ValueError(f"{text!r}: {kind}= needs a value; expected {SELECTOR_HELP}")
        return cls(kind, value)

    def __str__(self) -> str:
        return f"{self.value}:{self.version}" if self.kind == "prompt" else f"{self.kind}={self.value}"

    def sql(self, side: str) -> tuple[str, dict[str, str]]:
        """A condition on one otel_traces row, and its parameters (named after `side`)."""
        v, ver = f"{{{side}_value:String}}", f"{{{side}_version:String}}"
        span, res = "SpanAttributes[{k_%s:String}]", "ResourceAttributes[{k_%s:String}]"
        cond = {
            "prompt": f"({span % 'prompt'} = {v} AND {span % 'prompt_version'} = {ver})",
            "model": f"({span % 'request_model'} = {v} OR {span % 'response_model'} = {v})",
            "release": f"({res % 'release'} = {v} OR {span % 'release'} = {v})",
            "experiment": f"{span % 'experiment'} = {v}",
        }[self.kind]
        return cond, {f"{side}_value": self.value, f"{side}_version": self.version}


_KEYS = {
    "k_dataset": sc.SPANHOUSE_DATASET_NAME,
    "k_example": sc.SPANHOUSE_DATASET_EXAMPLE_ID,
    "k_prompt": sc.GEN_AI_PROMPT_NAME,
    "k_prompt_version": sc.GEN_AI_PROMPT_VERSION,
    "k_request_model": sc.GEN_AI_REQUEST_MODEL,
    "k_response_model": sc.GEN_AI_RESPONSE_MODEL,
    "k_release": sc.SERVICE_VERSION,
    "k_experiment": sc.SPANHOUSE_EXPERIMENT_NAME,
}
_UNPRICED = {f"unpriced{i}": v for i, v in enumerate(UNPRICED_SOURCES)}
_FRAGMENTS = {
    "window": "Timestamp >= now64(9) - toIntervalSecond({seconds:UInt64}) "
              f"AND Timestamp <= now64(9) + toIntervalSecond({FUTURE_SKEW_S})",
    # the dataset's runs: their roots carry the name; the rest of a trace starts after its root
    "runs": "SELECT TraceId FROM $traces WHERE $window AND SpanAttributes[{k_dataset:String}] = {dataset:String}",
    "unpriced": "(CostSource IN (" + ", ".join(f"{{{k}:String}}" for k in _UNPRICED) + ") AND NOT (CostSource = "
                "{no_usage:String} AND StatusCode = 'Error'))",
}

RUNS_SQL = """
SELECT TraceId,
       argMinIf(SpanAttributes[{k_example:String}], Timestamp,
                SpanAttributes[{k_dataset:String}] = {dataset:String}) AS example,
       min(Timestamp) AS started,
       if(countIf(ParentSpanId = '') > 0, maxIf(Duration, ParentSpanId = '') / 1e6, NULL) AS root_ms,
       max($baseline) AS baseline, max($candidate) AS candidate
FROM $traces
WHERE $window AND TraceId IN ($runs)
GROUP BY TraceId
"""

COSTS_SQL = """
SELECT TraceId, sum(ifNull(CostUsd, 0)), countIf($unpriced)
FROM (SELECT TraceId, CostUsd, CostSource, StatusCode FROM $genai_spans
      WHERE $window AND TraceId IN ($runs) $one_copy)
GROUP BY TraceId
"""

EVALUATIONS_SQL = """
SELECT TraceId, EvaluationName, ScoreValue, Passed
FROM $genai_evaluations_full
WHERE Timestamp >= now64(9) - toIntervalSecond({seconds:UInt64}) AND EvaluationName != ''
  AND TraceId IN ($runs)
"""

DATASETS_SQL = """
SELECT SpanAttributes[{k_dataset:String}] AS name, uniqExact(TraceId)
FROM $traces WHERE $window AND mapContains(SpanAttributes, {k_dataset:String})
GROUP BY name ORDER BY name LIMIT 20
"""


def _sql(template: str, reader: Reader, **extra: str) -> str:
    text = string.Template(template).safe_substitute(_FRAGMENTS)
    text = string.Template(text).safe_substitute(_FRAGMENTS)
    return string.Template(text).substitute(reader.tables, one_copy=ONE_COPY_SQL, **extra)


@dataclass
class Run:
    """One trace of the dataset: which sides it matched, its example, latency, cost and scores."""

    trace_id: str
    example: str
    started: Any
    root_ms: float | None
    baseline: bool
    candidate: bool
    cost_usd: float = 0.0
    unpriced_calls: int = 0
    scores: dict[str, list[float]] = field(default_factory=dict)
    passes: dict[str, list[int]] = field(default_factory=dict)


def read_runs(reader: Reader, dataset: str, baseline: Selector, candidate: Selector, seconds: int) -> list[Run]:
    """Every run of `dataset` started in the last `seconds`, with what each side's selector says of it."""
    base_sql, base_params = baseline.sql("b")
    cand_sql, cand_params = candidate.sql("c")
    params: dict[str, Any] = {**_KEYS, **_UNPRICED, **base_params, **cand_params, "dataset": dataset,
                              "seconds": int(seconds), "no_usage": sc.SpanhouseCostSourceValues.NO_USAGE.value}
    runs = {r[0]: Run(r[0], r[1], r[2], None if r[3] is None else float(r[3]), bool(r[4]), bool(r[5]))
            for r in reader.query(_sql(RUNS_SQL, reader, baseline=base_sql, candidate=cand_sql), params).result_rows}
    if not runs:
        return []
    for trace_id, cost, unpriced in reader.query(_sql(COSTS_SQL, reader), params).result_rows:
        if trace_id in runs:
            runs[trace_id].cost_usd, runs[trace_id].unpriced_calls = float(cost), int(unpriced)
    for trace_id, name, value, passed in reader.query(_sql(EVALUATIONS_SQL, reader), params).result_rows:
        run = runs.get(trace_id)
        if run is None:
            continue
        if value is not None:
            run.scores.setdefault(name, []).append(float(value))
        if passed is not None:
            run.passes.setdefault(name, []).append(int(passed))
    return sorted(runs.values(), key=lambda r: (r.started, r.trace_id))


def dataset_names(reader: Reader, seconds: int) -> list[tuple[str, int]]:
    """The dataset names with runs in the window (at most 20) and their number of runs."""
    params = {**_KEYS, "seconds": int(seconds)}
    return [(str(n), int(c)) for n, c in reader.query(_sql(DATASETS_SQL, reader), params).result_rows]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def nearest_rank(values: list[float], q: float) -> float | None:
    """The q-quantile by nearest rank: the smallest value at least a share q of `values` are at or under."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class Pair:
    example: str
    baseline: Run
    candidate: Run


@dataclass
class Comparison:
    """The paired examples of two sides and everything the table and the gate read from them."""

    dataset: str
    baseline: Selector
    candidate: Selector
    seconds: int
    runs: int = 0
    pairs: list[Pair] = field(default_factory=list)
    only_baseline: int = 0
    only_candidate: int = 0
    baseline_runs: int = 0
    candidate_runs: int = 0
    ambiguous_runs: int = 0
    unmatched_runs: int = 0
    superseded_runs: dict[str, int] = field(default_factory=lambda: {"baseline": 0, "candidate": 0})
    runs_without_example: int = 0
    label_only: set[str] = field(default_factory=set)

    def value(self, run: Run, name: str) -> float | None:
        """A run's value for an evaluation: its mean score, or its pass rate for a labels-only evaluation."""
        if name in self.label_only:
            return _mean([float(p) for p in run.passes.get(name, [])])
        return _mean(run.scores.get(name, []))

    def evaluation_names(self) -> list[str]:
        names = {n for p in self.pairs for r in (p.baseline, p.candidate) for n in (*r.scores, *r.passes)}
        return sorted(names)

    def evaluation(self, name: str) -> dict[str, Any]:
        """n paired (both sides have a value), both means and the delta; `kind` is score or label."""
        both = [(b, c) for p in self.pairs
                if (b := self.value(p.baseline, name)) is not None and (c := self.value(p.candidate, name)) is not None]
        base = _mean([b for b, _ in both])
        cand = _mean([c for _, c in both])
        return {"name": name, "kind": "label" if name in self.label_only else "score", "n": len(both),
                "baseline_mean": base, "candidate_mean": cand,
                "delta": None if base is None or cand is None else cand - base}

    def cost(self) -> dict[str, Any]:
        base = _mean([p.baseline.cost_usd for p in self.pairs])
        cand = _mean([p.candidate.cost_usd for p in self.pairs])
        return {"n": len(self.pairs), "baseline_mean_usd": base, "candidate_mean_usd": cand,
                "delta_pct": increase(base, cand),
                "baseline_unpriced_calls": sum(p.baseline.unpriced_calls for p in self.pairs),
                "candidate_unpriced_calls": sum(p.candidate.unpriced_calls for p in self.pairs)}

    def latency(self, side: str) -> dict[str, Any]:
        values = [r.root_ms for p in self.pairs if (r := getattr(p, side)).root_ms is not None]
        return {"n": len(values), "p50_ms": nearest_rank(values, 0.5), "p95_ms": nearest_rank(values, 0.95)}

    def regressions(self, top: int) -> list[dict[str, Any]]:
        """The `top` largest drops of one example on one evaluation, worst first, with both trace ids."""
        drops = []
        for p in self.pairs:
            for name in self.evaluation_names():
                b, c = self.value(p.baseline, name), self.value(p.candidate, name)
                if b is not None and c is not None and c < b:
                    drops.append({"example": p.example, "evaluation": name, "baseline": b, "candidate": c,
                                  "delta": c - b, "baseline_trace_id": p.baseline.trace_id,
                                  "candidate_trace_id": p.candidate.trace_id})
        drops.sort(key=lambda d: (d["delta"], d["example"], d["evaluation"]))
        return drops[:top]

    def as_dict(self, top: int) -> dict[str, Any]:
        return {
            "dataset": self.dataset, "baseline": str(self.baseline), "candidate": str(self.candidate),
            "window_seconds": self.seconds,
            "examples": {"paired": len(self.pairs), "only_baseline": self.only_baseline,
                         "only_candidate": self.only_candidate},
            "runs": {"dataset": self.runs, "baseline": self.baseline_runs, "candidate": self.candidate_runs,
                     "ambiguous": self.ambiguous_runs, "unmatched": self.unmatched_runs,
                     "superseded": dict(self.superseded_runs), "without_example_id": self.runs_without_example},
            "evaluations": [self.evaluation(n) for n in self.evaluation_names()],
            "cost_per_example": self.cost(),
            "latency_ms": {"baseline": self.latency("baseline"), "candidate": self.latency("candidate")},
            "regressions": self.regressions(top),
        }

    def empty_reason(self, datasets: list[tuple[str, int]]) -> str:
        """Why there are no paired examples, and what to check."""
        if not self.runs:
            seen = ", ".join(f"{n!r} ({c} runs)" for n, c in datasets)
            return (f"no runs of dataset {self.dataset!r} are stored in the window: " +
                    (f"the datasets with runs are {seen}" if seen else "no run of any dataset is stored in it (the "
                     "spans may not be stored yet: use --wait, or widen --since)"))
        if self.runs_without_example == self.runs:
            return (f"the {self.runs} runs of dataset {self.dataset!r} carry no {sc.SPANHOUSE_DATASET_EXAMPLE_ID} "
                    "on their root spans")
        both = (f" (apart from {self.ambiguous_runs} runs that match both selectors and count for neither)"
                if self.ambiguous_runs else "")
        if not self.baseline_runs:
            return (f"the baseline selector {self.baseline} matched none of the {self.runs} runs of "
                    f"{self.dataset!r}{both}")
        if not self.candidate_runs:
            return (f"the candidate selector {self.candidate} matched none of the {self.runs} runs of "
                    f"{self.dataset!r}{both}")
        return (f"the baseline ({self.baseline_runs} runs) and the candidate ({self.candidate_runs} runs) share no "
                f"example id of {self.dataset!r}")


def increase(base: float | None, cand: float | None) -> float | None:
    """The relative increase from `base` to `cand` (0.1 = 10%); None when undefined; inf from 0 to more."""
    if base is None or cand is None:
        return None
    if base == 0:
        return 0.0 if cand == 0 else math.inf
    return (cand - base) / base


def compare(runs: list[Run], dataset: str, baseline: Selector, candidate: Selector, seconds: int) -> Comparison:
    """Pair the runs (oldest first) of each side by example id, the latest run of an example counting."""
    out = Comparison(dataset, baseline, candidate, seconds, runs=len(runs))
    latest: dict[str, dict[str, Run]] = {"baseline": {}, "candidate": {}}
    for run in runs:
        if not run.example:
            out.runs_without_example += 1
            continue
        if run.baseline and run.candidate:
            out.ambiguous_runs += 1
            continue
        if not run.baseline and not run.candidate:
            out.unmatched_runs += 1
            continue
        side = "baseline" if run.baseline else "candidate"
        if side == "baseline":
            out.baseline_runs += 1
        else:
            out.candidate_runs += 1
        if run.example in latest[side]:
            out.superseded_runs[side] += 1
        latest[side][run.example] = run
    base, cand = latest["baseline"], latest["candidate"]
    out.pairs = [Pair(e, base[e], cand[e]) for e in sorted(base.keys() & cand.keys())]
    out.only_baseline = len(base.keys() - cand.keys())
    out.only_candidate = len(cand.keys() - base.keys())
    numeric = {n for p in out.pairs for r in (p.baseline, p.candidate) for n in r.scores}
    out.label_only = {n for p in out.pairs for r in (p.baseline, p.candidate) for n in r.passes} - numeric
    return out


def read_comparison(reader: Reader, dataset: str, baseline: Selector, candidate: Selector,
                    seconds: int) -> Comparison:
    return compare(read_runs(reader, dataset, baseline, candidate, seconds), dataset, baseline, candidate, seconds)
