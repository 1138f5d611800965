"""Cost and latency questions over `genai_spans` and `otel_traces`, as plain data for the CLI.

Definitions (the same in every answer):

- a *model call* is what `spanhouse.modelcalls` says: a span whose operation is `chat`,
  `text_completion`, `generate_content` or `embeddings`, or whose cost source says genai_cost priced
  it or found no price for it (a span with no or a non-standard operation that carries usage or a
  cost); tokens and latency per call count model calls only, so the usage an agent or workflow span
  aggregates from its calls is never added twice;
- *cost* is the sum of `CostUsd` over the window's spans (only model calls have one: genai_cost
  removes a cost reported on an agent or workflow span);
- a *request* is a trace with at least one GenAI span in the window; a *successful task* is such a
  trace whose root span (no parent) is stored and did not end with status Error;
- a *retry* is a model call whose predecessor under the same parent span, with the same operation
  and model, failed and had ended when it started (retry rate = retries / model calls); a tool retry
  is the same for `execute_tool` calls of one tool (tool retry rate = tool retries / tool calls).
  Calls that follow a success are an agent's loop, and calls running side by side are not retries;
- `top_traces` ranks the traces with a GenAI span in the window, with totals over all their GenAI
  spans, including those up to an hour before the window (a trace that straddles its start).

Every value reaches ClickHouse as a query parameter; the grouping expressions come from a fixed table.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from spanhouse import semconv as sc
from spanhouse.modelcalls import MODEL_CALL_OPERATIONS, MODEL_CALL_SOURCES, UNPRICED_SOURCES, model_call_sql
from spanhouse.reader import Reader
from spanhouse.spancopies import ONE_COPY_SQL

_OP = sc.GenAiOperationNameValues
QUANTILES = (0.5, 0.95, 0.99)

MODEL_EXPR = "if(RequestModel != '', RequestModel, ResponseModel)"
# --by choice → (SQL expressions grouped by, header shown)
DIMENSIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "model": ((MODEL_EXPR,), "model"),
    "provider": (("Provider",), "provider"),
    "feature": (("Feature",), "feature"),
    "tenant": (("TenantId",), "tenant"),
    "prompt": (("PromptName", "PromptVersion"), "prompt@version"),
    "environment": (("Environment",), "environment"),
    "release": (("Release",), "release"),
    "service": (("ServiceName",), "service"),
}

FAILED = "failed"
"""The reason `unpriced` gives a failed model call that sent no token counts (no charge known)."""

NO_ROOT = "no root"
"""A trace's status when none of its stored spans is a root (no parent): the root never arrived (or not yet)."""

FUTURE_SKEW_S = 300
"""How far ahead of now a span may be stamped and still count in a window ending now."""

_FRAGMENTS = {
    # spans stamped ahead of this clock (client clock skew) count for FUTURE_SKEW_S; beyond that they
    # would sit in every "last N" window until their time came
    "window": "Timestamp >= now64(9) - toIntervalSecond({seconds:UInt64}) "
    f"AND Timestamp <= now64(9) + toIntervalSecond({FUTURE_SKEW_S})",
    "model_call": "(CostSource IN ("
    + ", ".join(f"{{source{i}:String}}" for i in range(len(MODEL_CALL_SOURCES)))
    + ") OR (CostSource = '' AND Operation IN ("
    + ", ".join(f"{{op{i}:String}}" for i in range(len(MODEL_CALL_OPERATIONS)))
    + ")))",
    "unpriced": "CostSource IN ("
    + ", ".join(f"{{unpriced{i}:String}}" for i in range(len(UNPRICED_SOURCES)))
    + ")",
    "quantiles": "(" + ", ".join(map(str, QUANTILES)) + ")",
    "model_expr": MODEL_EXPR,
    "failed_no_usage": f"(CostSource = '{sc.SpanhouseCostSourceValues.NO_USAGE.value}' AND StatusCode = 'Error')",
    # a model call that did not fail and carries its (partial) answer, but neither usage nor a finish reason:
    # a stream cut off mid-answer (embeddings have no finish reason); as `spanhouse trace` flags it. Calls
    # whose answer arrived as log records are left out: their finish reason is there, beyond this query
    "incomplete": "(" + model_call_sql() + " AND StatusCode != 'Error' AND InputTokens = 0 AND OutputTokens = 0"
    " AND empty(FinishReasons) AND OutputMessages != '' AND Operation != {embeddings_op:String})",
    # for `TraceId IN (<every trace of the window>)`: checking the trace-id bloom filter of each granule
    # against hundreds of thousands of ids costs seconds per million spans, and skips nothing
    "large_in": "use_skip_indexes = 0",
}


def _sql(template: str, reader: Reader, tables: dict[str, str] | None = None, **values: str) -> str:
    """`template` with $window, $model_call, $unpriced, $quantiles, the table names (`tables` replaces
    some) and `values`."""
    return string.Template(template).substitute(_FRAGMENTS, **{**reader.tables, **(tables or {})}, **values)


# Lists travel as one String parameter per value: a spanhouse sql_query endpoint passes parameters on
# as strings, and an Array(String) value in ClickHouse's text format does not survive that.
_LIST_PARAMS = {
    **{f"op{i}": v for i, v in enumerate(MODEL_CALL_OPERATIONS)},
    **{f"source{i}": v for i, v in enumerate(MODEL_CALL_SOURCES)},
    **{f"unpriced{i}": v for i, v in enumerate(UNPRICED_SOURCES)},
}


def _params(seconds: int, **extra: Any) -> dict[str, Any]:
    return {"seconds": int(seconds), "tool_op": _OP.EXECUTE_TOOL.value, "embeddings_op": _OP.EMBEDDINGS.value,
            **_LIST_PARAMS, **extra}


def _latency(values: Any) -> dict[str, float | None]:
    values = list(values or [])
    if len(values) != len(QUANTILES):
        return {"p50": None, "p95": None, "p99": None}
    return {"p50": float(values[0]), "p95": float(values[1]), "p99": float(values[2])}


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


@dataclass
class Summary:
    """Totals of a window; `cost_per_request` and `cost_per_successful_task` are None when undefined."""

    seconds: int
    spans: int
    requests: int
    successful_tasks: int
    model_calls: int
    model_call_errors: int
    priced_calls: int
    unpriced_calls: int
    cost_usd: float
    tokens: dict[str, int]
    call_latency_ms: dict[str, float | None]
    workflow_latency_ms: dict[str, float | None]
    retries: int
    tool_calls: int = 0
    tool_retries: int = 0
    failed_unpriced_calls: int = 0
    """Of `unpriced_calls`, the model calls that failed and sent no token counts (no charge known)."""

    @property
    def cost_per_request(self) -> float | None:
        return _ratio(self.cost_usd, self.requests)

    @property
    def cost_per_successful_task(self) -> float | None:
        return _ratio(self.cost_usd, self.successful_tasks)

    @property
    def retry_rate(self) -> float | None:
        return _ratio(self.retries, self.model_calls)

    @property
    def tool_retry_rate(self) -> float | None:
        return _ratio(self.tool_retries, self.tool_calls)

    def as_dict(self) -> dict[str, Any]:
        return {
            "window_seconds": self.seconds,
            "requests": self.requests,
            "successful_tasks": self.successful_tasks,
            "model_calls": self.model_calls,
            "model_call_errors": self.model_call_errors,
            "priced_calls": self.priced_calls,
            "unpriced_calls": self.unpriced_calls,
            "failed_unpriced_calls": self.failed_unpriced_calls,
            "cost_usd": self.cost_usd,
            "cost_per_request_usd": self.cost_per_request,
            "cost_per_successful_task_usd": self.cost_per_successful_task,
            "tokens": self.tokens,
            "model_call_latency_ms": self.call_latency_ms,
            "workflow_latency_ms": self.workflow_latency_ms,
            "retries": self.retries,
            "retry_rate": self.retry_rate,
            "tool_calls": self.tool_calls,
            "tool_retries": self.tool_retries,
            "tool_retry_rate": self.tool_retry_rate,
        }


SUMMARY_SQL = """
SELECT
    count() AS spans,
    uniqExact(TraceId) AS requests,
    countIf($model_call) AS calls,
    countIf($model_call AND StatusCode = 'Error') AS call_errors,
    countIf(CostUsd IS NOT NULL) AS priced,
    countIf($unpriced) AS unpriced,
    sum(ifNull(CostUsd, 0)) AS cost,
    sumIf(InputTokens, $model_call) AS input,
    sumIf(CacheReadTokens, $model_call) AS cache_read,
    sumIf(CacheWriteTokens, $model_call) AS cache_write,
    sumIf(OutputTokens, $model_call) AS output,
    sumIf(ReasoningTokens, $model_call) AS reasoning,
    quantilesIf$quantiles(DurationMs, $model_call) AS call_latency,
    countIf($failed_no_usage) AS failed_unpriced
FROM $genai_spans
WHERE $window
"""

# Per group of same-parent, same-operation, same-model (or tool) calls, in start order: a call is a retry
# when the call before it failed and had ended when it started (a call running beside it is not).
RETRIES_SQL = """
SELECT sumIf(retries, kind = 'model'), sumIf(n, kind = 'tool'), sumIf(retries, kind = 'tool') FROM (
    SELECT if(Operation = {tool_op:String}, 'tool', 'model') AS kind, count() AS n,
           arraySort(c -> c.1, groupArray((toUnixTimestamp64Nano(Timestamp),
                                           toUnixTimestamp64Nano(Timestamp) + toInt64(DurationMs * 1e6),
                                           StatusCode = 'Error'))) AS calls,
           arrayCount((before, call) -> before.3 AND before.2 <= call.1,
                      arrayPopBack(calls), arrayPopFront(calls)) AS retries
    FROM $genai_spans
    WHERE $window AND ParentSpanId != '' AND ($model_call OR Operation = {tool_op:String})
    GROUP BY TraceId, ParentSpanId, Operation, $model_expr, ToolName
)
"""

# Roots may start before the window's first GenAI span: look an hour further back for them.
ROOTS_SQL = """
SELECT uniqExact(TraceId) AS roots, uniqExactIf(TraceId, StatusCode != 'Error') AS ok,
       quantiles$quantiles(Duration / 1e6) AS latency
FROM $traces
WHERE ParentSpanId = '' AND Timestamp >= now64(9) - toIntervalSecond({seconds:UInt64} + 3600)
  AND TraceId IN (SELECT DISTINCT TraceId FROM $genai_spans WHERE $window)
SETTINGS $large_in
"""


def summary(reader: Reader, seconds: int) -> Summary:
    params = _params(seconds)
    row = reader.query(_sql(SUMMARY_SQL, reader), params).result_rows[0]
    (spans, requests, calls, call_errors, priced, unpriced, cost, tin, cread, cwrite, tout, treason, lat,
     failed_unpriced) = row
    retries, tool_calls, tool_retries = 0, 0, 0
    roots, ok, workflow = 0, 0, []
    if spans:
        retries, tool_calls, tool_retries = (
            int(v or 0) for v in reader.query(_sql(RETRIES_SQL, reader), params).result_rows[0]
        )
        roots, ok, workflow = reader.query(_sql(ROOTS_SQL, reader), params).result_rows[0]
    return Summary(
        seconds=seconds,
        spans=int(spans),
        requests=int(requests),
        successful_tasks=int(ok),
        model_calls=int(calls),
        model_call_errors=int(call_errors),
        priced_calls=int(priced),
        unpriced_calls=int(unpriced),
        failed_unpriced_calls=int(failed_unpriced),
        cost_usd=float(cost),
        tokens={
            "input": int(tin),
            "cache_read": int(cread),
            "cache_write": int(cwrite),
            "output": int(tout),
            "reasoning": int(treason),
        },
        call_latency_ms=_latency(lat if calls else None),
        workflow_latency_ms=_latency(workflow if roots else None),
        retries=retries,
        tool_calls=tool_calls,
        tool_retries=tool_retries,
    )


BREAKDOWN_SQL = """
SELECT
    $keys,
    countIf($model_call) AS calls,
    countIf($model_call AND StatusCode = 'Error') AS errors,
    uniqExact(TraceId) AS requests,
    sumIf(InputTokens, $model_call) AS input,
    sumIf(CacheReadTokens, $model_call) AS cache_read,
    sumIf(CacheWriteTokens, $model_call) AS cache_write,
    sumIf(OutputTokens, $model_call) AS output,
    sumIf(ReasoningTokens, $model_call) AS reasoning,
    sum(ifNull(CostUsd, 0)) AS cost,
    countIf($unpriced) AS unpriced,
    quantilesIf$quantiles(DurationMs, $model_call) AS latency
FROM $genai_spans
WHERE $window AND ($model_call OR CostUsd IS NOT NULL)
GROUP BY $group
ORDER BY cost DESC, calls DESC, $group
LIMIT {top:UInt32}
"""


# By prompt, a model call that names no prompt counts under its nearest ancestor's (the view's rule).
_BY_PROMPT_SOURCE = ("$genai_spans_by_prompt(since = now64(9) - toIntervalSecond({seconds:UInt64}), "
                     f"until = now64(9) + toIntervalSecond({FUTURE_SKEW_S}))")


def breakdown(reader: Reader, seconds: int, by: str, top: int) -> list[dict[str, Any]]:
    """Model calls grouped by `by` (a key of DIMENSIONS), most expensive first, at most `top` rows. By
    prompt, a call without a prompt of its own is grouped under the one its nearest ancestor names."""
    exprs, _ = DIMENSIONS[by]
    keys = ", ".join(f"{e} AS k{i}" for i, e in enumerate(exprs))
    group = ", ".join(f"k{i}" for i in range(len(exprs)))
    tables = {"genai_spans": _sql(_BY_PROMPT_SOURCE, reader)} if by == "prompt" else None
    sql = _sql(BREAKDOWN_SQL, reader, tables, keys=keys, group=group)
    rows = reader.query(sql, _params(seconds, top=int(top))).result_rows
    n = len(exprs)
    out = []
    for row in rows:
        key_parts = [str(v) for v in row[:n]]
        key = "@".join(key_parts) if any(key_parts) else ""
        (calls, errors, requests, tin, cread, cwrite, tout, treason, cost, unpriced, lat) = row[n:]
        out.append(
            {
                "key": key,
                "calls": int(calls),
                "errors": int(errors),
                "requests": int(requests),
                "tokens": {
                    "input": int(tin),
                    "cache_read": int(cread),
                    "cache_write": int(cwrite),
                    "output": int(tout),
                    "reasoning": int(treason),
                },
                "cost_usd": float(cost),
                "cost_per_call_usd": _ratio(float(cost), int(calls)),
                "unpriced_calls": int(unpriced),
                "latency_ms": _latency(lat if calls else None),
            }
        )
    return out


# A call that failed (HTTP 429 or 500, a timeout) and sent no token counts is `failed`, not `no_usage`:
# nothing is missing, no charge is known for it.
UNPRICED_SQL = """
SELECT Provider, if(ResponseModel != '', ResponseModel, RequestModel) AS model,
       if($failed_no_usage, {failed:String}, CostSource) AS reason,
       count() AS spans, sum(InputTokens) AS input, sum(OutputTokens) AS output,
       min(Timestamp) AS first_seen, max(Timestamp) AS last_seen
FROM $genai_spans
WHERE $window AND $unpriced
GROUP BY Provider, model, reason
ORDER BY spans DESC, Provider, model
"""


def unpriced(reader: Reader, seconds: int) -> list[dict[str, Any]]:
    """Models whose calls got no cost in the window (`UNPRICED_SOURCES`), most calls first; the source
    of a failed call without usage is `FAILED`."""
    rows = reader.query(_sql(UNPRICED_SQL, reader), _params(seconds, failed=FAILED)).result_rows
    return [
        {
            "provider": p,
            "model": m,
            "source": s,
            "spans": int(n),
            "input_tokens": int(i),
            "output_tokens": int(o),
            "first_seen": f,
            "last_seen": last,
        }
        for p, m, s, n, i, o, f, last in rows
    ]


# The traces of the window: those with a GenAI span in it; each summed over the spans of the window and
# the hour before it (a trace that started before the window keeps its whole cost). The top ones are
# chosen first, in one pass over the cheap columns, and described afterwards, so reading stays fast
# at tens of millions of spans.
_IN_REACH = ("Timestamp >= now64(9) - toIntervalSecond({seconds:UInt64} + 3600) "
             f"AND Timestamp <= now64(9) + toIntervalSecond({FUTURE_SKEW_S})")
_TOP_BY = {
    "cost": f"""
    SELECT TraceId FROM $genai_spans
    WHERE {_IN_REACH}
    GROUP BY TraceId HAVING max(Timestamp) >= now64(9) - toIntervalSecond({{seconds:UInt64}})
    ORDER BY sum(ifNull(CostUsd, 0)) DESC, TraceId LIMIT {{top:UInt32}}""",
    "duration": f"""
    SELECT TraceId FROM $traces
    WHERE {_IN_REACH} AND TraceId IN (SELECT TraceId FROM $genai_spans WHERE $window)
    GROUP BY TraceId
    ORDER BY max(toUnixTimestamp64Nano(Timestamp) + Duration) - min(toUnixTimestamp64Nano(Timestamp)) DESC,
             TraceId
    LIMIT {{top:UInt32}}
    SETTINGS $large_in""",
    # failing traces only: most failed spans first, then the latest
    "errors": f"""
    SELECT TraceId FROM $traces
    WHERE {_IN_REACH} AND TraceId IN (SELECT TraceId FROM $genai_spans WHERE $window)
    GROUP BY TraceId HAVING countIf(StatusCode = 'Error') > 0
    ORDER BY countIf(StatusCode = 'Error') DESC, max(Timestamp) DESC, TraceId
    LIMIT {{top:UInt32}}
    SETTINGS $large_in""",
}
TOP_TRACES_SQL = f"""
WITH top AS ($top),
g AS (
    SELECT TraceId,
           sum(ifNull(CostUsd, 0)) AS cost,
           countIf(CostUsd IS NOT NULL) AS priced,
           countIf($unpriced) AS unpriced,
           countIf($model_call) AS calls,
           sumIf(InputTokens, $model_call) AS input,
           sumIf(OutputTokens, $model_call) AS output,
           countIf($incomplete) AS incomplete,
           any(ServiceName) AS genai_service
    FROM $genai_spans
    WHERE {_IN_REACH} AND TraceId IN (SELECT TraceId FROM top)
    GROUP BY TraceId
),
t AS (
    SELECT TraceId,
           min(Timestamp) AS start,
           (max(toUnixTimestamp64Nano(Timestamp) + Duration)
            - min(toUnixTimestamp64Nano(Timestamp))) / 1e6 AS ms,
           countIf(ParentSpanId = '') AS roots,
           anyIf(SpanName, ParentSpanId = '') AS root_name,
           anyIf(ServiceName, ParentSpanId = '') AS root_service,
           anyIf(StatusCode, ParentSpanId = '') AS root_status,
           countIf(StatusCode = 'Error') AS errors,
           count() AS spans
    FROM $traces
    WHERE {_IN_REACH} AND TraceId IN (SELECT TraceId FROM top)
    GROUP BY TraceId
)
SELECT g.TraceId, t.start, t.ms, t.root_name, if(t.root_service != '', t.root_service, g.genai_service),
       multiIf(t.roots = 0, '{NO_ROOT}', t.root_status = 'Error', 'error', t.errors > 0, 'degraded', 'ok'),
       t.spans, g.calls, g.input, g.output, g.cost, g.priced, g.unpriced, t.errors, g.incomplete, t.start
FROM g INNER JOIN t ON g.TraceId = t.TraceId
WHERE $$where
ORDER BY $$order DESC, g.TraceId
"""

_ORDER = {"cost": "g.cost", "duration": "t.ms", "errors": "t.errors DESC, t.start"}
_WHERE = {"cost": "1", "duration": "1", "errors": "t.errors > 0"}
_SORT_KEY = {"cost": 10, "duration": 2, "errors": 13}


def top_traces(reader: Reader, seconds: int, by: str, top: int) -> list[dict[str, Any]]:
    """The `top` traces of the window with the highest cost or duration, or with the most failed spans
    (failing traces only)."""
    sql = _sql(_sql(TOP_TRACES_SQL, reader, top=_TOP_BY[by]), reader, order=_ORDER[by], where=_WHERE[by])
    # more candidates than asked for: a trace whose copies inflated its sum may drop below the cut
    # once counted once, and the next one must then be at hand
    rows = reader.query(sql, _params(seconds, top=int(top) + max(10, int(top)))).result_rows
    copies = _copies(reader, seconds, [r[0] for r in rows])
    if copies:
        # a client that sent a batch again had its spans stored twice: those traces are summed again
        # over one copy of each span (few traces, so the deduplicating scan stays small)
        ids, where = _trace_ids(list(copies))
        tables = {name: f"(SELECT * FROM {reader.tables[name]} WHERE {where} {ONE_COPY_SQL})"
                  for name in ("genai_spans", "traces")}
        again = _sql(_sql(TOP_TRACES_SQL, reader, tables, top="SELECT TraceId FROM $traces"),
                     reader, tables, order=_ORDER[by], where=_WHERE[by])
        exact = {r[0]: r for r in reader.query(again,
                                               _params(seconds, top=len(ids), **ids)).result_rows}
        rows = [exact.get(r[0], r) for r in rows]
        rows.sort(key=lambda r: (-r[_SORT_KEY[by]], -r[15].timestamp() if by == "errors" else 0, r[0]))
    rows = rows[: int(top)]
    return [
        {
            "trace_id": tid,
            "start": start,
            "duration_ms": float(ms),
            "root": root,
            "service": svc,
            "status": status,
            "spans": int(spans),
            "model_calls": int(calls),
            "input_tokens": int(tin),
            "output_tokens": int(tout),
            "cost_usd": float(cost) if priced else None,
            "unpriced_calls": int(unp),
            "errors": int(errors),
            "incomplete_model_calls": int(incomplete),
            "copies": copies.get(tid, 0),
        }
        for tid, start, ms, root, svc, status, spans, calls, tin, tout, cost, priced, unp, errors, incomplete, _ in rows
    ]


COPIES_SQL = """
SELECT TraceId, count() - uniqExact(SpanId) FROM $traces
WHERE Timestamp >= now64(9) - toIntervalSecond({seconds:UInt64} + 3600) AND $ids
GROUP BY TraceId HAVING count() > uniqExact(SpanId)
"""


def _trace_ids(trace_ids: list[str]) -> tuple[dict[str, str], str]:
    """Query parameters for `trace_ids` and the condition `TraceId IN (...)` that binds them."""
    ids = {f"id{i}": t for i, t in enumerate(trace_ids)}
    return ids, "TraceId IN (" + ", ".join(f"{{{k}:String}}" for k in ids) + ")"


def _copies(reader: Reader, seconds: int, trace_ids: list[str]) -> dict[str, int]:
    """Trace id → how many of its spans are stored more than once (only the traces that have some)."""
    if not trace_ids:
        return {}
    ids, where = _trace_ids(trace_ids)
    rows = reader.query(_sql(COPIES_SQL, reader, ids=where), _params(seconds, **ids)).result_rows
    return {tid: int(n) for tid, n in rows}
