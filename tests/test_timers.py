"""Timers: one-shot and persistent, reset, cancel by unregistering, no busy loop, channels."""

from __future__ import annotations

from time import monotonic

import pytest

from netcomp import BaseComponent, Component, Event, Manager, Timer, handler
from netcomp.testing import Recorder, running

EPSILON = 0.005  # clock granularity slack for lower bounds


class Times(BaseComponent):
    """Records when each event (by name) was dispatched, on the monotonic clock."""

    def init(self) -> None:
        self.at: dict[str, list[float]] = {}

    @handler(priority=500)
    def _any(self, event: Event, *args: object, **kwargs: object) -> None:
        self.at.setdefault(event.name, []).append(monotonic())


def _live_handles(manager: Manager, timer: Timer) -> list[object]:
    """The root's scheduled, not cancelled callbacks that belong to ``timer``."""
    return [
        handle
        for handle in manager.loop.scheduled()
        if getattr(handle.callback, "__self__", None) is timer
    ]


def test_timer_fires_once_after_its_interval(app: tuple[Manager, Recorder]) -> None:
    manager, recorder = app
    times = Times()
    times.register(manager)
    recorder.wait_for("registered", predicate=lambda e: e.args[0] is times)
    begin = monotonic()
    Timer(0.1, Event.create("tick")).register(manager)
    Timer(0.35, Event.create("marker")).register(manager)
    recorder.wait_for("marker", timeout=5)
    assert recorder.count("tick") == 1
    assert times.at["tick"][0] - begin >= 0.1 - EPSILON
    assert times.at["marker"][0] - begin >= 0.35 - EPSILON


def test_persistent_timer_repeats_until_unregistered(app: tuple[Manager, Recorder]) -> None:
    manager, recorder = app
    times = Times()
    times.register(manager)
    recorder.wait_for("registered", predicate=lambda e: e.args[0] is times)
    interval = 0.03
    begin = monotonic()
    timer = Timer(interval, Event.create("tick"), persist=True)
    timer.register(manager)
    recorder.wait_for("tick", count=3, timeout=5)
    for k, at in enumerate(times.at["tick"][:3], start=1):
        assert at - begin >= k * interval - EPSILON  # never early, no drift forward
    timer.unregister()
    recorder.wait_for("unregistered", predicate=lambda e: e.args[0] is timer, timeout=5)
    ticks = recorder.count("tick")
    assert ticks >= 3
    # A marker far past several intervals: the timer must not have fired again by then.
    Timer(6 * interval, Event.create("marker")).register(manager)
    recorder.wait_for("marker", timeout=5)
    assert recorder.count("tick") == ticks
    assert timer.expiry is None
    assert _live_handles(manager, timer) == []


def test_reset_postpones_the_deadline(app: tuple[Manager, Recorder]) -> None:
    manager, recorder = app
    target = Timer(0.25, Event.create("target"))

    class Resetter(Component):
        def init(self) -> None:
            self.reset_at: float | None = None

        def do_reset(self) -> None:
            self.reset_at = monotonic()
            target.reset()

    times = Times()
    resetter = Resetter()
    times.register(manager)
    resetter.register(manager)
    recorder.wait_for("registered", predicate=lambda e: e.args[0] is resetter)
    begin = monotonic()
    target.register(manager)
    Timer(0.1, Event.create("do_reset")).register(manager)
    recorder.wait_for("target", timeout=5)
    assert resetter.reset_at is not None
    fired = times.at["target"]
    assert len(fired) == 1
    assert fired[0] - resetter.reset_at >= 0.25 - EPSILON
    assert fired[0] - begin >= 0.35 - EPSILON  # 0.1 until the reset, then a full 0.25


def test_reset_with_a_new_interval_and_tick_sleeping_until_the_deadline() -> None:
    manager = Manager()
    times = Times()
    manager += times
    timer = Timer(30.0, Event.create("tick"))
    manager += timer
    manager.flush()
    timer.reset(0.05)
    assert timer.interval == 0.05
    begin = monotonic()
    manager.tick(None)  # one pass: sleeps exactly until the deadline, fires, dispatches
    assert len(times.at.get("tick", [])) == 1
    assert times.at["tick"][0] - begin >= 0.05 - EPSILON
    assert timer.expiry is None


def test_unregistering_a_timer_cancels_it(app: tuple[Manager, Recorder]) -> None:
    manager, recorder = app
    timer = Timer(0.3, Event.create("tick"))
    timer.register(manager)
    recorder.wait_for("registered", predicate=lambda e: e.args[0] is timer)
    timer.unregister()
    recorder.wait_for("unregistered", predicate=lambda e: e.args[0] is timer, timeout=5)
    # The marker's deadline is past the cancelled timer's: it would have fired by then.
    Timer(0.4, Event.create("marker")).register(manager)
    assert _live_handles(manager, timer) == []
    recorder.wait_for("marker", timeout=5)
    assert recorder.count("tick") == 0


def test_unregistering_a_timer_without_a_loop_cancels_it() -> None:
    manager = Manager()
    times = Times()
    timer = Timer(0.02, Event.create("tick"))
    manager += times
    manager += timer
    manager.flush()
    manager -= timer
    marker = Timer(0.1, Event.create("marker"))
    manager += marker
    for _ in range(50):  # bounded: each pass sleeps until the next deadline
        manager.tick(1.0)
        if "marker" in times.at:
            break
    assert "marker" in times.at
    assert "tick" not in times.at


def test_the_loop_sleeps_until_the_deadline_without_spinning() -> None:
    manager = Manager()
    with running(manager) as recorder:
        before = manager.loop.passes
        Timer(0.3, Event.create("tick")).register(manager)
        recorder.wait_for("tick", timeout=5)
        during = manager.loop.passes - before
    # Register, dispatch, wake at the deadline and dispatch: a handful of passes, not
    # the thousands a loop polling with a zero timeout would make in 0.3 s.
    assert during <= 10


def test_timer_fires_on_explicit_channels(app: tuple[Manager, Recorder]) -> None:
    manager, recorder = app

    class Listener(Component):
        def init(self, channel: str) -> None:
            self.channel = channel
            self.pings = 0

        def ping(self) -> None:
            self.pings += 1

    a, b = Listener("a"), Listener("b")
    a.register(manager)
    b.register(manager)
    recorder.wait_for("registered", predicate=lambda e: e.args[0] is b)
    Timer(0.02, Event.create("ping"), "a").register(manager)
    event = recorder.wait_for("ping", timeout=5)
    assert event.channels == ("a",)
    assert (a.pings, b.pings) == (1, 0)


def test_timer_without_channels_uses_the_events_own_channels(
    app: tuple[Manager, Recorder],
) -> None:
    manager, recorder = app

    class onb(Event):
        channels = ("b",)

    Timer(0.01, onb()).register(manager)
    event = recorder.wait_for("onb", timeout=5)
    assert event.channels == ("b",)


def test_timer_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="interval"):
        Timer(-1, Event.create("tick"))
    with pytest.raises(TypeError, match="Event"):
        Timer(1, "tick")  # type: ignore[arg-type]
    timer = Timer(1, Event.create("tick"))
    with pytest.raises(ValueError, match="interval"):
        timer.reset(-0.5)
    assert "tick" in repr(timer)
