"""Replace detected values inside attribute values: plain text, JSON text and structured values (the
keys of a map value are scanned like its values).

JSON text (message lists, tool arguments, documents) is redacted without breaking it. When the raw text
has no escape sequence at all and shows no candidate, it is returned as sent (escapes such as `\\"`,
`\\/` or `\\u0040` could hide a value from a raw scan). Valid JSON without any escape sequence is
redacted in place: it is scanned through a same-length view in which every byte outside a string, digits
aside, is a NUL (what the parsed path below puts between two strings), and the values found inside
strings are replaced in the raw text (tokens need no escaping). Otherwise (escapes, a value found
outside a string, custom detectors) it is parsed, every string (keys included) and every long integer is
scanned in one joined pass, and the document is re-serialized only if something was replaced; a document
that repeats a key in an object (parsers keep its last value only) is told by its strings outnumbering
the parsed ones, and is parsed again keeping every pair, so each value is scanned and every pair is
written back. Both ways find the same values. In both views a key and its value are joined by NULs
around a colon (`KEY_VALUE`), so the detectors that need a label (`"phone": "..."`, `"SecretAccessKey":
"..."`) see it, while no other pattern can match across two strings. A string inside the document that
is itself JSON with escape sequences (tool-call arguments, a tool's result) is redacted as JSON of its
own, so an escape there hides nothing either. Text that looks like JSON but does not parse (for example
cut by a length limit) is scanned through a same-length view in which escape sequences are blanked, so
positions map back one to one. JSON text may start after any blanks and a byte order mark (kept as
sent). Other text holding a backslash, at the top or as a string of a document, is scanned both as it is
and with its JSON escapes decoded (a value found there is replaced in the raw text, escapes included,
by the token of the decoded value), so escapes written out in plain text (`postgres:\\/\\/app:pw@db`,
`bob\\u0040x\\u002ecom`, `\\n4111 1111 1111 1111`) hide nothing either; text without a backslash is
scanned once.

Fails closed: a value that cannot be scanned (over `max_bytes`, not UTF-8, bytes holding a NUL, nested
too deep, JSON inside JSON more than `_MAX_NESTED_JSON` levels down, or broken JSON whose escapes could
hide a value) is reported as `DROP`, never passed on.

`TextMemo` remembers, for one batch, what `text()` made of each distinct text, so a text repeated
across spans (a system prompt, a conversation history sent again with every call) is scanned once,
and the token of each detected value, so a value quoted in many texts is hashed once.
"""

from __future__ import annotations

import bisect
import copy
import json
import re
from collections import Counter
from functools import lru_cache
from typing import Any

import orjson

from spanhouse.redact.detectors import BUILTIN, LABEL_KEY
from spanhouse.redact.keys import Hasher
from spanhouse.redact.scanner import Finding, Scanner, compile_pattern, merge


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


DROP: Any = _Drop()
"""Returned for a value that cannot be scanned; the caller removes it and records the key."""

_MAX_DEPTH = 64
_MAX_NESTED_JSON = 8
LONG_INT = 10**8
"""Integers whose absolute value is below this cannot hold any detector's value, so are not scanned."""
_FLOAT_DIGITS = 1e19  # whole floats from LONG_INT up to this are scanned as their integer
_ESCAPE = compile_pattern(r"\\(?:u[0-9A-Fa-f]{4}|.)")
_HIDING_ESCAPE = compile_pattern(r"\\/|\\u00[2-7][0-9A-Fa-f]")
_LONG_DIGITS = compile_pattern(r"[0-9]{19}")
_EXPONENT = compile_pattern(r"[0-9][eE][+\-]?[0-9]")
# outside JSON strings only digits (a long integer is scanned) and the colon after a key are kept;
# everything else becomes a NUL
_OUTSIDE_STRINGS = bytes(b if 0x30 <= b <= 0x39 or b == 0x3A else 0 for b in range(256))
KEY_VALUE = "\x00:\x00"
"""What the parsed path puts between a key and what follows it; the in-place view shows a key and its
value as NULs around the colon too, and so does a labelled scan (`TextRedactor.text` with a label).
Label detectors accept `\x00+:\x00+` between label and value."""
_KEY_VALUE_BYTES = KEY_VALUE.encode()
# between two strings of the parsed path when a number not scanned lay between them: in the in-place
# view its digits stand there, and a label detector's gap cannot cross a digit (nor a newline)
_NUMBER_BETWEEN = "\x00\n\x00"


@lru_cache(maxsize=4096)
def is_label(key: str) -> bool:
    """Whether `key` may be the label of its value for a detector (`password`, `x-api-key`, `phone`):
    only then is the value scanned after its key. Keys repeat, so the answer is remembered."""
    return LABEL_KEY.search(key) is not None


def long_number(v: Any) -> bool:
    """True for a number that may hold a detector's value: an integer of 9 digits or more, or a
    float holding one (spreadsheets and JavaScript hand card and phone numbers over as floats)."""
    t = type(v)
    if t is int:
        return abs(v) >= LONG_INT
    return t is float and LONG_INT <= abs(v) < _FLOAT_DIGITS and v.is_integer()


def _digits_of(v: Any) -> str:
    return str(v) if type(v) is str else str(int(v))


class _TooDeep(Exception):
    pass


class TextRedactor:
    """Redacts values with one scanner and one hasher. Thread-safe; holds no per-call state.

    `counts` passed to the methods is incremented by detector name for every replaced value."""

    def __init__(self, scanner: Scanner, hasher: Hasher, max_bytes: int = 4 << 20):
        self.scanner = scanner
        self.hasher = hasher
        self.max_bytes = max_bytes
        # custom patterns may match a NUL or a run of them, so only built-in detectors see the view
        self._in_place = all(d in BUILTIN for d in scanner.detectors)
        self._found: dict[tuple[int, bytes, bool], bytes] | None = None

    def for_batch(self) -> TextRedactor:
        """The same redactor with a hasher that remembers the tokens it made, for one batch's texts:
        the same email or phone number quoted in many texts is hashed once."""
        twin = copy.copy(self)
        twin.hasher = _TokenMemo(self.hasher)
        # a found value's bytes as sent → its token: skips decoding and normalizing the repeats too
        twin._found = {}
        return twin

    # --- any attribute value ----------------------------------------------------------------

    def value(self, v: Any, counts: Counter, depth: int = 0, label: str | None = None) -> Any:
        """The redacted value (the same object when nothing changed), or `DROP`. `label` is the key
        the value is held under when `is_label` found a label in it (see `text`)."""
        t = type(v)
        if t is str:
            return self.text(v, counts, label)
        if t is int or t is float:
            return self._number(v, counts, label) if long_number(v) else v
        if t is bool or v is None:
            return v
        if depth >= _MAX_DEPTH:
            return DROP
        if t is bytes:
            # only bytes that are UTF-8 text are scanned; anything else is binary to the detectors.
            # A NUL marks it too: UTF-16 or UTF-32 text of ASCII decodes as UTF-8 with a NUL between
            # its letters, where no detector sees an e-mail
            if b"\x00" in v:
                return DROP
            try:
                decoded = v.decode("utf-8")
            except UnicodeDecodeError:
                return DROP
            out = self.text(decoded, counts)
            return v if out is decoded else out
        if t is list or t is tuple:
            items = [self.value(x, counts, depth + 1, label) for x in v]
            if any(x is DROP for x in items):
                return DROP
            return v if all(a is b for a, b in zip(items, v)) else items
        if t is dict:
            # keys of a map (an OTLP kvlist) are scanned too: they are text the sender chose
            new = {}
            same = True
            for k, x in v.items():
                nk = self.text(k, counts) if type(k) is str else DROP
                nx = self.value(x, counts, depth + 1, k if nk is not DROP and is_label(k) else None)
                if nk is DROP or nx is DROP:
                    return DROP
                if nx is not x or nk != k:
                    same = False
                new[nk] = nx
            return v if same else new
        return DROP

    def text(self, s: str, counts: Counter, label: str | None = None) -> Any:
        """Redacted text, the same `s` when nothing was found, or `DROP`. With `label` (the attribute
        or map key the text is the value of) the text is scanned after its key, as a JSON value is
        (`KEY_VALUE` between them), so the key is the label the detectors that need one read:
        `db.password`, `x-api-key`, `user.phone`. JSON text is scanned as before: its own keys label."""
        return self._text(s, counts, 0, label)

    def _text(self, s: str, counts: Counter, nested: int, label: str | None = None) -> Any:
        try:
            data = s.encode("utf-8")
        except UnicodeEncodeError:
            return DROP
        if len(data) > self.max_bytes:
            return DROP
        head = s[:64].lstrip()[:1]  # `_json_at`, its common cases inline
        if head == "{" or head == "[":
            return self._json(s, data, counts, nested)
        if head == "\ufeff" or (not head and len(s) > 64):
            at = _json_at(s)
            if at == 0:
                return self._json(s, data, counts, nested)
            if at > 0:  # after a byte order mark, which the parsers refuse: kept as it was
                body = s[at:]
                out = self._json(body, body.encode("utf-8"), counts, nested)
                return s if out is body else out if out is DROP else s[:at] + out
        found = self.scanner.find(data) if label is None else self._find_labelled(label, data)
        if b"\\" in data:
            return self._escaped_text(s, data, found, counts)
        if not found:
            return s
        return self._replace(data, found, counts).decode("utf-8")

    def _escaped_text(self, s: str, data: bytes, found: list[Finding], counts: Counter) -> Any:
        """Plain text with backslashes: JSON escapes written out in it (`postgres:\\/\\/app:pw@db`,
        `bob\\u0040x\\u002ecom`, `\\n4111 1111 1111 1111`) could hide a value from the raw scan, so
        the text is also scanned with them decoded and what either scan finds is replaced."""
        decoded = _unescape_bytes(data)
        # most such text decodes to nothing to find; the way back is worked out only when needed
        if decoded is not data and self.scanner.any(decoded):
            view = _Unescaped(data)
            more = self.scanner.find(view.data)
            if more:
                found = merge(found + [view.raw(f) for f in more])
        if not found:
            return s
        return self._replace(data, found, counts, unescape=True).decode("utf-8")

    # --- pieces -----------------------------------------------------------------------------

    def _replace(self, data: bytes, found: list[Finding], counts: Counter, unescape: bool = False) -> bytes:
        out, pos = [], 0
        memo = self._found
        for f in found:
            det = f.detector
            chunk = data[f.start : f.end]
            key = (id(det), chunk, unescape)
            token = memo.get(key) if memo is not None else None
            if token is None:
                raw = chunk.decode("utf-8", "replace")
                if unescape:
                    raw = _unescape(raw)  # the token of the value, not of how it was escaped
                token = self.hasher.token(det.token, det.normalize(raw)).encode()
                if memo is not None:
                    memo[key] = token
            out.append(data[pos : f.start])
            out.append(token)
            counts[det.name] += 1
            pos = f.end
        out.append(data[pos:])
        return b"".join(out)

    def _find_labelled(self, label: str, data: bytes) -> list[Finding]:
        """The findings in `data` scanned after `label` and `KEY_VALUE`, at their places in `data`
        (those in the label are left out: a key is scanned on its own)."""
        head = label.encode("utf-8", "surrogatepass") + _KEY_VALUE_BYTES
        n = len(head)
        return [Finding(f.start - n, f.end - n, f.detector) for f in self.scanner.find(head + data) if f.start >= n]

    def _number(self, n: int | float, counts: Counter, label: str | None = None) -> Any:
        digits = _digits_of(n)
        data = digits.encode()
        found = self.scanner.find(data) if label is None else self._find_labelled(label, data)
        if not found:
            return n
        det = found[0].detector
        counts[det.name] += 1
        return self.hasher.token(det.token, det.normalize(digits))

    def _json(self, s: str, data: bytes, counts: Counter, nested: int = 0) -> Any:
        if b"\\" not in data:
            # a float in exponent form (4.111111111111111E15, as Java writes doubles) hides its digits
            # from the raw scan: such documents go on to the parsed path
            if not self.scanner.any(data) and _EXPONENT.search(data) is None:
                return s
            if self._in_place:
                out = self._json_in_place(s, data, counts)
                if out is not None:
                    return out
        try:
            if _LONG_DIGITS.search(data) is not None:
                raise orjson.JSONDecodeError("", "", 0)  # orjson reads integers past 64 bits as floats
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            try:
                doc = json.loads(s)
            except (ValueError, RecursionError):
                return self._broken_json(data, counts)
        leaves = _leaves_of(doc)
        if leaves is not None and len(leaves.items) - leaves.longs != _strings_in(data):
            # a repeated key: the parsers keep its last value only, so keep every pair instead
            try:
                doc = json.loads(s, object_pairs_hook=_Pairs)
            except (ValueError, RecursionError):
                return self._broken_json(data, counts)
            leaves = _leaves_of(doc)
        if leaves is None:
            return self._broken_json(data, counts)
        if not leaves.items:
            return s
        replaced = list(leaves.items)
        texts = [_digits_of(x) for x in replaced]
        changed = False
        for i, t in enumerate(texts):
            if "\\" not in t:
                continue
            if _json_at(t) >= 0:
                # JSON inside a string: its own escapes could hide a value from the joined view
                if nested >= _MAX_NESTED_JSON:
                    return DROP
                inner = self._text(t, counts, nested + 1)
                if inner is DROP:
                    return DROP
                if inner is not t:
                    replaced[i] = inner
                    changed = True
                texts[i] = ""
            else:
                # text with escapes written out in it (`postgres:\\/\\/app:pw@db`): scanned with them
                # decoded too, then what is left stays in the joined view, next to its key
                inner = self._text(t, counts, nested + 1)
                if inner is not t and inner is not DROP:  # DROP: a lone surrogate, scanned as before
                    replaced[i] = texts[i] = inner
                    changed = True
        joined = "".join(x for pair in zip(leaves.before, texts) for x in pair).encode("utf-8", "surrogatepass")
        found = self.scanner.find(joined)
        if not found and not changed:
            return s
        # offsets per leaf are needed only now that something was found (separators are ASCII)
        segments = [t.encode("utf-8", "surrogatepass") for t in texts]
        starts, pos = [], 0
        for sep, seg in zip(leaves.before, segments):
            pos += len(sep)
            starts.append(pos)
            pos += len(seg)
        per_leaf: dict[int, list[Finding]] = {}
        for f in found:
            i = bisect.bisect_right(starts, f.start) - 1
            base = starts[i]
            per_leaf.setdefault(i, []).append(Finding(f.start - base, f.end - base, f.detector))
        for i, fs in per_leaf.items():
            leaf = replaced[i]
            if type(leaf) is str:
                replaced[i] = self._replace(segments[i], fs, counts).decode("utf-8", "surrogatepass")
            else:
                det = fs[0].detector
                counts[det.name] += len(fs)
                replaced[i] = self.hasher.token(det.token, det.normalize(_digits_of(leaf)))
        new_doc = _rebuild(doc, iter(replaced))
        if leaves.pairs:
            return _dumps_pairs(new_doc)
        try:
            return orjson.dumps(new_doc).decode("utf-8")
        except (orjson.JSONEncodeError, TypeError):
            try:
                return json.dumps(new_doc)
            except (ValueError, TypeError):
                return DROP

    def _json_in_place(self, s: str, data: bytes, counts: Counter) -> Any:
        """What `_json` returns for valid JSON without escapes, or None to take the parsed path."""
        parts = data.split(b'"')
        outside = parts[0::2]
        # without escapes every quote delimits a string: odd parts are string contents; nesting
        # deeper than the parsed path accepts is left to it
        if len(parts) % 2 == 0:
            return None
        structure = b"".join(outside)
        if structure.count(b"[") + structure.count(b"{") > _MAX_DEPTH:
            return None
        if _EXPONENT.search(structure) is not None:
            return None  # a float such as 4.111111111111111e+15 holds digits this view cannot see
        try:
            orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        parts[0::2] = [p.translate(_OUTSIDE_STRINGS) for p in outside]
        found = self.scanner.find(b"\x00".join(parts))
        if not found:
            return s
        for f in found:
            if data.count(b'"', 0, f.start) % 2 == 0 or data.find(b'"', f.start, f.end) >= 0:
                return None  # a long integer, or a match across strings: the parsed path decides
        return self._replace(data, found, counts).decode("utf-8")

    def _broken_json(self, data: bytes, counts: Counter) -> Any:
        if _HIDING_ESCAPE.search(data) is not None:
            return DROP
        view = _ESCAPE.sub(_blank_escape, data)
        found = self.scanner.find(view)
        if not found:
            return data.decode("utf-8")
        return self._replace(data, found, counts).decode("utf-8")


class TextMemo:
    """`TextRedactor.text` for the texts of one batch, each distinct text computed once.

    Guarantees: `text(s, counts, label)` returns what `TextRedactor.text(s, counts, label)` returns —
    `s` itself when nothing changed, the same redacted text or `DROP` otherwise — and adds the same
    detections to `counts`, in the same order. Meant to live no longer than the batch whose values it holds."""

    __slots__ = ("redactor", "_done")

    def __init__(self, redactor: TextRedactor):
        self.redactor = redactor.for_batch()
        self._done: dict[Any, tuple[Any, Counter]] = {}  # text, or (label, text)

    def text(self, s: str, counts: Counter, label: str | None = None) -> Any:
        memo_key: Any = s if label is None else (label, s)
        done = self._done.get(memo_key)
        if done is None:
            found: Counter = Counter()
            out = self.redactor.text(s, found) if label is None else self.redactor.text(s, found, label)
            done = self._done[memo_key] = (_SAME if out is s else out, found)
        out, found = done
        if found:
            # Counter.update checks for a Mapping through the ABC machinery on every call
            for name, n in found.items():
                counts[name] += n
        return s if out is _SAME else out


_SAME: Any = object()


class _TokenMemo:
    """`Hasher.token` remembered per (label, value), for as long as the batch's `TextMemo` lives
    (which already holds the batch's texts). `token` is all a `TextRedactor` asks of its hasher."""

    __slots__ = ("_hasher", "_tokens")

    def __init__(self, hasher: Hasher):
        self._hasher = hasher
        self._tokens: dict[tuple[str, str], str] = {}

    def token(self, label: str, value: str) -> str:
        key = (label, value)
        token = self._tokens.get(key)
        if token is None:
            token = self._tokens[key] = self._hasher.token(label, value)
        return token


def _json_at(s: str) -> int:
    """Where the JSON text `s` starts: 0 when it opens with `{` or `[` after blanks (JSON's own
    whitespace, which the parser takes), the position after a byte order mark before it, or -1 when
    `s` is no JSON text."""
    head = s[:64].lstrip()[:1]
    if head == "{" or head == "[":
        return 0
    if head != "\ufeff" and (head or len(s) <= 64):
        return -1
    rest = s.lstrip()  # rare: a byte order mark, or more than 64 blanks
    cut = 0
    if rest[:1] == "\ufeff":
        rest = rest[1:]
        cut = len(s) - len(rest)
    return cut if rest.lstrip()[:1] in ("{", "[") else -1


# the standard `re` (a literal backslash then one fixed-length alternative: linear), whose `finditer` and
# `sub` cost far less per match than the RE2 binding's
_JSON_ESCAPE = re.compile(rb"\\(?:u[0-9A-Fa-f]{4}|[\"\\/bfnrt])")
_SIMPLE_ESCAPES = {b'\\"': b'"', b"\\\\": b"\\", b"\\/": b"/", b"\\b": b"\b", b"\\f": b"\f", b"\\n": b"\n",
                   b"\\r": b"\r", b"\\t": b"\t"}


def _decode_escape(escape: bytes) -> bytes:
    """The UTF-8 of what one JSON escape stands for; a blank for a NUL or half a surrogate pair (so the
    view never holds a NUL, the joined scan's separator, nor bytes that are not UTF-8)."""
    if len(escape) == 2:
        return _SIMPLE_ESCAPES[escape]
    cp = int(escape[2:], 16)
    if cp == 0 or 0xD800 <= cp < 0xE000:
        return b" "
    return chr(cp).encode("utf-8")


def _unescape(text: str) -> str:
    """`text` with its JSON escapes decoded, as `_Unescaped` shows them to the scanner."""
    if "\\" not in text:
        return text
    return _unescape_bytes(text.encode("utf-8")).decode("utf-8", "replace")


def _unescape_bytes(data: bytes) -> bytes:
    """`_Unescaped(data).data` without the way back (`data` itself when it has no escape)."""
    view, n = _JSON_ESCAPE.subn(_decode_match, data)
    return view if n else data


def _decode_match(m: Any) -> bytes:
    escape = m.group()
    return _SIMPLE_ESCAPES.get(escape) or _decode_escape(escape)


class _Unescaped:
    """Plain text with its JSON escapes decoded (`data`; the text itself when it has none), and the way
    back: a finding in the decoded text maps to the raw bytes it came from, whole escapes included."""

    __slots__ = ("data", "_at", "_raw_at")

    def __init__(self, raw: bytes):
        parts: list[bytes] = []
        # breakpoints: at[i] in the decoded text is raw_at[i] in the raw text; odd i starts an escape,
        # even i > 0 ends one
        at, raw_at = [0], [0]
        pos = out = 0
        for m in _JSON_ESCAPE.finditer(raw):
            start, end = m.span()
            parts.append(raw[pos:start])
            out += start - pos
            char = _decode_escape(m.group())
            at.append(out)
            raw_at.append(start)
            parts.append(char)
            out += len(char)
            at.append(out)
            raw_at.append(end)
            pos = end
        if pos == 0:
            self.data = raw
        else:
            parts.append(raw[pos:])
            self.data = b"".join(parts)
        self._at, self._raw_at = at, raw_at

    def raw(self, f: Finding) -> Finding:
        return Finding(self._raw_pos(f.start, False), self._raw_pos(f.end - 1, True), f.detector)

    def _raw_pos(self, x: int, end: bool) -> int:
        """Where byte `x` of the decoded text comes from in the raw text: its start, or with `end` the
        position after it (an escape is taken whole)."""
        i = bisect.bisect_right(self._at, x) - 1
        if i % 2:
            return self._raw_at[i + 1] if end else self._raw_at[i]
        return self._raw_at[i] + x - self._at[i] + end


def _blank_escape(m: Any) -> bytes:
    """Six letters for an escaped Latin letter (so `jos\\u00e9@x.es` is still one email), else blanks."""
    text = m.group()
    if len(text) == 6:
        ch = chr(int(text[2:], 16))
        if ch.isalpha() and ord(ch) < 0x250:
            return b"a" * 6
    return b" " * len(text)


class _Leaves:
    """The strings (keys included) and long integers of a parsed JSON document in document order,
    each with what the joined view puts before it: a NUL, `KEY_VALUE` after a key, and a newline when
    a number that is not scanned lay in between."""

    __slots__ = ("items", "before", "longs", "pairs", "_after_key", "_number")

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.before: list[str] = []
        self.longs = 0  # how many of `items` are numbers
        self.pairs = False  # an object is held as `_Pairs`
        self._after_key = False
        self._number = False

    def leaf(self, x: Any) -> None:
        sep = KEY_VALUE if self._after_key else "\x00"
        if self._number:
            sep += _NUMBER_BETWEEN
        self.before.append(sep if self.items else "")
        self.items.append(x)
        self._after_key = self._number = False

    def key(self, k: str) -> None:
        self.leaf(k)
        self._after_key = True

    def number(self) -> None:
        self._number = True


def _leaves_of(doc: Any) -> _Leaves | None:
    """The leaves of a parsed JSON document, or None when it nests deeper than can be scanned."""
    leaves = _Leaves()
    try:
        _collect(doc, leaves, 0)
    except _TooDeep:
        return None
    return leaves


def _collect(node: Any, leaves: _Leaves, depth: int) -> None:
    """Fill `leaves` from a parsed JSON document, in document order."""
    if depth > _MAX_DEPTH:
        raise _TooDeep
    t = type(node)
    if t is str:
        leaves.leaf(node)
    elif t is int or t is float:
        if long_number(node):
            leaves.leaf(node)
            leaves.longs += 1
        else:
            leaves.number()
    elif t is list:
        for x in node:
            _collect(x, leaves, depth + 1)
    elif t is dict:
        for k, x in node.items():
            leaves.key(k)
            _collect(x, leaves, depth + 1)
    elif t is _Pairs:
        leaves.pairs = True
        for k, x in node:
            leaves.key(k)
            _collect(x, leaves, depth + 1)


def _rebuild(node: Any, leaves: Any) -> Any:
    """`node` with its leaves taken, in `_collect` order, from the iterator `leaves`."""
    t = type(node)
    if t is str:
        return next(leaves)
    if t is int or t is float:
        return next(leaves) if long_number(node) else node
    if t is list:
        return [_rebuild(x, leaves) for x in node]
    if t is dict:
        out = {}
        for _k, x in node.items():
            key = next(leaves)
            out[key] = _rebuild(x, leaves)
        return out
    if t is _Pairs:
        pairs = _Pairs()
        for _k, x in node:
            key = next(leaves)
            pairs.append((key, _rebuild(x, leaves)))
        return pairs
    return node


class _Pairs(list):
    """A JSON object as the list of its (key, value) pairs: what `json.loads` makes of an object with
    `object_pairs_hook=_Pairs`, for a document that repeats a key (a dict keeps its last value only)."""

    __slots__ = ()


def _strings_in(data: bytes) -> int:
    """How many strings (keys included) valid JSON text holds: its quotes that no backslash escapes,
    by two. Pairs of backslashes are escaped backslashes (JSON has backslashes inside strings only)."""
    data = data.replace(b"\\\\", b"")
    return (data.count(b'"') - data.count(b'\\"')) // 2


def _dumps_pairs(node: Any) -> Any:
    """JSON text of a document whose objects may be `_Pairs`, every pair written, or `DROP`."""
    for ensure_ascii in (False, True):
        out: list[str] = []
        try:
            _write_pairs(node, out, ensure_ascii)
            text = "".join(out)
            text.encode("utf-8")
        except UnicodeEncodeError:
            continue  # a lone surrogate: written as an escape instead
        except (ValueError, TypeError):
            return DROP
        return text
    return DROP


def _write_pairs(node: Any, out: list[str], ensure_ascii: bool) -> None:
    t = type(node)
    if t is _Pairs or t is dict:
        out.append("{")
        for i, (k, x) in enumerate(node if t is _Pairs else node.items()):
            if i:
                out.append(",")
            out.append(json.dumps(k, ensure_ascii=ensure_ascii))
            out.append(":")
            _write_pairs(x, out, ensure_ascii)
        out.append("}")
    elif t is list:
        out.append("[")
        for i, x in enumerate(node):
            if i:
                out.append(",")
            _write_pairs(x, out, ensure_ascii)
        out.append("]")
    else:
        out.append(json.dumps(node, ensure_ascii=ensure_ascii))
