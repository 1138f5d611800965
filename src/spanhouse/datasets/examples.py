"""One dataset example, its id, and its JSON-lines form (`spanhouse dataset import` / `export`)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from spanhouse.errors import SpanhouseError

FIELDS = ("id", "input", "expected_output", "metadata", "source")
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_SPAN_ID = re.compile(r"^[0-9a-f]{16}$")
_MAX_PROBLEMS = 20
MAX_ID_LENGTH = 256


@dataclass(frozen=True)
class Example:
    """An example as stored: `input` and `expected_output` are JSON text (`expected_output` is "" until
    someone fills it in); `trace_id` / `span_id` name the production span it came from, or are ""."""

    id: str
    input: str
    expected_output: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    trace_id: str = ""
    span_id: str = ""

    def to_json(self) -> dict[str, Any]:
        """The JSON-lines object: input and expected output as JSON values (null when there is none)."""
        source = {"trace_id": self.trace_id, "span_id": self.span_id} if self.trace_id else None
        return {"id": self.id, "input": _value(self.input), "expected_output": _value(self.expected_output),
                "metadata": dict(self.metadata), "source": source}


def _value(text: str) -> Any:
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text  # stored by another writer, or changed by redaction: given back as the text it is


def source_id(trace_id: str, span_id: str) -> str:
    """The id of the example taken from a span: the same span always gives the same example."""
    return f"{trace_id}:{span_id}"


def content_id(input_json: str) -> str:
    """The id of an example given without one: the same input always gives the same example."""
    return "sha256:" + hashlib.sha256(input_json.encode()).hexdigest()[:32]


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


class DatasetFileError(SpanhouseError):
    """A JSON-lines file with problems; `problems` are `line N: what to fix`."""

    def __init__(self, path: str, problems: list[str]):
        shown = problems[:_MAX_PROBLEMS]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__(f"{path} has {len(problems)} bad line(s); nothing was sent, fix them and run it "
                         "again:\n  " + "\n  ".join(shown) + more)
        self.problems = problems


def parse_lines(lines: Iterable[bytes], path: str) -> list[Example]:
    """Every example of a JSON-lines file (blank lines skipped); raises `DatasetFileError` naming each
    bad line, so that a file is sent whole or not at all."""
    examples: list[Example] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            example = _parse(raw)
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
            continue
        if example.id in seen:
            problems.append(f"line {number}: id {example.id!r} is already on line {seen[example.id]}")
            continue
        seen[example.id] = number
        examples.append(example)
    if problems:
        raise DatasetFileError(path, problems)
    return examples


def _parse(raw: bytes) -> Example:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object {\"input\": ..., \"expected_output\": ..., ...}")
    unknown = sorted(set(obj) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; the fields are {', '.join(FIELDS)}")
    if obj.get("input") is None:
        raise ValueError("\"input\" is missing (the messages or the input variables, any JSON value)")
    input_json = dumps(obj["input"])
    expected = obj.get("expected_output")
    trace_id, span_id = _source(obj.get("source"))
    example_id = obj.get("id")
    if example_id is None:
        example_id = source_id(trace_id, span_id) if trace_id else content_id(input_json)
    elif type(example_id) is int:  # as the store writes an integer attribute, so runs tagged 4711 pair with it
        example_id = str(example_id)
    if not isinstance(example_id, str) or not example_id.strip() or len(example_id) > MAX_ID_LENGTH:
        raise ValueError(f"\"id\" must be a non-empty string (or an integer) of at most {MAX_ID_LENGTH} characters")
    return Example(example_id, input_json, "" if expected is None else dumps(expected),
                   _metadata(obj.get("metadata")), trace_id, span_id)


def _source(source: Any) -> tuple[str, str]:
    if source is None:
        return "", ""
    if not isinstance(source, dict) or set(source) - {"trace_id", "span_id"}:
        raise ValueError("\"source\" must be {\"trace_id\": <32 hex>, \"span_id\": <16 hex>} or null")
    trace_id, span_id = str(source.get("trace_id") or "").lower(), str(source.get("span_id") or "").lower()
    if not _TRACE_ID.match(trace_id) or not _SPAN_ID.match(span_id):
        raise ValueError("\"source\" needs a trace_id of 32 hex digits and a span_id of 16")
    return trace_id, span_id


def _metadata(metadata: Any) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ValueError("\"metadata\" must be an object of names to strings, numbers or booleans")
    out = {}
    for key, value in metadata.items():
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, bool | int | float):
            out[key] = dumps(value)
        else:
            raise ValueError(f"metadata {key!r} must be a string, number or boolean")
    return out


def write_lines(examples: Iterable[Example]) -> Iterator[bytes]:
    for example in examples:
        yield orjson.dumps(example.to_json()) + b"\n"
