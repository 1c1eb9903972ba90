"""The socket components under circuits' module name: ``from netcomp.net.sockets import
TCPServer, TCPClient, UDPServer, Pipe`` names the same classes as ``netcomp.net`` does,
with the events circuits' ``sockets`` module re-exports.

``BUFSIZE`` is the most bytes one stream ``read`` event carries (netcomp reads what the
kernel has, up to this, in one call; circuits read 4 KiB at a time). Where netcomp differs
from circuits on purpose (safe default binds, constructor options, no private ``_sock``),
``compat/known_differences.md`` says so and why.
"""

from ._client import Client, TCP6Client, TCPClient, UNIXClient
from ._connection import READ_SIZE as BUFSIZE
from ._events import (
    close,
    closed,
    connect,
    connected,
    disconnect,
    disconnected,
    error,
    read,
    ready,
    unreachable,
    write,
)
from ._pipe import Pipe
from ._server import Server, TCP6Server, TCPServer, UNIXServer
from ._udp import UDP6Client, UDP6Server, UDPClient, UDPServer

__all__ = [
    "BUFSIZE",
    "Client",
    "Pipe",
    "Server",
    "TCP6Client",
    "TCP6Server",
    "TCPClient",
    "TCPServer",
    "UDP6Client",
    "UDP6Server",
    "UDPClient",
    "UDPServer",
    "UNIXClient",
    "UNIXServer",
    "close",
    "closed",
    "connect",
    "connected",
    "disconnect",
    "disconnected",
    "error",
    "read",
    "ready",
    "unreachable",
    "write",
]
