"""One request and its response on a connection: framing and ordered, paced output.

Rules (RFC 9112 section 6 and 9.3):
* Responses leave in request order: only the front exchange of a connection writes to
  the socket; later ones keep their bytes until they reach the front.
* Framing: a known length gets Content-Length; otherwise HTTP/1.1 gets chunked and
  HTTP/1.0 a close-delimited body. HEAD gets GET's fields and no body; 1xx, 204 and 304
  get neither a body nor body framing.
* Streamed bodies (iterables, files) are pulled only while the connection's output is
  below its high water mark, and only as much as fills it: a connection buffers at most
  ``high_water`` plus one chunk of its source (see :meth:`Exchange.pump`). A slow reader
  costs that much memory and no more; the server's output budget bounds the sum.

* A request that asks to switch protocols (``might_switch``) may be answered 101 with a
  :class:`Takeover` (``switch_to``): once that response is out, the takeover gets the
  connection and hands back what handles it from then on (a :class:`Handling`).

An exchange knows its connection's HTTP state only as a :class:`Wire` (a ``Link`` is
one), and the server only as a :class:`Site`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any, Protocol

from ..core import Future
from ..net import Connection
from ._bodies import (
    _HTML,
    FileChunks,
    FileSlice,
    SendFile,
    close_source,
    plain_body,
    sendfile_plan,
)
from ._errors import HTTPError, reason_phrase
from ._headers import check_field, date_field
from ._messages import LAST_CHUNK, encode_chunk
from ._request import BodyStream, Request
from ._response import Response

__all__ = ["OVER_BUDGET_BATCH", "PUMP_TURN", "Exchange", "Handling", "Site", "Takeover", "Wire"]

#: The most body bytes one pump produces before the loop serves other connections.
PUMP_TURN = 256 * 1024
#: The most body bytes gathered for one write while the output budget is over.
OVER_BUDGET_BATCH = 4 * 1024


class Site(Protocol):
    """What an exchange needs of the server (a ``BaseServer``)."""

    @property
    def stopping(self) -> bool: ...  # shutting down: responses say Connection: close
    @property
    def _server_field(self) -> str: ...  # the "Server:" line of every response, or ""


class Wire(Protocol):
    """What an exchange needs of its connection's HTTP state (a ``Link``): the connection,
    the exchanges in request order (the front one writes), the server, and callbacks."""

    @property
    def conn(self) -> Connection: ...
    @property
    def exchanges(self) -> deque[Exchange]: ...
    @property
    def server(self) -> Site: ...
    def exchange_done(self, exchange: Exchange) -> None: ...  # the front one wrote all
    def abort(self, error: BaseException | None = None) -> None: ...  # cut the connection
    def stream_failed(self, exchange: Exchange, error: BaseException) -> None: ...


class Handling(Protocol):
    """What handles a connection's input for the server: a ``Link`` (HTTP), or what a
    switch of protocols handed the connection to (a WebSocket)."""

    def data(self, data: bytes) -> None: ...  # bytes from the peer
    def eof(self) -> None: ...  # the peer will send no more
    def drained(self) -> None: ...  # room in the output again
    def down(self) -> None: ...  # the connection is gone
    def shutdown(self) -> None: ...  # the server stops: finish up and close


class Takeover(Protocol):
    """Who takes a connection over once a 101 response is out (``Exchange.switch_to``)."""

    def start(self, conn: Connection) -> Handling: ...  # the connection is yours now
    def abandon(self) -> None: ...  # no switch after all (refused, timed out, gone)


def _cookie_lines(lines: list[str], cookies: Any) -> None:
    for morsel in cookies.values():
        text = morsel.OutputString()
        check_field("Set-Cookie", text)
        lines.append(f"Set-Cookie: {text}\r\n")


def _field_lines(
    lines: list[str], items: list[tuple[str, str]], no_body: bool
) -> tuple[bool, bool, bool, bool]:
    """Append the lines of a response's fields but those netcomp writes itself; whether
    it has a Date, a Server, a Content-Length, a Connection field saying close."""
    has_date = has_server = has_length = closes = False
    for name, value in items:
        key = name.lower()
        if key in _SPECIAL:
            if key == "date":
                has_date = True
            elif key == "server":
                has_server = True
            elif key == "connection":
                if "close" in value.lower():
                    closes = True
                continue  # netcomp writes Connection itself
            elif key == "transfer-encoding":
                continue  # netcomp chooses the framing
            elif no_body:
                continue  # Content-Length: no body framing on 1xx, 204, 304
            else:
                has_length = True
        lines.append(f"{name}: {value}\r\n")
    return has_date, has_server, has_length, closes


def _no_body_status(status: int) -> bool:
    return status < 200 or status == 204 or status == 304


class Exchange:
    """A request, its response, and the state of sending it."""

    __slots__ = (
        "answered",
        "body_stream",
        "chunked",
        "continue_due",
        "deadline",
        "finished",
        "head_only",
        "head_sent",
        "holds_slot",
        "keep_alive",
        "link",
        "might_switch",
        "out",
        "request",
        "response",
        "sent",
        "source",
        "switch_to",
        "version",
        "waiting_room",
    )

    def __init__(self, link: Wire, request: Request | None, version: str, keep_alive: bool):
        self.link = link
        self.request = request
        self.version = version if version in ("1.0", "1.1") else "1.1"
        self.keep_alive = keep_alive
        self.response = Response()
        self.response._exchange = self
        self.head_only = request is not None and request.method == "HEAD"
        self.answered = False  # the response is decided (by the handler, or for it)
        self.holds_slot = False  # its handler counts against HTTPLimits.max_requests
        self.head_sent = False
        self.finished = False
        self.chunked = False
        self.out: list[bytes] | None = None  # bytes held until this exchange is in front
        self.source: Iterator[Any] | SendFile | None = None  # a streamed body being sent
        self.sent = 0  # body bytes, for the access log
        self.deadline = 0.0  # when the handler's time to answer runs out
        self.waiting_room: list[Future] | None = None
        self.body_stream: BodyStream | None = None  # a request body read as it comes
        self.continue_due = False  # owes "100 Continue" once in front
        self.might_switch = False  # the request asked to switch protocols (Upgrade)
        self.switch_to: Takeover | None = None  # who takes the connection after a 101

    # ---------------------------------------------------------------- out
    @property
    def in_front(self) -> bool:
        """This exchange may write to the socket now."""
        exchanges = self.link.exchanges
        return bool(exchanges) and exchanges[0] is self

    def _send(self, data: bytes) -> None:
        if not data:
            return
        exchanges = self.link.exchanges
        if self.out is None and exchanges and exchanges[0] is self:  # in front
            self.link.conn.write(data)
        elif self.out is None:
            self.out = [data]
        else:
            self.out.append(data)

    def reached_front(self) -> None:
        """Earlier responses are out: send what was held, resume pulling."""
        out, self.out = self.out, None
        if self.continue_due:
            self.continue_due = False
            self.link.conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if out:
            self.link.conn.write(b"".join(out))
        if self.source is not None:
            self.pump()
        elif self.finished:
            self.link.exchange_done(self)
        else:
            self.wake_room()

    # --------------------------------------------------------------- head
    def _head(self, length: int | None) -> bytes:
        response = self.response
        status = response.status
        server = self.link.server
        stream = self.body_stream
        if response.close or server.stopping or (stream is not None and not stream.complete):
            # An unread rest of the body is never read: the connection ends with this.
            self.keep_alive = False
        if length is None or response._reason is not None or response._cookies is not None:
            return self._make_head(length)
        # A head with a known length: all but its Date and Content-Length lines depend on
        # the fields and the framing alone, made once for each such combination.
        key = (
            status,
            tuple(response.headers._items),
            self.keep_alive,
            self.version,
            server._server_field,
        )
        parts = _HEADS.get(key)
        if parts is None:
            return self._make_head(length, key)
        before, middle, after, closes = parts
        if closes:
            self.keep_alive = False  # (a Connection: close field)
        date = date_field()
        if date is not _DATE[0]:
            _DATE[:] = [date, date.encode("latin-1")]
        size = _LENGTHS.get(length)
        if size is None:
            size = b"Content-Length: %d\r\n" % length
            if len(_LENGTHS) < 4096:
                _LENGTHS[length] = size
        self.head_sent = True
        return b"".join((before, _DATE[1], middle, size, after))

    def _make_head(self, length: int | None, key: tuple[Any, ...] | None = None) -> bytes:
        """The head, field by field; with ``key``, also remembered as its parts in
        ``_HEADS`` when it has the parts ``_head`` puts together."""
        response = self.response
        status = response.status
        server = self.link.server
        no_body = status < 200 or status == 204 or status == 304
        reason = response._reason
        line = _STATUS_LINES.get(status) if reason is None else None
        if line is None:
            phrase = reason_phrase(status) if reason is None else reason
            line = f"HTTP/1.1 {status} {phrase}\r\n"
        lines = [line]
        has_date, has_server, has_length, closes = _field_lines(
            lines, response.headers._items, no_body
        )
        if closes:
            self.keep_alive = False  # (a Connection field saying close)
        fields = sized = len(lines)
        if not has_date:
            lines.append(date_field())
        if not has_server and server._server_field:
            lines.append(server._server_field)
        if response._cookies is not None:
            _cookie_lines(lines, response._cookies)
        if no_body or has_length:
            pass
        elif length is not None:
            sized = len(lines)
            lines.append(f"Content-Length: {length}\r\n")
        elif self.version == "1.1":
            if not self.head_only:
                self.chunked = True
            lines.append("Transfer-Encoding: chunked\r\n")
        else:
            self.keep_alive = False  # an HTTP/1.0 body of unknown length ends with the close
        if status == 101:
            lines.append("Connection: Upgrade\r\n\r\n")
        elif not self.keep_alive:
            lines.append("Connection: close\r\n\r\n")
        elif self.version == "1.0":
            lines.append("Connection: keep-alive\r\n\r\n")
        else:
            lines.append("\r\n")
        self.head_sent = True
        if (
            key is not None
            and not (has_date or has_length or no_body)
            and len(_HEADS) < _HEADS_MAX
            and sum(map(len, lines)) <= 2048
        ):
            # [fields] [Date] [Server?] [Content-Length] [Connection]: the parts around
            # the two lines that change.
            _HEADS[key] = (
                "".join(lines[:fields]).encode("latin-1"),
                "".join(lines[fields + 1 : sized]).encode("latin-1"),
                "".join(lines[sized + 1 :]).encode("latin-1"),
                closes,
            )
        return "".join(lines).encode("latin-1")

    # ------------------------------------------------------------ answers
    def respond(self, result: Any) -> None:
        """Send the handler's answer (see :class:`Response` for what it may be)."""
        if self.finished or (self.head_sent and self.response.streaming):
            return
        response = self.response
        if isinstance(result, Response) and result is not response:
            result._exchange = self
            self.response = response = result
        elif result is not None and not isinstance(result, Response):
            if self.head_sent:
                raise RuntimeError("a streamed response cannot also return a body")
            response._body = result  # (what the body setter does before the head is sent)
            response.touched = True
        if self.head_sent:
            if not response.streaming:
                self.finish()
            return
        if not response.touched:
            self.fail(HTTPError(404))
            return
        self._send_body(response.body)

    def _send_body(self, body: Any) -> None:
        response = self.response
        if body.__class__ is str:  # plain_body's common case, inline
            body = body.encode("utf-8")
            headers = response.headers
            if not headers._items or "content-type" not in headers:
                headers._items.append(_HTML)
        else:
            body = plain_body(body, response.headers)
        if body.__class__ is bytes or isinstance(body, bytes):
            status = response.status
            no_body = status < 200 or status == 204 or status == 304
            head = self._head(None if no_body else len(body))
            self._send(head if self.head_only or no_body else head + body)
            self.sent = 0 if self.head_only or no_body else len(body)
            self._finished()
            return
        if hasattr(body, "read") or body.__class__ is FileSlice:
            plan = self._sendfile_plan(body)
            if plan is not None:
                self._send(self._head(plan.count))
                if self.head_only or _no_body_status(response.status) or not plan.count:
                    body.close()
                    self._end_body()
                    return
                self.source = plan
                if self.in_front:
                    self.pump()
                return
            source: Iterator[Any] = body if body.__class__ is FileSlice else FileChunks(body)
        else:
            try:
                source = iter(body)
            except TypeError:
                raise TypeError(
                    f"cannot send a {type(body).__name__} as a response body"
                ) from None
        self._send(self._head(None))
        if self.head_only or _no_body_status(response.status):
            close_source(source)
            self._end_body()
            return
        self.source = source
        if self.in_front:
            self.pump()

    def pump(self) -> None:
        """Pull and send chunks while the connection has room (then wait for drained).

        Chunks are gathered until they fill the room left below the connection's high
        water mark, then sent as one write (one chunk of the chunked coding): the source
        is asked for nothing once the output is congested, so a slow reader holds at most
        ``high_water`` plus one of its chunks. While the server's output budget is over,
        a batch is at most ``OVER_BUDGET_BATCH`` (a connection that buffers anything then
        waits), so the budget is overshot by at most that plus a chunk per connection.
        One call produces at most ``PUMP_TURN`` bytes, then lets the loop serve the other
        connections before it goes on.
        """
        source = self.source
        conn = self.link.conn
        if isinstance(source, SendFile):
            if self.in_front and not source.started:
                source.started = True
                if not conn.write_file(source.fd, source.offset, source.count, self._file_sent):
                    self._file_sent(ConnectionError("the connection is closed"))
            return
        limits = conn.limits
        high = limits.high_water
        budget = limits.budget
        produced = 0
        while source is not None and self.in_front:
            if conn.congested or conn.closed:
                return  # Link.drained calls back
            if produced >= PUMP_TURN:
                if conn.loop is not None:
                    conn.loop.call_soon(self.pump)
                return
            room = high - conn.buffered
            if budget is not None and budget.over:
                room = min(room, OVER_BUDGET_BATCH)  # the server's output is over budget
            parts: list[bytes] = []
            size = 0
            try:
                while size < room or not size:
                    chunk = next(source)
                    if isinstance(chunk, str):
                        chunk = chunk.encode("utf-8")
                    if chunk:
                        parts.append(chunk)
                        size += len(chunk)
            except StopIteration:
                self.source = None
                if parts:
                    self.write_body(parts[0] if len(parts) == 1 else b"".join(parts))
                self._end_body()
                return
            except Exception as err:
                self.source = None
                close_source(source)
                self.link.stream_failed(self, err)
                return
            self.write_body(parts[0] if len(parts) == 1 else b"".join(parts))
            produced += size

    def _sendfile_plan(self, body: Any) -> SendFile | None:
        """How to send a file with ``os.sendfile`` (plain TCP only), if we can."""
        if self.link.conn.tls:
            return None
        return sendfile_plan(body, self.response.headers.get("content-length"))

    def _file_sent(self, error: BaseException | None) -> None:
        source = self.source
        self.source = None
        if isinstance(source, SendFile):
            source.file.close()
            if error is None:
                self.sent += source.count
        if error is None:
            self._end_body()
        else:
            self.finished = True

    def write_body(self, data: bytes) -> None:
        """Send body bytes (the head first: chunked, unless a length was set)."""
        if self.finished:  # (once the connection is gone, the response points to GONE)
            raise RuntimeError("the response is finished")
        if not self.head_sent:
            self._send(self._head(None))
        if self.head_only or not data or _no_body_status(self.response.status):
            return
        self.sent += len(data)
        self._send(encode_chunk(data) if self.chunked else bytes(data))

    def finish(self) -> None:
        """End the response (sending the head first if need be)."""
        if self.finished:
            return
        if not self.head_sent:
            if not self.response.touched:
                self.response.touched = True
            self._send_body(self.response.body)
            return
        self._end_body()

    def _end_body(self) -> None:
        if self.chunked:
            self._send(LAST_CHUNK)
        self._finished()

    def _finished(self) -> None:
        self.finished = True
        self.answered = True
        if self.waiting_room is not None:
            self.wake_room()
        if self.out is None:
            exchanges = self.link.exchanges
            if exchanges and exchanges[0] is self:  # in front
                self.link.exchange_done(self)

    def fail(self, error: BaseException, expose: bool = False) -> None:
        """Answer with an error status (500 for anything but an :class:`HTTPError`)."""
        if self.head_sent:
            # Too late for a status: cut the connection so the client sees a truncated
            # body rather than a complete-looking one.
            self.finished = True
            self.link.abort(error)
            return
        if isinstance(error, HTTPError):
            status, headers, text = error.status, error.headers, error.description
        else:
            status, headers, text = 500, [], reason_phrase(500)
            if expose:
                import traceback

                text = "".join(traceback.format_exception(error))
        response = Response(f"{status} {reason_phrase(status)}\n\n{text}\n", status, headers)
        response.headers["Content-Type"] = "text/plain; charset=utf-8"
        response._exchange = self
        self.response = response
        self._send_body(response.body)

    # ------------------------------------------------------- backpressure
    def room(self) -> Future:
        """A future done when this response may write without growing the buffer."""
        future = Future()
        if (
            self.finished
            or self.link.conn.closed
            or (self.in_front and not self.link.conn.congested)
        ):
            future.set_result(None)
        elif self.waiting_room is None:
            self.waiting_room = [future]
        else:
            self.waiting_room.append(future)
        return future

    def wake_room(self) -> None:
        """The connection drained (or this exchange reached the front)."""
        waiters, self.waiting_room = self.waiting_room, None
        for future in waiters or ():
            if not future.done():
                future.set_result(None)


_SPECIAL = frozenset(("date", "server", "connection", "transfer-encoding", "content-length"))
#: Heads with a known length, as (before Date, between Date and Content-Length, after
#: Content-Length, a "Connection: close" field) by (status, fields, keep-alive, version,
#: Server line): see ``Exchange._head``.
_HEADS: dict[tuple[Any, ...], tuple[bytes, bytes, bytes, bool]] = {}
_HEADS_MAX = 512
_DATE: list[Any] = ["", b""]  # the Date line last used, and its bytes
_LENGTHS: dict[int, bytes] = {}  # Content-Length lines by length (at most 4,096)
#: The status lines with the standard reason phrases, made once.
_STATUS_LINES = {
    status: f"HTTP/1.1 {status} {reason_phrase(status)}\r\n" for status in range(100, 600)
}
