"""`spanhouse trace` rendering details that the journey test does not pin down."""

from __future__ import annotations

import json

import pytest

from spanhouse import semconv as sc
from spanhouse.cli.trace import Span, _usd, build_tree, render


@pytest.mark.parametrize("value, text", [(0.000036, "$0.000036"), (0.0092, "$0.0092"), (3.14159, "$3.14"),
                                         (0.0, "$0.0000")])
def test_small_costs_keep_their_digits(value, text):
    assert _usd(value) == text


def _span(sid: str, parent: str) -> Span:
    return Span(sid, parent, sid, "Internal", "svc", 0, 1, "Unset", "", {}, {}, [])


def test_orphans_become_roots_and_building_twice_does_not_duplicate_children():
    spans = [_span("a", ""), _span("b", "a"), _span("c", "missing")]
    build_tree(spans)
    roots = build_tree(spans)
    assert [r.span_id for r in roots] == ["a", "c"]
    assert [c.span_id for c in roots[0].children] == ["b"]


def test_a_parent_cycle_is_shown_from_its_earliest_span_and_nothing_is_hidden():
    def at(sid: str, parent: str, start: int) -> Span:
        return Span(sid, parent, sid, "Internal", "svc", start, 1, "Unset", "", {}, {}, [])

    spans = [at("r", "", 0), at("x", "y", 5), at("y", "x", 6), at("z", "x", 7), at("p", "q", 9), at("q", "p", 8)]
    roots = build_tree(spans)
    assert [r.span_id for r in roots] == ["r", "x", "q"]
    assert [c.span_id for c in roots[1].children] == ["y", "z"] and roots[1].children[0].children == []
    assert [c.span_id for c in roots[2].children] == ["p"]
    # every cycle, no plain root at all: the trace still renders
    assert [r.span_id for r in build_tree([at("a", "b", 2), at("b", "a", 1)])] == ["b"]


def _text(tree, width: int = 80) -> str:
    import io

    from rich.console import Console

    out = io.StringIO()
    Console(file=out, width=width, force_terminal=False, color_system=None).print(tree)
    return out.getvalue()


def _chain(depth: int) -> list[Span]:
    spans = [Span(f"s{i}", f"s{i - 1}" if i else "", f"agent{i}", "Internal", "svc", i, 100 - i / 100,
                  "Error" if i == depth - 1 else "Unset", "", {}, {}, []) for i in range(depth)]
    return spans


@pytest.mark.parametrize("width", [80, 120])
def test_deep_traces_show_every_span_and_the_failed_one_at_any_width(width):
    text = _text(render("ab" * 16, _chain(50), width=width), width)
    assert all(f"agent{i} " in text for i in range(50)) and "✗ agent49" in text
    assert "[depth 50]" in text


def test_thousands_of_levels_render_without_recursion():
    text = _text(render("ab" * 16, _chain(1500), width=80))
    assert "✗ agent1499" in text


def test_control_characters_in_stored_text_are_shown_escaped():
    tool = Span("t", "", "execute_tool \x1b[32mOK", "Internal", "svc", 0, 1, "Error", "denied \x1b]0;pwned\x07",
                {sc.GEN_AI_OPERATION_NAME: "execute_tool", sc.GEN_AI_TOOL_NAME: "transfer\x1b[8m_money",
                 sc.GEN_AI_TOOL_CALL_ARGUMENTS: '{"to": "\\u001b[1A\\u001b[2K"}'}, {}, [])
    text = _text(render("ab" * 16, [tool]))
    assert "\x1b" not in text and "\x07" not in text
    assert "execute_tool \\x1b[32mOK" in text and "transfer\\x1b[8m_money" in text


def test_what_went_wrong_is_on_the_failed_step():
    raised = (5, sc.EVENT_EXCEPTION, {sc.EXCEPTION_TYPE: "PermissionError",
                                      sc.EXCEPTION_MESSAGE: "role 'agent' may not DROP TABLE users"})
    tool = Span("t", "gone", "execute_tool sql", "Internal", "svc", 0, 1, "Error", "",
                {sc.GEN_AI_OPERATION_NAME: "execute_tool", sc.GEN_AI_TOOL_NAME: "sql",
                 sc.GEN_AI_TOOL_CALL_ARGUMENTS: '{"query": "DROP TABLE users"}',
                 sc.GEN_AI_TOOL_CALL_RESULT: '{"error": "denied"}'}, {}, [raised])
    outputs = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": f"choice {i}"}]}
                          for i in range(5)])
    chat = Span("c", "t", "chat", "Client", "svc", 1, 1, "Unset", "",
                {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_OUTPUT_MESSAGES: outputs,
                 sc.SPANHOUSE_REDACTION_DROPPED_KEYS: json.dumps([sc.GEN_AI_INPUT_MESSAGES])}, {}, [])
    text = " ".join(_text(render("ab" * 16, [tool, chat]), 200).split())
    assert "error PermissionError role 'agent' may not DROP TABLE users" in text
    assert 'args {"query": "DROP TABLE users"}' in text and 'result {"error": "denied"}' in text
    assert "choice 2" in text and "choice 3" not in text and "2 more output message(s)" in text
    assert f"redaction dropped {sc.GEN_AI_INPUT_MESSAGES}" in text
    assert "parent gone is not stored (yet)" in text


def test_full_prints_every_message_whole_and_line_by_line():
    """By default the last three inputs show, each cut to one line; `--full` shows every message with its
    line breaks, long tool results uncut, and still escapes control characters."""
    long_answer = "Step 1: check the order.\nStep 2: refund it.\n" + "x" * 400 + " END\x1b[2J"
    inputs = json.dumps([{"role": "user", "parts": [{"type": "text", "content": f"question {i}"}]} for i in range(5)])
    outputs = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": long_answer}]}])
    chat = Span("c", "", "chat", "Client", "svc", 0, 1, "Unset", "",
                {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_INPUT_MESSAGES: inputs,
                 sc.GEN_AI_OUTPUT_MESSAGES: outputs}, {}, [])
    tool = Span("t", "c", "execute_tool search", "Internal", "svc", 0, 1, "Unset", "",
                {sc.GEN_AI_OPERATION_NAME: "execute_tool", sc.GEN_AI_TOOL_CALL_RESULT: "r" * 300 + " LAST"}, {}, [])
    short = _text(render("ab" * 16, [chat, tool], width=200), 200)
    assert "question 1" not in short and "2 earlier message(s)" in short and "END" not in short
    assert "LAST" not in short
    whole = _text(render("ab" * 16, [chat, tool], width=200, full=True), 200)
    assert all(f"question {i}" in whole for i in range(5)) and "earlier message" not in whole
    lines = whole.splitlines()
    step1 = next(i for i, line in enumerate(lines) if "Step 1: check the order." in line)
    assert "Step 2: refund it." in lines[step1 + 1]
    assert "x" * 150 in whole and "END\\x1b[2J" in whole and "\x1b" not in whole and "LAST" in whole
