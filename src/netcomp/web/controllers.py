"""circuits' ``circuits.web.controllers``: :class:`Controller`, :class:`JSONController`
and :func:`expose`, re-exported from ``netcomp.web`` (the one implementation)."""

from ._controllers import Controller, JSONController, expose

__all__ = ["Controller", "JSONController", "expose"]
