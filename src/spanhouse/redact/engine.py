"""The redaction core: choose a policy for a span, apply field rules, content rules and detectors to
its attribute maps, and write down what was done.

The same `Redactor` runs in the `genai_redact` processor (on `SpanBatch` columns) and in-app in
`spanhouse.sdk` (on OpenTelemetry SDK spans before export).

Per attribute, in this order: a field rule naming the key (drop, mask, hash, truncate, keep), or else a
drop, mask or hash rule naming the canonical attribute that the key is a foreign or deprecated form of
(`langfuse.user.id` and `mlflow.trace.user` are hashed by the rule on `user.id`) →
metadata keys stay as sent → under `metadata_only`, content keys are dropped (documents keep ids and
scores) → under `redacted` and `metadata_only`, detectors replace sensitive values in what is left →
`truncate` cuts the result. Under `full` only field rules act.

Then, per map: when a detector changed a key, the metadata keys that are its copy get the same
treatment (`genai_normalize` copies `ai.response.id` into `gen_ai.response.id`, `agent_name` into
`gen_ai.agent.name`, ...): one holding the same value gets the same replacement, one the mappings
fill from that key in another form (decoded, read from a member) is scanned. Both are recorded.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import orjson

from spanhouse import semconv as sc
from spanhouse.normalize import load_mappings
from spanhouse.otlp.values import as_string
from spanhouse.redact import content
from spanhouse.redact.detectors import BUILTIN, custom
from spanhouse.redact.globs import KeyMatcher
from spanhouse.redact.keys import Hasher
from spanhouse.redact.members import REMOVE, UNREADABLE, object_members, rewrite
from spanhouse.redact.scanner import Scanner
from spanhouse.redact.settings import MASK, STRICTNESS, FieldAction, FieldRule, Policy, RedactionSettings
from spanhouse.redact.text import DROP, LONG_INT, TextMemo, TextRedactor, is_label, long_number

log = logging.getLogger(__name__)

# per-key decisions
_KEEP, _SCAN, _DROP, _DOCS, _MEMBERS = "keep", "scan", "drop", "docs", "members"
_DETECTION_PREFIX = sc.SPANHOUSE_REDACTION_DETECTIONS + "."
_RECORD_LISTS = (
    ("dropped", sc.SPANHOUSE_REDACTION_DROPPED_KEYS),
    ("masked", sc.SPANHOUSE_REDACTION_MASKED_KEYS),
    ("hashed", sc.SPANHOUSE_REDACTION_HASHED_KEYS),
    ("truncated", sc.SPANHOUSE_REDACTION_TRUNCATED_KEYS),
)
_POLICIES = {p.value: p for p in Policy}
_REMOVING = (FieldAction.DROP, FieldAction.MASK, FieldAction.HASH)
STATUS_MESSAGE = "status:message"
"""How a span's status message appears in the record's key lists."""
SPAN_NAME = "span:name"
"""How a span's name appears in the record's key lists."""
BODY = "body"
"""How a log record's body appears in the record's key lists."""
EVENT_NAME = "event:name"
"""How a span event's name appears in the record's key lists."""
SPAN_TRACE_STATE = "span:trace_state"
LINK_TRACE_STATE = "link:trace_state"
RESOURCE_SCHEMA_URL = "resource:schema_url"
SCOPE_NAME = "scope:name"
SCOPE_VERSION = "scope:version"
SCOPE_SCHEMA_URL = "scope:schema_url"
LOG_SEVERITY_TEXT = "log:severity_text"
LOG_EVENT_NAME = "log:event_name"
KEY = "key:"
"""Prefix of an attribute key in which a detector fired: `key:` + the key as redacted (after `resource:`,
`event:`, ... for keys outside the span's own attributes). The key lists never hold a key as sent
unless no detector fired in it."""
UNSCANNABLE_KEY = "key:<UNSCANNABLE>"
"""How a key that cannot be scanned (and so was dropped with its value) appears in the key lists."""
# known attribute names are never rewritten (a detector cannot fire in them; this keeps them exact)
_KNOWN_KEYS = frozenset(sc.ATTRIBUTE_TYPES) | frozenset(sc.RENAMED) | content.METADATA_KEYS
# deprecated names of an attribute, so a rule on the current name also sees older senders
_OLD_NAMES: dict[str, tuple[str, ...]] = {}
for _old, _new in sc.RENAMED.items():
    _OLD_NAMES[_new] = _OLD_NAMES.get(_new, ()) + (_old,)


class Record:
    """What redaction did to one span: its policy, detections by detector, and the keys dropped,
    masked, hashed or truncated (names only, never values; a key in which a detector fired is named
    as redacted). Keys outside the span's own attributes are prefixed with where they were:
    `resource:`, `scope:`, `event:`, `link:`."""

    __slots__ = ("policy", "counts", "dropped", "masked", "hashed", "truncated")

    def __init__(self, policy: Policy):
        self.policy = policy
        self.counts: Counter = Counter()
        self.dropped: dict[str, None] = {}
        self.masked: dict[str, None] = {}
        self.hashed: dict[str, None] = {}
        self.truncated: dict[str, None] = {}

    def __bool__(self) -> bool:
        """True when something was detected, dropped, masked, hashed or truncated."""
        return bool(self.counts or self.dropped or self.masked or self.hashed or self.truncated)

    def extend(self, other: Record) -> None:
        self.counts.update(other.counts)
        for name, _ in _RECORD_LISTS:
            getattr(self, name).update(getattr(other, name))

    def write(self, attrs: dict[str, Any]) -> None:
        """Add the record to a span's attributes, merged with a record already there (for example
        from in-app redaction): the stricter policy, counts added, key lists joined."""
        policy = self.policy
        old = _POLICIES.get(attrs.get(sc.SPANHOUSE_REDACTION_POLICY))
        if old is not None and STRICTNESS[old] > STRICTNESS[policy]:
            policy = old
        attrs[sc.SPANHOUSE_REDACTION_POLICY] = policy.value
        for detector, n in self.counts.items():
            key = _DETECTION_PREFIX + detector
            prev = attrs.get(key)
            attrs[key] = n + (prev if type(prev) is int else 0)
        for name, key in _RECORD_LISTS:
            keys = getattr(self, name)
            if keys:
                prev = attrs.get(key)
                merged = dict.fromkeys(prev) if isinstance(prev, list) else {}
                merged.update(keys)
                attrs[key] = list(merged)


class Redactor:
    """Applies `RedactionSettings` to attribute maps. Thread-safe; compiled once.

    Guarantees: under `redacted` and `metadata_only` every string value outside the metadata keys is
    scanned, or dropped when it cannot be (fails closed), and so is every key that is not a known
    attribute name (a key in which a detector fires is replaced by its redacted form, others stay
    exact; the record never lists a key as sent in which a detector fired); numbers, and metadata
    values, are never altered by detectors, except a metadata value that is a copy of a key a
    detector changed (see the module's docstring); maps are never changed in place — a changed map
    is a new dict.

    The methods that scan take an optional `memo` (`memo()`, one per batch): a text seen before in
    the batch is then not scanned again. Results are the same with or without it."""

    def __init__(self, settings: RedactionSettings, *, owner: str = "genai_redact"):
        self.settings = settings
        detectors = [d for d in BUILTIN if d.name in settings.detectors]
        detectors += [custom(p.name, p.regex, p.group) for p in settings.patterns]
        self.scanner = Scanner(detectors) if detectors else None
        self.hasher = Hasher(settings.hash_key, settings.token_length, owner=owner)
        self.text = (
            TextRedactor(self.scanner, self.hasher, settings.max_value_bytes) if self.scanner else None
        )
        self._rules = [
            (tuple((k, KeyMatcher(_as_list(v))) for k, v in r.when.items()), r.policy) for r in settings.rules
        ]
        self._fields = [(KeyMatcher(f.keys), f) for f in settings.fields]
        removing = any(f.action in _REMOVING for f in settings.fields)
        self._canonical = canonical_names() if removing else {}
        self._objects = object_members() if removing else {}
        self._members: dict[tuple[Policy, str], tuple[tuple, dict, str]] = {}
        self._content = content.content_matcher()
        self._doc_fields = content.document_metadata_fields()
        self._event_meta = content.message_event_metadata()
        self._meta_words = _metadata_words()
        self._copies = copy_targets()
        self._decisions: dict[tuple[Policy, str], tuple[str, FieldRule | None]] = {}
        self._by_alias: set[tuple[Policy, str]] = set()
        self._plans: dict[tuple[Policy, tuple[str, ...]], Any] = {}
        self._metas: dict[tuple[Policy, tuple[str, ...]], tuple[str, ...]] = {}
        self._keys: dict[str, tuple[Any, Counter | None]] = {}

    def memo(self) -> TextMemo | None:
        """A memo for the texts of one batch (None when no detector is configured)."""
        return TextMemo(self.text) if self.text is not None else None

    # --- policy -----------------------------------------------------------------------------

    def policy_for(self, attrs: Mapping[str, Any], resource: Mapping[str, Any]) -> Policy:
        """The policy of the first rule whose conditions all hold, else `default_policy`."""
        for conditions, policy in self._rules:
            if all(_holds(key, matcher, attrs, resource) for key, matcher in conditions):
                return policy
        return self.settings.default_policy

    # --- attribute maps ---------------------------------------------------------------------

    def attributes(
        self, attrs: dict[str, Any], policy: Policy, record: Record, where: str = "",
        memo: TextMemo | None = None,
    ) -> dict[str, Any]:
        """`attrs` redacted under `policy` (the same dict when nothing changed)."""
        changed: dict[str, Any] | None = None
        detected: list[str] | None = None  # keys a detector changed
        renamed: dict[str, str] | None = None
        moved = False
        op = attrs.get(sc.GEN_AI_OPERATION_NAME)
        for key, decision, rule, new_key, label in self._plan(attrs, policy):
            value = attrs[key]
            name = key
            if new_key is not None:
                # a detector fired in the key itself: the value goes under the redacted key
                if new_key[0] is DROP:
                    record.dropped[where + UNSCANNABLE_KEY] = None
                    if changed is None:
                        changed = {}
                    changed[key] = DROP
                    continue
                name = new_key[0]
                for detector, n in new_key[1].items():
                    record.counts[detector] += n
                record.masked[where + KEY + name] = None
                if renamed is None:
                    renamed = {}
                renamed[key] = name
            if decision is _SCAN and rule is None:
                t = type(value)
                # numbers that cannot hold a detector's value, inline: most scanned keys are counts
                if t is bool or (t is int and -LONG_INT < value < LONG_INT) or (t is float and not long_number(value)):
                    continue
                if t is str and memo is not None:
                    new = memo.text(value, record.counts, label)
                    if new is DROP:
                        record.dropped[where + name] = None
                    elif new is not value:
                        record.masked[where + name] = None
                else:
                    new = self._one(key, value, policy, record, where, memo, name, op, label)
                if new is not value:
                    if detected is None:
                        detected = []
                    detected.append(key)
            else:
                new = self._one(key, value, policy, record, where, memo, name, op, label)
            if new is not value:
                if changed is None:
                    changed = {}
                changed[key] = new
                moved = moved or isinstance(new, _Moved)
        if changed is None and renamed is None:
            return attrs
        if changed is None:
            changed = {}
        if detected is not None:
            self._copied(attrs, changed, detected, policy, record, where, memo)
        if not moved and renamed is None:
            out = dict(attrs)
            for key, new in changed.items():
                if new is DROP:
                    del out[key]
                else:
                    out[key] = new
            return out
        # a value moved to another key takes the place of the key it came from; the value of the key
        # the rule names first wins over those of keys it names later and of foreign forms (which may
        # be encoded differently)
        named: dict[str, _Moved] = {}
        for new in changed.values():
            if isinstance(new, _Moved):
                best = named.get(new.target)
                if best is None or new.rank < best.rank:
                    named[new.target] = new
        out = {}
        for key, value in attrs.items():
            new = changed.get(key, value)
            if isinstance(new, _Moved):
                if new.target not in attrs and new.target not in out:
                    out[new.target] = named[new.target].value
            elif new is not DROP:
                out[renamed.get(key, key) if renamed else key] = new
        return out

    def _copied(self, attrs: dict[str, Any], changed: dict[str, Any], detected: list[str], policy: Policy,
                record: Record, where: str, memo: TextMemo | None) -> None:
        """Add to `changed` the metadata keys of `attrs` that copy a key a detector changed: the same
        value gets the same replacement; a key the mappings fill from it in another form is scanned."""
        by_value: dict[Any, str] = {}
        copies: set[str] = set()
        for key in detected:
            sent = attrs[key]
            if type(sent) is str or type(sent) is int:
                by_value.setdefault(sent, key)
            copies.update(self._copies.get(key, ()))
        for meta in self._metadata_keys(attrs, policy):
            value = attrs[meta]
            t = type(value)
            if meta in changed or t is bool or t is float:
                continue
            key = by_value.get(value) if t is str or t is int else None
            if key is not None:
                new = changed[key]
            elif meta in copies and t is not int:
                new = self._scan(value, record, memo)
            else:
                continue
            if new is DROP:
                record.dropped[where + meta] = None
            elif new is not value:
                record.masked[where + meta] = None
            else:
                continue
            changed[meta] = new

    def _metadata_keys(self, attrs: dict[str, Any], policy: Policy) -> tuple[str, ...]:
        """The metadata keys of `attrs` that no field rule names (a rule naming one alone decides it),
        once per key set, as plans are."""
        keys = tuple(attrs)
        metas = self._metas.get((policy, keys))
        if metas is None:
            metas = tuple(k for k in keys if content.is_metadata(k) and self._decide(k, policy) == (_KEEP, None))
            if len(self._metas) >= 4096:
                self._metas.clear()
            self._metas[(policy, keys)] = metas
        return metas

    def _plan(self, attrs: dict[str, Any], policy: Policy) -> tuple[tuple[str, str, FieldRule | None, Any, Any], ...]:
        """The keys of `attrs` that may change under `policy`, with their decisions, for a key in
        which a detector fires (the redacted key or DROP, its detections), and the key when it may be
        the label of its value (else None), in map order. Spans of one instrumentation share their
        key set, so a plan (and the scan of its keys) is made once per key set."""
        keys = tuple(attrs)
        plan = self._plans.get((policy, keys))
        if plan is None:
            scan_keys = policy is not Policy.FULL and self.text is not None
            entries = []
            for key in keys:
                decision, rule = self._decide(key, policy)
                new_key = self.scan_key(key) if scan_keys else None
                if new_key is not None and new_key[1] is None:
                    new_key = None
                if decision != _KEEP or rule is not None or new_key is not None:
                    label = key if scan_keys and type(key) is str and is_label(key) else None
                    entries.append((key, decision, rule, new_key, label))
            plan = tuple(entries)
            if len(self._plans) >= 4096:
                self._plans.clear()
            self._plans[(policy, keys)] = plan
        return plan

    def scan_key(self, key: str) -> tuple[Any, Counter | None]:
        """What the detectors make of an attribute key: `(key, None)` when none fires (or the key is a
        known attribute name), else `(redacted key or DROP, detections)`. Remembered per key, like
        the decisions: keys repeat across spans and batches."""
        done = self._keys.get(key)
        if done is None:
            done = (key, None)
            if self.text is not None and key not in _KNOWN_KEYS:
                found: Counter = Counter()
                new = self.text.text(key, found) if type(key) is str else DROP
                if new is DROP or new != key:
                    done = (new, found)
            if len(self._keys) >= 65536:
                self._keys.clear()
            self._keys[key] = done
        return done

    def key_label(self, key: str, policy: Policy) -> str:
        """How `key` is named in the record's key lists: as sent, or as redacted when a detector fires
        in it (under redacting policies), or `UNSCANNABLE_KEY`."""
        if policy is Policy.FULL:
            return key
        new = self.scan_key(key)[0]
        return UNSCANNABLE_KEY if new is DROP else new

    def event(self, name: str, attrs: dict[str, Any], policy: Policy, record: Record,
              memo: TextMemo | None = None) -> dict[str, Any]:
        """An event's attributes; under metadata_only a message event keeps only its metadata."""
        if policy is Policy.METADATA_ONLY and name in content.MESSAGE_EVENTS:
            kept = {}
            for key, value in attrs.items():
                if (key in self._event_meta and self._meta_value(key, value)) or type(value) in (int, float, bool):
                    kept[key] = value
                else:
                    record.dropped["event:" + self.key_label(key, policy)] = None
            attrs = kept
        return self.attributes(attrs, policy, record, "event:", memo)

    def _meta_value(self, key: str, value: Any) -> bool:
        """Whether a message event's metadata member is metadata indeed: a role or finish reason is one
        of the known words (any other text there may be content), others any value."""
        words = self._meta_words.get(key)
        return words is None or (isinstance(value, str) and value.lower() in words)

    def status_message(self, message: str, policy: Policy, record: Record, memo: TextMemo | None = None) -> str:
        """A span's status message, scanned like an attribute under redacting policies (error
        messages often quote user input)."""
        return self.text_field(message, STATUS_MESSAGE, policy, record, memo)

    def span_name(self, name: str, policy: Policy, record: Record, memo: TextMemo | None = None) -> str:
        """A span's name, scanned like an attribute under redacting policies: instrumentations put
        URLs, queries and file names there, which may hold an e-mail or a card number."""
        return self.text_field(name, SPAN_NAME, policy, record, memo)

    def event_name(self, name: str, policy: Policy, record: Record, memo: TextMemo | None = None) -> str:
        """A span event's name, scanned like an attribute under redacting policies."""
        return self.text_field(name, EVENT_NAME, policy, record, memo)

    def text_field(self, text: str, label: str, policy: Policy, record: Record, memo: TextMemo | None = None) -> str:
        """A string field outside the attribute maps (a name, a version, a trace state, a schema URL),
        scanned under redacting policies and listed in the record as `label` when it changed ("" when
        it cannot be scanned)."""
        if not text or policy is Policy.FULL or self.text is None:
            return text
        new = self._scan(text, record, memo)
        if new is DROP:
            record.dropped[label] = None
            return ""
        if new is not text:
            record.masked[label] = None
        return new

    def body(self, event_name: str, body: Any, policy: Policy, record: Record, memo: TextMemo | None = None) -> Any:
        """A log record's body (any value; None when absent). Under metadata_only the body of a
        GenAI event (a message event, or another GenAI event that carries messages or an
        explanation there) keeps only its metadata members; other bodies are scanned like attributes."""
        if body is None or policy is Policy.FULL:
            return body
        if policy is Policy.METADATA_ONLY and content.is_genai_event(event_name):
            kept = None
            if isinstance(body, dict):
                kept = {
                    k: v for k, v in body.items()
                    if (k in self._event_meta and self._meta_value(k, v)) or content.is_metadata(k)
                    or type(v) in (int, float, bool)
                }
            if kept != body:
                record.dropped[BODY] = None
            body = kept
            if body is None:
                return None
        new = self._scan(body, record, memo)
        if new is DROP:
            record.dropped[BODY] = None
            return None
        if new is not body:
            record.masked[BODY] = None
        return new

    # --- one attribute ----------------------------------------------------------------------

    def _decide(self, key: str, policy: Policy) -> tuple[str, FieldRule | None]:
        decision = self._decisions.get((policy, key))
        if decision is None:
            decision = self._decide_uncached(key, policy)
            if len(self._decisions) >= 65536:
                self._decisions.clear()
            self._decisions[(policy, key)] = decision
        return decision

    def _decide_uncached(self, key: str, policy: Policy) -> tuple[str, FieldRule | None]:
        rule = next((f for match, f in self._fields if policy in f.policies and match(key)), None)
        if rule is None and key in self._canonical:
            rule = self._removing_rule(self._canonical[key], policy)
            if rule is not None:
                self._by_alias.add((policy, key))
        decision, rule = self._decide_value(key, policy, rule)
        no_rule = rule is None or rule.action is FieldAction.TRUNCATE
        if key in self._objects and decision in (_KEEP, _SCAN) and no_rule:
            members, only = {}, {}
            for name, path, ops in self._objects[key]:
                if (found := self._removing_rule((name,), policy)) is not None:
                    members[path], only[path] = found, ops
            if members:
                actions = tuple((path, self._member_action(r), only[path]) for path, r in members.items())
                self._members[(policy, key)] = (actions, members, decision)
                return _MEMBERS, rule
        return decision, rule

    def _removing_rule(self, names: tuple[str, ...], policy: Policy) -> FieldRule | None:
        """The first drop, mask or hash rule of `policy` naming one of `names`."""
        return next((f for match, f in self._fields
                     if f.action in _REMOVING and policy in f.policies and any(map(match, names))), None)

    def _decide_value(self, key: str, policy: Policy, rule: FieldRule | None) -> tuple[str, FieldRule | None]:
        if rule is not None and rule.action is not FieldAction.TRUNCATE:
            return _KEEP, rule
        if content.is_metadata(key) or policy is Policy.FULL:
            return _KEEP, rule
        if policy is Policy.METADATA_ONLY:
            if key in content.DOCUMENT_KEYS:
                return _DOCS, rule
            if self._content(key):
                return _DROP, rule
        return _SCAN, rule

    def _one(self, key: str, value: Any, policy: Policy, record: Record, where: str, memo: TextMemo | None,
             name: str | None = None, op: Any = None, label: str | None = None) -> Any:
        """`key`'s value redacted; `name` is how the key appears in the record (the key as redacted);
        `op` is the span's operation (members some mappings read only on some operations); `label`
        the key when detectors read it as the label of the value."""
        decision, rule = self._decide(key, policy)
        if name is None:
            name = key
        if decision == _MEMBERS:
            actions, members, decision = self._members[(policy, key)]
            # a member the mappings read only on some operations is rewritten only on spans of those
            value, done = rewrite(value, tuple((path, act) for path, act, ops in actions if ops is None or op in ops))
            if value is UNREADABLE:
                record.dropped[where + name] = None
                return DROP
            for path in done:
                action = members[path].action
                kept = {FieldAction.DROP: record.dropped, FieldAction.MASK: record.masked}.get(action, record.hashed)
                kept[where + name + "." + ".".join(path)] = None
        if rule is not None and rule.action is not FieldAction.TRUNCATE:
            return self._field_rule(name, value, rule, record, where, (policy, key) in self._by_alias)
        if decision == _KEEP:
            return value if rule is None else self._truncate(name, value, rule, record, where)
        if decision == _DROP:
            record.dropped[where + name] = None
            return DROP
        if decision == _DOCS:
            value = self._documents(value)
            record.dropped[where + name] = None
            if value is DROP:
                return DROP
        new = self._scan(value, record, memo, label)
        if new is DROP:
            record.dropped[where + name] = None
            return DROP
        if new is not value:
            record.masked[where + name] = None
        return new if rule is None else self._truncate(name, new, rule, record, where)

    def _scan(self, value: Any, record: Record, memo: TextMemo | None, label: str | None = None) -> Any:
        if self.text is None:
            return value
        if memo is not None and type(value) is str:
            return memo.text(value, record.counts, label)
        return self.text.value(value, record.counts, 0, label)

    def _field_rule(self, key: str, value: Any, rule: FieldRule, record: Record, where: str,
                    by_alias: bool = False) -> Any:
        action = rule.action
        if action is FieldAction.KEEP:
            return value
        if action is FieldAction.DROP:
            record.dropped[where + key] = None
            return DROP
        if action is FieldAction.MASK:
            record.masked[where + key] = None
            return MASK
        if value == "":  # nothing to hide (OpenLIT sends gen_ai.request.user = "" when no user is named),
            return value  # and the hash of nothing would count as one user
        record.hashed[where + key] = None
        digest = self.hasher.hex(value if type(value) is str else as_string(value))
        if not rule.to:
            return digest
        n = len(rule.keys)
        return _Moved(rule.to, digest, n + 1 if by_alias else rule.keys.index(key) if key in rule.keys else n)

    def _member_action(self, rule: FieldRule) -> Any:
        """What a drop, mask or hash rule does to a member of an object value (a hash stays in place:
        a rule's `to` names an attribute, not a member)."""
        if rule.action is FieldAction.DROP:
            return lambda v: REMOVE
        if rule.action is FieldAction.MASK:
            return lambda v: MASK
        return lambda v: self.hasher.hex(v if type(v) is str else as_string(v))

    def _truncate(self, key: str, value: Any, rule: FieldRule, record: Record, where: str) -> Any:
        if type(value) is str and len(value) > rule.length:
            record.truncated[where + key] = None
            return value[: rule.length]
        return value

    def _documents(self, value: Any) -> Any:
        """A document list reduced to its metadata fields (ids, scores), in the form it came in."""
        docs = value
        if isinstance(value, (str, bytes)):
            try:
                docs = orjson.loads(value)
            except orjson.JSONDecodeError:
                return DROP
        if not isinstance(docs, list):
            return DROP
        kept = [
            {k: v for k, v in d.items() if k in self._doc_fields} if isinstance(d, dict) else None
            for d in docs
        ]
        if any(d is None for d in kept):
            return DROP
        if not isinstance(value, (str, bytes)):
            return kept
        try:
            return orjson.dumps(kept).decode()
        except orjson.JSONEncodeError:  # nested past orjson's 255 levels: fails closed
            return DROP


class _Moved:
    """A hash written under another key (`user.id` → `user.hash`); the original key goes away.
    `rank`: where the rule names the key (a glob's match after the exact names, a foreign form of a
    key the rule names last); of several keys moved to one target, the lowest rank's value is kept."""

    __slots__ = ("target", "value", "rank")

    def __init__(self, target: str, value: str, rank: int):
        self.target = target
        self.value = value
        self.rank = rank


@lru_cache(maxsize=1)
def canonical_names() -> dict[str, tuple[str, ...]]:
    """Foreign attribute → the canonical attributes the shipped mappings copy it into, and deprecated
    name → current name. Only for removing rules: a `keep` rule on a canonical name must not leave a
    foreign attribute that also carries other content unscanned."""
    out: dict[str, dict[str, None]] = {}
    for source in load_mappings().sources:
        for rule in source.rules + source.resource_rules:
            out.setdefault(rule.key, {})[rule.to] = None
    for old, new in sc.RENAMED.items():
        out.setdefault(old, {})[new] = None
    return {key: tuple(names) for key, names in out.items() if key not in names}


@lru_cache(maxsize=1)
def copy_targets() -> dict[str, frozenset[str]]:
    """Foreign attribute → the metadata attributes the shipped mappings copy it, or a member of it,
    into (`ai.toolCall.id` → `gen_ai.tool.call.id`; `mlflow.linkedPrompts` → `gen_ai.prompt.name`).
    Hashes and constants are left out: they hold none of the value."""
    out: dict[str, set[str]] = {}
    for source in load_mappings().sources:
        for rule in source.rules + source.resource_rules:
            if content.is_metadata(rule.to) and not rule.hash and rule.const is None:
                out.setdefault(rule.key, set()).add(rule.to)
        for obj in source.objects:
            for fld in obj.fields:
                if content.is_metadata(fld.to):
                    out.setdefault(obj.key, set()).add(fld.to)
    return {key: frozenset(names) for key, names in out.items()}


def _as_list(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [as_string(v) for v in values]


def _holds(key: str, matcher: KeyMatcher, attrs: Mapping[str, Any], resource: Mapping[str, Any]) -> bool:
    for name in (key, *_OLD_NAMES.get(key, ())):
        for source in (attrs, resource):
            value = source.get(name)
            if value is not None:
                return matcher(value if type(value) is str else as_string(value))
    return False


def _metadata_words() -> dict[str, frozenset[str]]:
    """The words a message event's `role` and `finish_reason` may hold and stay under metadata_only:
    the canonical ones and the other SDKs' words the shared value maps translate."""
    maps = load_mappings().value_maps
    roles = {"user", "assistant", "system", "tool"}
    reasons: set[str] = set()
    for name, words in (("role", roles), ("finish_reason", reasons)):
        vmap = maps.get(name)
        if vmap is not None:
            words.update(k.lower() for k in vmap.map)
            words.update(v.lower() for v in vmap.map.values() if v)
    return {"role": frozenset(roles), "finish_reason": frozenset(reasons)}
