"""circuits' ``circuits.web.dispatchers``: :class:`Dispatcher` and :class:`Static`,
re-exported from ``netcomp.web``. (circuits' JSONRPC, XMLRPC, VirtualHosts and
WebSocketsDispatcher have no counterpart.)"""

from .._dispatcher import Dispatcher
from .._static import Static

__all__ = ["Dispatcher", "Static"]
