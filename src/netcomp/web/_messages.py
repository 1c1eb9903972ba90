"""HTTP/1.1 messages as the sans-IO protocol sees them: the events a request is parsed
into (:class:`RequestHead`, :class:`Body`, :class:`EndOfMessage`, a
:class:`~._errors.ProtocolError`, ``NEED_DATA``, ``CLOSED``) and the bytes that frame a
response (:func:`encode_head`, :func:`encode_chunk`, :data:`LAST_CHUNK`)."""

from __future__ import annotations

from typing import Final

from ._errors import ProtocolError

__all__ = [
    "CLOSED",
    "END",
    "LAST_CHUNK",
    "NEED_DATA",
    "PAUSED",
    "Body",
    "EndOfMessage",
    "Event",
    "RequestHead",
    "encode_chunk",
    "encode_head",
]


class _Sentinel:
    """A named marker (``NEED_DATA``, ``CLOSED``)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: :meth:`~._protocol.ServerProtocol.next_event` has nothing until more bytes arrive.
NEED_DATA: Final = _Sentinel("NEED_DATA")
#: The input is over (the peer's EOF, or a request that ended the connection).
CLOSED: Final = _Sentinel("CLOSED")
#: A request asked to switch protocols (``Upgrade``): what follows it is not parsed until
#: the server switches (:meth:`~._protocol.ServerProtocol.switch`) or declines
#: (:meth:`~._protocol.ServerProtocol.resume`).
PAUSED: Final = _Sentinel("PAUSED")


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
        "upgrade",
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
        #: The ``Upgrade`` field, lower case, when the request asks to switch protocols
        #: (with ``Connection: upgrade``): the parser pauses after it (see ``PAUSED``).
        self.upgrade: str | None = None

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


#: The one EndOfMessage (it carries nothing).
END: Final = EndOfMessage()

#: What :meth:`~._protocol.ServerProtocol.next_event` returns.
Event = RequestHead | Body | EndOfMessage | ProtocolError | _Sentinel


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
