"""Values: what handlers returned for an event (docs/architecture.md, "Dispatch").

Covers scalar/list results, ``None`` ignored, ``result`` only once done, ``get()``,
``errors``/``exception``, chaining (a handler returning another event's Value), ``notify`` and
``<name>_value_changed``, awaiting a Value in a coroutine, and ``add_done_callback``.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import pytest

from netcomp import BaseComponent, Event, Manager, Value, handler
from netcomp.testing import fire_and_flush


class ask(Event):
    """The event under test."""


class inner(Event):
    """An event whose Value an outer handler returns (chaining)."""


class release(Event):
    """Lets a suspended handler go on."""


class Answers(BaseComponent):
    """Handlers of ``ask`` returning the results it was built with, in priority order."""

    def init(self, *results: Any) -> None:
        for index, result in enumerate(results):
            self.add_handler(self._returning(result), "ask", priority=-index)

    @staticmethod
    def _returning(result: Any) -> Any:
        def answer() -> Any:
            return result

        return answer


# ------------------------------------------------------------------ results
def test_one_result_reads_back_as_a_scalar(manager: Manager) -> None:
    manager += Answers(42)
    value = fire_and_flush(manager, ask())
    assert value.result is True
    assert value.value == 42
    assert value.errors is False
    assert value.exception is None


def test_several_results_read_back_as_a_list_in_handler_order(manager: Manager) -> None:
    manager += Answers("first", "second", "third")
    value = fire_and_flush(manager, ask())
    assert value.value == ["first", "second", "third"]


def test_a_list_result_from_one_handler_is_not_merged(manager: Manager) -> None:
    manager += Answers([1, 2])
    value = fire_and_flush(manager, ask())
    assert value.value == [1, 2]
    manager2 = Manager()
    manager2 += Answers([1, 2], 3)
    assert fire_and_flush(manager2, ask()).value == [[1, 2], 3]


def test_none_results_are_ignored(manager: Manager) -> None:
    manager += Answers(None, "only", None)
    assert fire_and_flush(manager, ask()).value == "only"

    other = Manager()
    other += Answers(None, 1, None, 2)
    assert fire_and_flush(other, ask()).value == [1, 2]


def test_falsy_results_other_than_none_are_kept(manager: Manager) -> None:
    manager += Answers(0, "", False)
    assert fire_and_flush(manager, ask()).value == [0, "", False]


def test_no_handler_and_only_none_results_give_none(manager: Manager) -> None:
    value = fire_and_flush(manager, ask())
    assert value.result is True
    assert value.value is None

    manager += Answers(None, None)
    value = fire_and_flush(manager, ask())
    assert value.result is True
    assert value.value is None


def test_result_is_false_until_the_event_is_done(manager: Manager) -> None:
    manager += Answers(1)
    value = manager.fire(ask())
    assert value.result is False
    assert value.done is False
    assert value.value is None
    manager.tick()
    assert value.result is True
    assert value.done is True
    assert value.value == 1


def test_fire_returns_the_events_own_value(manager: Manager) -> None:
    event = ask()
    value = manager.fire(event)
    assert event.value is value
    assert value.event is event
    assert isinstance(value, Value) and not value.result and value.manager is manager


# ------------------------------------------------------------------- errors
class Boom(ValueError):
    pass


class Raising(BaseComponent):
    def init(self, error: BaseException, also: Any = None) -> None:
        self.error = error
        self.also = also

    @handler("ask", priority=1)
    def _raise(self) -> None:
        raise self.error

    @handler("ask")
    def _also(self) -> Any:
        return self.also


def test_get_returns_the_result_once_done(manager: Manager) -> None:
    manager += Answers("x")
    value = manager.fire(ask())
    with pytest.raises(RuntimeError, match="not done"):
        value.get()
    manager.flush()
    assert value.get() == "x"


def test_get_raises_the_handlers_exception(manager: Manager) -> None:
    error = Boom("nope")
    manager += Raising(error)
    value = fire_and_flush(manager, ask())
    assert value.result is True
    assert value.errors is True
    assert value.exception is error
    with pytest.raises(Boom) as caught:
        value.get()
    assert caught.value is error


def test_other_handlers_results_are_kept_alongside_an_error(manager: Manager) -> None:
    manager += Raising(Boom("nope"), also="kept")
    value = fire_and_flush(manager, ask())
    assert value.errors is True
    assert isinstance(value.exception, Boom)
    assert value.value == "kept"


def test_the_first_error_is_the_one_kept(manager: Manager) -> None:
    first, second = Boom("first"), Boom("second")
    manager += Raising(first)
    manager += Raising(second)
    value = fire_and_flush(manager, ask())
    assert value.exception is first


# ----------------------------------------------------------------- chaining
class Chainer(BaseComponent):
    """``ask`` returns the Value of an ``inner`` event it fires."""

    def init(self) -> None:
        self.done_order: list[str] = []

    @handler("ask")
    def _ask(self) -> Value:
        value = self.fire(inner())
        value.add_done_callback(lambda _v: self.done_order.append("inner"))
        return value


def responder(name: str, func: Any) -> BaseComponent:
    """A component whose only handler is ``func`` for events named ``name``."""
    component = BaseComponent()
    component.add_handler(func, name)
    return component


def test_chained_value_takes_the_inner_result(manager: Manager) -> None:
    chainer = Chainer()
    manager += chainer
    manager += responder("inner", lambda: "from inner")
    value = manager.fire(ask())
    value.add_done_callback(lambda _v: chainer.done_order.append("outer"))
    manager.tick()  # ask is dispatched; inner is only queued
    assert value.result is False
    manager.flush()
    assert value.result is True
    assert value.value == "from inner"
    assert chainer.done_order == ["inner", "outer"]


def test_chained_value_waits_for_a_suspended_inner_handler(manager: Manager) -> None:
    class Slow(BaseComponent):
        @handler("inner")
        async def _inner(self) -> str:
            await self.wait("release")
            return "late"

    manager += Chainer()
    manager += Slow()
    value = fire_and_flush(manager, ask())
    assert value.result is False
    fire_and_flush(manager, release())
    assert value.result is True
    assert value.value == "late"


def test_chained_value_takes_the_inner_error(manager: Manager) -> None:
    error = Boom("inner failed")

    class Failing(BaseComponent):
        @handler("inner")
        def _inner(self) -> None:
            raise error

    manager += Chainer()
    manager += Failing()
    errors: list[Event] = []
    manager += responder("exception", lambda event, *a, **k: errors.append(event))
    value = fire_and_flush(manager, ask())
    assert value.result is True
    assert value.errors is True
    assert value.exception is error
    with pytest.raises(Boom):
        value.get()
    # the error was raised once, by the inner handler
    assert [e.kwargs["fevent"].name for e in errors] == ["inner"]


def test_chaining_mixes_with_plain_results(manager: Manager) -> None:
    manager += Chainer()
    manager += Answers("plain")
    manager += responder("inner", lambda: "chained")
    value = fire_and_flush(manager, ask())
    # Chainer and Answers have equal priority: Chainer registered first, but its result
    # arrives only when the inner event is done.
    assert sorted(value.value) == ["chained", "plain"]


# ------------------------------------------------------------------- notify
class Watcher(BaseComponent):
    def init(self, channel: Any = "*") -> None:
        self.channel = channel
        self.changes: list[tuple[Value, Any]] = []

    @handler("ask_value_changed")
    def _changed(self, value: Value) -> None:
        self.changes.append((value, value.value))


def test_notify_fires_value_changed_for_each_result(manager: Manager) -> None:
    manager += Answers(1, None, 2)
    watcher = Watcher()
    manager += watcher
    value = manager.fire(ask())
    value.notify = True
    manager.flush()
    assert value.value == [1, 2]
    assert len(watcher.changes) == 2
    assert all(v is value for v, _ in watcher.changes)


def test_value_changed_is_fired_on_the_events_channels(manager: Manager) -> None:
    answers = Answers(1)
    answers.channel = "work"
    manager += answers
    on_work = Watcher(channel="work")
    elsewhere = Watcher(channel="elsewhere")
    manager += on_work
    manager += elsewhere
    value = manager.fire(ask(), "work")
    value.notify = True
    manager.flush()
    assert len(on_work.changes) == 1
    assert elsewhere.changes == []


def test_notify_with_a_channel_sends_value_changed_there(manager: Manager) -> None:
    answers = Answers(7)
    answers.channel = "work"
    manager += answers
    on_work = Watcher(channel="work")
    on_notes = Watcher(channel="notes")
    manager += on_work
    manager += on_notes
    value = manager.fire(ask(), "work")
    value.notify = "notes"
    manager.flush()
    assert on_work.changes == []
    assert [(v, seen) for v, seen in on_notes.changes] == [(value, 7)]


def test_no_value_changed_without_notify(manager: Manager) -> None:
    manager += Answers(1, 2)
    watcher = Watcher()
    manager += watcher
    fire_and_flush(manager, ask())
    assert watcher.changes == []


def test_notify_fires_when_a_coroutine_result_arrives(manager: Manager) -> None:
    class Late(BaseComponent):
        @handler("ask")
        async def _ask(self) -> str:
            await self.wait("release")
            return "late"

    manager += Late()
    watcher = Watcher()
    manager += watcher
    value = manager.fire(ask())
    value.notify = True
    manager.flush()
    assert watcher.changes == []
    fire_and_flush(manager, release())
    assert [seen for _, seen in watcher.changes] == ["late"]


def test_notify_set_on_the_event_before_firing(manager: Manager) -> None:
    manager += Answers(1, 2)
    watcher = Watcher()
    manager += watcher
    event = ask()
    assert event.notify is False
    event.notify = True  # circuits' way: on the event, before it is fired
    assert event.notify is True
    value = fire_and_flush(manager, event)
    assert value is event.value and value.notify is True
    assert len(watcher.changes) == 2  # one per result
    assert all(v is value for v, _ in watcher.changes)
    again = fire_and_flush(manager, event)  # the setting stays with the event
    assert again is not value
    assert len(watcher.changes) == 4 and watcher.changes[-1][0] is again


def test_notify_declared_on_the_event_class(manager: Manager) -> None:
    class noisy(Event):
        name = "ask"
        notify = True

    class quiet(noisy):
        name = "ask"
        notify = False

    class inherits(noisy):
        name = "ask"

    manager += Answers(5)
    watcher = Watcher()
    manager += watcher
    fire_and_flush(manager, noisy())
    fire_and_flush(manager, inherits())
    fire_and_flush(manager, quiet())
    fire_and_flush(manager, ask())
    assert [seen for _, seen in watcher.changes] == [5, 5]
    assert noisy().notify is True and quiet().notify is False


def test_waiting_for_an_event_given_notify_before_it_is_fired(manager: Manager) -> None:
    class Waiter(BaseComponent):
        def init(self) -> None:
            self.got: list[Any] = []

        @handler("go")
        async def _go(self, target: Event) -> None:
            self.got.append(await self.wait(target))

    manager += Answers(1)
    waiter = Waiter()
    manager += waiter
    target = ask()
    target.notify = True  # a Value of its own, not yet fired
    fire_and_flush(manager, Event.create("go", target))
    assert waiter.got == []
    fire_and_flush(manager, target)
    assert waiter.got == [target]


# ------------------------------------------------------ circuits' reading
def test_iterating_and_indexing_read_the_results(manager: Manager) -> None:
    manager += Answers("foo", "bar", "baz")
    value = fire_and_flush(manager, ask())
    assert list(value) == value.results() == ["foo", "bar", "baz"]
    assert value[0] == "foo" and value[-1] == "baz"
    assert "bar" in value and "nope" not in value
    assert str(value) == "['foo', 'bar', 'baz']"


def test_one_result_is_one_item(manager: Manager) -> None:
    manager += Answers("Hello World!")
    value = fire_and_flush(manager, ask())
    assert list(value) == ["Hello World!"]  # not its characters
    assert "Hello World!" in value
    assert str(value) == "Hello World!"
    assert bool(value)


def test_no_result_iterates_as_nothing(manager: Manager) -> None:
    value = fire_and_flush(manager, ask())
    assert list(value) == [] and value.results() == []
    assert None not in value
    assert str(value) == "None"


def test_a_failed_value_unpacks_as_type_error_and_traceback(manager: Manager) -> None:
    error = Boom("nope")
    manager += Raising(error)
    value = fire_and_flush(manager, ask())
    etype, evalue, etraceback = value
    assert etype is Boom and evalue is error
    assert isinstance(etraceback, TracebackType) and etraceback is error.__traceback__
    assert value.value is None  # the error is not a result


# ---------------------------------------------------------------- awaiting
def test_a_value_is_awaitable_in_an_async_handler(manager: Manager) -> None:
    class Asker(BaseComponent):
        def init(self) -> None:
            self.got: Any = None

        @handler("start")
        async def _start(self) -> None:
            value = self.fire(ask())
            assert value.result is False
            self.got = await value

    asker = Asker()
    manager += asker
    manager += Answers("a", "b")
    start_value = fire_and_flush(manager, Event.create("start"))
    assert start_value.errors is False
    assert asker.got == ["a", "b"]


def test_awaiting_a_done_value_returns_at_once(manager: Manager) -> None:
    manager += Answers(5)
    done = fire_and_flush(manager, ask())
    assert done.result

    class Asker(BaseComponent):
        @handler("start")
        async def _start(self) -> Any:
            return await done

    manager += Asker()
    start = manager.fire(Event.create("start"))
    manager.tick()  # one pass: the coroutine must finish without suspending
    assert start.result is True
    assert start.value == 5


def test_awaiting_a_value_raises_the_handlers_error(manager: Manager) -> None:
    error = Boom("bad")
    manager += Raising(error)

    class Asker(BaseComponent):
        def init(self) -> None:
            self.caught: BaseException | None = None

        @handler("start")
        async def _start(self) -> str:
            try:
                await self.fire(ask())
            except Boom as exc:
                self.caught = exc
            return "survived"

    asker = Asker()
    manager += asker
    start = fire_and_flush(manager, Event.create("start"))
    assert asker.caught is error
    assert start.value == "survived"
    assert start.errors is False


# ----------------------------------------------------------- done callbacks
def test_done_callback_runs_once_when_the_value_completes(manager: Manager) -> None:
    manager += Answers(3)
    calls: list[tuple[Value, bool, Any]] = []
    value = manager.fire(ask())
    value.add_done_callback(lambda v: calls.append((v, v.result, v.value)))
    assert calls == []
    manager.flush()
    assert calls == [(value, True, 3)]
    manager.fire(Event.create("unrelated"))
    manager.flush()
    assert len(calls) == 1


def test_done_callback_is_called_at_once_when_already_done(manager: Manager) -> None:
    manager += Answers(3)
    value = fire_and_flush(manager, ask())
    calls: list[Value] = []
    value.add_done_callback(calls.append)
    assert calls == [value]


def test_done_callbacks_run_in_the_order_added(manager: Manager) -> None:
    value = manager.fire(ask())
    order: list[int] = []
    for i in range(3):
        value.add_done_callback(lambda _v, i=i: order.append(i))  # type: ignore[misc]
    manager.flush()
    assert order == [0, 1, 2]


def test_a_removed_done_callback_is_not_called(manager: Manager) -> None:
    value = manager.fire(ask())
    calls: list[str] = []

    def kept(_v: Value) -> None:
        calls.append("kept")

    def removed(_v: Value) -> None:
        calls.append("removed")

    value.add_done_callback(kept)
    value.add_done_callback(removed)
    value.remove_done_callback(removed)
    manager.flush()
    assert calls == ["kept"]


def test_done_callback_sees_the_error_of_a_failed_event(manager: Manager) -> None:
    manager += Raising(Boom("x"))
    seen: list[BaseException | None] = []
    value = manager.fire(ask())
    value.add_done_callback(lambda v: seen.append(v.exception))
    manager.flush()
    assert len(seen) == 1
    assert isinstance(seen[0], Boom)


def test_repr_shows_name_and_state(manager: Manager) -> None:
    manager += Answers(1)
    value = manager.fire(ask())
    assert "ask" in repr(value)
    assert "pending" in repr(value)
    manager.flush()
    assert "done" in repr(value)
