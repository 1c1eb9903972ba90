"""Coroutine and generator handlers: the driver and what they may wait on.

Rules: a suspended handler costs nothing until what it waits for completes; nothing polls.
``async def`` handlers await netcomp awaitables only (``call``, ``wait``, ``sleep``, a
``Value``, a ``Future``); each of them yields a :class:`Future` to the driver, which resumes
the coroutine from that future's done-callback. Generator handlers keep circuits' meaning:
a yielded plain value is appended to the event's value, ``yield self.call(e)`` and
``yield self.wait(name)`` suspend and send back a :class:`Value`, a bare ``yield`` gives the
loop one turn. All resumptions happen on the loop thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from types import CoroutineType, GeneratorType
from typing import TYPE_CHECKING, Any

from ._errors import TimeoutError
from ._events import Event
from ._values import Value

if TYPE_CHECKING:
    from ._dispatch import Dispatch
    from ._loop import Loop
    from ._manager import Manager

__all__ = ["Call", "Future", "Task", "Wait", "current_loop", "current_manager", "sleep"]

_local = threading.local()


def current_loop() -> Loop | None:
    """The loop running (or ticking) on this thread, ``None`` outside a loop."""
    return getattr(_local, "loop", None)


def current_manager() -> Manager | None:
    """The root manager whose loop runs on this thread (``None`` outside a loop)."""
    loop = getattr(_local, "loop", None)
    return None if loop is None else loop.root


def _set_current_loop(loop: Loop | None) -> Loop | None:
    previous = getattr(_local, "loop", None)
    _local.loop = loop
    return previous


class Future:
    """A result that arrives later, completed on the loop thread; awaitable in handlers."""

    __slots__ = ("_callbacks", "_done", "_exception", "_result")

    def __init__(self) -> None:
        self._done = False
        self._result: Any = None
        self._exception: BaseException | None = None
        self._callbacks: list[Callable[[Future], Any]] | None = None

    def done(self) -> bool:
        """Whether a result or an exception has been set."""
        return self._done

    def result(self) -> Any:
        """The result, or raise the exception that was set."""
        if not self._done:
            raise RuntimeError("Future.result() called before the future is done")
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self) -> BaseException | None:
        """The exception that was set, if any."""
        return self._exception

    def set_result(self, result: Any) -> None:
        """Complete with ``result`` (ignored if already done)."""
        if not self._done:
            self._result = result
            self._finish()

    def set_exception(self, exception: BaseException) -> None:
        """Complete with ``exception`` (ignored if already done)."""
        if not self._done:
            self._exception = exception
            self._finish()

    def add_done_callback(self, callback: Callable[[Future], Any]) -> None:
        """Call ``callback(self)`` when done (at once if already done)."""
        if self._done:
            callback(self)
        elif self._callbacks is None:
            self._callbacks = [callback]
        else:
            self._callbacks.append(callback)

    def _finish(self) -> None:
        self._done = True
        callbacks = self._callbacks
        if callbacks:
            self._callbacks = None
            for callback in callbacks:
                callback(self)

    def __await__(self) -> Generator[Any, Any, Any]:
        if not self._done:
            yield self
        return self.result()

    def __repr__(self) -> str:
        if not self._done:
            return "<Future pending>"
        if self._exception is not None:
            return f"<Future exception={self._exception!r}>"
        return f"<Future result={self._result!r}>"


class _Op:
    """Something a handler waits on: ``_begin()`` starts it and returns a Future."""

    __slots__ = ()

    def _begin(self) -> Future:  # pragma: no cover - abstract
        raise NotImplementedError

    def _for_generator(self, future: Future) -> Any:
        """What a circuits-style generator receives back from ``yield op``."""
        return future.result()

    def __await__(self) -> Generator[Any, Any, Any]:
        future = self._begin()
        if not future.done():
            yield future
        return future.result()


def _arm_timeout(manager: Manager, future: Future, timeout: float | None, what: str) -> None:
    if timeout is None:
        return
    handle = manager.loop.call_later(
        timeout,
        lambda: future.set_exception(TimeoutError(f"{what} timed out after {timeout} s")),
    )
    future.add_done_callback(lambda _f: handle.cancel())


class Call(_Op):
    """``self.call(event, *channels, timeout=)``: fire, wait until done, return the result.

    Awaited, it returns the handlers' result and re-raises a handler's exception. Yielded
    from a generator handler, it sends back the event's :class:`Value` (as circuits does).
    """

    __slots__ = ("channels", "event", "manager", "timeout", "value")

    def __init__(
        self, manager: Manager, event: Event, channels: tuple[Any, ...], timeout: float | None
    ) -> None:
        self.manager = manager
        self.event = event
        self.channels = channels
        self.timeout = timeout
        self.value: Value | None = None

    def _begin(self) -> Future:
        value = self.value = self.manager.fire(self.event, *self.channels)
        future = Future()

        def settle(v: Value) -> None:
            if v.exception is not None:
                future.set_exception(v.exception)
            else:
                future.set_result(v.value)

        value.add_done_callback(settle)
        if not future.done():
            _arm_timeout(self.manager, future, self.timeout, f"call({self.event!r})")
        return future

    def _for_generator(self, future: Future) -> Any:
        if isinstance(future.exception(), TimeoutError):
            future.result()  # a timeout raises in the generator too
        return self.value


class Wait(_Op):
    """``self.wait(name_or_event, *channels, timeout=)``: until such an event has completed.

    With a name, it waits for the next event of that name fired on one of ``channels`` (any
    channel when none are given) to finish and returns that :class:`Event`. With an Event
    that was already fired, it waits for that event to finish (at once if it has). A
    generator handler receives the event's :class:`Value` instead.
    """

    __slots__ = ("channels", "manager", "target", "timeout")

    def __init__(
        self,
        manager: Manager,
        target: str | Event,
        channels: tuple[Any, ...],
        timeout: float | None,
    ) -> None:
        if not isinstance(target, (str, Event)):
            raise TypeError(f"wait() takes an event name or an Event, not {target!r}")
        self.manager = manager
        self.target = target
        self.channels = channels
        self.timeout = timeout

    def _begin(self) -> Future:
        future = Future()
        target = self.target
        if isinstance(target, Event) and target.value is not None:
            target.value.add_done_callback(lambda _v: future.set_result(target))
        else:
            loop = self.manager.loop
            waiter = (target, self.channels, future)
            name = target if isinstance(target, str) else target.name
            loop.add_waiter(name, waiter)
            future.add_done_callback(lambda _f: loop.remove_waiter(name, waiter))
        if not future.done():
            _arm_timeout(self.manager, future, self.timeout, f"wait({target!r})")
        return future

    def _for_generator(self, future: Future) -> Any:
        event = future.result()
        return event.value


class _Sleep(_Op):
    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def _begin(self) -> Future:
        loop = current_loop()
        if loop is None:
            raise RuntimeError("netcomp.sleep() must be awaited in a handler running on a loop")
        future = Future()
        loop.call_later(self.seconds, future.set_result, None)
        return future


def sleep(seconds: float) -> _Op:
    """Suspend the awaiting handler for ``seconds`` (the loop's clock); other events go on."""
    if seconds < 0:
        raise ValueError(f"sleep() needs seconds >= 0, got {seconds!r}")
    return _Sleep(seconds)


class Task:
    """Drives one coroutine or generator handler for one event; resumed by future callbacks."""

    __slots__ = ("coro", "event", "handler", "is_generator", "loop")

    def __init__(
        self, loop: Dispatch, event: Event, coro: Any, handler: Any, is_generator: bool
    ) -> None:
        self.loop = loop
        self.event = event
        self.coro = coro
        self.handler = handler
        self.is_generator = is_generator

    def step(self, send: Any = None, throw: BaseException | None = None) -> None:
        """Run the handler until it suspends or ends."""
        loop = self.loop
        coro = self.coro
        previous = loop.current
        loop.current = self.event
        try:
            while True:
                try:
                    if throw is not None:
                        exc, throw = throw, None
                        yielded = coro.throw(exc)
                    else:
                        yielded = coro.send(send)
                except StopIteration as stop:
                    loop.task_finished(self, None if self.is_generator else stop.value)
                    return
                except BaseException as error:
                    loop.task_failed(self, error)
                    return
                send = None
                if isinstance(yielded, Future):
                    if yielded.done():
                        if yielded._exception is not None:
                            throw = yielded._exception
                        else:
                            send = yielded._result
                        continue
                    yielded.add_done_callback(self._resume)
                    return
                if not self.is_generator:
                    throw = RuntimeError(
                        f"handler {self.handler!r} awaited {yielded!r}; netcomp handlers can "
                        "await call(), wait(), sleep(), a Value or a Future only"
                    )
                    continue
                # circuits-style generator handler
                if isinstance(yielded, _Op):
                    try:
                        future = yielded._begin()
                    except BaseException as error:
                        throw = error
                        continue
                    op = yielded

                    def resume_gen(f: Future, op: _Op = op) -> None:
                        try:
                            result = op._for_generator(f)
                        except BaseException as error:
                            self.step(None, error)
                        else:
                            self.step(result)

                    if future.done():
                        loop.call_soon(resume_gen, future)
                    else:
                        future.add_done_callback(resume_gen)
                    return
                if isinstance(yielded, Value):
                    value = yielded
                    if value.result:
                        send = value
                        continue
                    value.add_done_callback(lambda v: self.step(v))
                    return
                if yielded is None:
                    # One loop turn, as in circuits: what is queued now (including what this
                    # handler just fired) is dispatched before the generator resumes.
                    loop.call_soon(loop.call_soon, self.step)
                    return
                if isinstance(yielded, (GeneratorType, CoroutineType)):
                    throw = RuntimeError(
                        "a generator handler yielded a generator; use 'yield from' instead"
                    )
                    continue
                assert self.event.value is not None
                self.event.value.add(yielded)
        finally:
            loop.current = previous

    def _resume(self, future: Future) -> None:
        if future._exception is not None:
            self.step(None, future._exception)
        else:
            self.step(future._result)

    def __repr__(self) -> str:
        return f"<Task {self.handler!r} for {self.event!r}>"
