"""Errors (issue 2, "Errors"): a raising handler never stops the loop; its error lands on the
Value, fires ``exception(type, value, traceback, handler=, fevent=)`` on the root's channel,
and is logged on logger ``netcomp`` when nothing handles ``exception``. Also the error tree.
"""

from __future__ import annotations

import builtins
import logging
import traceback
from typing import Any

import pytest

import netcomp
from netcomp import BaseComponent, Event, Manager, handler
from netcomp.testing import fire_and_flush, running


class Boom(ValueError):
    pass


class work(Event):
    pass


class Faulty(BaseComponent):
    """``work``: a high-priority handler raises, a lower one still answers."""

    def init(self) -> None:
        self.ran: list[str] = []

    @handler("work", priority=10)
    def _raise(self, n: int = 0) -> None:
        self.ran.append(f"raise{n}")
        raise Boom(f"failed {n}")

    @handler("work")
    def _after(self, n: int = 0) -> str:
        self.ran.append(f"after{n}")
        return f"answer {n}"


class Errors(BaseComponent):
    """Records ``exception`` events (as the event and its args)."""

    def init(self, channel: Any = "*") -> None:
        self.channel = channel
        self.events: list[Event] = []

    @handler("exception")
    def _exception(self, event: Event, *args: Any, **kwargs: Any) -> None:
        self.events.append(event)


# --------------------------------------------------------- loop keeps going
def test_later_handlers_of_the_same_event_still_run(manager: Manager) -> None:
    worker = Faulty()
    manager += worker
    manager += Errors()
    value = fire_and_flush(manager, work())
    assert worker.ran == ["raise0", "after0"]
    assert value.value == "answer 0"
    assert isinstance(value.exception, Boom)


def test_later_events_still_run(manager: Manager) -> None:
    worker = Faulty()
    manager += worker
    manager += Errors()
    values = [manager.fire(work(n)) for n in range(3)]
    manager.flush()
    assert worker.ran == ["raise0", "after0", "raise1", "after1", "raise2", "after2"]
    assert [v.value for v in values] == ["answer 0", "answer 1", "answer 2"]
    assert all(v.errors for v in values)


def test_a_running_loop_survives_raising_handlers(manager: Manager) -> None:
    worker = Faulty()
    manager += worker
    with running(manager, check_errors=False) as recorder:
        for n in range(3):
            manager.fire(work(n))
        last = recorder.wait_for("work", timeout=5, count=3)
        recorder.wait_for("exception", timeout=5, count=3)
        assert manager.running
        # still serving after the errors
        manager.fire(Event.create("still_alive"))
        recorder.wait_for("still_alive", timeout=5)
    assert last.value is not None
    assert last.value.value == "answer 2"
    assert len(recorder.errors) == 3


# -------------------------------------------------------- exception event
def test_the_exception_event_has_the_right_arguments(manager: Manager) -> None:
    worker = Faulty()
    errors = Errors()
    manager += worker
    manager += errors
    event = work(5)
    value = fire_and_flush(manager, event)
    assert len(errors.events) == 1
    exc_event = errors.events[0]
    etype, error, tb = exc_event.args
    assert etype is Boom
    assert isinstance(error, Boom)
    assert error is value.exception
    assert str(error) == "failed 5"
    assert tb is error.__traceback__
    frames = [frame.name for frame in traceback.extract_tb(tb)]
    assert "_raise" in frames
    assert set(exc_event.kwargs) == {"handler", "fevent"}
    assert exc_event.kwargs["handler"] == worker._raise
    assert exc_event.kwargs["fevent"] is event


def test_the_exception_event_goes_to_the_roots_channel() -> None:
    root = Manager(channel="app")
    worker = Faulty(channel="workers")
    on_app = Errors(channel="app")
    on_workers = Errors(channel="workers")
    root += worker
    root += on_app
    root += on_workers
    fire_and_flush(root, work(), "workers")
    assert worker.ran == ["raise0", "after0"]
    assert len(on_app.events) == 1
    assert on_workers.events == []
    assert on_app.events[0].channels == ("app",)


def test_one_exception_event_per_raising_handler(manager: Manager) -> None:
    class Twice(BaseComponent):
        @handler("work", priority=1)
        def _one(self) -> None:
            raise Boom("one")

        @handler("work")
        def _two(self) -> None:
            raise KeyError("two")

    errors = Errors()
    manager += Twice()
    manager += errors
    value = fire_and_flush(manager, work())
    assert [e.args[0] for e in errors.events] == [Boom, KeyError]
    assert isinstance(value.exception, Boom)  # the first one is kept


# ------------------------------------------------------------------ logging
def test_an_unhandled_error_is_logged(manager: Manager, caplog: pytest.LogCaptureFixture) -> None:
    manager += Faulty()
    with caplog.at_level(logging.ERROR, logger="netcomp"):
        fire_and_flush(manager, work(7))
    records = [r for r in caplog.records if r.name == "netcomp"]
    assert len(records) == 1
    record = records[0]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert record.exc_info[0] is Boom
    assert str(record.exc_info[1]) == "failed 7"
    message = record.getMessage()
    assert "_raise" in message
    assert "work" in message


def test_a_handled_error_is_not_logged(manager: Manager, caplog: pytest.LogCaptureFixture) -> None:
    manager += Faulty()
    errors = Errors()
    manager += errors
    with caplog.at_level(logging.DEBUG, logger="netcomp"):
        fire_and_flush(manager, work())
    assert len(errors.events) == 1
    assert [r for r in caplog.records if r.name == "netcomp"] == []


def test_an_error_in_an_exception_handler_is_logged_not_looped(
    manager: Manager, caplog: pytest.LogCaptureFixture
) -> None:
    class BadErrors(BaseComponent):
        def init(self) -> None:
            self.calls = 0

        @handler("exception")
        def _exception(self, *args: Any, **kwargs: Any) -> None:
            self.calls += 1
            raise KeyError("in the exception handler")

    manager += Faulty()
    bad = BadErrors()
    manager += bad
    with caplog.at_level(logging.ERROR, logger="netcomp"):
        value = manager.fire(work())
        manager.flush(limit=50)
    assert not manager.loop.queue  # flush ended because nothing was left, not at its limit
    assert value.value == "answer 0"
    assert bad.calls == 1
    records = [r for r in caplog.records if r.name == "netcomp"]
    assert len(records) == 1
    assert records[0].exc_info is not None
    assert records[0].exc_info[0] is KeyError


def test_errors_in_async_handlers_are_logged_when_unhandled(
    manager: Manager, caplog: pytest.LogCaptureFixture
) -> None:
    class Late(BaseComponent):
        @handler("work")
        async def _work(self) -> None:
            await self.wait("release")
            raise Boom("late")

    manager += Late()
    with caplog.at_level(logging.ERROR, logger="netcomp"):
        value = fire_and_flush(manager, work())
        assert caplog.records == []
        fire_and_flush(manager, Event.create("release"))
    assert isinstance(value.exception, Boom)
    records = [r for r in caplog.records if r.name == "netcomp"]
    assert len(records) == 1
    assert records[0].exc_info is not None
    assert records[0].exc_info[0] is Boom


# --------------------------------------------------------- signature errors
def test_a_handler_that_cannot_take_the_arguments_gets_a_clear_error(
    manager: Manager,
) -> None:
    class Narrow(BaseComponent):
        @handler("work")
        def _narrow(self) -> None:
            pass

        @handler("work", priority=-1)
        def _fine(self, *args: Any) -> str:
            return "ran"

    manager += Narrow()
    errors = Errors()
    manager += errors
    value = fire_and_flush(manager, work(1, 2))
    assert isinstance(value.exception, netcomp.HandlerSignatureError)
    message = str(value.exception)
    assert "_narrow" in message
    assert "work" in message
    assert isinstance(value.exception.__cause__, TypeError)
    assert value.value == "ran"
    assert errors.events[0].args[0] is netcomp.HandlerSignatureError


def test_a_type_error_raised_inside_a_handler_is_not_rewrapped(manager: Manager) -> None:
    class Inner(BaseComponent):
        @handler("work")
        def _work(self) -> None:
            len(42)  # type: ignore[arg-type]

    manager += Inner()
    manager += Errors()
    value = fire_and_flush(manager, work())
    assert type(value.exception) is TypeError


# --------------------------------------------------------------- error tree
def test_the_error_classes() -> None:
    assert issubclass(netcomp.TimeoutError, builtins.TimeoutError)
    assert issubclass(netcomp.TimeoutError, netcomp.NetcompError)
    assert netcomp.TimeoutError is not builtins.TimeoutError
    assert issubclass(netcomp.HandlerSignatureError, TypeError)
    assert issubclass(netcomp.HandlerSignatureError, netcomp.NetcompError)
    assert issubclass(netcomp.RegistrationError, ValueError)
    assert issubclass(netcomp.RegistrationError, netcomp.NetcompError)
    assert issubclass(netcomp.EventCancelled, netcomp.NetcompError)
    assert issubclass(netcomp.NetcompError, Exception)


def test_builtin_except_clauses_catch_netcomp_errors() -> None:
    with pytest.raises(builtins.TimeoutError):
        raise netcomp.TimeoutError("late")
    with pytest.raises(TypeError):
        raise netcomp.HandlerSignatureError("bad handler")
    with pytest.raises(ValueError):
        raise netcomp.RegistrationError("bad tree")


def test_registration_error_when_registered_elsewhere() -> None:
    first, second = Manager(), Manager()
    child = BaseComponent()
    child.register(first)
    with pytest.raises(netcomp.RegistrationError, match="already registered"):
        child.register(second)


def test_firing_something_that_is_not_an_event_is_a_type_error(manager: Manager) -> None:
    with pytest.raises(TypeError, match=r"Event\.create"):
        manager.fire("work")  # type: ignore[arg-type]
