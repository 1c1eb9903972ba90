"""Dispatch: running an event's handlers, collecting their results, finishing the event.

Rules (docs/architecture.md, "Dispatch"):
* Events are FIFO and breadth-first: one *batch* is what was queued when the batch began;
  events fired while it is dispatched go to the next batch.
* Every handler an event meets runs in (priority, registration) order; ``event.stop()``
  ends dispatch after the running handler. A raising handler never stops the loop: its error
  lands on the Value and fires ``exception`` on the root's channel (logged when unhandled).
* An event is *done* when its handlers, including coroutine and generator handlers, have
  all finished; then its Value completes, waiters wake, and ``success``/``failure`` feedback
  fires. It is *complete* when it and every event its handlers fired (transitively) are done;
  only events that asked for ``complete`` (or descend from one) pay for that tracking.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import sys
from collections import deque
from collections.abc import Callable, Iterator
from types import CoroutineType, GeneratorType
from typing import Any, Protocol
from weakref import ref as _weak

from ._errors import EventCancelled, HandlerSignatureError
from ._events import Event, Value, _not_an_event, exception
from ._future import Future
from ._registry import HandlerEntry, Registry
from ._tasks import Task

__all__ = ["Dispatch", "Tree", "reset_event"]

log = logging.getLogger("netcomp")

_ASYNC_RESULT = (CoroutineType, GeneratorType, Value, Future)


def _lone_event_refs() -> int:
    """What ``sys.getrefcount(event)`` says, inside a function, of an event that only a
    local variable and its own Value hold; 0 (never equal) where the count cannot be
    trusted to tell that apart: other interpreters, free-threaded builds, and CPython
    3.14+, whose borrowed loads may leave a local's reference uncounted."""
    if (
        sys.implementation.name != "cpython"
        or sys.version_info >= (3, 14)
        or not getattr(sys, "_is_gil_enabled", lambda: True)()
    ):
        return 0
    event = Event()
    event.value = Value(event)
    lone = _refcount(event)
    held = [event]
    if _refcount(event) != lone + 1 or lone != 3:  # local, value, argument
        return 0
    del held
    return lone


_refcount = sys.getrefcount
#: See :func:`_lone_event_refs` (dispatch's finish lets go of a lone event without a
#: weak reference).
_LONE_EVENT_REFS = _lone_event_refs()


def _entry_of(handlers: tuple[HandlerEntry, ...], fn: Any) -> HandlerEntry:
    """The entry whose callable is ``fn`` (error and async paths of the fast loop)."""
    for entry in handlers:
        if entry.fn is fn:
            return entry
    raise LookupError(fn)  # pragma: no cover - fns is built from handlers


def reset_event(event: Event, root: Any) -> Value:
    """The new Value of an event that has one already: fired again (its dispatch state is
    forgotten), or given settings (``notify``) before it was fired. The Value's settings
    are kept."""
    old = event.value
    assert old is not None
    # ``_extras`` stays: it may stand for the instance's feedback switches (a stale true
    # only sends the event down the slower path, which reads the real settings).
    for name in ("cancelled", "_pending", "_effects", "_cause", "_tracked", "_priority"):
        event.__dict__.pop(name, None)
    event.stopped = False
    value = Value(event, root)
    if old.notify:
        value.notify = old.notify
    return value


def _priority_of(value: Value) -> float:
    return value._event._priority  # type: ignore[union-attr]  # (queued: the event itself)


def _feedback(name: str, *args: Any) -> Event:
    """A feedback event (``<name>_success``, ...): a notification."""
    event = Event.create(name, *args)
    event.notification = True  # type: ignore[misc]
    return event


def _signature_mismatch(fn: Callable[..., Any], event: Event, entry: HandlerEntry) -> bool:
    """Whether calling ``fn`` with ``event``'s arguments fails before its body runs."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    args = (event, *event.args) if entry.pass_event else event.args
    try:
        signature.bind(*args, **event.kwargs)
    except TypeError:
        return True
    return False


class Tree(Protocol):
    """What a loop needs of its tree's root (a :class:`Manager`)."""

    channel: Any
    stop_timeout: float

    def walk(self) -> Iterator[Tree]: ...

    def loop_ended(self) -> None: ...


class Dispatch:
    """The dispatching half of a :class:`Loop` (the queue, the registry, the waiters)."""

    root: Tree
    registry: Registry
    queue: deque[Value]
    waiters: dict[str, list[Any]]
    current: Event | None
    tracking: bool
    in_dispatch: Event | None
    _ready: deque[tuple[Callable[..., Any], tuple[Any, ...]]]
    _timers: list[Any]
    _io_count: int
    _running: bool
    _sleeping: bool
    _chain: bool
    _reorder_pending: bool = False
    time: Callable[[], float]

    # The other halves of the Loop provide these.
    _wake: Callable[[], None]
    stop: Callable[..., None]
    exit: Callable[..., None]
    call_soon: Callable[..., None]
    call_soon_threadsafe: Callable[..., None]

    # ---------------------------------------------------------------- queue
    def enqueue(self, event: Event, channels: tuple[Any, ...]) -> Value:
        """Queue an internal event (lifecycle, feedback, errors): never counted as an effect."""
        event.channels = channels
        if event.value is not None:
            value = event.value = reset_event(event, self.root)
        else:
            value = event.value = Value(event, self.root)
        if event._extras and (event.complete or event._on_complete is not None):
            event._tracked = True
            event._effects = 1
        value._channels = channels
        self.queue.append(value)
        if self._sleeping:
            self._wake()
        return value

    def prioritize(self, event: Event, priority: float) -> None:
        """Give a queued ``event`` a dispatch ``priority`` (``Manager.fire(priority=)``).

        Before the next batch begins, the queued events are sorted by priority, lowest
        first, keeping the order they were fired in among equals (unprioritized events
        count as 0): circuits' order. Events of the batch being dispatched are not
        touched, so what a handler fires still waits for the next batch. Nothing of this
        runs for events fired without a priority.
        """
        event._priority = priority
        if not self._reorder_pending:
            self._reorder_pending = True
            self.call_soon_threadsafe(self._reorder)

    def _reorder(self) -> None:
        # Runs between batches, on the loop thread (a callback, or the pass itself when a
        # callback fired the event). Other threads only append on the right, so popping
        # the queued events from the left loses none of theirs.
        if not self._reorder_pending:
            return
        self._reorder_pending = False
        queue = self.queue
        values = [queue.popleft() for _ in range(len(queue))]
        values.sort(key=_priority_of)
        queue.extendleft(reversed(values))

    # ------------------------------------------------------------- dispatch
    def dispatch_batch(self) -> None:
        """Dispatch the events queued now (one batch); what they fire waits for the next.

        While ``run()`` runs and nothing else (callbacks, a due timer, sockets, a stop)
        needs the loop, go on with the next batch: the order is the same, the loop's
        per-pass overhead is saved. Under ``tick()``/``flush()`` it is one batch.

        The hot path (about 140 lines, over the 60-line rule on purpose): every event of
        every program goes through here, and each call saved counts. Measured: moving the
        plain-handler loop into a method of its own cost 3-7 % of ping-pong events/s
        (``benchmarks/core.py --one netcomp pingpong --n 300000``, best of 3, three runs
        each: 784-803k inline, 742-765k split), so it stays inline. A lone handler has a
        branch of its own (no loop, no stop check) and so do many (no per-handler test of
        which case it is): counted with callgrind (benchmarks/README.md), each shared check
        cost ping-pong or fan-out 1-3 % of their instructions.
        """
        queue = self.queue
        registry = self.registry
        cache = registry.cache
        waiters = self.waiters  # a dict changed in place, never replaced
        while True:
            left = len(queue)  # this batch (a counter: no range object per batch)
            while left:
                left -= 1
                value: Value = queue.popleft()  # (a method call CPython specializes)
                event: Event = value._event  # type: ignore[assignment]
                # ``_extras`` (one read) stands for cancelled, tracked, feedback and hooks.
                try:
                    extras = event._extras
                except AttributeError:  # fire() was given a look-alike (see its comments)
                    self._refuse(event, value)
                    continue
                if extras:
                    if not event._tracked and (event.complete or event._on_complete is not None):
                        # A ``complete`` event fired outside any tracked event (fire()
                        # leaves this to here): tracked from now, before its handlers
                        # fire anything (and before a cancel finishes it).
                        event._tracked = True
                        event._effects = 1
                    if event.cancelled:
                        self._cancelled(event, value)
                        continue
                try:
                    handlers, fns, named, single = cache[event.name][value._channels]
                except KeyError:
                    handlers, fns, named, single = registry.lookup(event.name, value._channels)
                if not named:
                    self._not_taken(event, value)
                if handlers:
                    self.current = event  # (``in_dispatch``: set by _handle_async)
                    if extras:
                        self.tracking = event._tracked
                    went_async = False
                    args = event.args
                    kwargs = event.kwargs
                    if single is not None and not kwargs:
                        # One plain handler, positional arguments (the usual case): no
                        # loop, nothing left to stop.
                        try:
                            result = single(*args)
                        except Exception as error:
                            self.handler_error(event, handlers[0], error, value)
                        except SystemExit as exit_:
                            self.exit(exit_.code)
                        else:
                            if result is not None:
                                if isinstance(result, _ASYNC_RESULT):
                                    went_async = True
                                    self._handle_async(event, handlers[0], result)
                                elif value._count == 0 and not value.notify:
                                    value._value = result
                                    value._count = 1
                                else:
                                    value.add(result)
                    elif fns is not None and not kwargs:
                        # Plain handlers, positional arguments only.
                        # ``stopped`` is read after each handler: an instance
                        # attribute reads much faster than the class default, so it
                        # is made one here, not by every Event's __init__.
                        event.stopped = event.stopped
                        # One argument (the usual case) is passed as one: ``fn(arg)`` is a
                        # call CPython specializes, ``fn(*args)`` is not (fan-out: see
                        # benchmarks/README.md).
                        one = len(args) == 1
                        arg = args[0] if one else None
                        for fn in fns:
                            try:
                                result = fn(arg) if one else fn(*args)
                            except Exception as error:
                                self.handler_error(event, _entry_of(handlers, fn), error, value)
                            except SystemExit as exit_:
                                self.exit(exit_.code)
                            else:
                                if result is not None:
                                    if isinstance(result, _ASYNC_RESULT):
                                        went_async = True
                                        entry = _entry_of(handlers, fn)
                                        self._handle_async(event, entry, result)
                                    elif value._count == 0 and not value.notify:
                                        value._value = result
                                        value._count = 1
                                    else:
                                        value.add(result)
                            if event.stopped:
                                break
                    else:
                        event.stopped = event.stopped  # (as above)
                        for entry in handlers:
                            try:
                                if entry.pass_event:
                                    result = entry.fn(event, *args, **kwargs)
                                else:
                                    result = entry.fn(*args, **kwargs)
                            except Exception as error:
                                self.handler_error(event, entry, error, value)
                            except SystemExit as exit_:
                                self.exit(exit_.code)
                            else:
                                if result is not None:
                                    if isinstance(result, _ASYNC_RESULT):
                                        went_async = True
                                        self._handle_async(event, entry, result)
                                    else:
                                        value.add(result)
                            if event.stopped:
                                break
                    self.current = None
                    if extras:
                        self.tracking = False
                    if went_async:
                        self.in_dispatch = None
                        if event._pending:
                            continue
                # finish() and Value._complete(), inlined for the common case: no waiters,
                # feedback or tracking (a handler may have asked for feedback: ``_extras`` is
                # read again), at most the callbacks (a connection's, for a ``read``).
                if not waiters and not event._extras:
                    value.result = True
                    callbacks = value._callbacks
                    if callbacks is None:
                        # No cycle (see Value.event): when only this frame and the value
                        # hold the event, the weak reference would be dead before anyone
                        # could read it, so the value simply lets go (no weakref per event).
                        if _refcount(event) == _LONE_EVENT_REFS:
                            value._event = None
                        else:
                            value._event = _weak(event)
                    else:
                        value._event = _weak(event)
                        value._callbacks = None
                        if callbacks.__class__ is list:
                            for callback in callbacks:
                                callback(value)
                        else:
                            callbacks(value)  # type: ignore[operator]
                else:
                    self.finish(event, value=value)
            if not queue:
                return
            if self._chain:
                continue  # nothing else needs the loop (see Loop._run_once)
            if (
                self._ready
                or self._io_count
                or not self._running
                or (self._timers and self._timers[0][0] <= self.time())
            ):
                return

    def _refuse(self, thing: Any, value: Value) -> None:
        """``fire()`` was given ``thing``, not an Event, with the attributes it reads: its
        Value is done with the TypeError fire() raises for anything else, and it is
        logged (it happened in a handler or another thread, past its caller)."""
        error = TypeError(_not_an_event(thing))
        value.set_error(error)
        value._event = None
        value._complete()
        log.error("%s", error)

    def _not_taken(self, event: Event, value: Value) -> None:
        """No handler takes ``event`` by name: say so on its Value, and log a failure
        event (net's ``error``, ``unreachable``, ...) that nobody takes: nothing fails
        silently (docs/architecture.md, "Errors")."""
        value.handled = False
        logger = event.unhandled_logger
        if logger is not None:
            logging.getLogger(logger).log(event.unhandled_level, "%s", event.describe())

    def _cancelled(self, event: Event, value: Value) -> None:
        value.set_error(EventCancelled(f"{event!r} was cancelled"))
        self.finish(event, feedback=False, value=value)

    # ---------------------------------------------------------- async results
    def _handle_async(self, event: Event, entry: HandlerEntry, result: Any) -> None:
        # Until its handlers have all run, ``event`` is not finished by the end of what
        # it waits for (``_one_pending_done``); dispatch clears this after them. Only
        # events that go async pay for it.
        self.in_dispatch = event
        if isinstance(result, (CoroutineType, GeneratorType)):
            event._pending += 1
            Task(self, event, result, entry, isinstance(result, GeneratorType)).step()
        elif isinstance(result, Value):
            if result is event.value:
                return
            event._pending += 1
            # Its error becomes this event's, and is reported here (unless it was done,
            # and so reported, already).
            report = not result.result
            result.observed = True
            result.add_done_callback(lambda inner: self._chained(event, inner, report))
        else:  # Future
            event._pending += 1
            result.add_done_callback(lambda f: self._future_done(event, entry, f))

    def _chained(self, event: Event, inner: Value, report: bool) -> None:
        # The inner handler's error already fired its own ``exception``; it is logged here,
        # once, if nobody awaits this event's value either.
        value = event.value
        assert value is not None
        error = inner.exception
        if error is not None:
            value.set_error(error)
            if (
                report
                and not value.observed
                and getattr(error, "report", True) is not False
                and not self.registry.has("exception")
            ):
                log.error(
                    "unhandled error while handling %r (through %r)",
                    event,
                    inner.event,
                    exc_info=error,
                )
        else:
            value.add(inner.value)
        self._one_pending_done(event)

    def _future_done(self, event: Event, entry: HandlerEntry, future: Future) -> None:
        error = future.exception()
        if error is not None:
            self.handler_error(event, entry, error)
        else:
            assert event.value is not None
            event.value.add(future.result())
        self._one_pending_done(event)

    def task_finished(self, task: Task, result: Any) -> None:
        """A coroutine or generator handler returned ``result``."""
        event = task.event
        if result is not None:
            assert event.value is not None
            event.value.add(result)
        self._one_pending_done(event)

    def task_failed(self, task: Task, error: BaseException) -> None:
        """A coroutine or generator handler raised ``error``."""
        if isinstance(error, SystemExit):
            self.exit(error.code)
        elif isinstance(error, Exception):
            self.handler_error(task.event, task.handler, error)
        else:
            raise error
        self._one_pending_done(task.event)

    def _one_pending_done(self, event: Event) -> None:
        event._pending -= 1
        if event._pending == 0 and event is not self.in_dispatch:
            self.finish(event)

    # ----------------------------------------------------------------- errors
    def handler_error(
        self, event: Event, entry: Any, error: BaseException, value: Value | None = None
    ) -> None:
        """Record a handler's error on the event's Value (``value``: the one dispatched,
        when the event was fired again meanwhile) and report it."""
        if value is None:
            value = event.value
        assert value is not None
        fn = getattr(entry, "fn", entry)
        if (
            isinstance(error, TypeError)
            and not isinstance(error, HandlerSignatureError)
            and isinstance(entry, HandlerEntry)
            and _signature_mismatch(fn, event, entry)
        ):
            name = getattr(getattr(fn, "__func__", fn), "__qualname__", repr(fn))
            wrapped = HandlerSignatureError(f"handler {name}() cannot take {event!r}: {error}")
            wrapped.__cause__ = error
            wrapped.__traceback__ = error.__traceback__
            error = wrapped
        value.set_error(error)
        if getattr(error, "report", True) is False:
            return  # an error class that is an answer (web's HTTPError): recorded only
        if event.name == "exception":
            log.error("an exception handler %r raised", fn, exc_info=error)
            return
        report = exception(type(error), error, error.__traceback__, handler=fn, fevent=event)
        if not self.registry.has("exception") and not value.observed:
            # Nobody handles errors by name (catch-all handlers such as a Recorder do not
            # count), and no caller awaits this value to take the error itself: log it, so
            # no error passes silently, and only once.
            self._log_unhandled(report)
        self.enqueue(report, (self.root.channel,))

    def _log_unhandled(self, event: Event) -> None:
        etype, error, tb = event.args[:3]
        log.error(
            "unhandled error in %r while handling %r",
            event.kwargs.get("handler"),
            event.kwargs.get("fevent"),
            exc_info=(etype, error, tb),
        )

    # ----------------------------------------------------------------- finish
    def finish(self, event: Event, feedback: bool = True, value: Value | None = None) -> None:
        """The event's handlers are all done: complete its Value (``value``: the one
        dispatched, when the event was fired again meanwhile), wake, give feedback."""
        if value is None:
            value = event.value
        assert value is not None
        value._complete()
        if self.waiters:
            self._wake_waiters(event)
        if not event._extras:
            return  # no feedback asked for, not tracked: the usual case (a read's callback)
        if feedback and (event.success or event.failure):
            if value.errors:
                if event.failure:
                    self.enqueue(
                        _feedback(f"{event.name}_failure", event, value.exception),
                        tuple(event.failure_channels or event.channels),
                    )
            elif event.success:
                self.enqueue(
                    _feedback(f"{event.name}_success", event, value.value),
                    tuple(event.success_channels or event.channels),
                )
        if event._tracked:
            self._effect_done(event)

    def _effect_done(self, event: Event) -> None:
        while event is not None:
            event._effects -= 1
            if event._effects > 0:
                return
            if event.complete:
                assert event.value is not None
                self.enqueue(
                    _feedback(f"{event.name}_complete", event, event.value.value),
                    tuple(event.complete_channels or event.channels),
                )
            hooks = event._on_complete
            if hooks:
                event._on_complete = None
                for hook in hooks:
                    hook()
            cause = event._cause
            event._cause = None
            event = cause  # type: ignore[assignment]

    # ---------------------------------------------------------------- waiters
    def add_waiter(self, name: str, waiter: Any) -> None:
        """Wake ``waiter`` = ``(target, channels, future)`` when an event ``name`` is done."""
        self.waiters.setdefault(name, []).append(waiter)

    def _wake_waiters(self, event: Event) -> None:
        waiters = self.waiters.get(event.name)
        if not waiters:
            return
        for target, channels, future in list(waiters):
            if isinstance(target, Event) and target is not event:
                continue
            if channels and not any(
                c == "*" or ec == "*" or c == ec for c in channels for ec in event.channels
            ):
                continue
            future.set_result(event)

    def remove_waiter(self, name: str, waiter: Any) -> None:
        """Forget a waiter given to :meth:`add_waiter`."""
        waiters = self.waiters.get(name)
        if waiters is not None:
            with contextlib.suppress(ValueError):
                waiters.remove(waiter)
            if not waiters:
                del self.waiters[name]

    def value_changed(self, value: Value) -> None:
        """A Value with ``notify`` got a result: fire ``<name>_value_changed``."""
        event = value.event
        if event is None:
            return  # done, and the event is gone: nobody is left to notify
        channels = (value.notify,) if isinstance(value.notify, str) else event.channels
        self.enqueue(_feedback(f"{event.name}_value_changed", value), channels)
