"""Attribute values stringified as the Collector's contrib ClickHouse exporter writes them."""

from __future__ import annotations

import pytest

from spanhouse.otlp.values import as_string, string_map


@pytest.mark.parametrize("value, text", [
    ("plain", "plain"), (True, "true"), (False, "false"), (42, "42"), (-7, "-7"), (0.25, "0.25"), (2.0, "2"),
    (1e21, "1000000000000000000000"), (1.5e-7, "0.00000015"), (float("nan"), "NaN"), (float("inf"), "+Inf"),
    (None, ""), (b"hi", "aGk="), (["a", 1, True], '["a",1,true]'), ({"b": 1, "a": [2]}, '{"a":[2],"b":1}'),
])
def test_as_string(value, text):
    assert as_string(value) == text


def test_string_map():
    attrs = {"a": 1, "b": "x", "c": [b"\x00"]}
    out = string_map(attrs)
    assert out == {"a": "1", "b": "x", "c": '["AA=="]'} and list(out) == ["a", "b", "c"]
    assert attrs == {"a": 1, "b": "x", "c": [b"\x00"]}  # the span's own map is left as it was
    strings = {"a": "1", "b": "x"}
    assert string_map(strings) is strings
