"""Attribute values stringified as the Collector's contrib ClickHouse exporter writes them."""

from __future__ import annotations

import pytest

from spanhouse.otlp.values import as_string, string_map, typed_value


@pytest.mark.parametrize("value, text", [
    ("plain", "plain"), (True, "true"), (False, "false"), (42, "42"), (-7, "-7"), (0.25, "0.25"), (2.0, "2"),
    (1e21, "1e+21"), (1.5e-7, "1.5e-7"), (1e20, "100000000000000000000"), (1e-6, "0.000001"), (-0.0, "-0"),
    (2.5e-10, "2.5e-10"), (-1.25e22, "-1.25e+22"), (5e-324, "5e-324"), (float("nan"), "NaN"), (float("inf"), "+Inf"),
    # inside arrays and maps, as Go's encoding/json writes them: doubles by the same rules, HTML characters escaped
    ([1.5, 2.0], "[1.5,2]"), ([True, 1.0, -0.0], "[true,1,-0]"),
    ({"x": 1.0, "y": [1e21, 1e-7]}, '{"x":1,"y":[1e+21,1e-7]}'),
    (["<b>&", {"k>": "\u2028"}], '["\\u003cb\\u003e\\u0026",{"k\\u003e":"\\u2028"}]'),
    (None, ""), (b"hi", "aGk="), (["a", 1, True], '["a",1,true]'), ({"b": 1, "a": [2]}, '{"a":[2],"b":1}'),
])
def test_as_string(value, text):
    assert as_string(value) == text


def test_registry_doubles_read_back_from_arrays_are_doubles():
    assert typed_value("double[]", "[1.5,2]") == [1.5, 2.0] and type(typed_value("double[]", "[2]")[0]) is float
    assert typed_value("int[]", "[1,2]") == [1, 2]


def test_float_arrays_from_the_sdk_are_stored_as_the_contrib_exporter_writes_them(running):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult
    from support import sdk_spans

    def build(tracer):
        tracer.start_span("floats", attributes={"app.floats": [1.0, 2.5], "app.tiny": [1e-7, 1e21],
                                                "app.tags": ["<a&b>"]}).end()

    exporter = OTLPSpanExporter(endpoint=running.http_url + "/v1/traces", timeout=10)
    assert exporter.export(sdk_spans(build)) is SpanExportResult.SUCCESS
    exporter.shutdown()
    rows = running.wait_rows("SELECT SpanAttributes FROM otel_traces WHERE SpanName = 'floats'", 1)
    stored = rows[0][0]
    assert stored["app.floats"] == "[1,2.5]" and stored["app.tiny"] == "[1e-7,1e+21]"
    assert stored["app.tags"] == '["\\u003ca\\u0026b\\u003e"]'


def test_string_map():
    attrs = {"a": 1, "b": "x", "c": [b"\x00"]}
    out = string_map(attrs)
    assert out == {"a": "1", "b": "x", "c": '["AA=="]'} and list(out) == ["a", "b", "c"]
    assert attrs == {"a": 1, "b": "x", "c": [b"\x00"]}  # the span's own map is left as it was
    strings = {"a": "1", "b": "x"}
    assert string_map(strings) is strings
