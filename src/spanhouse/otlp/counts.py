"""Refuse an export request with too many records before it is decoded into Python objects.

Decoding costs per record, not per byte: an empty log record is 6 bytes of protobuf, so a body well
under the size limit can hold a million of them and hold the CPU for many seconds. Protobuf bodies are
counted on the wire before they are parsed (`check_wire`: parsing alone would take some fifty times
the body's size in memory), then from the parsed message's repeated fields; JSON from the parsed
lists. Counting stops once past the limit, so it never costs more than a few steps per allowed record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spanhouse.errors import RequestTooLarge

LIMIT_KEY = "limits::max_spans_per_request"
# (resource list, scope list, record list) per signal, as protobuf fields and OTLP/JSON keys
_PB = {"span": ("resource_spans", "scope_spans", "spans"),
       "log record": ("resource_logs", "scope_logs", "log_records")}
_JSON = {"span": (("resourceSpans", "resource_spans"), ("scopeSpans", "scope_spans"), ("spans", "spans")),
         "log record": (("resourceLogs", "resource_logs"), ("scopeLogs", "scope_logs"),
                        ("logRecords", "log_records"))}


def _refuse(what: str, limit: int) -> RequestTooLarge:
    # no exact count: counting stops once past the limit
    return RequestTooLarge(f"request holds {what} over the limit of {limit} ({LIMIT_KEY}); send smaller batches")


def check_protobuf(req: Any, noun: str, limit: int) -> None:
    """Raise `RequestTooLarge` when the parsed request `req` holds more than `limit` records (`noun`s),
    resource entries or scope entries; `limit` 0 checks nothing."""
    if not limit:
        return
    resource_field, scope_field, record_field = _PB[noun]
    _check(getattr(req, resource_field), lambda g: getattr(g, scope_field), lambda sc: getattr(sc, record_field),
           noun, limit)


def _check(groups: Any, scopes_of: Callable[[Any], Any], records_of: Callable[[Any], Any], noun: str,
           limit: int) -> None:
    """Refuse more than `limit` resource entries, scope entries or records, however the request is held."""
    if len(groups) > limit:
        raise _refuse("resource entries", limit)
    entries = records = 0
    for group in groups:
        scopes = scopes_of(group)
        entries += len(scopes)
        if entries > limit:
            raise _refuse("scope entries", limit)
        for scope in scopes:
            records += len(records_of(scope))
    if records > limit:
        raise _refuse(noun + "s", limit)


class _Unreadable(Exception):
    """The bytes are not a message that can be walked: the parser refuses them with a better message."""


class _Walk:
    """Steps over the fields of a serialized message in place, never more than `steps` in all."""

    def __init__(self, data: bytes, steps: int):
        self.data, self.steps = data, steps

    def varint(self, i: int, end: int) -> tuple[int, int]:
        value = shift = 0
        while i < end and shift < 64:
            b = self.data[i]
            i += 1
            value |= (b & 0x7F) << shift
            if b < 0x80:
                return value, i
            shift += 7
        raise _Unreadable

    def payloads(self, start: int, end: int, number: int, room: int) -> list[tuple[int, int]]:
        """(start, end) of each length-delimited field `number` in data[start:end], stopping after
        `room` + 1 of them."""
        out: list[tuple[int, int]] = []
        i = start
        while i < end and len(out) <= room:
            self.steps -= 1
            if self.steps < 0:
                raise OverflowError
            tag, i = self.varint(i, end)
            wire = tag & 7
            if wire == 0:
                i = self.varint(i, end)[1]
            elif wire in (1, 5):
                i += 8 if wire == 1 else 4
            elif wire == 2:
                n, i = self.varint(i, end)
                if tag >> 3 == number:
                    out.append((i, i + n))
                i += n
            else:  # groups
                raise _Unreadable
        if i > end:
            raise _Unreadable
        return out


def check_wire(data: bytes, noun: str, limit: int) -> None:
    """`check_protobuf` on the serialized request, before it is parsed: parsing a body of tiny records
    takes far more memory than the body (an empty 6-byte entry becomes some 300 bytes), so the fields
    are walked in place, stopping past the limit. Bytes that cannot be walked are left to the parser."""
    if not limit:
        return
    # a request within the limit has a few fields per record or entry at most
    walk_steps = 8 * limit + 1024
    walk = _Walk(data, walk_steps)
    try:
        # Export{Trace,Logs}ServiceRequest: resource entries are field 1; the scope entries in them, and
        # the records in those, field 2
        resources = walk.payloads(0, len(data), 1, limit)
        if len(resources) > limit:
            raise _refuse("resource entries", limit)
        scopes: list[tuple[int, int]] = []
        for start, end in resources:
            scopes += walk.payloads(start, end, 2, limit - len(scopes))
            if len(scopes) > limit:
                raise _refuse("scope entries", limit)
        records = 0
        for start, end in scopes:
            records += len(walk.payloads(start, end, 2, limit - records))
            if records > limit:
                raise _refuse(noun + "s", limit)
    except _Unreadable:
        return
    except OverflowError:
        raise _refuse("protobuf fields", walk_steps) from None


def _list(obj: Any, keys: tuple[str, str]) -> list:
    if not isinstance(obj, dict):
        return []
    value = obj.get(keys[0])
    if value is None:
        value = obj.get(keys[1])
    return value if isinstance(value, list) else []  # other shapes are refused by the decoder


def check_json(doc: Any, noun: str, limit: int) -> None:
    """`check_protobuf` for a parsed OTLP/JSON request (camelCase or snake_case keys)."""
    if not limit:
        return
    resource_keys, scope_keys, record_keys = _JSON[noun]
    _check(_list(doc, resource_keys), lambda g: _list(g, scope_keys), lambda sc: _list(sc, record_keys), noun, limit)
