"""The Poller: the one readiness multiplexer of a component tree.

Rules: there is one selector per tree and it lives at the root (the core loop sleeps in it,
so the cross-thread wake-up and the sockets share one wait). The Poller component chooses
its backend (``epoll``/``poll``/``select``; the best available by default) and moves every
registration there. Socket components call :func:`ensure_poller` when they join a tree: it
finds the tree's Poller or registers a new one. Readiness is delivered by a direct call to
the owning connection's callback; only the public net events are dispatched.
"""

from __future__ import annotations

import selectors
from typing import Any

from ..core import BaseComponent, Manager, handler

__all__ = ["Poller", "ensure_poller"]

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

    def init(self, backend: str | None = None, channel: Any = "poller") -> None:
        """``backend=None`` picks the best the platform has (epoll on Linux)."""
        self.channel = channel
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
        self.backend = backend or selectors.DefaultSelector.__name__  # no selector made
        self._installed_on: Manager | None = None
        # Installed when it joins a tree (or its own loop starts), not here: init() must not
        # create loop state on a component that is not yet anyone's root.

    def _install(self) -> None:
        root = self.root
        if self._installed_on is root:
            return
        root._ensure_loop()
        if not isinstance(root._selector, self.selector_class):
            root._use_selector(self.selector_class())
        self._installed_on = root

    def _root_changed(self) -> None:
        self._install()

    @handler("started", channel="*", priority=100)
    def _on_started(self, manager: Any) -> None:
        self._install()

    @property
    def fds(self) -> int:
        """How many sockets the tree's selector services (the wake-up not counted)."""
        return self.root._io_count

    def __repr__(self) -> str:
        return f"<Poller/{self.channel} {self.backend} fds={self.root._io_count}>"


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
