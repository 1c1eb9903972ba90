"""Traces: what a loop dispatched, recorded by an observer (netcomp.core.Trace).

* Off costs nothing: an unobserved loop runs the class's plain ``dispatch_batch`` and
  ``Manager.fire`` is the plain one; attaching swaps both, detaching swaps them back.
* Observed dispatch keeps the plain one's semantics (results, errors, stop, async).
* Records say who fired what, from which handler, which handlers ran, how long, with what
  result or error; memory is a bounded ring; JSON lines round-trip.
* ``Debugger(record=...)`` and ``running(app, trace=True)`` record one; a failing block
  saves it and names the file in the failure.
"""

from __future__ import annotations

import gc
import io
import json
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from netcomp import Component, Debugger, Event, Manager, Trace, TraceRecord, handler, sleep
from netcomp.core._manager import _plain_fire
from netcomp.core._observe import fire_hook
from netcomp.testing import running, save_failure_trace


class ping(Event):
    pass


class pong(Event):
    pass


class boom(Event):
    pass


class Pinger(Component):
    def ping(self, i: int) -> int:
        if i < 5:
            self.fire(pong(i + 1))
        return i


class Ponger(Component):
    async def pong(self, i: int) -> int:
        await sleep(0)
        self.fire(ping(i + 1))
        return i * 10


class Failing(Component):
    def boom(self, why: str) -> None:
        raise ValueError(why)

    def exception(self, *args: Any, **kwargs: Any) -> None:
        pass  # taken by name: nothing is logged


def tree() -> Manager:
    manager = Manager()
    Pinger().register(manager)
    Ponger().register(manager)
    Failing().register(manager)
    return manager


def run_until_idle(manager: Manager) -> None:
    for _ in range(200):  # bounded: a few passes per event (sleep(0) is a timer due now)
        manager.flush()
        if not manager.loop.scheduled() and not len(manager):
            return
        manager.tick(0.01)
    raise AssertionError("the tree did not become idle")


def by_name(trace: Trace, name: str) -> list[TraceRecord]:
    return [r for r in trace.records if r.name == name]


# -------------------------------------------------------------------- off is free
def test_an_unobserved_loop_runs_the_plain_hot_path() -> None:
    gc.collect()  # loops of earlier tests that were dropped while observed give fire back
    before = fire_hook.count
    manager = Manager()
    loop = manager.loop
    assert "dispatch_batch" not in vars(loop)
    trace = Trace().attach(manager)
    assert "dispatch_batch" in vars(loop)
    assert Manager.fire is not _plain_fire and fire_hook.count == before + 1
    assert loop.observers == (trace,)
    trace.detach()
    assert "dispatch_batch" not in vars(loop)
    assert loop.observers == () and fire_hook.count == before
    if before == 0:
        assert Manager.fire is _plain_fire


def test_fire_stays_observed_while_any_loop_is() -> None:
    gc.collect()
    before = fire_hook.count
    one, two = Manager(), Manager()
    first, second = Trace().attach(one), Trace().attach(two)
    first.detach()
    assert Manager.fire is not _plain_fire and fire_hook.count == before + 1
    second.detach()
    assert fire_hook.count == before


def test_a_loop_dropped_while_observed_gives_fire_back() -> None:
    gc.collect()
    before = fire_hook.count
    manager = Manager()
    Trace().attach(manager)
    assert fire_hook.count == before + 1
    del manager
    gc.collect()
    assert fire_hook.count == before


# --------------------------------------------------------------- same semantics
def outcome(traced: bool) -> list[Any]:
    manager = tree()
    trace = Trace().attach(manager) if traced else None
    values = [manager.fire(ping(1)), manager.fire(boom("bad"))]
    run_until_idle(manager)
    if trace is not None:
        trace.detach()
    return [(v.value, v.errors, repr(v.exception), v.handled) for v in values]


def test_observed_dispatch_gives_the_same_values_and_errors() -> None:
    assert outcome(traced=True) == outcome(traced=False)


def test_stop_and_priorities_are_kept_when_observed() -> None:
    seen: list[str] = []

    class First(Component):
        @handler("go", priority=10)
        def first(self, event: Event) -> str:
            seen.append("first")
            event.stop()
            return "first"

    class Second(Component):
        @handler("go")
        def second(self) -> str:
            seen.append("second")
            return "second"

    manager = Manager()
    First().register(manager)
    Second().register(manager)
    with Trace().attach(manager) as trace:
        value = manager.fire(Event.create("go"))
        manager.flush()
    assert seen == ["first"] and value.value == "first"
    (record,) = by_name(trace, "go")
    assert [run.handler for run in record.handlers] == ["First.first"]


# ---------------------------------------------------------------------- records
def test_records_say_who_fired_what_from_which_handler() -> None:
    manager = tree()
    with Trace().attach(manager) as trace:
        manager.fire(ping(1))
        run_until_idle(manager)
    pings, pongs = by_name(trace, "ping"), by_name(trace, "pong")
    assert [r.args for r in pings] == ["1", "3", "5"]
    assert [r.args for r in pongs] == ["2", "4"]
    first = pings[0]
    assert first.source == "Manager" and first.parent is None
    assert first.thread is None  # fired by the code that drives the loop (not running)
    assert first.result == "1" and first.error is None
    assert [run.handler for run in first.handlers] == ["Pinger.ping"]
    assert first.handlers[0].component == "Pinger" and first.handlers[0].seconds >= 0
    second = pongs[0]
    assert second.source == "Pinger" and second.parent == first.seq
    assert second.parent_handler == "Pinger.ping" and second.thread is None
    assert second.result == "20"  # the coroutine's result, once it was done
    assert second.done is not None and second.done >= second.end >= second.start
    # fired by a coroutine handler after it resumed: its handler is still named
    third = pings[1]
    assert third.source == "Ponger" and third.parent == second.seq
    assert third.parent_handler == "Ponger.pong"


def test_an_error_is_recorded_with_its_exception_event_as_a_child() -> None:
    manager = tree()
    with Trace().attach(manager) as trace:
        manager.fire(boom("bad input"))
        run_until_idle(manager)
    (failed,) = by_name(trace, "boom")
    assert failed.error == "ValueError: bad input"
    assert failed.handlers[0].error == "ValueError: bad input"
    (report,) = by_name(trace, "exception")
    assert report.parent == failed.seq and report.source == "Failing"
    assert report.parent_handler == "Failing.boom"
    assert report.args == "ValueError('bad input')"


def test_arguments_are_shortened_and_nothing_is_kept_alive() -> None:
    class Big:
        def __repr__(self) -> str:
            return "x" * 1000

    manager = Manager()
    with Trace(width=50).attach(manager) as trace:
        manager.fire(Event.create("big", Big(), Big()))
        manager.flush()
    (record,) = by_name(trace, "big")
    assert len(record.args) <= 50 and record.args.endswith("...")
    assert record.handled is False and record.handlers == []
    json.dumps(record.to_json())  # strings and numbers only


def test_events_from_another_thread_name_the_thread() -> None:
    manager = Manager()
    with running(manager, trace=True) as recorder:
        thread = threading.Thread(
            target=lambda: manager.fire(Event.create("hello")), name="feeder"
        )
        thread.start()
        thread.join(5)
        recorder.wait_for("hello")
    assert recorder.trace is not None
    (record,) = by_name(recorder.trace, "hello")
    assert record.thread == "feeder" and record.source == "Manager"


def test_the_ring_keeps_the_last_records_only() -> None:
    manager = Manager()
    with Trace(capacity=10).attach(manager) as trace:
        for i in range(100):
            manager.fire(Event.create("tick", i))
        manager.flush()
    assert len(trace) == 10 and trace.dropped == 90
    assert [r.args for r in trace] == [str(i) for i in range(90, 100)]
    trace.clear()
    assert len(trace) == 0 and trace.dropped == 0


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        Trace(0)
    with pytest.raises(TypeError, match="component or a Loop"):
        Trace().attach(object())


def test_a_trace_follows_its_subtree_into_a_tree() -> None:
    child = Pinger()
    trace = Trace().attach(child)
    manager = Manager()
    child.register(manager)
    assert manager.loop.observers == (trace,)
    manager.fire(ping(9))
    manager.flush()
    assert any(r.name == "ping" and r.args == "9" for r in trace)
    trace.detach()


def test_two_observers_both_hear() -> None:
    manager = Manager()
    one, two = Trace().attach(manager), Trace().attach(manager)
    manager.fire(Event.create("x"))
    manager.flush()
    assert [r.name for r in one] == [r.name for r in two] == ["x"]
    one.detach()
    two.detach()


# ------------------------------------------------------------------ JSON lines
def test_json_lines_round_trip(tmp_path: Path) -> None:
    manager = tree()
    with Trace(capacity=50).attach(manager) as trace:
        manager.fire(ping(1))
        manager.fire(boom("x"))
        run_until_idle(manager)
    path = tmp_path / "trace.jsonl"
    trace.save(path)
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == {
        "format": "netcomp-trace",
        "version": 1,
        "capacity": 50,
        "dropped": 0,
    }
    assert len(lines) == len(trace) + 1
    loaded = Trace.load(path)
    assert loaded.records == trace.records and not loaded.attached
    stream = io.StringIO()
    trace.save(stream)
    stream.seek(0)
    assert Trace.load(stream).records == trace.records


def test_loading_something_else_says_so() -> None:
    with pytest.raises(ValueError, match="not a netcomp trace"):
        Trace.loads('{"hello": 1}\n')
    with pytest.raises(ValueError, match="empty"):
        Trace.loads("")
    with pytest.raises(ValueError, match="version"):
        Trace.loads('{"format": "netcomp-trace", "version": 99}\n')


# ------------------------------------------------------------- where traces come
def test_the_debugger_records_and_follows_its_tree() -> None:
    debugger = Debugger(events=False, record=5)
    assert debugger.trace is not None and debugger.trace.capacity == 5
    manager = Manager()
    debugger.register(manager)
    manager.fire(Event.create("seen"))
    manager.flush()
    assert "seen" in [r.name for r in debugger.trace]
    debugger.trace.detach()
    with pytest.raises(TypeError, match="record"):
        Debugger(record="yes")  # type: ignore[arg-type]


def test_a_failing_block_saves_its_trace_and_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NETCOMP_TRACE_DIR", str(tmp_path))
    manager = tree()
    with pytest.raises(AssertionError) as failure, running(manager, trace=True) as recorder:
        manager.fire(ping(1))
        recorder.wait_for("pong", count=2)
        raise AssertionError("the test failed")
    saved = list(tmp_path.glob("*.jsonl"))
    assert len(saved) == 1
    assert "test_a_failing_block_saves_its_trace" in saved[0].name
    loaded = Trace.load(saved[0])
    assert "pong" in [r.name for r in loaded]
    notes = "\n".join(getattr(failure.value, "__notes__", [])) or capsys.readouterr().err
    assert str(saved[0]) in notes and "netcomp graph" in notes
    assert "Pinger -> pong(" in notes  # the last events, one line each


def test_handler_errors_in_a_traced_run_save_the_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETCOMP_TRACE_DIR", str(tmp_path))
    manager = Manager()

    class Bad(Component):
        def go(self) -> None:
            raise RuntimeError("nope")

    Bad().register(manager)
    with (
        pytest.raises(AssertionError, match="handlers raised"),
        running(manager, trace=Trace(100)) as recorder,
    ):
        manager.fire(Event.create("go"))
        recorder.wait_for("exception")
    (saved,) = tmp_path.glob("*.jsonl")
    assert "RuntimeError: nope" in saved.read_text()


def test_save_failure_trace_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETCOMP_TRACE_DIR", str(tmp_path / "deep"))
    error = AssertionError("x")
    path = save_failure_trace(Trace(), error, name="my test/1")
    assert Path(path).name == "my_test_1.jsonl" and Path(path).exists()
    if sys.version_info >= (3, 11):
        assert path in "\n".join(error.__notes__)
