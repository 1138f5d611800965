"""Attribute values as the OpenTelemetry Collector stringifies them (`pcommon.Value.AsString`).

ClickHouse's `Map(String, String)` columns store every attribute value as text, exactly as the
contrib exporter writes it: ints as decimal, bools as `true`/`false`, doubles as Go's encoding/json
writes them (also inside arrays and maps: `[1.5,2]`), bytes as base64, arrays and maps as JSON.
"""

from __future__ import annotations

import base64
import math
from decimal import Decimal
from typing import Any

import orjson


def _float(v: float) -> str:
    """A double as Go's encoding/json writes it (pdata's `AsString`): strconv's shortest digits, in plain
    notation from 1e-6 up to 1e21 and as `1.5e-7` / `1e+21` outside; `2` for 2.0, `-0` for negative zero.
    NaN and infinities, which encoding/json refuses, are written `NaN`, `+Inf`, `-Inf`."""
    text = repr(v)  # Python's shortest round-trip digits, the same as strconv's
    if "e" in text:
        if 1e-6 <= abs(v) < 1e21:  # Python switches to exponents sooner than Go
            return format(Decimal(text), "f")
        mantissa, exponent = text.split("e")
        power = int(exponent)
        return f"{mantissa}e-{-power}" if power < 0 else f"{mantissa}e+{power:02d}"
    if text.endswith(".0"):
        return text[:-2]
    if text[-1] in "nf":  # nan, inf, -inf
        return "NaN" if text == "nan" else "+Inf" if v > 0 else "-Inf"
    return text


def _raw(v: Any) -> Any:
    """A value ready for JSON as Go's encoding/json writes it: bytes as base64 strings, doubles by its
    float rules (only values holding doubles pay for them)."""
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    if isinstance(v, list):
        return [_raw(x) for x in v]
    if isinstance(v, dict):
        return {k: _raw(x) for k, x in v.items()}
    if isinstance(v, float):  # orjson writes 2.0 where Go writes 2
        return _float(v) if math.isnan(v) or math.isinf(v) else orjson.Fragment(_float(v))
    return v


def as_string(v: Any) -> str:
    """The Collector's string form of an attribute value."""
    t = type(v)
    if t is str:
        return v
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return str(v)
    if t is float:
        return _float(v)
    if v is None:
        return ""
    if t is bytes:
        return base64.b64encode(v).decode()
    text = orjson.dumps(_raw(v), option=orjson.OPT_SORT_KEYS).decode()
    if "<" in text or ">" in text or "&" in text or "\u2028" in text or "\u2029" in text:
        text = text.translate(_HTML_ESCAPES)  # these occur only inside JSON strings, never in its syntax
    return text


# Go's json.Marshal escapes these inside strings (HTMLEscape): the contrib exporter's arrays and maps hold the escapes
_HTML_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                               "\u2029": "\\u2029"})


def string_map(attrs: dict[str, Any]) -> dict[str, str]:
    """An attribute map with every value stringified, in the same key order: `attrs` itself when all
    its values are strings already, else a new dict (`attrs` is never changed)."""
    out = None
    # copying in C and replacing the few other values beats building every entry anew
    for k, v in attrs.items():
        if type(v) is not str:
            if out is None:
                out = dict(attrs)
            out[k] = as_string(v)
    return attrs if out is None else out


def typed_value(type_name: str | None, text: str) -> Any:
    """Undo `as_string` for an attribute whose registry type is known (`int`, `double`, `boolean`,
    `string[]`, ...); text that does not parse as that type stays text, so nothing is lost."""
    if not type_name or type_name == "string":
        return text
    try:
        if type_name == "int":
            return int(text)
        if type_name == "double":
            return float(text)
        if type_name == "boolean":
            if text in ("true", "false"):
                return text == "true"
            return text
        if type_name.endswith("[]") and text.startswith("["):
            value = orjson.loads(text)
            if not isinstance(value, list):
                return text
            if type_name == "double[]":  # Go writes a whole double as `2`, which JSON reads back as an int
                return [float(x) if type(x) is int else x for x in value]
            return value
    except (ValueError, orjson.JSONDecodeError):
        return text
    return text


def describe(v: Any) -> str:
    """What a value is, never the value: its type and size (`a string of 52 characters`). For log
    messages about values that may be content (prompts, e-mails, card numbers) and that are logged
    before, or instead of, being redacted."""
    t = type(v)
    if t is str:
        return f"a string of {len(v)} characters"
    if t is bytes:
        return f"{len(v)} bytes"
    if t is bool:
        return "a boolean"
    if t is int:
        n = len(str(abs(v)))
        return f"{'a negative' if v < 0 else 'an'} integer of {n} digit{'s' if n > 1 else ''}"
    if t is float:
        if not math.isfinite(v):
            return "a float that is not finite"
        return "a negative float" if v < 0 else "a float"
    if t is list or t is tuple:
        return f"an array of {len(v)} values"
    if t is dict:
        return f"a map of {len(v)} entries"
    if v is None:
        return "no value"
    return f"a {t.__name__}"


def exception_without_message(exc: BaseException) -> str:
    """An exception's type and where it was raised, without its message: messages quote values
    (`invalid literal for int(): '<the value>'`, a KeyError's key) that may be content."""
    import traceback

    frames = "".join(traceback.format_tb(exc.__traceback__)).rstrip()
    return f"{type(exc).__name__} (message not logged: it may quote content)\n{frames}"
