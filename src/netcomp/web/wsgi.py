"""circuits' ``circuits.web.wsgi``: :class:`Application` (a netcomp tree as a WSGI
application) and :class:`Gateway` (WSGI applications mounted by path, circuits' way);
netcomp's own mount is :class:`netcomp.web.WSGIGateway`."""

from ._wsgiapp import Application
from ._wsgicompat import Gateway

__all__ = ["Application", "Gateway"]
