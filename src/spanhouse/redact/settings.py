"""Redaction settings, shared by the `genai_redact` processor and the in-app `spanhouse.sdk`.

```yaml
genai_redact:
  hash_key: ${env:SPANHOUSE_REDACTION_KEY}
  default_policy: redacted            # when no rule matches (e.g. no environment is set)
  rules:                              # first match wins; values are exact or globs
    - when: {deployment.environment.name: production}
      policy: redacted
    - when: {deployment.environment.name: [staging, development]}
      policy: full
    - when: {spanhouse.feature: "kyc-*"}
      policy: metadata_only
  fields:                             # first rule that names the key wins
    - keys: [user.id, enduser.id]
      action: hash
      to: user.hash
      policies: [redacted, metadata_only]
    - keys: ["gen_ai.tool.call.result"]
      action: truncate
      length: 2000
  detectors: [email, phone, card, ...] # default: all built-ins
  patterns:
    - {name: employee_id, regex: "EMP-[0-9]{6}"}
```
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from spanhouse import semconv as sc
from spanhouse.component import ConfigIssue
from spanhouse.redact.detectors import BUILTIN_NAMES, custom
from spanhouse.redact.keys import MIN_KEY_LENGTH
from spanhouse.redact.scanner import compile_pattern

Policy = sc.SpanhouseRedactionPolicyValues
ALL_POLICIES = (Policy.FULL, Policy.REDACTED, Policy.METADATA_ONLY)
STRICTNESS = {Policy.FULL: 0, Policy.REDACTED: 1, Policy.METADATA_ONLY: 2}


class FieldAction(str, Enum):
    DROP = "drop"
    MASK = "mask"
    HASH = "hash"
    TRUNCATE = "truncate"
    KEEP = "keep"


MASK = "<MASKED>"


@dataclass(frozen=True, kw_only=True)
class PolicyRule:
    """Chooses `policy` for a span when every condition in `when` holds. A condition names an
    attribute (looked up on the span, then on its resource, also under its deprecated name) and one
    value or a list of values; values may be globs (`prod-*`)."""

    when: dict[str, Any] = field(default_factory=dict)
    policy: Policy = Policy.REDACTED

    def __post_init__(self) -> None:
        object.__setattr__(self, "policy", Policy(self.policy))

    def validate(self) -> Iterator[ConfigIssue]:
        if not self.when:
            yield ConfigIssue(
                "when", "needs at least one condition, e.g. {deployment.environment.name: production}"
            )
        for key, value in self.when.items():
            values = value if isinstance(value, list) else [value]
            if not values or not all(isinstance(v, (str, int, float, bool)) for v in values):
                yield ConfigIssue(
                    f"when::{key}", "expected a value or a list of values (strings, globs allowed)"
                )


@dataclass(frozen=True, kw_only=True)
class FieldRule:
    """What to do with the attributes named by `keys` (exact names or globs), under `policies`.

    `drop` removes the value; `mask` replaces it with `<MASKED>`; `hash` replaces it with its keyed
    HMAC-SHA256 (hex), or with `to` writes the hash under another key and removes the original (an
    existing value of `to` is left alone); `truncate` cuts strings to `length` characters after
    scanning; `keep` stores the value as sent, exempt from detectors and from metadata_only."""

    keys: list[str] = field(default_factory=list)
    action: FieldAction = FieldAction.MASK
    length: int = 0
    to: str = ""
    policies: list[Policy] = field(default_factory=lambda: list(ALL_POLICIES))

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", FieldAction(self.action))
        object.__setattr__(self, "policies", [Policy(p) for p in self.policies])

    def validate(self) -> Iterator[ConfigIssue]:
        if not self.keys or not all(isinstance(k, str) and k for k in self.keys):
            yield ConfigIssue("keys", "needs at least one attribute name or glob, e.g. [user.email]")
        if self.action is FieldAction.TRUNCATE and self.length <= 0:
            yield ConfigIssue("length", "truncate needs a length greater than 0, e.g. 2000")
        if self.action is not FieldAction.TRUNCATE and self.length:
            yield ConfigIssue("length", "only the truncate action takes a length")
        if self.to and self.action is not FieldAction.HASH:
            yield ConfigIssue("to", "only the hash action takes a target key")
        if not self.policies:
            yield ConfigIssue("policies", "list at least one policy: full, redacted, metadata_only")


@dataclass(frozen=True, kw_only=True)
class PatternSpec:
    """A user detector: an RE2 pattern (linear time; no backreferences or look-around). Matches are
    replaced by `<NAME:hash>` and counted under `name`; `group` picks the capture group to replace."""

    name: str = ""
    regex: str = ""
    group: int = 0

    def validate(self) -> Iterator[ConfigIssue]:
        try:
            custom(self.name, self.regex or "x", self.group)
        except ValueError as exc:
            yield ConfigIssue("name", str(exc))
        if self.name in BUILTIN_NAMES:
            yield ConfigIssue("name", f"{self.name!r} is a built-in detector; choose another name")
        if not self.regex:
            yield ConfigIssue("regex", "is required")
            return
        try:
            compiled = compile_pattern(self.regex)
        except ValueError as exc:
            yield ConfigIssue("regex", str(exc))
            return
        if not 0 <= self.group <= compiled.groups:
            yield ConfigIssue("group", f"the pattern has {compiled.groups} capture group(s)")
        if compiled.search(b"") is not None:
            yield ConfigIssue("regex", "matches the empty string; it must match at least one character")


def default_rules() -> list[PolicyRule]:
    env = sc.DEPLOYMENT_ENVIRONMENT_NAME
    return [
        PolicyRule(when={env: ["production", "prod"]}, policy=Policy.REDACTED),
        PolicyRule(when={env: ["staging", "development"]}, policy=Policy.FULL),
    ]


def default_fields() -> list[FieldRule]:
    redacting = [Policy.REDACTED, Policy.METADATA_ONLY]
    return [
        # enduser.id is the older attribute for the same end user; user.id wins when both are sent
        FieldRule(keys=[sc.USER_ID, sc.ENDUSER_ID], action=FieldAction.HASH, to=sc.USER_HASH, policies=redacting),
        # names identify a person as an id does; hashed in place, they stay joinable. user.email is
        # left to the email detector, whose token matches the address's token everywhere else
        FieldRule(keys=[sc.USER_NAME, sc.USER_FULL_NAME], action=FieldAction.HASH, policies=redacting),
    ]


@dataclass(frozen=True, kw_only=True)
class RedactionSettings:
    """How spans are redacted; see the module docstring for the YAML form.

    Guarantees once `validate` yielded nothing: every pattern compiles with RE2, every detector name
    exists, the hash key (if given) is long enough."""

    hash_key: str = ""
    """Key of the HMAC behind tokens and hashes (≥ 16 characters), usually
    `${env:SPANHOUSE_REDACTION_KEY}`. Empty: a random key per process, with a warning at start."""
    default_policy: Policy = Policy.REDACTED
    """Policy of spans no rule matches, including spans with no environment at all."""
    rules: list[PolicyRule] = field(default_factory=default_rules)
    """Policy rules, first match wins. Default: production → redacted, staging/development → full."""
    fields: list[FieldRule] = field(default_factory=default_fields)
    """Field rules. Default: `user.id` (or else `enduser.id`) is hashed into `user.hash`, and
    `user.name` and `user.full_name` are hashed in place, under redacted and metadata_only. Setting
    `fields` replaces the default; list the rules again to keep them."""
    detectors: list[str] = field(default_factory=lambda: list(BUILTIN_NAMES))
    """Built-in detectors to run under redacting policies (default: all)."""
    patterns: list[PatternSpec] = field(default_factory=list)
    """Extra user detectors."""
    token_length: int = 12
    """Hex digits of the keyed hash in a token (`<EMAIL:3f2a9c1b04de>`), 8-64."""
    max_value_bytes: int = 4 << 20
    """Largest value scanned; a larger one is dropped under redacting policies (fails closed)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "default_policy", Policy(self.default_policy))

    def validate(self) -> Iterator[ConfigIssue]:
        if self.hash_key and len(self.hash_key) < MIN_KEY_LENGTH:
            yield ConfigIssue(
                "hash_key", f"use at least {MIN_KEY_LENGTH} characters (e.g. `openssl rand -hex 32`)"
            )
        for i, name in enumerate(self.detectors):
            if name not in BUILTIN_NAMES:
                yield ConfigIssue(
                    f"detectors[{i}]", f"unknown detector {name!r}; known: {', '.join(BUILTIN_NAMES)}"
                )
        names = [p.name for p in self.patterns]
        if len(set(names)) != len(names):
            yield ConfigIssue("patterns", "pattern names must be unique")
        if not 8 <= self.token_length <= 64:
            yield ConfigIssue("token_length", "must be between 8 and 64")
        if self.max_value_bytes < 1024:
            yield ConfigIssue("max_value_bytes", "must be at least 1024")
