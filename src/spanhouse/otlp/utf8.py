"""Protobuf export requests with invalid UTF-8 in some strings: keep the records whose strings are valid.

The protobuf runtime refuses a whole message when any `string` field holds invalid UTF-8, naming no
record, so one bad value would lose every span of the request. Only when a request fails to parse, it
is parsed again with a copy of the OTLP descriptors in which every `string` field is `bytes` (the
same wire format); the spans or log records that hold invalid UTF-8 (all of a resource's or scope's
when the bad string is in the resource or scope) are removed and reported, and the rest is parsed
normally. Requests that parse are never touched, so valid traffic pays nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


@dataclass(frozen=True)
class _Shape:
    """Where the records sit in one signal's request: request.<resources>[].<scopes>[].<records>[]."""

    request: Any
    resources: str
    scopes: str
    records: str
    noun: str
    label: str
    """The record's string field that names it in a reason (its name)."""


TRACES = _Shape(ExportTraceServiceRequest, "resource_spans", "scope_spans", "spans", "span", "name")
LOGS = _Shape(ExportLogsServiceRequest, "resource_logs", "scope_logs", "log_records", "log record", "event_name")


@cache
def _bytes_copy(request: Any) -> tuple[Any, frozenset[str]]:
    """The request class rebuilt with every `string` field as `bytes`, in a pool of its own; and the
    full names of the fields that were strings."""
    files: list[Any] = []

    def collect(fd: Any) -> None:
        if fd in files:
            return
        for dep in fd.dependencies:
            collect(dep)
        files.append(fd)

    collect(request.DESCRIPTOR.file)
    pool = descriptor_pool.DescriptorPool()
    strings: set[str] = set()
    for fd in files:
        proto = descriptor_pb2.FileDescriptorProto()
        fd.CopyToProto(proto)
        stack = [(f"{proto.package}.{m.name}", m) for m in proto.message_type]
        while stack:
            name, msg = stack.pop()
            stack.extend((f"{name}.{m.name}", m) for m in msg.nested_type)
            for field in msg.field:
                if field.type == descriptor_pb2.FieldDescriptorProto.TYPE_STRING:
                    field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
                    strings.add(f"{name}.{field.name}")
        pool.Add(proto)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(request.DESCRIPTOR.full_name))
    return cls, frozenset(strings)


def _bad_field(msg: Any, strings: frozenset[str], path: str = "") -> str | None:
    """The path of the first field under `msg` that was a string and is not valid UTF-8."""
    for fd, value in msg.ListFields():
        items = list(enumerate(value)) if fd.is_repeated else [(None, value)]
        for i, item in items:
            where = f"{path}{fd.name}" + (f"[{i}]" if i is not None else "")
            if fd.full_name in strings:
                try:
                    item.decode("utf-8")
                except UnicodeDecodeError:
                    return where
            elif fd.type == FieldDescriptor.TYPE_MESSAGE:
                found = _bad_field(item, strings, where + ".")
                if found:
                    return found
    return None


def _own_fields_bad(container: Any, child: str, strings: frozenset[str]) -> str | None:
    """A bad string in a ResourceX/ScopeX message outside its `child` list (the resource or scope)."""
    for fd, value in container.ListFields():
        if fd.name == child:
            continue
        if fd.full_name in strings:
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                return fd.name
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            found = _bad_field(value, strings, fd.name + ".")
            if found:
                return found
    return None


def salvage(data: bytes, shape: _Shape, error: DecodeError) -> tuple[Any, list[str]]:
    """`data` parsed without the records that hold invalid UTF-8, and one reason per removed record.
    Raises `error` again when invalid UTF-8 is not why `data` failed to parse."""
    cls, strings = _bytes_copy(shape.request)
    try:
        req = cls.FromString(data)
    except (DecodeError, RecursionError):
        raise error from None
    reasons: list[str] = []
    removed = False

    def label(record: Any) -> str:
        name = getattr(record, shape.label).decode("utf-8", "replace")
        return f"{shape.noun} {name!r}" if name else shape.noun

    resources = getattr(req, shape.resources)
    for ri in reversed(range(len(resources))):
        rs = resources[ri]
        rp = f"{shape.resources}[{ri}]"
        bad_resource = _own_fields_bad(rs, shape.scopes, strings)
        scopes = getattr(rs, shape.scopes)
        for si in reversed(range(len(scopes))):
            ss = scopes[si]
            sp = f"{rp}.{shape.scopes}[{si}]"
            bad_scope = _own_fields_bad(ss, shape.records, strings)
            shared = f"{rp}.{bad_resource}" if bad_resource else f"{sp}.{bad_scope}" if bad_scope else None
            records = getattr(ss, shape.records)
            for xi in reversed(range(len(records))):
                field = shared or _bad_field(records[xi], strings, f"{sp}.{shape.records}[{xi}].")
                if field:
                    reasons.append(f"{label(records[xi])}: {field} is not valid UTF-8 (protobuf strings must be)")
                    del records[xi]
            if shared:
                del scopes[si]
                removed = True
        if bad_resource:
            del resources[ri]
            removed = True
    if not (reasons or removed):
        raise error
    reasons.reverse()
    try:
        return shape.request.FromString(req.SerializeToString()), reasons
    except DecodeError:
        raise error from None
