"""A component's own attributes and handler names cannot break the loop it runs on.

The loop's state lives in ``component.loop``, not in underscore attributes of every
component, and the loop never calls a method through a component (but for its two hooks):
so ``tick``, ``flush``, ``started`` ... are ordinary handler names, and ``self._ready`` is
an ordinary attribute.
"""

from __future__ import annotations

from typing import Any

import pytest

from netcomp import Component, Event, Manager, Timer, handler
from netcomp.testing import VirtualClock

# Every private name the loop used to keep on each component, and a few more it might.
_NAMES = (
    "_queue",
    "_ready",
    "_timers",
    "_timer_seq",
    "_timers_compact_at",
    "_waiters",
    "_current",
    "_in_dispatch",
    "_running",
    "_stopping",
    "_sleeping",
    "_thread_id",
    "_exit_code",
    "_wakeup",
    "_selector",
    "_io_count",
    "_thread",
    "_process",
    "_entries",
    "_registry",
)


class ping(Event):
    """ping(): a test event."""


def test_user_attributes_with_the_loops_old_names_are_just_attributes() -> None:
    class Busy(Component):
        def init(self) -> None:
            for name in _NAMES:
                setattr(self, name, f"mine: {name}")
            self.ticks = 0

        def started(self, manager: Any) -> None:
            # A root's started handler assigning such names once broke its loop silently.
            self._ready = True
            self._running = "yes"
            self._queue = []
            Timer(1.0, Event.create("tick"), persist=True).register(self)

        def tick(self) -> None:
            self.ticks += 1
            if self.ticks == 3:
                self.stop(7)

    app = Busy()
    app.loop.clock = VirtualClock(autojump_threshold=0)
    assert app.run() == 7
    assert app.ticks == 3
    assert app._ready is True
    assert app._thread == "mine: _thread"


def test_handlers_may_take_the_names_the_loop_used_to_call() -> None:
    class Circuitsy(Component):
        def init(self) -> None:
            self.seen: list[str] = []

        def tick(self) -> None:
            self.seen.append("tick")

        def flush(self) -> None:
            self.seen.append("flush")

        def ready(self, *args: Any) -> None:
            self.seen.append("ready")

        def signal(self, *args: Any) -> None:
            self.seen.append("signal")

        def stopped(self, manager: Any) -> None:
            self.seen.append("stopped")

        def started(self, manager: Any) -> None:
            self.seen.append("started")
            for name in ("tick", "flush", "ready", "signal"):
                self.fire(Event.create(name))

        @handler("signal", priority=-1)
        def _stop_after_signal(self, *args: Any) -> None:
            self.stop()

    app = Circuitsy()
    assert app.run() == 0
    assert app.seen == ["started", "tick", "flush", "ready", "signal", "stopped"]


def test_a_component_may_name_a_handler_tick_and_be_ticked_by_a_timer() -> None:
    class Clockwork(Component):
        def init(self) -> None:
            self.count = 0

        def tick(self) -> None:
            self.count += 1
            if self.count == 5:
                self.stop()

    app = Manager() + Timer(0.5, Event.create("tick"), persist=True) + (work := Clockwork())
    app.loop.clock = VirtualClock(autojump_threshold=0)
    app.run()
    assert work.count == 5


@pytest.mark.parametrize("name", ["fire", "call", "wait", "register", "stop", "run", "join"])
def test_names_user_code_calls_as_methods_are_still_refused(name: str) -> None:
    with pytest.raises(TypeError, match=rf"\.{name}\(\) would replace the framework's {name}"):
        type("Shadow", (Component,), {name: lambda self: None})


def test_the_hooks_are_not_handlers_and_may_be_overridden() -> None:
    class Hooked(Component):
        def init(self) -> None:
            self.moves = 0

        def loop_changed(self) -> None:
            self.moves += 1

    app = Manager()
    hooked = Hooked()
    app += hooked
    assert hooked.moves == 1
    assert app.handlers("loop_changed") == []
    hooked.unregister()
    assert hooked.moves == 2
    assert hooked.loop is not app.loop


def test_init_with_its_own_attributes_still_works() -> None:
    class Counter(Component):
        def init(self, start: int) -> None:
            self.count = start
            self._pending_items: list[int] = []

        def ping(self) -> int:
            self.count += 1
            return self.count

    app = Manager()
    counter = Counter(41)
    app += counter
    value = app.fire(ping())
    app.flush()
    assert value.value == 42


def test_a_components_signature_is_its_init_plus_channel() -> None:
    import inspect

    class Sized(Component):
        def init(self, size: int, label: str = "x") -> None:
            self.size = size

    signature = inspect.signature(Sized)
    assert str(signature) == "(size: 'int', label: 'str' = 'x', *, channel: 'Any' = '*')"


def test_wrong_constructor_arguments_name_the_class_and_what_it_expects() -> None:
    class Sized(Component):
        def init(self, size: int) -> None:
            self.size = size

    with pytest.raises(TypeError) as info:
        Sized(1, 2)
    assert str(info.value) == (
        "Sized(): too many positional arguments; "
        "expected Sized(size: 'int', *, channel: 'Any' = '*')"
    )
    with pytest.raises(TypeError, match=r"Sized\(\): got an unexpected keyword argument 'bogus'"):
        Sized(1, bogus=2)
