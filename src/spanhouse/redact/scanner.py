"""One pass over the text with every detector, then exact matches only for the detectors that fired.

All patterns are compiled once into an `re2.Set`, which answers "which detectors match anywhere in
this text" in a single DFA pass. Only those detectors then run their own RE2 search to find exact
spans, and their validators (Luhn, mod-97, ...) run on those candidates only. Text with nothing
sensitive in it therefore costs one linear scan, whatever the number of detectors.

RE2 runs in time linear in the input for every pattern; an `re2.Set` match cannot fail at match time
once it compiled (its DFA has no "too slow, fall back" exit, unlike a single RE2), so "no hit" really
means no detector matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import re2

from spanhouse.redact.detectors import Detector

# A single RE2 falls back to its NFA when its DFA cache is full (still linear), so the default
# budget suffices; the set has no fallback and flushes its cache instead, so it gets more room.
_REGEX_MAX_MEM = 8 << 20
_SET_MAX_MEM = 64 << 20
_UNANCHORED = re2._Anchor.UNANCHORED


class Finding(NamedTuple):
    """A value to replace: bytes `start:end` of the scanned text, found by `detector`. (A tuple: the
    scanner makes several per text with something to redact, and a tuple is the cheapest to make.)"""

    start: int
    end: int
    detector: Detector


def compile_pattern(pattern: str) -> re2._Regexp:
    """Compile with RE2 and the scanner's options; raises `ValueError` with RE2's message."""
    options = re2.Options()
    options.max_mem = _REGEX_MAX_MEM
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        raise ValueError(f"not a valid RE2 pattern ({exc}): {pattern!r}") from None


class Scanner:
    """Finds every detector's values in UTF-8 bytes.

    Guarantees: `find` returns non-overlapping findings sorted by start; every finding passed its
    detector's validators; work is linear in the text length (one set pass, plus one pass per
    detector that fired)."""

    def __init__(self, detectors: Sequence[Detector]):
        if not detectors:
            raise ValueError("at least one detector is needed")
        self.detectors = tuple(detectors)
        options = re2.Options()
        options.max_mem = _SET_MAX_MEM
        options.log_errors = False
        self._set = re2.Set.SearchSet(options)
        for d in self.detectors:
            self._set.Add(d.pattern)
        self._set.Compile()
        # the binding's low-level calls, skipping the per-match objects of the `re`-like wrapper
        self._set_match = self._set._set.Match
        self._match = [compile_pattern(d.pattern)._regexp.Match for d in self.detectors]

    def any(self, data: bytes) -> bool:
        """True when at least one detector's pattern matches somewhere (validators not run)."""
        return bool(self._set_match(data))

    def find(self, data: bytes) -> list[Finding]:
        hits = self._set_match(data)
        if not hits:
            return []
        found: list[Finding] = []
        end = len(data)
        for i in hits:
            det = self.detectors[i]
            match = self._match[i]
            group = det.group
            pos = 0
            while pos <= end:
                spans = match(_UNANCHORED, data, pos, end)
                whole = spans[0]
                if whole[0] < 0:
                    break
                span = self._validate(det, data, *spans[group])
                if span is not None:
                    found.append(Finding(span[0], span[1], det))
                pos = whole[1] if whole[1] > pos else pos + 1
        return merge(found)

    @staticmethod
    def _validate(det: Detector, data: bytes, start: int, end: int) -> tuple[int, int] | None:
        if start < 0 or end <= start:
            return None
        span: tuple[int, int] | None = (start, end)
        for check in det.validators:
            span = check(data, *span)
            if span is None:
                return None
        return span


def merge(found: Sequence[Finding]) -> list[Finding]:
    """Overlapping findings become one, spanning all of them and labelled by the highest priority."""
    if len(found) < 2:
        return list(found)
    out: list[Finding] = []
    for f in sorted(found, key=lambda f: (f.start, -f.end)):
        if out and f.start < out[-1].end:
            last = out[-1]
            label = last.detector if last.detector.priority >= f.detector.priority else f.detector
            out[-1] = Finding(last.start, max(last.end, f.end), label)
        else:
            out.append(f)
    return out
