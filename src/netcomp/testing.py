"""Helpers for testing netcomp programs (and netcomp itself).

* :func:`running` runs a manager's loop in a thread, waits until ``started`` was handled,
  and on exit stops it and checks the thread really ended, with hard timeouts throughout.
* :class:`Recorder` is a component that records events and waits for them:
  ``recorder.wait_for("read", timeout=5)``.
* :class:`LoopWaits` records how a loop waits in its selector, to show that it sleeps
  (no polling) without waiting real time for it.
* :class:`VirtualClock` gives a loop virtual time: timers, timeouts and backoff of any
  length run in no real time (``running(app, clock=VirtualClock(autojump_threshold=0.1))``).
* :class:`VirtualTime` drives a loop's virtual clock from the test thread: ``advance()``
  moves it and returns once the loop has run what became due, so "not before the
  deadline, then at once" is checked exactly, in no real time.
* :class:`Trace` (``netcomp.core.Trace``) records what a loop dispatched;
  ``running(app, trace=True)`` records one and, when the block fails, saves it and names
  the file in the failure (:func:`save_failure_trace`).
* :func:`fire_and_flush` fires an event into a tree that is not running and dispatches
  until nothing is left.

Nothing here sleeps to synchronise: every wait is on a condition with a timeout.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from .core import BaseComponent, Clock, Event, Loop, Manager, Trace, Value, handler
from .core._clock import VirtualClock

__all__ = [
    "LoopWaits",
    "Recorder",
    "Trace",
    "VirtualClock",
    "VirtualTime",
    "fire_and_flush",
    "running",
    "save_failure_trace",
]

#: Real seconds of idleness after which a loop on a VirtualClock that never jumps by itself
#: jumps to its next deadline while :func:`running` stops it (lingering closes, the stop
#: timeout): a stop never hangs on time that nobody moves.
STOP_AUTOJUMP = 0.1


def _nothing() -> None:
    """A callback that only makes the loop take a turn."""


class Recorder(BaseComponent):
    """Records every event it hears (on ``channel``, default all) for later assertions.

    ``events`` is the list of events in dispatch order; ``errors`` the ``exception`` events.
    ``wait_for`` blocks the calling (test) thread until a matching event was recorded.
    """

    def __init__(self, channel: Any = "*", names: tuple[str, ...] = ()) -> None:
        """``names``: record only these event names (default: every event)."""
        super().__init__(channel=channel)
        self.names = frozenset(names)
        self.events: list[Event] = []
        #: The trace :func:`running` records with ``trace=`` (else ``None``).
        self.trace: Trace | None = None
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
    blocked in the kernel's wait with nothing ready (not while it runs the I/O callbacks
    that follow, nor when a descriptor was readable already). A loop blocked with no
    timeout costs no CPU until something happens: a test shows a loop does not poll by
    :meth:`wait_blocked` instead of watching real time pass.

    Predicates given to :meth:`wait_blocked` and :meth:`wait_idle` run while the loop is
    blocked, so they may read its state (``loop.scheduled()``, a component's attributes).
    :meth:`wait_idle` returns once the loop has done everything it can do now;
    :class:`VirtualTime` builds on it.
    """

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self.timeouts: list[float | None] = []
        self.blocked = False
        self._cond = threading.Condition()
        self._sleeps = 0  # idle waits begun (passes that found nothing queued)
        self._in_sleep = 0  # the idle wait in progress (0: none)
        self._blocked_in = 0  # the idle wait the loop is blocked in (0: not an idle one)
        self._reads = 0  # kernel waits that returned a descriptor other than the wake-up
        self._read_in = 0  # the idle wait in progress (or last begun) when one returned
        self._selector: Any = None
        real_select = loop._select
        real_sleep = loop._sleep

        def select(timeout: float | None) -> bool:
            if loop._selector is not self._selector:
                self._wrap(loop._selector)
            with self._cond:
                self.timeouts.append(timeout)
            return real_select(timeout)

        def sleep(timeout: float | None) -> None:
            with self._cond:
                self._sleeps += 1
                self._in_sleep = self._sleeps
            try:
                real_sleep(timeout)
            finally:
                with self._cond:
                    self._in_sleep = 0

        loop._select = select  # type: ignore[method-assign]
        loop._sleep = sleep  # type: ignore[method-assign]

    def _wrap(self, selector: Any) -> None:
        """Watch the kernel wait itself: ``blocked`` only while the loop thread is in it."""
        self._selector = selector
        loop = self.loop
        kernel = loop._poll  # the selector's select, or a native epoll's poll
        assert kernel is not None
        wakeup = loop._wakeup.fileno() if loop._wakeup is not None else -1
        cond = self._cond

        def wait(timeout: float | None = None, *more: Any) -> list[Any]:
            # what is ready already does not count as blocking
            ready: list[Any] = kernel(0, *more)
            if not ready and timeout != 0:
                with cond:
                    self.blocked = True
                    self._blocked_in = self._in_sleep
                    cond.notify_all()
                ready = kernel(timeout, *more)
            with cond:
                self.blocked = False
                # (epoll gives (fd, flags) pairs; a selector (key, mask) pairs)
                if any((k if k.__class__ is int else k.fd) != wakeup for k, _m in ready):
                    self._reads += 1
                    self._read_in = self._in_sleep or self._sleeps
                cond.notify_all()
            return ready

        loop._poll = wait

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

    def wait_idle(self, predicate: Callable[[], bool] | None = None, timeout: float = 5.0) -> None:
        """Block until the loop is idle in a wait it began after this call (and
        ``predicate()`` holds then): nothing queued, no callback ready, no timer due on its
        clock as read after this call. What it had to do by now is done.

        Bytes already waiting in a socket are read first; I/O still in flight from another
        thread is not waited for: wait for its effect (an event, a reply), or send it inside
        :meth:`reading`. ``TimeoutError`` after ``timeout`` real seconds.
        """
        with self._cond:
            mark = self._sleeps
        self.loop.call_soon_threadsafe(_nothing)  # a loop asleep since before takes a turn
        self._wait_idle_after(lambda: mark, predicate, timeout, "become idle")

    @contextlib.contextmanager
    def reading(self, timeout: float = 5.0) -> Iterator[None]:
        """``with waits.reading(): sock.sendall(data)``: on leaving the block, wait until the
        loop has read from a descriptor (after the block began) and is idle again.

        For bytes sent to the loop on an established connection, so that what they cause
        happens before the test goes on; any descriptor but the loop's wake-up counts, so
        use it while no other peer sends. ``TimeoutError`` after ``timeout`` real seconds.
        """
        with self._cond:
            mark = self._reads
        yield

        def read_in() -> int | None:
            return self._read_in if self._reads > mark else None

        self._wait_idle_after(read_in, None, timeout, "read and become idle")

    def _wait_idle_after(
        self,
        mark: Callable[[], int | None],
        predicate: Callable[[], bool] | None,
        timeout: float,
        what: str,
    ) -> None:
        def idle() -> bool:
            after = mark()
            return (
                self.blocked
                and after is not None
                and self._blocked_in > after
                and (predicate is None or predicate())
            )

        with self._cond:
            if not self._cond.wait_for(idle, timeout):
                raise TimeoutError(
                    f"the loop did not {what} within {timeout} s; last waits "
                    f"{self.timeouts[-5:]}, {self.loop!r}"
                )


class VirtualTime:
    """Drives a loop's :class:`VirtualClock` from the test thread, deterministically.

    ``VirtualTime(manager.loop)`` (before the loop runs) gives the loop a VirtualClock that
    moves only when told, and watches its waits (a :class:`LoopWaits`, ``waits``). With
    the loop running (:func:`running`):

    * ``advance(seconds)`` moves time forward one deadline at a time, as real time would,
      letting the loop run what each one causes; it returns once the loop is idle at the
      new time. "Nothing before the deadline, then it happens" reads
      ``advance(delay - step)``, check, ``advance(step)``, check;
    * ``settle()`` returns once the loop did everything it can at the current time;
    * ``advance_to_next()`` moves time to the next deadline only;
    * ``wait_timer(when)`` waits until a timer is due at ``when`` (the loop has armed a
      timeout, say), ``deadlines()`` lists the pending ones;
    * ``with time.reading(): sock.sendall(...)`` returns once the loop has read it.

    Sockets stay real: only time is virtual, so no test waits for a timeout.
    """

    def __init__(self, loop: Loop, clock: VirtualClock | None = None) -> None:
        current = loop.clock
        if clock is None:
            clock = current if isinstance(current, VirtualClock) else VirtualClock()
        if clock is not current:
            loop.clock = clock  # RuntimeError if the loop runs
        self.loop = loop
        self.clock = clock
        self.waits = LoopWaits(loop)

    @property
    def now(self) -> float:
        """The current virtual time."""
        return self.clock.time()

    def settle(self, timeout: float = 5.0) -> None:
        """Return once the loop has done all it can at the current time (see
        :meth:`LoopWaits.wait_idle`); ``timeout`` is in real seconds."""
        self.waits.wait_idle(timeout=timeout)

    def deadlines(self, timeout: float = 5.0) -> list[float]:
        """Once the loop is idle: when its pending timers are due, soonest first."""
        found: list[float] = []

        def read() -> bool:
            found[:] = [handle.when for handle in self.loop.scheduled()]
            return True

        self.waits.wait_idle(read, timeout)
        return found

    def wait_timer(self, when: float, timeout: float = 5.0) -> None:
        """Return once the loop is idle with a timer due at ``when`` (exactly)."""
        self.waits.wait_idle(
            lambda: any(handle.when == when for handle in self.loop.scheduled()), timeout
        )

    def advance(self, seconds: float, timeout: float = 5.0) -> None:
        """Move time ``seconds`` forward, stopping at each deadline on the way (each timer
        fires at its own time, and what it causes happens before the next one); return
        once the loop is idle at the new time."""
        if seconds < 0:
            raise ValueError(f"time only goes forward; advance() got {seconds}")
        self.advance_to(self.clock.time() + seconds, timeout)

    def advance_to(self, when: float, timeout: float = 5.0) -> None:
        """Like :meth:`advance`, up to the time ``when``."""
        for _ in range(100_000):
            due = [t for t in self.deadlines(timeout) if t <= when]
            if not due:
                self.clock.jump(when)
                self.settle(timeout)
                return
            self.clock.jump(due[0])  # the loop wakes and runs it; deadlines() waits for that
        raise RuntimeError(f"timers keep coming before {when}: is one re-armed with no delay?")

    def advance_to_next(self, timeout: float = 5.0) -> float:
        """Move time to the next deadline (a backoff delay whose length is random, say),
        return once the loop is idle there; returns the new time. ``LookupError`` if no
        timer is pending."""
        deadlines = self.deadlines(timeout)
        if not deadlines:
            raise LookupError("no timer is pending: there is no next deadline")
        self.advance_to(deadlines[0], timeout)
        return self.clock.time()

    def reading(self, timeout: float = 5.0) -> contextlib.AbstractContextManager[None]:
        """``with time.reading(): sock.sendall(data)``: see :meth:`LoopWaits.reading`."""
        return self.waits.reading(timeout)

    def __repr__(self) -> str:
        return f"<VirtualTime t={self.clock.time()} of {self.loop!r}>"


def fire_and_flush(manager: Manager, event: Event, *channels: Hashable) -> Value:
    """Fire an event and dispatch until nothing is left; returns the Value.

    For a tree whose loop is not running: ``manager.flush()`` runs the event and whatever
    it causes (not timers, which are for the clock to bring).
    """
    value = manager.fire(event, *channels)
    manager.flush()
    return value


@contextlib.contextmanager
def running(
    manager: Manager,
    timeout: float = 10.0,
    check_errors: bool = True,
    stop_channels: tuple[Hashable, ...] = (),
    clock: Clock | None = None,
    trace: Trace | int | bool | None = None,
    record: tuple[str, ...] = (),
) -> Iterator[Recorder]:
    """Run ``manager``'s loop in a thread for the ``with`` block; yield a :class:`Recorder`.

    Waits (at most ``timeout`` real seconds) for ``started`` to be handled. On exit: stops
    the loop, joins the thread (failing if it does not end within ``timeout``) and, with
    ``check_errors``, raises ``AssertionError`` if any handler raised while it ran.
    ``clock``: give the loop this clock first (a :class:`VirtualClock`, say). A virtual
    clock that never jumps by itself jumps after ``STOP_AUTOJUMP`` idle real seconds while
    the loop stops (so lingering closes end as they would in real time).
    ``trace``: record a :class:`Trace` (``True``, a capacity, or a Trace) as
    ``recorder.trace``; if the block raises, or handlers raised, it is saved and the
    failure says where (:func:`save_failure_trace`). ``record``: the recorder keeps only
    events of these names (and ``started``, ``exception``), so a long transfer's data
    events are not all held (default: every event).
    """
    if clock is not None:
        manager.loop.clock = clock
    recorder = Recorder(names=(*record, "started") if record else ())
    recorder.register(manager)
    if trace is not None and trace is not False:
        recorder.trace = _make_trace(trace).attach(manager)
    manager.loop.start()
    try:
        recorder.wait_for("started", timeout)
        yield recorder
    except BaseException as failure:
        if recorder.trace is not None:
            save_failure_trace(recorder.trace, failure)
        raise
    finally:
        loop = manager.loop
        with _jumping_while_stopping(loop.clock):
            loop.stop()
            loop.join(timeout)
        thread = loop.thread
        if thread is not None and thread.is_alive():
            raise AssertionError(f"{manager!r} did not stop within {timeout} s")
        recorder.unregister()
        loop.flush()
    if recorder.trace is not None:
        recorder.trace.detach()
    if check_errors and recorder.errors:
        details = "; ".join(repr(e.args[1]) for e in recorder.errors)
        errors = AssertionError(f"handlers raised while the manager ran: {details}")
        if recorder.trace is not None:
            save_failure_trace(recorder.trace, errors)
        raise errors


def _make_trace(trace: Trace | int | bool) -> Trace:
    if isinstance(trace, Trace):
        return trace
    if trace is True:
        return Trace()
    if isinstance(trace, int):
        return Trace(trace)
    raise TypeError(f"trace must be a Trace, a capacity or True, not {trace!r}")


#: Records of a failing test's trace shown in the failure itself (the file has them all).
FAILURE_LINES = 12


def save_failure_trace(trace: Trace, failure: BaseException, name: str | None = None) -> str:
    """Save ``trace`` for a failed test and tell the failure where it is.

    The file is ``NAME.jsonl`` in ``$NETCOMP_TRACE_DIR`` (default: ``netcomp-traces`` in
    the temporary directory); ``name`` defaults to the pytest test running now. The last
    records and the path are added to ``failure`` as a note (Python 3.11+) or written to
    standard error (3.10), where pytest shows them with the failure. Returns the path;
    ``netcomp graph PATH -o trace.svg`` draws it as a sequence diagram.
    """
    directory = os.environ.get("NETCOMP_TRACE_DIR") or os.path.join(
        tempfile.gettempdir(), "netcomp-traces"
    )
    os.makedirs(directory, exist_ok=True)
    if name is None:
        current = os.environ.get("PYTEST_CURRENT_TEST", "trace").split(" ")[0]
        name = current
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:150] or "trace"
    path = os.path.join(directory, f"{safe}.jsonl")
    trace.save(path)
    records = trace.records
    lines = [r.line() for r in records[-FAILURE_LINES:]]
    note = (
        f"netcomp trace of this test: {path} ({len(records)} events, "
        f"{trace.dropped} dropped; draw it: netcomp graph {path} -o trace.svg)"
    )
    if lines:
        note += "\nlast events:\n  " + "\n  ".join(lines)
    add_note = getattr(failure, "add_note", None)
    if add_note is not None:
        add_note(note)
    else:  # Python 3.10
        print(note, file=sys.stderr)
    return path


@contextlib.contextmanager
def _jumping_while_stopping(clock: Clock) -> Iterator[None]:
    if not isinstance(clock, VirtualClock) or clock.autojump_threshold != math.inf:
        yield
        return
    clock.autojump_threshold = STOP_AUTOJUMP
    try:
        yield
    finally:
        clock.autojump_threshold = math.inf
