"""circuits' ``circuits.web.dispatchers.dispatcher``: :class:`Dispatcher`, re-exported from
``netcomp.web``."""

from .._dispatcher import Dispatcher

__all__ = ["Dispatcher"]
