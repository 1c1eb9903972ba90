"""One WebSocket over one connection, after its opening handshake: the server's and the
client's side alike. wsproto does the framing; this does the I/O, the limits and the
timers.

Rules:
* Messages are delivered whole (``str`` for text, ``bytes`` for binary), reassembled from
  their frames. Their size is counted as each piece arrives, never after buffering; past
  ``max_message_size`` the WebSocket closes with 1009, past ``max_frames`` with 1008.
  Invalid UTF-8 in text closes it with 1007 (wsproto checks as it decodes), any other
  framing error with 1002. Such a failure sends the close frame, then ends the connection
  (RFC 6455 section 7.1.7); it concerns that WebSocket only.
* Pings are answered at once. After ``ping_interval`` seconds without input a ping is
  sent; after ``ping_timeout`` more seconds without any input the peer is dead: 1011, and
  the connection is cut (its output could never drain).
* Closing: a close frame from the peer is answered with its own code; ours waits
  ``close_timeout`` seconds for the answer, then the connection is cut. Once both close
  frames have crossed, the server ends the connection; the client waits (the same
  timeout) for the server to do so (RFC 6455 section 7.1.1). The connection ending
  without a close frame is 1006.
* The owner hears ``ws_closing(code, reason)`` once (the peer's close frame, or ours, or
  the failure), then ``ws_gone`` once when the connection is gone.
* One timer per WebSocket, re-armed lazily (never later than needed).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from wsproto.connection import Connection as WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from ..core import TimerHandle, Value
from ..net import Connection
from ._wsdeflate import BoundedDeflate
from ._wslimits import WebSocketLimits

__all__ = ["Endpoint", "Peer"]

log = logging.getLogger("netcomp.web")

OPEN = ConnectionState.OPEN
CLOSED = ConnectionState.CLOSED
REMOTE_CLOSING = ConnectionState.REMOTE_CLOSING
#: Close codes an application may send (RFC 6455 section 7.4; 1004-1006 and 1015 are not).
SENDABLE = frozenset((1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)))
_LOST = "the connection ended without a close frame"
_MESSAGES = (str, bytes, bytearray, memoryview)


class Peer(Protocol):
    """What an :class:`Endpoint` reports to (the server's dispatcher, or the client)."""

    def ws_message(self, endpoint: Endpoint, message: str | bytes) -> None: ...
    def ws_closing(self, endpoint: Endpoint, code: int, reason: str) -> None: ...
    def ws_gone(self, endpoint: Endpoint) -> None: ...
    def ws_drained(self, endpoint: Endpoint) -> None: ...


class Endpoint:
    """One WebSocket: wsproto's state, the connection under it, its owner and its timer."""

    __slots__ = (
        "announced",
        "close_deadline",
        "conn",
        "deflate",
        "early",
        "frames",
        "handle",
        "last_input",
        "limits",
        "owner",
        "parts",
        "pending_close",
        "ping_sent",
        "size",
        "timer",
        "timer_at",
        "ws",
    )

    def __init__(
        self,
        owner: Peer,
        ws: WSConnection,
        limits: WebSocketLimits,
        deflate: BoundedDeflate | None = None,
        handle: Any = None,
    ) -> None:
        self.owner = owner
        self.ws = ws
        self.limits = limits
        self.deflate = deflate  # negotiated, or None
        self.handle = handle  # what events name this WebSocket by (the server's socket)
        self.conn: Connection | None = None
        self.early: list[str | bytes] | None = None  # sent before the handshake was done
        self.pending_close: tuple[int, str] | None = None  # asked for before it was done
        self.parts: list[Any] | None = None  # pieces of the message being received
        self.size = 0  # its bytes so far
        self.frames = 0  # its complete frames so far
        self.announced = False  # the owner heard ws_closing
        self.timer: TimerHandle | None = None
        self.timer_at = 0.0
        self.last_input = 0.0
        self.ping_sent = 0.0  # when the unanswered ping went out (0: none)
        self.close_deadline = 0.0

    @property
    def open(self) -> bool:
        """Messages can be sent (the handshake is done and no close frame was sent)."""
        return self.conn is not None and self.ws.state is OPEN

    # ------------------------------------------------------------------ start
    def attach(self, conn: Connection) -> None:
        """The opening handshake is done on ``conn``: the WebSocket is open."""
        self.conn = conn
        loop = conn.loop
        assert loop is not None
        self.last_input = now = loop.time()
        interval = self.limits.ping_interval
        if interval is not None:
            self.arm(now + interval)
        early, self.early = self.early, None
        for message in early or ():
            self.send(message)
        if self.pending_close is not None:
            self.close(*self.pending_close)

    # ------------------------------------------------------------------ input
    def data(self, data: bytes) -> None:
        """Bytes from the peer."""
        ws = self.ws
        if ws.state is CLOSED:
            return  # after the closing handshake: nothing more is read
        loop = self.conn.loop if self.conn is not None else None
        if loop is not None:
            self.last_input = loop.time()
        ws.receive_data(data)
        self.process()

    def process(self) -> None:
        """Act on what wsproto parsed."""
        ws = self.ws
        for event in ws.events():
            kind = event.__class__
            if kind is TextMessage or kind is BytesMessage:
                if not self.piece(event):  # type: ignore[arg-type]
                    return
            elif kind is Ping:
                if ws.state is OPEN:
                    self.write(ws.send(event.response()))  # type: ignore[attr-defined]
            elif kind is Pong:
                self.ping_sent = 0.0
            elif kind is CloseConnection:
                self.close_frame(event)  # type: ignore[arg-type]
                return

    def piece(self, event: TextMessage | BytesMessage) -> bool:
        """Part (or the whole) of a message; False once a limit failed the WebSocket."""
        data: Any = event.data  # str or bytes (wsproto gives bytes, never a bytearray)
        size = len(data) if data.__class__ is bytes or data.isascii() else len(data.encode())
        limits = self.limits
        parts = self.parts
        if parts is None and event.message_finished:  # a whole message: the common case
            if size > limits.max_message_size:
                return self.too_big()
            self.owner.ws_message(self, data)
            return True
        size += self.size
        if size > limits.max_message_size:
            return self.too_big()
        if event.frame_finished:
            self.frames += 1
            if self.frames > limits.max_frames:
                self.fail(1008, f"more than {limits.max_frames} frames in one message")
                return False
        if parts is None:
            self.parts = parts = []
        parts.append(data)
        if not event.message_finished:
            self.size = size
            return True
        self.parts = None
        self.size = self.frames = 0
        joined: Any = "".join(parts) if isinstance(data, str) else b"".join(parts)
        self.owner.ws_message(self, joined)
        return True

    def too_big(self) -> bool:
        self.fail(1009, f"message larger than {self.limits.max_message_size} bytes")
        return False

    def close_frame(self, event: CloseConnection) -> None:
        """A close frame from the peer, or a framing error wsproto found."""
        ws = self.ws
        state = ws.state
        if state is REMOTE_CLOSING:  # the peer begins the closing handshake
            self.announce(event.code, event.reason or "")
            self.write(ws.send(event.response()))
            self.handshake_done()
        elif state is CLOSED:  # the answer to ours
            self.handshake_done()
        else:  # a ParseFailed: wsproto reports it as a close it did not receive
            violation = self.deflate.violation if self.deflate is not None else None
            code, reason = violation or (event.code, event.reason or "protocol error")
            self.fail(code, reason)

    def handshake_done(self) -> None:
        """Both close frames have crossed: the server ends the connection, the client
        waits for the server to."""
        conn = self.conn
        if conn is None:
            return
        if not self.ws.client:
            conn.close()
            return
        loop = conn.loop
        assert loop is not None
        self.close_deadline = deadline = loop.time() + self.limits.close_timeout
        self.arm(deadline)

    def eof(self) -> None:
        """The peer will send no more."""
        self.announce(1006, _LOST)
        if self.conn is not None:
            self.conn.close()

    def drained(self) -> None:
        """Room in the output again."""
        self.owner.ws_drained(self)

    def down(self) -> None:
        """The connection is gone."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.announce(1006, _LOST)
        self.parts = None
        self.owner.ws_gone(self)

    def shutdown(self) -> None:
        """The server stops: close with 1001."""
        self.close(1001, "going away")

    # ----------------------------------------------------------------- output
    def write(self, data: bytes | bytearray) -> bool:
        """Bytes for the wire (frames); False when the connection is closed."""
        conn = self.conn
        return conn is not None and conn.write(data)

    def send(self, message: str | bytes) -> bool:
        """Send one message (kept until the handshake is done); False if the WebSocket
        is closing or closed."""
        ws = self.ws
        if self.conn is None:
            if self.pending_close is not None:
                return False
            if self.early is None:
                self.early = []
            self.early.append(message)
            return True
        if ws.state is not OPEN:
            return False
        if isinstance(message, str):
            frame = ws.send(TextMessage(data=message))
        else:
            frame = ws.send(BytesMessage(data=message))
        return self.write(frame)

    def read_done(self, value: Value) -> None:
        """A ``read`` handler is done: send back what it returned (str, bytes, a list)."""
        result = value.value
        if result is None:
            return
        if result.__class__ is str or result.__class__ is bytes:
            self.send(result)
        elif isinstance(result, (bytearray, memoryview)):
            self.send(bytes(result))
        elif isinstance(result, list):
            for item in result:
                if isinstance(item, _MESSAGES):
                    self.send(item if isinstance(item, str) else bytes(item))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Begin the closing handshake (nothing if it has begun already)."""
        conn = self.conn
        if conn is None:
            if self.pending_close is None:
                self.pending_close = (code, reason)
            return
        if self.ws.state is not OPEN:
            return
        self.announce(code, reason)
        self.write(self.ws.send(CloseConnection(code=code, reason=reason)))
        loop = conn.loop
        assert loop is not None
        self.close_deadline = deadline = loop.time() + self.limits.close_timeout
        self.arm(deadline)

    def fail(self, code: int, reason: str) -> None:
        """The peer broke the protocol or a limit: send ``code``, end the connection."""
        log.debug("%r: closing the WebSocket with %d: %s", self.conn, code, reason)
        self.announce(code, reason)
        if self.ws.state is OPEN:
            self.write(self.ws.send(CloseConnection(code=code, reason=reason)))
        if self.conn is not None:
            self.conn.close()

    def announce(self, code: int, reason: str) -> None:
        """Tell the owner how the WebSocket closes (once)."""
        if not self.announced:
            self.announced = True
            self.owner.ws_closing(self, int(code), reason)

    # ----------------------------------------------------------------- timers
    def arm(self, deadline: float) -> None:
        """Make sure the timer fires no later than ``deadline``."""
        timer = self.timer
        if timer is not None:
            if self.timer_at <= deadline:
                return
            timer.cancel()
        conn = self.conn
        assert conn is not None and conn.loop is not None
        self.timer_at = deadline
        self.timer = conn.loop.call_at(deadline, self.expired)

    def expired(self) -> None:
        """The timer fired: close timeouts first, then the keepalive."""
        self.timer = None
        conn = self.conn
        if conn is None or conn.closed or conn.loop is None:
            return
        now = conn.loop.time()
        if self.close_deadline:
            if now < self.close_deadline:
                self.arm(self.close_deadline)
            elif self.ws.state is CLOSED:
                conn.close()  # the client waited long enough for the server's end
            else:
                log.info("%r: no answer to our close frame in time: cut", conn)
                conn.abort()
            return
        if self.ws.state is OPEN:
            self.keepalive(now)

    def keepalive(self, now: float) -> None:
        """Ping an idle peer; fail one that stays silent ``ping_timeout`` after a ping."""
        limits = self.limits
        interval = limits.ping_interval
        if interval is None:
            return
        sent = self.ping_sent
        if sent and self.last_input >= sent:
            self.ping_sent = sent = 0.0  # the peer spoke: it is alive
        if sent:
            timeout = limits.ping_timeout
            if timeout is not None and now >= sent + timeout:
                log.info("%r: no answer to a ping for %s s: the peer is dead", self.conn, timeout)
                self.fail(1011, "keepalive ping timeout")
                if self.conn is not None:
                    self.conn.abort()
                return
            if timeout is not None:
                self.arm(sent + timeout)
            return
        due = self.last_input + interval
        if now < due:
            self.arm(due)
            return
        self.write(self.ws.send(Ping(payload=b"netcomp")))
        if limits.ping_timeout is not None:
            self.ping_sent = now
            self.arm(now + limits.ping_timeout)
        else:
            self.arm(now + interval)  # no timeout: ping again after the interval

    def __repr__(self) -> str:
        return f"<Endpoint {self.ws.state.name} {self.conn!r}>"
