"""circuits' ``circuits.web.loggers``: the access-log :class:`Logger` component,
re-exported from ``netcomp.web``."""

from ._logger import Logger

__all__ = ["Logger"]
