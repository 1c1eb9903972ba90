"""Clocks: where a loop reads the time, and how long it may sleep for a deadline.

Rules (docs/architecture.md, "Time"):
* Every deadline in netcomp (timers, timeouts, backoff, keep-alive, linger) is a number on
  its loop's clock, read with ``loop.time()``; nothing reads ``time.monotonic()`` itself.
* The default clock is the monotonic clock: the loop sleeps until the next deadline.
* A :class:`VirtualClock` moves only when told (``advance``) or, with an autojump
  threshold, when the loop has had nothing to do for that many real seconds: then it jumps
  straight to the next deadline. Sockets stay real; only the waiting is skipped.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from time import monotonic

__all__ = ["Clock", "MonotonicClock", "VirtualClock"]


class Clock:
    """What a :class:`Loop` asks of a clock. Subclass it to give a loop another time.

    ``time()`` is the current time in seconds (any origin, never going back);
    ``sleep_time(deadline)`` is how many *real* seconds the loop may block waiting for
    ``deadline`` (``None``: until something happens); ``idle(deadline)`` is called when
    the loop blocked that long and nothing happened; ``attach(wake)`` gives the clock a way
    to wake a sleeping loop (a virtual clock that was advanced does).
    """

    def time(self) -> float:
        """The current time on this clock, in seconds."""
        raise NotImplementedError

    def sleep_time(self, deadline: float) -> float | None:
        """Real seconds the loop may block while waiting for ``deadline``."""
        delay = deadline - self.time()
        return delay if delay > 0 else 0.0

    def idle(self, deadline: float) -> None:
        """The loop blocked for ``sleep_time(deadline)`` and nothing happened."""

    def attach(self, wake: Callable[[], None]) -> None:
        """A loop now reads this clock; ``wake()`` wakes it from any thread."""

    def detach(self, wake: Callable[[], None]) -> None:
        """The loop that gave ``wake`` no longer reads this clock."""


class MonotonicClock(Clock):
    """The real clock: ``time.monotonic()``. Every loop uses it unless told otherwise."""

    time = staticmethod(monotonic)  # the builtin itself: no extra call per reading

    def __repr__(self) -> str:
        return "<MonotonicClock>"


class VirtualClock(Clock):
    """Virtual time for tests: timers and timeouts of any length run in no real time.

    ``advance(seconds)`` moves time forward (from any thread) and wakes the loop, which
    runs what became due. With ``autojump_threshold`` (real seconds, default: never), a loop
    that has had nothing to do for that long jumps to its next deadline by itself, so a
    30 s keep-alive or a five-round backoff takes a few threshold's worth of real time.
    When the test's peers run on other threads, use a threshold comfortably above what
    they may take to answer on a loaded machine (``0.1`` to ``0.2``): time must never jump
    under a peer that is merely slow. To move time exactly from the test thread, see
    ``netcomp.testing.VirtualTime``. ``start`` is the initial time.
    """

    def __init__(self, start: float = 0.0, autojump_threshold: float = math.inf) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        self._wakes: list[Callable[[], None]] = []
        self._threshold = math.inf
        self.autojump_threshold = autojump_threshold

    @property
    def autojump_threshold(self) -> float:
        """Real seconds of idleness after which a loop jumps to its next deadline
        (``inf``: never). Settable at any time, from any thread: the loops are woken to
        wait with the new threshold."""
        return self._threshold

    @autojump_threshold.setter
    def autojump_threshold(self, seconds: float) -> None:
        if not seconds >= 0:
            raise ValueError(f"autojump_threshold must be >= 0 seconds, got {seconds}")
        with self._lock:
            self._threshold = float(seconds)
            wakes = list(self._wakes)
        for wake in wakes:
            wake()

    def time(self) -> float:
        """The current virtual time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake the loops that read this clock."""
        if seconds < 0:
            raise ValueError(f"time only goes forward; advance() got {seconds}")
        with self._lock:
            self._now += seconds
            wakes = list(self._wakes)
        for wake in wakes:
            wake()

    def jump(self, when: float) -> None:
        """Move time forward to ``when`` (no effect if it is already past)."""
        with self._lock:
            if when <= self._now:
                return
            self._now = when
            wakes = list(self._wakes)
        for wake in wakes:
            wake()

    def sleep_time(self, deadline: float) -> float | None:
        """Due now: 0. Otherwise the autojump threshold (``None``: wait to be woken)."""
        if deadline <= self._now:
            return 0.0
        threshold = self._threshold
        return None if threshold == math.inf else threshold

    def idle(self, deadline: float) -> None:
        """Nothing happened for the threshold: jump to ``deadline``."""
        if self._threshold != math.inf and deadline > self._now:
            with self._lock:
                if deadline > self._now:
                    self._now = deadline

    def attach(self, wake: Callable[[], None]) -> None:
        """Wake this loop when time is advanced."""
        with self._lock:
            self._wakes.append(wake)

    def detach(self, wake: Callable[[], None]) -> None:
        """Stop waking that loop."""
        with self._lock:
            if wake in self._wakes:
                self._wakes.remove(wake)

    def __repr__(self) -> str:
        return f"<VirtualClock t={self._now} autojump={self._threshold}>"
