"""netcomp.net: one shared poller servicing TCP and UNIX stream servers and clients,
plain or TLS, with buffered output and backpressure, UDP sockets, in-process pipes, the
reconnecting ``Connex``, the thread-serviced ``ThreadedTCPClient``, and the
``Supervisor`` that runs a tree in worker processes sharing its listeners.

``netcomp.net.events`` and ``netcomp.net.sockets`` give the same names under circuits'
module names."""

from ..core import Poller, ensure_poller
from ._budget import OutputBudget
from ._client import Client, TCP6Client, TCPClient, UNIXClient
from ._connection import Connection
from ._connex import Backoff, Connex, QueueFull, RetriesExhausted, disable, enable
from ._errors import ConnectTimeout, HandshakeTimeout, NotConnected
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
from ._lifecycle import ConnectionState
from ._limits import ConnectionLimits
from ._peers import Networks, PeerFilter
from ._pipe import Pipe
from ._server import Server, TCP6Server, TCPServer, UNIXServer
from ._supervisor import Supervisor, restarted, serving
from ._threaded import ThreadedTCPClient
from ._udp import UDP6Client, UDP6Server, UDPClient, UDPServer

__all__ = [
    "Backoff",
    "Client",
    "ConnectTimeout",
    "Connection",
    "ConnectionLimits",
    "ConnectionState",
    "Connex",
    "HandshakeTimeout",
    "Networks",
    "NotConnected",
    "OutputBudget",
    "PeerFilter",
    "Pipe",
    "Poller",
    "QueueFull",
    "RetriesExhausted",
    "Server",
    "Supervisor",
    "TCP6Client",
    "TCP6Server",
    "TCPClient",
    "TCPServer",
    "ThreadedTCPClient",
    "UDP6Client",
    "UDP6Server",
    "UDPClient",
    "UDPServer",
    "UNIXClient",
    "UNIXServer",
    "broadcast",
    "close",
    "closed",
    "connect",
    "connected",
    "disable",
    "disconnect",
    "disconnected",
    "drained",
    "enable",
    "ensure_poller",
    "error",
    "read",
    "ready",
    "restarted",
    "serving",
    "starttls",
    "unreachable",
    "write",
]
