"""gzip response compression, negotiated by ``Accept-Encoding`` and streamed.

Rules:
* A response is compressed when the request accepts gzip (RFC 9110 section 12.5.3:
  ``gzip``/``x-gzip`` or ``*`` with a q-value above 0, ``gzip;q=0`` refuses), its type is
  a compressible one (text, JSON, JavaScript, XML, SVG by default; never images,
  archives or other already-compressed types), its status is a 2xx other than 204 and
  206, it has no ``Content-Encoding`` yet and no ``Cache-Control: no-transform``, it is
  not an answer to HEAD, and its body is known to be at least ``min_size`` bytes (or is
  a stream of unknown size).
* Every response of a compressible type says ``Vary: Accept-Encoding``, compressed or
  not, so that caches keep the two apart. A strong ``ETag`` becomes weak once compressed.
* Bytes are compressed at once (with their Content-Length); streams (iterables, files,
  file slices) are compressed chunk by chunk as the connection takes them, and sent
  chunked; what a handler writes by hand goes through an encoder that flushes each write
  (a streamed page shows as it is written).
* :class:`Gzip` does this for the servers on its channel (a response filter);
  :func:`gzip` is circuits.web's tool, for one response (no ``min_size``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from ._attach import FilterComponent
from ._bodies import FileChunks, FileSlice, close_source, plain_body
from ._response import Response

__all__ = ["COMPRESSIBLE", "Gzip", "GzipEncoder", "accepts_gzip", "compress", "gzip"]

#: Media types compressed by default (``text/*`` is compressible too).
COMPRESSIBLE = frozenset(
    (
        "application/javascript",
        "application/json",
        "application/ld+json",
        "application/manifest+json",
        "application/xhtml+xml",
        "application/xml",
        "image/svg+xml",
    )
)


def accepts_gzip(field: str | None) -> bool:
    """Whether an ``Accept-Encoding`` field value accepts gzip."""
    if not field:
        return False
    star: float | None = None
    for item in field.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        if coding in ("gzip", "x-gzip"):
            return quality > 0
        if coding == "*":
            star = quality
    return star is not None and star > 0


class GzipEncoder:
    """gzip, one piece at a time: ``encode(data)`` gives what can be sent now (each write
    flushed with ``Z_SYNC_FLUSH`` when ``flush_each``), ``finish()`` the tail."""

    __slots__ = ("_zlib", "flush_each")

    def __init__(self, level: int = 6, flush_each: bool = True) -> None:
        self._zlib: Any = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        self.flush_each = flush_each

    def encode(self, data: bytes) -> bytes:
        """Compress ``data``; returns the bytes ready to go out (maybe empty)."""
        if self._zlib is None:
            raise RuntimeError("the gzip stream is finished")
        out = self._zlib.compress(data)
        if self.flush_each and data:
            out += self._zlib.flush(zlib.Z_SYNC_FLUSH)
        return out  # type: ignore[no-any-return]

    def finish(self) -> bytes:
        """The end of the gzip stream (once; ``b""`` after that)."""
        if self._zlib is None:
            return b""
        tail, self._zlib = self._zlib.flush(zlib.Z_FINISH), None
        return tail  # type: ignore[no-any-return]


class _Compressed:
    """A streamed body compressed as it is pulled; ``close()`` closes the source."""

    __slots__ = ("_done", "_encoder", "_source")

    def __init__(self, source: Iterator[Any], level: int, flush_each: bool) -> None:
        self._source = source
        self._encoder = GzipEncoder(level, flush_each)
        self._done = False

    def __iter__(self) -> _Compressed:
        return self

    def __next__(self) -> bytes:
        while not self._done:
            try:
                chunk = next(self._source)
            except StopIteration:
                self._done = True
                return self._encoder.finish()
            if isinstance(chunk, str):
                chunk = chunk.encode("utf-8")
            out = self._encoder.encode(chunk)
            if out:
                return out
        raise StopIteration

    def close(self) -> None:
        """Close the source."""
        self._done = True
        close_source(self._source)


def compress(body: Iterable[Any], compress_level: int) -> Iterator[bytes]:
    """circuits.web's ``compress``: the gzip form of ``body`` (an iterable of bytes or
    str, a file), piece by piece."""
    source = body if isinstance(body, Iterator) else iter(body)
    return _Compressed(source, compress_level, flush_each=False)


def _base_type(response: Response) -> str:
    kind = response.headers.get("content-type")
    if kind is None:
        body = response.body
        kind = (
            "text/html"
            if isinstance(body, str)
            else "application/json"
            if isinstance(body, (dict, list))
            else ""
        )
    return kind.partition(";")[0].strip().lower()


def _vary(response: Response) -> None:
    current = response.headers.get("vary", "")
    names = [name.strip() for name in current.split(",") if name.strip()]
    if not any(name.lower() in ("accept-encoding", "*") for name in names):
        response.headers["Vary"] = ", ".join([*names, "Accept-Encoding"])


def _eligible(response: Response, types: frozenset[str] | None) -> bool:
    kind = _base_type(response)
    if types is None:
        return kind.startswith("text/") or kind in COMPRESSIBLE
    return kind in types


def _applies(response: Response) -> bool:
    request = response.request
    headers = response.headers
    return (
        request is not None
        and request.method != "HEAD"
        and 200 <= response.status <= 299
        and response.status not in (204, 206)
        and "content-encoding" not in headers
        and "no-transform" not in headers.get("cache-control", "").lower()
        and accepts_gzip(request.headers.get("accept-encoding"))
    )


def _encoded(response: Response) -> None:
    headers = response.headers
    headers["Content-Encoding"] = "gzip"
    headers.remove("content-length")
    etag = headers.get("etag")
    if etag is not None and not etag.startswith("W/"):
        headers["ETag"] = "W/" + etag


def compress_response(
    response: Response, by_hand: bool, level: int, min_size: int, types: frozenset[str] | None
) -> None:
    """Compress ``response`` in place if the rules allow (see the module docstring)."""
    if not _eligible(response, types):
        return
    _vary(response)
    if not _applies(response):
        return
    if by_hand:
        response.encoder = GzipEncoder(level)
        _encoded(response)
        return
    body = plain_body(response.body, response.headers)
    if isinstance(body, bytes):
        if len(body) < max(min_size, 1):
            response.body = body
            return
        encoder = GzipEncoder(level, flush_each=False)
        response.body = encoder.encode(body) + encoder.finish()
        _encoded(response)
        return
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) < min_size:
        return
    if hasattr(body, "read") and body.__class__ is not FileSlice:
        body = FileChunks(body)
    response.body = _Compressed(iter(body), level, flush_each=body.__class__ not in _FILES)
    _encoded(response)


_FILES = (FileSlice, FileChunks)


def gzip(
    response: Response, level: int = 4, mime_types: Iterable[str] = ("text/html", "text/plain")
) -> Response:
    """circuits.web's tool: compress ``response`` when its request accepts gzip and its
    type is one of ``mime_types``. Returns ``response``."""
    compress_response(response, False, level, 0, frozenset(mime_types))
    return response


class Gzip(FilterComponent):
    """Compresses the responses of the servers on its channel with gzip (see the module
    rules): ``level`` 1-9, ``min_size`` in bytes, ``types`` the media types to compress
    (None: text and the :data:`COMPRESSIBLE` types)."""

    def __init__(
        self,
        level: int = 6,
        min_size: int = 1024,
        types: Iterable[str] | None = None,
        channel: Any = "web",
    ) -> None:
        """Check ``level`` (1-9) and ``min_size`` (>= 0)."""
        super().__init__(channel=channel)
        if not 1 <= level <= 9:
            raise ValueError(f"gzip level is 1 to 9, got {level}")
        if min_size < 0:
            raise ValueError(f"min_size must be >= 0, got {min_size}")
        self.level = level
        self.min_size = min_size
        self.types = frozenset(t.lower() for t in types) if types is not None else None

    def response_filter(self, response: Response, by_hand: bool) -> None:
        """Compress ``response`` if the rules allow."""
        compress_response(response, by_hand, self.level, self.min_size, self.types)
