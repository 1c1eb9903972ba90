"""Observing a loop: what its dispatch does, told to observers (traces, counters).

Rules (docs/architecture.md, "Observing a loop"):
* An unobserved loop pays nothing: ``Loop.dispatch_batch`` is the plain hot path, and
  ``Manager.fire`` is the plain one. ``Loop.observe(observer)`` swaps that loop's
  ``dispatch_batch`` for :func:`observed_batch` (an instance attribute shadowing the
  method), and while any loop in the process is observed ``Manager.fire`` is swapped for
  a version that tells the loop's observers who fired what. The last ``unobserve`` swaps
  both back: there is no per-event ``if``.
* :func:`observed_batch` keeps the plain path's semantics exactly (order, values, errors,
  ``stop()``, async handlers, finishing); it only reports around each handler.
* Observers run on the loop thread, except :meth:`LoopObserver.fired`, which runs on the
  thread that fires. An observer must not raise: its error leaves the loop's ``run()``,
  as a bug in the loop would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from time import perf_counter
from types import CoroutineType, GeneratorType
from typing import Any, Protocol
from weakref import ref as _weak

from ._events import Event, Value
from ._future import Future
from ._registry import HandlerEntry

__all__ = ["Fanout", "LoopObserver", "fire_hook", "observed_batch"]

_ASYNC_RESULT = (CoroutineType, GeneratorType, Value, Future)


class LoopObserver(Protocol):
    """What :meth:`Loop.observe` takes: told what the loop's dispatch does.

    ``fired(source, event)``: ``source.fire(event)`` is about to queue ``event`` (on the
    firing thread; ``event.channels`` are not set yet). ``dispatching(event, handlers)``:
    the loop takes ``event`` from its queue; ``handlers`` are the entries it will meet.
    ``running(event, entry)`` / ``ran(event, entry, seconds, error)``: around each
    handler call (``error``: what it raised, else ``None``). ``dispatched(event)``: its
    handlers have run (coroutine and generator handlers may still be working: see
    ``event.value``).
    """

    def fired(self, source: Any, event: Event) -> None:
        """``source.fire(event)`` is about to queue ``event`` (on the firing thread)."""

    def dispatching(self, event: Event, handlers: tuple[HandlerEntry, ...]) -> None:
        """The loop takes ``event`` from its queue; it will meet ``handlers``."""

    def running(self, event: Event, entry: HandlerEntry) -> None:
        """``entry``'s handler is about to be called for ``event``."""

    def ran(
        self, event: Event, entry: HandlerEntry, seconds: float, error: BaseException | None
    ) -> None:
        """``entry``'s handler returned (or raised ``error``) after ``seconds``."""

    def dispatched(self, event: Event) -> None:
        """``event``'s handlers have run (async ones may still be working)."""


class Fanout:
    """Several observers seen as one (in the order they were attached)."""

    def __init__(self, observers: tuple[LoopObserver, ...]) -> None:
        self.observers = observers

    def fired(self, source: Any, event: Event) -> None:
        """Tell each observer."""
        for observer in self.observers:
            observer.fired(source, event)

    def dispatching(self, event: Event, handlers: tuple[HandlerEntry, ...]) -> None:
        """Tell each observer."""
        for observer in self.observers:
            observer.dispatching(event, handlers)

    def running(self, event: Event, entry: HandlerEntry) -> None:
        """Tell each observer."""
        for observer in self.observers:
            observer.running(event, entry)

    def ran(
        self, event: Event, entry: HandlerEntry, seconds: float, error: BaseException | None
    ) -> None:
        """Tell each observer."""
        for observer in self.observers:
            observer.ran(event, entry, seconds, error)

    def dispatched(self, event: Event) -> None:
        """Tell each observer."""
        for observer in self.observers:
            observer.dispatched(event)


# ------------------------------------------------------------------ fire hook
class _FireHook:
    """Swaps ``Manager.fire`` while at least one loop in the process is observed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.owner: type | None = None
        self.plain: Callable[..., Any] | None = None
        self.observed: Callable[..., Any] | None = None

    def install(
        self, owner: type, plain: Callable[..., Any], observed: Callable[..., Any]
    ) -> None:
        """Say which class's ``fire`` to swap, and for what (``_manager`` does, at import)."""
        self.owner, self.plain, self.observed = owner, plain, observed

    def acquire(self) -> None:
        """One more observed loop: the observed ``fire`` is in place."""
        with self.lock:
            self.count += 1
            if self.count == 1 and self.owner is not None:
                self.owner.fire = self.observed  # type: ignore[attr-defined]

    def release(self) -> None:
        """One observed loop fewer: the last one puts the plain ``fire`` back."""
        with self.lock:
            self.count -= 1
            if self.count == 0 and self.owner is not None:
                self.owner.fire = self.plain  # type: ignore[attr-defined]

    @property
    def active(self) -> bool:
        """Whether the observed ``fire`` is in place."""
        return self.count > 0


#: The process's one fire hook.
fire_hook = _FireHook()


# ------------------------------------------------------------- observed batch
def _call(
    dispatch: Any, event: Event, entry: HandlerEntry, value: Value, observer: LoopObserver
) -> None:
    """Run one handler as the plain path does, told to ``observer``."""
    observer.running(event, entry)
    error: BaseException | None = None
    start = perf_counter()
    try:
        if entry.pass_event:
            result = entry.fn(event, *event.args, **event.kwargs)
        else:
            result = entry.fn(*event.args, **event.kwargs)
    except Exception as raised:
        error = raised
        dispatch.handler_error(event, entry, raised, value)
    except SystemExit as exit_:
        error = exit_
        dispatch.exit(exit_.code)
    else:
        if result is not None:
            if isinstance(result, _ASYNC_RESULT):
                dispatch._handle_async(event, entry, result)
            else:
                value.add(result)
    observer.ran(event, entry, perf_counter() - start, error)


def observed_batch(self: Any) -> None:
    """``Loop.dispatch_batch`` while observers are attached: the same dispatch (one batch,
    and the next ones while nothing else needs the loop), each step told to
    ``self.observer``. Not the hot path: only observed loops run it."""
    queue = self.queue
    registry = self.registry
    observer: LoopObserver = self.observer
    while True:
        for _ in range(len(queue)):
            value: Value = queue.popleft()
            event: Event = value._event  # type: ignore[assignment]  # (queued: the event)
            if not isinstance(event, Event):
                self._refuse(event, value)
                continue
            if not event._tracked and (event.complete or event._on_complete is not None):
                event._tracked = True  # as the plain dispatch does (fire() leaves it)
                event._effects = 1
            if event.cancelled:
                self._cancelled(event, value)
                continue
            handlers, _fns, named, _single = registry.lookup(event.name, event.channels)
            observer.dispatching(event, handlers)
            if not named:
                self._not_taken(event, value)
            if handlers:
                self.current = self.in_dispatch = event
                self.tracking = event._tracked
                for entry in handlers:
                    _call(self, event, entry, value, observer)
                    if event.stopped:
                        break
                self.current = self.in_dispatch = None
                self.tracking = False
            if not event._pending:
                if (
                    value._callbacks is None
                    and not self.waiters
                    and not event._tracked
                    and not event.success
                    and not event.failure
                ):
                    value.result = True
                    value._event = _weak(event)
                else:
                    self.finish(event, value=value)
            observer.dispatched(event)
        if (
            not queue
            or self._ready
            or self._io_count
            or not self._running
            or (self._timers and self._timers[0][0] <= self.time())
        ):
            return
