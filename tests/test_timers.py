"""Timers: one-shot and persistent, reset, cancel by unregistering, no busy loop, channels.

On virtual time (``vapp``, ``VirtualClock``): the tests move the clock and check that
nothing fired just before a deadline and that it fired exactly at it. Intervals are
binary fractions, so that sums of them are exact. Only the test that the loop really
sleeps until a real deadline reads the real clock.
"""

from __future__ import annotations

import datetime

import pytest

from netcomp import BaseComponent, Component, Event, Manager, Timer, handler
from netcomp.testing import Recorder, VirtualClock, VirtualTime, running

STEP = 2.0**-10  # "just before a deadline": a binary fraction, so sums stay exact


class Times(BaseComponent):
    """Records when each event (by name) was dispatched, on the loop's clock."""

    def init(self) -> None:
        self.at: dict[str, list[float]] = {}

    @handler(priority=500)
    def _any(self, event: Event, *args: object, **kwargs: object) -> None:
        self.at.setdefault(event.name, []).append(self.loop.time())


def _live_handles(manager: Manager, timer: Timer) -> list[object]:
    """The root's scheduled, not cancelled callbacks that belong to ``timer``."""
    return [
        handle
        for handle in manager.loop.scheduled()
        if getattr(handle.callback, "__self__", None) is timer
    ]


def _times(manager: Manager, recorder: Recorder) -> Times:
    times = Times()
    times.register(manager)
    recorder.wait_for("registered", predicate=lambda e: e.args[0] is times)
    return times


def test_timer_fires_once_after_its_interval(vapp: tuple[Manager, Recorder, VirtualTime]) -> None:
    manager, recorder, vt = vapp
    times = _times(manager, recorder)
    begin = vt.now
    Timer(0.125, Event.create("tick")).register(manager)
    Timer(0.375, Event.create("marker")).register(manager)
    vt.wait_timer(begin + 0.375)
    vt.advance(0.125 - STEP)
    assert recorder.count("tick") == 0  # not a moment early
    vt.advance(STEP)
    assert times.at["tick"] == [begin + 0.125]
    vt.advance(0.25)
    assert times.at["marker"] == [begin + 0.375]
    assert recorder.count("tick") == 1  # once


def test_persistent_timer_repeats_until_unregistered(
    vapp: tuple[Manager, Recorder, VirtualTime],
) -> None:
    manager, recorder, vt = vapp
    times = _times(manager, recorder)
    interval = 0.03125
    begin = vt.now
    timer = Timer(interval, Event.create("tick"), persist=True)
    timer.register(manager)
    vt.wait_timer(begin + interval)
    vt.advance(3 * interval)
    # Each at its deadline: never early, no drift forward.
    assert times.at["tick"] == [begin + k * interval for k in (1, 2, 3)]
    timer.unregister()
    recorder.wait_for("unregistered", predicate=lambda e: e.args[0] is timer, timeout=5)
    vt.advance(6 * interval)  # several intervals on: it must not fire again
    assert recorder.count("tick") == 3
    assert timer.expiry is None
    assert _live_handles(manager, timer) == []


def test_reset_postpones_the_deadline(vapp: tuple[Manager, Recorder, VirtualTime]) -> None:
    manager, recorder, vt = vapp
    target = Timer(0.25, Event.create("target"))

    class Resetter(Component):
        def init(self) -> None:
            self.reset_at: float | None = None

        def do_reset(self) -> None:
            self.reset_at = self.loop.time()
            target.reset()

    times = _times(manager, recorder)
    resetter = Resetter()
    resetter.register(manager)
    recorder.wait_for("registered", predicate=lambda e: e.args[0] is resetter)
    begin = vt.now
    target.register(manager)
    Timer(0.125, Event.create("do_reset")).register(manager)
    vt.wait_timer(begin + 0.25)
    vt.advance(0.25)  # past the first deadline, which the reset at 0.125 moved
    assert resetter.reset_at == begin + 0.125
    assert "target" not in times.at
    vt.advance(0.125 - STEP)
    assert "target" not in times.at
    vt.advance(STEP)
    assert times.at["target"] == [begin + 0.375]  # 0.125 until the reset, then a full 0.25


def test_reset_with_a_new_interval_and_tick_sleeping_until_the_deadline() -> None:
    manager = Manager()
    clock = VirtualClock(autojump_threshold=0)  # an idle pass jumps to the next deadline
    manager.loop.clock = clock
    times = Times()
    manager += times
    timer = Timer(30.0, Event.create("tick"))
    manager += timer
    manager.flush()
    timer.reset(0.0625)
    assert timer.interval == 0.0625
    manager.tick(None)  # one pass: waits exactly until the deadline, fires, dispatches
    assert times.at.get("tick") == [0.0625]
    assert clock.time() == 0.0625  # the new deadline, not the old one
    assert timer.expiry is None


def test_unregistering_a_timer_cancels_it(vapp: tuple[Manager, Recorder, VirtualTime]) -> None:
    manager, recorder, vt = vapp
    timer = Timer(0.25, Event.create("tick"))
    timer.register(manager)
    recorder.wait_for("registered", predicate=lambda e: e.args[0] is timer)
    timer.unregister()
    recorder.wait_for("unregistered", predicate=lambda e: e.args[0] is timer, timeout=5)
    assert _live_handles(manager, timer) == []
    # The marker's deadline is past the cancelled timer's: it would have fired by then.
    Timer(0.5, Event.create("marker")).register(manager)
    vt.advance(0.5)
    assert recorder.count("marker") == 1
    assert recorder.count("tick") == 0


def test_unregistering_a_timer_without_a_loop_cancels_it() -> None:
    manager = Manager()
    manager.loop.clock = VirtualClock(autojump_threshold=0)
    times = Times()
    timer = Timer(0.02, Event.create("tick"))
    manager += times
    manager += timer
    manager.flush()
    manager -= timer
    marker = Timer(0.1, Event.create("marker"))
    manager += marker
    for _ in range(50):  # bounded: each idle pass jumps to the next deadline
        manager.tick(1.0)
        if "marker" in times.at:
            break
    assert times.at["marker"] == [0.1]
    assert "tick" not in times.at


def test_the_loop_sleeps_until_the_deadline_without_spinning() -> None:
    """On real time: the subject is the real sleep until the deadline."""
    manager = Manager()
    with running(manager) as recorder:
        before = manager.loop.passes
        Timer(0.3, Event.create("tick")).register(manager)
        recorder.wait_for("tick", timeout=5)
        during = manager.loop.passes - before
    # Register, dispatch, wake at the deadline and dispatch: a handful of passes, not
    # the thousands a loop polling with a zero timeout would make in 0.3 s.
    assert during <= 10


def test_timer_fires_on_explicit_channels(vapp: tuple[Manager, Recorder, VirtualTime]) -> None:
    manager, recorder, vt = vapp

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
    vt.advance(0.02)
    event = recorder.wait_for("ping", timeout=5)
    assert event.channels == ("a",)
    assert (a.pings, b.pings) == (1, 0)


def test_timer_without_channels_uses_the_events_own_channels(
    vapp: tuple[Manager, Recorder, VirtualTime],
) -> None:
    manager, recorder, vt = vapp

    class onb(Event):
        channels = ("b",)

    Timer(0.01, onb()).register(manager)
    vt.advance(0.01)
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
    with pytest.raises(TypeError, match=r"seconds .* or a datetime"):
        Timer("5", Event.create("tick"))  # type: ignore[arg-type]
    assert "tick" in repr(timer)


def test_a_datetime_is_the_time_to_fire_at(vapp: tuple[Manager, Recorder, VirtualTime]) -> None:
    manager, recorder, vt = vapp
    times = _times(manager, recorder)
    when = datetime.datetime.now() + datetime.timedelta(seconds=30)
    timer = Timer(when, Event.create("tick"))
    assert 29 < timer.interval <= 30  # the seconds from now until then
    begin = vt.now
    timer.register(manager)
    vt.wait_timer(begin + timer.interval)
    vt.advance(timer.interval)
    assert times.at["tick"] == [begin + timer.interval]


def test_a_datetime_with_a_time_zone_or_in_the_past() -> None:
    utc = datetime.timezone.utc
    soon = Timer(datetime.datetime.now(utc) + datetime.timedelta(minutes=1), Event.create("x"))
    assert 59 < soon.interval <= 60
    late = Timer(datetime.datetime(2000, 1, 1), Event.create("x"))
    assert late.interval == 0  # fires at once
    late.reset(datetime.datetime.now() + datetime.timedelta(seconds=10))
    assert 9 < late.interval <= 10
