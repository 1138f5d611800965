"""Which stored model calls failed, as `spanhouse dataset create --from-traces` selects them.

A model call (the rule of `spanhouse.modelcalls`) with stored input messages is selected when it is in
the scope asked for (time range, service, environment, feature, tenant, prompt) and failed by any of
the criteria given: its status is error, a span of its trace has status error (a tool or a validator
that failed), an evaluation of it scored below a threshold, or an evaluation of it has a given label.
Its input messages (and system instructions) are stored as `genai_spans_full` has them: already
redacted by the pipeline that stored them.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Template
from typing import Any

import orjson

from spanhouse.datasets.examples import Example, dumps, source_id
from spanhouse.modelcalls import model_call_sql
from spanhouse.reader import Reader


@dataclass(frozen=True)
class Failure:
    """What failed means for a selection; with none of them set, nothing fails."""

    errors: bool = False
    trace_errors: bool = False
    """A span of the call's trace (any step, the call included) has status error."""
    scores_below: tuple[tuple[str, float], ...] = ()
    """(evaluation name, threshold): a score of that evaluation below the threshold."""
    labels: tuple[tuple[str, str], ...] = ()
    """(evaluation name or "", label): a result with that label, of that evaluation or any."""

    def __bool__(self) -> bool:
        return self.errors or self.trace_errors or bool(self.scores_below) or bool(self.labels)


@dataclass(frozen=True)
class Scope:
    """Which model calls are looked at: a time range [since, until) and equality filters ("" is any)."""

    since_ns: int
    until_ns: int
    service: str = ""
    environment: str = ""
    feature: str = ""
    tenant: str = ""
    prompt: str = ""
    prompt_version: str = ""
    limit: int = 100


_SQL = Template("""
SELECT s.TraceId, s.SpanId, s.ServiceName, s.Environment, s.Feature, s.TenantId, s.PromptName, s.PromptVersion,
       s.RequestModel, s.StatusCode, s.SystemInstructions, s.InputMessages, reasons, t.failed_spans
FROM $spans_full AS s
LEFT JOIN (
    SELECT TraceId, SpanId, groupUniqArray(concat(EvaluationName, if(ScoreValue IS NULL, '', concat('=',
           toString(ScoreValue))), if(ScoreLabel = '', '', concat(':', ScoreLabel)))) AS reasons
    FROM $evaluations_full
    WHERE Timestamp >= fromUnixTimestamp64Nano({since:Int64}) AND ($failed_evaluation)
    GROUP BY TraceId, SpanId
) AS e ON e.TraceId = s.TraceId AND e.SpanId = s.SpanId
LEFT JOIN (
    SELECT TraceId, groupUniqArray(SpanName) AS failed_spans
    FROM $traces
    WHERE $failed_trace AND Timestamp >= fromUnixTimestamp64Nano({since:Int64}) AND StatusCode IN $error
    GROUP BY TraceId
) AS t ON t.TraceId = s.TraceId
WHERE s.Timestamp >= fromUnixTimestamp64Nano({since:Int64}) AND s.Timestamp < fromUnixTimestamp64Nano({until:Int64})
  AND ($model_call) AND s.InputMessages != '' $scope
  AND ($failed_call OR notEmpty(e.reasons) OR notEmpty(t.failed_spans))
ORDER BY s.Timestamp DESC, s.TraceId, s.SpanId
LIMIT {limit:UInt32}
""")

_ERROR = "('Error', 'STATUS_CODE_ERROR')"

_PROMPTED = Template("""(s.TraceId, s.SpanId) IN (
    SELECT TraceId, SpanId FROM $by_prompt(since = fromUnixTimestamp64Nano({since:Int64}),
                                            until = fromUnixTimestamp64Nano({until:Int64}))
    WHERE PromptName = {prompt:String} $version)""")


def failed_calls(reader: Reader, scope: Scope, failure: Failure) -> list[tuple[Example, str]]:
    """(example, environment of the call) for each selected model call, newest first, at most `scope.limit`.
    The call's service, environment, feature, tenant, model, prompt and why it was selected are in the
    example's metadata."""
    params: dict[str, Any] = {"since": scope.since_ns, "until": scope.until_ns, "limit": scope.limit}
    where = []
    for column, value in (("ServiceName", scope.service), ("Environment", scope.environment),
                          ("Feature", scope.feature), ("TenantId", scope.tenant)):
        if value:
            params[column] = value
            where.append(f"s.{column} = {{{column}:String}}")
    if scope.prompt:
        params["prompt"] = scope.prompt
        version = ""
        if scope.prompt_version:
            params["version"] = scope.prompt_version
            version = "AND PromptVersion = {version:String}"
        where.append(_PROMPTED.substitute(by_prompt=reader.tables["genai_spans_by_prompt"], version=version))
    evaluation = []
    for i, (name, threshold) in enumerate(failure.scores_below):
        params[f"en{i}"], params[f"ev{i}"] = name, threshold
        evaluation.append(f"(EvaluationName = {{en{i}:String}} AND ScoreValue < {{ev{i}:Float64}})")
    for i, (name, label) in enumerate(failure.labels):
        params[f"ln{i}"], params[f"lv{i}"] = name, label
        named = f"EvaluationName = {{ln{i}:String}} AND " if name else ""
        evaluation.append(f"({named}lower(ScoreLabel) = lower({{lv{i}:String}}))")
    sql = _SQL.substitute(
        spans_full=reader.tables["genai_spans_full"], evaluations_full=reader.tables["genai_evaluations_full"],
        failed_evaluation=" OR ".join(evaluation) or "0", model_call=model_call_sql("s."),
        scope="".join(f" AND {w}" for w in where),
        traces=reader.tables["traces"], failed_trace="1" if failure.trace_errors else "0", error=_ERROR,
        failed_call=f"s.StatusCode IN {_ERROR}" if failure.errors else "0")
    out = []
    for (trace_id, span_id, service, environment, feature, tenant, prompt, version, model, status, system,
         messages, reasons, failed_spans) in reader.query(sql, params).result_rows:
        why = sorted(reasons or ())
        if failure.errors and status in ("Error", "STATUS_CODE_ERROR"):
            why.insert(0, "error")
        if failed_spans:
            why.append("error in trace: " + ", ".join(sorted(failed_spans)))
        value: dict[str, Any] = {"messages": _json(messages)}
        if system:
            value["system_instructions"] = _json(system)
        metadata = {k: v for k, v in (("service", service), ("environment", environment), ("feature", feature),
                                      ("tenant", tenant), ("model", model),
                                      ("prompt", f"{prompt}@{version}" if version else prompt),
                                      ("failed", ", ".join(why))) if v}
        out.append((Example(source_id(trace_id, span_id), dumps(value), "", metadata, trace_id, span_id),
                    environment))
    return out


def _json(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
