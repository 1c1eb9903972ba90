"""circuits' ``circuits.web.errors``: ``httperror``, ``forbidden``, ``unauthorized``,
``notfound`` and ``redirect``, as :class:`netcomp.web.HTTPError` subclasses that take
circuits' arguments (``notfound(request, response, description=None)``, ...).

A handler may return one, as in circuits, or raise it; either way it answers its status.
"""

from ._compat_errors import forbidden, httperror, notfound, redirect, unauthorized

__all__ = ["forbidden", "httperror", "notfound", "redirect", "unauthorized"]
