"""Values: what handlers returned for an event, available once every handler is done.

Rules: a handler's ``None`` is not a result; one result reads back as a scalar, several as a
list in handler order. A handler that returns another event's :class:`Value` chains it: the
outer value waits for the inner one and takes its result (or error). ``result`` becomes true
exactly once, when the event and its coroutine or generator handlers have all finished.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any
from weakref import ref

if TYPE_CHECKING:
    from ._events import Event
    from ._manager import Manager

__all__ = ["Value"]

_UNSET: Any = object()


class Value:
    """The answer to a fired event: ``value``, ``errors``/``exception``, ``result`` (done).

    Awaitable inside a handler coroutine: ``await value`` waits until every handler is done,
    then returns :attr:`value` or raises the handler's exception. ``event`` is the event
    this value answers.
    """

    # No __slots__: the class-level defaults below make a new Value cost two stores.
    _value: Any = None
    _count = 0
    errors = False
    exception: BaseException | None = None
    result = False
    notify: bool | str = False
    _callbacks: list[Callable[[Value], Any]] | None = None

    def __init__(self, event: Event | None = None, manager: Manager | None = None) -> None:
        self._event: Event | ref[Event] | None = event
        self.manager = manager

    @property
    def event(self) -> Event | None:
        """The event this value answers.

        Once the value is done it holds the event weakly, so that the two do not keep each
        other alive (a cycle only the garbage collector frees): keep a reference to the
        event if you need it after that.
        """
        event = self._event
        if isinstance(event, ref):
            return event()
        return event

    @property
    def value(self) -> Any:
        """The handlers' results: ``None`` (none), the result (one) or a list (several)."""
        return self._value

    @value.setter
    def value(self, result: Any) -> None:
        self.add(result)

    @property
    def done(self) -> bool:
        """Same as :attr:`result`: every handler of the event has finished."""
        return self.result

    def add(self, result: Any) -> None:
        """Record one handler's result (``None`` is ignored)."""
        if result is None:
            return
        count = self._count
        if count == 0:
            self._value = result
        elif count == 1:
            self._value = [self._value, result]
        else:
            self._value.append(result)
        self._count = count + 1
        if self.notify and self.manager is not None and self._event is not None:
            self.manager.loop.value_changed(self)

    def set_error(self, error: BaseException) -> None:
        """Record a handler's exception (the first one is kept in :attr:`exception`)."""
        if not self.errors:
            self.errors = True
            self.exception = error

    def add_done_callback(self, callback: Callable[[Value], Any]) -> None:
        """Call ``callback(self)`` once the value is done (at once if it already is)."""
        if self.result:
            callback(self)
        elif self._callbacks is None:
            self._callbacks = [callback]
        else:
            self._callbacks.append(callback)

    def remove_done_callback(self, callback: Callable[[Value], Any]) -> None:
        """Forget a callback given to :meth:`add_done_callback`."""
        if self._callbacks and callback in self._callbacks:
            self._callbacks.remove(callback)

    def _complete(self) -> None:
        self.result = True
        event = self._event
        if event is not None and event.__class__ is not ref:
            self._event = ref(event)  # type: ignore[arg-type]
        callbacks = self._callbacks
        if callbacks:
            self._callbacks = None
            for callback in callbacks:
                callback(self)

    def get(self) -> Any:
        """The result, raising the handler's exception if one raised. Only once done."""
        if not self.result:
            raise RuntimeError(f"{self!r} is not done yet")
        if self.exception is not None:
            raise self.exception
        return self._value

    def __await__(self) -> Generator[Any, Any, Any]:
        if not self.result:
            from ._tasks import Future

            future: Future = Future()
            self.add_done_callback(lambda _v: future.set_result(None))
            yield future
        return self.get()

    def __repr__(self) -> str:
        state = "done" if self.result else "pending"
        if self.errors:
            state += f", error={self.exception!r}"
        name = self.event.name if self.event is not None else "-"
        return f"<Value {name} {state} value={self._value!r}>"
