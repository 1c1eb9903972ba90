"""Handles a loop gives out: a scheduled callback, and the watch of one descriptor."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._loop import Loop

__all__ = ["TimerHandle", "Watch"]


def _nothing(*args: Any) -> None:
    """What a cancelled handle holds instead of its callback."""


class TimerHandle:
    """A callback scheduled on a loop's clock (``when``); ``cancel()`` it to drop it."""

    __slots__ = ("args", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run the callback (and let go of it and its arguments at once)."""
        self.cancelled = True
        self.callback = _nothing
        self.args = ()

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled else f"at {self.when:.6f}"
        return f"<TimerHandle {state} {self.callback!r}>"


class Watch:
    """Interest in one descriptor's readiness, made by :meth:`Loop.watch`.

    ``callback(mask)`` runs on the loop thread when the descriptor is ready for what
    ``events`` names (``selectors.EVENT_READ`` / ``EVENT_WRITE``; 0 pauses the watch).
    ``modify(events)`` changes the interest, ``cancel()`` ends it (and lets go of the
    callback), ``move(loop)`` carries it to another loop. All O(1), loop thread only.
    A watch follows its component's tree by itself when that tree joins another.
    """

    __slots__ = ("callback", "events", "fileobj", "loop")

    def __init__(
        self, loop: Loop, fileobj: Any, events: int, callback: Callable[[int], Any]
    ) -> None:
        self.loop: Loop | None = loop
        self.fileobj = fileobj
        self.events = events
        self.callback: Callable[[int], Any] | None = callback

    @property
    def active(self) -> bool:
        """Not cancelled."""
        return self.loop is not None

    def modify(self, events: int) -> None:
        """Watch for ``events`` from now on (0: for nothing, until the next ``modify``)."""
        if events != self.events and self.loop is not None:
            self.loop._watch_modify(self, events)

    def cancel(self) -> None:
        """Stop watching for good."""
        loop = self.loop
        if loop is not None:
            loop._watch_cancel(self)
            self.loop = None
        self.callback = None

    def move(self, loop: Loop) -> None:
        """Carry the watch (and its interest) to ``loop``."""
        current = self.loop
        if current is loop or current is None:
            return
        current._watch_cancel(self)
        self.loop = loop
        loop._watch_add(self)

    def __repr__(self) -> str:
        state = "cancelled" if self.loop is None else f"events={self.events}"
        return f"<Watch {self.fileobj!r} {state}>"
