"""Coroutine (``async def``) and circuits-style generator handlers (issue 2, "Coroutines").

Synchronous cases drive the loop with ``flush()``/``tick()``; cases that need the clock
(``sleep``, timeouts) or a sleeping loop run it in a thread with ``netcomp.testing.running``,
on virtual time moved by the test (``VirtualTime``): nothing happens before a deadline, and
it happens exactly at it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Generator, Iterator
from typing import Any

import pytest

import netcomp
from netcomp import BaseComponent, Event, Manager, Value, handler
from netcomp.testing import LoopWaits, Recorder, VirtualTime, fire_and_flush, running

STEP = 2.0**-10  # "just before a deadline"


class ask(Event):
    """Answered by :class:`Answerer`."""


class fail(Event):
    """Its handler raises :class:`Boom`."""


class hang(Event):
    """Its handler never finishes (waits for an event nobody fires)."""


class go(Event):
    """Starts the handler under test."""


class ping(Event):
    """A plain event to wait for."""


class Boom(RuntimeError):
    pass


class Answerer(BaseComponent):
    """``ask(x)`` -> ``x * 2``; ``fail()`` raises; ``hang()`` never finishes."""

    @handler("ask")
    def _ask(self, x: int = 1) -> int:
        return x * 2

    @handler("fail")
    def _fail(self) -> None:
        raise Boom("from the called handler")

    @handler("hang")
    async def _hang(self) -> None:
        await self.wait("never")


class Log(BaseComponent):
    """Records the names of events it hears (all channels)."""

    def init(self, names: tuple[str, ...] = ()) -> None:
        self.names = names
        self.seen: list[str] = []

    @handler(priority=-100)
    def _log(self, event: Event, *args: Any, **kwargs: Any) -> None:
        if not self.names or event.name in self.names:
            self.seen.append(event.name)


@pytest.fixture
def tree(manager: Manager) -> Manager:
    manager += Answerer()
    return manager


# ----------------------------------------------------------------- call()
def test_await_call_returns_the_result(tree: Manager) -> None:
    class Caller(BaseComponent):
        @handler("go")
        async def _go(self) -> Any:
            first = await self.call(ask(3))
            return await self.call(ask(first))

    tree += Caller()
    value = fire_and_flush(tree, go())
    assert value.errors is False
    assert value.value == 12


def test_await_call_on_a_channel(manager: Manager) -> None:
    class OnWork(BaseComponent):
        channel = "work"

        @handler("ask")
        def _ask(self) -> str:
            return "work"

    class OnOther(BaseComponent):
        channel = "other"

        @handler("ask")
        def _ask(self) -> str:
            return "other"

    class Caller(BaseComponent):
        channel = "caller"

        @handler("go")
        async def _go(self) -> Any:
            return await self.call(ask(), "work")

    manager += OnWork()
    manager += OnOther()
    manager += Caller()
    assert fire_and_flush(manager, go(), "caller").value == "work"


def test_await_call_reraises_the_called_handlers_exception(tree: Manager) -> None:
    class Caller(BaseComponent):
        def init(self) -> None:
            self.caught: BaseException | None = None

        @handler("go")
        async def _go(self) -> str:
            try:
                await self.call(fail())
            except Boom as error:
                self.caught = error
                return "recovered"
            return "not reached"

    caller = Caller()
    tree += caller
    value = fire_and_flush(tree, go())
    assert isinstance(caller.caught, Boom)
    assert str(caller.caught) == "from the called handler"
    assert value.value == "recovered"
    assert value.errors is False


def test_an_uncaught_reraised_exception_fails_the_caller_too(tree: Manager) -> None:
    class Caller(BaseComponent):
        @handler("go")
        async def _go(self) -> None:
            await self.call(fail())

    tree += Caller()
    errors: list[Event] = []
    tree += responder("exception", lambda event, *a, **k: errors.append(event))
    value = fire_and_flush(tree, go())
    assert value.errors is True
    assert isinstance(value.exception, Boom)
    # one exception event for the called handler, one for the caller that let it through
    assert sorted(e.kwargs["fevent"].name for e in errors) == ["fail", "go"]


def test_call_timeout_raises_netcomp_timeout_error(manager: Manager) -> None:
    class Caller(BaseComponent):
        def init(self) -> None:
            self.caught: BaseException | None = None
            self.elapsed = 0.0

        @handler("go")
        async def _go(self) -> str:
            start = self.loop.time()
            try:
                await self.call(hang(), timeout=0.05)
            except TimeoutError as error:  # the builtin catches it
                self.caught = error
            self.elapsed = self.loop.time() - start
            return "timed out"

    caller = Caller()
    manager += Answerer()
    manager += caller
    vt = VirtualTime(manager.loop)
    with running(manager) as recorder:
        value = manager.fire(go())
        vt.wait_timer(0.05)  # the call's timeout is armed
        vt.advance_to(0.05 - STEP)
        assert not value.result and caller.caught is None  # not a moment early
        vt.advance_to(0.05)
        event = recorder.wait_for("go", timeout=5)
    assert event.value is not None
    assert event.value.value == "timed out"
    assert isinstance(caller.caught, netcomp.TimeoutError)
    assert isinstance(caller.caught, TimeoutError)
    assert caller.elapsed == 0.05
    assert manager.loop.scheduled() == []


def test_call_with_a_timeout_that_is_not_reached_returns_the_result(tree: Manager) -> None:
    class Caller(BaseComponent):
        @handler("go")
        async def _go(self) -> Any:
            return await self.call(ask(5), timeout=30)

    tree += Caller()
    value = fire_and_flush(tree, go())
    assert value.value == 10
    # the timeout's timer was cancelled: no live timer is left behind
    assert tree.loop.scheduled() == []


def test_call_rejects_what_is_not_an_event(tree: Manager) -> None:
    with pytest.raises(TypeError, match="Event"):
        tree.call("ask")  # type: ignore[arg-type]


# ----------------------------------------------------------------- wait()
class Waiter(BaseComponent):
    """``go`` waits for ``ping`` (on the given channels) and returns the event it got."""

    def init(self, *channels: Any, timeout: float | None = None) -> None:
        self.wait_channels = channels
        self.timeout = timeout

    @handler("go")
    async def _go(self) -> Any:
        return await self.wait("ping", *self.wait_channels, timeout=self.timeout)


def test_wait_returns_the_event_once_it_completed(manager: Manager) -> None:
    manager += Waiter()
    log: list[str] = []

    class Slow(BaseComponent):
        @handler("ping")
        async def _ping(self) -> str:
            log.append("ping started")
            await self.wait("release")
            log.append("ping finished")
            return "pinged"

    manager += Slow()
    value = fire_and_flush(manager, go())
    assert value.result is False
    event = ping()
    fire_and_flush(manager, event)
    # ping's handler is suspended: ping is not done, so the waiter still waits
    assert log == ["ping started"]
    assert value.result is False
    fire_and_flush(manager, Event.create("release"))
    assert value.result is True
    assert value.value is event
    assert event.value is not None
    assert event.value.value == "pinged"


def test_wait_with_channels_matches_only_those_channels(manager: Manager) -> None:
    manager += Waiter("b")
    value = fire_and_flush(manager, go())
    fire_and_flush(manager, ping(), "a")
    assert value.result is False
    wanted = ping()
    fire_and_flush(manager, wanted, "b")
    assert value.result is True
    assert value.value is wanted


def test_wait_without_channels_matches_any_channel(manager: Manager) -> None:
    manager += Waiter()
    value = fire_and_flush(manager, go())
    event = ping()
    fire_and_flush(manager, event, "somewhere")
    assert value.value is event


def test_wait_ignores_events_of_other_names(manager: Manager) -> None:
    manager += Waiter()
    value = fire_and_flush(manager, go())
    fire_and_flush(manager, Event.create("pong"))
    assert value.result is False
    fire_and_flush(manager, ping())
    assert value.result is True


def test_waiting_on_a_completed_event_returns_at_once(manager: Manager) -> None:
    event = ping()
    done = fire_and_flush(manager, event)
    assert done.result

    class Late(BaseComponent):
        @handler("go")
        async def _go(self) -> Any:
            return await self.wait(event)

    manager += Late()
    value = manager.fire(go())
    manager.tick()  # a single pass: the coroutine must not suspend
    assert value.result is True
    assert value.value is event


def test_waiting_on_a_pending_event_instance(manager: Manager) -> None:
    target = ping()
    other = ping()

    class Late(BaseComponent):
        @handler("go")
        async def _go(self) -> Any:
            return await self.wait(target)

    manager += Late()
    value = fire_and_flush(manager, go())
    fire_and_flush(manager, other)  # same name, another instance
    assert value.result is False
    fire_and_flush(manager, target)
    assert value.value is target


def test_wait_timeout_raises_netcomp_timeout_error(manager: Manager) -> None:
    manager += Waiter(timeout=0.05)
    vt = VirtualTime(manager.loop)
    with running(manager, check_errors=False) as recorder:
        value = manager.fire(go())
        vt.wait_timer(0.05)
        vt.advance_to(0.05 - STEP)
        assert not value.result and "ping" in manager.loop.waiters  # still waiting
        vt.advance_to(0.05)
        event = recorder.wait_for("go", timeout=5)
        recorder.wait_for("exception", timeout=5)
    assert event.value is not None
    assert isinstance(event.value.exception, netcomp.TimeoutError)
    # the waiter was removed: a later ping finds nobody waiting
    assert "ping" not in manager.loop.waiters


def test_wait_rejects_what_is_not_a_name_or_event(manager: Manager) -> None:
    with pytest.raises(TypeError, match="wait"):
        manager.wait(42)  # type: ignore[arg-type]


# ------------------------------------------------------------------ sleep
def test_sleep_suspends_while_other_events_are_handled(manager: Manager) -> None:
    class Sleeper(BaseComponent):
        def init(self) -> None:
            self.log: list[str] = []
            self.slept = 0.0
            self.sleeper_done_when_other_ran: bool | None = None

        @handler("go")
        async def _go(self, event: Event) -> str:
            self.log.append("sleep")
            self.fire(Event.create("other", event))
            start = self.loop.time()
            await netcomp.sleep(0.05)
            self.slept = self.loop.time() - start
            self.log.append("woke")
            return "rested"

        @handler("other")
        def _other(self, sleeping_event: Event) -> None:
            assert sleeping_event.value is not None
            self.sleeper_done_when_other_ran = sleeping_event.value.result
            self.log.append("other")

    sleeper = Sleeper()
    manager += sleeper
    vt = VirtualTime(manager.loop)
    with running(manager) as recorder:
        manager.fire(go())
        vt.wait_timer(0.05)  # asleep; 'other' was handled meanwhile
        assert sleeper.log == ["sleep", "other"]
        vt.advance_to(0.05 - STEP)
        assert sleeper.log == ["sleep", "other"]
        vt.advance_to(0.05)
        event = recorder.wait_for("go", timeout=5)
    assert event.value is not None
    assert event.value.value == "rested"
    assert sleeper.log == ["sleep", "other", "woke"]
    assert sleeper.sleeper_done_when_other_ran is False
    assert sleeper.slept == 0.05


def test_sleep_outside_a_loop_is_a_clear_error() -> None:
    async def outside() -> None:
        await netcomp.sleep(0)

    coro = outside()
    with pytest.raises(RuntimeError, match="loop"):
        coro.send(None)
    coro.close()


def test_sleep_rejects_negative_seconds() -> None:
    with pytest.raises(ValueError, match="seconds"):
        netcomp.sleep(-1)


# --------------------------------------------------- async handler results
def test_the_coroutines_return_value_is_the_events_value_once_it_ends(manager: Manager) -> None:
    class Late(BaseComponent):
        @handler("go")
        async def _go(self) -> str:
            await self.wait("ping")
            return "finished"

    manager += Late()
    value = manager.fire(go())
    manager.flush()
    assert value.result is False
    assert value.value is None
    fire_and_flush(manager, ping())
    assert value.result is True
    assert value.value == "finished"


def test_a_coroutine_that_never_suspends_completes_in_its_own_pass(manager: Manager) -> None:
    class Quick(BaseComponent):
        @handler("go")
        async def _go(self) -> str:
            return "quick"

    manager += Quick()
    value = manager.fire(go())
    manager.tick()
    assert value.result is True
    assert value.value == "quick"


def test_results_of_sync_and_async_handlers_combine(manager: Manager) -> None:
    class Both(BaseComponent):
        @handler("go", priority=1)
        async def _late(self) -> str:
            await self.wait("ping")
            return "async"

        @handler("go")
        def _now(self) -> str:
            return "sync"

    manager += Both()
    value = fire_and_flush(manager, go())
    assert value.result is False
    fire_and_flush(manager, ping())
    assert value.result is True
    assert sorted(value.value) == ["async", "sync"]


def responder(name: str, func: Any) -> BaseComponent:
    """A component whose only handler is ``func`` for events named ``name``."""
    component = BaseComponent()
    component.add_handler(func, name)
    return component


def test_an_exception_in_an_async_handler_is_the_values_error(manager: Manager) -> None:
    class Bad(BaseComponent):
        @handler("go")
        async def _go(self) -> None:
            await self.wait("ping")
            raise Boom("after the await")

    bad = Bad()
    manager += bad
    errors: list[Event] = []
    manager += responder("exception", lambda event, *a, **k: errors.append(event))
    go_event = go()
    value = fire_and_flush(manager, go_event)
    assert value.result is False
    fire_and_flush(manager, ping())
    assert value.result is True
    assert value.errors is True
    assert isinstance(value.exception, Boom)
    assert len(errors) == 1
    etype, error, tb = errors[0].args
    assert etype is Boom
    assert error is value.exception
    assert tb is error.__traceback__
    assert errors[0].kwargs["fevent"] is go_event
    assert errors[0].kwargs["handler"] == bad._go


def test_a_long_chain_of_awaits_does_not_recurse(manager: Manager) -> None:
    depths: list[int] = []

    def depth() -> int:
        frame = sys._getframe()
        n = 0
        while frame is not None:
            n += 1
            frame = frame.f_back  # type: ignore[assignment]
        return n

    class Step(BaseComponent):
        @handler("ask")
        def _ask(self, x: int) -> int:
            depths.append(depth())
            return x + 1

    class Chain(BaseComponent):
        @handler("go")
        async def _go(self, count: int) -> int:
            x = 0
            for _ in range(count):
                x = await self.call(ask(x))
            return x

    manager += Step()
    manager += Chain()
    value = manager.fire(go(2000))
    manager.flush()
    assert value.errors is False, value.exception
    assert value.value == 2000
    assert len(depths) == 2000
    assert max(depths) - min(depths) <= 5


def test_a_long_chain_of_already_done_awaits_does_not_recurse(manager: Manager) -> None:
    done = fire_and_flush(manager, ping())

    class Chain(BaseComponent):
        @handler("go")
        async def _go(self) -> int:
            n = 0
            for _ in range(5000):
                await done
                n += 1
            return n

    manager += Chain()
    value = fire_and_flush(manager, go())
    assert value.errors is False, value.exception
    assert value.value == 5000


def test_awaiting_a_foreign_awaitable_is_a_clear_error(manager: Manager) -> None:
    loop = asyncio.new_event_loop()
    try:
        foreign = loop.create_future()

        class Confused(BaseComponent):
            def init(self) -> None:
                self.caught: BaseException | None = None

            @handler("go")
            async def _go(self) -> str:
                try:
                    await foreign
                except RuntimeError as error:
                    self.caught = error
                return "carried on"

        confused = Confused()
        manager += confused
        value = fire_and_flush(manager, go())
        assert value.value == "carried on"
        assert isinstance(confused.caught, RuntimeError)
        message = str(confused.caught)
        assert "await" in message
        assert "call()" in message and "wait()" in message and "sleep()" in message
    finally:
        foreign.cancel()
        loop.close()


def test_an_uncaught_foreign_await_error_lands_on_the_value(manager: Manager) -> None:
    class Confused(BaseComponent):
        @handler("go")
        async def _go(self) -> None:
            await asyncio.sleep(0)

    manager += Confused()
    manager += responder("exception", lambda *a, **k: None)
    value = fire_and_flush(manager, go())
    assert value.result is True
    assert isinstance(value.exception, RuntimeError)


# ------------------------------------------------------------ nothing polls
def test_a_suspended_coroutine_leaves_the_loop_idle(manager: Manager) -> None:
    class Idle(BaseComponent):
        @handler("go")
        async def _go(self) -> str:
            await self.wait("never")
            return "woken"

    manager += Idle()
    waits = LoopWaits(manager.loop)
    with running(manager) as recorder:
        manager.fire(go())
        recorder.wait_for("go", timeout=5, done=False)
        loop = manager.loop

        def parked() -> bool:
            return "never" in loop.waiters and not loop.queue and not loop.scheduled()

        # Blocked in the selector with no timeout at all: a polling loop would wait with
        # one, so this shows it costs nothing while the coroutine is suspended.
        assert waits.wait_blocked(parked, timeout=5) is None
        manager.fire(Event.create("never"))
        event = recorder.wait_for("go", timeout=5)
    assert event.value is not None
    assert event.value.value == "woken"


# ------------------------------------------------------------- generators
def test_generator_yields_are_appended_to_the_value(manager: Manager) -> None:
    class Gen(BaseComponent):
        @handler("go")
        def _go(self) -> Iterator[str]:
            yield "a"
            yield "b"
            yield "c"

    manager += Gen()
    value = fire_and_flush(manager, go())
    assert value.value == ["a", "b", "c"]


def test_a_generator_yielding_once_gives_a_scalar(manager: Manager) -> None:
    class Gen(BaseComponent):
        @handler("go")
        def _go(self) -> Iterator[str]:
            yield "only"

    manager += Gen()
    assert fire_and_flush(manager, go()).value == "only"


def test_yield_call_sends_back_the_value(tree: Manager) -> None:
    class Gen(BaseComponent):
        def init(self) -> None:
            self.got: Any = None

        @handler("go")
        def _go(self) -> Generator[Any, Any, None]:
            value = yield self.call(ask(21))
            self.got = value
            yield value.value

    gen = Gen()
    tree += gen
    value = fire_and_flush(tree, go())
    assert isinstance(gen.got, Value)
    assert gen.got.result is True
    assert gen.got.value == 42
    assert value.value == 42


def test_yield_call_of_a_failing_handler_sends_back_the_error_value(tree: Manager) -> None:
    class Gen(BaseComponent):
        def init(self) -> None:
            self.got: Any = None

        @handler("go")
        def _go(self) -> Generator[Any, Any, None]:
            self.got = yield self.call(fail())
            yield "carried on"

    gen = Gen()
    tree += gen
    tree += responder("exception", lambda *a, **k: None)
    value = fire_and_flush(tree, go())
    assert isinstance(gen.got, Value)
    assert isinstance(gen.got.exception, Boom)
    assert value.value == "carried on"


def test_yield_wait_resumes_after_the_event_completes(manager: Manager) -> None:
    class Gen(BaseComponent):
        def init(self) -> None:
            self.log: list[Any] = []

        @handler("go")
        def _go(self) -> Generator[Any, Any, None]:
            self.log.append("waiting")
            got = yield self.wait("ping")
            self.log.append(got)
            yield "resumed"

    gen = Gen()
    manager += gen
    manager += responder("ping", lambda: "pong")
    value = fire_and_flush(manager, go())
    assert gen.log == ["waiting"]
    assert value.result is False
    ping_value = fire_and_flush(manager, ping())
    assert value.result is True
    assert value.value == "resumed"
    # circuits' meaning: the generator gets the waited event's Value back
    assert gen.log == ["waiting", ping_value]
    assert ping_value.value == "pong"


def test_bare_yield_gives_other_events_a_turn(manager: Manager) -> None:
    log: list[str] = []

    class Gen(BaseComponent):
        @handler("go")
        def _go(self) -> Iterator[None]:
            log.append("gen 1")
            yield
            log.append("gen 2")
            yield
            log.append("gen 3")

    manager += Gen()
    manager += responder("other", lambda: log.append("other"))
    value = manager.fire(go())
    manager.fire(Event.create("other"))
    manager.flush()
    assert value.result is True
    assert value.value is None
    assert log == ["gen 1", "other", "gen 2", "gen 3"]


def test_bare_yield_lets_what_the_generator_fired_run_first(manager: Manager) -> None:
    # circuits' idiom: fire something, yield once, and it has been handled
    log: list[str] = []

    class Gen(BaseComponent):
        @handler("go")
        def _go(self) -> Iterator[None]:
            log.append("gen fires")
            self.fire(Event.create("other"))
            yield
            log.append("gen resumed")

    manager += Gen()
    manager += responder("other", lambda: log.append("other"))
    value = fire_and_flush(manager, go())
    assert value.result is True
    assert log == ["gen fires", "other", "gen resumed"]


def test_bare_yield_does_not_block_the_loop_of_other_generators(manager: Manager) -> None:
    log: list[str] = []

    class Gen(BaseComponent):
        @handler("go")
        def _go(self, tag: str) -> Iterator[None]:
            for i in range(3):
                log.append(f"{tag}{i}")
                yield

    manager += Gen()
    a = manager.fire(go("a"))
    b = manager.fire(go("b"))
    manager.flush()
    assert a.result and b.result
    assert log == ["a0", "b0", "a1", "b1", "a2", "b2"]


def test_every_yield_gives_the_loop_a_turn(manager: Manager) -> None:
    # circuits' ticks: one step of a generator handler per loop turn
    log: list[str] = []

    class Gen(BaseComponent):
        @handler("go")
        def _go(self, tag: str) -> Iterator[str]:
            for i in range(3):
                log.append(f"{tag}{i}")
                yield f"{tag}{i}"

    manager += Gen()
    a = manager.fire(go("a"))
    b = manager.fire(go("b"))
    manager.flush()
    assert log == ["a0", "b0", "a1", "b1", "a2", "b2"]
    assert a.value == ["a0", "a1", "a2"] and b.value == ["b0", "b1", "b2"]


def test_a_generator_that_never_ends_does_not_starve_the_loop(manager: Manager) -> None:
    class Forever(BaseComponent):
        @handler("go")
        def _go(self) -> Iterator[str]:
            while True:
                yield "again"

    manager += Forever()
    manager += responder("other", lambda: "served")
    forever = manager.fire(go())
    manager.tick()
    assert forever.value == "again"  # one step, then the loop's turn
    other = manager.fire(Event.create("other"))
    for _ in range(4):
        manager.tick()
    assert other.result and other.value == "served"
    assert forever.result is False and len(forever.value) == 3


def test_a_yielded_value_is_a_result_as_in_circuits(tree: Manager) -> None:
    class Gen(BaseComponent):
        @handler("go")
        def _go(self) -> Generator[Any, Any, None]:
            yield (yield self.call(ask(21)))  # the Value the call sent back, yielded
            pending = self.fire(ask(1))
            yield pending  # not done yet: its result joins once it is

    tree += Gen()
    value = fire_and_flush(tree, go())
    assert value.value == [42, 2]


def test_a_yielded_failed_value_is_the_events_error(tree: Manager) -> None:
    class Gen(BaseComponent):
        @handler("go")
        def _go(self) -> Generator[Any, Any, None]:
            yield self.fire(fail())
            yield "carried on"

    tree += Gen()
    tree += responder("exception", lambda *a, **k: None)
    value = fire_and_flush(tree, go())
    assert isinstance(value.exception, Boom)
    assert value.value == "carried on"


def test_a_generator_error_lands_on_the_value(manager: Manager) -> None:
    class Gen(BaseComponent):
        @handler("go")
        def _go(self) -> Iterator[str]:
            yield "partial"
            raise Boom("mid-stream")

    manager += Gen()
    errors: list[Event] = []
    manager += responder("exception", lambda event, *a, **k: errors.append(event))
    value = fire_and_flush(manager, go())
    assert value.value == "partial"
    assert isinstance(value.exception, Boom)
    assert len(errors) == 1


def test_a_generator_waits_while_other_events_run_under_a_live_loop(
    app: tuple[Manager, Recorder],
) -> None:
    manager, recorder = app

    class Gen(BaseComponent):
        @handler("go")
        def _go(self) -> Generator[Any, Any, None]:
            got = yield self.wait("ping")
            yield got.event.args[0]

    gen = Gen()
    gen.register(manager)
    recorder.wait_for("registered", timeout=5, predicate=lambda e: e.args[0] is gen)
    manager.fire(go())
    recorder.wait_for("go", timeout=5, done=False)
    manager.fire(ping("payload"))
    event = recorder.wait_for("go", timeout=5)
    assert event.value is not None
    assert event.value.value == "payload"
