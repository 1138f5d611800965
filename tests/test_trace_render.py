"""`spanhouse trace` rendering details that the journey test does not pin down."""

from __future__ import annotations

import pytest

from spanhouse.cli.trace import Span, _usd, build_tree


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
