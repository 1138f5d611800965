"""Parse the Jaeger query APIs' request parameters; every problem is a `BadParameter` with a message
that says which parameter and what to send instead (answered as HTTP 400)."""

from __future__ import annotations

import base64
import binascii
import calendar
import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from spanhouse.config import Duration
from spanhouse.errors import SpanhouseError

DEFAULT_LOOKBACK_NS = 2 * 86400 * 10**9
_HEX = re.compile(r"^[0-9a-fA-F]{1,32}$")
_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


class BadParameter(SpanhouseError):
    """A request parameter is missing or malformed."""


def trace_id(text: str) -> str:
    """A trace id as 32 lowercase hex digits: hex (shorter ids are left-padded, as Jaeger does) or base64."""
    text = text.strip()
    if _HEX.match(text):
        return text.lower().rjust(32, "0")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == 16:
        return raw.hex()
    raise BadParameter(f"malformed trace id {text!r}: expected up to 32 hexadecimal digits")


def integer(params: Mapping[str, list[str]], name: str, default: int | None = None, minimum: int = 0) -> int | None:
    values = params.get(name)
    if not values or values[-1] == "":
        return default
    try:
        value = int(values[-1])
    except ValueError:
        raise BadParameter(f"parameter {name!r} must be an integer, got {values[-1]!r}") from None
    if value < minimum:
        raise BadParameter(f"parameter {name!r} must be {minimum} or more, got {value}")
    return value


MAX_NS = (1 << 63) - 1
"""The last nanosecond ClickHouse's DateTime64(9) and Int64 hold (April 2262)."""


def clamp_ns(ns: int) -> int:
    """A time bound within what the store holds: from 1970 (the receiver refuses older spans) to April 2262.
    A window reaching beyond covers all of it, as in Jaeger, whose times run from year 1 to 9999."""
    return min(max(ns, 0), MAX_NS)


def epoch_ns(params: Mapping[str, list[str]], name: str, upper: bool = False) -> int | None:
    """A time given in microseconds since the epoch (Jaeger's unit); millisecond values, which Grafana
    sends for trace-by-id time bounds, are recognised by their magnitude. An `upper` bound covers its
    whole microsecond (or millisecond): spans are stored in nanoseconds, shown in microseconds, and a
    span shown at the bound is inside it."""
    value = integer(params, name)
    if value is None:
        return None
    unit = 10**6 if value < 10**14 else 1000  # below: before 5138 in ms, before 1973 in µs
    return clamp_ns(value * unit + (unit - 1 if upper else 0))


def duration_ns(params: Mapping[str, list[str]], name: str) -> int | None:
    values = params.get(name)
    if not values or not values[-1]:
        return None
    try:
        return int(Duration.parse(values[-1]).seconds * 1e9)
    except ValueError:
        raise BadParameter(f"parameter {name!r} must be a duration such as 1.2s, 100ms or 500us, "
                           f"got {values[-1]!r}") from None


def tags(params: Mapping[str, list[str]]) -> dict[str, str]:
    """Tag filters from `tags` (a JSON object) and repeated `tag=key:value` parameters."""
    out: dict[str, str] = {}
    for raw in params.get("tags", []):
        if not raw:
            continue
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BadParameter(f"malformed 'tags' parameter: expected a JSON object such as "
                               f'{{"error":"true"}}, got {raw!r}') from None
        if not isinstance(doc, dict):
            raise BadParameter("malformed 'tags' parameter: expected a JSON object of tag keys to values")
        out.update({str(k): _tag_text(v) for k, v in doc.items()})
    for raw in params.get("tag", []):
        key, sep, value = raw.partition(":")
        if not sep or not key:
            raise BadParameter(f"malformed 'tag' parameter {raw!r}: expected key:value")
        out[key] = value
    return out


def _tag_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return v if isinstance(v, str) else orjson.dumps(v).decode()


def rfc3339_ns(value: str | None, name: str) -> int | None:
    """An RFC 3339 timestamp (with nanoseconds) as ns since the epoch, within `clamp_ns`'s range."""
    if not value:
        return None
    m = _RFC3339.match(value.strip())
    if not m:
        raise BadParameter(f"parameter {name!r} must be an RFC 3339 time such as 2026-01-02T15:04:05.123456789Z, "
                           f"got {value!r}")
    zone = m.group(3)
    try:
        local = datetime.fromisoformat(m.group(1))
        hours, minutes = (0, 0) if zone == "Z" else (int(zone[1:3]), int(zone[4:6]))
        if hours > 23 or minutes > 59:
            raise ValueError(zone)
    except ValueError:
        raise BadParameter(f"parameter {name!r} is not a valid time: {value!r}") from None
    # timegm, unlike datetime.timestamp(), takes every year from 1 to 9999 whatever the offset
    offset = (hours * 3600 + minutes * 60) * (-1 if zone.startswith("-") else 1)
    seconds = calendar.timegm(local.timetuple()) - offset
    frac = (m.group(2) or ".")[1:10].ljust(9, "0")
    return clamp_ns(seconds * 10**9 + int(frac))


def go_duration_ns(value: str | None, name: str) -> int | None:
    return duration_ns({name: [value]} if value else {}, name)


def now_ns() -> int:
    return time.time_ns()
