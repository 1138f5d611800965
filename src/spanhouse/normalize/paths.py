"""Walking nested values: dict/list paths, sums, and items of indexed families sent whole."""

from __future__ import annotations

from typing import Any

from spanhouse.normalize.coerce import to_int
from spanhouse.normalize.formats import loads


def index_key(k: str) -> int:
    return int(k) if k.isdigit() else 1 << 30


def get_path(node: Any, path: tuple[str, ...]) -> Any:
    """Walk `path` through nested dicts/lists; at each step a dotted key (`message.role` as one key,
    as structured OpenInference values carry it) is tried when the nested one is missing."""
    n = len(path)
    if n == 1 and type(node) is dict:
        return node.get(path[0])
    i = 0
    while i < n:
        if isinstance(node, list):
            if not path[i].isdigit() or int(path[i]) >= len(node):
                return None
            node = node[int(path[i])]
            i += 1
            continue
        if not isinstance(node, dict):
            return None
        if path[i] in node:
            node = node[path[i]]
            i += 1
            continue
        for j in range(n, i + 1, -1):
            joined = ".".join(path[i:j])
            if joined in node:
                node = node[joined]
                i = j
                break
        else:
            return None
    return node


def sum_paths(node: Any, paths: tuple[tuple[str, ...], ...]) -> int | None:
    values = [to_int(get_path(node, p)) for p in paths]
    values = [v for v in values if v is not None]
    return sum(values) if values else None


def as_list(node: Any) -> list:
    node = loads(node)
    if isinstance(node, list):
        return node
    if isinstance(node, dict):
        return [node[k] for k in sorted(node, key=index_key) if k.isdigit()]
    return []


def family_item(node: Any, scalars: list, lists: list) -> dict[str, Any]:
    """One element of a family sent whole (an OTLP array of kvlists, or JSON) as the neutral shape the
    converters read; nested (`message: {role}`) and dotted (`message.role`) keys both work.
    `scalars` is [(field, path)], `lists` is [(field, path, [(sub-field, sub-path)])]."""
    node = loads(node)
    item: dict[str, Any] = {}
    for name, path in scalars:
        v = get_path(node, path)
        if v is not None:
            item[name] = v
    for name, path, fields in lists:
        subs = []
        for sub in as_list(get_path(node, path)):
            d = {k: v for k, v in ((k, get_path(sub, p)) for k, p in fields) if v is not None}
            if d:
                subs.append(d)
        if subs:
            item[name] = subs
    return item
