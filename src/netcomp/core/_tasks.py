"""The driver of coroutine and generator handlers.

Rules: a suspended handler costs nothing until what it waits for completes; nothing polls.
``async def`` handlers await netcomp awaitables only (``call``, ``wait``, ``sleep``, a
``Value``, a ``Future``); each of them yields a :class:`Future` to the driver, which resumes
the coroutine from that future's done-callback. Generator handlers keep circuits' meaning:
a yielded plain value is appended to the event's value (a yielded :class:`Value` once it
is done), ``yield self.call(e)`` and ``yield self.wait(name)`` suspend and send back a
:class:`Value`; a plain value and a bare ``yield`` give the loop one turn. All
resumptions happen on the loop thread.
"""

from __future__ import annotations

from collections.abc import Callable
from types import CoroutineType, GeneratorType
from typing import Any, Protocol

from ._events import Event, Value
from ._future import Future, Op

__all__ = ["Driver", "Task"]

_SUSPENDED: Any = object()  # what _other() returns when the handler waits


class Driver(Protocol):
    """What a :class:`Task` reports to (the loop's dispatcher)."""

    current: Event | None

    def task_finished(self, task: Task, result: Any) -> None: ...

    def task_failed(self, task: Task, error: BaseException) -> None: ...

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None: ...


class Task:
    """Drives one coroutine or generator handler for one event; resumed by future callbacks."""

    __slots__ = ("coro", "event", "handler", "is_generator", "loop")

    def __init__(
        self, loop: Driver, event: Event, coro: Any, handler: Any, is_generator: bool
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
                if yielded.__class__ is Future:
                    if not yielded._done:
                        yielded.add_done_callback(self._resume)
                        return
                    send, throw = yielded._result, yielded._exception
                    continue
                send, throw = self._other(yielded)
                if send is _SUSPENDED:
                    return
        finally:
            loop.current = previous

    def _other(self, yielded: Any) -> tuple[Any, BaseException | None]:
        """What to send or throw back for anything but a plain Future (``_SUSPENDED``: the
        handler waits; it is resumed by a callback)."""
        if isinstance(yielded, Future):  # a subclass of Future
            if not yielded.done():
                yielded.add_done_callback(self._resume)
                return _SUSPENDED, None
            return yielded._result, yielded._exception
        if not self.is_generator:
            return None, RuntimeError(
                f"handler {self.handler!r} awaited {yielded!r}; netcomp handlers can "
                "await call(), wait(), sleep(), a Value or a Future only"
            )
        # A circuits-style generator handler.
        if isinstance(yielded, Op):
            return self._begin(yielded)
        if isinstance(yielded, Value):
            # As in circuits, a yielded Value is a result (returning one chains it):
            # its result, once it has one, joins this event's.
            if yielded.result:
                self._take(yielded)
                return None, None
            yielded.add_done_callback(self._took)
            return _SUSPENDED, None
        if isinstance(yielded, (GeneratorType, CoroutineType)):
            return None, RuntimeError(
                "a generator handler yielded a generator; use 'yield from' instead"
            )
        if yielded is not None:
            assert self.event.value is not None
            self.event.value.add(yielded)
        # Every yield gives the loop one turn, as in circuits: what is queued now
        # (including what this handler just fired) is dispatched before the generator
        # resumes, and a generator that yields without end cannot starve the loop.
        self.loop.call_soon(self.loop.call_soon, self.step)
        return _SUSPENDED, None

    def _take(self, inner: Value) -> None:
        value = self.event.value
        assert value is not None
        if inner is value:
            return
        if inner.exception is not None:
            value.set_error(inner.exception)  # reported where it was raised
        elif inner._count:
            value.add(inner.value)

    def _took(self, inner: Value) -> None:
        self._take(inner)
        self.step()

    def _begin(self, op: Op) -> tuple[Any, BaseException | None]:
        """A generator yielded ``call()``/``wait()``/``sleep()``: start it, resume after."""
        try:
            future = op._begin()
        except BaseException as error:
            return None, error

        def resume(f: Future) -> None:
            try:
                result = op._for_generator(f)
            except BaseException as error:
                self.step(None, error)
            else:
                self.step(result)

        if future.done():
            self.loop.call_soon(resume, future)
        else:
            future.add_done_callback(resume)
        return _SUSPENDED, None

    def _resume(self, future: Future) -> None:
        if future._exception is not None:
            self.step(None, future._exception)
        else:
            self.step(future._result)

    def __repr__(self) -> str:
        return f"<Task {self.handler!r} for {self.event!r}>"
