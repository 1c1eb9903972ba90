"""Workers: tasks on a thread or process pool, results and errors back to the caller."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

from netcomp import Component, Event, Manager, Worker, task
from netcomp.testing import Recorder, running

# Module-level so a process pool can pickle them.


def add(a: int, b: int) -> int:
    return a + b


def fail(message: str) -> None:
    raise ValueError(message)


def getpid() -> int:
    return os.getpid()


def scale(value: int, *, factor: int) -> int:
    return value * factor


class Caller(Component):
    """Runs tasks on the worker channel from coroutine handlers."""

    async def go(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self.call(task(f, *args, **kwargs), "worker", timeout=10)

    async def go_catch(self, f: Callable[..., Any], *args: Any) -> Any:
        try:
            await self.call(task(f, *args), "worker", timeout=10)
        except ValueError as error:
            return ("caught", str(error), threading.current_thread().name)
        return "not raised"


def _tree(worker: Worker) -> Manager:
    manager = Manager()
    manager += worker
    manager += Caller()
    return manager


def _worker_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("netcomp-worker")}


def test_thread_worker_returns_the_result() -> None:
    manager = _tree(Worker())
    with running(manager) as recorder:
        manager.fire(Event.create("go", add, 1, 2))
        assert recorder.wait_for("go", timeout=10).value.value == 3
        manager.fire(Event.create("go", scale, 4, factor=3))
        assert recorder.wait_for("go", count=2, timeout=10).value.value == 12


def test_thread_worker_reraises_the_exception_in_the_caller() -> None:
    manager = _tree(Worker())
    # The failed task is a handler error too (an ``exception`` event), hence check_errors off.
    with running(manager, check_errors=False) as recorder:
        manager.fire(Event.create("go_catch", fail, "boom"))
        outcome = recorder.wait_for("go_catch", timeout=10).value.value
    kind, message, thread_name = outcome
    assert (kind, message) == ("caught", "boom")
    assert not thread_name.startswith("netcomp-worker")  # re-raised on the loop thread


def test_task_failure_lands_on_the_task_value_and_fires_exception() -> None:
    manager = Manager()
    manager += Worker()
    with running(manager, check_errors=False) as recorder:
        value = manager.fire(task(fail, "bad"), "worker")
        event = recorder.wait_for("task", timeout=10)
        error_event = recorder.wait_for("exception", timeout=5)
    assert event.value is value
    assert isinstance(value.exception, ValueError)
    assert str(value.exception) == "bad"
    assert error_event.args[1] is value.exception
    assert error_event.kwargs["fevent"] is event


def test_a_slow_task_does_not_block_other_events() -> None:
    entered = threading.Event()
    release = threading.Event()

    def slow() -> str:
        entered.set()
        if not release.wait(10):
            return "never released"
        return "slow done"

    manager = _tree(Worker())
    with running(manager) as recorder:
        try:
            manager.fire(Event.create("go", slow))
            assert entered.wait(5)
            manager.fire(Event.create("other"))
            recorder.wait_for("other", timeout=5)
            go = recorder.wait_for("go", done=False)
            assert go.value is not None and not go.value.result  # still waiting on the pool
        finally:
            release.set()
        assert recorder.wait_for("go", timeout=10).value.value == "slow done"


def test_process_worker_runs_the_task_in_another_process() -> None:
    worker = Worker(process=True, workers=1)
    manager = _tree(worker)
    with running(manager) as recorder:
        manager.fire(Event.create("go", getpid))
        child_pid = recorder.wait_for("go", timeout=20).value.value
        manager.fire(Event.create("go", add, 20, 22))
        assert recorder.wait_for("go", count=2, timeout=20).value.value == 42
    assert isinstance(child_pid, int)
    assert child_pid != os.getpid()
    assert worker._pool is None


def test_worker_shuts_its_pool_down_on_stop() -> None:
    before = _worker_threads()
    worker = Worker(workers=2)
    manager = _tree(worker)
    with running(manager) as recorder:
        manager.fire(Event.create("go", add, 1, 1))
        recorder.wait_for("go", timeout=10)
        ours = _worker_threads() - before
        assert ours, "the pool should have started a netcomp-worker thread"
    assert worker._pool is None
    for thread in ours:
        thread.join(5)
    assert not [t for t in ours if t.is_alive()]


def test_worker_shuts_its_pool_down_when_unregistered(app: tuple[Manager, Recorder]) -> None:
    manager, recorder = app
    before = _worker_threads()
    worker = Worker(workers=1)
    caller = Caller()
    worker.register(manager)
    caller.register(manager)
    recorder.wait_for("registered", predicate=lambda e: e.args[0] is caller)
    manager.fire(Event.create("go", add, 2, 3))
    assert recorder.wait_for("go", timeout=10).value.value == 5
    ours = _worker_threads() - before
    assert ours
    worker.unregister()
    recorder.wait_for("unregistered", predicate=lambda e: e.args[0] is worker, timeout=5)
    assert worker._pool is None
    for thread in ours:
        thread.join(5)
    assert not [t for t in ours if t.is_alive()]


def test_task_needs_a_callable() -> None:
    with pytest.raises(TypeError, match="callable"):
        task(42)  # type: ignore[arg-type]
    assert "thread" in repr(Worker())
    assert "process" in repr(Worker(process=True))
