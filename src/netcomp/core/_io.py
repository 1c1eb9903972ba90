"""Descriptor readiness: the one selector a loop waits in, and the watches on it.

Rules (docs/architecture.md, "The loop"): a :class:`Watch` records a descriptor, the
events wanted (``selectors.EVENT_READ | EVENT_WRITE``; 0 pauses it) and the callback that
runs, on the loop thread, when it is ready. Watches exist before the selector does: the
selector (and the wake-up descriptor other threads write to) is made when the loop first
runs, and registers every watch then. Registering, changing and cancelling are O(1). One
callback's error never stops the loop.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
from collections.abc import Callable
from typing import Any

from ._wakeup import Wakeup

__all__ = ["IO", "Watch"]

log = logging.getLogger("netcomp")


class Watch:
    """Interest in one descriptor's readiness, made by ``Loop.watch``.

    ``callback(mask)`` runs on the loop thread when the descriptor is ready for what
    ``events`` names (``selectors.EVENT_READ`` / ``EVENT_WRITE``; 0 pauses the watch).
    ``modify(events)`` changes the interest, ``cancel()`` ends it (and lets go of the
    callback), ``move(loop)`` carries it to another loop. All O(1), loop thread only.
    A watch follows its component's tree by itself when that tree joins another.
    """

    __slots__ = ("callback", "events", "fileobj", "loop")

    def __init__(
        self, loop: IO, fileobj: Any, events: int, callback: Callable[[int], Any]
    ) -> None:
        self.loop: IO | None = loop
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

    def move(self, loop: IO) -> None:
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


class IO:
    """The I/O half of a :class:`Loop`: its selector, wake-up descriptor and watches."""

    _sleeping: bool
    _chain: bool
    #: Set on the instance by :meth:`use_selector` only (see ``Loop``'s class defaults).
    _selector_class: type[selectors.BaseSelector] = selectors.DefaultSelector

    def __init__(self) -> None:
        self._wakeup: Wakeup | None = None
        self._selector: selectors.BaseSelector | None = None
        self._watches: set[Watch] = set()
        self._io_count = 0  # watches with an interest: the selector has work

    def watch(self, fileobj: Any, events: int, callback: Callable[[int], Any]) -> Watch:
        """Call ``callback(mask)`` on the loop thread whenever ``fileobj`` is ready for
        ``events`` (``selectors.EVENT_READ | EVENT_WRITE``; 0 watches for nothing yet).
        Returns the :class:`Watch` (``modify``, ``cancel``, ``move``)."""
        watch = Watch(self, fileobj, events, callback)
        self._watch_add(watch)
        return watch

    @property
    def watched(self) -> int:
        """How many descriptors are watched for something (the wake-up not counted)."""
        return self._io_count

    @property
    def backend(self) -> str:
        """The selector class name the loop waits in (``EpollSelector``, ...)."""
        return self._selector_class.__name__

    def use_selector(self, selector_class: type[selectors.BaseSelector]) -> None:
        """Wait in a ``selector_class`` selector (the Poller's backend choice)."""
        if selector_class is self._selector_class:
            return
        self._selector_class = selector_class
        if self._selector is not None:
            self._close_selector()
            self._ensure_selector()

    def _watch_add(self, watch: Watch) -> None:
        self._watches.add(watch)
        if watch.events:
            self._io_count += 1
            self._chain = False  # the selector has work: dispatch stops after its batch
            if self._selector is not None:
                self._selector.register(watch.fileobj, watch.events, watch.callback)

    def _watch_modify(self, watch: Watch, events: int) -> None:
        old, watch.events = watch.events, events
        selector = self._selector
        if old and events:
            if selector is not None:
                selector.modify(watch.fileobj, events, watch.callback)
        elif events:
            self._io_count += 1
            self._chain = False
            if selector is not None:
                selector.register(watch.fileobj, events, watch.callback)
        else:
            self._io_count -= 1
            if selector is not None:
                with contextlib.suppress(KeyError, ValueError):
                    selector.unregister(watch.fileobj)

    def _watch_cancel(self, watch: Watch) -> None:
        self._watches.discard(watch)
        if watch.events:
            self._io_count -= 1
            if self._selector is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(watch.fileobj)

    def _take_watches(self, other: IO) -> None:
        """Move ``other``'s watches here."""
        for watch in list(other._watches):
            watch.move(self)

    def _ensure_selector(self) -> None:
        if self._selector is not None:
            return
        self._wakeup = Wakeup()
        selector = self._selector = self._selector_class()
        selector.register(self._wakeup.fileno(), selectors.EVENT_READ, None)
        for watch in self._watches:
            if watch.events:
                selector.register(watch.fileobj, watch.events, watch.callback)

    def _close_selector(self) -> None:
        selector, self._selector = self._selector, None
        if selector is not None:
            selector.close()
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None:
            wakeup.close()

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None:
            wakeup.wake()

    def _select(self, timeout: float | None) -> bool:
        """Wait in the selector and run the ready descriptors' callbacks; True if any."""
        assert self._selector is not None
        ready = self._selector.select(timeout)
        # Awake from here on: what I/O callbacks fire needs no wake-up write.
        self._sleeping = False
        for key, mask in ready:
            callback = key.data
            if callback is None:
                assert self._wakeup is not None
                self._wakeup.drain()
                continue
            try:
                callback(mask)
            except Exception:  # one descriptor's bug never kills the loop
                log.exception("error in I/O callback %r", callback)
        return bool(ready)
