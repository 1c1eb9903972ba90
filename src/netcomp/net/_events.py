"""The net layer's vocabulary (docs/architecture.md, "Events"), with circuits' argument shapes.

Client side: ``connect(host, port, secure=False)`` in; ``connected(host, port)``,
``disconnected()``, ``read(data)``, ``unreachable(host, port, reason)`` then
``error(reason)`` (a failed connect), ``error(err)``, ``drained()``, ``closed()`` out;
``write(data)``, ``close()`` (or ``disconnect()``), ``starttls()``, ``pause()`` and
``resume()`` (stop/resume reading: a pipeline's backpressure) in.
Server side: ``ready(component, bind)`` (``bind``: ``(host, port)``, IPv6 too, or a path),
``connect(sock, host, port)``, ``disconnect(sock)``, ``read(sock, data)``,
``error(sock, err)``, ``drained(sock)``, ``closed()`` out; ``write(sock, data)``,
``close(sock=None)``, ``starttls(sock)`` in.
UDP: ``read(address, data)``, ``disconnect(sock)`` and ``closed()`` (once closed) out,
``write(address, data)`` and ``broadcast(data, port)`` in.
"""

from __future__ import annotations

import logging
import socket
import ssl
from typing import Any

from ..core import Event

__all__ = [
    "broadcast",
    "close",
    "closed",
    "connect",
    "connected",
    "disconnect",
    "disconnected",
    "drained",
    "error",
    "read",
    "ready",
    "starttls",
    "unreachable",
    "write",
]


class connect(Event):
    """In (client): ``connect(host, port, secure=None)``; ``ssl=`` (circuits' spelling) is
    an alias of ``secure=``; with TLS, circuits' ``ca_certs=``, ``certfile=`` and
    ``keyfile=`` make a verifying context with those files. Any other keyword is refused
    with ``TypeError`` (and those three without TLS).

    Out (server): ``connect(sock, host, port)``.
    """

    notification = True


class connected(Event):
    """Out (client): ``connected(host, port)``: the connection is up (TLS handshake done).

    ``host``/``port`` are the destination that was asked for (circuits' shape, so
    ``connected(self, host, port)`` handlers work). The addresses of the link ride on the
    event as attributes (a handler whose first parameter is ``event`` reads them):
    ``peername`` and ``sockname`` (``(host, port)``, as the socket's ``getpeername`` /
    ``getsockname`` say) and ``destination`` (the ``(host, port)`` in use). The client
    has the same three as read-only properties while connected.
    """

    notification = True
    #: The peer's address, ``(host, port)`` (IPv6 too), or a UNIX path.
    peername: Any = None
    #: The local address of the link.
    sockname: Any = None
    #: The destination in use, as it was asked for: ``(host, port)`` (a name stays a name).
    destination: Any = None


class disconnect(Event):
    """Out (server): ``disconnect(sock)``: that connection is gone (UDP: the socket is
    closed). In (client): ``disconnect()``: close, as ``close()`` does."""

    notification = True


class disconnected(Event):
    """Out (client): ``disconnected()``: the connection is gone, or was never made: a TCP
    or threaded client's failed connect (``unreachable``, ``error``) ends with it too, so
    one handler hears that the client is done, whatever happened."""

    notification = True


class read(Event):
    """Out: ``read(data)`` (client), ``read(sock, data)`` (server), ``read(address, data)``."""


class write(Event):
    """In: ``write(data)`` (client), ``write(sock, data)`` (server), ``write(address, data)``."""


class close(Event):
    """In: ``close()`` (client), ``close(sock=None)`` (server: one connection, or the server)."""


class closed(Event):
    """Out: ``closed()``: the client or the listening server is closed."""

    notification = True


class ready(Event):
    """Out: ``ready(component)`` (client), ``ready(component, bind)`` (server: real address)."""

    notification = True


class unreachable(Event):
    """Out (client): ``unreachable(host, port, reason)``: the connect failed (``reason``).

    :class:`Connex` adds the attempt number: ``unreachable(host, port, reason, attempt)``.
    When nothing handles it by name it is logged at WARNING on ``netcomp.net``; a client's
    is followed by ``error(reason)``, and the pair is logged once, if neither is handled.
    """

    #: An ``error`` with the same reason follows (a client's failed connect): that one
    #: reports the pair, so this one is not logged on its own.
    paired: bool = False

    @property
    def unhandled_logger(self) -> str | None:  # type: ignore[override]
        """``netcomp.net``, unless the ``error`` that follows reports the failure."""
        return None if self.paired else "netcomp.net"

    def describe(self, handlers: str = "'unreachable'") -> str:
        """``cannot connect to HOST:PORT on 'channel': REASON`` (and the attempt)."""
        host, port, reason = (*self.args, None, None, None)[:3]
        place = f"{host}:{port}" if port is not None else str(host)
        attempt = f" (attempt {self.args[3]})" if len(self.args) > 3 else ""
        return (
            f"cannot connect to {place}{attempt} on {_channels(self)}: {reason!r} "
            f"(nothing handles {handlers} there)"
        )


class error(Event):
    """Out: ``error(err)`` (client) or ``error(sock, err)`` (server, UDP: the address).

    When nothing handles it by name it is logged on ``netcomp.net``: at WARNING, or at INFO
    for what a server's peer did to its own connection (a reset, a TLS error). A client's
    failed connect fires ``unreachable(host, port, reason)`` then ``error(reason)`` (as
    circuits does): a program may take either, and the failure is logged once, here, only
    when neither is handled.
    """

    #: The peer's address, when the event is about a connection that is gone.
    peer: Any = None
    #: The ``unreachable`` this error follows (a client's failed connect, same reason).
    follows: unreachable | None = None

    @property
    def unhandled_logger(self) -> str | None:  # type: ignore[override]
        """``netcomp.net``, unless the ``unreachable`` it follows was handled."""
        first = self.follows
        if first is not None and (first.value is None or first.value.handled):
            return None  # the failure was taken as 'unreachable'
        return "netcomp.net"

    @property
    def unhandled_level(self) -> int:  # type: ignore[override]
        """INFO for a peer's doing on a server connection, WARNING for anything else."""
        *where, err = self.args or (None,)
        if (
            where
            and isinstance(where[0], socket.socket)
            and isinstance(err, (ConnectionError, ssl.SSLError))
        ):
            return logging.INFO
        return logging.WARNING

    def describe(self) -> str:
        """``error with PEER on 'channel': ERROR`` (a failed connect: what it was)."""
        if self.follows is not None:
            return self.follows.describe("'unreachable' or 'error'")
        *where, err = self.args or (None,)
        if self.peer is not None:
            place = f" with {_peer(self.peer)}"
        elif where and where[0] is not None:
            place = f" with {_peer(where[0])}"
        else:
            place = ""
        return f"error{place} on {_channels(self)}: {err!r} (nothing handles 'error' there)"


class starttls(Event):
    """In: ``starttls()`` (client) or ``starttls(sock)`` (server): upgrade to TLS in place."""


class drained(Event):
    """Out: ``drained()`` / ``drained(sock)``: output fell below the low water mark."""

    notification = True


class broadcast(Event):
    """In (UDP): ``broadcast(data, port)``."""


def _channels(event: Event) -> str:
    return ", ".join(repr(c) if isinstance(c, str) else type(c).__name__ for c in event.channels)


def _peer(where: Any) -> str:
    """A connection's peer (or a UDP address) as ``host:port``."""
    if isinstance(where, socket.socket):
        try:
            where = where.getpeername()
        except OSError:
            return "a closed connection"
    if isinstance(where, tuple) and len(where) >= 2:
        host = f"[{where[0]}]" if ":" in str(where[0]) else where[0]
        return f"{host}:{where[1]}"
    return repr(where)
