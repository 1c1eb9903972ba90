"""Timers: fire an event after an interval (once, or every interval), on the loop's clock.

Rules: a Timer arms itself when it joins a tree and disarms when it leaves; deadlines are
kept in the loop's heap, so the loop sleeps exactly until the next one, on the loop's
clock. A persistent timer re-arms from its previous deadline (no drift); if the loop fell
behind by more than an interval it re-arms from now instead of firing a burst.
"""

from __future__ import annotations

import datetime
import numbers
from collections.abc import Hashable
from typing import Any

from ._components import BaseComponent
from ._events import Event
from ._scheduling import TimerHandle

__all__ = ["Timer"]


def _seconds(interval: float | datetime.datetime) -> float:
    """``interval`` in seconds; a ``datetime`` is the wall-clock time to fire at (naive:
    local time), counted from now (one in the past fires at once)."""
    if isinstance(interval, datetime.datetime):
        now = datetime.datetime.now(interval.tzinfo)
        return max(0.0, (interval - now).total_seconds())
    if not isinstance(interval, numbers.Real):
        raise TypeError(f"Timer interval is seconds (a number) or a datetime, not {interval!r}")
    if interval < 0:
        raise ValueError(f"Timer interval must be >= 0 seconds, got {interval!r}")
    return float(interval)


class Timer(BaseComponent):
    """``Timer(interval, event, *channels, persist=False)``: fire ``event`` after ``interval`` s.

    Register it into a tree to arm it; unregister it to cancel. ``reset()`` restarts the
    countdown. ``channels`` default to the event's own, else ``"*"``. ``interval`` may be
    a ``datetime`` (as in circuits): the seconds from now until then become the interval.
    """

    def __init__(
        self,
        interval: float | datetime.datetime,
        event: Event,
        *channels: Hashable,
        persist: bool = False,
        channel: Any = "*",
    ) -> None:
        if not isinstance(event, Event):
            raise TypeError(f"Timer needs an Event to fire, not {event!r}")
        super().__init__(channel=channel)
        self.interval = _seconds(interval)
        self.event = event
        self.channels = channels
        self.persist = persist
        self._handle: TimerHandle | None = None

    @property
    def expiry(self) -> float | None:
        """When the timer fires next, on its loop's clock (``None``: not armed). Read from
        the loop's timer, so it stays right when the loop's clock is replaced."""
        handle = self._handle
        return None if handle is None else handle.when

    def loop_changed(self) -> None:
        """Arm on joining a tree, disarm on leaving it; follow the tree to its new loop."""
        if self.parent is None:
            self._disarm()
        elif self._handle is None:
            self._arm(self.loop.time() + self.interval)
        else:
            self._arm(self._handle.when)  # a moved handle keeps the delay it had left

    def _arm(self, when: float) -> None:
        self._disarm()
        self._handle = self.loop.call_at(when, self._expired)

    def _disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _expired(self) -> None:
        handle, self._handle = self._handle, None
        self.fire(self.event, *self.channels)
        if self.persist and self.parent is not None:
            assert handle is not None
            nxt = handle.when + self.interval  # the loop keeps ``when`` on its current clock
            now = self.loop.time()
            if nxt <= now:
                nxt = now + self.interval
            self._arm(nxt)

    def reset(self, interval: float | datetime.datetime | None = None) -> None:
        """Restart the countdown from now (with a new ``interval`` if given). Thread-safe."""
        loop = self.loop
        if loop.running and not loop.on_loop_thread():
            loop.call_soon_threadsafe(self.reset, interval)
            return
        if interval is not None:
            self.interval = _seconds(interval)
        if self.parent is not None:
            self._arm(loop.time() + self.interval)

    def fire(self, event: Event, *channels: Hashable, priority: float | None = None) -> Any:
        """Fire on ``channels``; with none, on the event's own channels or ``"*"``."""
        if not channels:
            channels = event.channels or ("*",)
        return super().fire(event, *channels, priority=priority)

    def __repr__(self) -> str:
        state = "armed" if self._handle is not None else "idle"
        persist = " persist" if self.persist else ""
        return f"<Timer {self.interval}s {self.event.name} {state}{persist}>"
