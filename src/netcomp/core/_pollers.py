"""Pollers: the component that chooses which selector a tree's loop waits in.

Rules (docs/architecture.md, "Net"): a tree has one selector and it lives in the tree's
loop (the loop sleeps in it, so the cross-thread wake-up, the timers and every socket share
one wait). A :class:`Poller` only chooses its backend (``epoll``, ``poll``, ``select``,
``kqueue``; the best the platform has by default) with ``loop.use_selector``; it never
polls. Socket components call :func:`ensure_poller` when they join a tree: it finds the
tree's Poller or registers a new one at the root. ``Select``, ``Poll``, ``EPoll`` and
``KQueue`` are Pollers with a fixed backend, under circuits' names (``BasePoller`` is
circuits' name for their base).
"""

from __future__ import annotations

import selectors
from typing import Any

from ._components import BaseComponent
from ._manager import Manager

__all__ = ["BasePoller", "EPoll", "KQueue", "Poll", "Poller", "Select", "ensure_poller"]

_BACKENDS: dict[str, str] = {
    "epoll": "EpollSelector",
    "poll": "PollSelector",
    "select": "SelectSelector",
    "kqueue": "KqueueSelector",
    "devpoll": "DevpollSelector",
}


def _selector_class(backend: str | None) -> type[selectors.BaseSelector]:
    if backend is None:
        return selectors.DefaultSelector
    name = _BACKENDS.get(backend)
    cls = getattr(selectors, name, None) if name else None
    if cls is None:
        available = sorted(k for k, v in _BACKENDS.items() if hasattr(selectors, v))
        raise ValueError(
            f"unknown or unavailable poller backend {backend!r}; choose from {available}"
        )
    return cls  # type: ignore[no-any-return]


class Poller(BaseComponent):
    """The tree's readiness multiplexer. ``backend``: ``"epoll"``, ``"poll"``,
    ``"select"`` or ``"kqueue"`` (``None``: the best the platform has, epoll on Linux).

    Raises ``ValueError`` for a backend the platform does not have, naming the ones it has.
    """

    channel = "poller"
    #: The backend of this class (``None``: chosen by the ``backend`` argument).
    fixed_backend: str | None = None

    def __init__(self, backend: str | None = None, channel: Any = None) -> None:
        """See the class docstring; ``channel`` defaults to the class's."""
        super().__init__(channel=type(self).channel if channel is None else channel)
        if self.fixed_backend is not None:
            if backend not in (None, self.fixed_backend):
                raise ValueError(
                    f"{type(self).__name__} waits in {self.fixed_backend!r}, not {backend!r}; "
                    "use Poller(backend=...) to choose"
                )
            backend = self.fixed_backend
        self.selector_class: type[selectors.BaseSelector] = _selector_class(backend)
        self.backend = backend or selectors.DefaultSelector.__name__
        self.loop.use_selector(self.selector_class)

    def loop_changed(self) -> None:
        """The tree this Poller serves waits in its backend."""
        self.loop.use_selector(self.selector_class)

    @property
    def fds(self) -> int:
        """How many descriptors the tree's selector services (the wake-up not counted)."""
        return self.loop.watched

    def __repr__(self) -> str:
        return f"<{type(self).__name__}/{self.channel} {self.backend} fds={self.loop.watched}>"


#: circuits' name for the base of its pollers.
BasePoller = Poller


class Select(Poller):
    """A :class:`Poller` waiting in ``select()`` (every platform)."""

    channel = "select"
    fixed_backend = "select"


class Poll(Poller):
    """A :class:`Poller` waiting in ``poll()`` (POSIX)."""

    channel = "poll"
    fixed_backend = "poll"


class EPoll(Poller):
    """A :class:`Poller` waiting in ``epoll`` (Linux)."""

    channel = "epoll"
    fixed_backend = "epoll"


class KQueue(Poller):
    """A :class:`Poller` waiting in ``kqueue`` (BSD, macOS); ``ValueError`` elsewhere."""

    channel = "kqueue"
    fixed_backend = "kqueue"


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
