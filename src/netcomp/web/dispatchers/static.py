"""circuits' ``circuits.web.dispatchers.static``: :class:`Static`, re-exported from
``netcomp.web``."""

from .._static import Static

__all__ = ["Static"]
