"""The Manager: a tree of components with one event queue and one loop at its root.

Rules (DESIGN.md "Core contract"):
* Events are FIFO and breadth-first: one *batch* is what was queued when the batch began;
  events fired while it is dispatched go to the next batch.
* Every handler an event meets runs in (priority, registration) order; ``event.stop()``
  ends dispatch after the running handler. A raising handler never stops the loop: its error
  lands on the Value and fires ``exception`` on the root's channel (logged when unhandled).
* An event is *done* when its handlers, including coroutine and generator handlers, have
  all finished; then its Value completes, waiters wake, and ``success``/``failure`` feedback
  fires. It is *complete* when it and every event its handlers fired (transitively) are done;
  only events that asked for ``complete`` (or descend from one) pay for that tracking.
* ``fire()`` is safe from any thread: a deque append, plus a wake-up write only when the
  loop sleeps (``_sleeping`` is set *before* the loop re-checks its queues, so no wake-up is
  lost). The loop sleeps in one ``selectors`` call until the next timer deadline.
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
from collections.abc import Callable, Hashable, Iterator
from time import monotonic
from types import CoroutineType, GeneratorType
from typing import Any
from weakref import ref as _weak

from ._errors import EventCancelled, HandlerSignatureError, RegistrationError
from ._events import (
    Event,
    exception,
    prepare_unregister,
    registered,
    signal,
    started,
    stopped,
    unregistered,
)
from ._registry import HandlerEntry, Registry
from ._tasks import Call, Future, Task, Wait, _set_current_manager
from ._values import Value
from ._wakeup import Wakeup

__all__ = ["Manager", "TimerHandle"]

log = logging.getLogger("netcomp")

_ASYNC_RESULT = (CoroutineType, GeneratorType, Value, Future)


def _entry_of(handlers: tuple[HandlerEntry, ...], fn: Any) -> HandlerEntry:
    """The entry whose callable is ``fn`` (error and async paths of the fast loop)."""
    for entry in handlers:
        if entry.fn is fn:
            return entry
    raise LookupError(fn)  # pragma: no cover - fns is built from handlers


def _reset(event: Event) -> None:
    """Forget the dispatch state of an event that is fired again."""
    for name in ("cancelled", "_pending", "_effects", "_cause", "_tracked"):
        event.__dict__.pop(name, None)
    event.stopped = False


_TIMERS_COMPACT = 1024  # heap size from which cancelled timers are swept out


class TimerHandle:
    """A callback scheduled on a manager's clock; ``cancel()`` it to drop it."""

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


def _nothing(*args: Any) -> None:
    """What a cancelled timer holds instead of its callback."""


class Manager:
    """A node of a component tree; the root one owns the queue, the clock and the loop.

    ``channel`` (default ``"*"``) is where ``fire()`` sends events when given no channels.
    """

    channel: Any = "*"
    #: Seconds ``stop()`` waits for ``stopped`` handlers (and what they fire) to finish.
    stop_timeout: float = 5.0
    #: The root a register() from another thread was handed to (it runs on that loop).
    _registering: Manager | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "channel" in kwargs:
            self.channel = kwargs.pop("channel")
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}() got unexpected arguments {args} {kwargs}")
        self.parent: Manager | None = None
        self.root: Manager = self
        self.components: list[Manager] = []
        self._entries: list[HandlerEntry] = []
        # Root state (meaningful on the root only; moved when a tree joins another).
        self._registry = Registry()
        self._queue: deque[Event] = deque()
        self._ready: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._timers: list[tuple[float, int, TimerHandle]] = []
        self._timer_seq = itertools.count()
        self._timers_compact_at = _TIMERS_COMPACT
        self._waiters: dict[str, list[Any]] = {}
        self._current: Event | None = None
        self._in_dispatch: Event | None = None
        self._running = False
        self._stopping = False
        self._sleeping = False
        self._thread_id: int | None = None
        self._exit_code: Any = None
        self._wakeup: Wakeup | None = None
        self._selector: selectors.BaseSelector | None = None
        self._io_count = 0
        self._thread: threading.Thread | None = None
        self._process: Any = None

    # ------------------------------------------------------------------ tree
    def walk(self) -> Iterator[Manager]:
        """This component and every descendant, parents before children."""
        yield self
        for child in list(self.components):
            yield from child.walk()

    def register(self, parent: Manager) -> Manager:
        """Join ``parent``'s tree; fires ``registered(self, parent)``. Returns ``self``."""
        if not isinstance(parent, Manager):
            raise TypeError(f"register() needs a Manager or component, not {parent!r}")
        if self.parent is parent:
            return self
        if self.parent is not None:
            raise RegistrationError(
                f"{self!r} is already registered to {self.parent!r}; unregister it first"
            )
        if parent is self or any(c is parent for c in self.walk()):
            raise RegistrationError(f"cannot register {self!r} into its own subtree {parent!r}")
        if self._running:
            raise RegistrationError(f"{self!r} is running its own loop; stop it first")
        root = parent.root
        if root._running and not root._on_loop_thread():
            self._registering = root  # so an unregister() from this side queues behind it
            root.call_soon_threadsafe(self.register, parent)
            return self
        self._attach(parent)
        self._registering = None
        root._enqueue(registered(self, parent), ("*",))
        return self

    def unregister(self) -> Manager:
        """Leave the tree: ``prepare_unregister(self)`` first, then ``unregistered``.

        While the loop runs, the component stays in the tree (and hears what is fired) until
        ``prepare_unregister`` and everything its handlers fire are complete. With no loop
        running it leaves at once and both events are queued on the old root.
        """
        pending = self._registering  # read before parent: register() sets parent first
        parent = self.parent
        if parent is None:
            if pending is not None and pending._running and not pending._on_loop_thread():
                pending.call_soon_threadsafe(self.unregister)  # after the deferred register
            return self
        root = self.root
        if root._running:
            if not root._on_loop_thread():
                root.call_soon_threadsafe(self.unregister)
                return self
            event = prepare_unregister(self)
            event._on_complete = [lambda: self._finish_unregister(parent)]
            root._enqueue(event, ("*",))
        else:
            root._enqueue(prepare_unregister(self), ("*",))
            self._finish_unregister(parent)
        return self

    def _finish_unregister(self, parent: Manager) -> None:
        if self.parent is not parent:
            return
        old_root = self.root
        self._detach()
        old_root._enqueue(unregistered(self, parent), ("*",))

    def __add__(self, other: Manager) -> Manager:
        other.register(self)
        return self

    __iadd__ = __add__

    def __sub__(self, other: Manager) -> Manager:
        if other.parent is not self:
            raise RegistrationError(f"{other!r} is not a child of {self!r}")
        other.unregister()
        return self

    __isub__ = __sub__

    def _attach(self, parent: Manager) -> None:
        new_root = parent.root
        old_root = self  # a component that is not registered is its own root
        self.parent = parent
        parent.components.append(self)
        members = list(self.walk())
        for member in members:
            member.root = new_root
        for entry in old_root._registry.entries():
            new_root._registry.add(entry)
        old_root._registry = Registry()
        new_root._queue.extend(old_root._queue)
        old_root._queue.clear()
        new_root._ready.extend(old_root._ready)
        old_root._ready.clear()
        for item in old_root._timers:
            heapq.heappush(new_root._timers, item)
        old_root._timers.clear()
        for name, waiters in old_root._waiters.items():
            new_root._waiters.setdefault(name, []).extend(waiters)
        old_root._waiters.clear()
        if new_root._sleeping:
            new_root._wake()
        for member in members:
            member._root_changed()

    def _detach(self) -> None:
        parent = self.parent
        assert parent is not None
        old_root = self.root
        parent.components.remove(self)
        self.parent = None
        members = list(self.walk())
        for member in members:
            member.root = self
            for entry in member._entries:
                old_root._registry.remove(entry)
        self._registry = Registry()
        for member in members:
            for entry in member._entries:
                self._registry.add(entry)
        for member in members:
            member._root_changed()

    def _root_changed(self) -> None:
        """Hook: this component's root changed (timers and sockets re-arm here)."""

    def _loop_ended(self) -> None:
        """Hook: the tree's loop has ended (sockets still open are closed here)."""

    # -------------------------------------------------------------- handlers
    def _add_entry(self, entry: HandlerEntry) -> None:
        self._entries.append(entry)
        self.root._registry.add(entry)

    def _remove_entry(self, entry: HandlerEntry) -> None:
        if entry in self._entries:
            self._entries.remove(entry)
        self.root._registry.remove(entry)

    def handlers(self, name: str, *channels: Hashable) -> list[Callable[..., Any]]:
        """The callables an event ``name`` fired on ``channels`` would run, in order."""
        channels = channels or (self.channel,)
        return [e.fn for e in self.root._registry.lookup(name, tuple(channels))[0]]

    # ------------------------------------------------------------------ fire
    def fire(self, event: Event, *channels: Hashable) -> Value:
        """Queue ``event`` on ``channels`` (default: the event's, else this component's).

        Returns the event's :class:`Value`. Safe to call from any thread.
        """
        if not isinstance(event, Event):
            raise TypeError(
                f"fire() takes an Event, not {type(event).__name__} {event!r}; "
                "use Event.create(name, ...) to fire by name"
            )
        if not channels:
            channels = event.channels or (self.channel,)
        root = self.root
        event.channels = channels
        if event.value is not None:
            _reset(event)
        value = event.value = Value(event, root)
        current = root._current
        if current is not None and current._tracked and threading.get_ident() == root._thread_id:
            event._cause = current
            current._effects += 1
            event._tracked = True
            event._effects = 1
        elif event.complete or event._on_complete is not None:
            event._tracked = True
            event._effects = 1
        root._queue.append(event)
        if root._sleeping:
            root._wake()
        return value

    def _enqueue(self, event: Event, channels: tuple[Any, ...]) -> Value:
        """Queue an internal event (lifecycle, feedback, errors): never counted as an effect."""
        event.channels = channels
        if event.value is not None:
            _reset(event)
        value = event.value = Value(event, self)
        if event.complete or event._on_complete is not None:
            event._tracked = True
            event._effects = 1
        self._queue.append(event)
        if self._sleeping:
            self._wake()
        return value

    def call(self, event: Event, *channels: Hashable, timeout: float | None = None) -> Call:
        """Awaitable: fire ``event`` and return its result (re-raising a handler's error)."""
        if not isinstance(event, Event):
            raise TypeError(f"call() takes an Event, not {type(event).__name__} {event!r}")
        return Call(self, event, channels, timeout)

    def wait(self, event: str | Event, *channels: Hashable, timeout: float | None = None) -> Wait:
        """Awaitable: until an event of that name (or that Event) is done; returns it."""
        return Wait(self, event, channels, timeout)

    # ---------------------------------------------------------------- clock
    def _call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        return self.root._call_at(monotonic() + delay, callback, *args)

    def _call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
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

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop thread after the current batch."""
        self.root._ready.append((callback, args))

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None:
        """Like :meth:`call_soon`, from any thread; wakes the loop."""
        root = self.root
        root._ready.append((callback, args))
        if root._sleeping:
            root._wake()

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None:
            wakeup.wake()

    # ------------------------------------------------------------- dispatch
    def _dispatch_batch(self) -> None:
        """Dispatch the events queued now (one batch); what they fire waits for the next.

        While ``run()`` runs and nothing else (callbacks, a due timer, sockets, a stop)
        needs the loop, go on with the next batch: the order is the same, the loop's
        per-pass overhead is saved. Under ``tick()``/``flush()`` it is one batch.
        """
        queue = self._queue
        popleft = queue.popleft
        registry = self._registry
        cache = registry.cache
        while True:
            for _ in range(len(queue)):
                event = popleft()
                if event.cancelled:
                    self._cancelled(event)
                    continue
                try:
                    handlers, fns = cache[(event.name, event.channels)]
                except KeyError:
                    handlers, fns = registry.lookup(event.name, event.channels)
                value: Value = event.value  # type: ignore[assignment]  # set by fire()
                if handlers:
                    self._current = self._in_dispatch = event
                    args = event.args
                    kwargs = event.kwargs
                    if fns is not None and not kwargs:
                        # Fast loop: plain handlers, positional arguments only.
                        for fn in fns:
                            try:
                                result = fn(*args)
                            except Exception as error:
                                self._handler_error(event, _entry_of(handlers, fn), error)
                            except SystemExit as exit_:
                                self.stop(exit_.code)
                            else:
                                if result is not None:
                                    if isinstance(result, _ASYNC_RESULT):
                                        self._handle_async(event, _entry_of(handlers, fn), result)
                                    elif value._count == 0 and not value.notify:
                                        value._value = result
                                        value._count = 1
                                    else:
                                        value.add(result)
                            if event.stopped:
                                break
                    else:
                        for entry in handlers:
                            try:
                                if entry.pass_event:
                                    result = entry.fn(event, *args, **kwargs)
                                else:
                                    result = entry.fn(*args, **kwargs)
                            except Exception as error:
                                self._handler_error(event, entry, error)
                            except SystemExit as exit_:
                                self.stop(exit_.code)
                            else:
                                if result is not None:
                                    if isinstance(result, _ASYNC_RESULT):
                                        self._handle_async(event, entry, result)
                                    else:
                                        value.add(result)
                            if event.stopped:
                                break
                    self._current = self._in_dispatch = None
                    if event._pending:
                        continue
                # _finish(), inlined for the common case: no callbacks, waiters, feedback or
                # tracking.
                if (
                    value._callbacks is None
                    and not self._waiters
                    and not event._tracked
                    and not event.success
                    and not event.failure
                ):
                    value.result = True
                    value._event = _weak(event)  # no cycle: see Value.event
                else:
                    self._finish(event)
            if (
                not queue
                or self._ready
                or self._io_count
                or not self._running
                or (self._timers and self._timers[0][0] <= monotonic())
            ):
                return

    def _cancelled(self, event: Event) -> None:
        assert event.value is not None
        event.value.set_error(EventCancelled(f"{event!r} was cancelled"))
        self._finish(event, feedback=False)

    def _handle_async(self, event: Event, entry: HandlerEntry, result: Any) -> None:
        if isinstance(result, (CoroutineType, GeneratorType)):
            event._pending += 1
            Task(self, event, result, entry, isinstance(result, GeneratorType)).step()
        elif isinstance(result, Value):
            if result is event.value:
                return
            event._pending += 1
            result.add_done_callback(lambda inner: self._chained(event, inner))
        else:  # Future
            event._pending += 1
            result.add_done_callback(lambda f: self._future_done(event, entry, f))

    def _chained(self, event: Event, inner: Value) -> None:
        # The inner handler's error already fired its own ``exception``: record it only.
        assert event.value is not None
        if inner.exception is not None:
            event.value.set_error(inner.exception)
        else:
            event.value.add(inner.value)
        self._one_pending_done(event)

    def _future_done(self, event: Event, entry: HandlerEntry, future: Future) -> None:
        error = future.exception()
        if error is not None:
            self._handler_error(event, entry, error)
        else:
            assert event.value is not None
            event.value.add(future.result())
        self._one_pending_done(event)

    def _task_finished(self, task: Task, result: Any) -> None:
        event = task.event
        if result is not None:
            assert event.value is not None
            event.value.add(result)
        self._one_pending_done(event)

    def _task_failed(self, task: Task, error: BaseException) -> None:
        if isinstance(error, SystemExit):
            self.stop(error.code)
        elif isinstance(error, Exception):
            self._handler_error(task.event, task.handler, error)
        else:
            raise error
        self._one_pending_done(task.event)

    def _one_pending_done(self, event: Event) -> None:
        event._pending -= 1
        if event._pending == 0 and event is not self._in_dispatch:
            self._finish(event)

    def _handler_error(self, event: Event, entry: Any, error: BaseException) -> None:
        fn = getattr(entry, "fn", entry)
        tb = error.__traceback__
        if (
            isinstance(error, TypeError)
            and not isinstance(error, HandlerSignatureError)
            and tb is not None
            and tb.tb_next is None
            and tb.tb_frame.f_code is Manager._dispatch_batch.__code__
        ):
            name = getattr(getattr(fn, "__func__", fn), "__qualname__", repr(fn))
            wrapped = HandlerSignatureError(f"handler {name}() cannot take {event!r}: {error}")
            wrapped.__cause__ = error
            wrapped.__traceback__ = tb
            error = wrapped
        assert event.value is not None
        event.value.set_error(error)
        if getattr(error, "report", True) is False:
            return  # an error class that is an answer (web's HTTPError): recorded only
        if event.name == "exception":
            log.error("an exception handler %r raised", fn, exc_info=error)
            return
        report = exception(type(error), error, error.__traceback__, handler=fn, fevent=event)
        if not self._registry.has("exception"):
            # Nobody handles errors by name (catch-all handlers such as a Recorder do not
            # count): log it, so no error passes silently.
            self._log_unhandled(report)
        self._enqueue(report, (self.channel,))

    def _log_unhandled(self, event: Event) -> None:
        etype, error, tb = event.args[:3]
        log.error(
            "unhandled error in %r while handling %r",
            event.kwargs.get("handler"),
            event.kwargs.get("fevent"),
            exc_info=(etype, error, tb),
        )

    def _finish(self, event: Event, feedback: bool = True) -> None:
        value = event.value
        assert value is not None
        value._complete()
        if self._waiters:
            self._wake_waiters(event)
        if feedback and (event.success or event.failure):
            if value.errors:
                if event.failure:
                    self._enqueue(
                        Event.create(f"{event.name}_failure", event, value.exception),
                        event.failure_channels or event.channels,
                    )
            elif event.success:
                self._enqueue(
                    Event.create(f"{event.name}_success", event, value.value),
                    event.success_channels or event.channels,
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
                self._enqueue(
                    Event.create(f"{event.name}_complete", event, event.value.value),
                    event.complete_channels or event.channels,
                )
            hooks = event._on_complete
            if hooks:
                event._on_complete = None
                for hook in hooks:
                    hook()
            cause = event._cause
            event._cause = None
            event = cause  # type: ignore[assignment]

    def _wake_waiters(self, event: Event) -> None:
        waiters = self._waiters.get(event.name)
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

    def _remove_waiter(self, name: str, waiter: Any) -> None:
        waiters = self._waiters.get(name)
        if waiters is not None:
            with contextlib.suppress(ValueError):
                waiters.remove(waiter)
            if not waiters:
                del self._waiters[name]

    def _value_changed(self, value: Value) -> None:
        event = value.event
        if event is None:
            return  # done, and the event is gone: nobody is left to notify
        channels = (value.notify,) if isinstance(value.notify, str) else event.channels
        self._enqueue(Event.create(f"{event.name}_value_changed", value), channels)

    # ------------------------------------------------------------------ loop
    @property
    def running(self) -> bool:
        """Whether this tree's loop is running (in this process, thread or child process)."""
        root = self.root
        if root._process is not None:
            return bool(root._process.is_alive())
        return root._running

    def _on_loop_thread(self) -> bool:
        return threading.get_ident() == self._thread_id

    def _ensure_loop(self) -> None:
        if self._selector is None:
            self._wakeup = Wakeup()
            self._selector = selectors.DefaultSelector()
            self._selector.register(self._wakeup.fileno(), selectors.EVENT_READ, None)

    # I/O readiness: the net layer's Poller uses these on the root. ``callback(mask)`` runs
    # on the loop thread when the descriptor is ready; register, modify, remove are O(1).
    def _io_add(self, fileobj: Any, events: int, callback: Callable[[int], Any]) -> None:
        self._ensure_loop()
        assert self._selector is not None
        self._selector.register(fileobj, events, callback)
        self._io_count += 1

    def _io_modify(self, fileobj: Any, events: int, callback: Callable[[int], Any]) -> None:
        assert self._selector is not None
        self._selector.modify(fileobj, events, callback)

    def _io_remove(self, fileobj: Any) -> None:
        if self._selector is None:
            return
        try:
            self._selector.unregister(fileobj)
        except (KeyError, ValueError):
            return
        self._io_count -= 1

    def _use_selector(self, selector: selectors.BaseSelector) -> None:
        """Move every registration to ``selector`` (the Poller's choice of backend)."""
        self._ensure_loop()
        old = self._selector
        assert old is not None
        for key in list(old.get_map().values()):
            selector.register(key.fileobj, key.events, key.data)
        old.close()
        self._selector = selector

    def _run_once(self, timeout: float | None) -> None:
        """One loop pass: wait (at most ``timeout`` when idle), timers, callbacks, a batch."""
        queue = self._queue
        ready = self._ready
        timers = self._timers
        if queue or ready:
            if self._io_count:
                self._select(0)
        else:
            self._sleeping = True
            while timers and timers[0][2].cancelled:
                heapq.heappop(timers)  # a cancelled head must not wake the loop
            if queue or ready:
                timeout = 0
            elif timers:
                delay = timers[0][0] - monotonic()
                delay = delay if delay > 0 else 0
                timeout = delay if timeout is None else min(delay, timeout)
            if timeout != 0 or self._io_count:
                self._select(timeout)
            self._sleeping = False
        if timers:
            now = monotonic()
            while timers and timers[0][0] <= now:
                handle = heapq.heappop(timers)[2]
                if not handle.cancelled:
                    self._run_callback(handle.callback, handle.args)
        if ready:
            for _ in range(len(ready)):
                callback, args = ready.popleft()
                self._run_callback(callback, args)
        if queue:
            self._dispatch_batch()

    def _select(self, timeout: float | None) -> None:
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

    def _run_callback(self, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            callback(*args)
        except SystemExit as exit_:
            self.stop(exit_.code)
        except Exception:
            log.exception("error in loop callback %r", callback)

    def tick(self, timeout: float | None = 0) -> None:
        """Run one loop pass; when idle, wait for timers or a wake-up up to ``timeout`` s."""
        root = self.root
        if root._running and not root._on_loop_thread():
            raise RuntimeError("tick() called from outside the running loop's thread")
        root._ensure_loop()
        previous_thread = root._thread_id
        root._thread_id = threading.get_ident()
        previous = _set_current_manager(root)
        try:
            root._run_once(timeout)
        finally:
            _set_current_manager(previous)
            if not root._running:
                root._thread_id = previous_thread

    def flush(self, limit: int = 100_000) -> None:
        """Dispatch queued events and callbacks, and what they fire, until none are left.

        Does not wait for timers. ``limit`` bounds the number of passes (events that fire
        each other forever would otherwise never let it return).
        """
        root = self.root
        for _ in range(limit):
            if not (root._queue or root._ready):
                return
            self.tick(0)

    def run(self) -> Any:
        """Run the loop in this thread until ``stop()``; returns the exit code given to it.

        Fires ``started(manager)`` first. In the main thread, SIGINT and SIGTERM fire
        ``signal`` and stop the manager gracefully unless a handler stops that event.
        """
        if self.parent is not None:
            raise RuntimeError(f"run() the root of the tree ({self.root!r}), not {self!r}")
        if self._running and self._thread_id is not None:
            raise RuntimeError(f"{self!r} is already running")
        self._running = True
        self._stopping = False
        self._exit_code = None
        self._thread_id = threading.get_ident()
        self._ensure_loop()
        previous = _set_current_manager(self)
        saved = self._install_signals()
        try:
            self._enqueue(started(self), ("*",))
            run_once = self._run_once
            while self._running:
                run_once(None)
        finally:
            for member in list(self.walk()):
                try:
                    member._loop_ended()
                except Exception:  # one component's cleanup never blocks the others'
                    log.exception("error while %r cleaned up after its loop", member)
            self._restore_signals(saved)
            _set_current_manager(previous)
            self._running = False
            self._thread_id = None
        return self._exit_code

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
        value = self._enqueue(event, ("*",))
        value.add_done_callback(lambda _v: None if event.stopped else self.stop())

    def stop(self, code: Any = None) -> None:
        """Stop the loop gracefully: ``stopped`` is fired and handled, then ``run()`` returns.

        Safe from any thread. ``code`` becomes ``run()``'s return value. For a tree started
        with ``start(process=True)``, the parent's ``stop()`` sends the child SIGTERM (a
        graceful stop); the child's exit status is the code its own ``stop()`` was given.
        """
        root = self.root
        if root is not self:
            root.stop(code)
            return
        if self._process is not None:
            if self._process.is_alive():
                os.kill(self._process.pid, _signal.SIGTERM)
            return
        if not self._running:
            return
        if not self._on_loop_thread():
            self.call_soon_threadsafe(self.stop, code)
            return
        if self._stopping:
            if code is not None:
                self._exit_code = code
            return
        self._stopping = True
        self._exit_code = code
        event = stopped(self)
        deadline = self._call_later(self.stop_timeout, self._end_loop)
        event._on_complete = [self._end_loop, deadline.cancel]
        self._enqueue(event, ("*",))

    def _end_loop(self) -> None:
        self._running = False
        self._wake()

    def start(self, process: bool = False) -> None:
        """Run the loop in a new thread (or, with ``process=True``, a child process)."""
        if self.parent is not None:
            raise RuntimeError(f"start() the root of the tree ({self.root!r}), not {self!r}")
        if self.running or (self._thread is not None and self._thread.is_alive()):
            raise RuntimeError(f"{self!r} is already running")
        if process:
            import multiprocessing

            ctx = multiprocessing.get_context("fork")
            self._process = ctx.Process(
                target=self._child_main, name=f"netcomp-{type(self).__name__}", daemon=True
            )
            self._process.start()
            return
        self._process = None
        self._thread = threading.Thread(
            target=self.run, name=f"netcomp-{type(self).__name__}", daemon=True
        )
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

    # ----------------------------------------------------------------- repr
    def __repr__(self) -> str:
        channel = self.channel
        state = "R" if self.running else "S"
        queued = len(self.root._queue)
        return f"<{type(self).__name__}/{channel} {os.getpid()} (queued={queued}) [{state}]>"
