"""Sans-IO HTTP/1.1 server protocol: bytes in, request events out; response bytes out.

No socket, no clock, no component: the server feeds it what it reads and sends what it
gets back. llhttp (through httptools) checks the syntax; it enforces no sizes and few
message rules, so this layer adds them (RFC 9112 unless noted):

* Sizes are counted exactly, byte by byte as they arrive, never after: request line
  (method, target and version: 414), one field, the whole head with its CRLFs, the
  number of fields (431). Chunk extensions are bounded per chunk (400), the trailer
  section like a head (431). The outcome never depends on how the input was split.
* Empty lines before a request line are ignored (section 2.2); trailing whitespace is
  not part of a field value (section 5).
* A body larger than ``max_body_size`` is refused from its Content-Length, before any of
  it is read (413); a chunked one as soon as it grows past the limit.
* Exactly one Host in HTTP/1.1 (section 3.2), at most one in 1.0 (400). Versions other
  than 1.0 and 1.1 get 505.
* Transfer-Encoding: only ``chunked`` is implemented (others 501, section 6.1); with
  Content-Length it is refused (400, section 6.3 point 3: the connection must close);
  on HTTP/1.0 it is refused (400, section 6.1).
* llhttp refuses conflicting or malformed Content-Length, bare LF, bare CR, control bytes
  and whitespace between a field name and its colon (400, section 5.1).
* A request asking to switch protocols (``Upgrade`` with ``Connection: upgrade``) is a
  *pending switch*, as h11's: its head says so (``RequestHead.upgrade``), its body (if
  any) is read, and then the parser pauses (``PAUSED``): the bytes after it may belong to
  another protocol. The server either switches (:meth:`ServerProtocol.switch` hands over
  those bytes and ends HTTP parsing) or declines (:meth:`ServerProtocol.resume`: the
  request was a plain one and parsing goes on). A 100-continue expectation in HTTP/1.0 is
  ignored (RFC 9110 section 10.1.1).
* After a request that ends the connection (``Connection: close``, or 1.0 without
  keep-alive) nothing more is parsed. A valid request followed by garbage yields the
  request, then the error: the server answers both, in order.
* Every error is final: the protocol yields the same :class:`ProtocolError` from then on.

Input is parsed in pieces of at most ``PIECE`` bytes and only when the caller asks for the
next event, so a caller that stops asking (its pipeline is full) holds at most one piece of
parsed-but-unanswered requests beyond it.

The events and the response framing are in :mod:`._messages`; where a chunked body ends
is found by a :class:`~._chunked.ChunkScanner`.
"""

from __future__ import annotations

from collections import deque
from types import SimpleNamespace
from typing import Any, Final

import httptools

from ._chunked import ChunkScanner
from ._errors import ProtocolError
from ._limits import HTTPLimits
from ._messages import CLOSED, END, NEED_DATA, PAUSED, Body, Event, RequestHead

__all__ = ["PIECE", "ServerProtocol"]

PIECE: Final = 64 * 1024


class _Reject(Exception):
    """Raised inside a parser callback; becomes the ProtocolError."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


_HEAD: Final = 0  # a head is expected or arriving
_LENGTH: Final = 1  # a Content-Length body is arriving
_CHUNKED: Final = 2  # a chunked body is arriving


class ServerProtocol:
    """One connection's request parser and framing rules (see the module rules).

    Bytes are handed to llhttp one message part at a time: a head (or the part of it that
    has arrived) and then its body, never across a message boundary. Where each part ends
    is found here (the empty line after a head, the Content-Length, the chunk framing), so
    every size is counted exactly, as the bytes arrive, whatever the reads look like.
    """

    def __init__(self, limits: HTTPLimits | None = None) -> None:
        self.limits = limits if limits is not None else HTTPLimits()
        self._parser = self._new_parser()
        self._pending = b""
        self._events: deque[Any] = deque()
        self._error: ProtocolError | None = None
        self._eof = False
        self._ended = False  # a request ended the connection: parse nothing more
        self._phase = _HEAD
        self._priming = False  # a synthetic head is being fed (see _upgraded)
        self._paused = False  # a pending switch: parse nothing until switch() or resume()
        self._pause_at_end = False  # pause once the upgrade request's body is read
        self._head: RequestHead | None = None
        # The head being received, raw: bytes so far, the last 3 of them (the empty line
        # may straddle reads), whether the request line is complete.
        self._head_seen = 0
        self._head_tail = b""
        self._line_done = False
        # The body being received.
        self._left = 0  # Content-Length bytes still to come
        self._chunks = ChunkScanner(self.limits)  # where a chunked body ends
        # Per message (reset by on_message_begin).
        self._in_head = False
        self._url: list[bytes] = []
        self._fields: list[tuple[str, str]] = []
        self._hosts = 0
        self._codings: list[str] | None = None
        self._content_length: int | None = None
        self._expect: str | None = None
        self._upgrade: str | None = None
        self._body_size = 0
        self._keep_alive = True

    def close(self) -> None:
        """Parse nothing more, and let go of the parser (which calls back into this
        object: a cycle that refcounting alone would never free)."""
        self._ended = True
        self._pending = b""
        self._parser = None  # type: ignore[assignment]

    def _new_parser(self) -> httptools.HttpRequestParser:
        # llhttp calls back by these names; the methods stay private to this class.
        return httptools.HttpRequestParser(
            SimpleNamespace(
                on_message_begin=self._on_message_begin,
                on_url=self._on_url,
                on_header=self._on_header,
                on_headers_complete=self._on_headers_complete,
                on_body=self._on_body,
                on_message_complete=self._on_message_complete,
            )
        )

    # ------------------------------------------------------------ public API
    def receive_data(self, data: bytes) -> None:
        """Give the bytes read from the peer; ``b""`` means the peer's EOF."""
        if not data:
            self._eof = True
        elif not self._ended and self._error is None:
            self._pending = self._pending + data if self._pending else data

    @property
    def buffered(self) -> int:
        """Bytes received and not yet parsed."""
        return len(self._pending)

    @property
    def receiving_head(self) -> bool:
        """Part of a head is here (or unparsed bytes are): the head timeout applies."""
        if self._paused:
            return False  # what is pending may not be HTTP at all
        return self._in_head or self._head_seen > 0 or bool(self._pending)

    @property
    def paused(self) -> bool:
        """A switch of protocols is pending (``next_event`` returns ``PAUSED``)."""
        return self._paused

    def switch(self) -> bytes:
        """Switch protocols after the pending request: return the bytes received after it
        (the new protocol's) and parse nothing more."""
        if not self._paused:
            raise RuntimeError("no switch of protocols is pending")
        trailing = self._pending
        self.close()
        self._paused = False
        return trailing

    def resume(self) -> None:
        """Decline the pending switch: the request was a plain one; parsing goes on."""
        self._paused = False

    def next_event(self) -> Event:
        """The next :class:`RequestHead`, :class:`Body`, :class:`EndOfMessage`, the
        :class:`ProtocolError` that ends the connection, ``NEED_DATA`` or ``CLOSED``."""
        events = self._events
        while True:
            if events:
                return events.popleft()  # type: ignore[no-any-return]
            if self._error is not None:
                return self._error
            if self._ended:
                return CLOSED
            if self._paused:
                return PAUSED
            if not self._pending or not self._feed():
                if self._eof:
                    self._ended = True
                    if self._phase != _HEAD or self._head_seen or self._pending:
                        self._pending = b""
                        self._error = ProtocolError(400, "connection closed mid-request")
                        continue
                    return CLOSED
                return NEED_DATA

    # ------------------------------------------------------------- parsing
    def _feed(self) -> bool:
        """Parse the next part of the input; False if it needs more bytes to progress."""
        phase = self._phase
        if phase == _HEAD:
            take = 0
            error: tuple[int, str] | None = None
            if not self._head_seen:  # _scan_head's common case, inline: a whole head
                data = self._pending
                end = data.find(b"\r\n\r\n", 0, PIECE)
                if end > 0:
                    eol = data.find(b"\r\n")
                    limits = self.limits
                    if 0 < eol <= limits.max_request_line and end + 4 <= limits.max_head_size:
                        take = end + 4
            if not take:
                take, error = self._scan_head()
        elif phase == _LENGTH:
            take, error = min(self._left, len(self._pending), PIECE), None
            self._left -= take
            if not self._left:
                self._phase = _HEAD
        else:
            data, chunks = self._pending, self._chunks
            take, error = chunks.scan(data if len(data) <= PIECE else data[:PIECE])
            if chunks.done:
                self._phase = _HEAD
        if take == 0 and error is None:
            return False
        data = self._pending
        if take >= len(data):
            piece, self._pending = data, b""
        else:
            piece, self._pending = data[:take], data[take:]
        if piece:
            try:  # (the common case inline; _parse says what the errors become)
                self._parser.feed_data(piece)
            except (httptools.HttpParserError, httptools.HttpParserUpgrade):
                self._parse_failed()
        if error is not None and self._error is None:
            self._fail(*error)
        if self._ended:
            self._pending = b""
        return True

    def _parse_failed(self) -> None:
        """What llhttp raised (in an ``except`` clause): a pending switch, a rule of ours
        broken (``_Reject``), or malformed input."""
        try:
            raise
        except httptools.HttpParserUpgrade:
            self._upgraded()
        except httptools.HttpParserCallbackError as err:
            cause = err.__context__
            if isinstance(cause, _Reject):
                self._fail(cause.status, cause.reason)
            else:
                raise
        except httptools.HttpParserError as err:
            reason = str(err) or "malformed request"
            self._fail(505 if "HTTP version" in reason else 400, reason)

    def _scan_head(self) -> tuple[int, tuple[int, str] | None]:
        """How many pending bytes belong to the head (at most its end), and the limit
        error that stops it (after those bytes, unless llhttp finds an error first)."""
        data = self._pending
        seen = self._head_seen
        limits = self.limits
        if not seen:
            end = data.find(b"\r\n\r\n", 0, PIECE)
            if end > 0:  # the common case: a whole head, within the limits
                eol = data.find(b"\r\n")
                if 0 < eol <= limits.max_request_line and end + 4 <= limits.max_head_size:
                    return end + 4, None
            # RFC 9112 section 2.2: empty lines before a request line are ignored.
            skip = 0
            while data.startswith(b"\r\n", skip):
                skip += 2
            if skip:
                self._pending = data = data[skip:]
            if not data or data == b"\r":
                return 0, None
        tail = self._head_tail
        window = data if len(data) <= PIECE else data[:PIECE]
        buf = tail + window if tail else window
        end = buf.find(b"\r\n\r\n")
        complete = end >= 0
        take = end + 4 - len(tail) if complete else len(window)
        base = seen - len(tail)  # the head offset of buf[0]
        error: tuple[int, str] | None = None
        if not self._line_done:
            line_limit = limits.max_request_line
            eol = buf.find(b"\r\n")
            if eol >= 0 and (not complete or eol <= end):
                if base + eol > line_limit:
                    return line_limit - seen, (414, "request line too long")
                self._line_done = True
            elif seen + take > line_limit and not (
                seen + take == line_limit + 1 and window[take - 1 : take] == b"\r"
            ):
                return line_limit - seen, (414, "request line too long")
        head_limit = limits.max_head_size
        total = seen + take
        if total > head_limit if complete else total >= head_limit:
            take = max(0, head_limit - 1 - seen)
            error = (431, "request head too large")
        elif complete:
            self._head_seen = 0
            self._head_tail = b""
            self._line_done = False
            return take, None
        self._head_seen = seen + take
        self._head_tail = buf[-3:] if error is None else b""
        return take, error

    def _upgraded(self) -> None:
        """llhttp stops after a head asking for an Upgrade and takes it as bodiless. The
        switch is pending once the request is complete: at once, or, when it has a body,
        after a fresh parser primed with a head of the same framing has read it."""
        self._parser = parser = self._new_parser()
        head = self._head
        if head is not None:
            head.upgrade = self._upgrade or ""
        if head is None or not head.has_body:
            self._paused = not self._ended  # a request that ends the connection: CLOSED
            return
        self._pause_at_end = True
        if self._events and self._events[-1] is END:
            self._events.pop()
        self._ended = False
        if head.chunked:
            self._phase = _CHUNKED
            framing = b"Transfer-Encoding: chunked"
        else:
            self._phase = _LENGTH
            self._left = head.content_length or 0
            framing = b"Content-Length: %d" % self._left
        self._priming = True
        parser.feed_data(b"POST / HTTP/1.1\r\nHost: _\r\n" + framing + b"\r\n\r\n")

    def _fail(self, status: int, reason: str) -> None:
        self._error = ProtocolError(status, reason)
        self._pending = b""

    # -------------------------------------------------- llhttp callbacks
    def _on_message_begin(self) -> None:
        self._in_head = True
        self._url = []
        self._fields = []
        self._hosts = 0
        self._codings = None
        self._content_length = None
        self._expect = None
        self._upgrade = None
        self._body_size = 0

    def _on_url(self, url: bytes) -> None:
        self._url.append(url)

    def _on_header(self, name: bytes, value: bytes) -> None:
        limits = self.limits
        if len(name) + len(value) > limits.max_field_size:
            raise _Reject(431, f"header field {name[:64]!r} too large")
        if len(self._fields) >= limits.max_fields:
            raise _Reject(431, "too many header fields")
        if not self._in_head:
            return  # a trailer field: counted, not kept
        key = name.lower()
        if value.endswith((b" ", b"\t")):
            value = value.rstrip(b" \t")  # optional whitespace is not part of the value
        text = value.decode("latin-1")
        if key == b"host":
            self._hosts += 1
        elif key == b"transfer-encoding":
            if self._codings is None:
                self._codings = []
            self._codings.extend(c.strip().lower() for c in text.split(","))
        elif key == b"content-length":
            self._content_length = int(value)  # llhttp checked it is digits, and unique
        elif key == b"expect":
            self._expect = text.strip().lower()
        elif key == b"upgrade":
            value_ = text.strip().lower()
            self._upgrade = value_ if self._upgrade is None else f"{self._upgrade}, {value_}"
        self._fields.append((name.decode("latin-1"), text))

    def _on_headers_complete(self) -> None:
        self._in_head = False
        if self._priming:
            self._priming = False
            return
        parser = self._parser
        version = parser.get_http_version()
        if version not in ("1.1", "1.0"):
            raise _Reject(505, f"HTTP/{version} is not supported")
        if version == "1.1" and self._hosts != 1:
            raise _Reject(400, "HTTP/1.1 needs exactly one Host field")
        if self._hosts > 1:
            raise _Reject(400, "more than one Host field")
        method = parser.get_method().decode("ascii")
        if method == "CONNECT":
            raise _Reject(501, "CONNECT is not implemented")
        codings = self._codings
        chunked = False
        if codings is not None:
            if version == "1.0":
                raise _Reject(400, "Transfer-Encoding in an HTTP/1.0 request")
            unknown = [c for c in codings if c != "chunked"]
            if unknown:
                raise _Reject(501, f"transfer coding {unknown[0]!r} is not implemented")
            if len(codings) != 1:
                raise _Reject(400, "chunked applied more than once")
            chunked = True
        length = self._content_length
        limits = self.limits
        if length is not None and length > limits.max_body_size:
            raise _Reject(413, f"body of {length} bytes exceeds {limits.max_body_size}")
        expect = self._expect
        if expect is not None and expect != "100-continue":
            raise _Reject(417, f"expectation {expect!r} is not supported")
        self._keep_alive = keep_alive = parser.should_keep_alive()
        if chunked:
            self._phase = _CHUNKED
            self._chunks.reset()
        elif length:
            self._phase = _LENGTH
            self._left = length
        url = self._url[0] if len(self._url) == 1 else b"".join(self._url)
        # RFC 9110 section 10.1.1: a 100-continue expectation in HTTP/1.0 is ignored.
        continue_ = expect == "100-continue" and self._phase != _HEAD and version == "1.1"
        self._head = head = RequestHead(
            method,
            url.decode("latin-1"),
            version,
            self._fields,
            keep_alive,
            length,
            chunked,
            continue_,
        )
        self._events.append(head)

    def _on_body(self, data: bytes) -> None:
        self._body_size += len(data)
        if self._body_size > self.limits.max_body_size:
            raise _Reject(413, f"body exceeds {self.limits.max_body_size} bytes")
        self._events.append(Body(data))

    def _on_message_complete(self) -> None:
        self._events.append(END)
        pause, self._pause_at_end = self._pause_at_end, False
        if not self._keep_alive:
            self._ended = True
        elif pause:
            self._paused = True
