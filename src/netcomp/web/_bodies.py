"""Response bodies: what a handler's body becomes, files, and closing streamed ones.

* :func:`plain_body`: text (UTF-8, ``text/html`` unless a type is set), JSON data
  (``dict``/``list``) and buffers become bytes; ``None`` an empty body.
* :class:`FileSlice`: exactly ``length`` bytes of an open file from ``offset`` (what
  :class:`Static` answers with), so the body always matches the Content-Length sent.
* :class:`SendFile`: a regular file on its way out through ``os.sendfile`` (zero copy,
  plain TCP only); :func:`sendfile_plan` tells whether a body can go that way.
* :class:`FileChunks`: any binary file read in 64 KiB chunks (TLS, pipes, ``BytesIO``).
* :func:`close_source`: every streamed body is closed when its response ends or its
  connection goes, whether or not it was started.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from typing import Any, BinaryIO

from ._headers import Headers

__all__ = [
    "CHUNK",
    "FileChunks",
    "FileSlice",
    "SendFile",
    "close_source",
    "plain_body",
    "sendfile_plan",
]

#: The most a file body is read at once.
CHUNK = 64 * 1024
_HTML = ("Content-Type", "text/html; charset=utf-8")
_JSON = ("Content-Type", "application/json")


def plain_body(body: Any, headers: Headers) -> Any:
    """``body`` as bytes when it is text, JSON data or a buffer (adding the Content-Type
    to ``headers`` unless one is set), ``b""`` for ``None``; streams (iterables, files)
    as they are."""
    if isinstance(body, str):
        body = body.encode("utf-8")
        if not headers._items or "content-type" not in headers:
            headers._items.append(_HTML)
    elif isinstance(body, (dict, list)):
        body = json.dumps(body, separators=(",", ":")).encode()
        if not headers._items or "content-type" not in headers:
            headers._items.append(_JSON)
    elif isinstance(body, (bytearray, memoryview)):
        body = bytes(body)
    elif body is None:
        body = b""
    return body


class FileSlice:
    """``length`` bytes of an open binary ``file`` from ``offset``: a response body.

    Iterating yields chunks of at most 64 KiB and stops after ``length`` bytes; a file that
    turns out shorter raises ``OSError`` (the connection is then cut, since the length was
    already promised). ``close()`` closes the file; the server calls it when the response
    ends or the connection goes. ``fileno()``, ``offset`` and ``length`` are what a
    zero-copy sender (``os.sendfile``) needs.
    """

    __slots__ = ("_position", "_remaining", "file", "length", "offset")

    def __init__(self, file: BinaryIO, offset: int, length: int) -> None:
        if offset < 0 or length < 0:
            raise ValueError(f"offset and length must be >= 0, got {offset}, {length}")
        self.file = file
        self.offset = offset
        self.length = length
        self._position = offset
        self._remaining = length

    @property
    def position(self) -> int:
        """The file offset of the next byte to send."""
        return self._position

    @property
    def remaining(self) -> int:
        """Bytes not yet produced."""
        return self._remaining

    def fileno(self) -> int:
        """The file's descriptor."""
        return self.file.fileno()

    def advance(self, count: int) -> None:
        """Record ``count`` bytes as sent by other means (``os.sendfile``)."""
        if not 0 <= count <= self._remaining:
            raise ValueError(f"cannot advance by {count}: {self._remaining} bytes remain")
        self._position += count
        self._remaining -= count

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._remaining <= 0:
            self.close()
            raise StopIteration
        data = os.pread(self.file.fileno(), min(CHUNK, self._remaining), self._position)
        if not data:
            self.close()
            raise OSError(f"{self.file.name!r} ended {self._remaining} bytes early")
        self.advance(len(data))
        return data

    def close(self) -> None:
        """Close the file (idempotent)."""
        self.file.close()

    def __repr__(self) -> str:
        return f"<FileSlice {self.file.name!r} offset={self.offset} length={self.length}>"


class SendFile:
    """A file body on its way out through ``os.sendfile``: ``count`` bytes from ``offset``."""

    __slots__ = ("count", "fd", "file", "offset", "started")

    def __init__(self, file: Any, fd: int, offset: int, count: int) -> None:
        self.file = file
        self.fd = fd
        self.offset = offset
        self.count = count
        self.started = False

    def close(self) -> None:
        """Close the file (the connection went away)."""
        self.file.close()


def sendfile_plan(body: Any, declared_length: str | None) -> SendFile | None:
    """How to send ``body`` with ``os.sendfile``: a :class:`FileSlice`, or a regular file
    from its current position to its end (or to the ``Content-Length`` the handler set);
    ``None`` when it is no regular file (a pipe, a ``BytesIO``...)."""
    if body.__class__ is FileSlice:
        return SendFile(body, body.fileno(), body.position, body.remaining)
    try:
        fd = body.fileno()
        info = os.fstat(fd)
        offset = body.tell()
    except (AttributeError, OSError, ValueError):
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    count = max(0, info.st_size - offset)
    if declared_length is not None and declared_length.isdigit():
        count = min(count, int(declared_length))
    return SendFile(body, fd, offset, count)


class FileChunks:
    """A file read in chunks; closed at its end or by :meth:`close` (even unstarted)."""

    __slots__ = ("file",)

    def __init__(self, file: Any) -> None:
        self.file = file

    def __iter__(self) -> FileChunks:
        return self

    def __next__(self) -> bytes:
        try:
            chunk: bytes = self.file.read(CHUNK)
        except BaseException:
            self.file.close()
            raise
        if not chunk:
            self.file.close()
            raise StopIteration
        return chunk

    def close(self) -> None:
        """Close the file."""
        self.file.close()


def close_source(source: Any) -> None:
    """Close a streamed body (iterator, file reader, sendfile plan) if it can be closed."""
    close = getattr(source, "close", None)
    if close is not None:
        close()
