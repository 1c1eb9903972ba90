"""WebSocketClient: a WebSocket client component (circuits' name), ``ws://`` and ``wss://``.

Rules:
* It connects when the loop starts (or when it joins a running tree); ``eager=False``
  waits for a ``connect()`` event. The opening handshake is wsproto's; it must be
  answered within ``connect_timeout`` seconds.
* Events on its channel. In: ``connect()``, ``write(message)`` (``str``: text, ``bytes``:
  binary), ``close(code=1000, reason="")``. Out: ``connected(host, port)`` once the
  handshake is done (``client.subprotocol`` says what was agreed), ``read(message)``
  (whole messages; what a handler returns is sent back), ``closing(code, reason)``,
  ``disconnected()``, ``unreachable(host, port, reason)`` (refused, timed out, or a
  handshake the server declined: :class:`HandshakeError` with its ``status``),
  ``drained()``, ``error(err)``.
* Messages written before the handshake is done are kept (at most ``queue_limit``
  bytes; beyond that a write is refused whole with ``error(QueueFull)``) and sent, in
  order, once it is. With ``reconnect=True`` they are also kept while the link is down,
  and a Connex brings it back (its backoff and ``max_retries``); a declined handshake
  with a 4xx status stops the retries (``connect()`` starts again), a 5xx does not.
  Without ``reconnect``, a write while not connected is refused: ``error(NotConnected)``.
* ``close()`` ends the link for good (no reconnect) once the closing handshake is done.
"""

from __future__ import annotations

import ssl
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from wsproto import ConnectionType
from wsproto import WSConnection as Handshake
from wsproto.events import AcceptConnection, RejectConnection, Request
from wsproto.utilities import RemoteProtocolError

from ..core import BaseComponent, NetcompError, TimerHandle, handler
from ..net import (
    Connection,
    NotConnected,
    QueueFull,
    close,
    connect,
    connected,
    disable,
    disconnected,
    drained,
    enable,
    read,
    unreachable,
    write,
)
from ._wsdeflate import BoundedDeflate
from ._wsendpoint import SENDABLE, Endpoint
from ._wsevents import closing, error
from ._wslimits import WebSocketLimits
from ._wstransport import Link, Relink, Target, parse_url

__all__ = ["HandshakeError", "WebSocketClient"]


class HandshakeError(NetcompError, ConnectionError):
    """The server did not accept the WebSocket handshake (``status``: its answer, 0 when
    the answer was not a valid handshake at all)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"WebSocket handshake declined: {status or ''} {reason}".strip())
        self.status = status
        self.reason = reason


class WebSocketClient(BaseComponent):
    """A WebSocket client: see the module's rules for its events and options."""

    channel: Any = "wsclient"

    def __init__(
        self,
        url: str,
        channel: Any = "wsclient",
        *,
        reconnect: bool = False,
        eager: bool = True,
        subprotocols: Iterable[str] = (),
        origin: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        compression: bool = True,
        limits: WebSocketLimits | None = None,
        connect_timeout: float | None = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        backoff: Callable[[int], float] | None = None,
        max_retries: int | None = None,
        queue_limit: int = 1024 * 1024,
    ) -> None:
        """``url``: ``ws://host[:port]/path`` or ``wss://...``. ``subprotocols``: offered,
        in order. ``origin``, ``headers``: extra handshake fields. ``compression``: offer
        permessage-deflate. ``backoff``/``max_retries``: the Connex's, with ``reconnect``.
        TLS as the TCP client: ``ssl_context``, ``server_hostname`` (verified by
        default)."""
        super().__init__(channel=channel)
        self.target: Target = parse_url(url)
        if limits is not None and not isinstance(limits, WebSocketLimits):
            raise TypeError(f"limits must be a WebSocketLimits, not {type(limits).__name__}")
        if isinstance(queue_limit, bool) or not isinstance(queue_limit, int) or queue_limit < 0:
            raise ValueError(f"queue_limit must be a whole number of bytes, got {queue_limit!r}")
        self.url = url
        self.reconnect = reconnect
        self.eager = eager
        self.subprotocols = list(subprotocols)
        self.extra_headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]
        if origin is not None:
            self.extra_headers.append((b"Origin", origin.encode("latin-1")))
        self.compression = compression
        self.limits = limits if limits is not None else WebSocketLimits()
        self.connect_timeout = connect_timeout
        self.queue_limit = queue_limit
        #: The subprotocol the server agreed to (None: none), once connected.
        self.subprotocol: str | None = None
        self._wanted = eager  # a link is wanted (not closed by the user)
        self._dialing = False  # a connect is in progress (without reconnect)
        self._handshake: Handshake | None = None  # the handshake in progress
        self._endpoint: Endpoint | None = None  # the open WebSocket
        self._queue: deque[str | bytes] = deque()
        self._queued = 0
        self._timer: TimerHandle | None = None
        self._link_channel = (channel, "link", id(self))
        self.transport = self._transport(ssl_context, server_hostname, backoff, max_retries)

    def _transport(
        self,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        backoff: Callable[[int], float] | None,
        max_retries: int | None,
    ) -> Link | Relink:
        """The net client under the WebSocket, on a channel of its own that we listen to."""
        for name, func in (
            ("connected", self._on_link_up),
            ("unreachable", self._on_unreachable),
            ("error", self._on_link_error),
        ):
            self.add_handler(func, name, channel=self._link_channel)
        options = (self.connect_timeout, ssl_context, server_hostname, self._link_channel)
        transport: Link | Relink
        if self.reconnect:
            transport = Relink(self, self.target, *options, backoff, max_retries, self.eager)
        else:
            transport = Link(self, self.target, *options)
        transport.register(self)
        return transport

    @property
    def connected(self) -> bool:
        """Whether the WebSocket is open (handshake done, not closing)."""
        return self._endpoint is not None and self._endpoint.open

    @property
    def queued(self) -> int:
        """Bytes of messages waiting for the WebSocket to open."""
        return self._queued

    # ------------------------------------------------------------ connecting
    @handler("started", channel="*")
    def _on_started(self, manager: Any) -> None:
        if self.eager and not self.reconnect:
            self._dial()

    @handler("registered", channel="*")
    def _on_registered(self, component: Any, parent: Any) -> None:
        if component is self and self.loop.running and self.eager and not self.reconnect:
            self._dial()

    @handler("connect")
    def _on_connect(self) -> None:
        self._wanted = True
        if self.reconnect:
            self.fire(enable(), self._link_channel)
        else:
            self._dial()

    def _dial(self) -> None:
        if self._handshake is None and self._endpoint is None and not self._dialing:
            self._dialing = True
            self.fire(connect(), self._link_channel)

    def _on_link_up(self, host: Any, port: Any) -> None:
        """TCP (and TLS) is up: send the opening handshake."""
        self._dialing = False
        if not self._wanted:  # closed meanwhile (a Connex came back first): no handshake
            self.fire(close(), self._link_channel)
            return
        target = self.target
        handshake = self._handshake = Handshake(ConnectionType.CLIENT)
        extensions = [BoundedDeflate(self.limits.max_message_size)] if self.compression else []
        request = Request(
            host=target.host_field,
            target=target.resource,
            extensions=extensions,
            extra_headers=self.extra_headers,
            subprotocols=self.subprotocols,
        )
        self.fire(write(handshake.send(request)), self._link_channel)
        if self.connect_timeout is not None:
            self._timer = self.loop.call_later(self.connect_timeout, self._handshake_expired)

    def _handshake_expired(self) -> None:
        self._timer = None
        if self._handshake is not None:
            self._declined(TimeoutError("no answer to the WebSocket handshake in time"), True)

    def _declined(self, reason: BaseException, retry: bool) -> None:
        """The handshake failed: say so, drop the link (and retry, or not)."""
        self._handshake = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        target = self.target
        self.fire(unreachable(target.host, target.port, reason))
        if self.reconnect and retry:
            self.fire(disable(), self._link_channel)  # drops the link...
            self.fire(enable(), self._link_channel)  # ...and makes a new one
        elif self.reconnect:
            self.fire(disable(), self._link_channel)
        else:
            self.fire(close(), self._link_channel)

    def _opened(self, conn: Connection, accepted: AcceptConnection) -> None:
        """The server accepted: the WebSocket is open."""
        handshake, self._handshake = self._handshake, None
        assert handshake is not None and handshake.connection is not None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deflate = next((e for e in accepted.extensions if isinstance(e, BoundedDeflate)), None)
        endpoint = self._endpoint = Endpoint(self, handshake.connection, self.limits, deflate)
        endpoint.attach(conn)
        self.subprotocol = accepted.subprotocol
        host, port = conn.peer if isinstance(conn.peer, tuple) else (self.target.host, None)
        self.fire(connected(host, port))
        queue, self._queue = self._queue, deque()
        self._queued = 0
        for message in queue:
            endpoint.send(message)
        endpoint.process()  # what came with the 101

    # ------------------------------------------------------- transport hooks
    def link_data(self, conn: Connection, data: bytes) -> None:
        """Bytes from the server: the handshake's answer, then frames."""
        endpoint = self._endpoint
        if endpoint is not None:
            endpoint.data(data)
            return
        handshake = self._handshake
        if handshake is None:
            return  # an answer nobody waits for any more
        try:
            handshake.receive_data(data)
            for event in handshake.events():
                if isinstance(event, AcceptConnection):
                    self._opened(conn, event)
                    return
                if isinstance(event, RejectConnection):
                    status = event.status_code
                    self._declined(HandshakeError(status, "by the server"), status >= 500)
                    return
        except RemoteProtocolError as err:
            self._declined(HandshakeError(0, str(err)), False)

    def link_eof(self, conn: Connection) -> None:
        """The server will send no more."""
        if self._endpoint is not None:
            self._endpoint.eof()
        else:
            conn.close()

    def link_drained(self, conn: Connection) -> None:
        """Room in the output again."""
        if self._endpoint is not None:
            self._endpoint.drained()

    def link_lost(self, conn: Connection) -> None:
        """The connection is gone."""
        endpoint = self._endpoint
        if endpoint is not None and endpoint.conn is conn:
            endpoint.down()
        elif self._handshake is not None:
            self._declined(ConnectionError("the connection closed during the handshake"), True)

    def _on_unreachable(self, host: Any, port: Any, reason: Any, *attempt: Any) -> None:
        self._dialing = False
        self.fire(unreachable(host, port, reason, *attempt))

    def _on_link_error(self, err: BaseException) -> None:
        self.fire(error(err))

    # ------------------------------------------------------- endpoint reports
    def ws_message(self, endpoint: Endpoint, message: str | bytes) -> None:
        """A message: fire ``read(message)``; what it returns is sent back."""
        self.fire(read(message)).add_done_callback(endpoint.read_done)

    def ws_closing(self, endpoint: Endpoint, code: int, reason: str) -> None:
        """Fire ``closing(code, reason)``."""
        self.fire(closing(code, reason))

    def ws_gone(self, endpoint: Endpoint) -> None:
        """The WebSocket's connection is gone: fire ``disconnected()``."""
        if endpoint is self._endpoint:
            self._endpoint = None
            self.fire(disconnected())
            if not self._wanted:
                self.fire(close(), self._link_channel)  # no reconnect after close()

    def ws_drained(self, endpoint: Endpoint) -> None:
        """Fire ``drained()``."""
        self.fire(drained())

    # ---------------------------------------------------------------- in
    @handler("write")
    def _on_write(self, message: str | bytes) -> None:
        endpoint = self._endpoint
        if endpoint is not None and endpoint.open:
            endpoint.send(message)
            return
        if not (self._handshake is not None or self._dialing or self.reconnect):
            self.fire(error(NotConnected(f"{self!r}: write while not connected")))
            return
        size = len(message) if isinstance(message, bytes) else len(message.encode("utf-8"))
        if self._queued + size > self.queue_limit:
            self.fire(error(QueueFull(size, self._queued, self.queue_limit)))
            return
        self._queue.append(message)
        self._queued += size

    @handler("close")
    def _on_close(self, code: int = 1000, reason: str = "") -> None:
        if code not in SENDABLE:
            raise ValueError(f"close code {code} may not be sent (1000-1003, 1007-1014, 3000+)")
        self._wanted = False
        endpoint = self._endpoint
        if endpoint is not None:
            endpoint.close(code, reason)
        else:
            self._handshake = None
            self._dialing = False
            self.fire(close(), self._link_channel)

    @handler("stopped", channel="*", priority=1)
    def _on_stopped(self, manager: Any) -> None:
        self._wanted = False
        if self._endpoint is not None:
            self._endpoint.close(1001, "going away")

    def __repr__(self) -> str:
        state = "open" if self.connected else "handshaking" if self._handshake else "closed"
        return f"<{type(self).__name__}/{self.channel} {self.url} {state}>"
