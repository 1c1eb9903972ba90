"""WebSockets under circuits' names: ``netcomp.web.websockets.WebSocketsDispatcher`` (the
server side, on a netcomp.web server's port) and ``WebSocketClient``.

The same classes as ``netcomp.web``'s; see :class:`WebSocketsDispatcher` and
:class:`WebSocketClient` for their events.
"""

from __future__ import annotations

from ._wsclient import HandshakeError, WebSocketClient
from ._wslimits import WebSocketLimits
from ._wsserver import WebSocketsDispatcher

__all__ = ["HandshakeError", "WebSocketClient", "WebSocketLimits", "WebSocketsDispatcher"]
