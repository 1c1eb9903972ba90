"""circuits' ``circuits.web.dispatchers.xmlrpc``: :class:`XMLRPC`, re-exported from
``netcomp.web``."""

from .._xmlrpc import XMLRPC

__all__ = ["XMLRPC"]
