"""Write the OTLP trace `.proto` files that ClickHouse's Protobuf input format needs.

The `opentelemetry-proto` package ships only generated Python modules, so the schema is printed back
from their descriptors (messages, enums, oneofs and imports; options and comments are not needed by a
parser). The result is wire-compatible with open-telemetry/opentelemetry-proto (Apache-2.0).
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor, FileDescriptor
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

_SCALARS = {
    FieldDescriptor.TYPE_DOUBLE: "double", FieldDescriptor.TYPE_FLOAT: "float", FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_UINT64: "uint64", FieldDescriptor.TYPE_INT32: "int32", FieldDescriptor.TYPE_FIXED64: "fixed64",
    FieldDescriptor.TYPE_FIXED32: "fixed32", FieldDescriptor.TYPE_BOOL: "bool", FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes", FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_SFIXED32: "sfixed32", FieldDescriptor.TYPE_SFIXED64: "sfixed64",
    FieldDescriptor.TYPE_SINT32: "sint32", FieldDescriptor.TYPE_SINT64: "sint64",
}


def _type(f: FieldDescriptor) -> str:
    if f.type == FieldDescriptor.TYPE_MESSAGE:
        return "." + f.message_type.full_name
    if f.type == FieldDescriptor.TYPE_ENUM:
        return "." + f.enum_type.full_name
    return _SCALARS[f.type]


def _enum(e: EnumDescriptor, indent: str) -> list[str]:
    lines = [f"{indent}enum {e.name} {{"]
    lines += [f"{indent}  {v.name} = {v.number};" for v in e.values]
    return lines + [f"{indent}}}"]


def _field(f: FieldDescriptor, indent: str) -> str:
    label = "repeated " if f.is_repeated else ""
    return f"{indent}{label}{_type(f)} {f.name} = {f.number};"


def _message(m: Descriptor, indent: str) -> list[str]:
    lines = [f"{indent}message {m.name} {{"]
    inner = indent + "  "
    for e in m.enum_types:
        lines += _enum(e, inner)
    for n in m.nested_types:
        lines += _message(n, inner)
    in_oneof = {f.name for o in m.oneofs for f in o.fields}
    for o in m.oneofs:
        lines.append(f"{inner}oneof {o.name} {{")
        lines += [_field(f, inner + "  ") for f in o.fields]
        lines.append(f"{inner}}}")
    lines += [_field(f, inner) for f in m.fields if f.name not in in_oneof]
    return lines + [f"{indent}}}"]


def _file(fd: FileDescriptor) -> str:
    lines = ['syntax = "proto3";', f"package {fd.package};"]
    lines += [f'import "{dep.name}";' for dep in fd.dependencies]
    for e in fd.enum_types_by_name.values():
        lines += _enum(e, "")
    for m in fd.message_types_by_name.values():
        lines += _message(m, "")
    return "\n".join(lines) + "\n"


def write_schema(directory: Path) -> str:
    """Write the trace service's `.proto` and its imports under `directory`; returns the ClickHouse
    `format_schema` value for `ExportTraceServiceRequest`."""
    root = trace_service_pb2.DESCRIPTOR
    todo, seen = [root], set()
    while todo:
        fd = todo.pop()
        if fd.name in seen:
            continue
        seen.add(fd.name)
        path = directory / fd.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_file(fd), encoding="utf-8")
        todo.extend(fd.dependencies)
    return f"{root.name}:ExportTraceServiceRequest"
