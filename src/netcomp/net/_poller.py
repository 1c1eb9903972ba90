"""The Poller: the one readiness multiplexer of a component tree.

Rules: there is one selector per tree and it lives in the tree's loop (the core loop sleeps
in it, so the cross-thread wake-up and the sockets share one wait). The Poller component
chooses its backend (``epoll``/``poll``/``select``; the best available by default) with
``loop.use_selector``. Socket components call :func:`ensure_poller` when they join a tree:
it finds the tree's Poller or registers a new one. Readiness is delivered by a direct call
to the owning connection's callback (a ``loop.watch``); only the public net events are
dispatched.
"""

from __future__ import annotations

import selectors
from typing import Any

from ..core import BaseComponent, Component, Manager, handler

__all__ = ["Poller", "SocketComponent", "ensure_poller"]

_BACKENDS: dict[str, str] = {
    "epoll": "EpollSelector",
    "poll": "PollSelector",
    "select": "SelectSelector",
    "kqueue": "KqueueSelector",
    "devpoll": "DevpollSelector",
}


class Poller(BaseComponent):
    """The tree's readiness multiplexer. ``backend``: ``"epoll"``, ``"poll"``, ``"select"``."""

    channel = "poller"

    def __init__(self, backend: str | None = None, channel: Any = "poller") -> None:
        """``backend=None`` picks the best the platform has (epoll on Linux)."""
        super().__init__(channel=channel)
        if backend is None:
            self.selector_class: type[selectors.BaseSelector] = selectors.DefaultSelector
        else:
            name = _BACKENDS.get(backend)
            cls = getattr(selectors, name, None) if name else None
            if cls is None:
                available = sorted(k for k, v in _BACKENDS.items() if hasattr(selectors, v))
                raise ValueError(
                    f"unknown or unavailable poller backend {backend!r}; choose from {available}"
                )
            self.selector_class = cls
        self.backend = backend or selectors.DefaultSelector.__name__
        self.loop.use_selector(self.selector_class)

    def loop_changed(self) -> None:
        """The tree this Poller serves waits in its backend."""
        self.loop.use_selector(self.selector_class)

    @property
    def fds(self) -> int:
        """How many sockets the tree's selector services (the wake-up not counted)."""
        return self.loop.watched

    def __repr__(self) -> str:
        return f"<Poller/{self.channel} {self.backend} fds={self.loop.watched}>"


def ensure_poller(component: Manager) -> Poller:
    """The Poller of ``component``'s tree, registering a new one at the root if none."""
    root = component.root
    for member in root.walk():
        if isinstance(member, Poller):
            return member
    poller = Poller()
    if root is not poller:
        poller.register(root)
    return poller


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
