"""Refuse an export request with too many records before it is decoded into Python objects.

Decoding costs per record, not per byte: an empty log record is 6 bytes of protobuf, so a body well
under the size limit can hold a million of them and hold the CPU for many seconds. The counts come
from the lengths of the parsed message's repeated fields (or the parsed JSON's lists), so checking
costs one step per resource and scope entry, and their numbers are bounded by the same limit.
"""

from __future__ import annotations

from typing import Any

from spanhouse.errors import RequestTooLarge

LIMIT_KEY = "limits::max_spans_per_request"
# (resource list, scope list, record list) per signal, as protobuf fields and OTLP/JSON keys
_PB = {"span": ("resource_spans", "scope_spans", "spans"),
       "log record": ("resource_logs", "scope_logs", "log_records")}
_JSON = {"span": (("resourceSpans", "resource_spans"), ("scopeSpans", "scope_spans"), ("spans", "spans")),
         "log record": (("resourceLogs", "resource_logs"), ("scopeLogs", "scope_logs"),
                        ("logRecords", "log_records"))}


def _refuse(count: int, what: str, limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"request holds {count} {what}, over the limit of {limit} ({LIMIT_KEY}); send "
                           "smaller batches")


def check_protobuf(req: Any, noun: str, limit: int) -> None:
    """Raise `RequestTooLarge` when the parsed request `req` holds more than `limit` records (`noun`s),
    resource entries or scope entries; `limit` 0 checks nothing."""
    if not limit:
        return
    resource_field, scope_field, record_field = _PB[noun]
    groups = getattr(req, resource_field)
    if len(groups) > limit:
        raise _refuse(len(groups), "resource entries", limit)
    entries = records = 0
    for group in groups:
        scopes = getattr(group, scope_field)
        entries += len(scopes)
        if entries > limit:
            raise _refuse(entries, "scope entries", limit)
        for scope in scopes:
            records += len(getattr(scope, record_field))
    if records > limit:
        raise _refuse(records, noun + "s", limit)


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
    groups = _list(doc, resource_keys)
    if len(groups) > limit:
        raise _refuse(len(groups), "resource entries", limit)
    entries = records = 0
    for group in groups:
        scopes = _list(group, scope_keys)
        entries += len(scopes)
        if entries > limit:
            raise _refuse(entries, "scope entries", limit)
        for scope in scopes:
            records += len(_list(scope, record_keys))
    if records > limit:
        raise _refuse(records, noun + "s", limit)
