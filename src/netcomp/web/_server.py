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
* A TLS server whose client sends plain HTTP (its first bytes look like a request line)
  answers 400 in clear, saying the port expects TLS, then closes; other bytes that are
  no TLS end the connection as a failed handshake.
* ``response_filters`` (:mod:`._filters`) is empty unless a component adds to it (a
  :class:`~netcomp.web.Gzip`, :class:`~netcomp.web.Sessions`); while a handler takes
  circuits.web's ``response`` event by name on the server's channel, the server adds the
  filter that fires it (checked whenever a component joins or leaves the tree).
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
from collections.abc import Iterable
from typing import Any

from ..core import handler
from ..net import Connection, Networks
from ..net import Server as _StreamServer
from ._accesslog import log_access
from ._dispatcher import Dispatcher
from ._exchange import Handling
from ._filters import ResponseEvent, ResponseFilter
from ._headers import check_field
from ._limits import HTTPLimits
from ._link import Link
from ._proxy import ProxyHeaders

__all__ = ["BaseServer", "Server", "ServerHTTP"]

log = logging.getLogger("netcomp.web")

#: A request line's start: a method (an upper-case token) and the first byte of a target.
_REQUEST_LINE = re.compile(rb"[A-Z][A-Z_-]{2,19} [^\s]")
_TLS_EXPECTED = (
    b"This port expects TLS (HTTPS): the plain HTTP request was not read.\n"
    b"Use an https:// URL for it.\n"
)
#: What a TLS server answers to a plain HTTP request.
_PLAINTEXT_ANSWER = (
    b"HTTP/1.1 400 Bad Request\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\n"
    b"Connection: close\r\n\r\n%s" % (len(_TLS_EXPECTED), _TLS_EXPECTED)
)


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

    ``high_water``/``low_water``: a connection's buffered output above which a streamed
    response stops producing (and the connection is not read), and below which it goes
    on. 32 KiB / 8 KiB: a slow reader holds at most 32 KiB plus one chunk of its
    response (the kernel's socket buffer keeps fast ones fed; 1 MiB, the net layer's
    default, let 200 slow readers hold 180 MB). ``limits.output_budget`` caps the sum.
    ``notsent_lowat``: what the kernel may hold unsent per connection (32 KiB). Without
    it, a peer advertising a 1 KiB window let the kernel take 1.6 MB (its send buffer
    autotunes to 4 MB), which the server then generated for nothing; ``None`` leaves the
    system's setting. Against 64 KiB for both, 32 KiB cut the server's CPU time under a
    1,000-connection slow-read attack by a third and its peak RSS from 106 to 70 MB
    (benchmarks/README.md), with no change in a 300 MiB download's time on loopback.
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
        high_water: int = 32 * 1024,
        low_water: int = 8 * 1024,
        notsent_lowat: int | None = 32 * 1024,
        handshake_timeout: float = 30.0,
        max_accepts: int = 64,
        accept_backoff: float = 0.1,
        sock: socket.socket | None = None,
        channel: Any = "web",
        allow: Iterable[Any] | str | None = None,
        deny: Iterable[Any] | str | None = None,
        url_scheme: str | None = None,
        proxy_headers: bool = False,
        forwarded_allow: Iterable[Any] | str = ("127.0.0.0/8", "::1"),
    ) -> None:
        """Bind and listen at once. Stream options (``backlog`` to ``sock``, ``allow``,
        ``deny``; ``bind`` may be a list) are :class:`netcomp.net.Server`'s.

        ``url_scheme``: the scheme requests report (``"https"`` behind a proxy that ends
        TLS); by default the socket's. ``proxy_headers``: believe ``Forwarded`` and
        ``X-Forwarded-For``/``-Proto``/``-Host`` from connections whose peer is in
        ``forwarded_allow`` (loopback by default): requests then report the client's
        address, scheme and host (docs/web.md, *Behind a proxy*).
        """
        self._proxy_options(url_scheme, proxy_headers, forwarded_allow)
        self._http_state(limits, expose_tracebacks, server_name)
        super().__init__(
            bind, secure, ssl_context, certfile, keyfile, backlog, reuse_port, nodelay,
            high_water, low_water, handshake_timeout, max_accepts, accept_backoff, sock,
            channel, allow=allow, deny=deny, output_budget=self.http_limits.output_budget,
            output_grace=self.http_limits.output_grace, notsent_lowat=notsent_lowat,
        )  # fmt: skip
        self.scheme = self.url_scheme or ("https" if self.secure else "http")
        if self.dispatcher_class is not None:
            self.dispatcher = self.dispatcher_class(channel=self.channel).register(self)

    def _http_state(
        self, limits: HTTPLimits | None, expose_tracebacks: bool, server_name: str | None
    ) -> None:
        """The HTTP side's settings and state (before the stream server binds)."""
        if limits is not None and not isinstance(limits, HTTPLimits):
            raise TypeError(f"limits must be an HTTPLimits, not {type(limits).__name__}")
        self.http_limits = limits if limits is not None else HTTPLimits()
        self.expose_tracebacks = expose_tracebacks
        self.server_name = server_name
        self._server_field = f"Server: {server_name}\r\n" if server_name else ""
        if server_name:
            check_field("Server", server_name)
        self.in_progress = 0
        self.answering: list[Any] = []  # requests to answer once this pass's reads are done
        self.stopping = False
        self._links: dict[Connection, Handling] = {}
        #: Called on each response before its head is made (docs/web.md, *Response
        #: filters*). Empty: nothing is done per request.
        self.response_filters: list[ResponseFilter] = []
        self._response_event = ResponseEvent(lambda event: self.fire(event, self.channel))

    def _proxy_options(
        self, url_scheme: str | None, proxy_headers: bool, forwarded_allow: Any
    ) -> None:
        if url_scheme is not None and url_scheme not in ("http", "https"):
            raise ValueError(f"url_scheme must be 'http' or 'https', got {url_scheme!r}")
        #: The scheme requests report when given (else the socket's: http or https).
        self.url_scheme = url_scheme
        #: Reads trusted proxy headers (``proxy_headers=True``), else None.
        self.proxy_headers = ProxyHeaders(Networks(forwarded_allow)) if proxy_headers else None

    def family_for(self, bind: Any) -> socket.AddressFamily:
        """One server class for every family: a path is UNIX, an IPv6 form IPv6."""
        if isinstance(bind, socket.socket):
            return bind.family
        return _family(bind)

    @property
    def http(self) -> ServerHTTP:
        """circuits.web's ``server.http``: the ``base`` URL, ``scheme``, ``protocol``."""
        return ServerHTTP(self)

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

    def plaintext_answer(self, conn: Connection, greeting: bytes) -> bytes | None:
        """Plain HTTP on this TLS port: a 400 saying so (other non-TLS bytes: nothing)."""
        if _REQUEST_LINE.match(greeting) is None:
            return None
        log.debug("%r: a plain HTTP request on a TLS port: 400", conn)
        log_access(conn.peer, None, 400, len(_TLS_EXPECTED))
        return _PLAINTEXT_ANSWER

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

    @handler("registered", "unregistered", channel="*")
    def _web_tree_changed(self, component: Any, manager: Any) -> None:
        """Fire circuits' ``response`` event only while a handler takes it by name here."""
        named = self.loop.registry.lookup("response", (self.channel,))[2]
        filters = self.response_filters
        present = self._response_event in filters
        if named and not present:
            filters.insert(0, self._response_event)
        elif present and not named:
            filters.remove(self._response_event)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}/{self.channel} {self.url} connections={len(self._links)}>"


class ServerHTTP:
    """circuits.web's ``server.http``, as far as programs read it: ``base`` (the URL
    without a trailing slash), ``uri`` (with it), ``scheme``, ``protocol`` and
    ``version`` (what the ``Server`` field says)."""

    __slots__ = ("server",)

    def __init__(self, server: BaseServer) -> None:
        self.server = server

    @property
    def base(self) -> str:
        """The base URL, ``http://127.0.0.1:8000``."""
        return self.server.url

    @property
    def uri(self) -> str:
        """The base URL with a trailing slash."""
        return self.server.url + "/"

    @property
    def scheme(self) -> str:
        """``http`` or ``https``."""
        return self.server.scheme

    @property
    def protocol(self) -> tuple[int, int]:
        """The HTTP version the server speaks, ``(1, 1)``."""
        return (1, 1)

    @property
    def version(self) -> str:
        """The ``Server`` field's value (``netcomp``), or ``""`` when it is not sent."""
        return self.server.server_name or ""

    def __repr__(self) -> str:
        return f"<ServerHTTP {self.base}>"


class Server(BaseServer):
    """:class:`BaseServer` plus a :class:`Dispatcher` routing to :class:`Controller` s
    (``server.dispatcher``); the same arguments.

    >>> app = Server(("127.0.0.1", 8000)) + Root()   # doctest: +SKIP
    """

    dispatcher_class = Dispatcher
