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

wsproto is used one layer below its ``Connection``: its ``FrameProtocol`` parses and
makes every frame (its message decoder reassembles the opcode and checks UTF-8, its close
parser checks codes), and the endpoint keeps the state ``Connection`` would keep (wsproto's
``ConnectionState``, with the same moves on close frames). Per message that saves
``Connection``'s event object and generator on input, and a message object and an ABC
``isinstance`` on output: about 3 us of the 30 us an echoed message costs the server
(benchmarks/README.md, "websocket.py").

Input is taken from the protocol's own frame generator (what ``received_frames()`` wraps),
and the taking stops once the protocol's input buffer is empty: asking again would only
have wsproto try (and fail) to parse one more header, about 0.7 us of its 9 us per
message. Both live in private attributes of wsproto's ``FrameProtocol`` (wsproto 1.2 and
1.3); if a version keeps them elsewhere, :func:`frame_source` says so and the endpoint uses
``received_frames()`` (tests/test_websocket_reads.py checks the installed one has them).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import GeneratorType
from typing import Any, Protocol

from wsproto.connection import ConnectionState
from wsproto.frame_protocol import FrameProtocol, Opcode, ParseFailed

from ..core import TimerHandle, Value
from ..net import Connection
from ._wsdeflate import MIN_COMPRESS, BoundedDeflate
from ._wslimits import WebSocketLimits

__all__ = ["Endpoint", "Peer"]

log = logging.getLogger("netcomp.web")

OPEN = ConnectionState.OPEN
CLOSED = ConnectionState.CLOSED
LOCAL_CLOSING = ConnectionState.LOCAL_CLOSING
REMOTE_CLOSING = ConnectionState.REMOTE_CLOSING
TEXT = Opcode.TEXT
BINARY = Opcode.BINARY
PING = Opcode.PING
PONG = Opcode.PONG
#: Close codes an application may send (RFC 6455 section 7.4; 1004-1006 and 1015 are not).
SENDABLE = frozenset((1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)))
_LOST = "the connection ended without a close frame"
_MESSAGES = (str, bytes, bytearray, memoryview)
_ALWAYS = b"-"  # an "input buffer" never empty: take frames until the protocol has none


def frame_source(proto: FrameProtocol) -> tuple[Iterator[Any], bytearray] | None:
    """wsproto's frame generator and input buffer inside ``proto`` (the generator yields
    each frame it can parse, then None; the buffer holds the bytes not parsed yet), or
    None if this wsproto keeps them elsewhere."""
    frames = getattr(proto, "_parse_more", None)
    decoder = getattr(proto, "_frame_decoder", None)
    buffer = getattr(getattr(decoder, "buffer", None), "buffer", None)
    if not isinstance(frames, GeneratorType) or not isinstance(buffer, bytearray):
        return None
    return frames, buffer


class Peer(Protocol):
    """What an :class:`Endpoint` reports to (the server's dispatcher, or the client)."""

    def ws_message(self, endpoint: Endpoint, message: str | bytes) -> None: ...
    def ws_closing(self, endpoint: Endpoint, code: int, reason: str) -> None: ...
    def ws_gone(self, endpoint: Endpoint) -> None: ...
    def ws_drained(self, endpoint: Endpoint) -> None: ...


class Endpoint:
    """One WebSocket: wsproto's frame protocol and the state over it, the connection under
    it, its owner and its timer."""

    __slots__ = (
        "announced",
        "buffer",
        "client",
        "close_deadline",
        "conn",
        "deflate",
        "early",
        "framer",
        "frames",
        "handle",
        "last_input",
        "limits",
        "owner",
        "parts",
        "pending_close",
        "ping_sent",
        "plain",
        "proto",
        "size",
        "state",
        "timer",
        "timer_at",
    )

    def __init__(
        self,
        owner: Peer,
        proto: FrameProtocol,
        limits: WebSocketLimits,
        deflate: BoundedDeflate | None = None,
        handle: Any = None,
    ) -> None:
        """``proto``: wsproto's frames of this WebSocket, with the extensions agreed on
        (``deflate`` among them, when negotiated)."""
        self.owner = owner
        self.proto = proto
        source = frame_source(proto)
        #: wsproto's frame generator and its input buffer (None: received_frames()).
        self.framer: Iterator[Any] | None = source[0] if source is not None else None
        self.buffer: bytearray | bytes = source[1] if source is not None else _ALWAYS
        self.client: bool = proto.client
        #: Where the closing handshake is, as wsproto's ``Connection`` would say.
        self.state = OPEN
        self.limits = limits
        self.deflate = deflate  # negotiated, or None
        #: Frames without extensions, for the messages too short to compress (with
        #: deflate agreed): they skip wsproto's extension calls and the copies around them.
        self.plain = FrameProtocol(proto.client, []) if deflate is not None else None
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
        return self.conn is not None and self.state is OPEN

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
        """Bytes from the peer: every frame they complete is acted on, in order."""
        state = self.state
        if state is not OPEN and state is not LOCAL_CLOSING:
            return  # after the peer's close frame (answered at once): nothing more is read
        conn = self.conn
        loop = conn.loop if conn is not None else None
        if loop is not None:
            self.last_input = loop.time()
        proto = self.proto
        proto.receive_bytes(data)
        framer = self.framer
        if framer is None:
            framer = proto.received_frames()
        buffer = self.buffer
        payload: Any  # str (text), bytes (binary, ping, pong) or (code, reason) (close)
        try:
            while True:
                frame = next(framer, None)  # (None: no whole frame; it ends after a close)
                if frame is None:
                    return
                opcode, payload, frame_finished, message_finished = frame
                if opcode is TEXT or opcode is BINARY:
                    # (continuation frames come with their message's opcode)
                    if message_finished and self.parts is None:  # a whole message
                        size = (
                            len(payload)
                            if payload.__class__ is bytes or payload.isascii()
                            else len(payload.encode())
                        )
                        if size > self.limits.max_message_size:
                            self.too_big()
                            return
                        self.owner.ws_message(self, payload)
                    elif not self.piece(payload, frame_finished, message_finished):
                        return
                elif opcode is PING:
                    if self.state is OPEN:
                        self.write(proto.pong(payload))
                elif opcode is PONG:
                    self.ping_sent = 0.0
                else:  # CLOSE: the last frame the protocol gives
                    self.close_frame(*payload)
                    return
                if not buffer:
                    return  # every byte parsed: no frame left to ask for
        except ParseFailed as err:  # a framing error, bad UTF-8, a deflate limit
            violation = self.deflate.violation if self.deflate is not None else None
            self.fail(*(violation or (int(err.code), str(err) or "protocol error")))

    def piece(self, data: Any, frame_finished: bool, message_finished: bool) -> bool:
        """Part of a message; False once a limit failed the WebSocket."""
        limits = self.limits
        size = len(data) if data.__class__ is bytes or data.isascii() else len(data.encode())
        size += self.size
        if size > limits.max_message_size:
            return self.too_big()
        if frame_finished:
            self.frames += 1
            if self.frames > limits.max_frames:
                self.fail(1008, f"more than {limits.max_frames} frames in one message")
                return False
        parts = self.parts
        if parts is None:
            self.parts = parts = []
        parts.append(data)
        if not message_finished:
            self.size = size
            return True
        self.parts = None
        self.size = self.frames = 0
        joined: Any = "".join(parts) if data.__class__ is str else b"".join(parts)
        self.owner.ws_message(self, joined)
        return True

    def too_big(self) -> bool:
        self.fail(1009, f"message larger than {self.limits.max_message_size} bytes")
        return False

    def close_frame(self, code: int, reason: str) -> None:
        """A close frame from the peer: the answer to ours, or the peer begins."""
        if self.state is LOCAL_CLOSING:  # the answer to ours
            self.state = CLOSED
        else:  # the peer begins the closing handshake: answer with its code
            self.state = REMOTE_CLOSING
            self.announce(code, reason or "")
            self.write(self.proto.close(code, reason))
            self.state = CLOSED
        self.handshake_done()

    def handshake_done(self) -> None:
        """Both close frames have crossed: the server ends the connection, the client
        waits for the server to."""
        conn = self.conn
        if conn is None:
            return
        if not self.client:
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
        conn = self.conn
        if conn is None:
            if self.pending_close is not None:
                return False
            if self.early is None:
                self.early = []
            self.early.append(message)
            return True
        if self.state is not OPEN:
            return False
        proto = self.proto
        plain = self.plain
        if (
            plain is not None
            and len(message) < MIN_COMPRESS
            and (message.__class__ is not str or message.isascii())
        ):
            proto = plain  # shorter than MIN_COMPRESS bytes: BoundedDeflate would not compress
        # str: a text frame; bytes-like: a binary one (anything else: wsproto's TypeError)
        return conn.write(proto.send_data(message))

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
        if self.state is not OPEN:
            return
        self.announce(code, reason)
        self.write(self.proto.close(code, reason))
        self.state = LOCAL_CLOSING
        loop = conn.loop
        assert loop is not None
        self.close_deadline = deadline = loop.time() + self.limits.close_timeout
        self.arm(deadline)

    def fail(self, code: int, reason: str) -> None:
        """The peer broke the protocol or a limit: send ``code``, end the connection."""
        log.debug("%r: closing the WebSocket with %d: %s", self.conn, code, reason)
        self.announce(code, reason)
        if self.state is OPEN:
            self.write(self.proto.close(code, reason))
            self.state = LOCAL_CLOSING
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
            elif self.state is CLOSED:
                conn.close()  # the client waited long enough for the server's end
            else:
                log.info("%r: no answer to our close frame in time: cut", conn)
                conn.abort()
            return
        if self.state is OPEN:
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
        self.write(self.proto.ping(b"netcomp"))
        if limits.ping_timeout is not None:
            self.ping_sent = now
            self.arm(now + limits.ping_timeout)
        else:
            self.arm(now + interval)  # no timeout: ping again after the interval

    def __repr__(self) -> str:
        return f"<Endpoint {self.state.name} {self.conn!r}>"
