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
import logging
import os
import signal as _signal
import sys
import threading
import types
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from ._clock import Clock
from ._dispatch import Dispatch, Tree
from ._events import Event, Value, signal, started, stopped
from ._gcfreeze import freeze_startup, thaw_startup
from ._io import IO
from ._observe import Fanout, LoopObserver, fire_hook, observed_batch
from ._registry import Registry
from ._scheduling import Scheduling

__all__ = ["Loop", "current_loop"]

log = logging.getLogger("netcomp")

_local = threading.local()


def current_loop() -> Loop | None:
    """The loop running (or ticking) on this thread, ``None`` outside a loop."""
    return getattr(_local, "loop", None)


def _set_current_loop(loop: Loop | None) -> Loop | None:
    previous = getattr(_local, "loop", None)
    _local.loop = loop
    return previous


class Loop(Dispatch, Scheduling, IO):
    """The event loop of one component tree: queue, timers, callbacks, descriptors, clock.

    Made by the tree's root :class:`Manager`; reach it as ``component.loop``. ``clock``:
    where time comes from (default: the monotonic clock; ``netcomp.testing.VirtualClock``
    for tests).
    """

    # Class-level defaults for state most loops never change: CPython (3.11+) keeps an
    # instance's attributes in a compact array only while its class's instances use at
    # most 29 names, and reads them markedly faster then; every hot read of the loop
    # (``fire()``, each dispatched event) counts.
    _thread: threading.Thread | None = None
    #: A signal event is queued and not yet handled (set only by a signal).
    _signalled = False
    #: A handler raised SystemExit: run() raises it again (set only by ``exit()``).
    _exit_raises = False
    _process: Any = None
    _observers: tuple[LoopObserver, ...] = ()
    #: What the observed dispatch reports to (``None`` while nothing observes).
    observer: LoopObserver | None = None

    def __init__(self, clock: Clock | None = None) -> None:
        #: The tree's root manager (set by the Manager that makes the loop).
        self.root: Tree = None  # type: ignore[assignment]
        self.registry = Registry()
        self.queue: deque[Value] = deque()  # what fire() returned; its ``_event`` is queued
        self.waiters: dict[str, list[Any]] = {}
        self.current: Event | None = None
        #: Whether ``current`` is tracked for completion (what it fires is then tracked
        #: too): kept beside ``current`` so that ``fire()`` reads the loop, not the event.
        self.tracking = False
        self.in_dispatch: Event | None = None
        self._running = False
        #: Whether dispatch may go on with the next batch without asking (see
        #: ``_run_once``): set only there, cleared by whatever gives the loop other work.
        self._chain = False
        self._stopping = False
        self._sleeping = False
        self._thread_id: int | None = None
        self._exit_code: Any = None
        self._passes = 0
        IO.__init__(self)
        Scheduling.__init__(self, clock)

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

    # ---------------------------------------------------------------- audience
    def heard(self, kind: type[Event], channels: tuple[Any, ...]) -> bool:
        """Whether an event of class ``kind`` fired now on ``channels`` would reach
        anyone: a handler of its name or a catch-all one on those channels, a waiter for
        its name, an observer, or a feedback switch (``success``, ``failure``,
        ``complete``) turned on for the class.

        For a component that announces what happens and ignores the answer (net's
        ``connect`` and ``disconnect``): it skips making an event nobody hears (events
        that report a failure are always fired: nobody taking one is logged). Answers
        from the registry's cache: a dict lookup when nothing changed.
        """
        if kind._extras or self.observer is not None:
            return True
        name = kind.name
        try:
            handlers = self.registry.cache[name][channels][0]
        except KeyError:
            handlers = self.registry.lookup(name, channels)[0]
        return bool(handlers) or name in self.waiters

    # -------------------------------------------------------------- observers
    @property
    def observers(self) -> tuple[LoopObserver, ...]:
        """The observers attached with :meth:`observe`, in order."""
        return self._observers

    def observe(self, observer: LoopObserver) -> None:
        """Tell ``observer`` what this loop dispatches (a :class:`Trace`, the inspector's
        counters; see ``LoopObserver``) until :meth:`unobserve`.

        Only an observed loop pays for it: the first observer swaps this loop's
        ``dispatch_batch`` for the observed one and ``Manager.fire`` for one that reports
        (docs/architecture.md, "Observing a loop"). Safe from any thread; the batch being
        dispatched finishes the way it began.
        """
        if observer in self._observers:
            return
        self._set_observers((*self._observers, observer))

    def unobserve(self, observer: LoopObserver) -> None:
        """Stop telling ``observer``; the last one gives the loop its plain dispatch back."""
        if observer not in self._observers:
            return
        self._set_observers(tuple(o for o in self._observers if o is not observer))

    def _set_observers(self, observers: tuple[LoopObserver, ...]) -> None:
        was = bool(self._observers)
        self._observers = observers
        if not observers:
            self.observer = None
            self.__dict__.pop("dispatch_batch", None)  # the class's plain hot path again
        else:
            self.observer = observers[0] if len(observers) == 1 else Fanout(observers)
            self.dispatch_batch = types.MethodType(observed_batch, self)  # type: ignore[method-assign]
        if observers and not was:
            fire_hook.acquire()
            # A loop that is dropped while observed gives the plain fire back too.
            self._fire_release = weakref.finalize(self, fire_hook.release)
        elif was and not observers:
            self._fire_release()

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
        self._take_timers(other)
        for name, waiters in other.waiters.items():
            self.waiters.setdefault(name, []).extend(waiters)
        other.waiters.clear()
        self._take_watches(other)
        if other._reorder_pending and not self._reorder_pending:
            self._reorder_pending = True  # fire(priority=) before joining: sort here
            self.call_soon(self._reorder)
        for observer in other.observers:  # a trace of the subtree goes on in the tree
            other.unobserve(observer)
            self.observe(observer)
        other.close()
        if self._sleeping:
            self._wake()

    def close(self) -> None:
        """Release the selector and the wake-up descriptor (a loop that is done)."""
        self._clock.detach(self._wake)
        self._close_selector()

    # ------------------------------------------------------------------- pass
    def _run_once(self, timeout: float | None) -> None:
        """One loop pass: wait (at most ``timeout`` when idle), timers, callbacks, a batch."""
        self._passes += 1
        queue = self.queue
        ready = self._ready
        if queue or ready:
            if self._io_count:
                self._select(0)
        else:
            self._sleep(timeout)
        timers = self._timers
        if timers and timers[0][0] <= self.time():  # (_run_due only when one is due)
            self._run_due()
        if ready:
            for _ in range(len(ready)):
                callback, args = ready.popleft()
                self._run_callback(callback, args)
        if queue:
            if self._reorder_pending:  # a callback fired an event with a priority
                self._reorder()
            # Dispatch goes from batch to batch while nothing else needs the loop; one
            # flag says so, instead of four checks per batch. True first, then checked:
            # another thread that queues a callback meanwhile clears it after its append,
            # so no callback waits behind an endless chain of batches.
            self._chain = True
            if ready or self._io_count or timers or not self._running:
                self._chain = False
            self.dispatch_batch()

    def _sleep(self, timeout: float | None) -> None:
        """Nothing queued: wait for I/O, a wake-up or the next deadline (or ``timeout``)."""
        self._sleeping = True
        timers = self._timers  # _next_deadline(), inline: once per pass
        while timers and timers[0][2].cancelled:
            heapq.heappop(timers)  # a cancelled head must not wake the loop
        deadline = timers[0][0] if timers else None
        if self.queue or self._ready:
            timeout, deadline = 0, None
        elif deadline is not None:
            delay = self._clock.sleep_time(deadline)
            if delay is None or (timeout is not None and timeout < delay):
                deadline = None  # the wait is not the deadline's: not idle until it
            else:
                timeout = delay
        happened = self._select(timeout) if timeout != 0 or self._io_count else False
        if not happened and deadline is not None:
            self._clock.idle(deadline)  # a virtual clock may jump to the deadline now
        self._sleeping = False

    def _run_callback(self, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            callback(*args)
        except SystemExit as exit_:
            self.exit(exit_.code)
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

    def run(self, *, gc_freeze: bool = True) -> Any:
        """Run until :meth:`stop`; returns the code given to it, 0 when none was given
        (see ``Manager.run``). After :meth:`exit` it raises ``SystemExit(code)`` instead.

        ``gc_freeze``: on the main thread, once ``started`` is dispatched, move the objects
        alive then out of the garbage collector's way until ``run()`` returns (see
        ``Manager.run``).
        """
        if self._running and self._thread_id is not None:
            raise RuntimeError(f"{self.root!r} is already running")
        self._running = True
        self._stopping = False
        # Rarely set: instance attributes only once set (CPython's shared-keys budget;
        # reading ``__dict__`` would cost more: it moves the attributes into a dict).
        if self._signalled:
            self._signalled = False
        if self._exit_raises:
            self._exit_raises = False
        self._exit_code = None
        self._thread_id = threading.get_ident()
        self._ensure_selector()
        previous = _set_current_loop(self)
        saved = self._install_signals()
        freeze = gc_freeze and threading.current_thread() is threading.main_thread()
        try:
            if freeze:
                # The first pass's callbacks run before its batch (``started``'s
                # handlers); this one queues the freeze for the second pass, after them.
                # (Not on ``started``'s completion: that would track every event its
                # handlers fire, and wait for all of them.)
                self.call_soon(self.call_soon, freeze_startup, self)
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
            if freeze:
                thaw_startup(self)
            self._restore_signals(saved)
            _set_current_loop(previous)
            self._running = False
            self._thread_id = None
        if self._exit_raises:
            raise SystemExit(self._exit_code)
        return 0 if self._exit_code is None else self._exit_code

    # ----------------------------------------------------------------- signals
    def _install_signals(self) -> dict[int, Any]:
        """On the main thread: handle SIGINT and SIGTERM, and have Python's C-level
        handler write to a pipe the loop waits on (``signal.set_wakeup_fd``). Without
        it a signal that lands just before the loop enters its wait, or on another
        thread, would wait for the next wake-up to be handled. Returns what to restore
        (signal number to previous handler; key 0: the previous wake-up descriptor)."""
        saved: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return saved
        for signo in (_signal.SIGINT, _signal.SIGTERM):
            with contextlib.suppress(ValueError, OSError):  # embedded interpreters
                saved[signo] = _signal.signal(signo, self._on_signal)
        if saved:
            write_fd = self._open_signal_fd()
            try:
                saved[0] = _signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
            except (ValueError, OSError):
                self._close_signal_fd()
        return saved

    def _restore_signals(self, saved: dict[int, Any]) -> None:
        for signo, previous in saved.items():
            with contextlib.suppress(ValueError, OSError):
                if signo:
                    _signal.signal(signo, previous)
                else:
                    try:
                        _signal.set_wakeup_fd(previous)
                    finally:
                        self._close_signal_fd()

    def _on_signal(self, signo: int, frame: Any) -> None:
        if self._stopping or self._signalled:
            # A second signal while a graceful stop is under way, or while the first one
            # still waits for a busy (blocking) handler: stop waiting. KeyboardInterrupt is
            # not an Exception, so it leaves any handler it lands in; run() still runs the
            # components' loop_ended() hooks on its way out.
            raise KeyboardInterrupt(f"signal {signo} again while stopping: forced exit")
        self._signalled = True
        event = signal(signo, frame)
        value = self.enqueue(event, ("*",))

        def handled(_value: Any) -> None:
            self._signalled = False
            if not event.stopped:
                self.stop()

        value.add_done_callback(handled)

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
        event._when_complete(self._end_loop)
        event._when_complete(deadline.cancel)
        self.enqueue(event, ("*",))

    def exit(self, code: Any = None) -> None:
        """A handler raised ``SystemExit(code)``: stop gracefully, as :meth:`stop` does,
        then let ``SystemExit(code)`` out of :meth:`run`, so that a program whose last
        line is ``app.run()`` exits with that status (an int, or a message printed on
        stderr with status 1), as Python and circuits do. ``join()`` of a tree run by
        ``start()`` returns the code."""
        if self._running and self.on_loop_thread():
            self._exit_raises = True
        self.stop(code)

    def _end_loop(self) -> None:
        self._running = False
        self._chain = False
        self._wake()

    # ------------------------------------------------------------- start, join
    def start(
        self, process: bool = False, *, before_run: Callable[[], None] | None = None
    ) -> None:
        """Run in a new thread (or, with ``process=True``, a forked child process).

        ``before_run``: called in the child, before it runs the tree (``process=True``).
        """
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
            self._process = ctx.Process(
                target=self._child_main, args=(before_run,), name=name, daemon=True
            )
            self._process.start()
            return
        if self._process is not None:
            self._process = None
        self._thread = threading.Thread(target=self._thread_main, name=name, daemon=True)
        self._thread.start()

    def _thread_main(self) -> None:
        # A handler's SystemExit ends this thread only; join() returns its code.
        with contextlib.suppress(SystemExit):
            self.run()

    def _child_main(self, before_run: Callable[[], None] | None) -> None:  # pragma: no cover
        self._process = None  # (runs in the child process)
        if before_run is not None:
            before_run()
        code = self.run()
        for stream in (sys.stdout, sys.stderr):  # os._exit() flushes nothing itself
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code if isinstance(code, int) else 0)

    def join(self, timeout: float | None = None) -> Any:
        """Wait for a loop started with :meth:`start` to end; returns its exit code (0 for
        a stop given none), or ``None`` if it has not ended (never started, or still running
        after ``timeout`` seconds)."""
        if self._process is not None:
            self._process.join(timeout)
            return self._process.exitcode
        thread = self._thread
        if thread is None:
            return None  # never started
        thread.join(timeout)
        if thread.is_alive():
            return None  # still running after ``timeout``
        return 0 if self._exit_code is None else self._exit_code

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
