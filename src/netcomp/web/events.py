"""circuits' ``circuits.web.events``: the :class:`request` and :class:`response` events,
re-exported from ``netcomp.web``. (netcomp's server fires ``response`` only while a
handler takes it by name on the server's channel, and fires no ``stream`` events: a
handler's value is the response.)"""

from ._events import request, response

__all__ = ["request", "response"]
