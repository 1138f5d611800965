"""Server-side TLS settings shared by the HTTP and gRPC servers (the Collector's `tls` keys)."""

from __future__ import annotations

import datetime
import logging
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from spanhouse.component import ConfigIssue
from spanhouse.errors import SpanhouseError

log = logging.getLogger(__name__)
_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
EXPIRY_WARNING = datetime.timedelta(days=14)
"""A certificate that ends sooner than this is announced at start."""


@dataclass(frozen=True, kw_only=True)
class TlsSettings:
    """Serve over TLS with `cert_file`/`key_file` (PEM). With `client_ca_file`, clients must present a
    certificate signed by that CA (mutual TLS); requests without one fail the handshake."""

    cert_file: str = ""
    key_file: str = ""
    client_ca_file: str = ""
    min_version: str = "1.2"
    """Oldest TLS version accepted: 1.2 or 1.3."""

    def validate(self) -> Iterator[ConfigIssue]:
        for name in ("cert_file", "key_file"):
            if not getattr(self, name):
                yield ConfigIssue(name, "is required for TLS (a PEM file)")
        for name in ("cert_file", "key_file", "client_ca_file"):
            path = getattr(self, name)
            if path and not os.path.isfile(path):
                yield ConfigIssue(name, f"{path}: no such file", serving_only=True)
        if self.min_version not in _VERSIONS:
            yield ConfigIssue("min_version", f"{self.min_version!r} is not one of {', '.join(_VERSIONS)}")

    def server_context(self) -> ssl.SSLContext:
        """An SSLContext for a server socket; raises `SpanhouseError` naming the file that is unusable."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = _VERSIONS[self.min_version]
        try:
            ctx.load_cert_chain(self.cert_file, self.key_file, password=_no_passphrase)
        except _Encrypted:
            raise SpanhouseError(f"TLS: key_file {self.key_file} is encrypted with a passphrase; give an "
                                 "unencrypted key (e.g. `openssl pkey -in KEY -out KEY.plain`)") from None
        except (OSError, ssl.SSLError) as exc:
            raise SpanhouseError(f"TLS: cannot load cert_file {self.cert_file} / key_file {self.key_file}: "
                                 f"{exc}") from None
        if self.client_ca_file:
            try:
                ctx.load_verify_locations(cafile=self.client_ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise SpanhouseError(f"TLS: cannot load client_ca_file {self.client_ca_file}: "
                                     f"{exc}") from None
            ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.set_alpn_protocols(["http/1.1"])
        warn_validity(self.cert_file)
        return ctx

    def grpc_credentials(self) -> Any:
        """Credentials for a gRPC server; the files are checked as for HTTP first, since gRPC reports
        a bad certificate or key only as a failure to bind."""
        import grpc

        self.server_context()

        def read(path: str) -> bytes:
            try:
                with open(path, "rb") as f:
                    return f.read()
            except OSError as exc:
                raise SpanhouseError(f"TLS: cannot read {path}: {exc.strerror or exc}") from None

        ca = read(self.client_ca_file) if self.client_ca_file else None
        return grpc.ssl_server_credentials([(read(self.key_file), read(self.cert_file))],
                                           root_certificates=ca, require_client_auth=ca is not None)


def warn_validity(cert_file: str, now: datetime.datetime | None = None) -> None:
    """Log a warning when the server certificate (the first in `cert_file`) has expired, is not valid
    yet, or expires within `EXPIRY_WARNING`: clients that verify it refuse to connect, and the server
    itself sees only failed handshakes."""
    from cryptography import x509

    try:
        with open(cert_file, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
    except (OSError, ValueError):
        return  # OpenSSL loaded it already; a form cryptography cannot read is no reason to refuse
    now = now or datetime.datetime.now(datetime.UTC)
    end, start = cert.not_valid_after_utc, cert.not_valid_before_utc
    if end <= now:
        log.warning("TLS: the certificate in %s expired on %s; clients that verify it will refuse to connect. "
                    "Renew it and restart.", cert_file, end.isoformat())
    elif start > now:
        log.warning("TLS: the certificate in %s is not valid before %s; clients that verify it will refuse to "
                    "connect until then (is this machine's clock right?)", cert_file, start.isoformat())
    elif end - now < EXPIRY_WARNING:
        log.warning("TLS: the certificate in %s expires on %s; renew it and restart before then.",
                    cert_file, end.isoformat())


class _Encrypted(Exception):
    pass


def _no_passphrase() -> bytes:
    """Called by OpenSSL only for an encrypted key: refuse instead of prompting on the terminal."""
    raise _Encrypted
