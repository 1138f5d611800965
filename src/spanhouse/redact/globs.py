"""Exact names and simple globs (`*` any run of characters, `?` one character), matched with RE2."""

from __future__ import annotations

from collections.abc import Iterable

from spanhouse.redact.scanner import compile_pattern


def glob_to_regex(glob: str) -> str:
    parts = []
    for ch in glob:
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        elif ch.isalnum() or ch == "_":
            parts.append(ch)
        else:
            parts.append("\\" + ch if ord(ch) < 128 else ch)
    return "".join(parts)


def is_glob(text: str) -> bool:
    return "*" in text or "?" in text


class KeyMatcher:
    """Tells whether a name equals one of `patterns` or matches one of its globs. Immutable."""

    def __init__(self, patterns: Iterable[str]):
        patterns = tuple(patterns)
        self.patterns = patterns
        self._exact = frozenset(p for p in patterns if not is_glob(p))
        globs = [p for p in patterns if is_glob(p)]
        self._regex = (
            compile_pattern("(?s:" + "|".join(glob_to_regex(g) for g in globs) + ")") if globs else None
        )

    def __call__(self, name: str) -> bool:
        if name in self._exact:
            return True
        return self._regex is not None and self._regex.fullmatch(name) is not None

    def __bool__(self) -> bool:
        return bool(self.patterns)
