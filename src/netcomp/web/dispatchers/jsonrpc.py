"""circuits' ``circuits.web.dispatchers.jsonrpc``: :class:`JSONRPC`, re-exported from
``netcomp.web``."""

from .._jsonrpc import JSONRPC

__all__ = ["JSONRPC"]
