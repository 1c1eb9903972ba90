"""circuits' ``circuits.web.dispatchers.virtualhosts``: :class:`VirtualHosts`,
re-exported from ``netcomp.web``."""

from .._vhosts import VirtualHosts

__all__ = ["VirtualHosts"]
