"""What the `otlp` and `otlphttp` exporters share: client TLS settings, the retry hint parser and the
handling of a peer's `partial_success`."""

from __future__ import annotations

import email.utils
import logging
import os
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass

from spanhouse.component import ConfigIssue

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ClientTLSSettings:
    """The Collector's client `tls` block."""

    insecure: bool = False
    """gRPC only: plaintext instead of TLS (needed for a peer without TLS)."""
    insecure_skip_verify: bool = False
    """Accept any server certificate (testing only)."""
    ca_file: str = ""
    cert_file: str = ""
    """Client certificate, for peers that require mutual TLS (with key_file)."""
    key_file: str = ""
    server_name_override: str = ""

    def validate(self) -> Iterator[ConfigIssue]:
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path and not os.path.isfile(path):
                yield ConfigIssue(name, f"file {path!r} does not exist", serving_only=True)
        if bool(self.cert_file) != bool(self.key_file):
            yield ConfigIssue("cert_file", "cert_file and key_file go together")

    def read(self, name: str) -> bytes | None:
        path = getattr(self, name)
        if not path:
            return None
        with open(path, "rb") as f:
            return f.read()

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file or None)
        if self.insecure_skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


def retry_after_seconds(value: str | None) -> float | None:
    """A `Retry-After` header (seconds or an HTTP-date) as seconds from now, or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def log_partial_success(exporter: str, rejected: int, message: str) -> None:
    """A peer's `partial_success` is final (OTLP forbids retrying it); it is logged, not raised."""
    if rejected or message:
        log.warning("exporter %s: the peer rejected %d span(s): %s", exporter, rejected, message or "(no message)")
