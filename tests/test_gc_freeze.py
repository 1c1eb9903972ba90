"""run() moves start-up objects out of the garbage collector's way while the tree serves.

docs/architecture.md, "The loop and the garbage collector": on the main thread, once
``started`` is handled, the loop collects once and freezes what is alive; when ``run()``
returns it unfreezes, so nothing made at start-up is leaked. Threads, ``gc_freeze=False``
and a program that froze objects itself are left alone.
"""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

import pytest

from netcomp import Component, Event, Manager


class Marker:
    """A tracked object made before the run (a stand-in for modules, classes, the tree)."""

    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector can free it


def tracked(obj: object) -> bool:
    """Whether the collector's generations (not the permanent one) hold ``obj``."""
    return any(other is obj for other in gc.get_objects())


class Look(Component):
    """Once the tree has started, looks at the collector, runs ``then``, stops the tree."""

    def init(self, then: Any = None) -> None:
        self.then = then
        self.freeze_count: int | None = None
        self.seen: dict[str, Any] = {}

    def started(self, manager: Manager) -> None:
        # ``started`` is done at the end of this batch; a callback runs in the next pass.
        self.loop.call_soon(self.look)

    def look(self) -> None:
        self.freeze_count = gc.get_freeze_count()
        if self.then is not None:
            self.then(self.seen)
        self.root.stop()


def run_with_guard(app: Manager, **kwargs: Any) -> None:
    """run() with a hard deadline: a stuck loop is stopped from a timer thread."""
    guard = threading.Timer(10.0, app.stop)
    guard.start()
    try:
        assert app.run(**kwargs) == 0
    finally:
        guard.cancel()


@pytest.fixture(autouse=True)
def collector_clean() -> Any:
    assert gc.get_freeze_count() == 0, "an earlier test left objects frozen"
    yield
    gc.unfreeze()


def test_run_freezes_what_was_alive_at_startup_and_gives_it_back() -> None:
    marker = Marker()
    assert tracked(marker)
    probe = Look(then=lambda seen: seen.update(marker_tracked=tracked(marker)))
    app = Manager() + probe
    run_with_guard(app)
    assert probe.freeze_count is not None and probe.freeze_count > 1000
    assert probe.seen == {"marker_tracked": False}  # full collections skip it while serving
    assert gc.get_freeze_count() == 0
    assert tracked(marker)


def test_objects_made_while_serving_stay_with_the_collector() -> None:
    def make(seen: dict[str, Any]) -> None:
        fresh = Marker()
        seen["ref"] = weakref.ref(fresh)
        seen["tracked"] = tracked(fresh)
        del fresh
        gc.collect()
        seen["freed"] = seen["ref"]() is None

    probe = Look(then=make)
    run_with_guard(Manager() + probe)
    assert probe.seen["tracked"] is True
    assert probe.seen["freed"] is True


def test_startup_garbage_made_while_serving_is_collected_after_run() -> None:
    marker = Marker()
    ref = weakref.ref(marker)

    def drop(seen: dict[str, Any]) -> None:
        nonlocal marker
        del marker  # now cyclic garbage, but frozen: the collector cannot see it
        gc.collect()
        seen["alive_while_running"] = ref() is not None

    probe = Look(then=drop)
    run_with_guard(Manager() + probe)
    assert probe.seen == {"alive_while_running": True}
    gc.collect()
    assert ref() is None  # given back by run(): not leaked


def test_gc_freeze_false_leaves_the_collector_alone() -> None:
    probe = Look()
    run_with_guard(Manager() + probe, gc_freeze=False)
    assert probe.freeze_count == 0


def test_a_tree_run_in_a_thread_does_not_freeze() -> None:
    probe = Look()
    app = Manager() + probe
    app.start()
    assert app.join(10.0) == 0
    assert probe.freeze_count == 0


def test_a_program_that_froze_objects_itself_is_left_alone() -> None:
    gc.freeze()
    probe = Look(then=lambda seen: seen.update(tree_tracked=tracked(seen["tree"])))
    app = Manager() + probe
    probe.seen["tree"] = app  # made after the program's freeze: the loop must not freeze it
    run_with_guard(app)
    assert probe.seen["tree_tracked"] is True
    assert gc.get_freeze_count() > 0  # not unfrozen behind the program's back


def test_a_disabled_collector_is_left_alone() -> None:
    gc.disable()
    try:
        probe = Look()
        run_with_guard(Manager() + probe)
        assert probe.freeze_count == 0
    finally:
        gc.enable()


class Burst(Component):
    """``started`` fires an event; its handler notes whether the loop tracks it."""

    def init(self) -> None:
        self.tracked: bool | None = None

    def started(self, manager: Manager) -> None:
        self.fire(Event.create("burst"))

    def burst(self) -> None:
        self.tracked = self.loop.tracking
        self.root.stop()


def test_freezing_tracks_nothing_that_started_fires() -> None:
    # Waiting for ``started`` to complete would track every event its handlers fire
    # (a cost per event, for as long as they fire more): the freeze comes a pass later.
    probe = Burst()
    run_with_guard(Manager() + probe)
    assert probe.tracked is False
