"""What an evaluation result's score is, in one place for the store's views and the CLI.

A score value is read as a number when it is one (a numeric string included); a boolean as 1 or 0,
with `true` / `false` as its label when none was sent (OpenLIT sends booleans this way); NaN or
±Infinity (what evaluators such as ragas return when they fail) is no score: the value is NULL and,
when no label was sent, the label is `invalid_score`, so the result is counted but never averaged.

Two results of the same span and evaluation name are one result sent twice when they carry the same
idempotency key (the first is kept), or, without keys, when they agree in value, label and explanation
and either one is a span event and the other a log record within `PAIR_WINDOW_MS` of it (OpenLIT's
`log_score` inside a span sends both at once; the span event is kept) or both are the same kind of
record with the same time (a resent batch). The same feedback given again later is another result.
Value, label and explanation agree when they are stored alike (`score_value`, `score_label`), as the
store's view compares them: `1` and `1.0` are one value.

A result passes or fails (`passed_sql`) when it is labelled `pass` / `true` or `fail` / `false` (in
any case) or, without a label, scores exactly 1 or 0; any other result (another label, a graded
number, no score) is neither, so it is in no pass rate and no failure count.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spanhouse import semconv as sc

INVALID_SCORE_LABEL = "invalid_score"
SPAN_EVENT = "span_event"
LOG_RECORD = "log_record"
_BOOLEANS = {"true": 1.0, "false": 0.0}
PAIR_WINDOW_MS = 1000
"""How far apart a span event and a log record of the same result may be to be one result sent twice."""
PASS_LABELS = ("pass", "true")
FAIL_LABELS = ("fail", "false")


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def score_columns_sql(attrs: str) -> str:
    """The `ScoreValue`, `ScoreLabel` and `IdempotencyKey` columns of genai_evaluations, read from the
    attribute map `attrs` of an event or log record."""
    value = f"{attrs}[{_quote(sc.GEN_AI_EVALUATION_SCORE_VALUE)}]"
    label = f"{attrs}[{_quote(sc.GEN_AI_EVALUATION_SCORE_LABEL)}]"
    number = (f"multiIf(lower({value}) = 'true', 1., lower({value}) = 'false', 0., "
              f"toFloat64OrNull({value}))")
    key = _quote(sc.SPANHOUSE_EVALUATION_IDEMPOTENCY_KEY)
    openlit_key = _quote(sc.OPENLIT_SCORE_IDEMPOTENCY_KEY)
    return (f"if(isFinite(ifNull({number}, 0.)), {number}, NULL) AS ScoreValue,\n"
            f"    multiIf({label} != '', {label}, lower({value}) IN ('true', 'false'), lower({value}),\n"
            f"            NOT isFinite(ifNull({number}, 0.)), {_quote(INVALID_SCORE_LABEL)}, '') AS ScoreLabel,\n"
            f"    if({attrs}[{key}] != '', {attrs}[{key}], {attrs}[{openlit_key}]) AS IdempotencyKey")


def passed_sql(value: str, label: str) -> str:
    """The `Passed` column of genai_evaluations_full: 1 for a result that passed, 0 for one that failed,
    NULL for one that is neither (see the module's rule), from the stored `value` and `label` columns."""
    def words(labels: tuple[str, ...]) -> str:
        return "(" + ", ".join(map(_quote, labels)) + ")"
    return (f"CAST(multiIf(lower({label}) IN {words(PASS_LABELS)}, 1, lower({label}) IN {words(FAIL_LABELS)}, 0, "
            f"{label} = '' AND {value} = 1, 1, {label} = '' AND {value} = 0, 0, NULL) AS Nullable(UInt8))")


def score_value(sent: str) -> float | None:
    """The stored score of a sent value (the attribute's string form), as `score_columns_sql` reads it."""
    text = sent.strip()
    if text.lower() in _BOOLEANS:
        return _BOOLEANS[text.lower()]
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def score_label(sent_value: str, sent_label: str) -> str:
    if sent_label:
        return sent_label
    if sent_value.strip().lower() in _BOOLEANS:
        return sent_value.strip().lower()
    try:
        return "" if math.isfinite(float(sent_value)) else INVALID_SCORE_LABEL
    except ValueError:
        return ""


@dataclass(frozen=True)
class Result:
    """One evaluation result as it arrived: on a span event or a log record, at `time_ns`; `item` is
    what the caller made it from (an event to keep or leave out), not compared."""

    source: str
    time_ns: int
    attrs: Mapping[str, str]
    item: Any = field(default=None, compare=False)

    def content(self) -> tuple[str, float | None, str, str]:
        a = self.attrs
        sent = a.get(sc.GEN_AI_EVALUATION_SCORE_VALUE, "")
        return (a.get(sc.GEN_AI_EVALUATION_NAME, ""), score_value(sent),
                score_label(sent, a.get(sc.GEN_AI_EVALUATION_SCORE_LABEL, "")),
                a.get(sc.GEN_AI_EVALUATION_EXPLANATION, ""))

    @property
    def key(self) -> str:
        a = self.attrs
        return a.get(sc.SPANHOUSE_EVALUATION_IDEMPOTENCY_KEY) or a.get(sc.OPENLIT_SCORE_IDEMPOTENCY_KEY) or ""


def distinct_results(results: list[Result]) -> list[Result]:
    """The results of one span without the copies of a result sent twice (see the module's rule), in
    the order given. Each result is looked up, not compared with every other one: a span with
    thousands of results costs about as many steps."""
    window = PAIR_WINDOW_MS
    keys: set[tuple[str, str]] = set()
    seen: set[tuple[tuple, str, int]] = set()
    event_times: dict[tuple, list[int]] = {}
    chosen: set[int] = set()
    # span events first, each kind by time: a log record meets every span event it may be a copy of
    for i, r in sorted(enumerate(results), key=lambda p: (p[1].source != SPAN_EVENT, p[1].time_ns)):
        if r.key:
            named = (r.attrs.get(sc.GEN_AI_EVALUATION_NAME, ""), r.key)
            if named in keys:
                continue
            keys.add(named)
        else:
            content = r.content()
            if (content, r.source, r.time_ns) in seen:
                continue
            times = event_times.setdefault(content, [])
            # whole milliseconds, as the view's dateDiff('millisecond', …) counts them
            ms = r.time_ns // 1_000_000
            if r.source != SPAN_EVENT:
                at = bisect.bisect_left(times, ms - window)
                if at < len(times) and times[at] <= ms + window:
                    continue
            else:
                times.append(ms)
            seen.add((content, r.source, r.time_ns))
        chosen.add(i)
    return [r for i, r in enumerate(results) if i in chosen]
