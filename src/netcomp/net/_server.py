"""Stream servers: TCP (IPv4, IPv6) and UNIX, plain or TLS, on the tree's one selector.

Rules:
* A server listens on one or more addresses (``bind`` may be a list): one
  :class:`~._listener.Listener` each (accepting, with its own backoff: see
  :mod:`._listener`), one channel, one set of connections, one ``ready(server, bind)``
  per address.
* ``allow=``/``deny=`` (networks, :mod:`._peers`): a refused peer is closed at accept,
  before any byte is read or written, counted in ``refused`` and logged at DEBUG on
  ``netcomp.net``. Without the lists, accept runs the code it ran before.
* ``connect(sock, host, port)`` fires once a connection is usable (after the TLS handshake);
  a connection that fails its handshake fires ``error(sock, err)`` only; one that was up
  (a failed STARTTLS included) ends with ``disconnect(sock)``.
* A ``read`` handler's bytes result is written back to that connection. After the peer's
  EOF the connection is closed once the last ``read`` is done and the output has drained.
* ``output_budget``: the output buffered over all connections together has a ceiling (an
  :class:`OutputBudget`, see ``_budget.py``). Over it, connections that buffer wait as if
  congested; if it is still over after ``output_grace`` seconds, congested connections
  are closed, the slowest readers first, until it is back under, and one WARNING on
  ``netcomp.net`` says how many.
* In a worker process of a Supervisor the listening socket is the supervisor's (see
  :mod:`._listeners`): the server does not bind it, and leaves its UNIX path alone.
"""

from __future__ import annotations

import logging
import socket
import ssl
from typing import Any

from ..core import Future, TimerHandle, handler
from ._address import (
    SocketOptions,
    address_family,
    apply_options,
    bound_socket,
    set_nodelay,
    set_notsent_lowat,
)
from ._address import socket_options as check_options
from ._budget import OutputBudget, shed
from ._checks import count, optional_count, seconds
from ._connection import Connection
from ._errors import NotConnected
from ._events import closed, connect, disconnect, drained, error, read, ready
from ._limits import ConnectionLimits
from ._listener import Listener
from ._listeners import supervised_listener
from ._peers import NetworkSpec, PeerFilter
from ._poller import SocketComponent
from ._tls import server_context
from ._waiters import AllClosed

__all__ = ["Server", "TCP6Server", "TCPServer", "UNIXServer"]

log = logging.getLogger("netcomp.net")


def _bind_list(bind: Any, sock: socket.socket | None) -> list[Any]:
    """The addresses to listen on: ``sock`` alone when given (``bind`` is then ignored,
    as it always was), else ``bind``: one form, or a list of forms and bound sockets."""
    if sock is not None:
        return [sock]
    if isinstance(bind, list):
        if not bind:
            raise ValueError("bind is an empty list: give at least one address")
        return list(bind)
    return [bind]


def _tls_options(
    secure: bool | None,
    ssl_context: ssl.SSLContext | None,
    certfile: str | None,
    keyfile: str | None,
) -> tuple[bool, ssl.SSLContext | None]:
    """Whether a server speaks TLS from the first byte, and its context (if it has one)."""
    has_tls = ssl_context is not None or certfile is not None
    on = has_tls if secure is None else bool(secure)
    return on, server_context(ssl_context, certfile, keyfile) if on or has_tls else None


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
        allow: NetworkSpec | None = None,
        deny: NetworkSpec | None = None,
        output_budget: int | None = None,
        output_grace: float = 10.0,
        notsent_lowat: int | None = None,
    ) -> None:
        """Bind (or adopt ``sock``) and listen at once, so errors surface here.

        ``bind``: one address, or a list of them (and of bound sockets) to listen on all
        (an IPv6 literal listens on IPv6 whatever the class). ``secure``: TLS from the first
        byte; by default, whenever ``ssl_context`` or ``certfile`` is given. ``secure=False``
        with a context keeps it for ``starttls(sock)``. ``socket_options``: ``(level,
        option, value)`` triples set on listening sockets before they bind. ``sock``: listen
        on this bound socket instead (``bind`` is ignored); a socket given as ``bind``
        (circuits' form) is adopted too. ``allow``/``deny``: networks whose peers are
        served/refused at accept (deny wins); see :attr:`refused`.
        ``output_budget``: bytes buffered over all connections at most (``None``: each one's
        ``high_water`` only); ``output_grace``: seconds over it before the slowest go.
        ``notsent_lowat``: bytes the kernel may hold unsent per TCP connection (Linux's
        ``TCP_NOTSENT_LOWAT``; ``None``: the system's setting, often unbounded).
        """
        super().__init__(channel=channel)
        self.secure, self.ssl_context = _tls_options(secure, ssl_context, certfile, keyfile)
        self.nodelay = nodelay
        self.notsent_lowat = optional_count("notsent_lowat", notsent_lowat, 1)
        self.output_grace = seconds("output_grace", output_grace)
        self.limits = self._connection_limits(
            high_water, low_water, handshake_timeout, output_budget
        )
        self._shed_timer: TimerHandle | None = None
        self.max_accepts = count("max_accepts", max_accepts, 1)
        self.accept_backoff = seconds("accept_backoff", accept_backoff)
        count("backlog", backlog)
        options = check_options(socket_options)
        #: The peer filter (``allow``/``deny``), or None: every peer is served.
        self.peer_filter = PeerFilter.make(allow, deny)
        #: Connections refused by ``allow``/``deny`` since the server started.
        self.refused = 0
        self._connections: dict[socket.socket, Connection] = {}
        self._all_closed = AllClosed()
        self._listening = True
        self._start_listening(_bind_list(bind, sock), backlog, reuse_port, options)

    def _start_listening(
        self, binds: list[Any], backlog: int, reuse_port: bool, options: SocketOptions
    ) -> None:
        """Open a listener per bind form and say ``ready`` for each."""
        self._listeners = self._open(binds, backlog, reuse_port, options)
        first = self._listeners[0]
        self.family = first.family
        self.socket = first.sock
        #: The (first) bound address: ``(host, port)`` (IPv6 too), or the UNIX path.
        self.bind = first.bind
        for listener in self._listeners:
            self.fire(ready(self, listener.bind))

    def _connection_limits(
        self, high_water: int, low_water: int, handshake_timeout: float, budget: int | None
    ) -> ConnectionLimits:
        shared = None
        if budget is not None:
            shared = OutputBudget(count("output_budget", budget, 1), self._budget_over)
        return ConnectionLimits(high_water, low_water, handshake_timeout, budget=shared)

    def _open(
        self, binds: list[Any], backlog: int, reuse_port: bool, options: SocketOptions
    ) -> list[Listener]:
        """A listener for each bind form (all or none: a failure closes those made)."""
        if self.peer_filter is not None and any(
            self.family_for(item) == socket.AF_UNIX for item in binds
        ):
            raise ValueError("allow=/deny= filter IP peers; a UNIX server has none")
        accept = self._accepted if self.peer_filter is None else self._accepted_filtered
        listeners: list[Listener] = []
        try:
            for item in binds:
                shared = None
                if not isinstance(item, socket.socket):
                    family = self.family_for(item)
                    shared = supervised_listener(item, family, backlog, options)
                if shared is not None:  # a worker process: the supervisor's listening socket
                    listeners.append(Listener(self, shared, self.loop, accept, owns_path=False))
                    continue
                listening = self._listen(item, backlog, reuse_port, options)
                listeners.append(Listener(self, listening, self.loop, accept))
        except BaseException:
            for listener in listeners:
                listener.close()
            raise
        return listeners

    @handler(False)
    def family_for(self, bind: Any) -> socket.AddressFamily:
        """The address family of one bind form (a subclass may know more forms)."""
        return address_family(bind, self.family)

    def _listen(
        self, bind: Any, backlog: int, reuse_port: bool, options: SocketOptions
    ) -> socket.socket:
        if isinstance(bind, socket.socket):
            apply_options(bind, options)
            bind.listen(backlog)  # a bound socket may not listen yet (again is harmless)
            return bind
        sock = bound_socket(bind, self.family_for(bind), socket.SOCK_STREAM, reuse_port, options)
        try:
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        return sock

    @property
    def binds(self) -> list[Any]:
        """Every bound address, in the order given (``bind`` is the first)."""
        return [listener.bind for listener in self._listeners]

    @property
    def sockets(self) -> list[socket.socket]:
        """Every listening socket, in the order given (``socket`` is the first)."""
        return [listener.sock for listener in self._listeners]

    def _rearm(self) -> None:
        for listener in self._listeners:
            listener.move(self.loop)
        for conn in list(self._connections.values()):
            conn.attach(self.loop)

    # ------------------------------------------------------------ accept
    @handler(False)
    def accept_failed(self, listener: Listener, err: OSError) -> None:
        """Hook: accepting on ``listener`` failed (out of descriptors: once per shortage)."""
        self.fire(error(None, err))

    def _accepted(self, sock: socket.socket, address: Any, listener: Listener) -> None:
        sock.setblocking(False)
        if self.nodelay:
            set_nodelay(sock, listener.family)
        if self.notsent_lowat is not None:
            set_notsent_lowat(sock, listener.family, self.notsent_lowat)
        conn = Connection(self, sock, address, self.limits)
        self._connections[sock] = conn
        conn.attach(self.loop)
        conn.start(self.ssl_context if self.secure else None)

    # ------------------------------------------------------------ budget
    def _budget_over(self) -> None:
        """The output budget went over: the grace period starts."""
        if self._shed_timer is None and self._listening:
            self._shed_timer = self.loop.call_later(self.output_grace, self._shed)

    def _shed(self) -> None:
        """The grace period is over: if the budget still is, close the slowest readers."""
        self._shed_timer = None
        budget = self.limits.budget
        if budget is None or budget.over_since is None or not self._listening:
            return
        left = budget.over_since + self.output_grace - self.loop.time()
        if left > 0:  # it went under and over again meanwhile: a grace period of its own
            self._shed_timer = self.loop.call_later(left, self._shed)
            return
        before = budget.total
        closed, congested = shed(budget, list(self._connections.values()))
        log.warning(
            "%r: output budget of %d bytes exceeded for %.1f s (%d buffered): closed %d of "
            "%d congested connections, the slowest readers first; %d bytes buffered now",
            self,
            budget.limit,
            self.output_grace,
            before,
            closed,
            congested,
            budget.total,
        )
        if budget.over_since is not None:  # still over (it could not get under): again
            self._shed_timer = self.loop.call_later(self.output_grace, self._shed)

    def _accepted_filtered(self, sock: socket.socket, address: Any, listener: Listener) -> None:
        assert self.peer_filter is not None
        if self.peer_filter.permits(address):
            self._accepted(sock, address, listener)
            return
        sock.close()  # before a byte is read or written
        self.refused += 1
        log.debug("%r refused a connection from %s (allow/deny)", self, _shown(address))

    # ------------------------------------------------------ connection events
    @property
    def _announce_on(self) -> tuple[Any, ...]:
        """Where ``connect``/``disconnect`` go: ``fire()``'s default, this channel."""
        return (self.channel,)

    @handler(False)
    def connection_made(self, conn: Connection) -> None:
        """Hook: ``conn`` is up (after its TLS handshake); fires ``connect`` (when anyone
        hears it: ``Loop.heard``)."""
        if not self.loop.heard(connect, self._announce_on):
            return
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
    def plaintext_answer(self, conn: Connection, greeting: bytes) -> bytes | None:
        """Hook: the peer of ``conn`` sent this TLS server ``greeting`` (its first bytes,
        at most 64), which is no TLS. Bytes returned are sent to it in clear before the
        connection closes (a protocol's "this port speaks TLS"); ``None``, the default:
        it closes at once and the failed handshake is reported as ``error``."""
        return None

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
        if was_up and self.loop.heard(disconnect, self._announce_on):
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
        """Stop listening, close every connection (after its output drains), fire ``closed``.

        Safe from any thread: from another one while the loop runs, it is done on the loop
        thread (the connections are the loop's: closing one from elsewhere raced the loop
        closing it too).
        """
        loop = self.loop
        if loop.running and not loop.on_loop_thread():
            loop.call_soon_threadsafe(self.shutdown)
            return
        if not self._listening:
            return
        self._listening = False
        if self._shed_timer is not None:
            self._shed_timer.cancel()
            self._shed_timer = None
        for listener in self._listeners:
            listener.close()
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


def _shown(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = f"[{address[0]}]" if ":" in str(address[0]) else address[0]
        return f"{host}:{address[1]}"
    return repr(address)


class TCPServer(Server):
    """A TCP server on IPv4. ``bind``: a port (127.0.0.1), ``(host, port)``, ``"host:port"``,
    or a list of those (an IPv6 literal among them listens on IPv6)."""

    family = socket.AF_INET


class TCP6Server(Server):
    """A TCP server on IPv6. ``bind``: a port (::1), ``(host, port)``, ``"[host]:port"``."""

    family = socket.AF_INET6


class UNIXServer(Server):
    """A stream server on a UNIX socket path (a stale socket file is replaced)."""

    family = socket.AF_UNIX
