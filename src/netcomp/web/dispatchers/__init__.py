"""circuits' ``circuits.web.dispatchers``: :class:`Dispatcher`, :class:`Static`,
:class:`JSONRPC`, :class:`XMLRPC` and :class:`VirtualHosts`, re-exported from
``netcomp.web`` (WebSockets are in ``netcomp.web.websockets``)."""

from .._dispatcher import Dispatcher
from .._jsonrpc import JSONRPC
from .._static import Static
from .._vhosts import VirtualHosts
from .._xmlrpc import XMLRPC

__all__ = ["JSONRPC", "XMLRPC", "Dispatcher", "Static", "VirtualHosts"]
