"""Field rules inside request-parameter objects.

Some instrumentations send a whole request as one JSON object (`llm.invocation_parameters`), and the
normalization mappings read canonical attributes out of its members (`user` → `user.id`). A drop, mask
or hash rule on such a canonical attribute must reach the member too, or the hashed `user.id` stands
beside the same id in clear inside the object. The members are those the shipped mappings read
(`objects:` sections), on the spans they read them on: an object read only on some operations
(`only: [model_call]`, e.g. the request body OpenInference records in `input.value` of an LLM span) is
rewritten only on spans of those operations. The object keeps its shape, with the member removed, masked
or replaced by its hash in place.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import orjson

from spanhouse.normalize import load_mappings

Path = tuple[str, ...]
REMOVE = object()
"""What an action returns to remove the member."""
UNREADABLE = object()
"""What `rewrite` returns for a value nested too deeply to read: whether it holds a member cannot be
known, so the caller drops the whole value (fails closed)."""


@lru_cache(maxsize=1)
def object_members() -> dict[str, tuple[tuple[str, Path, frozenset[str] | None], ...]]:
    """Object attribute → (canonical attribute, member path, operations) for every plain member path the
    shipped mappings read (sums of several members are counts, never identifiers, and are left out);
    operations is None when the mappings read the member on any span, else the operations they read it
    on (the union when several mappings read it)."""
    out: dict[str, dict[tuple[str, Path], frozenset[str] | None]] = {}
    for source in load_mappings().sources:
        for obj in source.objects:
            for fld in obj.fields:
                for p in fld.paths:
                    if isinstance(p, str):
                        members = out.setdefault(obj.key, {})
                        member = (fld.to, tuple(p.split(".")))
                        if member in members:
                            before = members[member]
                            only = None if before is None or obj.only is None else before | obj.only
                        else:
                            only = obj.only
                        members[member] = only
    return {key: tuple((to, path, only) for (to, path), only in members.items()) for key, members in out.items()}


def _locate(node: Any, path: Path) -> tuple[dict, str] | None:
    """The dict holding the member at `path` and its key there, trying a dotted key (`metadata.user_id`
    as one key) where the nested one is missing, as the mappings read it."""
    i, n = 0, len(path)
    while i < n and isinstance(node, dict):
        for j in range(n, i, -1):
            key = ".".join(path[i:j])
            if key in node:
                if j == n:
                    return node, key
                node = node[key]
                i = j
                break
        else:
            return None
    return None


def rewrite(value: Any, members: tuple[tuple[Path, Callable[[Any], Any]], ...]) -> tuple[Any, list[Path]]:
    """`value` (a JSON object as text, or a structured map) with each member present replaced by what
    its action returns (`REMOVE` removes it), and the paths acted on. Unchanged
    `value` when no member is present or the text is not a JSON object; `UNREADABLE` when it is nested
    too deeply to read or write back; never changes `value` in place."""
    try:
        return _rewrite(value, members)
    except RecursionError:
        return UNREADABLE, []


def _rewrite(value: Any, members: tuple[tuple[Path, Callable[[Any], Any]], ...]) -> tuple[Any, list[Path]]:
    text = type(value) is str
    if text:
        try:
            node = orjson.loads(value)
        except orjson.JSONDecodeError:
            try:  # integers past 64 bits, or nesting past orjson's 1024 levels (RecursionError here)
                node = json.loads(value)
            except ValueError:
                return value, []
    else:
        node = value
    if not isinstance(node, dict) or not any(_locate(node, path) for path, _ in members):
        return value, []
    if not text:
        node = copy.deepcopy(node)
    done: list[Path] = []
    for path, action in members:
        found = _locate(node, path)
        if found is None:
            continue
        parent, key = found
        new = action(parent[key])
        if new is REMOVE:
            del parent[key]
        else:
            parent[key] = new
        done.append(path)
    if not text:
        return node, done
    try:
        return orjson.dumps(node).decode(), done
    except TypeError:  # an integer past 64 bits again
        return json.dumps(node, ensure_ascii=False, separators=(",", ":")), done


