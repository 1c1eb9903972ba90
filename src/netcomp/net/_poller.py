"""SocketComponent: the base of the net components that own sockets.

Rules: there is one selector per tree and it lives in the tree's loop; the core's
:class:`~netcomp.core.Poller` chooses its backend. Socket components call
:func:`~netcomp.core.ensure_poller` when they join a tree, and carry their sockets' watches
to the new loop when their subtree leaves one. Readiness is delivered by a direct call to
the owning connection's callback (a ``loop.watch``); only the public net events are
dispatched.
"""

from __future__ import annotations

from typing import Any

from ..core import Component, ensure_poller, handler

__all__ = ["SocketComponent"]


class SocketComponent(Component):
    """Base of the components that own sockets (servers, clients, UDP).

    They find (or make) the tree's Poller when they join a tree, and carry their sockets'
    watches to the new loop when their subtree leaves one (``_rearm()`` says how).
    """

    def _rearm(self) -> None:
        """Move every socket watch and timer this component owns to ``self.loop``."""

    def loop_changed(self) -> None:
        """Joined a tree: make sure it has a Poller. Moved: carry the sockets along."""
        if self.parent is not None:
            ensure_poller(self)
        self._rearm()

    @handler("started", channel="*")
    def _on_started(self, manager: Any) -> None:
        if self.parent is None:
            ensure_poller(self)  # the root of its own tree: it serves that tree too
