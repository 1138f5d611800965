"""`spanhouse trace TRACE_ID`: one trace as a readable tree of steps."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import click
import orjson
from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from spanhouse import semconv as sc
from spanhouse.analytics import NO_ROOT
from spanhouse.cli._common import clean, config_option, database_option, endpoint_option
from spanhouse.cli._report import STATUS_STYLES, format_option, write_json
from spanhouse.component import Kind
from spanhouse.config import ServiceConfig, load_config, parse_endpoint
from spanhouse.errors import SpanhouseError
from spanhouse.modelcalls import UNPRICED_SOURCES, is_model_call
from spanhouse.reader import Reader, clickhouse_message, open_reader
from spanhouse.scores import LOG_RECORD, SPAN_EVENT, Result, distinct_results, score_label, score_value
from spanhouse.spancopies import one_copy

_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")
_UNPRICED = frozenset(UNPRICED_SOURCES)
# an answer that ended as the model meant it to; any other reason (length, content_filter, error) is flagged
_NORMAL_FINISH = frozenset({"stop", "tool_calls", "tool_call", "end_turn", "tool_use", "STOP", "function_call"})

TRACE_SQL = """
WITH
    (SELECT min(Start) FROM {lookup} WHERE TraceId = {{trace_id:String}}) AS lo,
    (SELECT max(End) + 1 FROM {lookup} WHERE TraceId = {{trace_id:String}}) AS hi
SELECT SpanId, ParentSpanId, SpanName, SpanKind, ServiceName, toUnixTimestamp64Nano(Timestamp) AS StartNs,
       Duration, StatusCode, StatusMessage, SpanAttributes, ResourceAttributes,
       arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp) AS EventTimes, Events.Name AS EventNames,
       Events.Attributes AS EventAttributes
FROM {traces}
WHERE TraceId = {{trace_id:String}} AND Timestamp >= lo AND Timestamp <= hi
ORDER BY Timestamp, SpanId
"""

# Content that arrived as log records, assembled per span (genai_span_content reads genai_content,
# whose primary key starts with TraceId).
CONTENT_SQL = """
SELECT SpanId, SystemInstructions, InputMessages, OutputMessages
FROM {span_content}
WHERE TraceId = {{trace_id:String}}
"""

# Evaluation results sent as log records, named by EventName or (older SDKs) the event.name attribute.
LOG_EVALUATIONS_SQL = """
SELECT SpanId, toUnixTimestamp64Nano(Timestamp), LogAttributes
FROM {logs}
WHERE TraceId = {{trace_id:String}}
  AND if(EventName != '', EventName, LogAttributes[{{event_name_key:String}}]) = {{event:String}}
ORDER BY Timestamp
"""

_CONTENT_KEYS = (sc.GEN_AI_SYSTEM_INSTRUCTIONS, sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES)
_MAX_INPUT_MESSAGES = 3
_MAX_OUTPUT_MESSAGES = 3
_LINE_CHARS = 110
_INDENT = 4  # columns a tree level takes
_LABEL_ROOM = 40  # columns kept for a span's label at the deepest indented level
_PIPE_WIDTH = 200  # output that is not a terminal is read by tools and pagers: wrap it late
_WHOLE_INDENT = "\n      "  # continuation lines of a message printed whole start under its text


@dataclass
class Span:
    span_id: str
    parent_id: str
    name: str
    kind: str
    service: str
    start_ns: int
    duration_ns: int
    status: str
    status_message: str
    attrs: dict[str, str]
    resource: dict[str, str]
    events: list[tuple[int, str, dict[str, str]]]
    children: list[Span] = field(default_factory=list)
    log_content: tuple[str, str, str] = ("", "", "")
    """System instructions, input and output messages that arrived as log records."""
    log_evaluations: list[Result] = field(default_factory=list)
    copies: int = 0
    """On a trace's first span: how many extra copies of its spans the store holds (re-sent batches)."""

    @property
    def failed(self) -> bool:
        return self.status in ("Error", "STATUS_CODE_ERROR")

    @property
    def failed_without_usage(self) -> bool:
        """A call that failed (HTTP 429 or 500, a timeout) and sent no token counts: `spanhouse costs`'
        `failed` reason."""
        return self.failed and self.attr(sc.SPANHOUSE_COST_SOURCE) == sc.SpanhouseCostSourceValues.NO_USAGE.value

    def attr(self, key: str) -> str:
        return self.attrs.get(key, "")

    def number(self, key: str) -> float | None:
        try:
            return float(self.attrs[key])
        except (KeyError, ValueError):
            return None

    def evaluations(self, explained: bool = True) -> list[tuple[str, str]]:
        """(name, result) of each evaluation result, a result sent twice shown once (spanhouse.scores);
        an explanation can quote the conversation, so it is left out when content is not shown."""
        results = [Result(SPAN_EVENT, at, attrs) for at, name, attrs in self.events
                   if name == sc.EVENT_GEN_AI_EVALUATION_RESULT]
        return [evaluation(r.attrs, explained) for r in distinct_results(results + self.log_evaluations)]

    @property
    def model_call(self) -> bool:
        return is_model_call(self.attr(sc.GEN_AI_OPERATION_NAME), self.attr(sc.SPANHOUSE_COST_SOURCE))

    def finish_reasons(self) -> list[str]:
        """The response's finish reasons: the span's attribute (a JSON array, or one reason), else those of
        its output messages (content that arrived as log records carries them there)."""
        raw = self.attr(sc.GEN_AI_RESPONSE_FINISH_REASONS)
        if raw:
            try:
                parsed = orjson.loads(raw) if raw.startswith("[") else [raw]
            except orjson.JSONDecodeError:
                parsed = [raw]
            return [clean(str(r)) for r in parsed if isinstance(r, (str, int, float)) and r != ""]
        outputs = _parse_list(self.content()[2])
        return [clean(str(m["finish_reason"])) for m in outputs if isinstance(m, dict) and m.get("finish_reason")]

    @property
    def incomplete(self) -> bool:
        """A model call that did not fail and carries its (partial) answer, but neither a finish reason nor
        token usage: what a stream cut off mid-answer leaves (the instrumentation recorded no error; the
        status is left as sent). Only an answer on the span itself counts, as `top-traces` can see no more:
        a call whose answer arrived as log records has its finish reason there (`finish error` when cut).
        Embeddings have no finish reason by nature and are never flagged."""
        return (self.model_call and not self.failed and bool(self.attr(sc.GEN_AI_OUTPUT_MESSAGES))
                and self.attr(sc.GEN_AI_OPERATION_NAME) != sc.GenAiOperationNameValues.EMBEDDINGS.value
                and self.number(sc.GEN_AI_USAGE_INPUT_TOKENS) is None
                and self.number(sc.GEN_AI_USAGE_OUTPUT_TOKENS) is None and not self.finish_reasons())

    def content(self) -> tuple[str, str, str]:
        """(system instructions, input messages, output messages) as JSON text: the span's own
        attributes win, field by field, over content that arrived as log records."""
        own = tuple(self.attr(k) for k in _CONTENT_KEYS)
        return tuple(a or b for a, b in zip(own, self.log_content))  # type: ignore[return-value]


def evaluation(attrs: dict[str, str], explained: bool = True) -> tuple[str, str]:
    """(name, result): the score, with its label and (when `explained`) a start of the explanation
    when there are."""
    sent = attrs.get(sc.GEN_AI_EVALUATION_SCORE_VALUE, "")
    number = score_value(sent)
    value = "" if number is None else repr(number)
    label = score_label(sent, attrs.get(sc.GEN_AI_EVALUATION_SCORE_LABEL, ""))
    result = value or label or sent or "?"
    explanation = attrs.get(sc.GEN_AI_EVALUATION_EXPLANATION, "") if explained else ""
    notes = [x for x in (label if value else "", _one_line(explanation, 60)) if x]
    if notes:
        result += f" ({': '.join(notes)})"
    return attrs.get(sc.GEN_AI_EVALUATION_NAME, "evaluation"), result


def load_trace(reader: Reader, trace_id: str) -> list[Span]:
    t = reader.tables
    sql = TRACE_SQL.format(lookup=t["traces_lookup"], traces=t["traces"])
    result = reader.query(sql, parameters={"trace_id": trace_id.lower()})
    spans = []
    rows, copies = one_copy(result.result_rows, key=lambda r: r[0])  # one trace: its span id is the key
    for row in rows:
        (sid, pid, name, kind, svc, start, dur, status, msg, attrs, res, ev_t, ev_n, ev_a) = row
        spans.append(Span(sid, pid, name, kind, svc, int(start), int(dur), status, msg, dict(attrs), dict(res),
                          list(zip(ev_t, ev_n, [dict(a) for a in ev_a]))))
    if spans:
        spans[0].copies = copies
    _attach_logs(reader, trace_id, spans)
    return spans


def scores_without_spans(reader: Reader, trace_id: str) -> int:
    """How many evaluation results the store holds for a trace none of whose spans it holds."""
    try:
        rows = reader.query(f"SELECT count() FROM {reader.tables['genai_evaluations']} WHERE TraceId = {{t:String}}",
                            parameters={"t": trace_id.lower()}).result_rows
    except Exception as exc:
        if "UNKNOWN_TABLE" not in str(exc):
            raise
        return 0
    return int(rows[0][0])


def _attach_logs(reader: Reader, trace_id: str, spans: list[Span]) -> None:
    """Add the content and evaluation results that arrived as log records to their spans. A store
    created before spanhouse stored logs has no such tables; its traces are shown without them."""
    t = reader.tables
    by_id = {s.span_id: s for s in spans}
    params = {"trace_id": trace_id.lower()}
    try:
        content = reader.query(CONTENT_SQL.format(span_content=t["genai_span_content"]),
                               parameters=params).result_rows
        evaluations = reader.query(LOG_EVALUATIONS_SQL.format(logs=t["logs"]), parameters={
            **params, "event_name_key": sc.EVENT_NAME,
            "event": sc.EVENT_GEN_AI_EVALUATION_RESULT}).result_rows
    except Exception as exc:
        if "UNKNOWN_TABLE" not in str(exc):
            raise
        return
    for sid, system, inp, out in content:
        if sid in by_id:
            by_id[sid].log_content = (system, inp, out)
    for sid, at, attrs in evaluations:
        if sid in by_id:
            by_id[sid].log_evaluations.append(Result(LOG_RECORD, int(at), dict(attrs)))


def _part_text(part: Any) -> str:
    if not isinstance(part, dict):
        return str(part)
    kind = part.get("type")
    if kind == "text" or kind == "reasoning":
        return str(part.get("content", ""))
    if kind == "tool_call":
        args = part.get("arguments")
        args_text = args if isinstance(args, str) else orjson.dumps(args).decode() if args is not None else ""
        return f"→ {part.get('name', '?')}({args_text})"
    if kind == "tool_call_response":
        response = part.get("response", part.get("result"))
        return "← " + (response if isinstance(response, str) else orjson.dumps(response).decode())
    return f"[{kind or 'part'}]"


def _shown(text: str, full: bool, limit: int = _LINE_CHARS) -> str:
    """`text` on one line cut at `limit`, or with `full` whole, line by line, indented under its label."""
    if not full:
        return _one_line(text, limit)
    return _WHOLE_INDENT.join(clean(line.rstrip()) for line in text.strip().splitlines())


def _one_line(text: str, limit: int = _LINE_CHARS) -> str:
    text = clean(" ".join(text.split()))
    if len(text) <= limit:
        return text
    keep = limit - 20  # room for the marker, so a line never exceeds `limit`
    return text[:keep] + f"… (+{len(text) - keep:,} chars)"


def _parse_list(raw: str) -> list:
    if not raw:
        return []
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return [{"role": "?", "parts": [{"type": "text", "content": raw}]}]
    return value if isinstance(value, list) else [value]


def content_lines(system: str, inputs: str, outputs: str, full: bool = False) -> list[tuple[str, str]]:
    """(role, text) for the system instructions, the input messages and the outputs: the last few
    inputs and first few outputs on one line each, or with `full` every message whole."""
    lines: list[tuple[str, str]] = []
    parts = _parse_list(system)
    sep = "\n" if full else " "
    system_text = sep.join(_part_text(p) for p in parts)
    if parts:
        lines.append(("system", _shown(system_text, full)))
    msgs = _parse_list(inputs)
    if parts:  # OpenLIT sends the system prompt both as system instructions and as the first message
        msgs = [m for m in msgs if not (isinstance(m, dict) and m.get("role") == "system"
                                        and sep.join(_part_text(p) for p in m.get("parts") or []) == system_text)]
    outs = _parse_list(outputs)
    if full:
        groups = (msgs, outs)
    else:
        groups = (msgs[-_MAX_INPUT_MESSAGES:], outs[:_MAX_OUTPUT_MESSAGES])
        if len(msgs) > _MAX_INPUT_MESSAGES:
            lines.append(("…", f"{len(msgs) - _MAX_INPUT_MESSAGES} earlier message(s)"))
    for group in groups:
        for m in group:
            if not isinstance(m, dict):
                lines.append(("?", _shown(str(m), full)))
                continue
            text = sep.join(_part_text(p) for p in m.get("parts") or [])
            lines.append((clean(str(m.get("role", "?"))), _shown(text, full)))
    if not full and len(outs) > _MAX_OUTPUT_MESSAGES:
        lines.append(("…", f"{len(outs) - _MAX_OUTPUT_MESSAGES} more output message(s)"))
    return lines


def build_tree(spans: list[Span]) -> list[Span]:
    """Roots first by start time; spans whose parent is missing are shown as roots, and so is the
    earliest span of a parent cycle (A's parent is B, B's is A), so every span is shown once."""
    by_id = {s.span_id: s for s in spans}
    for s in spans:
        s.children = []
    roots = []
    for s in spans:
        parent = by_id.get(s.parent_id) if s.parent_id else None
        (parent.children if parent is not None and parent is not s else roots).append(s)
    shown: set[int] = set()

    def mark(top: Span) -> None:
        stack = [top]
        while stack:
            span = stack.pop()
            if id(span) not in shown:
                shown.add(id(span))
                stack.extend(span.children)

    for r in roots:
        mark(r)
    for s in sorted(spans, key=lambda x: x.start_ns):
        if id(s) not in shown:
            by_id[s.parent_id].children.remove(s)
            roots.append(s)
            mark(s)
    return sorted(roots, key=lambda x: x.start_ns)


def _ms(ns: float) -> str:
    ms = ns / 1e6
    return f"{ms / 1000:.2f}s" if ms >= 1000 else f"{ms:.0f}ms"


def _usd(value: float) -> str:
    if value >= 1:
        return f"${value:.2f}"
    if value >= 0.01 or value == 0:
        return f"${value:.4f}"
    return "$" + f"{value:.8f}".rstrip("0")  # small calls keep their digits: never shown as $0.0000


def _doc_ids(raw: str) -> list[str]:
    try:
        docs = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(docs, list):
        return []
    return [str(d.get("id")) for d in docs if isinstance(d, dict) and d.get("id") is not None]


def span_label(s: Span, trace_start: int, show_content: bool = True, full: bool = False) -> Text:
    t = Text()
    t.append("✗ " if s.failed else "✓ ", style="red" if s.failed else "green")
    t.append(clean(s.name), style="bold")
    op = s.attr(sc.GEN_AI_OPERATION_NAME)
    if op and not s.name.startswith(op):
        t.append(f" [{clean(op)}]", style="cyan")
    t.append(f"  +{_ms(s.start_ns - trace_start)}  {_ms(s.duration_ns)}", style="dim")
    details: list[tuple[str, str]] = []
    prompt = s.attr(sc.GEN_AI_PROMPT_NAME)
    if prompt:
        version = s.attr(sc.GEN_AI_PROMPT_VERSION)
        details.append(("prompt", f"{prompt}@{version}" if version else prompt))
    model = s.attr(sc.GEN_AI_RESPONSE_MODEL) or s.attr(sc.GEN_AI_REQUEST_MODEL)
    if model:
        provider = s.attr(sc.GEN_AI_PROVIDER_NAME)
        details.append(("model", f"{provider}/{model}" if provider else model))
    tin, tout = s.number(sc.GEN_AI_USAGE_INPUT_TOKENS), s.number(sc.GEN_AI_USAGE_OUTPUT_TOKENS)
    if tin is not None or tout is not None:
        tokens = f"{int(tin or 0)}→{int(tout or 0)}"
        cached = s.number(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)
        if cached:
            tokens += f" (cached {int(cached)})"
        details.append(("tokens", tokens))
    cost = s.number(sc.SPANHOUSE_COST_USD)
    if cost is not None:
        details.append(("cost", _usd(cost)))
    elif s.failed_without_usage:
        details.append(("cost", "failed, no charge known"))  # as `spanhouse costs --unpriced` files it
    elif s.attr(sc.SPANHOUSE_COST_SOURCE):
        details.append(("cost", s.attr(sc.SPANHOUSE_COST_SOURCE)))
    finish = s.finish_reasons()
    if finish:
        details.append(("finish", ", ".join(finish)))
    tool = s.attr(sc.GEN_AI_TOOL_NAME)
    if tool:
        details.append(("tool", tool))
    docs = _doc_ids(s.attr(sc.GEN_AI_RETRIEVAL_DOCUMENTS))
    if docs:
        details.append(("docs", ", ".join(docs[:8]) + (f" (+{len(docs) - 8})" if len(docs) > 8 else "")))
    for key, value in details:
        t.append(f"  {key} ", style="dim")
        t.append(clean(value), style="yellow" if key == "finish" and not _NORMAL_FINISH.issuperset(finish) else "")
    if s.incomplete:
        t.append("\n    incomplete ", style="yellow dim")
        t.append("no finish reason and no token usage: the response may have been cut off (status left as "
                 "sent)", style="yellow")
    if show_content:
        lines = content_lines(*s.content(), full=full)
        if op == sc.GenAiOperationNameValues.EXECUTE_TOOL.value:
            for label, key in (("args", sc.GEN_AI_TOOL_CALL_ARGUMENTS), ("result", sc.GEN_AI_TOOL_CALL_RESULT)):
                if s.attr(key):
                    lines.append((label, _shown(s.attr(key), full)))
        for role, text in lines:
            t.append(f"\n    {role} ", style="dim")
            t.append(text)
    dropped = _dropped_content(s)
    if dropped:
        t.append("\n    redaction ", style="dim")
        t.append(f"dropped {', '.join(dropped)}", style="yellow")
    evals = s.evaluations(explained=show_content)
    if evals:
        t.append("\n    evals ", style="dim")
        t.append(clean("  ".join(f"{n}={v}" for n, v in evals)), style="magenta")
    if s.failed or s.attr(sc.ERROR_TYPE):
        t.append("\n    error ", style="red dim")
        t.append(_shown(_error_text(s), full, 300), style="red")
    return t


def _error_text(s: Span) -> str:
    """The error type, the status message and the last recorded exception's type and message."""
    kind, message = "", ""
    for _, name, attrs in reversed(s.events):
        if name == sc.EVENT_EXCEPTION:
            kind, message = attrs.get(sc.EXCEPTION_TYPE, ""), attrs.get(sc.EXCEPTION_MESSAGE, "")
            break
    parts: list[str] = []
    for x in (s.attr(sc.ERROR_TYPE) or kind, s.status_message, message):
        if x and not any(x in p for p in parts):
            parts.append(x)
    return " ".join(parts) or "status ERROR"


def _dropped_content(s: Span) -> list[str]:
    """Content keys the redaction dropped from this span (too large, or unscannable)."""
    raw = s.attr(sc.SPANHOUSE_REDACTION_DROPPED_KEYS)
    if not raw:
        return []
    try:
        keys = orjson.loads(raw)
    except orjson.JSONDecodeError:
        keys = [raw]
    return [clean(str(k)) for k in keys] if isinstance(keys, list) else [clean(str(keys))]


def summarize(spans: list[Span]) -> dict[str, Any]:
    start = min(s.start_ns for s in spans)
    end = max(s.start_ns + s.duration_ns for s in spans)
    roots = build_tree(spans)
    root = roots[0]
    model_calls = [s for s in spans if s.model_call]
    costs = [c for c in (s.number(sc.SPANHOUSE_COST_USD) for s in spans) if c is not None]
    res = root.resource

    def pick(key: str) -> str:
        return root.attr(key) or res.get(key, "") or next((s.attr(key) for s in spans if s.attr(key)), "")

    return {
        "service": root.service,
        "environment": res.get(sc.DEPLOYMENT_ENVIRONMENT_NAME, ""),
        "release": res.get(sc.SERVICE_VERSION, ""),
        "feature": pick(sc.SPANHOUSE_FEATURE),
        "tenant": pick(sc.SPANHOUSE_TENANT_ID),
        "duration_ns": end - start,
        "spans": len(spans),
        "errors": sum(s.failed for s in spans),
        "failed_spans": [s for s in sorted(spans, key=lambda x: x.start_ns) if s.failed],
        "incomplete_calls": sum(s.incomplete for s in model_calls),
        "model_calls": len(model_calls),
        "input_tokens": sum(int(s.number(sc.GEN_AI_USAGE_INPUT_TOKENS) or 0) for s in model_calls),
        "output_tokens": sum(int(s.number(sc.GEN_AI_USAGE_OUTPUT_TOKENS) or 0) for s in model_calls),
        "cost": sum(costs) if costs else None,
        "unpriced_calls": sum(s.attr(sc.SPANHOUSE_COST_SOURCE) in _UNPRICED for s in spans),
        "failed_unpriced_calls": sum(s.failed_without_usage for s in spans),
        "status": _status(spans),
        "start_ns": start,
    }


def _unpriced_note(unpriced: int, failed: int) -> str:
    """The calls without a cost, those that failed and sent no usage apart (as `spanhouse costs` does):
    nothing is missing there, no charge is known."""
    missing = unpriced - failed
    parts = [f"{missing} call{'s' if missing > 1 else ''} without a cost"] if missing else []
    if failed:
        parts.append(f"{failed} failed call{'s' if failed > 1 else ''} without usage, no charge known")
    return "; ".join(parts)


def _status(spans: list[Span]) -> str:
    """The trace's status by `top-traces`' rule: `no root` while no stored span is a root (no parent),
    else the outcome of its root (the earliest, if several) and its spans."""
    roots = [s for s in spans if not s.parent_id]
    if not roots:
        return NO_ROOT
    root = min(roots, key=lambda s: s.start_ns)
    return "error" if root.failed else ("degraded" if any(s.failed for s in spans) else "ok")


def render(trace_id: str, spans: list[Span], show_content: bool = True, width: int = 80, full: bool = False) -> Tree:
    """The trace as a tree for a console `width` columns wide. Levels deeper than the width can indent
    are shown at the deepest level that fits, marked with their depth, so no span is ever cut off.
    With `full`, messages, tool arguments and results and errors are printed whole."""
    info = summarize(spans)
    header = Text()
    header.append(f"trace {trace_id}", style="bold")
    header.append(f"  {clean(info['service'])}")
    for key in ("environment", "release", "feature", "tenant"):
        if info[key]:
            header.append(f"  {key} ", style="dim")
            header.append(clean(info[key]))
    header.append(f"\n  status {info['status']}", style=STATUS_STYLES[info["status"]])
    header.append(f"  duration {_ms(info['duration_ns'])}  spans {info['spans']}  model calls {info['model_calls']}"
                  f"  tokens {info['input_tokens']}→{info['output_tokens']}")
    header.append(f"  cost {_usd(info['cost'])}" if info["cost"] is not None else "  cost n/a")
    if info["unpriced_calls"]:
        header.append(" + " + _unpriced_note(info["unpriced_calls"], info["failed_unpriced_calls"]), style="yellow")
    if info["incomplete_calls"]:
        n = info["incomplete_calls"]
        header.append(f"\n  {n} model call{'s' if n > 1 else ''} incomplete (no finish reason, no usage: cut off?)",
                      style="yellow")
    _failures(header, info["failed_spans"], full)
    copies = sum(s.copies for s in spans)
    if copies:
        header.append(f"\n  {copies} span(s) stored more than once (a client re-sent a batch); each is shown "
                      "and counted once here, but SQL sums over the tables count every copy", style="yellow")
    tree = Tree(header)
    max_depth = max(3, (width - _LABEL_ROOM) // _INDENT)
    by_id = {s.span_id for s in spans}
    # depth first, children by start time, without recursion (traces can nest thousands deep)
    stack: list[tuple[Tree, Span, int]] = [
        (tree, r, 1) for r in sorted(build_tree(spans), key=lambda x: x.start_ns, reverse=True)]
    while stack:
        node, span, depth = stack.pop()
        label = span_label(span, info["start_ns"], show_content, full)
        if depth == 1 and span.parent_id and span.parent_id not in by_id:
            label.append(f"\n    parent {clean(span.parent_id)} is not stored (yet)", style="yellow")
        if depth > max_depth:
            label = Text(f"[depth {depth}] ", style="dim") + label
        child = node.add(label)
        below = child if depth < max_depth else node
        for c in sorted(span.children, key=lambda x: x.start_ns, reverse=True):
            stack.append((below, c, depth + 1))
    return tree


_FAILURES_SHOWN = 5


def _failures(header: Text, failed: list[Span], full: bool) -> None:
    """How many spans failed and the first few of them (name, id, error), so one failure among
    thousands of spans is found without scrolling; `--full` lists every one."""
    if not failed:
        return
    header.append(f"\n  {len(failed)} span{'s' if len(failed) > 1 else ''} failed", style="red")
    shown = failed if full else failed[:_FAILURES_SHOWN]
    for s in shown:
        header.append("\n    ✗ ", style="red")
        header.append(clean(s.name), style="bold")
        header.append(f"  span {clean(s.span_id)}  ", style="dim")
        header.append(_one_line(_error_text(s), 100), style="red")
    if len(failed) > len(shown):
        header.append(f"\n    … {len(failed) - len(shown)} more (--full lists them all)", style="dim")


GRAFANA_JAEGER_UID = "spanhouse-jaeger"


def view_links(config: ServiceConfig, trace_id: str, grafana_url: str) -> list[str]:
    """Where to open the same trace: the Jaeger UI (spanhouse's jaeger_query API) and Grafana's Explore."""
    lines = []
    found = config.first(Kind.EXTENSION, "jaeger_query")
    if found is not None:
        host, port = parse_endpoint(found[1].endpoint)
        host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        lines.append(f"open in Jaeger: http://{host}:{port}/trace/{trace_id}")
    else:
        lines.append("open in Jaeger: add the jaeger_query extension to the service to serve the Jaeger API")
    left = orjson.dumps({"datasource": GRAFANA_JAEGER_UID, "queries": [{"refId": "A", "query": trace_id}],
                         "range": {"from": "now-7d", "to": "now"}}).decode()
    lines.append(f"open in Grafana: {grafana_url.rstrip('/')}/explore?left={quote(left)}  (Explore → data source "
                 f"'spanhouse (Jaeger API)' → Trace ID {trace_id})")
    return lines


@click.command("trace")
@click.argument("trace_id")
@config_option
@endpoint_option
@database_option
@click.option("--grafana-url", envvar="SPANHOUSE_GRAFANA_URL", default="http://127.0.0.1:3000", show_default=True,
              help="Grafana to link to (env SPANHOUSE_GRAFANA_URL).")
@click.option("--content/--no-content", default=True, show_default=True,
              help="Show the messages of model calls (from span attributes or log records), tool arguments "
                   "and results, and evaluation explanations.")
@click.option("--full", is_flag=True,
              help="Print every message, tool argument, result and error whole, line by line, instead of the "
                   "last few messages cut to one line each.")
@format_option
def command(trace_id: str, config_path: str | None, endpoint: str | None, database: str | None,
            grafana_url: str, content: bool, full: bool, fmt: str = "table") -> None:
    """Print one trace as a tree: timing, prompts, models, tokens, cost, tools, documents, messages, evals,
    errors."""
    if not _HEX32.match(trace_id):
        raise SpanhouseError(f"{trace_id!r} is not a trace id: expected 32 hexadecimal characters")
    config = load_config(config_path, for_reading=True)
    reader = open_reader(config, endpoint=endpoint, database=database)
    try:
        spans = load_trace(reader, trace_id)
        scores = 0 if spans else scores_without_spans(reader, trace_id)
    except SpanhouseError:
        raise
    except Exception as exc:
        raise SpanhouseError(f"could not read the trace: {clickhouse_message(exc)}") from None
    finally:
        reader.close()
    if scores:
        raise SpanhouseError(
            f"trace {trace_id} has no spans in {reader.via}, but {scores} evaluation result(s) sent for it: its "
            "spans never arrived, or are still in the sending queue. Read the results with: spanhouse sql "
            f"\"SELECT * FROM genai_evaluations_full WHERE TraceId = '{trace_id.lower()}'\"")
    if not spans:
        raise SpanhouseError(f"trace {trace_id} was not found in {reader.via} (spans sent in the last few "
                             "seconds may still be in the sending queue: they are stored within its flush_timeout)")
    if fmt == "json":
        from spanhouse.cli.trace_json import document

        write_json(document(trace_id.lower(), spans))
        return
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, _PIPE_WIDTH))
    console.print(render(trace_id.lower(), spans, content, console.width, full))
    for line in view_links(config, trace_id.lower(), grafana_url):
        console.print(line, style="dim", soft_wrap=True)
