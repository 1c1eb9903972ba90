"""circuits' ``circuits.web.events``: the :class:`request` event, re-exported from
``netcomp.web``. (netcomp's server fires no ``response`` or ``stream`` events: a handler's
value is the response.)"""

from ._events import request

__all__ = ["request"]
