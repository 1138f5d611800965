"""The keyed hash behind replacement tokens and `hash` field rules.

Tokens are `<TYPE:hex>` with the first `token_length` hex digits of HMAC-SHA256(key, value): equal
values get equal tokens, so they stay joinable (the same customer email across spans), and without
the key nobody can test a guess against a token. The key comes from configuration
(`hash_key: ${env:SPANHOUSE_REDACTION_KEY}`); without one, a random key is made at start and a warning
says that hashes will differ after a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

log = logging.getLogger(__name__)

MIN_KEY_LENGTH = 16
KEY_ENV = "SPANHOUSE_REDACTION_KEY"


class Hasher:
    """HMAC-SHA256 with one key. Thread-safe (no shared mutable state besides a bounded cache)."""

    def __init__(self, key: str | bytes | None, token_length: int = 12, *, owner: str = "genai_redact"):
        if not key:
            key = secrets.token_bytes(32)
            log.warning(
                "%s: no hash_key is configured (set %s); using a random key, so tokens and hashes "
                "will not match those made before a restart or by other processes",
                owner,
                KEY_ENV,
            )
        self._key = key.encode() if isinstance(key, str) else bytes(key)
        self.token_length = token_length
        self._cache: dict[tuple[str, str], str] = {}
        self._hex_cache: dict[str, str] = {}

    def hex(self, value: str) -> str:
        """The full HMAC-SHA256 of `value` in hex (64 characters)."""
        cached = self._hex_cache.get(value)
        if cached is None:
            cached = hmac.new(self._key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
            if len(self._hex_cache) >= 65536:
                self._hex_cache.clear()
            self._hex_cache[value] = cached
        return cached

    def token(self, label: str, value: str) -> str:
        """`<LABEL:xxxxxxxxxxxx>` for a detected value (already normalized by its detector)."""
        cached = self._cache.get((label, value))
        if cached is None:
            digest = hmac.new(self._key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
            cached = f"<{label}:{digest[: self.token_length]}>"
            if len(self._cache) >= 65536:
                self._cache.clear()
            self._cache[(label, value)] = cached
        return cached
