"""Token authentication for the reading extensions (`sql_query`, `jaeger_query`).

The token table is the receivers' (`spanhouse.receivers.auth`: tenant → SHA-256 of its tokens, from a
file re-read when it changes or an environment variable). Read clients send a token the way they can:
`Authorization: Bearer <token>` (Grafana's Jaeger data source with a custom header), HTTP basic auth
with the token as the password and any user name (clickhouse-connect, Grafana's ClickHouse and Jaeger
data sources), or `X-ClickHouse-Key: <token>` (ClickHouse's own header pair).

A token reads the data of its own tenant, or of every tenant when its tenant is listed in
`all_tenants` (operators).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from spanhouse.component import ConfigIssue
from spanhouse.errors import Unauthenticated
from spanhouse.httpserver import Request
from spanhouse.receivers.auth import TENANT_RE, AuthSettings, BearerAuth

log = logging.getLogger(__name__)

CHALLENGE = 'Basic realm="spanhouse", charset="UTF-8", Bearer realm="spanhouse"'
"""The `WWW-Authenticate` value of a 401: both schemes a read client may answer with."""


@dataclass(frozen=True, kw_only=True)
class ReadAuthSettings(AuthSettings):
    """`auth` of a reading extension: the receivers' token table, plus the tenants that read every tenant."""

    all_tenants: tuple[str, ...] = ()
    """Tenants (operators) whose tokens read every tenant's data; any other token reads its own tenant's."""

    def validate(self) -> Iterator[ConfigIssue]:
        yield from super().validate()
        for n, name in enumerate(self.all_tenants):
            if not TENANT_RE.match(name):
                yield ConfigIssue(f"all_tenants[{n}]", "a tenant name must be 1-128 letters, digits or _.:@- "
                                                       "characters")


@dataclass(frozen=True)
class Reader:
    """Who a request reads as: `tenant` is None for a token that reads every tenant."""

    tenant: str | None


class ReadAuth:
    """Maps a read request's credentials to a `Reader`; raises `Unauthenticated`. Thread-safe."""

    def __init__(self, settings: ReadAuthSettings):
        self.settings = settings
        self.tokens = BearerAuth(settings)
        self._all = frozenset(settings.all_tenants)
        missing = sorted(self._all - set(self.tokens.tenants()))
        if missing:
            log.warning("read auth: all_tenants names %s, which the token table has no token for (yet): "
                        "until it does, no token reads every tenant", ", ".join(missing))

    def reader(self, req: Request) -> Reader:
        tenant = self.tokens.tenant_of(_token(req))
        if tenant is None:
            raise Unauthenticated("the token is not valid")
        return Reader(None if tenant in self._all else tenant)


def _token(req: Request) -> str:
    """The token the request carries, in whichever form; raises `Unauthenticated` for none, or for two
    forms that disagree (a client may send basic auth and X-ClickHouse-Key with the same token)."""
    authorization = req.headers.get_all("Authorization") or []
    keys = req.headers.get_all("X-ClickHouse-Key") or []
    if len(authorization) > 1 or len(keys) > 1:
        raise Unauthenticated("the request has several Authorization or X-ClickHouse-Key headers; send one")
    found = {key.strip() for key in keys}
    if authorization:
        scheme, _, value = authorization[0].strip().partition(" ")
        if scheme.lower() == "bearer":
            found.add(value.strip())
        elif scheme.lower() == "basic":
            try:
                found.add(base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2])
            except (binascii.Error, UnicodeDecodeError):
                raise Unauthenticated("the basic-auth credentials are not base64 of user:password") from None
        else:
            raise Unauthenticated("the Authorization header must be 'Bearer <token>' or 'Basic <credentials>'")
    found.discard("")
    if len(found) > 1:
        raise Unauthenticated("the request carries two different tokens; send one")
    if not found:
        raise Unauthenticated("this endpoint requires a token: send 'Authorization: Bearer <token>', basic auth "
                              "with the token as the password, or X-ClickHouse-Key: <token>")
    return found.pop()
