"""Stream clients: TCP (IPv4, IPv6) and UNIX, plain or TLS, on the tree's one selector.

Rules:
* ``connect`` never blocks the loop: numeric addresses connect at once; names are resolved
  on a helper thread and the answer comes back through the loop's thread-safe queue.
* A refused or unreachable destination fires ``unreachable(host, port, reason)`` as soon as
  the kernel says so; ``connect_timeout`` (seconds) bounds the TCP connect plus the TLS
  handshake. ``connected(host, port)`` fires once the link is usable.
* TLS clients verify the server's certificate and name by default.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import errno
import socket
import ssl
import threading
from typing import Any

from ..core import Future, TimerHandle, handler
from ._address import is_ip_literal
from ._connection import Connection, Limits
from ._events import connected, disconnected, drained, error, read, ready, unreachable
from ._poller import SocketComponent
from ._server import NotConnected
from ._tls import client_context

__all__ = ["Client", "TCP6Client", "TCPClient", "UNIXClient"]

_resolver: cf.ThreadPoolExecutor | None = None
_resolver_lock = threading.Lock()


def _resolve_pool() -> cf.ThreadPoolExecutor:
    global _resolver
    with _resolver_lock:
        if _resolver is None:
            _resolver = cf.ThreadPoolExecutor(4, thread_name_prefix="netcomp-resolve")
        return _resolver


class Client(SocketComponent):
    """Base of stream clients; use :class:`TCPClient`, :class:`TCP6Client`, :class:`UNIXClient`."""

    channel = "client"
    family: socket.AddressFamily = socket.AF_INET

    def init(
        self,
        host: str | None = None,
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
    ) -> None:
        """``host``/``port`` are defaults for a ``connect`` event fired without them."""
        self.channel = channel
        self.host = host
        self.port = port
        self.secure = secure
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.connect_timeout = connect_timeout
        self.nodelay = nodelay
        self.limits = Limits(high_water, low_water, handshake_timeout, pause_reading=False)
        self._conn: Connection | None = None
        self._target: tuple[Any, Any] | None = None
        self._timer: TimerHandle | None = None
        self._attempt = 0
        self._up = False
        self._closed_waiters: list[Future] = []
        self._upgrading = False  # up, and redoing a handshake (starttls)
        self.fire(ready(self))

    @property
    def connected(self) -> bool:
        """Whether the link is up (TCP connected and, with TLS, handshake done)."""
        return self._up

    def _rearm(self) -> None:
        if self._conn is not None:
            self._conn.attach(self.root)

    # ------------------------------------------------------------ connect
    @handler("connect")
    def _on_connect(
        self, host: Any = None, port: Any = None, secure: bool | None = None, **options: Any
    ) -> None:
        if self._conn is not None:
            return  # connected or connecting: a second connect is a no-op
        host = host if host is not None else self.host
        port = port if port is not None else self.port
        if secure is not None:
            self.secure = secure
        if host is None:
            raise ValueError(f"{self!r}: connect needs a host (or a UNIX path)")
        self._attempt += 1
        attempt = self._attempt
        self._target = (host, port)
        if self.family == socket.AF_UNIX or is_ip_literal(str(host)):
            self._open(host, port, (host if self.family == socket.AF_UNIX else (host, port)))
            return
        root = self.root

        def lookup() -> None:
            try:
                infos = socket.getaddrinfo(host, port, self.family, socket.SOCK_STREAM)
                address = infos[0][4]
            except OSError as err:
                root.call_soon_threadsafe(self._resolved, attempt, host, port, None, err)
            else:
                root.call_soon_threadsafe(self._resolved, attempt, host, port, address, None)

        self._arm_timeout(host, port)
        _resolve_pool().submit(lookup)

    def _resolved(
        self, attempt: int, host: Any, port: Any, address: Any, err: OSError | None
    ) -> None:
        if attempt != self._attempt or self._target != (host, port) or self._conn is not None:
            return  # superseded (closed, timed out or another connect)
        if err is not None:
            self._cancel_timeout()
            self._target = None
            self.fire(unreachable(host, port, err))
            return
        self._open(host, port, address)

    def _open(self, host: Any, port: Any, address: Any) -> None:
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        sock.setblocking(False)
        if self.nodelay and self.family != socket.AF_UNIX:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            code = sock.connect_ex(address)
        except OSError as err:  # e.g. a malformed address
            sock.close()
            self._cancel_timeout()
            self._target = None
            self.fire(unreachable(host, port, err))
            return
        if code not in (0, errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
            sock.close()
            self._cancel_timeout()
            self._target = None
            self.fire(unreachable(host, port, OSError(code, errno.errorcode.get(code, ""))))
            return
        conn = Connection(self, sock, (host, port), self.limits, connecting=True)
        self._conn = conn
        if self.secure:
            hostname = self.server_hostname
            if hostname is None and self.family != socket.AF_UNIX:
                hostname = str(host)
            conn.start_tls(client_context(self.ssl_context), False, hostname)
        conn.attach(self.root)
        if self._timer is None:
            self._arm_timeout(host, port)

    def _arm_timeout(self, host: Any, port: Any) -> None:
        if self.connect_timeout is None:
            return
        attempt = self._attempt

        def expired() -> None:
            self._timer = None
            if attempt != self._attempt or self._up:
                return
            conn, self._conn = self._conn, None
            self._target = None
            if conn is not None:
                conn.owner = _Discard()
                conn.abort()
            self.fire(unreachable(host, port, TimeoutError("connect timed out")))

        self._timer = self.root._call_later(self.connect_timeout, expired)

    def _cancel_timeout(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ------------------------------------------------------ connection events
    def _conn_up(self, conn: Connection) -> None:
        self._cancel_timeout()
        self._up = True
        self._upgrading = False
        host, port = conn.peer
        self.fire(connected(host, port))

    def _conn_data(self, conn: Connection, data: bytes) -> None:
        conn.track_read(self.fire(read(data)))

    def _conn_eof(self, conn: Connection) -> None:
        conn.after_reads(conn.close)

    def _conn_drained(self, conn: Connection) -> None:
        self.fire(drained())

    def _conn_down(self, conn: Connection, err: BaseException | None) -> None:
        if conn is not self._conn:
            return
        self._conn = None
        waiters, self._closed_waiters = self._closed_waiters, []
        for future in waiters:
            future.set_result(None)
        was_up, self._up = self._up or self._upgrading, False
        self._upgrading = False
        target, self._target = self._target, None
        if not was_up:
            self._cancel_timeout()
            host, port = target if target is not None else conn.peer
            self.fire(unreachable(host, port, err or ConnectionError("connection closed")))
            return
        if err is not None:
            self.fire(error(err))
        self.fire(disconnected())

    # ------------------------------------------------------------ handlers
    @handler("write")
    def _on_write(self, data: bytes) -> None:
        conn = self._conn
        if conn is None or not conn.write(data):
            self.fire(error(NotConnected(f"{self!r}: write while not connected")))

    @handler("close")
    def _on_close(self) -> None:
        conn = self._conn
        if conn is None:
            return
        if not self._up:  # cancel a connect in progress
            self._attempt += 1
            self._cancel_timeout()
            self._conn = None
            self._target = None
            conn.owner = _Discard()
            conn.abort()
            self.fire(disconnected())
            return
        conn.close()

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
        if self._conn is None:
            return None
        self._on_close()
        if self._conn is None:
            return None
        # The loop waits (up to Manager.stop_timeout) for the connection to close cleanly.
        future = Future()
        self._closed_waiters.append(future)
        return future

    def _loop_ended(self) -> None:
        if self._conn is not None:
            self._conn.abort()

    def __repr__(self) -> str:
        state = "connected" if self._up else "connecting" if self._conn else "idle"
        return f"<{type(self).__name__}/{self.channel} {self._target!r} {state}>"


class _Discard:
    """Owner for a connection that was abandoned (timed out, cancelled): hears nothing."""

    def _conn_up(self, conn: Connection) -> None:
        conn.abort()

    def _conn_data(self, conn: Connection, data: bytes) -> None:
        pass

    def _conn_eof(self, conn: Connection) -> None:
        conn.abort()

    def _conn_drained(self, conn: Connection) -> None:
        pass

    def _conn_down(self, conn: Connection, err: BaseException | None) -> None:
        pass


class TCPClient(Client):
    """A TCP client over IPv4 (names resolve to IPv4 addresses)."""

    family = socket.AF_INET


class TCP6Client(Client):
    """A TCP client over IPv6."""

    family = socket.AF_INET6


class UNIXClient(Client):
    """A stream client for a UNIX socket path: ``connect(path)``."""

    family = socket.AF_UNIX
