"""netcomp.testing: running(), the Recorder, fire_and_flush, VirtualClock and VirtualTime."""

from __future__ import annotations

import math
import selectors
import socket
import threading
import time

import pytest

from netcomp import BaseComponent, Component, Event, Manager, Timer, handler, sleep
from netcomp.testing import (
    LoopWaits,
    Recorder,
    VirtualClock,
    VirtualTime,
    fire_and_flush,
    running,
)


class Boom(Component):
    def explode(self) -> None:
        raise ValueError("kaboom")


class Gated(BaseComponent):
    """``slow`` finishes only once ``gate`` was fired."""

    @handler("slow")
    async def _slow(self) -> str:
        await self.wait("gate", timeout=10)
        return "finished"


def test_running_starts_and_stops_the_loop_cleanly() -> None:
    manager = Manager()
    with running(manager) as recorder:
        assert manager.running
        assert recorder in manager.components
        assert recorder.names_seen()[-1] == "started"
        thread = manager.loop.thread
        assert thread is not None and thread.is_alive()
        manager.fire(Event.create("hello"))
        recorder.wait_for("hello")
    assert not manager.running
    assert not thread.is_alive()
    assert recorder not in manager.components
    assert "stopped" in recorder.names_seen()
    assert not manager.loop.queue


def test_running_fails_when_a_handler_raised() -> None:
    manager = Manager()
    manager += Boom()
    with pytest.raises(AssertionError, match="kaboom"), running(manager) as recorder:
        manager.fire(Event.create("explode"))
        recorder.wait_for("exception")
    assert not manager.running


def test_running_with_check_errors_off_lets_errors_pass() -> None:
    manager = Manager()
    manager += Boom()
    with running(manager, check_errors=False) as recorder:
        manager.fire(Event.create("explode"))
        error = recorder.wait_for("exception")
    assert isinstance(error.args[1], ValueError)
    assert len(recorder.errors) == 1
    assert not manager.running


def test_running_fails_when_the_loop_does_not_stop_in_time() -> None:
    release = threading.Event()

    class Stuck(Component):
        def stopped(self, manager: Manager) -> None:
            release.wait(10)  # blocks the loop thread until the test lets it go

    manager = Manager()
    manager += Stuck()
    try:
        with pytest.raises(AssertionError, match="did not stop"), running(manager, timeout=0.3):
            pass
    finally:
        release.set()
        manager.join(5)
    assert not manager.running


def test_wait_for_times_out_listing_what_was_seen() -> None:
    manager = Manager()
    with running(manager) as recorder:
        manager.fire(Event.create("something_else"))
        recorder.wait_for("something_else")
        with pytest.raises(TimeoutError, match="never") as info:
            recorder.wait_for("never", timeout=0.1)
    assert "something_else" in str(info.value)
    assert "started" in str(info.value)


def test_wait_for_count_and_predicate() -> None:
    manager = Manager()
    with running(manager) as recorder:
        for n in range(3):
            manager.fire(Event.create("x", n))
        third = recorder.wait_for("x", count=3)
        assert third.args == (2,)
        assert recorder.wait_for("x", predicate=lambda e: e.args[0] == 1).args == (1,)
        with pytest.raises(TimeoutError):
            recorder.wait_for("x", count=4, timeout=0.05)
        with pytest.raises(TimeoutError):
            recorder.wait_for("x", predicate=lambda e: e.args[0] == 9, timeout=0.05)
        assert recorder.count("x") == 3
        recorder.clear()
        assert recorder.count("x") == 0


def test_wait_for_waits_until_the_event_is_done() -> None:
    manager = Manager()
    manager += Gated()
    with running(manager) as recorder:
        manager.fire(Event.create("slow"))
        seen = recorder.wait_for("slow", done=False)
        assert seen.value is not None and not seen.value.result
        with pytest.raises(TimeoutError, match="not done"):
            recorder.wait_for("slow", timeout=0.1)
        manager.fire(Event.create("gate"))
        done = recorder.wait_for("slow")
        assert done is seen
        assert done.value is not None and done.value.value == "finished"


def test_recorder_with_names_records_only_those_and_errors() -> None:
    manager = Manager()
    manager += Boom()
    only = Recorder(names=("wanted",))
    manager += only
    with running(manager, check_errors=False) as recorder:
        manager.fire(Event.create("unwanted"))
        manager.fire(Event.create("wanted"))
        manager.fire(Event.create("explode"))
        recorder.wait_for("exception")
        only.wait_for("exception")
    assert only.names_seen() == ["wanted", "exception"]


def test_recorder_on_a_channel_hears_only_that_channel() -> None:
    manager = Manager()
    on_a = Recorder(channel="a")
    manager += on_a
    with running(manager) as recorder:
        manager.fire(Event.create("hi", 1), "b")
        manager.fire(Event.create("hi", 2), "a")
        recorder.wait_for("hi", count=2)
    assert [e.args for e in on_a.events if e.name == "hi"] == [(2,)]


def test_app_fixture_runs_a_manager(app: tuple[Manager, Recorder]) -> None:
    manager, recorder = app
    assert manager.running
    manager.fire(Event.create("ping"))
    assert recorder.wait_for("ping").name == "ping"


# --------------------------------------------------------------- fire_and_flush
def test_fire_and_flush_dispatches_until_nothing_is_left() -> None:
    class Chain(BaseComponent):
        def init(self) -> None:
            self.seen: list[str] = []

        @handler("first")
        def _first(self) -> str:
            self.seen.append("first")
            self.fire(Event.create("second"))
            return "one"

        @handler("second")
        def _second(self) -> None:
            self.seen.append("second")

    manager = Manager()
    chain = Chain()
    manager += chain
    value = fire_and_flush(manager, Event.create("first"))
    assert (value.result, value.value) == (True, "one")
    assert chain.seen == ["first", "second"]  # what the event fired was dispatched too
    assert not manager.loop.queue


# ----------------------------------------------------------------- VirtualClock
class TimeLog(BaseComponent):
    """Records the loop's time at which each ``tick`` (any channel) is dispatched."""

    def init(self) -> None:
        self.at: list[float] = []

    @handler("tick", channel="*")
    def _tick(self) -> None:
        self.at.append(self.loop.time())


def test_advancing_a_virtual_clock_wakes_a_sleeping_loop_at_once() -> None:
    manager = Manager()
    clock = VirtualClock()
    waits = LoopWaits(manager.loop)
    with running(manager, clock=clock) as recorder:
        Timer(10.0, Event.create("tick")).register(manager)
        # Asleep with no timeout at all: only the clock's wake-up can bring the tick.
        assert waits.wait_blocked(lambda: bool(manager.loop.scheduled())) is None
        assert recorder.count("tick") == 0
        clock.advance(10.0)
        recorder.wait_for("tick", timeout=5)
        assert clock.time() == 10.0


def test_autojump_jumps_after_the_threshold_of_idleness_to_the_next_deadline_only() -> None:
    manager = Manager()
    clock = VirtualClock(autojump_threshold=0.05)
    manager.loop.clock = clock
    log = TimeLog()
    manager += log
    manager += Timer(10.0, Event.create("tick"))
    manager += Timer(20.0, Event.create("tick"))
    manager.flush()
    waits = LoopWaits(manager.loop)
    begin = time.monotonic()
    manager.tick(None)  # idle: waits the threshold (real), then jumps to the first deadline
    assert time.monotonic() - begin >= 0.05 - 0.005  # never before the threshold
    assert waits.timeouts == [0.05]
    assert (clock.time(), log.at) == (10.0, [10.0])  # the next deadline, not the last
    manager.tick(None)
    assert (clock.time(), log.at) == (20.0, [10.0, 20.0])


def test_autojump_does_not_jump_when_something_happened() -> None:
    manager = Manager()
    clock = VirtualClock(autojump_threshold=0.05)
    manager.loop.clock = clock
    manager += Timer(10.0, Event.create("tick"))
    manager.flush()
    received: list[bytes] = []
    ours, theirs = socket.socketpair()
    with ours, theirs:
        watch = manager.loop.watch(
            ours, selectors.EVENT_READ, lambda _m: received.append(ours.recv(10))
        )
        theirs.send(b"io")
        manager.tick(None)  # I/O came within the threshold: not idle, no jump
        assert (received, clock.time()) == ([b"io"], 0.0)
        watch.cancel()
    manager.tick(None)
    assert clock.time() == 10.0


def test_a_deadline_at_the_current_virtual_time_runs() -> None:
    manager = Manager()
    clock = VirtualClock(start=5.0)
    manager.loop.clock = clock
    ran: list[float] = []
    manager.loop.call_at(5.0, lambda: ran.append(clock.time()))
    manager.tick(0)
    assert ran == [5.0]
    manager.loop.call_later(1.5, lambda: ran.append(clock.time()))
    clock.advance(1.4)
    manager.tick(0)
    assert ran == [5.0]
    clock.advance(0.1)  # to the deadline exactly (6.5: no rounding on the way)
    manager.tick(0)
    assert ran == [5.0, 6.5]


def test_timers_made_before_the_clock_is_set_keep_their_remaining_delay() -> None:
    manager = Manager()
    log = TimeLog()
    timer = Timer(1000.0, Event.create("tick"), persist=True)
    manager += log
    manager += timer
    manager.flush()
    ran: list[float] = []
    manager.loop.call_later(500.0, lambda: ran.append(manager.loop.time()))
    clock = VirtualClock(start=100.0)
    manager.loop.clock = clock  # far below time.monotonic(): the deadlines move with it
    # What was left of each delay is kept (less the instant it took to get here).
    assert 550.0 < min(manager.loop.scheduled(), key=lambda h: h.when).when <= 600.0
    clock.advance(450.0)
    manager.tick(0)
    assert ran == []
    clock.advance(100.0)
    manager.tick(0)
    assert len(ran) == 1
    expiry = timer.expiry
    assert expiry is not None and 1050.0 < expiry <= 1100.0
    clock.jump(expiry)
    manager.tick(0)
    assert log.at == [expiry]
    assert timer.expiry == expiry + 1000.0  # a persistent timer goes on on the new clock


def test_several_loops_on_one_virtual_clock() -> None:
    clock = VirtualClock()
    first, second = Manager(), Manager()
    times = [VirtualTime(first.loop, clock), VirtualTime(second.loop, clock)]
    logs = [TimeLog(), TimeLog()]
    with running(first) as rec_first, running(second) as rec_second:
        for manager, log, delay in zip((first, second), logs, (3.0, 5.0), strict=True):
            log.register(manager)
            Timer(delay, Event.create("tick")).register(manager)
        for vt, delay in zip(times, (3.0, 5.0), strict=True):
            vt.wait_timer(delay)
        clock.advance(5.0)  # one advance wakes both loops
        rec_first.wait_for("tick")
        rec_second.wait_for("tick")
    assert [log.at for log in logs] == [[5.0], [5.0]]


# ------------------------------------------------------------------ VirtualTime
def test_virtual_time_advance_stops_at_each_deadline(
    vapp: tuple[Manager, Recorder, VirtualTime],
) -> None:
    manager, _recorder, vt = vapp
    log = TimeLog()
    log.register(manager)
    Timer(0.25, Event.create("tick"), persist=True).register(manager)
    vt.wait_timer(0.25)
    vt.advance(0.2)
    assert log.at == []
    vt.advance(0.8)  # a persistent timer fires at each of its deadlines, as in real time
    assert log.at == [0.25, 0.5, 0.75, 1.0]
    assert vt.now == 1.0 and vt.deadlines() == [1.25]


def test_virtual_time_settle_waits_for_what_the_loop_has_to_do_now(
    vapp: tuple[Manager, Recorder, VirtualTime],
) -> None:
    manager, recorder, vt = vapp

    class Chain(BaseComponent):
        def init(self) -> None:
            self.depth = 0

        @handler("step")
        def _step(self, n: int) -> None:
            self.depth = n
            if n < 50:
                self.fire(Event.create("step", n + 1))
            else:
                self.loop.call_later(7.0, lambda: None)

    chain = Chain()
    chain.register(manager)
    recorder.wait_for("registered", predicate=lambda e: e.args[0] is chain)
    manager.fire(Event.create("step", 1))
    vt.settle()
    assert chain.depth == 50  # every event fired since was handled
    assert vt.deadlines() == [7.0]


def test_virtual_time_reading_waits_until_the_loop_has_read() -> None:
    manager = Manager()
    vt = VirtualTime(manager.loop)
    received: list[bytes] = []
    ours, theirs = socket.socketpair()
    with ours, theirs, running(manager):
        ours.setblocking(False)
        watched = threading.Event()

        def watch() -> None:
            manager.loop.watch(
                ours, selectors.EVENT_READ, lambda _m: received.append(ours.recv(99))
            )
            watched.set()

        manager.loop.call_soon_threadsafe(watch)
        assert watched.wait(5)
        for piece in (b"one", b"two", b"three"):
            with vt.reading():
                theirs.send(piece)
            assert received[-1] == piece  # read before the block ended


def test_running_stops_a_loop_whose_virtual_time_nobody_moves() -> None:
    class Slow(BaseComponent):
        @handler("stopped", channel="*")
        async def _stopped(self, manager: Manager) -> None:
            await sleep(30)  # a stop that waits on the clock, like a lingering close

    manager = Manager()
    manager += Slow()
    clock = VirtualClock()
    with running(manager, clock=clock):
        pass
    assert clock.time() >= 5.0  # the stop timeout (or the sleep) came by autojump
    assert clock.autojump_threshold == math.inf  # and the clock is as it was


def test_virtual_time_advance_to_next_moves_to_the_next_deadline_only(
    vapp: tuple[Manager, Recorder, VirtualTime],
) -> None:
    manager, _recorder, vt = vapp
    log = TimeLog()
    log.register(manager)
    Timer(3.0, Event.create("tick")).register(manager)
    Timer(5.0, Event.create("tick")).register(manager)
    vt.wait_timer(5.0)
    assert vt.advance_to_next() == 3.0
    assert log.at == [3.0]
    assert vt.advance_to_next() == 5.0
    assert log.at == [3.0, 5.0]
    with pytest.raises(LookupError):
        vt.advance_to_next()
