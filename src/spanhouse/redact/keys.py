"""The keyed hash behind replacement tokens and `hash` field rules.

Tokens are `<TYPE:hex>` with the first `token_length` hex digits of HMAC-SHA256(key, value): equal
values get equal tokens, so they stay joinable (the same customer email across spans), and without
the key nobody can test a guess against a token. The key comes from configuration
(`hash_key: ${env:SPANHOUSE_REDACTION_KEY}`); without one, a random key is made once per process, shared
by every redaction processor in it (so spans and log records stay joinable), and a warning says that
hashes will differ after a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading

log = logging.getLogger(__name__)

MIN_KEY_LENGTH = 16
KEY_ENV = "SPANHOUSE_REDACTION_KEY"


_PROCESS_KEY: list[bytes] = []
_process_key_lock = threading.Lock()


def _process_key(owner: str) -> bytes:
    """This process's random key, made (and warned about) once."""
    with _process_key_lock:
        if not _PROCESS_KEY:
            _PROCESS_KEY.append(secrets.token_bytes(32))
            log.warning(
                "%s: no hash_key is configured (set %s); using a random key for this process, so tokens and "
                "hashes will not match those made before a restart or by other processes",
                owner,
                KEY_ENV,
            )
        return _PROCESS_KEY[0]


class Hasher:
    """HMAC-SHA256 with one key. Thread-safe and stateless: no value seen is kept (a cache of
    recent values would hold the very data redaction removes)."""

    def __init__(self, key: str | bytes | None, token_length: int = 12, *, owner: str = "genai_redact"):
        if not key:
            key = _process_key(owner)
        self._key = key.encode() if isinstance(key, str) else bytes(key)
        self.token_length = token_length
        # the keyed state, set up once and copied per value (copying skips the key schedule)
        self._keyed = hmac.new(self._key, digestmod=hashlib.sha256)

    def hex(self, value: str) -> str:
        """The full HMAC-SHA256 of `value` in hex (64 characters)."""
        h = self._keyed.copy()
        h.update(value.encode("utf-8", "surrogatepass"))
        return h.hexdigest()

    def token(self, label: str, value: str) -> str:
        """`<LABEL:xxxxxxxxxxxx>` for a detected value (already normalized by its detector)."""
        return f"<{label}:{self.hex(value)[: self.token_length]}>"
