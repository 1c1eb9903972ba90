"""Events: names, arguments, repr, firing mistakes, stop(), cancel() and firing again."""

from __future__ import annotations

from typing import Any

import pytest

from netcomp import BaseComponent, Component, Event, EventCancelled, Manager, handler
from netcomp.testing import Trace


class ping(Event):
    """A test event."""


class Renamed(Event):
    """A test event whose handled name differs from its class name."""

    name = "renamed_event"


class RenamedChild(Renamed):
    """Inherits nothing of its parent's name: a subclass is named after itself."""


class Calls(BaseComponent):
    """Records (label, args) for each handler in a fixed priority order."""

    def init(self, channel: Any = "*") -> None:
        self.channel = channel
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.stop_in: str | None = None

    def _note(self, label: str, event: Event, args: tuple[Any, ...]) -> str:
        self.calls.append((label, args))
        if self.stop_in == label:
            event.stop()
        return label

    @handler("ping", priority=3)
    def first(self, event: Event, *args: Any) -> str:
        return self._note("first", event, args)

    @handler("ping", priority=2)
    def second(self, event: Event, *args: Any) -> str:
        return self._note("second", event, args)

    @handler("ping", priority=1)
    def third(self, event: Event, *args: Any) -> str:
        return self._note("third", event, args)


# ------------------------------------------------------------------ names
def test_name_is_the_class_name() -> None:
    assert ping.name == "ping"
    assert ping().name == "ping"


def test_name_attribute_overrides_the_class_name() -> None:
    assert Renamed.name == "renamed_event"
    assert Renamed().name == "renamed_event"
    assert RenamedChild.name == "RenamedChild"


def test_renamed_event_is_handled_by_its_name_not_its_class_name() -> None:
    seen: list[str] = []

    class C(BaseComponent):
        @handler("renamed_event")
        def by_name(self) -> None:
            seen.append("by_name")

        @handler("Renamed")
        def by_class(self) -> None:
            seen.append("by_class")

    m = Manager()
    m += C()
    m.fire(Renamed())
    m.flush()
    assert seen == ["by_name"]


def test_create_makes_an_event_by_name_with_arguments() -> None:
    event = Event.create("hello", 1, 2, key="v")
    assert isinstance(event, Event)
    assert event.name == "hello"
    assert event.args == (1, 2)
    assert event.kwargs == {"key": "v"}
    # The name is per instance: creating one does not rename the class or other events.
    assert Event.create("other").name == "other"
    assert event.name == "hello"
    assert Event.name == "Event"


def test_create_on_a_subclass_keeps_the_class() -> None:
    event = ping.create("pong", 1)
    assert isinstance(event, ping)
    assert event.name == "pong"
    assert ping.name == "ping"


@pytest.mark.parametrize("bad", ["", None, 3, b"bytes"])
def test_create_rejects_bad_names(bad: Any) -> None:
    with pytest.raises(TypeError, match="name"):
        Event.create(bad)


def test_created_event_is_dispatched_by_its_name() -> None:
    got: list[Any] = []

    class C(BaseComponent):
        @handler("dyn")
        def dyn(self, a: int, b: int = 0) -> int:
            got.append((a, b))
            return a + b

    m = Manager()
    m += C()
    value = m.fire(Event.create("dyn", 1, b=2))
    m.flush()
    assert got == [(1, 2)]
    assert value.value == 3


# -------------------------------------------------------------- arguments
def test_args_kwargs_and_indexing() -> None:
    event = ping(10, "x", flag=True)
    assert event.args == (10, "x")
    assert event.kwargs == {"flag": True}
    assert event[0] == 10
    assert event[1] == "x"
    assert event[-1] == "x"
    assert event["flag"] is True
    with pytest.raises(IndexError):
        event[2]
    with pytest.raises(KeyError):
        event["missing"]


def test_handler_receives_positional_and_keyword_arguments() -> None:
    got: list[Any] = []

    class C(BaseComponent):
        @handler("ping")
        def on_ping(self, a: Any, b: Any, *, c: Any) -> None:
            got.append((a, b, c))

    m = Manager()
    m += C()
    m.fire(ping(1, 2, c=3))
    m.flush()
    assert got == [(1, 2, 3)]


# ------------------------------------------------------------------- repr
def test_repr_shows_name_channels_and_arguments() -> None:
    m = Manager()
    event = ping(42, "text", key=7)
    before = repr(event)
    assert "ping" in before
    assert "42" in before and "'text'" in before and "key=7" in before
    m.fire(event, "chan_a", "chan_b")
    after = repr(event)
    assert "ping" in after
    assert "chan_a" in after and "chan_b" in after
    assert "42" in after and "key=7" in after
    m.flush()


def test_repr_of_an_event_fired_at_a_component_names_its_class() -> None:
    m = Manager()
    target = Calls(channel="t")
    m += target
    event = ping()
    m.fire(event, target)
    assert "Calls" in repr(event)
    m.flush()


def test_repr_of_huge_arguments_is_bounded() -> None:
    text = repr(ping("x" * 100_000))
    assert text.startswith("<ping")
    assert len(text) < 400


# ---------------------------------------------------------------- mistakes
@pytest.mark.parametrize("thing", ["ping", ping, 42, None, {"name": "ping"}])
def test_firing_a_non_event_raises_type_error(thing: Any) -> None:
    m = Manager()
    with pytest.raises(TypeError) as info:
        m.fire(thing)
    message = str(info.value)
    assert "Event" in message
    assert type(thing).__name__ in message
    # Nothing was queued.
    assert not m.loop.queue


def test_firing_a_non_event_from_a_component_raises_type_error() -> None:
    m = Manager()
    c = Calls()
    m += c
    m.flush()
    with pytest.raises(TypeError, match=r"Event\.create"):
        c.fire("ping")  # type: ignore[arg-type]


# -------------------------------------------------------------------- stop
def test_all_handlers_run_in_priority_order_without_stop() -> None:
    m = Manager()
    c = Calls()
    m += c
    value = m.fire(ping(1))
    m.flush()
    assert [label for label, _ in c.calls] == ["first", "second", "third"]
    assert value.value == ["first", "second", "third"]


def test_stop_ends_dispatch_after_the_current_handler() -> None:
    m = Manager()
    c = Calls()
    c.stop_in = "second"
    m += c
    event = ping(1)
    value = m.fire(event)
    m.flush()
    assert [label for label, _ in c.calls] == ["first", "second"]
    # The stopping handler's own result is kept; the event is not an error.
    assert value.value == ["first", "second"]
    assert value.result and not value.errors
    assert event.stopped


def test_stop_in_the_first_handler_keeps_later_components_out() -> None:
    m = Manager()
    a, b = Calls(), Calls()
    a.stop_in = "first"
    m += a
    m += b
    m.fire(ping())
    m.flush()
    assert [label for label, _ in a.calls] == ["first"]
    assert b.calls == []


def test_stop_affects_only_that_event() -> None:
    m = Manager()
    c = Calls()
    c.stop_in = "first"
    m += c
    m.fire(ping("a"))
    m.flush()
    c.stop_in = None
    m.fire(ping("b"))
    m.flush()
    assert c.calls == [
        ("first", ("a",)),
        ("first", ("b",)),
        ("second", ("b",)),
        ("third", ("b",)),
    ]


# ------------------------------------------------------------------ cancel
def test_cancel_before_dispatch_runs_no_handler() -> None:
    m = Manager()
    c = Calls()
    m += c
    m.flush()
    event = ping(1)
    value = m.fire(event)
    event.cancel()
    m.flush()
    assert c.calls == []
    assert value.result
    assert value.errors
    assert isinstance(value.exception, EventCancelled)
    with pytest.raises(EventCancelled):
        value.get()


def test_cancelled_event_fires_no_exception_event_and_others_still_run() -> None:
    m = Manager()
    c = Calls()
    m += c
    errors: list[Event] = []

    class Errors(BaseComponent):
        @handler("exception")
        def on_error(self, event: Event, *args: Any, **kwargs: Any) -> None:
            errors.append(event)

    m += Errors()
    m.flush()
    doomed = ping("doomed")
    m.fire(doomed)
    kept = m.fire(ping("kept"))
    doomed.cancel()
    m.flush()
    assert [args for _, args in c.calls] == [("kept",)] * 3
    assert kept.value == ["first", "second", "third"]
    assert errors == []


def test_cancel_during_dispatch_behaves_like_stop() -> None:
    m = Manager()

    class Canceller(BaseComponent):
        def init(self) -> None:
            self.ran: list[str] = []

        @handler("ping", priority=2)
        def one(self, event: Event) -> str:
            self.ran.append("one")
            event.cancel()
            return "one"

        @handler("ping", priority=1)
        def two(self) -> str:
            self.ran.append("two")
            return "two"

    c = Canceller()
    m += c
    value = m.fire(ping())
    m.flush()
    assert c.ran == ["one"]
    assert value.result
    assert value.value == "one"


# ------------------------------------------------------------- fire again
def test_firing_the_same_event_twice_gives_a_fresh_value_each_time() -> None:
    m = Manager()
    c = Calls()
    m += c
    event = ping(5)
    first = m.fire(event)
    m.flush()
    second = m.fire(event)
    assert second is not first
    assert event.value is second
    assert not second.result
    m.flush()
    assert first.result and second.result
    assert first.value == ["first", "second", "third"]
    assert second.value == ["first", "second", "third"]
    assert len(c.calls) == 6


def test_refiring_a_stopped_event_dispatches_it_fully() -> None:
    m = Manager()
    c = Calls()
    c.stop_in = "first"
    m += c
    event = ping()
    m.fire(event)
    m.flush()
    assert event.stopped
    c.stop_in = None
    value = m.fire(event)
    assert not event.stopped
    m.flush()
    assert value.value == ["first", "second", "third"]


def test_refiring_a_cancelled_event_dispatches_it() -> None:
    m = Manager()
    c = Calls()
    m += c
    event = ping()
    cancelled = m.fire(event)
    event.cancel()
    m.flush()
    assert isinstance(cancelled.exception, EventCancelled)
    value = m.fire(event)
    m.flush()
    assert not value.errors
    assert value.value == ["first", "second", "third"]


# --------------------------------------------------------- circuits' shapes
def test_item_assignment_replaces_arguments() -> None:
    event = ping(1, 2, 3, foo="bar")
    event[0] = 0
    event[-1] = 9
    event["foo"] = "Hello"
    event["new"] = True
    assert event.args == (0, 2, 9)
    assert event.kwargs == {"foo": "Hello", "new": True}
    with pytest.raises(IndexError):
        event[3] = "out of range"
    for key in (None, 1.5, (0,)):
        with pytest.raises(TypeError, match=r"int .* or a str"):
            event[key]  # type: ignore[index]
        with pytest.raises(TypeError, match=r"int .* or a str"):
            event[key] = 0  # type: ignore[index]


def test_item_assignment_before_dispatch_reaches_the_handlers() -> None:
    calls = Calls()
    manager = Manager() + calls
    manager.flush()
    event = ping("old")
    manager.fire(event)
    event[0] = "new"
    manager.flush()
    assert ("first", ("new",)) in calls.calls


def test_child_is_a_plain_event_named_after_its_parent() -> None:
    class hello(Event):
        success = True
        complete = True

    child = hello(1).child("success", 2, x=3)
    assert child.name == "hello_success"
    assert type(child) is Event
    assert child.success is False and child.complete is False
    assert child.args == (2,) and child.kwargs == {"x": 3}


def test_waiting_handlers_is_pending() -> None:
    class Slow(BaseComponent):
        @handler("ping")
        def waits(self) -> Any:
            yield self.wait("release")

    manager = Manager() + Slow()
    manager.flush()
    event = ping()
    manager.fire(event)
    manager.flush()
    assert event.waitingHandlers == event.pending == 1
    manager.fire(Event.create("release"))
    manager.flush()
    assert event.waitingHandlers == event.pending == 0


def test_a_list_of_channels_on_a_class_is_a_tuple() -> None:
    class ping_a(Event):
        name = "ping"
        channels = ["a"]  # type: ignore[assignment]  # circuits allows a list

    assert ping_a.channels == ("a",)
    calls = Calls(channel="a")
    manager = Manager() + calls
    manager.flush()
    manager.fire(ping_a(1))
    manager.flush()
    assert calls.calls[0] == ("first", (1,))


def test_prepare_unregister_knows_the_leaving_subtree() -> None:
    from netcomp import prepare_unregister

    root, a, b, other = Manager(), Calls(), Calls(), Calls()
    root += a
    a += b
    root += other
    event = prepare_unregister(a)
    assert event.in_subtree(a) and event.in_subtree(b)
    assert not event.in_subtree(root) and not event.in_subtree(other)


@pytest.mark.parametrize("fails", [False, True], ids=["results", "errors"])
def test_an_event_fired_again_while_queued_answers_each_firing_in_its_own_value(
    fails: bool,
) -> None:
    """Two fire()s, two dispatches, two Values each done with one dispatch's results
    (it was: the first Value never completed, the second got both dispatches)."""

    class Fallible(Component):
        def ping(self, n: int) -> str:
            if fails:
                raise ValueError(n)
            return f"pong {n}"

    m = Manager()
    c = Fallible()
    m += c
    m.flush()
    event = ping(5)
    first = m.fire(event)
    second = m.fire(event)  # the first firing is still queued
    assert event.value is second
    m.flush()  # (an error nobody handles is logged)
    for value in (first, second):
        assert value.result
        if fails:
            assert isinstance(value.exception, ValueError)
        else:
            assert value.value == "pong 5" and not value.errors


@pytest.mark.parametrize("observed", [False, True], ids=["plain", "observed"])
def test_firing_a_look_alike_of_an_event_is_refused_at_dispatch(
    observed: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """An object with the two attributes fire() reads (``channels`` and ``value``) gets
    past it (fire() checks no type: see its comments); dispatch refuses it with the
    same TypeError, on its Value and in the log, and goes on with the next event."""

    class LookAlike:
        name = "ping"
        channels = ()
        value = None

    m = Manager()
    c = Calls()
    m += c
    m.flush()
    if observed:  # an observer makes the loop dispatch through its observed path
        m.loop.observe(Trace())
    refused = m.fire(LookAlike())  # type: ignore[arg-type]
    after = m.fire(ping(1))
    m.flush()
    assert refused.result and isinstance(refused.exception, TypeError)
    assert "fire() takes an Event, not LookAlike" in str(refused.exception)
    assert "fire() takes an Event, not LookAlike" in caplog.text
    assert after.result and after.value == ["first", "second", "third"]


def test_setting_a_value_on_an_event_class_is_refused() -> None:
    with pytest.raises(TypeError, match=r"not the class ping .*fire an instance, ping\(\.\.\.\)"):
        ping.value = 1  # type: ignore[assignment,misc]
    assert ping.value is None
