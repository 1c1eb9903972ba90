"""circuits' ``circuits.web.servers``: :class:`BaseServer` and :class:`Server`, re-exported
from ``netcomp.web`` (the one implementation)."""

from ._server import BaseServer, Server

__all__ = ["BaseServer", "Server"]
