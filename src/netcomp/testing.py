"""Helpers for testing netcomp programs (and netcomp itself).

* :func:`running` runs a manager's loop in a thread, waits until ``started`` was handled,
  and on exit stops it and checks the thread really ended, with hard timeouts throughout.
* :class:`Recorder` is a component that records events and waits for them:
  ``recorder.wait_for("read", timeout=5)``.
* :class:`LoopWaits` records how a loop waits in its selector, to show that it sleeps
  (no polling) without waiting real time for it.
* :class:`VirtualClock` gives a loop virtual time: timers, timeouts and backoff of any
  length run in no real time (``running(app, clock=VirtualClock(autojump_threshold=0.02))``).

Nothing here sleeps to synchronise: every wait is on a condition with a timeout.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from .core import BaseComponent, Clock, Event, Loop, Manager, handler
from .core._clock import VirtualClock

__all__ = ["LoopWaits", "Recorder", "VirtualClock", "running"]


class Recorder(BaseComponent):
    """Records every event it hears (on ``channel``, default all) for later assertions.

    ``events`` is the list of events in dispatch order; ``errors`` the ``exception`` events.
    ``wait_for`` blocks the calling (test) thread until a matching event was recorded.
    """

    def init(self, channel: Any = "*", names: tuple[str, ...] = ()) -> None:
        """``names``: record only these event names (default: every event)."""
        self.channel = channel
        self.names = frozenset(names)
        self.events: list[Event] = []
        self._cond = threading.Condition()

    @handler(priority=1000)
    def _record(self, event: Event, *args: Any, **kwargs: Any) -> None:
        if self.names and event.name not in self.names and event.name != "exception":
            return
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()
        if event.value is not None:
            event.value.add_done_callback(self._value_done)

    def _value_done(self, _value: Any) -> None:
        with self._cond:
            self._cond.notify_all()

    @property
    def errors(self) -> list[Event]:
        """The ``exception`` events recorded so far."""
        with self._cond:
            return [e for e in self.events if e.name == "exception"]

    def names_seen(self) -> list[str]:
        """The names of the recorded events, in order."""
        with self._cond:
            return [e.name for e in self.events]

    def count(self, name: str) -> int:
        """How many events named ``name`` were recorded."""
        with self._cond:
            return sum(1 for e in self.events if e.name == name)

    def wait_for(
        self,
        name: str,
        timeout: float = 5.0,
        predicate: Callable[[Event], bool] | None = None,
        count: int = 1,
        done: bool = True,
    ) -> Event:
        """Block until ``count`` events named ``name`` (matching ``predicate``) were seen.

        With ``done`` (default) it also waits until the last one's handlers have all
        finished, so its value is final. Returns that event; raises ``TimeoutError`` with
        what was seen otherwise.
        """
        deadline = time.monotonic() + timeout

        def found() -> Event | None:
            matches = [
                e for e in self.events if e.name == name and (predicate is None or predicate(e))
            ]
            return matches[count - 1] if len(matches) >= count else None

        with self._cond:
            while True:
                event = found()
                if event is not None:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [e.name for e in self.events][-20:]
                    raise TimeoutError(
                        f"no {count} x {name!r} event within {timeout} s; last seen: {seen}"
                    )
                self._cond.wait(remaining)
            if done:
                value = event.value
                while value is not None and not value.result:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(f"{event!r} was seen but not done within {timeout} s")
                    self._cond.wait(remaining)
        return event

    def clear(self) -> None:
        """Forget what was recorded."""
        with self._cond:
            self.events.clear()


class LoopWaits:
    """Records each time ``loop`` waits in its selector, with the timeout it waits with.

    ``timeouts`` lists them (``None``: until woken); ``blocked`` is true while the loop is
    in (or entering) such a wait. A loop blocked with no timeout costs no CPU until
    something happens: a test shows a loop does not poll by :meth:`wait_blocked` instead
    of watching real time pass.
    """

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self.timeouts: list[float | None] = []
        self.blocked = False
        self._cond = threading.Condition()
        real = loop._select

        def select(timeout: float | None) -> bool:
            with self._cond:
                self.timeouts.append(timeout)
                self.blocked = True
                self._cond.notify_all()
            try:
                return real(timeout)
            finally:
                with self._cond:
                    self.blocked = False
                    self._cond.notify_all()

        loop._select = select  # type: ignore[method-assign]

    def count(self) -> int:
        """How many waits so far."""
        with self._cond:
            return len(self.timeouts)

    def wait_blocked(
        self, predicate: Callable[[], bool] | None = None, timeout: float = 5.0
    ) -> float | None:
        """Block until the loop is waiting in its selector (and ``predicate()`` holds);
        return the timeout it waits with. Raises ``TimeoutError`` after ``timeout`` s."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: self.blocked and (predicate is None or predicate()), timeout
            )
            if not ok:
                raise TimeoutError(
                    f"the loop did not block within {timeout} s; last waits {self.timeouts[-5:]}"
                )
            return self.timeouts[-1]


@contextlib.contextmanager
def running(
    manager: Manager,
    timeout: float = 10.0,
    check_errors: bool = True,
    stop_channels: tuple[Hashable, ...] = (),
    clock: Clock | None = None,
) -> Iterator[Recorder]:
    """Run ``manager``'s loop in a thread for the ``with`` block; yield a :class:`Recorder`.

    Waits (at most ``timeout`` real seconds) for ``started`` to be handled. On exit: stops
    the loop, joins the thread (failing if it does not end within ``timeout``) and, with
    ``check_errors``, raises ``AssertionError`` if any handler raised while it ran.
    ``clock``: give the loop this clock first (a :class:`VirtualClock`, say).
    """
    if clock is not None:
        manager.loop.clock = clock
    recorder = Recorder()
    recorder.register(manager)
    manager.loop.start()
    try:
        recorder.wait_for("started", timeout)
        yield recorder
    finally:
        loop = manager.loop
        loop.stop()
        loop.join(timeout)
        thread = loop.thread
        if thread is not None and thread.is_alive():
            raise AssertionError(f"{manager!r} did not stop within {timeout} s")
        recorder.unregister()
        loop.flush()
    if check_errors and recorder.errors:
        details = "; ".join(repr(e.args[1]) for e in recorder.errors)
        raise AssertionError(f"handlers raised while the manager ran: {details}")
