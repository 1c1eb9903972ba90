"""netcomp.testing: the running() context manager and the Recorder."""

from __future__ import annotations

import threading

import pytest

from netcomp import BaseComponent, Component, Event, Manager, handler
from netcomp.testing import Recorder, running


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
