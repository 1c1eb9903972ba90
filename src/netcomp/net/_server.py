"""Stream servers: TCP (IPv4, IPv6) and UNIX, plain or TLS, on the tree's one selector.

Rules:
* Each readiness of the listening socket accepts at most ``max_accepts`` connections, so a
  flood of connects never starves established ones.
* Out of descriptors (EMFILE/ENFILE/ENOBUFS/ENOMEM): stop watching the listening socket for
  ``accept_backoff`` seconds (no spinning on a readiness we cannot serve), report the
  error once, keep serving open connections, then accept again.
* ``connect(sock, host, port)`` fires once a connection is usable (after the TLS handshake);
  a connection that fails its handshake fires ``error(sock, err)`` only; one that was up
  (a failed STARTTLS included) ends with ``disconnect(sock)``.
* A ``read`` handler's bytes result is written back to that connection. After the peer's
  EOF the connection is closed once the last ``read`` is done and the output has drained.
* In a worker process of a Supervisor the listening socket is the supervisor's (see
  :mod:`._listeners`): the server does not bind it, and leaves its UNIX path alone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import ssl
from typing import Any

from ..core import Future, TimerHandle, handler
from ._address import SocketOptions, apply_options, bound_socket, host_port, set_nodelay
from ._address import socket_options as check_options
from ._checks import count, seconds
from ._connection import READ, Connection
from ._errors import NotConnected
from ._events import closed, connect, disconnect, drained, error, read, ready
from ._limits import ConnectionLimits
from ._listeners import supervised_listener
from ._poller import SocketComponent
from ._tls import server_context
from ._waiters import AllClosed

__all__ = ["Server", "TCP6Server", "TCPServer", "UNIXServer"]

_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class Server(SocketComponent):
    """Base of stream servers; use :class:`TCPServer`, :class:`TCP6Server`, :class:`UNIXServer`."""

    channel = "server"
    family: socket.AddressFamily = socket.AF_INET

    def __init__(
        self,
        bind: Any = None,
        secure: bool | None = None,
        ssl_context: ssl.SSLContext | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        backlog: int = 1024,
        reuse_port: bool = False,
        nodelay: bool = True,
        high_water: int = 1024 * 1024,
        low_water: int = 256 * 1024,
        handshake_timeout: float = 30.0,
        max_accepts: int = 64,
        accept_backoff: float = 0.1,
        sock: socket.socket | None = None,
        channel: Any = "server",
        socket_options: SocketOptions = (),
    ) -> None:
        """Bind (or adopt ``sock``) and listen at once, so errors surface here.

        ``secure``: TLS from the first byte; by default, whenever ``ssl_context`` or
        ``certfile`` is given. ``secure=False`` with a context serves plaintext and keeps the
        context for ``starttls(sock)``. ``socket_options``: ``(level, option, value)``
        triples set on the listening socket before it binds (on ``sock`` when adopted).
        A socket given as ``bind`` (circuits' form) is adopted as ``sock``.
        """
        super().__init__(channel=channel)
        if isinstance(bind, socket.socket) and sock is None:
            bind, sock = None, bind
        has_tls = ssl_context is not None or certfile is not None
        self.secure = has_tls if secure is None else bool(secure)
        self.ssl_context = (
            server_context(ssl_context, certfile, keyfile) if self.secure or has_tls else None
        )
        self.nodelay = nodelay
        self.limits = ConnectionLimits(high_water, low_water, handshake_timeout)
        self.max_accepts = count("max_accepts", max_accepts, 1)
        self.accept_backoff = seconds("accept_backoff", accept_backoff)
        count("backlog", backlog)
        options = check_options(socket_options)
        self._connections: dict[socket.socket, Connection] = {}
        self._accept_timer: TimerHandle | None = None
        self._starved = False  # out of descriptors, error already reported
        self._all_closed = AllClosed()
        self._listening = True
        self._supervised = False  # the socket is a supervisor's (it owns a UNIX path)
        if sock is None:
            sock = self._make_socket(bind, backlog, reuse_port, options)
        else:
            self.family = sock.family
            apply_options(sock, options)
            sock.listen(backlog)  # a bound socket may not listen yet (again is harmless)
        sock.setblocking(False)
        self.socket = sock
        #: The bound address: ``(host, port)`` (IPv6 too), or the UNIX path.
        self.bind = host_port(sock.getsockname())
        self._listener = self.loop.watch(sock, 0, self._on_acceptable)
        self._watch()
        self.fire(ready(self, self.bind))

    def _make_socket(
        self, bind: Any, backlog: int, reuse_port: bool, options: SocketOptions
    ) -> socket.socket:
        shared = supervised_listener(bind, self.family, backlog, options)
        if shared is not None:  # a worker process: the supervisor's socket, already listening
            self._supervised = True
            return shared
        sock = bound_socket(bind, self.family, socket.SOCK_STREAM, reuse_port, options)
        try:
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        return sock

    # ---------------------------------------------------------- selector
    def _watch(self) -> None:
        """Accept while listening, unless paused for want of descriptors."""
        accepting = self._listening and self._accept_timer is None
        self._listener.modify(READ if accepting else 0)

    def _rearm(self) -> None:
        self._listener.move(self.loop)
        for conn in list(self._connections.values()):
            conn.attach(self.loop)

    # ------------------------------------------------------------ accept
    def _on_acceptable(self, mask: int) -> None:
        listener = self.socket
        for _ in range(self.max_accepts):
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:
                if err.errno in _OUT_OF_RESOURCES:
                    self._pause_accepting(err)
                    return
                if err.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):
                    continue
                self.fire(error(None, err))
                return
            self._accepted(sock, address)

    def _pause_accepting(self, err: OSError) -> None:
        self._listener.modify(0)
        if not self._starved:  # once per shortage, not once per retry
            self._starved = True
            self.fire(error(None, err))

        def resume() -> None:
            self._accept_timer = None
            self._watch()

        self._accept_timer = self.loop.call_later(self.accept_backoff, resume)

    def _accepted(self, sock: socket.socket, address: Any) -> None:
        self._starved = False
        sock.setblocking(False)
        if self.nodelay:
            set_nodelay(sock, self.family)
        conn = Connection(self, sock, address, self.limits)
        self._connections[sock] = conn
        conn.attach(self.loop)
        conn.start(self.ssl_context if self.secure else None)

    # ------------------------------------------------------ connection events
    @handler(False)
    def connection_made(self, conn: Connection) -> None:
        """Hook: ``conn`` is up (after its TLS handshake); fires ``connect``."""
        peer = conn.peer
        if isinstance(peer, tuple):
            host, port = peer[0], peer[1]
        else:
            host, port = peer or "", None
        self.fire(connect(conn.sock, host, port))

    @handler(False)
    def data_received(self, conn: Connection, data: bytes) -> None:
        """Hook: ``data`` arrived on ``conn``; fires ``read`` (bytes returned go back)."""
        conn.track_read(self.fire(read(conn.sock, data)))

    @handler(False)
    def eof_received(self, conn: Connection) -> None:
        """Hook: the peer of ``conn`` will send no more; it closes once reads are done."""
        conn.after_reads(conn.close)

    @handler(False)
    def connection_drained(self, conn: Connection) -> None:
        """Hook: ``conn``'s output fell to low water; fires ``drained``."""
        self.fire(drained(conn.sock))

    @handler(False)
    def connection_lost(self, conn: Connection, err: BaseException | None) -> None:
        """Hook: ``conn`` is gone (``err``: why); fires ``error``/``disconnect``.

        A subclass that overrides it calls ``super()`` to keep the bookkeeping.
        """
        self._connections.pop(conn.sock, None)
        was_up = conn.established  # a failed first handshake was never up
        if err is not None:
            report = error(conn.sock, err)
            report.peer = conn.peer  # the socket is closed now: keep who it was
            self.fire(report)
        if was_up:
            self.fire(disconnect(conn.sock))
        if not self._connections:
            self._all_closed.done()

    # ------------------------------------------------------------ handlers
    @handler("write")
    def _on_write(self, sock: socket.socket, data: bytes) -> None:
        conn = self._connections.get(sock)
        if conn is None or not conn.write(data):
            self.fire(error(sock, NotConnected(f"write to a closed connection {sock!r}")))

    @handler("close")
    def _on_close(self, sock: socket.socket | None = None) -> None:
        if sock is not None:
            conn = self._connections.get(sock)
            if conn is not None:
                conn.close()
            return
        self.shutdown()

    @handler("starttls")
    def _on_starttls(self, sock: socket.socket) -> None:
        conn = self._connections.get(sock)
        if conn is None:
            self.fire(error(sock, NotConnected(f"starttls on a closed connection {sock!r}")))
            return
        if self.ssl_context is None:
            raise ValueError("starttls needs the server to have ssl_context= or certfile=")
        conn.start_tls(self.ssl_context, server_side=True)  # a failure: error + disconnect

    @handler("stopped", channel="*")
    def _on_stopped(self, manager: Any) -> Future | None:
        self.shutdown()
        # The loop waits (up to Manager.stop_timeout) for the connections to close cleanly.
        return self._all_closed.wait(bool(self._connections))

    def loop_ended(self) -> None:
        """The loop is gone: cut the connections still open."""
        for conn in list(self._connections.values()):
            conn.abort()

    @handler(False)
    def shutdown(self) -> None:
        """Stop listening, close every connection (after its output drains), fire ``closed``."""
        if not self._listening:
            return
        self._listening = False
        if self._accept_timer is not None:
            self._accept_timer.cancel()
            self._accept_timer = None
        self._listener.cancel()
        self.socket.close()
        if (
            self.family == socket.AF_UNIX
            and isinstance(self.bind, str)
            and self.bind
            and not self._supervised
        ):
            with contextlib.suppress(OSError):
                os.unlink(self.bind)
        for conn in list(self._connections.values()):
            self.shutdown_connection(conn)
        self.fire(closed())

    @handler(False)
    def shutdown_connection(self, conn: Connection) -> None:
        """Hook: how :meth:`shutdown` ends one connection (a subclass may let it finish
        its work first)."""
        conn.close()

    @property
    def connections(self) -> list[socket.socket]:
        """The handles of the open connections."""
        return list(self._connections)

    @handler(False)
    def connection(self, sock: socket.socket) -> Connection | None:
        """The open :class:`Connection` of ``sock`` (its ``peer``, ``state``, bytes
        ``received`` and ``sent``, ...), or ``None``. Read-only: write with events."""
        return self._connections.get(sock)

    @handler(False)
    def buffered(self, sock: socket.socket) -> int:
        """Bytes buffered for ``sock`` and not yet sent."""
        conn = self._connections.get(sock)
        return conn.buffered if conn is not None else 0

    @property
    def host(self) -> str:
        """The bound host (or UNIX path)."""
        return self.bind[0] if isinstance(self.bind, tuple) else self.bind  # type: ignore[no-any-return]

    @property
    def _sock(self) -> socket.socket:
        """The listening socket under circuits' name (``server._sock``), which circuits
        programs read; netcomp's own name is :attr:`socket`."""
        return self.socket

    @property
    def port(self) -> int | None:
        """The bound port (the real one when bound to port 0)."""
        return self.bind[1] if isinstance(self.bind, tuple) else None

    def __repr__(self) -> str:
        tls = " tls" if self.secure else ""
        return (
            f"<{type(self).__name__}/{self.channel} {self.bind!r}{tls} "
            f"connections={len(self._connections)}>"
        )


class TCPServer(Server):
    """A TCP server on IPv4. ``bind``: a port (127.0.0.1), ``(host, port)``, ``"host:port"``."""

    family = socket.AF_INET


class TCP6Server(Server):
    """A TCP server on IPv6. ``bind``: a port (::1), ``(host, port)``, ``"[host]:port"``."""

    family = socket.AF_INET6


class UNIXServer(Server):
    """A stream server on a UNIX socket path (a stale socket file is replaced)."""

    family = socket.AF_UNIX
