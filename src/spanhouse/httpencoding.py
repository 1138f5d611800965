"""HTTP content codings as ClickHouse's HTTP interface speaks them: gzip, deflate (zlib), zstd, lz4 (frame
format) and br, for request bodies (`Content-Encoding`) and responses (`Accept-Encoding`).

zstd and lz4 come with clickhouse-connect's dependencies; br is offered only when `brotli` is installed.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable

from spanhouse.errors import InvalidRequest

try:
    import lz4.frame as _lz4
except ImportError:  # pragma: no cover - a clickhouse-connect dependency
    _lz4 = None
try:
    from backports import zstd as _zstd
except ImportError:  # pragma: no cover - Python 3.14 ships it as compression.zstd
    try:
        from compression import zstd as _zstd  # type: ignore[no-redef]
    except ImportError:
        _zstd = None
try:
    import brotli as _brotli  # type: ignore[import-not-found]
except ImportError:
    _brotli = None

_ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda b: gzip.compress(b, 3),
    "deflate": lambda b: zlib.compress(b, 3),
}
_DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.decompress,
    "x-gzip": gzip.decompress,
    "deflate": zlib.decompress,
}
if _zstd is not None:
    _ENCODERS["zstd"] = _zstd.compress
    _DECODERS["zstd"] = _zstd.decompress
if _lz4 is not None:
    _ENCODERS["lz4"] = _lz4.compress
    _DECODERS["lz4"] = _lz4.decompress
if _brotli is not None:
    _ENCODERS["br"] = _brotli.compress
    _DECODERS["br"] = _brotli.decompress

SUPPORTED = tuple(_ENCODERS)


def decode(data: bytes, encoding: str) -> bytes:
    """The request body without its `Content-Encoding`; raises `InvalidRequest` for unknown or bad data."""
    name = encoding.strip().lower()
    if name in ("", "identity", "none"):
        return data
    decoder = _DECODERS.get(name)
    if decoder is None:
        raise InvalidRequest(f"Content-Encoding {encoding!r} is not supported; use one of {', '.join(SUPPORTED)}")
    try:
        return decoder(data)
    except Exception as exc:
        raise InvalidRequest(f"request body is not valid {name} data: {exc}") from None


def negotiate(accept_encoding: str) -> str | None:
    """The first coding in `Accept-Encoding` (in the client's order, q=0 excluded) that is supported."""
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        name = name.strip().lower()
        if params.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            continue
        if name in _ENCODERS:
            return name
    return None


def encode(data: bytes, name: str) -> bytes:
    return _ENCODERS[name](data)
