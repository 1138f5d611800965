"""HTTP content codings as ClickHouse's HTTP interface speaks them: gzip, deflate (zlib), zstd, lz4 (frame
format) and br, for request bodies (`Content-Encoding`) and responses (`Accept-Encoding`).

Request bodies are inflated only up to a limit: a small compressed body that would inflate to gigabytes
is refused after `limit + 1` bytes of output, never held in memory whole.

zstd and lz4 come with clickhouse-connect's dependencies; br is offered only when `brotli` is installed.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from typing import Any

from spanhouse.errors import InvalidRequest, RequestTooLarge

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
# Each makes a fresh decompressor for one stream (gzip member, zstd or lz4 frame) whose
# `decompress(data, max_length)` stops after `max_length` bytes of output.
_DECODERS: dict[str, Callable[[], Any]] = {
    "gzip": lambda: _Zlib(31),
    "x-gzip": lambda: _Zlib(31),
    "deflate": lambda: _Zlib(15),
}
# streams that may follow one another in one body (RFC 1952 members, zstd and lz4 frames)
_CONCATENATED = frozenset({"gzip", "x-gzip", "zstd", "lz4"})
if _zstd is not None:
    _ENCODERS["zstd"] = _zstd.compress
    _DECODERS["zstd"] = _zstd.ZstdDecompressor
if _lz4 is not None:
    _ENCODERS["lz4"] = _lz4.compress
    _DECODERS["lz4"] = _lz4.LZ4FrameDecompressor
if _brotli is not None:
    _ENCODERS["br"] = _brotli.compress
    if hasattr(_brotli.Decompressor, "can_accept_more_data"):  # brotli >= 1.1 bounds its output
        _DECODERS["br"] = lambda: _Brotli()

SUPPORTED = tuple(_ENCODERS)


class _Zlib:
    """zlib's decompressor with the interface of zstd's and lz4's."""

    def __init__(self, wbits: int):
        self._d = zlib.decompressobj(wbits)
        self._tail = b""

    def decompress(self, data: bytes, max_length: int) -> bytes:
        out = self._d.decompress(self._tail + data, max(max_length, 0))  # zlib's 0 is no limit
        self._tail = self._d.unconsumed_tail
        return out

    @property
    def eof(self) -> bool:
        return self._d.eof

    @property
    def needs_input(self) -> bool:
        return not self._tail

    @property
    def unused_data(self) -> bytes:
        return self._d.unused_data


class _Brotli:
    """brotli's decompressor with the interface of zstd's and lz4's (one stream, no trailing data)."""

    def __init__(self) -> None:
        self._d = _brotli.Decompressor()
        self.unused_data = b""

    def decompress(self, data: bytes, max_length: int) -> bytes:
        return self._d.process(data, output_buffer_limit=max_length)

    @property
    def eof(self) -> bool:
        return self._d.is_finished()

    @property
    def needs_input(self) -> bool:
        return self._d.can_accept_more_data()


def decode(data: bytes, encoding: str, limit: int) -> bytes:
    """The request body without its `Content-Encoding`, inflated to at most `limit` bytes (0: no limit).

    Raises `RequestTooLarge` as soon as the output passes `limit`, and `InvalidRequest` for an unknown
    coding or data that is not valid (or is cut short) in it."""
    name = encoding.strip().lower()
    if name in ("", "identity", "none"):
        return data
    make = _DECODERS.get(name)
    if make is None:
        raise InvalidRequest(f"Content-Encoding {encoding!r} is not supported; use one of {', '.join(SUPPORTED)}")
    out: list[bytes] = []
    total = 0
    while True:
        decoder = make()
        try:
            chunk = decoder.decompress(data, limit + 1 - total if limit else -1)
        except Exception as exc:
            raise InvalidRequest(f"request body is not valid {name} data: {exc}") from None
        total += len(chunk)
        if limit and total > limit:
            raise RequestTooLarge(f"decompressed request body is over the limit of {limit} bytes")
        out.append(chunk)
        if not decoder.eof:
            if not decoder.needs_input:  # output stopped at the limit with input left
                raise RequestTooLarge(f"decompressed request body is over the limit of {limit} bytes")
            raise InvalidRequest(f"request body is truncated {name} data")
        data = decoder.unused_data
        if not data or name not in _CONCATENATED:
            if data:
                raise InvalidRequest(f"request body has data after the end of its {name} stream")
            return b"".join(out)


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
