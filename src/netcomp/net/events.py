"""The net layer's events under circuits' module name: ``from netcomp.net.events import
connect, write, close`` names the same classes as ``netcomp.net`` does.

Everything ``circuits.net.events`` defines is here with the same argument shapes
(docs/architecture.md, "Events"), plus ``drained``, netcomp's backpressure notification.
"""

from ._events import (
    broadcast,
    close,
    closed,
    connect,
    connected,
    disconnect,
    disconnected,
    drained,
    error,
    read,
    ready,
    starttls,
    unreachable,
    write,
)

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
