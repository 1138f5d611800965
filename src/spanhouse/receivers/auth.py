"""Bearer-token authentication for receivers, one tenant per token.

Tokens are kept hashed at rest: the table maps each tenant to the SHA-256 (hex) of its tokens, read
from a file or an environment variable, in YAML:

```yaml
acme: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
globex: [<sha256 of token 1>, <sha256 of token 2>]   # several tokens, e.g. while rotating
```

(`printf %s "$TOKEN" | sha256sum` gives the hash.) Names and hashes are read as the text written,
with no YAML 1.1 typing (`no` is a tenant, not false), and a tenant listed twice is refused. The file
is re-read when its content changes. A request with a known token is stamped with its tenant
(`spanhouse.tenant.id` on every resource and span, overwriting whatever the payload said); a request
without one is refused with 401 / UNAUTHENTICATED.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from spanhouse import semconv as sc
from spanhouse.component import ConfigIssue
from spanhouse.config import UniqueKeyLoader
from spanhouse.errors import Unauthenticated

log = logging.getLogger(__name__)

_HASH_RE = re.compile(r"^(?:sha256:)?([0-9a-fA-F]{64})$")
TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")
_ONE_LINE_ENTRY = re.compile(r"^(.+?)\s*:\s*((?:sha256:)?[0-9a-fA-F]{64})$")
_RELOAD_CHECK_S = 2.0


@dataclass(frozen=True, kw_only=True)
class AuthSettings:
    """`auth` of a receiver: where the tenant → token-hash table comes from (one or both)."""

    bearer_tokens_file: str = ""
    """A YAML file mapping each tenant to the SHA-256 hex of its token(s); re-read when it changes."""
    bearer_tokens_env: str = ""
    """The name of an environment variable holding the same YAML (or `tenant:hash,tenant:hash`)."""

    def validate(self) -> Iterator[ConfigIssue]:
        if not self.bearer_tokens_file and not self.bearer_tokens_env:
            yield ConfigIssue(None, "set bearer_tokens_file or bearer_tokens_env (or remove auth)")
            return
        try:
            load_table(self)
        except ValueError as exc:
            # the tokens are read by the running receiver only: reading commands do not need them
            yield ConfigIssue(None, str(exc), serving_only=True)


def hash_token(token: str) -> str:
    """The form a token is stored in: SHA-256, lowercase hex."""
    return hashlib.sha256(token.encode()).hexdigest()


class _PlainTextLoader(UniqueKeyLoader):
    """YAML without YAML 1.1's scalar types: every key and value is the text written (`no`, `00123`,
    `null` stay tenant names, not false, 83 and None, which would make tenants collide), and a key given
    twice is refused."""

    yaml_implicit_resolvers: dict = {}


def _read_yaml(text: str, source: str) -> tuple[Any, dict[str, str]]:
    """The document and where each top-level key is (`{key: "line 3"}`); raises ValueError."""
    loader = _PlainTextLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        if problem.startswith("duplicate key"):
            problem += "; list each tenant once, several tokens as tenant: [<sha256>, <sha256>]"
        elif not isinstance(exc, yaml.constructor.ConstructorError):
            problem = f"not valid YAML: {problem}"
        raise ValueError(f"{source}:{where} {problem}") from None
    finally:
        loader.dispose()
    where = {}
    if isinstance(node, yaml.MappingNode):
        where = {k.value: f"line {k.start_mark.line + 1}" for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    return data, where


def _read_one_line(text: str, source: str) -> tuple[dict[str, str], dict[str, str]]:
    """The one-line form for environment variables, `tenant:hash[,tenant:hash...]`, read like the YAML
    form: names as written, a tenant given twice refused."""
    data: dict[str, str] = {}
    where: dict[str, str] = {}
    for n, part in enumerate(filter(None, (p.strip() for p in text.split(","))), start=1):
        m = _ONE_LINE_ENTRY.match(part)  # the hash is at the end: tenant names may contain ':'
        tenant, digest = (m.group(1).strip(), m.group(2)) if m else (s.strip() for s in part.partition(":")[::2])
        if tenant in data:
            raise ValueError(f"{source}: entry {n}: duplicate key {tenant!r} (first in {where[tenant]}); list "
                             "each tenant once, several tokens in the YAML form: {tenant: [<sha256>, <sha256>]}")
        data[tenant], where[tenant] = digest, f"entry {n}"
    return data, where


def _prefix(text: str) -> str:
    """At most the first 4 characters of `text`, which may be a secret, and never more than a third."""
    return repr(text[:min(4, len(text) // 3)] + "…")


def parse_table(text: str, source: str) -> dict[str, str]:
    """`{token hash: tenant}` from YAML (or `tenant:hash,...`) text; raises ValueError saying what is wrong."""
    text = text.strip()
    if text and "\n" not in text and not text.startswith("{") and ": " not in text:
        data, where = _read_one_line(text, source)
    else:
        data, where = _read_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping of tenant: sha256-hex-of-token")
    out: dict[str, str] = {}
    for tenant, hashes in data.items():
        # a malformed entry may be a token pasted where its tenant belongs: name its line, not its text
        entry = f"{source}: {where.get(str(tenant), 'an entry')} ({_prefix(str(tenant))})"
        if not isinstance(tenant, str) or not TENANT_RE.match(tenant):
            raise ValueError(f"{entry}: a tenant name must be 1-128 letters, digits or _.:@- characters")
        for h in hashes if isinstance(hashes, list) else [hashes]:
            m = _HASH_RE.match(h.strip()) if isinstance(h, str) else None
            if m is None:
                raise ValueError(f"{entry}: expected the SHA-256 of a token as 64 hex characters after the "
                                 "tenant name (store hashes, not tokens: printf %s \"$TOKEN\" | sha256sum)")
            digest = m.group(1).lower()
            if out.get(digest, tenant) != tenant:
                raise ValueError(f"{source}: one token hash is listed for tenants {out[digest]!r} and "
                                 f"{tenant!r}")
            out[digest] = tenant
    return out


def load_table(settings: AuthSettings, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`{token hash: tenant}` from the file and the variable; raises ValueError saying what to fix, also
    when there is no token at all."""
    env = os.environ if env is None else env
    table: dict[str, str] = {}
    if settings.bearer_tokens_file:
        try:
            with open(settings.bearer_tokens_file, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise ValueError(f"bearer_tokens_file {settings.bearer_tokens_file}: "
                             f"{exc.strerror or exc}") from None
        table.update(parse_table(text, f"bearer_tokens_file {settings.bearer_tokens_file}"))
    if settings.bearer_tokens_env:
        name = settings.bearer_tokens_env
        if name not in env:
            raise ValueError(f"bearer_tokens_env: environment variable {name} is not set")
        for digest, tenant in parse_table(env[name], f"environment variable {name}").items():
            if table.get(digest, tenant) != tenant:
                raise ValueError(f"one token hash is listed for tenants {table[digest]!r} and {tenant!r}")
            table[digest] = tenant
    if not table:
        # refused at startup and on reload alike: an empty table would lock every client out
        sources = [f"bearer_tokens_file {settings.bearer_tokens_file}"] if settings.bearer_tokens_file else []
        sources += [f"environment variable {settings.bearer_tokens_env}"] if settings.bearer_tokens_env else []
        raise ValueError(f"no bearer tokens are configured in {' or '.join(sources)}; every request would be "
                         "refused: add a line 'tenant: <sha256 of its token>'")
    return table


class BearerAuth:
    """Maps `Authorization: Bearer <token>` to a tenant. Thread-safe; re-reads the file when it changes."""

    def __init__(self, settings: AuthSettings):
        self.settings = settings
        self._lock = threading.Lock()
        self._version = self._file_version()  # before loading: a change in between is seen at the next check
        self._table = load_table(settings)
        self._checked = time.monotonic()

    def _file_version(self) -> str | None:
        """The SHA-256 of the file's content (through any symlinks). Not its mtime: a Kubernetes secret's
        atomic symlink swap, `cp -p` or two writes in one clock tick change a file and keep its mtime. The
        file is small and read at most every `_RELOAD_CHECK_S` seconds."""
        if not self.settings.bearer_tokens_file:
            return None
        try:
            with open(self.settings.bearer_tokens_file, "rb") as f:
                return hashlib.sha256(f.read()).hexdigest()
        except OSError:
            return None

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if not self.settings.bearer_tokens_file or now - self._checked < _RELOAD_CHECK_S:
            return
        with self._lock:
            self._checked = now
            version = self._file_version()
            if version == self._version:
                return
            self._version = version
            try:
                self._table = load_table(self.settings)
                log.info("bearer tokens reloaded from %s (%d tokens)", self.settings.bearer_tokens_file,
                         len(self._table))
            except ValueError as exc:
                log.error("bearer tokens not reloaded, keeping the previous ones: %s", exc)

    def tenant(self, authorization: str | Sequence[str] | None) -> str:
        """The tenant of the bearer token in the request's Authorization header: its value, or the values
        of every Authorization header (gRPC metadata entry) the request has. Raises `Unauthenticated`."""
        values = [authorization] if isinstance(authorization, str) else list(authorization or ())
        if len(values) > 1:
            # which one would count? HTTP servers take the first, gRPC the last: refuse rather than guess
            raise Unauthenticated(f"the request has {len(values)} Authorization headers; send exactly one, "
                                  "'Authorization: Bearer <token>'")
        if not values or not values[0]:
            raise Unauthenticated("this receiver requires a bearer token: send the header "
                                  "'Authorization: Bearer <token>'")
        scheme, _, token = values[0].strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
        tenant = self.tenant_of(token.strip())
        if tenant is None:
            raise Unauthenticated("the bearer token is not valid")
        return tenant

    def tenants(self) -> list[str]:
        """The tenants the table holds tokens for (names only: they are configuration, not secrets)."""
        self._maybe_reload()
        return sorted(set(self._table.values()))

    def tenant_of(self, token: str) -> str | None:
        """The tenant of `token`, or None. Its hash is compared with every stored hash in constant time,
        so how long the answer takes says nothing about how close a guess came."""
        self._maybe_reload()
        digest = hash_token(token).encode()
        found = None
        for stored, tenant in self._table.items():
            if hmac.compare_digest(digest, stored.encode()):
                found = tenant
        return found


def demote_tenant(batch: Any) -> None:
    """For a receiver without `auth`: a `spanhouse.tenant.id` the payload put on a resource moves to
    the resource's records (where they carry none), so the resource-level tenant is only ever one an
    authenticated receiver stamped, which is what `jaeger_query`'s tenant tokens read. The tenant a
    record stands for (`genai_spans.TenantId`: the record's own, else its resource's) is unchanged."""
    claimed = {i: r.attributes.pop(sc.SPANHOUSE_TENANT_ID) for i, r in enumerate(batch.resources)
               if sc.SPANHOUSE_TENANT_ID in r.attributes}
    if not claimed:
        return
    for attrs, index in zip(batch.attributes, batch.resource_index):
        if index in claimed:
            attrs.setdefault(sc.SPANHOUSE_TENANT_ID, claimed[index])


def stamp_tenant(batch: Any, tenant: str) -> None:
    """Set `spanhouse.tenant.id` on every resource and record of `batch` (any signal's batch with
    `resources` and per-record `attributes`), overwriting values that came with the data."""
    for resource in batch.resources:
        resource.attributes[sc.SPANHOUSE_TENANT_ID] = tenant
    for attrs in batch.attributes:
        attrs[sc.SPANHOUSE_TENANT_ID] = tenant
