"""Scheduling: callbacks to run soon, at a time, or later, on the loop's clock.

Rules (docs/architecture.md, "The loop"): ``call_soon`` callbacks run after the current
batch, in order; ``call_later``/``call_at`` callbacks run once their time has come on the
loop's clock, earliest first (ties in scheduling order). A cancelled timer lets go of its
callback at once and is swept from the heap when cancelled ones may be most of it.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

from ._clock import Clock, MonotonicClock

__all__ = ["Scheduling", "TimerHandle"]

_TIMERS_COMPACT = 1024  # heap size from which cancelled timers are swept out


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


class Scheduling:
    """The scheduling half of a :class:`Loop`: ready callbacks, the timer heap, the clock."""

    _running: bool
    _sleeping: bool
    _chain: bool
    #: Heap size from which cancelled timers are swept (set on the instance once the heap
    #: grows past it: see ``Loop``'s class defaults).
    _timers_compact_at: int = _TIMERS_COMPACT

    # The other halves of the Loop provide these.
    _wake: Callable[[], None]
    _run_callback: Callable[[Callable[..., Any], tuple[Any, ...]], None]

    def __init__(self, clock: Clock | None = None) -> None:
        self._ready: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._timers: list[tuple[float, int, TimerHandle]] = []
        self._timer_seq = itertools.count()
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        #: The current time on the loop's clock (seconds; a plain function, for speed).
        self.time: Callable[[], float] = self._clock.time
        self._clock.attach(self._wake)

    @property
    def clock(self) -> Clock:
        """Where this loop reads the time. Settable while the loop is not running: pending
        timers keep the delay they had left."""
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        if not isinstance(clock, Clock):
            raise TypeError(f"a loop's clock is a netcomp Clock, not {clock!r}")
        if self._running:
            raise RuntimeError("cannot change the clock of a running loop")
        offset = clock.time() - self.time()
        for _when, _seq, handle in self._timers:
            handle.when += offset
        self._timers = [(h.when, seq, h) for _w, seq, h in self._timers]
        heapq.heapify(self._timers)
        self._clock.detach(self._wake)
        self._clock = clock
        self.time = clock.time
        clock.attach(self._wake)

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop thread after the current batch."""
        self._ready.append((callback, args))
        self._chain = False

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None:
        """Like :meth:`call_soon`, from any thread; wakes the loop."""
        self._ready.append((callback, args))
        self._chain = False  # after the append (see Loop._run_once)
        if self._sleeping:
            self._wake()

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` ``delay`` seconds from now (loop thread)."""
        return self.call_at(self.time() + delay, callback, *args)

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` at ``when`` on this loop's clock (loop thread)."""
        handle = TimerHandle(when, callback, args)
        timers = self._timers
        if len(timers) >= self._timers_compact_at:
            # Cancelled timers stay in the heap until their time comes: drop them once
            # they may be most of it (amortised O(1) per timer).
            timers[:] = [item for item in timers if not item[2].cancelled]
            heapq.heapify(timers)
            self._timers_compact_at = max(_TIMERS_COMPACT, 2 * len(timers))
        heapq.heappush(timers, (when, next(self._timer_seq), handle))
        self._chain = False
        if self._sleeping and timers[0][2] is handle:
            self._wake()
        return handle

    def scheduled(self) -> list[TimerHandle]:
        """The timers not yet run nor cancelled, soonest first."""
        return [h for _w, _s, h in sorted(self._timers) if not h.cancelled]

    def _run_due(self) -> None:
        """Run the timers whose time has come, earliest first."""
        timers = self._timers
        now = self.time()
        while timers and timers[0][0] <= now:
            handle = heapq.heappop(timers)[2]
            if not handle.cancelled:
                self._run_callback(handle.callback, handle.args)

    def _next_deadline(self) -> float | None:
        """When the next live timer is due (cancelled ones at the head are dropped)."""
        timers = self._timers
        while timers and timers[0][2].cancelled:
            heapq.heappop(timers)  # a cancelled head must not wake the loop
        return timers[0][0] if timers else None

    def _take_timers(self, other: Scheduling) -> None:
        """Move ``other``'s callbacks and live timers here (keeping their delays)."""
        self._ready.extend(other._ready)
        other._ready.clear()
        self._chain = False
        offset = self.time() - other.time()
        for when, _seq, handle in other._timers:
            if not handle.cancelled:
                handle.when = when + offset
                heapq.heappush(self._timers, (handle.when, next(self._timer_seq), handle))
        other._timers.clear()
