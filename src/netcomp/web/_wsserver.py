"""WebSocketsDispatcher: WebSockets on the HTTP server's own port (circuits' name).

Rules:
* A request for ``path`` that asks to upgrade to ``websocket`` is the dispatcher's (before
  the other ``request`` handlers); every other request goes on as usual, on the same
  connections (keep-alive, pipelining). The handshake is checked (400, 426), then the
  origin (403), then ``connect(sock, request)`` is fired on the dispatcher's channel: a
  handler returning ``False`` refuses with 403, one raising an ``HTTPError`` answers with
  its status, one raising anything else gives 500 (its error is logged). Otherwise the
  server answers 101 and the connection is the WebSocket's from then on.
* Out on the channel: ``read(sock, message)`` (whole messages; what a handler returns is
  sent back), ``closing(sock, code, reason)``, ``disconnect(sock)`` (once for every
  ``connect`` not refused, when the connection is gone), ``drained(sock)``,
  ``error(sock, err)``. In: ``write(sock, message)``, ``close(sock, code=1000,
  reason="")`` (``sock=None``: every WebSocket).
* :meth:`WebSocketsDispatcher.broadcast` sends one message to many WebSockets and frames
  it once per wire format (once in all, or once more for compressed ones).
* The server's stop closes every WebSocket with 1001 and waits for them.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Collection, Iterable
from typing import Any, Final

from wsproto.connection import Connection as WSConnection
from wsproto.connection import ConnectionType
from wsproto.events import BytesMessage, TextMessage
from wsproto.extensions import Extension

from ..core import BaseComponent, Event, Future, Value, handler
from ..net import NotConnected, connect, disconnect, drained, read
from ._errors import Forbidden, HTTPError
from ._exchange import Exchange
from ._request import Request
from ._response import Response
from ._wsdeflate import MIN_COMPRESS, BoundedDeflate
from ._wsendpoint import SENDABLE, Endpoint
from ._wsevents import closing, error
from ._wshandshake import Agreement, asks_for_websocket, negotiate
from ._wslimits import WebSocketLimits

__all__ = ["ServerSocket", "WebSocketsDispatcher"]

Origins = Collection[str | None] | Callable[[str | None, Request], bool] | None

CONNECTING: Final = "connecting"  # connect handlers run
ACCEPTED: Final = "accepted"  # the 101 is on its way
REFUSED: Final = "refused"
OPEN: Final = "open"  # the connection is the WebSocket's
GONE: Final = "gone"


class ServerSocket(Endpoint):
    """A WebSocket accepted by a :class:`WebSocketsDispatcher`: an endpoint that takes
    its connection over once the 101 is out (a ``Takeover``)."""

    __slots__ = ("phase", "request", "subprotocol")

    def __init__(
        self,
        owner: WebSocketsDispatcher,
        agreement: Agreement,
        limits: WebSocketLimits,
        handle: socket.socket,
        request: Request,
    ) -> None:
        deflate = agreement.deflate
        extensions: list[Extension] | None = [deflate] if deflate is not None else None
        ws = WSConnection(ConnectionType.SERVER, extensions)
        super().__init__(owner, ws, limits, deflate, handle)
        self.request = request
        self.subprotocol = agreement.subprotocol
        self.phase = CONNECTING

    def start(self, conn: Any) -> ServerSocket:
        """The 101 is out: the connection is this WebSocket's."""
        self.phase = OPEN
        self.attach(conn)
        return self

    def abandon(self) -> None:
        """No switch after all (refused, timed out, or the connection went first)."""
        phase = self.phase
        if phase is CONNECTING:
            self.phase = GONE  # disconnect follows once connect's handlers are done
        elif phase is ACCEPTED:
            self.phase = GONE
            self.owner.ws_gone(self)

    @property
    def wire_key(self) -> int | None:
        """Which sockets receive the same bytes for a message: the window size of the
        compressed ones, None for the others."""
        deflate = self.deflate
        return deflate.server_max_window_bits if deflate is not None else None


class WebSocketsDispatcher(BaseComponent):
    """Upgrades requests for ``path`` to WebSockets, whose events go on ``channel``.

    Register it under the web server (any netcomp.web server) whose channel is
    ``web_channel``. See the module's rules for the events.
    """

    channel: Any = "ws"

    def __init__(
        self,
        path: str = "/",
        channel: Any = "ws",
        *,
        web_channel: Any = "web",
        subprotocols: Iterable[str] = (),
        origins: Origins = None,
        compression: bool = True,
        limits: WebSocketLimits | None = None,
    ) -> None:
        """``subprotocols``: those the server speaks, in its order of preference (the
        first the client offers is chosen). ``origins``: the ``Origin`` values allowed
        (``None`` in it allows requests without one), or ``f(origin, request) -> bool``;
        ``None``: any origin. ``compression``: accept permessage-deflate when offered.
        ``limits``: :class:`WebSocketLimits`."""
        super().__init__(channel=channel)
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"path must be a URL path starting with '/', got {path!r}")
        if limits is not None and not isinstance(limits, WebSocketLimits):
            raise TypeError(f"limits must be a WebSocketLimits, not {type(limits).__name__}")
        self.path = path
        self.web_channel = web_channel
        self.subprotocols = tuple(subprotocols)
        self.origins = origins
        self.compression = compression
        self.limits = limits if limits is not None else WebSocketLimits()
        self._sockets: dict[socket.socket, ServerSocket] = {}
        self._encoders: dict[int | None, WSConnection] = {}
        self.add_handler(self._on_request, "request", channel=web_channel, priority=1)

    # -------------------------------------------------------------- handshake
    def _on_request(self, event: Event, request: Request, response: Response) -> Future | None:
        if event.answered or request.path != self.path or not asks_for_websocket(request):
            return None
        exchange = response._exchange
        if not isinstance(exchange, Exchange) or not exchange.might_switch:
            raise HTTPError(400, "a WebSocket handshake needs 'Connection: Upgrade'")
        agreement = negotiate(
            request, self.subprotocols, self.compression, self.limits.max_message_size
        )
        self.check_origin(request)
        if exchange.link.server.stopping:
            raise HTTPError(503, "the server is stopping")
        sock = exchange.link.conn.sock
        session = ServerSocket(self, agreement, self.limits, sock, request)
        exchange.switch_to = session
        self._sockets[sock] = session
        answer = Future()
        value = self.fire(connect(sock, request), self.channel)
        value.add_done_callback(lambda v: self._connected(session, v, answer, agreement))
        return answer

    def check_origin(self, request: Request) -> None:
        """Refuse (403) a request whose ``Origin`` the ``origins`` option does not allow."""
        origins = self.origins
        if origins is None:
            return
        origin = request.headers.get("origin")
        allowed = origins(origin, request) if callable(origins) else origin in origins
        if not allowed:
            raise Forbidden(description=f"origin {origin!r} is not allowed")

    def _connected(
        self, session: ServerSocket, value: Value, answer: Future, agreement: Agreement
    ) -> None:
        """``connect``'s handlers are done: answer 101, or the refusal."""
        result = value.value
        refused = result is False or (isinstance(result, list) and False in result)
        if value.errors or refused:
            if self._sockets.get(session.handle) is session:
                del self._sockets[session.handle]
            session.phase = REFUSED
            error_ = value.exception
            if isinstance(error_, HTTPError):
                answer.set_exception(error_)
            elif error_ is not None:  # logged where it was raised
                answer.set_exception(HTTPError(500, "a connect handler failed"))
            else:
                answer.set_exception(Forbidden(description="refused by a connect handler"))
            return
        if session.phase is GONE:  # the connection went while the handlers ran
            self.ws_gone(session)
            answer.set_result(None)
            return
        session.phase = ACCEPTED
        answer.set_result(Response(b"", 101, agreement.headers))

    # ------------------------------------------------------- endpoint reports
    def ws_message(self, endpoint: Endpoint, message: str | bytes) -> None:
        """A message arrived: fire ``read(sock, message)``; what it returns goes back."""
        value = self.fire(read(endpoint.handle, message), self.channel)
        value.add_done_callback(endpoint.read_done)

    def ws_closing(self, endpoint: Endpoint, code: int, reason: str) -> None:
        """The WebSocket is closing: fire ``closing(sock, code, reason)``."""
        self.fire(closing(endpoint.handle, code, reason), self.channel)

    def ws_gone(self, endpoint: Endpoint) -> None:
        """The connection is gone: fire ``disconnect(sock)`` (once)."""
        if self._sockets.get(endpoint.handle) is endpoint:
            del self._sockets[endpoint.handle]
            self.fire(disconnect(endpoint.handle), self.channel)

    def ws_drained(self, endpoint: Endpoint) -> None:
        """Room in the output again: fire ``drained(sock)``."""
        self.fire(drained(endpoint.handle), self.channel)

    # ------------------------------------------------------------------ events
    @handler("write")
    def _on_write(self, sock: socket.socket, message: str | bytes) -> None:
        if not self.send(sock, message):
            self.fire(error(sock, NotConnected(f"write to a closed WebSocket {sock!r}")))

    @handler("close")
    def _on_close(
        self, sock: socket.socket | None = None, code: int = 1000, reason: str = ""
    ) -> None:
        if code not in SENDABLE:
            raise ValueError(f"close code {code} may not be sent (1000-1003, 1007-1014, 3000+)")
        sockets = self._sockets
        for session in list(sockets.values()) if sock is None else [sockets.get(sock)]:
            if session is not None:
                session.close(code, reason)

    # --------------------------------------------------------------------- API
    def send(self, sock: socket.socket, message: str | bytes) -> bool:
        """Send ``message`` (``str``: text, ``bytes``: binary) on ``sock``; False when it
        is not an open WebSocket of this dispatcher."""
        session = self._sockets.get(sock)
        return session is not None and session.send(message)

    def broadcast(
        self,
        message: str | bytes,
        socks: Iterable[socket.socket] | None = None,
        exclude: socket.socket | None = None,
    ) -> int:
        """Send ``message`` to ``socks`` (default: every WebSocket) but ``exclude``,
        framing it once per wire format; returns how many it was handed to."""
        sessions = self._sockets
        targets = sessions.values() if socks is None else [sessions.get(s) for s in socks]
        size = len(message) if isinstance(message, bytes) else len(message.encode("utf-8"))
        frames: dict[int | None, bytes] = {}
        count = 0
        for session in list(targets):
            if session is None or session.handle is exclude:
                continue
            if not session.open:
                count += session.send(message)
                continue
            key = session.wire_key if size >= MIN_COMPRESS else None
            frame = frames.get(key)
            if frame is None:
                frame = frames[key] = self._encode(key, message)
            count += session.write(frame)
        return count

    def _encode(self, key: int | None, message: str | bytes) -> bytes:
        encoder = self._encoders.get(key)
        if encoder is None:
            extensions: list[Extension] | None = None
            if key is not None:
                deflate = BoundedDeflate(1, server_no_context_takeover=True)
                deflate.server_max_window_bits = key
                deflate.accept("permessage-deflate")  # enables it
                extensions = [deflate]
            encoder = self._encoders[key] = WSConnection(ConnectionType.SERVER, extensions)
        if isinstance(message, str):
            return encoder.send(TextMessage(data=message))
        return encoder.send(BytesMessage(data=message))

    @property
    def sockets(self) -> list[socket.socket]:
        """The WebSockets of this dispatcher (connecting or open)."""
        return list(self._sockets)

    def subprotocol(self, sock: socket.socket) -> str | None:
        """The subprotocol agreed on for ``sock`` (None: none)."""
        session = self._sockets.get(sock)
        return session.subprotocol if session is not None else None

    def buffered(self, sock: socket.socket) -> int:
        """Bytes waiting to be sent on ``sock`` (pace on ``drained(sock)``)."""
        session = self._sockets.get(sock)
        conn = session.conn if session is not None else None
        return conn.buffered if conn is not None else 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__}/{self.channel} {self.path} sockets={len(self._sockets)}>"
