"""Stream clients: TCP (IPv4, IPv6) and UNIX, plain or TLS, on the tree's one selector.

Rules:
* ``connect`` never blocks the loop: numeric addresses connect at once; names are resolved
  on a helper thread and the answer comes back through the loop's thread-safe queue.
* A refused or unreachable destination fires ``unreachable(host, port, reason)`` as soon as
  the kernel says so; ``connect_timeout`` (seconds) bounds the TCP connect plus the TLS
  handshake. ``connected(host, port)`` fires once the link is usable.
* TLS clients verify the server's certificate and name by default.
* One connect attempt is a :class:`Dial` (resolve, connect, handshake, in time); ``Client``
  and ``Connex`` both make theirs with it, so the rules above hold for both.
"""

from __future__ import annotations

import concurrent.futures as cf
import errno
import os
import socket
import ssl
import threading
from typing import TYPE_CHECKING, Any, Protocol

from ..core import Future, TimerHandle, handler
from ._address import host_port, is_ip_literal, link_names, set_nodelay, sockaddr
from ._checks import host as check_host
from ._checks import optional_seconds
from ._checks import port as check_port
from ._connection import Connection
from ._errors import ConnectTimeout, NotConnected
from ._events import connected, disconnected, drained, error, read, ready, unreachable
from ._limits import ConnectionLimits
from ._poller import SocketComponent
from ._tls import client_context
from ._waiters import AllClosed

if TYPE_CHECKING:
    from ..core import Loop

__all__ = ["Client", "Dial", "TCP6Client", "TCPClient", "UNIXClient"]

_resolver: cf.ThreadPoolExecutor | None = None
_resolver_lock = threading.Lock()


def _resolve_pool() -> cf.ThreadPoolExecutor:
    global _resolver
    with _resolver_lock:
        if _resolver is None:
            _resolver = cf.ThreadPoolExecutor(4, thread_name_prefix="netcomp-resolve")
        return _resolver


#: circuits' TLS keywords of ``connect``: files a verifying client context loads.
_TLS_FILES = ("ca_certs", "certfile", "keyfile")


def _connect_options(
    secure: bool | None, options: dict[str, Any]
) -> tuple[bool | None, dict[str, str]]:
    """``secure`` from a ``connect`` event (circuits' spelling ``ssl=`` is an alias) and the
    TLS files circuits' ``connect`` takes (``ca_certs``, ``certfile``, ``keyfile``; ``None``
    means not given).

    Any other keyword is refused (``TypeError``): an option we do not know could be one
    the caller relies on for security, and ignoring it must never be silent.
    """
    alias = options.pop("ssl", None)
    files = {name: options.pop(name) for name in _TLS_FILES if name in options}
    files = {name: path for name, path in files.items() if path is not None}
    if options:
        names = ", ".join(sorted(options))
        raise TypeError(f"connect got unexpected keyword argument(s): {names}")
    if alias is not None:
        if secure is not None and bool(secure) != bool(alias):
            raise TypeError(f"connect got secure={secure!r} and ssl={alias!r}: give one of them")
        secure = bool(alias)
    if files and not secure:
        names = ", ".join(sorted(files))
        raise TypeError(f"connect got {names} without secure=True: TLS files need TLS")
    return secure, files


class DialOwner(Protocol):
    """What a :class:`Dial` reports to: exactly one of these, once (unless cancelled)."""

    def _dial_up(self, dial: Dial, conn: Connection) -> None: ...
    def _dial_failed(self, dial: Dial, reason: BaseException) -> None: ...


class Dial:
    """One connect attempt: resolve (off the loop), connect, TLS handshake, within ``timeout``.

    While it runs, the dial owns the :class:`Connection` (writes given to ``conn`` are kept
    and sent once it is up). Its owner hears exactly one outcome: ``_dial_up(dial, conn)``,
    from which on the connection reports to the owner itself, or ``_dial_failed(dial,
    reason)``. ``cancel()`` abandons the attempt and reports nothing. ``family``
    ``AF_UNSPEC`` means "whatever the address is" (a literal's family, or the resolver's
    first answer).
    """

    __slots__ = (
        "_timer",
        "address",
        "conn",
        "context",
        "done",
        "family",
        "host",
        "limits",
        "loop",
        "nodelay",
        "owner",
        "port",
        "server_hostname",
        "timeout",
    )

    def __init__(
        self,
        owner: DialOwner,
        family: socket.AddressFamily,
        host: Any,
        port: Any,
        limits: ConnectionLimits,
        timeout: float | None,
        context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        nodelay: bool = True,
    ) -> None:
        self.owner = owner
        self.family = family
        self.host = host
        self.port = port
        self.limits = limits
        self.timeout = timeout
        self.context = context  # TLS when given
        self.server_hostname = server_hostname
        self.nodelay = nodelay
        self.address: Any = None
        self.conn: Connection | None = None
        self.loop: Loop | None = None
        self.done = False
        self._timer: TimerHandle | None = None

    def start(self, loop: Loop) -> None:
        """Begin the attempt on ``loop`` (the outcome may be reported at once)."""
        self.loop = loop
        if self.timeout is not None:
            self._timer = loop.call_later(self.timeout, self._expired)
        host, port = self.host, self.port
        if self.family == socket.AF_UNIX:
            self._open(socket.AF_UNIX, host)
            return
        if is_ip_literal(str(host)):
            family = self.family
            if family == socket.AF_UNSPEC:
                family = socket.AF_INET6 if ":" in str(host) else socket.AF_INET
            self._open(family, sockaddr(host, port, family))
            return

        def lookup() -> None:
            try:
                infos = socket.getaddrinfo(host, port, self.family, socket.SOCK_STREAM)
                family, address = infos[0][0], infos[0][4]
            except Exception as err:  # gaierror, or UnicodeError for a name IDNA refuses
                loop.call_soon_threadsafe(self._resolved, None, None, err)
            else:
                loop.call_soon_threadsafe(self._resolved, family, address, None)

        _resolve_pool().submit(lookup)

    def cancel(self) -> None:
        """Abandon the attempt: its socket is closed and nothing is reported."""
        if self.done:
            return
        self._end()
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.abort()

    def attach(self, loop: Loop) -> None:
        """The owner moved to another loop: the connecting socket follows it."""
        self.loop = loop
        if self.conn is not None:
            self.conn.attach(loop)

    def _end(self) -> None:
        self.done = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fail(self, reason: BaseException) -> None:
        if self.done:
            return
        self._end()
        self.conn = None
        self.owner._dial_failed(self, reason)

    def _expired(self) -> None:
        self._timer = None
        if self.done:
            return
        self.cancel()  # ends first: the aborted connection's report is then ignored
        self.owner._dial_failed(self, ConnectTimeout("connect timed out"))

    def _resolved(self, family: Any, address: Any, err: Exception | None) -> None:
        if self.done:
            return  # cancelled or timed out meanwhile
        if err is not None:
            self._fail(err)
            return
        self._open(family, address)

    def _open(self, family: socket.AddressFamily, address: Any) -> None:
        self.address = address
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        if self.nodelay:
            set_nodelay(sock, family)
        try:
            code = sock.connect_ex(address)
        except OSError as err:  # e.g. a malformed address
            sock.close()
            self._fail(err)
            return
        if code not in (0, errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
            sock.close()
            self._fail(OSError(code, os.strerror(code)))
            return
        conn = Connection(self, sock, (self.host, self.port), self.limits, connecting=True)
        self.conn = conn
        assert self.loop is not None
        conn.attach(self.loop)
        if self.context is not None:  # the handshake starts once TCP is up
            hostname = self.server_hostname
            if hostname is None and family != socket.AF_UNIX:
                hostname = str(self.host)
            conn.start_tls(self.context, False, hostname)

    # The connection reports here until it is up (Connection's owner protocol).
    def connection_made(self, conn: Connection) -> None:
        """The link is up (TCP connected and any TLS handshake done): hand it over."""
        if self.done:
            conn.abort()
            return
        self._end()
        self.conn = None
        conn.owner = self.owner  # type: ignore[assignment]
        self.owner._dial_up(self, conn)

    def connection_lost(self, conn: Connection, err: BaseException | None) -> None:
        if conn is self.conn:
            self._fail(err or ConnectionError("connection closed"))

    def data_received(self, conn: Connection, data: bytes) -> None:
        """Not before it is up."""

    def eof_received(self, conn: Connection) -> None:
        conn.abort()

    def connection_drained(self, conn: Connection) -> None:
        """Not before it is up."""

    def __repr__(self) -> str:
        state = "done" if self.done else "connecting" if self.conn else "resolving"
        return f"<Dial {self.host!r}:{self.port!r} {state}>"


class Client(SocketComponent):
    """Base of stream clients; use :class:`TCPClient`, :class:`TCP6Client`, :class:`UNIXClient`."""

    channel = "client"
    family: socket.AddressFamily = socket.AF_INET

    def __init__(
        self,
        host: str | socket.socket | None = None,
        port: int | None = None,
        secure: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        connect_timeout: float | None = 10.0,
        nodelay: bool = True,
        high_water: int = 1024 * 1024,
        low_water: int = 256 * 1024,
        handshake_timeout: float = 30.0,
        channel: Any = "client",
        sock: socket.socket | None = None,
    ) -> None:
        """``host``/``port``: where a ``connect`` event fired without them connects; each
        ``connect`` sets them to its destination (circuits' ``client.host``/``port``).

        ``sock``: adopt this connected stream socket (one end of a ``socketpair``, an
        inherited descriptor): the client is connected from the start (``connected`` fires
        after ``ready``; with ``secure``, once the TLS handshake is done). A socket given as
        the first argument (circuits' form) is taken as ``sock``.
        """
        super().__init__(channel=channel)
        if isinstance(host, socket.socket) and sock is None:
            host, sock = None, host
        self.host = check_host(type(self).__name__, host)
        self.port = port if port is None else check_port(port)
        self.secure = secure
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.connect_timeout = optional_seconds("connect_timeout", connect_timeout)
        self.nodelay = nodelay
        self.limits = ConnectionLimits(
            high_water, low_water, handshake_timeout, pause_reading=False
        )
        self._conn: Connection | None = None  # the link, once up
        self._dial: Dial | None = None  # the connect in progress
        self._target: tuple[Any, Any] | None = None
        self._names: tuple[Any, Any] = (None, None)  # (peername, sockname) while up
        self._up = False
        self._all_closed = AllClosed()
        self._upgrading = False  # up, and redoing a handshake (starttls)
        self._held = False  # paused by ``pause()``: the link does not read
        self.fire(ready(self))
        if sock is not None:
            self._adopt(sock)

    def _adopt(self, sock: socket.socket) -> None:
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"{type(self).__name__} needs a stream socket, not {sock!r}")
        try:
            peer = sock.getpeername()
        except OSError as err:
            raise ValueError(
                f"{type(self).__name__}(sock=) adopts a connected socket; {sock!r} is not"
            ) from err
        self.family = sock.family
        sock.setblocking(False)
        if self.nodelay:
            set_nodelay(sock, sock.family)
        host, port = (peer, None) if sock.family == socket.AF_UNIX else host_port(peer)
        conn = Connection(self, sock, (host, port), self.limits)
        self._conn = conn
        self._target = (host, port)
        conn.attach(self.loop)
        if self.secure:  # the link is up once the handshake is done
            hostname = self.server_hostname
            if hostname is None and sock.family != socket.AF_UNIX:
                hostname = str(host)
            conn.start_tls(client_context(self.ssl_context), False, hostname)
        else:
            conn.start(None)

    @property
    def connected(self) -> bool:
        """Whether the link is up (TCP connected and, with TLS, handshake done)."""
        return self._up

    @property
    def buffered(self) -> int:
        """Bytes written and not yet taken by the kernel (0 when not connected)."""
        conn = self._conn
        return conn.buffered if conn is not None else 0

    @property
    def congested(self) -> bool:
        """Whether output is above ``high_water`` (``drained()`` fires when it falls to
        ``low_water``): a producer, or a :func:`~netcomp.pipeline`, waits for it."""
        conn = self._conn
        return conn is not None and conn.congested

    @property
    def peername(self) -> Any:
        """The peer's address while connected (``(host, port)``, IPv6 too; a UNIX
        path), as ``socket.getpeername`` says; else None."""
        return self._names[0] if self._up else None

    @property
    def sockname(self) -> Any:
        """The local address of the link while connected, else None."""
        return self._names[1] if self._up else None

    @property
    def destination(self) -> tuple[Any, Any] | None:
        """The ``(host, port)`` connected to, as it was asked for, while connected."""
        return self._target if self._up else None

    def _rearm(self) -> None:
        if self._conn is not None:
            self._conn.attach(self.loop)
        if self._dial is not None:
            self._dial.attach(self.loop)

    # ------------------------------------------------------------ connect
    @handler("connect")
    def _on_connect(
        self, host: Any = None, port: Any = None, secure: bool | None = None, **options: Any
    ) -> None:
        # Checked first, even when a connect is in progress: a security option that is
        # silently dropped would connect in plaintext.
        secure, files = _connect_options(secure, options)
        if self._conn is not None or self._dial is not None:
            return  # connected or connecting: a second connect is a no-op
        host = host if host is not None else self.host
        port = port if port is not None else self.port
        if secure is not None:
            self.secure = secure
        if host is None:
            raise ValueError(f"{self!r}: connect needs a host (or a UNIX path)")
        self.host, self.port = host, port
        self._target = (host, port)
        dial = Dial(
            self,
            self.family,
            host,
            port,
            self.limits,
            self.connect_timeout,
            client_context(self.ssl_context, **files) if self.secure else None,
            self.server_hostname,
            self.nodelay,
        )
        self._dial = dial
        dial.start(self.loop)

    def _dial_up(self, dial: Dial, conn: Connection) -> None:
        self._dial = None
        self._conn = conn
        if self._held:
            conn.hold(True)
        self.connection_made(conn)

    def _dial_failed(self, dial: Dial, reason: BaseException) -> None:
        """``unreachable(host, port, reason)``, then ``error(reason)`` (circuits' pair: a
        program may take either; logged once if neither is handled), then
        ``disconnected()``."""
        self._dial = None
        self._target = None
        failed = unreachable(dial.host, dial.port, reason)
        failed.paired = True  # the error that follows reports the pair
        self.fire(failed)
        report = error(reason)
        report.follows = failed
        self.fire(report)
        self.fire(disconnected())  # the one final event: this client is done

    # ------------------------------------------------------ connection events
    @handler(False)
    def connection_made(self, conn: Connection) -> None:
        """Hook: the link is up (after its TLS handshake); fires ``connected``."""
        self._up = True
        self._upgrading = False
        self._names = link_names(conn.sock)
        host, port = conn.peer
        event = connected(host, port)
        event.peername, event.sockname = self._names
        event.destination = (host, port)
        self.fire(event)

    @handler(False)
    def data_received(self, conn: Connection, data: bytes) -> None:
        """Hook: ``data`` arrived; fires ``read`` (bytes returned go back)."""
        conn.track_read(self.fire(read(data)))

    @handler(False)
    def eof_received(self, conn: Connection) -> None:
        """Hook: the server will send no more; the link closes once reads are done."""
        conn.after_reads(conn.close)

    @handler(False)
    def connection_drained(self, conn: Connection) -> None:
        """Hook: output fell to low water; fires ``drained``."""
        self.fire(drained())

    @handler(False)
    def connection_lost(self, conn: Connection, err: BaseException | None) -> None:
        """Hook: the link is gone (``err``: why); fires ``error``/``disconnected``."""
        if conn is not self._conn:
            return
        self._conn = None
        self._up = self._upgrading = False
        self._target = None
        self._all_closed.done()
        if err is not None:
            self.fire(error(err))
        self.fire(disconnected())

    # ------------------------------------------------------------ handlers
    @handler("write")
    def _on_write(self, data: bytes) -> None:
        conn = self._conn
        if conn is None and self._dial is not None:
            conn = self._dial.conn  # connecting: kept and sent once up
        if conn is None or not conn.write(data):
            self.fire(error(NotConnected(f"{self!r}: write while not connected")))

    @handler("disconnect")
    def _on_disconnect(self, *args: Any) -> None:
        # ``disconnect()`` asks the client to close (circuits' spelling); with arguments
        # it is a server's notification on a shared channel, not addressed to a client.
        if not args:
            self._on_close()

    @handler("close")
    def _on_close(self) -> None:
        dial = self._dial
        if dial is not None:  # cancel a connect in progress
            self._dial = None
            self._target = None
            dial.cancel()
            self.fire(disconnected())
            return
        if self._conn is not None:
            self._conn.close()

    @handler("pause")
    def _on_pause(self) -> None:
        # A pipeline's backpressure (the client is its source): stop reading; TCP flow
        # control then holds the server. ``resume()`` reads again.
        self._held = True
        if self._conn is not None:
            self._conn.hold(True)

    @handler("resume")
    def _on_resume(self) -> None:
        self._held = False
        if self._conn is not None:
            self._conn.hold(False)

    @handler("starttls")
    def _on_starttls(self) -> None:
        conn = self._conn
        if conn is None or not self._up:
            self.fire(error(NotConnected(f"{self!r}: starttls while not connected")))
            return
        self._up = False  # connected fires again once the handshake is done
        self._upgrading = True  # a failed handshake is error + disconnected, not unreachable
        self.secure = True
        hostname = self.server_hostname
        if hostname is None and self.family != socket.AF_UNIX:
            hostname = str(conn.peer[0])
        conn.start_tls(client_context(self.ssl_context), False, hostname)

    @handler("stopped", channel="*")
    def _on_stopped(self, manager: Any) -> Future | None:
        self._on_close()
        # The loop waits (up to Manager.stop_timeout) for the connection to close cleanly.
        return self._all_closed.wait(self._conn is not None)

    def loop_ended(self) -> None:
        """The loop is gone: cancel the connect, cut the link."""
        if self._dial is not None:
            self._dial.cancel()
            self._dial = None
        if self._conn is not None:
            self._conn.abort()

    def __repr__(self) -> str:
        state = "connected" if self._up else "connecting" if self._dial or self._conn else "idle"
        return f"<{type(self).__name__}/{self.channel} {self._target!r} {state}>"


class TCPClient(Client):
    """A TCP client over IPv4 (names resolve to IPv4 addresses)."""

    family = socket.AF_INET


class TCP6Client(Client):
    """A TCP client over IPv6."""

    family = socket.AF_INET6


class UNIXClient(Client):
    """A stream client for a UNIX socket path: ``connect(path)``."""

    family = socket.AF_UNIX
