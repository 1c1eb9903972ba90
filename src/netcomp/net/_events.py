"""The net layer's vocabulary (docs/architecture.md, "Events"), with circuits' argument shapes.

Client side: ``connect(host, port, secure=False)`` in; ``connected(host, port)``,
``disconnected()``, ``read(data)``, ``unreachable(host, port, reason)``, ``error(err)``,
``drained()``, ``closed()`` out; ``write(data)``, ``close()``, ``starttls()`` in.
Server side: ``ready(component, bind)``, ``connect(sock, host, port)``,
``disconnect(sock)``, ``read(sock, data)``, ``error(sock, err)``, ``drained(sock)``,
``closed()`` out; ``write(sock, data)``, ``close(sock=None)``, ``starttls(sock)`` in.
UDP: ``read(address, data)`` out, ``write(address, data)`` and ``broadcast(data, port)`` in.
"""

from __future__ import annotations

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
    an alias of ``secure=``, and any other keyword is refused with ``TypeError``.

    Out (server): ``connect(sock, host, port)``.
    """


class connected(Event):
    """Out (client): ``connected(host, port)``: the connection is up (TLS handshake done)."""


class disconnect(Event):
    """Out (server): ``disconnect(sock)``: that connection is gone."""


class disconnected(Event):
    """Out (client): ``disconnected()``: the connection is gone."""


class read(Event):
    """Out: ``read(data)`` (client), ``read(sock, data)`` (server), ``read(address, data)``."""


class write(Event):
    """In: ``write(data)`` (client), ``write(sock, data)`` (server), ``write(address, data)``."""


class close(Event):
    """In: ``close()`` (client), ``close(sock=None)`` (server: one connection, or the server)."""


class closed(Event):
    """Out: ``closed()``: the client or the listening server is closed."""


class ready(Event):
    """Out: ``ready(component)`` (client), ``ready(component, bind)`` (server: real address)."""


class unreachable(Event):
    """Out (client): ``unreachable(host, port, reason)``: the connect failed (``reason``).

    :class:`Connex` adds the attempt number: ``unreachable(host, port, reason, attempt)``.
    """


class error(Event):
    """Out: ``error(err)`` (client) or ``error(sock, err)`` (server)."""


class starttls(Event):
    """In: ``starttls()`` (client) or ``starttls(sock)`` (server): upgrade to TLS in place."""


class drained(Event):
    """Out: ``drained()`` / ``drained(sock)``: output fell below the low water mark."""


class broadcast(Event):
    """In (UDP): ``broadcast(data, port)``."""
