"""Where a chunked request body ends in the bytes that arrive (RFC 9112 section 7.1).

The scanner only finds the boundaries and counts sizes exactly, as the bytes arrive,
whatever the reads look like; llhttp parses the same bytes afterwards and checks their
syntax. Limits: at most 16 hex digits of chunk size (400), at most
``max_chunk_extension`` bytes of extensions per chunk (400), a trailer section of at
most ``max_head_size`` bytes (431).
"""

from __future__ import annotations

from typing import Final

from ._limits import HTTPLimits

__all__ = ["ChunkScanner", "Outcome"]

#: How many bytes belong to the body, and the (status, reason) of the error that stops
#: it after them (unless llhttp finds an error in those bytes first).
Outcome = tuple[int, tuple[int, str] | None]

_SIZE: Final = 0  # in a chunk-size line
_DATA: Final = 1  # in chunk data (and its CRLF)
_TRAILER: Final = 2  # in the trailer section
_HEX = b"0123456789abcdefABCDEF"


class ChunkScanner:
    """The framing state of one chunked body; :meth:`reset` for the next one."""

    __slots__ = (
        "blank",
        "done",
        "left",
        "line",
        "max_extension",
        "max_trailer",
        "state",
        "trailer",
    )

    def __init__(self, limits: HTTPLimits) -> None:
        self.max_extension = limits.max_chunk_extension
        self.max_trailer = limits.max_head_size
        self.reset()

    def reset(self) -> None:
        """A new chunked body starts."""
        self.state = _SIZE
        self.left = 0  # chunk data + CRLF still to come
        self.line = b""  # the chunk-size line so far (bounded by the checks)
        self.trailer = 0  # trailer-section bytes so far
        self.blank = True  # the trailer line so far is empty
        self.done = False  # the empty line that ends the body was seen

    def scan(self, window: bytes) -> Outcome:
        """How many bytes of ``window`` belong to the body (up to its end at most, and
        then :attr:`done` is set), and the error that stops it."""
        n = len(window)
        i = 0
        while i < n:
            state = self.state
            if state == _DATA:
                step = min(self.left, n - i)
                i += step
                self.left -= step
                if not self.left:
                    self.state = _SIZE
                continue
            lf = window.find(b"\n", i)
            stop = n if lf < 0 else lf + 1
            if state == _SIZE:
                outcome = self._size_line(window[i:stop], i, lf >= 0)
            else:
                outcome = self._trailer_line(window[i:stop], i, lf >= 0)
            if outcome is not None:
                return outcome
            i = stop
        return n, None

    def _size_line(self, piece: bytes, at: int, complete: bool) -> Outcome | None:
        """A chunk-size line, or the part of it in ``piece`` (which starts at ``at`` in
        the window); ``None`` once a complete line sets the next state."""
        before = len(self.line)
        line = self.line + piece if before else piece
        digits = len(line) - len(line.lstrip(_HEX))  # leading hex digits, counted in C
        if digits > 16:
            return at + 16 - before, (400, "chunk size too large")
        body = line[:-2] if complete and line.endswith(b"\r\n") else line
        if not complete and body.endswith(b"\r"):
            body = body[:-1]
        limit = self.max_extension
        if len(body) - digits > limit and digits < len(line):
            return max(0, at + digits + limit - before), (400, "chunk extension too large")
        if not complete:
            self.line = line
            return at + len(piece), None
        self.line = b""
        if not digits:
            return at + len(piece), None  # not a chunk size: llhttp says what is wrong
        size = int(line[:digits], 16)
        if size:
            self.state, self.left = _DATA, size + 2
        else:
            self.state, self.trailer, self.blank = _TRAILER, 0, True
        return None

    def _trailer_line(self, piece: bytes, at: int, complete: bool) -> Outcome | None:
        """A trailer field line, or the empty line that ends the body (then ``done``)."""
        self.trailer += len(piece)
        if self.trailer > self.max_trailer:
            over = self.max_trailer - (self.trailer - len(piece))
            return at + max(0, over), (431, "trailer section too large")
        blank = self.blank and piece in (b"\r\n", b"\n", b"\r")
        if not complete:
            self.blank = blank
            return at + len(piece), None
        if blank:
            self.state = _SIZE
            self.done = True
            return at + len(piece), None
        self.blank = True
        return None
