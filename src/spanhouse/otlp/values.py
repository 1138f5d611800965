"""Attribute values as the OpenTelemetry Collector stringifies them (`pcommon.Value.AsString`).

ClickHouse's `Map(String, String)` columns store every attribute value as text, exactly as the
contrib exporter writes it: ints as decimal, bools as `true`/`false`, doubles in plain notation,
bytes as base64, arrays and maps as JSON.
"""

from __future__ import annotations

import base64
import math
from decimal import Decimal
from typing import Any

import orjson


def _float(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    text = repr(v)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    if text.endswith(".0"):
        text = text[:-2]
    return text


def _raw(v: Any) -> Any:
    """A value ready for JSON: bytes become base64 strings, as Go's encoding/json writes []byte."""
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    if isinstance(v, list):
        return [_raw(x) for x in v]
    if isinstance(v, dict):
        return {k: _raw(x) for k, x in v.items()}
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return _float(v)
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
    return orjson.dumps(_raw(v), option=orjson.OPT_SORT_KEYS).decode()


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
            return value if isinstance(value, list) else text
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
