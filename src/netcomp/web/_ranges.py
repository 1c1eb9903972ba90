"""Byte ranges (RFC 9110 section 14): reading a ``Range`` field, and the
``multipart/byteranges`` body that answers several ranges.

Rules:
* Only the ``bytes`` unit. A malformed field, another unit or an invalid range
  (``5-2``) is ignored: the whole representation is sent (section 14.2).
* A range that starts past the end is unsatisfiable and dropped; when nothing is left
  the answer is 416 (section 15.5.17).
* Abuse (section 17.15) is refused: more than :data:`MAX_RANGES` ranges are ignored
  (200, the whole file), overlapping ranges are rejected (416). What is left is sent in
  ascending order, each range once.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
from collections.abc import Iterator
from typing import Any

from ._compat_errors import RangeUnsatisfiable

__all__ = ["MAX_RANGES", "MultiRange", "get_ranges", "parse_range", "parse_ranges"]

#: The most ranges one request may ask for; past it the field is ignored.
MAX_RANGES = 16
_RANGE = re.compile(r"[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*")
_CHUNK = 64 * 1024


def _one(spec: str, size: int) -> tuple[int, int] | str | None:
    match = _RANGE.fullmatch(spec)
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:  # -n: the last n bytes
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # invalid: the whole field is ignored (RFC 9110 section 14.1.1)
    if first >= size:
        return "unsatisfiable"
    last = int(last_text) if last_text else size - 1
    return first, min(last, size - 1)


def parse_ranges(field: str, size: int) -> list[tuple[int, int]] | str | None:
    """The ``bytes=`` ranges of a ``size``-byte representation, as sorted
    ``(first, last)`` pairs; ``"unsatisfiable"`` for a 416 (none is satisfiable, or they
    overlap); ``None`` to ignore the field and send everything."""
    unit, _, ranges = field.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    specs = ranges.split(",")
    if len(specs) > MAX_RANGES:
        return None
    found: list[tuple[int, int]] = []
    for spec in specs:
        wanted = _one(spec, size)
        if wanted is None:
            return None
        if not isinstance(wanted, str):
            found.append(wanted)
    if not found:
        return "unsatisfiable"
    found.sort()
    for (_, last), (first, _) in itertools.pairwise(found):
        if first <= last:
            return "unsatisfiable"  # overlapping ranges: a broken client or an attack
    return found


def parse_range(field: str, size: int) -> tuple[int, int] | str | None:
    """One ``bytes=`` range as ``(first, last)``; ``"unsatisfiable"`` (416); ``None``
    to ignore the field (malformed, another unit, or several ranges)."""
    if "," in field:
        return None
    found = parse_ranges(field, size)
    return found[0] if isinstance(found, list) else found


def get_ranges(field: str | None, content_length: int) -> list[tuple[int, int]] | None:
    """circuits.web's ``get_ranges``: ``[(start, stop), ...]`` with ``stop`` exclusive
    (``bytes=3-6`` of 8 bytes is ``[(3, 7)]``), ``[]`` when unsatisfiable, ``None``
    without a field or when it is to be ignored. Overlapping ranges raise
    :class:`~netcomp.web.exceptions.RangeUnsatisfiable` (416), as circuits raised for
    abusive ones."""
    if not field:
        return None
    found = parse_ranges(field, content_length)
    if found is None:
        return None
    if isinstance(found, str):
        if "," in field and _any_satisfiable(field, content_length):
            raise RangeUnsatisfiable("overlapping ranges")
        return []
    return [(first, last + 1) for first, last in found]


def _any_satisfiable(field: str, size: int) -> bool:
    specs = field.partition("=")[2].split(",")
    return any(isinstance(_one(spec, size), tuple) for spec in specs)


class MultiRange:
    """A ``multipart/byteranges`` body: each range of an open file with its own head,
    read with ``os.pread`` as the connection takes it. ``content_type`` is the header
    field to give it; ``length`` its exact size. ``close()`` closes the file."""

    def __init__(self, file: Any, ranges: list[tuple[int, int]], size: int, kind: str) -> None:
        self.file = file
        self.boundary = secrets.token_hex(16)
        self.content_type = f"multipart/byteranges; boundary={self.boundary}"
        self._parts: list[tuple[bytes, int, int]] = []
        for first, last in ranges:
            head = (
                f"--{self.boundary}\r\nContent-Type: {kind}\r\n"
                f"Content-Range: bytes {first}-{last}/{size}\r\n\r\n"
            ).encode("latin-1")
            self._parts.append((head, first, last - first + 1))
        self._tail = f"--{self.boundary}--\r\n".encode("latin-1")
        self.length = sum(len(head) + count + 2 for head, _, count in self._parts) + len(
            self._tail
        )
        self._iterator = self._generate()

    def _generate(self) -> Iterator[bytes]:
        fd = self.file.fileno()
        for head, offset, count in self._parts:
            yield head
            while count > 0:
                data = os.pread(fd, min(_CHUNK, count), offset)
                if not data:
                    raise OSError(f"{self.file.name!r} ended before its ranges")
                offset += len(data)
                count -= len(data)
                yield data
            yield b"\r\n"
        yield self._tail
        self.close()

    def __iter__(self) -> MultiRange:
        return self

    def __next__(self) -> bytes:
        return next(self._iterator)

    def close(self) -> None:
        """Close the file (idempotent)."""
        self.file.close()
