"""WebSockets under circuits' names: ``netcomp.web.websockets.WebSocketsDispatcher`` (the
server side, on a netcomp.web server's port).

The same classes as ``netcomp.web``'s; see :class:`WebSocketsDispatcher` for its events.
"""

from __future__ import annotations

from ._wslimits import WebSocketLimits
from ._wsserver import WebSocketsDispatcher

__all__ = ["WebSocketLimits", "WebSocketsDispatcher"]
