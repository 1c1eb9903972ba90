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

from ..core import BaseComponent, Component, Manager, handler

__all__ = ["Poller", "SocketComponent", "Watch", "ensure_poller"]

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


class Watch:
    """One descriptor's interest on its tree's selector, following the tree's root.

    ``set(root, mask)`` registers, changes or removes the interest in O(1), and moves it
    when the root changed. A root with no loop yet is left alone: the owner calls ``set``
    again once the loop starts (``SocketComponent`` does), so a socket made before
    ``run()`` costs no selector of its own.
    """

    __slots__ = ("callback", "fileobj", "mask", "root")

    def __init__(self, fileobj: Any, callback: Any) -> None:
        self.fileobj = fileobj
        self.callback = callback
        self.root: Manager | None = None
        self.mask = 0

    def set(self, root: Manager | None, mask: int) -> None:
        """Watch for ``mask`` (0: not at all) on ``root``'s selector."""
        current = self.root
        if current is not None and (current is not root or not mask):
            current._io_remove(self.fileobj)
            self.root = current = None
            self.mask = 0
        if not mask or root is None or root._selector is None:
            return
        if current is None:
            root._io_add(self.fileobj, mask, self.callback)
            self.root = root
        elif mask != self.mask:
            root._io_modify(self.fileobj, mask, self.callback)
        self.mask = mask


class SocketComponent(Component):
    """Base of the components that own sockets (servers, clients, UDP).

    They find (or make) the tree's Poller and re-watch their sockets whenever their root
    changes and when the loop starts; ``_rearm()`` says how.
    """

    def _rearm(self) -> None:
        """Watch every socket this component owns on its current root."""

    def _root_changed(self) -> None:
        if self.parent is not None:
            ensure_poller(self)
        self._rearm()

    @handler("started", channel="*")
    def _on_started(self, manager: Any) -> None:
        if self.parent is None:
            ensure_poller(self)
        self._rearm()
