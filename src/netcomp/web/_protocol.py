"""Sans-IO HTTP/1.1 server protocol: bytes in, request events out; response bytes out.

No socket, no clock, no component: the server feeds it what it reads and sends what it
gets back. llhttp (through httptools) checks the syntax; it enforces no sizes and few
message rules, so this layer adds them (RFC 9112 unless noted):

* Sizes are counted while the head arrives, never after: request line (414), one field,
  the head, the number of fields (431). Chunk extensions are bounded per chunk (400).
* A body larger than ``max_body_size`` is refused from its Content-Length, before any of
  it is read (413); a chunked one as soon as it grows past the limit.
* Exactly one Host in HTTP/1.1 (section 3.2), at most one in 1.0 (400). Versions other
  than 1.0 and 1.1 get 505.
* Transfer-Encoding: only ``chunked`` is implemented (others 501, section 6.1); with
  Content-Length it is refused (400, section 6.3 point 3: the connection must close);
  on HTTP/1.0 it is refused (400, section 6.1).
* llhttp refuses conflicting or malformed Content-Length, bare LF, bare CR, control bytes
  and whitespace between a field name and its colon (400, section 5.1).
* After a request that ends the connection (``Connection: close``, or 1.0 without
  keep-alive) nothing more is parsed. A valid request followed by garbage yields the
  request, then the error: the server answers both, in order.
* Every error is final: the protocol yields the same :class:`ProtocolError` from then on.

Input is parsed in pieces of at most ``PIECE`` bytes and only when the caller asks for the
next event, so a caller that stops asking (its pipeline is full) holds at most one piece of
parsed-but-unanswered requests beyond it.
"""

from __future__ import annotations

from collections import deque
from types import SimpleNamespace
from typing import Any, Final

import httptools

from ._errors import ProtocolError
from ._limits import Limits

__all__ = [
    "NEED_DATA",
    "Body",
    "EndOfMessage",
    "RequestHead",
    "ServerProtocol",
    "encode_chunk",
    "encode_head",
]

PIECE: Final = 64 * 1024


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: :meth:`ServerProtocol.next_event` has nothing until more bytes arrive.
NEED_DATA: Final = _Sentinel("NEED_DATA")
#: The input is over (the peer's EOF, or a request that ended the connection).
CLOSED: Final = _Sentinel("CLOSED")


class RequestHead:
    """A request's line and header fields, checked; its body follows as events."""

    __slots__ = (
        "chunked",
        "content_length",
        "expect_continue",
        "fields",
        "keep_alive",
        "method",
        "target",
        "version",
    )

    def __init__(
        self,
        method: str,
        target: str,
        version: str,
        fields: list[tuple[str, str]],
        keep_alive: bool,
        content_length: int | None,
        chunked: bool,
        expect_continue: bool,
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.fields = fields
        self.keep_alive = keep_alive
        self.content_length = content_length
        self.chunked = chunked
        self.expect_continue = expect_continue

    @property
    def has_body(self) -> bool:
        """Whether body bytes follow (chunked, or a positive Content-Length)."""
        return self.chunked or bool(self.content_length)

    def __repr__(self) -> str:
        return f"<RequestHead {self.method} {self.target} HTTP/{self.version}>"


class Body:
    """Some bytes of the current request's body."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"<Body {len(self.data)} bytes>"


class EndOfMessage:
    """The current request is complete."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<EndOfMessage>"


_END: Final = EndOfMessage()

Event = RequestHead | Body | EndOfMessage | ProtocolError | _Sentinel


class _Reject(Exception):
    """Raised inside a parser callback; becomes the ProtocolError."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ServerProtocol:
    """One connection's request parser and framing rules (see the module rules)."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits if limits is not None else Limits()
        # llhttp calls back by these names; the methods stay private to this class.
        self._parser = httptools.HttpRequestParser(
            SimpleNamespace(
                on_message_begin=self._on_message_begin,
                on_url=self._on_url,
                on_header=self._on_header,
                on_headers_complete=self._on_headers_complete,
                on_body=self._on_body,
                on_chunk_header=self._on_chunk_header,
                on_message_complete=self._on_message_complete,
            )
        )
        self._pending = b""
        self._events: deque[Any] = deque()
        self._error: ProtocolError | None = None
        self._eof = False
        self._ended = False  # a request ended the connection: parse nothing more
        # Per message (reset by on_message_begin).
        self._in_head = False
        self._head_raw = 0
        self._url: list[bytes] = []
        self._url_size = 0
        self._fields: list[tuple[str, str]] = []
        self._head_size = 0
        self._hosts = 0
        self._codings: list[str] | None = None
        self._content_length: int | None = None
        self._expect: str | None = None
        self._body_size = 0
        self._chunks = 0
        self._framing = 0
        self._keep_alive = True

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
        return self._in_head or bool(self._pending)

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
            if not self._pending:
                if self._eof:
                    self._ended = True
                    if self._in_head or self._keep_body_open:
                        self._error = ProtocolError(400, "connection closed mid-request")
                        continue
                    return CLOSED
                return NEED_DATA
            self._feed()

    _keep_body_open = False  # a body is being received
    _piece_body = 0  # body bytes in the piece being parsed
    _piece_heads = 0  # head bytes (counted from its parts) in the piece being parsed

    # ------------------------------------------------------------- parsing
    def _feed(self) -> None:
        data = self._pending
        if len(data) > PIECE:
            piece, self._pending = data[:PIECE], data[PIECE:]
        else:
            piece, self._pending = data, b""
        self._piece_body = self._piece_heads = self._chunks = 0
        try:
            self._parser.feed_data(piece)
        except httptools.HttpParserUpgrade as upgrade:
            # Upgrades are not implemented: the request is served as a plain one and
            # parsing goes on after it.
            offset = int(upgrade.args[0])
            self._pending = piece[offset:] + self._pending
            return
        except httptools.HttpParserCallbackError as err:
            cause = err.__context__
            if isinstance(cause, _Reject):
                self._fail(cause.status, cause.reason)
            else:
                raise
            return
        except httptools.HttpParserError as err:
            if self._ended:
                return  # bytes after a request that ended the connection: ignored
            reason = str(err) or "malformed request"
            status = 505 if "HTTP version" in reason else 400
            self._fail(status, reason)
            return
        if self._ended:
            self._pending = b""
            return
        if self._in_head:
            # Fields are only handed over complete: bound what may be buffered meanwhile.
            self._head_raw += len(piece)
            limits = self.limits
            if self._head_raw > limits.max_head_size + limits.max_request_line:
                if self._url_size and not self._fields and self._head_raw == self._url_size:
                    self._fail(414, "request line too long")
                else:
                    self._fail(431, "request head too large")
        elif self._chunks or (self._keep_body_open and self._codings is not None):
            # What is neither body nor head is chunked framing: sizes, extensions, CRLFs,
            # trailers. Bound it per piece: one chunk's worth of extension, plus a little
            # per chunk.
            self._framing += len(piece) - self._piece_body - self._piece_heads
            limit = self.limits.max_chunk_extension + 64 * (self._chunks + 1)
            if self._framing > limit:
                # Known only now: take back what this piece made of the request after
                # its head, as when the bytes come one at a time.
                events = self._events
                while events and not isinstance(events[-1], RequestHead):
                    events.pop()
                self._fail(400, "chunk extensions too large")
            elif self._chunks:
                self._framing = 0

    def _fail(self, status: int, reason: str) -> None:
        self._error = ProtocolError(status, reason)
        self._pending = b""

    # -------------------------------------------------- llhttp callbacks
    def _on_message_begin(self) -> None:
        self._in_head = True
        self._head_raw = 0
        self._url = []
        self._url_size = 0
        self._fields = []
        self._head_size = 0
        self._hosts = 0
        self._codings = None
        self._content_length = None
        self._expect = None
        self._body_size = 0
        self._framing = 0

    def _on_url(self, url: bytes) -> None:
        self._url.append(url)
        self._url_size += len(url)
        if self._url_size > self.limits.max_request_line:
            raise _Reject(414, "request line too long")

    def _on_header(self, name: bytes, value: bytes) -> None:
        limits = self.limits
        size = len(name) + len(value)
        if size > limits.max_field_size:
            raise _Reject(431, f"header field {name[:64]!r} too large")
        self._head_size += size + 4
        if self._head_size + self._url_size > limits.max_head_size:
            raise _Reject(431, "request head too large")
        if len(self._fields) >= limits.max_fields:
            raise _Reject(431, "too many header fields")
        if not self._in_head:
            return  # a trailer field: counted, not kept
        key = name.lower()
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
        self._fields.append((name.decode("latin-1"), text))

    def _on_headers_complete(self) -> None:
        self._in_head = False
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
        self._piece_heads += self._url_size + self._head_size + len(method) + 16
        self._keep_alive = keep_alive = parser.should_keep_alive()
        self._keep_body_open = chunked or bool(length)
        url = self._url[0] if len(self._url) == 1 else b"".join(self._url)
        self._events.append(
            RequestHead(
                method,
                url.decode("latin-1"),
                version,
                self._fields,
                keep_alive,
                length,
                chunked,
                expect == "100-continue" and self._keep_body_open,
            )
        )

    def _on_body(self, data: bytes) -> None:
        self._body_size += len(data)
        self._piece_body += len(data)
        if self._body_size > self.limits.max_body_size:
            raise _Reject(413, f"body exceeds {self.limits.max_body_size} bytes")
        self._events.append(Body(data))

    def _on_chunk_header(self) -> None:
        self._chunks += 1

    def _on_message_complete(self) -> None:
        self._keep_body_open = False
        self._url_size = 0
        self._events.append(_END)
        if not self._keep_alive:
            self._ended = True

    _piece_body = 0


# ---------------------------------------------------------------- output


def encode_head(version: str, status: int, reason: str, fields: list[tuple[str, str]]) -> bytes:
    """A response's status line and fields, ready to send (fields already checked)."""
    lines = [f"HTTP/{version} {status} {reason}"]
    lines.extend(f"{name}: {value}" for name, value in fields)
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


def encode_chunk(data: bytes) -> bytes:
    """``data`` framed as one chunk (empty data gives nothing: it would end the body)."""
    if not data:
        return b""
    return b"%x\r\n%s\r\n" % (len(data), data)


#: The chunk that ends a chunked body (no trailers).
LAST_CHUNK: Final = b"0\r\n\r\n"
