"""What handlers await: ``call`` (fire and get the result), ``wait`` (for an event),
``sleep``.

Rules: each is an :class:`Op` that starts when awaited and hands the driver a Future;
timeouts are seconds on the loop's clock and cancel their timer when the wait ends, so
nothing is left behind; nothing polls.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Protocol

from ._errors import NotHandled, TimeoutError
from ._events import Event, Value
from ._future import Future, Op
from ._loop import Loop, current_loop

__all__ = ["Call", "Wait", "sleep"]


class _Source(Protocol):
    """What a call or a wait needs of the component it was made on."""

    @property
    def loop(self) -> Loop: ...

    def fire(self, event: Event, *channels: Hashable) -> Value: ...


def _arm_timeout(manager: _Source, future: Future, timeout: float | None, what: str) -> None:
    if timeout is None:
        return
    handle = manager.loop.call_later(
        timeout,
        lambda: future.set_exception(TimeoutError(f"{what} timed out after {timeout} s")),
    )
    future.add_done_callback(lambda _f: handle.cancel())


def _not_handled(event: Event) -> NotHandled:
    channels = ", ".join(repr(c) for c in event.channels)
    return NotHandled(
        f"no handler took {event!r}: nothing handles {event.name!r} on channel(s) {channels}"
    )


class Call(Op):
    """``self.call(event, *channels, timeout=)``: fire, wait until done, return the result.

    Awaited, it returns the handlers' result and re-raises a handler's exception (which is
    then not logged as unhandled: it is the caller's); an event that no handler takes by
    name (and no catch-all handler answers) raises :class:`NotHandled`. Yielded
    from a generator handler, it sends back the event's :class:`Value` (as circuits does).
    """

    __slots__ = ("channels", "event", "manager", "timeout", "value")

    def __init__(
        self, manager: _Source, event: Event, channels: tuple[Any, ...], timeout: float | None
    ) -> None:
        self.manager = manager
        self.event = event
        self.channels = channels
        self.timeout = timeout
        self.value: Value | None = None

    def _begin(self) -> Future:
        value = self.value = self.manager.fire(self.event, *self.channels)
        value.observed = True  # a handler's error is the caller's to handle
        future = Future()

        def settle(v: Value) -> None:
            if v.exception is not None:
                future.set_exception(v.exception)
            elif not v.handled and v._count == 0:
                future.set_exception(_not_handled(self.event))
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


class Wait(Op):
    """``self.wait(name_or_event, *channels, timeout=)``: until such an event has completed.

    With a name, it waits for the next event of that name fired on one of ``channels`` (any
    channel when none are given) to finish and returns that :class:`Event`. With an Event
    that was already fired, it waits for that event to finish (at once if it has). A
    generator handler receives the event's :class:`Value` instead.
    """

    __slots__ = ("channels", "manager", "target", "timeout")

    def __init__(
        self,
        manager: _Source,
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
        value = target.value if isinstance(target, Event) else None
        if value is not None and value.manager is not None:
            # (an event given settings before it was fired has a Value with no manager)
            value.add_done_callback(lambda _v: future.set_result(target))
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


class _Sleep(Op):
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


def sleep(seconds: float) -> Op:
    """Suspend the awaiting handler for ``seconds`` (the loop's clock); other events go on."""
    if seconds < 0:
        raise ValueError(f"sleep() needs seconds >= 0, got {seconds!r}")
    return _Sleep(seconds)
