"""circuits' ``circuits.core.bridge``: :class:`Bridge` and :class:`ipc`, for events handled
in another process (``manager.start(process=True, link=other)``).

A thin public module with circuits' name; the implementation is ``netcomp.core``'s (see
``docs/architecture.md``, "Bridges", and ``docs/circuits.md``). What crosses is JSON
data, never pickles: see :class:`NotSendable` for what may.
"""

from ._bridge import Bridge
from ._remote import BridgeError, RemoteError, ipc
from ._wire import NotSendable

__all__ = ["Bridge", "BridgeError", "NotSendable", "RemoteError", "ipc"]
