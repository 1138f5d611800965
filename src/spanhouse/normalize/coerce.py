"""Value coercion to the registry type of a canonical attribute (`sc.ATTRIBUTE_TYPES`).

Each coercer returns the converted value or None when the value cannot be read as that type; the
caller then tries the next candidate and keeps the foreign attribute as sent. Coercers accept (and
ignore) the engine's per-span context, so a plain rename calls them directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from spanhouse import semconv as sc
from spanhouse.normalize.formats import dumps, loads
from spanhouse.normalize.spec import ValueMap

Coercer = Callable[..., Any]
_INT64 = 2**63


class _Invalid:
    __slots__ = ()

    def __repr__(self) -> str:
        return "INVALID"


# What a converter returns for a value it cannot read and must not guess: the attribute stays as sent
# and the engine counts it in `conversion_errors`.
INVALID: Any = _Invalid()


def to_int(v: Any, _ctx: Any = None) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v) if math.isfinite(v) and v == int(v) else None
    if isinstance(v, str):
        s = v.strip()
        try:
            return int(s)
        except ValueError:
            try:
                f = float(s)
            except ValueError:
                return None
            return int(f) if math.isfinite(f) and f == int(f) else None
    return None


def whole_int(v: Any) -> Any:
    """A canonical int attribute sent as a double: the int when the double is whole (40.0 → 40),
    INVALID when it is not (40.7, inf, nan) or outside int64; None for any other value."""
    if type(v) is not float:
        return None
    return int(v) if v.is_integer() and -_INT64 <= v < _INT64 else INVALID


def to_double(v: Any, _ctx: Any = None) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, str):
        try:
            f = float(v.strip())
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def to_string(v: Any, _ctx: Any = None) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v if v else None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, (list, dict)):
        return dumps(v)
    return None


def to_bool(v: Any, _ctx: Any = None) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, str):
        s = v.strip().lower()
        return True if s == "true" else False if s == "false" else None
    if isinstance(v, int):
        return bool(v) if v in (0, 1) else None
    return None


def to_string_list(v: Any, _ctx: Any = None) -> list[str] | None:
    v = loads(v)
    if isinstance(v, str):
        return [v] if v else None
    if isinstance(v, (list, tuple)):
        out = [s for s in (to_string(x) for x in v) if s is not None]
        return out or None
    s = to_string(v)
    return [s] if s is not None else None


def to_any(v: Any, _ctx: Any = None) -> Any:
    """`any` attributes are stored as JSON text; a string is kept as sent (JSON or plain text)."""
    if v is None or v == "":
        return None
    if isinstance(v, str):
        return v
    return dumps(v)


COERCERS: dict[str, Coercer] = {
    "int": to_int,
    "double": to_double,
    "string": to_string,
    "boolean": to_bool,
    "string[]": to_string_list,
    "any": to_any,
    "template[string]": to_string,
    "template[int]": to_int,
}


# Registry names that are current (not renamed or obsolete): what may be copied as canonical values.
CURRENT = frozenset(k for k in sc.ATTRIBUTE_TYPES if k not in sc.RENAMED) - {
    sc.GEN_AI_PROMPT,
    sc.GEN_AI_COMPLETION,
    sc.GEN_AI_USAGE_TOTAL_TOKENS,
}


def coerce_current(key: str, value: Any) -> Any:
    """`value` as the registry type of `key`, a current canonical attribute; None otherwise."""
    return COERCERS[sc.ATTRIBUTE_TYPES[key]](value) if key in CURRENT else None


def lookup(vmap: ValueMap, value: Any) -> tuple[bool, Any]:
    """(found, mapped) for `value` in `vmap`; case-insensitive, by dot prefix when the map says so."""
    if not isinstance(value, str):
        return False, value
    table = vmap.map
    low = value.lower()
    if low in table:
        return True, table[low]
    if vmap.by_prefix and "." in low:
        parts = low.split(".")
        for n in range(len(parts) - 1, 0, -1):
            head = ".".join(parts[:n])
            if head in table:
                return True, table[head]
    if vmap.unmapped == "first_segment" and "." in value:
        head = low.split(".", 1)[0]
        return True, table.get(head, value.split(".", 1)[0])
    if vmap.unmapped == "drop":
        return True, None
    return False, value


def mapped(vmap: ValueMap, value: Any) -> Any:
    """`value` through `vmap`; unknown values are kept (or cut to their first segment)."""
    return lookup(vmap, value)[1]
