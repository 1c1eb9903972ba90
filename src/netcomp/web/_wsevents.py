"""The WebSocket events that the net layer has no word for, and its failure report.

Everything else keeps the net layer's names and shapes (docs/architecture.md, "Events"):
server side ``connect(sock, request)``, ``read(sock, message)``, ``disconnect(sock)``,
``drained(sock)`` out, ``write(sock, message)`` and ``close(sock, code, reason)`` in;
client side ``connected(host, port)``, ``read(message)``, ``disconnected()``, ``drained()``,
``unreachable(host, port, reason)`` out, ``write(message)``, ``close(code, reason)`` in.
"""

from __future__ import annotations

from ..core import Event
from ..net import error as _net_error

__all__ = ["closing", "error"]


class closing(Event):
    """Out: ``closing(sock, code, reason)`` (server) or ``closing(code, reason)`` (client):
    the WebSocket is closing, once: the peer's close frame (its code and reason), ours, or
    the failure that ended it (1009 too big, 1007 bad UTF-8, 1011 dead peer, 1006 the
    connection ended without a close frame...). ``disconnect`` / ``disconnected`` follow
    once the connection is gone."""

    notification = True


class error(_net_error):
    """Out: ``error(sock, err)`` (server) or ``error(err)`` (client): a write to a
    WebSocket that is closed, a client's failed handshake. Logged on ``netcomp.web`` when
    nothing handles it by name."""

    unhandled_logger = "netcomp.web"
