"""The Loop: the one event loop of a component tree, owned by the tree's root.

Rules (docs/architecture.md, "The loop"):
* One loop per tree. Every component reaches it as ``self.loop``; a component that is not
  in a tree has a loop of its own, whose queue, callbacks, timers, waiters and watches move
  into the root's loop when it joins a tree (``absorb``).
* The loop never calls a method through a component instance except the two hooks
  ``loop_changed()`` and ``loop_ended()``, which a ``Component`` may not use as handler
  names: no handler name can break it.
* One pass: wait (in the selector, until the next deadline or a wake-up), run the due
  timers, the callbacks queued so far, then one batch of events.
* ``fire()`` and ``call_soon_threadsafe()`` are safe from any thread: a deque append, plus a
  wake-up write only while the loop sleeps (``_sleeping`` is set *before* the loop re-checks
  its queues, so no wake-up is lost).
* Time is read from the loop's clock (``time()``), never from ``time.monotonic()`` directly,
  so a :class:`VirtualClock` can stand in for it.
* The low-level API (``call_soon``, ``call_soon_threadsafe``, ``call_later``, ``call_at``,
  ``time``, ``watch``, ``running``, ``stopping``, ``on_loop_thread``) is the only door the
  net and web layers use.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import selectors
import signal as _signal
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._clock import Clock, MonotonicClock
from ._dispatch import Dispatch
from ._events import Event, signal, started, stopped
from ._handles import TimerHandle, Watch
from ._registry import Registry
from ._tasks import _set_current_loop
from ._wakeup import Wakeup

if TYPE_CHECKING:
    from ._manager import Manager

__all__ = ["Loop"]

log = logging.getLogger("netcomp")

_TIMERS_COMPACT = 1024  # heap size from which cancelled timers are swept out


class Loop(Dispatch):
    """The event loop of one component tree: queue, timers, callbacks, descriptors, clock.

    Made by the tree's root :class:`Manager`; reach it as ``component.loop``. ``clock``:
    where time comes from (default: the monotonic clock; ``netcomp.testing.VirtualClock``
    for tests).
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.root: Manager = None  # type: ignore[assignment]  # set by the Manager
        self.registry = Registry()
        self.queue: deque[Event] = deque()
        self.waiters: dict[str, list[Any]] = {}
        self.current: Event | None = None
        self.in_dispatch: Event | None = None
        self._ready: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._timers: list[tuple[float, int, TimerHandle]] = []
        self._timer_seq = itertools.count()
        self._timers_compact_at = _TIMERS_COMPACT
        self._running = False
        self._stopping = False
        self._sleeping = False
        self._thread_id: int | None = None
        self._exit_code: Any = None
        self._wakeup: Wakeup | None = None
        self._selector: selectors.BaseSelector | None = None
        self._selector_class: type[selectors.BaseSelector] = selectors.DefaultSelector
        self._watches: set[Watch] = set()
        self._io_count = 0  # watches with an interest: the selector has work
        self._passes = 0
        self._thread: threading.Thread | None = None
        self._process: Any = None
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        self.time: Callable[[], float] = self._clock.time
        self._clock.attach(self._wake)

    # ------------------------------------------------------------------ clock
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

    # --------------------------------------------------------- scheduling API
    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop thread after the current batch."""
        self._ready.append((callback, args))

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None:
        """Like :meth:`call_soon`, from any thread; wakes the loop."""
        self._ready.append((callback, args))
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
        if self._sleeping and timers[0][2] is handle:
            self._wake()
        return handle

    def scheduled(self) -> list[TimerHandle]:
        """The timers not yet run nor cancelled, soonest first."""
        return [h for _w, _s, h in sorted(self._timers) if not h.cancelled]

    # ------------------------------------------------------------ descriptors
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
        old, self._selector = self._selector, None
        if old is not None:
            wakeup, self._wakeup = self._wakeup, None
            old.close()
            if wakeup is not None:
                wakeup.close()
            self._ensure_selector()

    def _watch_add(self, watch: Watch) -> None:
        self._watches.add(watch)
        if watch.events:
            self._io_count += 1
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

    def _ensure_selector(self) -> None:
        if self._selector is not None:
            return
        self._wakeup = Wakeup()
        selector = self._selector = self._selector_class()
        selector.register(self._wakeup.fileno(), selectors.EVENT_READ, None)
        for watch in self._watches:
            if watch.events:
                selector.register(watch.fileobj, watch.events, watch.callback)

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None:
            wakeup.wake()

    # ------------------------------------------------------------------ state
    @property
    def running(self) -> bool:
        """Whether the loop runs (in this process, a thread, or a child process)."""
        if self._process is not None:
            return bool(self._process.is_alive())
        return self._running

    @property
    def stopping(self) -> bool:
        """Whether a graceful stop is under way (``stopped`` fired, the loop not yet out)."""
        return self._stopping

    @property
    def passes(self) -> int:
        """How many loop passes ran so far (a loop with nothing to do makes none)."""
        return self._passes

    def stats(self) -> dict[str, int]:
        """A snapshot for diagnostics: ``queued`` events, ``callbacks`` waiting, ``timers``
        live, ``timer_heap`` entries (cancelled ones not yet swept included), ``watched``
        descriptors, ``passes`` made."""
        return {
            "queued": len(self.queue),
            "callbacks": len(self._ready),
            "timers": sum(1 for item in self._timers if not item[2].cancelled),
            "timer_heap": len(self._timers),
            "watched": self._io_count,
            "passes": self._passes,
        }

    def on_loop_thread(self) -> bool:
        """Whether the caller runs on the thread this loop runs (or last ticked) on."""
        return threading.get_ident() == self._thread_id

    # ------------------------------------------------------------------ merge
    def absorb(self, other: Loop) -> None:
        """Take over what ``other`` holds (its tree joined this loop's tree)."""
        for entry in other.registry.entries():
            self.registry.add(entry)
        other.registry = Registry()
        self.queue.extend(other.queue)
        other.queue.clear()
        self._ready.extend(other._ready)
        other._ready.clear()
        offset = self.time() - other.time()
        for when, _seq, handle in other._timers:
            if not handle.cancelled:
                handle.when = when + offset
                heapq.heappush(self._timers, (handle.when, next(self._timer_seq), handle))
        other._timers.clear()
        for name, waiters in other.waiters.items():
            self.waiters.setdefault(name, []).extend(waiters)
        other.waiters.clear()
        for watch in list(other._watches):
            watch.move(self)
        other.close()
        if self._sleeping:
            self._wake()

    def close(self) -> None:
        """Release the selector and the wake-up descriptor (a loop that is done)."""
        self._clock.detach(self._wake)
        selector, self._selector = self._selector, None
        if selector is not None:
            selector.close()
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None:
            wakeup.close()

    # ------------------------------------------------------------------- pass
    def _run_once(self, timeout: float | None) -> None:
        """One loop pass: wait (at most ``timeout`` when idle), timers, callbacks, a batch."""
        self._passes += 1
        queue = self.queue
        ready = self._ready
        timers = self._timers
        if queue or ready:
            if self._io_count:
                self._select(0)
        else:
            self._sleep(timeout)
        if timers:
            now = self.time()
            while timers and timers[0][0] <= now:
                handle = heapq.heappop(timers)[2]
                if not handle.cancelled:
                    self._run_callback(handle.callback, handle.args)
        if ready:
            for _ in range(len(ready)):
                callback, args = ready.popleft()
                self._run_callback(callback, args)
        if queue:
            self.dispatch_batch()

    def _sleep(self, timeout: float | None) -> None:
        """Nothing queued: wait for I/O, a wake-up or the next deadline (or ``timeout``)."""
        self._sleeping = True
        timers = self._timers
        while timers and timers[0][2].cancelled:
            heapq.heappop(timers)  # a cancelled head must not wake the loop
        deadline = None
        if self.queue or self._ready:
            timeout = 0
        elif timers:
            deadline = timers[0][0]
            delay = self._clock.sleep_time(deadline)
            if delay is None or (timeout is not None and timeout < delay):
                deadline = None  # the wait is not the deadline's: not idle until it
            else:
                timeout = delay
        happened = self._select(timeout) if timeout != 0 or self._io_count else False
        if not happened and deadline is not None:
            self._clock.idle(deadline)  # a virtual clock may jump to the deadline now
        self._sleeping = False

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

    def _run_callback(self, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            callback(*args)
        except SystemExit as exit_:
            self.stop(exit_.code)
        except Exception:
            log.exception("error in loop callback %r", callback)

    # -------------------------------------------------------------- run, tick
    def tick(self, timeout: float | None = 0) -> None:
        """Run one loop pass; when idle, wait for timers or a wake-up up to ``timeout`` s."""
        if self._running and not self.on_loop_thread():
            raise RuntimeError("tick() called from outside the running loop's thread")
        self._ensure_selector()
        previous_thread = self._thread_id
        self._thread_id = threading.get_ident()
        previous = _set_current_loop(self)
        try:
            self._run_once(timeout)
        finally:
            _set_current_loop(previous)
            if not self._running:
                self._thread_id = previous_thread

    def flush(self, limit: int = 100_000) -> None:
        """Dispatch queued events and callbacks, and what they fire, until none are left.

        Does not wait for timers. ``limit`` bounds the number of passes (events that fire
        each other forever would otherwise never let it return).
        """
        for _ in range(limit):
            if not (self.queue or self._ready):
                return
            self.tick(0)

    def run(self) -> Any:
        """Run until :meth:`stop`; returns the exit code given to it (see ``Manager.run``)."""
        if self._running and self._thread_id is not None:
            raise RuntimeError(f"{self.root!r} is already running")
        self._running = True
        self._stopping = False
        self._exit_code = None
        self._thread_id = threading.get_ident()
        self._ensure_selector()
        previous = _set_current_loop(self)
        saved = self._install_signals()
        try:
            self.enqueue(started(self.root), ("*",))
            run_once = self._run_once
            while self._running:
                run_once(None)
        finally:
            for member in list(self.root.walk()):
                try:
                    member.loop_ended()
                except Exception:  # one component's cleanup never blocks the others'
                    log.exception("error while %r cleaned up after its loop", member)
            self._restore_signals(saved)
            _set_current_loop(previous)
            self._running = False
            self._thread_id = None
        return self._exit_code

    # ----------------------------------------------------------------- signals
    def _install_signals(self) -> dict[int, Any]:
        saved: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return saved
        for signo in (_signal.SIGINT, _signal.SIGTERM):
            with contextlib.suppress(ValueError, OSError):  # embedded interpreters
                saved[signo] = _signal.signal(signo, self._on_signal)
        return saved

    def _restore_signals(self, saved: dict[int, Any]) -> None:
        for signo, previous in saved.items():
            with contextlib.suppress(ValueError, OSError):
                _signal.signal(signo, previous)

    def _on_signal(self, signo: int, frame: Any) -> None:
        event = signal(signo, frame)
        value = self.enqueue(event, ("*",))
        value.add_done_callback(lambda _v: None if event.stopped else self.stop())

    # -------------------------------------------------------------------- stop
    def stop(self, code: Any = None) -> None:
        """Stop gracefully: ``stopped`` is fired and handled, then :meth:`run` returns.

        Safe from any thread. ``code`` becomes ``run()``'s return value. A loop started
        with ``start(process=True)`` is sent SIGTERM (the child stops gracefully).
        """
        if self._process is not None:
            if self._process.is_alive():
                os.kill(self._process.pid, _signal.SIGTERM)
            return
        if not self._running:
            return
        if not self.on_loop_thread():
            self.call_soon_threadsafe(self.stop, code)
            return
        if self._stopping:
            if code is not None:
                self._exit_code = code
            return
        self._stopping = True
        self._exit_code = code
        event = stopped(self.root)
        deadline = self.call_later(self.root.stop_timeout, self._end_loop)
        event._on_complete = [self._end_loop, deadline.cancel]
        self.enqueue(event, ("*",))

    def _end_loop(self) -> None:
        self._running = False
        self._wake()

    # ------------------------------------------------------------- start, join
    def start(self, process: bool = False) -> None:
        """Run in a new thread (or, with ``process=True``, a forked child process)."""
        if self.running or (self._thread is not None and self._thread.is_alive()):
            raise RuntimeError(f"{self.root!r} is already running")
        name = f"netcomp-{type(self.root).__name__}"
        if process:
            others = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
            if others:
                raise RuntimeError(
                    "start(process=True) forks this process, and forking while other threads "
                    f"run is unsafe (running: {', '.join(others)}); start the process before "
                    "any thread, or create the process yourself and run() the tree in it"
                )
            import multiprocessing

            ctx = multiprocessing.get_context("fork")
            self._process = ctx.Process(target=self._child_main, name=name, daemon=True)
            self._process.start()
            return
        self._process = None
        self._thread = threading.Thread(target=self.run, name=name, daemon=True)
        self._thread.start()

    def _child_main(self) -> None:  # pragma: no cover - runs in the child process
        self._process = None
        code = self.run()
        os._exit(code if isinstance(code, int) else 0)

    def join(self, timeout: float | None = None) -> Any:
        """Wait for a loop started with :meth:`start` to end; returns its exit code."""
        if self._process is not None:
            self._process.join(timeout)
            return self._process.exitcode
        if self._thread is not None:
            self._thread.join(timeout)
        return self._exit_code

    @property
    def thread(self) -> threading.Thread | None:
        """The thread :meth:`start` made (``None`` before, or for a process)."""
        return self._thread

    @property
    def process(self) -> Any:
        """The child process ``start(process=True)`` made, if any."""
        return self._process

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (
            f"<Loop of {type(self.root).__name__} {state} queued={len(self.queue)} "
            f"timers={len(self._timers)} watched={self._io_count}>"
        )
