"""Feedback events: ``<name>_success``, ``<name>_failure``, ``<name>_complete`` (issue 2).

``success``/``failure`` fire once the event is done (its handlers, coroutines included, have
finished). ``complete`` fires once the event *and every event its handlers fired*,
transitively, are done, including events fired by a coroutine after it resumed.
"""

from __future__ import annotations

from typing import Any

import pytest

from netcomp import BaseComponent, Event, Manager, handler
from netcomp.testing import fire_and_flush


class Boom(RuntimeError):
    pass


class Feedback(BaseComponent):
    """Records every feedback event it hears, as ``(name, args)``, on its channel."""

    def init(self, channel: Any = "*") -> None:
        self.channel = channel
        self.got: list[tuple[str, tuple[Any, ...]]] = []

    @handler()
    def _any(self, event: Event, *args: Any) -> None:
        if args and isinstance(args[0], Event) and event.name.startswith(args[0].name + "_"):
            self.got.append((event.name, args))


def responder(name: str, func: Any, channel: Any = None) -> BaseComponent:
    """A component whose only handler is ``func`` for events named ``name``."""
    component = BaseComponent()
    component.add_handler(func, name, channel=channel)
    return component


class job(Event):
    success = True
    failure = True
    complete = True


class quiet(Event):
    """No feedback asked for."""


# ----------------------------------------------------------- success/failure
def test_success_fires_with_the_event_and_its_value(manager: Manager) -> None:
    manager += responder("job", lambda: "done")
    feedback = Feedback()
    manager += feedback
    event = job()
    fire_and_flush(manager, event)
    assert ("job_success", (event, "done")) in feedback.got
    assert not any(name == "job_failure" for name, _ in feedback.got)


def test_failure_fires_with_the_event_and_the_error(manager: Manager) -> None:
    error = Boom("broken")

    def fail() -> None:
        raise error

    manager += responder("job", fail)
    manager += responder("exception", lambda *a, **k: None)
    feedback = Feedback()
    manager += feedback
    event = job()
    fire_and_flush(manager, event)
    assert ("job_failure", (event, error)) in feedback.got
    assert not any(name == "job_success" for name, _ in feedback.got)


def test_complete_fires_with_the_event_and_its_value(manager: Manager) -> None:
    manager += responder("job", lambda: 7)
    feedback = Feedback()
    manager += feedback
    event = job()
    fire_and_flush(manager, event)
    assert ("job_complete", (event, 7)) in feedback.got


def test_complete_fires_after_a_failure_too(manager: Manager) -> None:
    def fail() -> None:
        raise Boom("x")

    manager += responder("job", fail)
    manager += responder("exception", lambda *a, **k: None)
    feedback = Feedback()
    manager += feedback
    fire_and_flush(manager, job())
    assert [name for name, _ in feedback.got] == ["job_failure", "job_complete"]


def test_no_feedback_without_the_class_switches(manager: Manager) -> None:
    manager += responder("quiet", lambda: 1)
    feedback = Feedback()
    manager += feedback
    fire_and_flush(manager, quiet())
    assert feedback.got == []


def test_each_switch_works_alone(manager: Manager) -> None:
    class only_success(Event):
        success = True

    class only_failure(Event):
        failure = True

    class only_complete(Event):
        complete = True

    def fail() -> None:
        raise Boom("x")

    manager += responder("only_failure", fail)
    manager += responder("exception", lambda *a, **k: None)
    feedback = Feedback()
    manager += feedback
    for event in (only_success(), only_failure(), only_complete()):
        fire_and_flush(manager, event)
    assert [name for name, _ in feedback.got] == [
        "only_success_success",
        "only_failure_failure",
        "only_complete_complete",
    ]


def test_success_of_a_failing_event_is_not_fired(manager: Manager) -> None:
    class only_success(Event):
        success = True

    def fail() -> None:
        raise Boom("x")

    manager += responder("only_success", fail)
    manager += responder("exception", lambda *a, **k: None)
    feedback = Feedback()
    manager += feedback
    fire_and_flush(manager, only_success())
    assert feedback.got == []


def test_success_waits_for_a_coroutine_handler(manager: Manager) -> None:
    class Slow(BaseComponent):
        @handler("job")
        async def _job(self) -> str:
            await self.wait("release")
            return "late"

    manager += Slow()
    feedback = Feedback()
    manager += feedback
    event = job()
    fire_and_flush(manager, event)
    assert feedback.got == []
    fire_and_flush(manager, Event.create("release"))
    assert feedback.got == [
        ("job_success", (event, "late")),
        ("job_complete", (event, "late")),
    ]


def test_failure_of_a_coroutine_handler(manager: Manager) -> None:
    class Slow(BaseComponent):
        @handler("job")
        async def _job(self) -> None:
            await self.wait("release")
            raise Boom("late failure")

    manager += Slow()
    manager += responder("exception", lambda *a, **k: None)
    feedback = Feedback()
    manager += feedback
    fire_and_flush(manager, job())
    assert feedback.got == []
    fire_and_flush(manager, Event.create("release"))
    assert [name for name, _ in feedback.got] == ["job_failure", "job_complete"]
    assert isinstance(feedback.got[0][1][1], Boom)


# ------------------------------------------------------------------ channels
def test_feedback_goes_to_the_events_channels_by_default(manager: Manager) -> None:
    manager += responder("job", lambda: 1, channel="work")
    on_work = Feedback(channel="work")
    elsewhere = Feedback(channel="elsewhere")
    manager += on_work
    manager += elsewhere
    fire_and_flush(manager, job(), "work")
    assert [name for name, _ in on_work.got] == ["job_success", "job_complete"]
    assert elsewhere.got == []


def test_success_and_complete_channels(manager: Manager) -> None:
    class routed(Event):
        success = True
        complete = True
        success_channels = ("ok",)
        complete_channels = ("all-done",)

    manager += responder("routed", lambda: 1, channel="work")
    on_work = Feedback(channel="work")
    on_ok = Feedback(channel="ok")
    on_done = Feedback(channel="all-done")
    for component in (on_work, on_ok, on_done):
        manager += component
    fire_and_flush(manager, routed(), "work")
    assert on_work.got == []
    assert [name for name, _ in on_ok.got] == ["routed_success"]
    assert [name for name, _ in on_done.got] == ["routed_complete"]


def test_feedback_channels_may_be_lists_set_on_the_instance(manager: Manager) -> None:
    # circuits' idiom: ``evt.complete_channels = [self.channel]``
    manager += responder("job", lambda: 1, channel="work")
    on_ok = Feedback(channel="ok")
    on_done = Feedback(channel="all-done")
    manager += on_ok
    manager += on_done
    event = job()
    event.success_channels = ["ok"]  # type: ignore[misc]
    event.complete_channels = ["all-done"]  # type: ignore[misc]
    fire_and_flush(manager, event, "work")
    assert [name for name, _ in on_ok.got] == ["job_success"]
    assert [name for name, _ in on_done.got] == ["job_complete"]


def test_failure_channels(manager: Manager) -> None:
    class routed(Event):
        failure = True
        failure_channels = ("bad",)

    def fail() -> None:
        raise Boom("x")

    manager += responder("routed", fail, channel="work")
    manager += responder("exception", lambda *a, **k: None)
    on_work = Feedback(channel="work")
    on_bad = Feedback(channel="bad")
    manager += on_work
    manager += on_bad
    fire_and_flush(manager, routed(), "work")
    assert on_work.got == []
    assert [name for name, _ in on_bad.got] == ["routed_failure"]


# -------------------------------------------------------- complete, transitive
class Chain(BaseComponent):
    """``job`` fires ``a`` (which fires ``b``) and, after ``release``, fires ``late``.

    ``late`` is itself a coroutine that finishes only on ``release2``. Everything it does is
    written to ``log``; feedback events are logged too.
    """

    def init(self) -> None:
        self.log: list[str] = []

    @handler("job")
    async def _job(self) -> str:
        self.log.append("job")
        self.fire(Event.create("a"))
        await self.wait("release")
        self.log.append("job resumed")
        self.fire(Event.create("late"))
        return "job value"

    @handler("a")
    def _a(self) -> None:
        self.log.append("a")
        self.fire(Event.create("b"))

    @handler("b")
    def _b(self) -> None:
        self.log.append("b")

    @handler("late")
    async def _late(self) -> None:
        self.log.append("late")
        await self.wait("release2")
        self.log.append("late done")

    @handler("job_success", "job_complete")
    def _feedback(self, event: Event, fired: Event, value: Any) -> None:
        self.log.append(f"{event.name}={value}")


def test_complete_waits_for_every_event_fired_transitively(manager: Manager) -> None:
    chain = Chain()
    manager += chain
    event = job()
    value = fire_and_flush(manager, event)
    assert chain.log == ["job", "a", "b"]
    assert value.result is False

    fire_and_flush(manager, Event.create("release"))
    # job itself is done (success fired) but 'late', fired after the await, is not
    assert chain.log == ["job", "a", "b", "job resumed", "late", "job_success=job value"]
    assert value.result is True

    fire_and_flush(manager, Event.create("release2"))
    assert chain.log == [
        "job",
        "a",
        "b",
        "job resumed",
        "late",
        "job_success=job value",
        "late done",
        "job_complete=job value",
    ]


def test_complete_of_a_plain_chain_comes_after_its_last_event(manager: Manager) -> None:
    log: list[str] = []

    class Relay(BaseComponent):
        @handler("job")
        def _job(self) -> None:
            log.append("job")
            self.fire(Event.create("step", 1))

        @handler("step")
        def _step(self, n: int) -> None:
            log.append(f"step{n}")
            if n < 4:
                self.fire(Event.create("step", n + 1))

        @handler("job_complete")
        def _complete(self, fired: Event, value: Any) -> None:
            log.append("complete")

        @handler("unrelated")
        def _unrelated(self) -> None:
            log.append("unrelated")

    manager += Relay()
    manager.fire(job())
    manager.fire(Event.create("unrelated"))
    manager.flush()
    assert log == ["job", "unrelated", "step1", "step2", "step3", "step4", "complete"]


def test_events_fired_by_unrelated_handlers_do_not_delay_complete(manager: Manager) -> None:
    log: list[str] = []

    class Other(BaseComponent):
        @handler("job")
        def _job(self) -> None:
            log.append("job")

        @handler("unrelated")
        async def _unrelated(self) -> None:
            log.append("unrelated")
            await self.wait("never")

        @handler("job_complete")
        def _complete(self, fired: Event, value: Any) -> None:
            log.append("complete")

    manager += Other()
    manager.fire(Event.create("unrelated"))
    manager.fire(job())
    manager.flush()
    assert log == ["unrelated", "job", "complete"]


def test_complete_fires_once_per_firing(manager: Manager) -> None:
    manager += responder("job", lambda: None)
    feedback = Feedback()
    manager += feedback
    fire_and_flush(manager, job())
    fire_and_flush(manager, job())
    assert [name for name, _ in feedback.got].count("job_complete") == 2
    assert [name for name, _ in feedback.got].count("job_success") == 2


def test_feedback_events_themselves_do_not_ask_for_feedback(manager: Manager) -> None:
    feedback = Feedback()
    manager += feedback
    fire_and_flush(manager, job())
    names = [name for name, _ in feedback.got]
    assert names == ["job_success", "job_complete"]
    assert not any(name.count("_success") + name.count("_complete") > 1 for name in names)


# ------------------------------------------- switches and tracking on the fast path
def _relay_log(manager: Manager) -> list[str]:
    log: list[str] = []

    class Relay(BaseComponent):
        @handler("job")
        def _job(self) -> None:
            log.append("job")
            self.fire(Event.create("step", 1))

        @handler("step")
        def _step(self, n: int) -> None:
            log.append(f"step{n}")
            if n < 3:
                self.fire(Event.create("step", n + 1))

        @handler("job_complete")
        def _complete(self, fired: Event, value: Any) -> None:
            log.append("complete")

    manager += Relay()
    return log


def test_complete_tracks_what_handlers_fire_while_the_loop_is_observed(
    manager: Manager,
) -> None:
    # The observed dispatch must mark what a tracked event's handlers fire as its effects
    # (fire() reads loop.tracking, which that dispatch sets too).
    from netcomp.core import Trace

    log = _relay_log(manager)
    with Trace().attach(manager):
        manager.fire(job())
        manager.flush()
    assert log == ["job", "step1", "step2", "step3", "complete"]


def test_feedback_switches_set_on_an_instance_before_firing(manager: Manager) -> None:
    manager += responder("quiet", lambda: "ok")
    feedback = Feedback()
    manager += feedback
    event = quiet()
    assert (event.success, event.failure, event.complete) == (False, False, False)
    event.success = True
    event.complete = True
    fire_and_flush(manager, event)
    names = [name for name, _ in feedback.got]
    assert names == ["quiet_success", "quiet_complete"]
    assert quiet().success is False  # the class is not changed


def test_success_asked_for_by_the_handler_itself_is_fired(manager: Manager) -> None:
    # The fast path reads the event's switches after the handlers ran, not before.
    def answer(event: Event) -> str:
        event.success = True
        return "late"

    component = BaseComponent()
    component.add_handler(handler("quiet")(answer))
    manager += component
    feedback = Feedback()
    manager += feedback
    event = quiet()
    fire_and_flush(manager, event)
    assert feedback.got == [("quiet_success", (event, "late"))]


def test_a_subclass_switch_is_inherited_and_can_be_turned_off() -> None:
    class loud(job):
        pass

    class calm(job):
        success = False
        failure = False
        complete = False

    assert (loud().success, loud().failure, loud().complete) == (True, True, True)
    assert (calm().success, calm().failure, calm().complete) == (False, False, False)
    assert calm._extras is False and loud._extras is True


def test_a_switch_reads_as_its_setting_on_the_class_too() -> None:
    # circuits code reads them on classes (``if MyEvent.success:``).
    assert job.success is True and job.complete is True
    assert quiet.success is False and quiet.failure is False and Event.complete is False


def test_a_switch_set_on_a_class_after_its_creation_is_honoured(manager: Manager) -> None:
    # circuits programs (and circuits' own tests) write ``task.complete = True`` at import.
    class later(Event):
        pass

    class later_child(later):
        pass

    manager += responder("later", lambda: "done")
    manager += responder("later_child", lambda: "done")
    feedback = Feedback()
    manager += feedback
    later.complete = True
    assert later.complete is True and later_child.complete is True
    assert later._extras is True and later_child._extras is True
    fire_and_flush(manager, later())
    fire_and_flush(manager, later_child())
    assert [name for name, _ in feedback.got] == ["later_complete", "later_child_complete"]
    later.complete = False
    assert later._extras is False and later_child._extras is False


@pytest.mark.parametrize("observed", [False, True], ids=["plain", "observed"])
def test_a_complete_event_cancelled_before_its_dispatch_still_completes(
    manager: Manager, observed: bool
) -> None:
    # Tracking for ``complete`` starts when dispatch takes the event (fire() leaves it);
    # a cancelled event is finished there too, and completes without success/failure.
    from netcomp.core import Trace

    ran: list[str] = []
    manager += responder("job", lambda: ran.append("job"))
    feedback = Feedback()
    manager += feedback
    manager.flush()
    event = job()
    value = manager.fire(event)
    event.cancel()
    if observed:
        with Trace().attach(manager):
            manager.flush()
    else:
        manager.flush()
    assert ran == [] and value.errors
    assert [name for name, _ in feedback.got] == ["job_complete"]
