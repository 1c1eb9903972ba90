"""The HTTP server components: :class:`BaseServer` (a TCP/TLS server with the HTTP state
of each connection, a :class:`~._link.Link`) and :class:`Server` (with a Dispatcher).

Rules:
* Each connection gets a link, unless ``max_connections`` are open: then it is answered
  503 with ``Retry-After`` and closed. A link that switched protocols (a WebSocket) hands
  the connection to what it switched to; it still counts as an open connection.
* The server fires ``request(request, response)`` on its channel (see :mod:`._link` and
  :mod:`._handling` for the rest).
* On stop, an idle connection closes at once; a busy one answers what it has (with
  ``Connection: close``), then closes.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

from ..core import handler
from ..net import Connection
from ..net import Server as _StreamServer
from ._dispatcher import Dispatcher
from ._exchange import Handling
from ._headers import check_field
from ._limits import HTTPLimits
from ._link import Link

__all__ = ["BaseServer", "Server"]


def _family(bind: Any) -> socket.AddressFamily:
    if isinstance(bind, str) and ("/" in bind or bind.startswith("\0")):
        return socket.AF_UNIX
    host = bind[0] if isinstance(bind, tuple) else bind if isinstance(bind, str) else ""
    if isinstance(host, str) and (host.startswith("[") or host.count(":") > 1):
        return socket.AF_INET6
    return socket.AF_INET


class BaseServer(_StreamServer):
    """An HTTP/1.1 server: fires ``request(request, response)`` on its channel.

    ``bind``: a port, ``(host, port)``, ``"host:port"``, ``"[::1]:port"`` or a UNIX path.
    TLS with ``ssl_context=`` or ``certfile=``/``keyfile=``. ``limits``:
    :class:`HTTPLimits`. Other keywords go to the stream server (``backlog``,
    ``reuse_port``, ``sock``...).
    """

    channel = "web"

    #: A Dispatcher made for each server (``Server``'s); None: the handlers answer alone.
    dispatcher_class: type[Dispatcher] | None = None

    def __init__(
        self,
        bind: Any = None,
        *,
        secure: bool | None = None,
        ssl_context: ssl.SSLContext | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        limits: HTTPLimits | None = None,
        expose_tracebacks: bool = False,
        server_name: str | None = "netcomp",
        backlog: int = 1024,
        reuse_port: bool = False,
        nodelay: bool = True,
        high_water: int = 1024 * 1024,
        low_water: int = 256 * 1024,
        handshake_timeout: float = 30.0,
        max_accepts: int = 64,
        accept_backoff: float = 0.1,
        sock: socket.socket | None = None,
        channel: Any = "web",
    ) -> None:
        """Bind and listen at once (errors surface here). The stream options (``backlog``
        to ``sock``) are :class:`netcomp.net.Server`'s."""
        if limits is not None and not isinstance(limits, HTTPLimits):
            raise TypeError(f"limits must be an HTTPLimits, not {type(limits).__name__}")
        self.family = sock.family if sock is not None else _family(bind)
        self.http_limits = limits if limits is not None else HTTPLimits()
        self.expose_tracebacks = expose_tracebacks
        self.server_name = server_name
        self._server_field = f"Server: {server_name}\r\n" if server_name else ""
        if server_name:
            check_field("Server", server_name)
        self.in_progress = 0
        self.stopping = False
        self._links: dict[Connection, Handling] = {}
        super().__init__(
            bind,
            secure,
            ssl_context,
            certfile,
            keyfile,
            backlog=backlog,
            reuse_port=reuse_port,
            nodelay=nodelay,
            high_water=high_water,
            low_water=low_water,
            handshake_timeout=handshake_timeout,
            max_accepts=max_accepts,
            accept_backoff=accept_backoff,
            sock=sock,
            channel=channel,
        )
        self.scheme = "https" if self.secure else "http"
        if self.dispatcher_class is not None:
            self.dispatcher = self.dispatcher_class(channel=self.channel).register(self)

    @property
    def url(self) -> str:
        """The base URL clients use (``http://127.0.0.1:8000``)."""
        host = self.host
        if self.family == socket.AF_INET6:
            host = f"[{host}]"
        elif self.family == socket.AF_UNIX:
            return f"{self.scheme}+unix://{host}"
        return f"{self.scheme}://{host}:{self.port}"

    # -------------------------------------------------- connection owner
    def connection_made(self, conn: Connection) -> None:
        """A connection is up: give it its HTTP state (or a 503 past ``max_connections``)."""
        if len(self._links) >= self.http_limits.max_connections:
            conn.write(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                b"Connection: close\r\nRetry-After: 1\r\n\r\n"
            )
            conn.close()
            return
        self._links[conn] = Link(self, conn)
        super().connection_made(conn)

    def data_received(self, conn: Connection, data: bytes) -> None:
        """Bytes from a client go to its parser (no ``read`` event)."""
        link = self._links.get(conn)
        if link is not None:
            link.data(data)

    def eof_received(self, conn: Connection) -> None:
        """The client will send no more: answer what it asked, then close."""
        link = self._links.get(conn)
        if link is not None:
            link.eof()
        else:
            conn.close()

    def _switched(self, conn: Connection, handling: Handling) -> None:
        """``conn`` switched protocols: ``handling`` takes its input from now on."""
        if conn in self._links:
            self._links[conn] = handling

    def connection_drained(self, conn: Connection) -> None:
        """Room in the output again: resume a streamed response."""
        link = self._links.get(conn)
        if link is not None:
            link.drained()

    def connection_lost(self, conn: Connection, err: BaseException | None) -> None:
        """The connection is gone: end its exchanges, then the stream server's part."""
        link = self._links.pop(conn, None)
        if link is not None:
            link.down()
        super().connection_lost(conn, err)

    def shutdown_connection(self, conn: Connection) -> None:
        """On shutdown, an idle connection closes; a busy one answers what it has first."""
        link = self._links.get(conn)
        if link is None:
            conn.close()
        else:
            link.shutdown()

    @handler("stopped", channel="*", priority=1)
    def _web_stopping(self, manager: Any) -> None:
        self.stopping = True

    def __repr__(self) -> str:
        return f"<{type(self).__name__}/{self.channel} {self.url} connections={len(self._links)}>"


class Server(BaseServer):
    """:class:`BaseServer` plus a :class:`Dispatcher` routing to :class:`Controller` s
    (``server.dispatcher``); the same arguments.

    >>> app = Server(("127.0.0.1", 8000)) + Root()   # doctest: +SKIP
    """

    dispatcher_class = Dispatcher
