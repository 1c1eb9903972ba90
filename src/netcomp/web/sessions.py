"""circuits' ``circuits.web.sessions``: :class:`Sessions` (the component), the
:class:`Session` a request gets, and the stores (:class:`Store` interface,
:class:`MemoryStore`, :class:`FileStore`), re-exported from ``netcomp.web``."""

from ._sessions import Session, Sessions
from ._sessionstores import FileStore, MemoryStore, Store

__all__ = ["FileStore", "MemoryStore", "Session", "Sessions", "Store"]
