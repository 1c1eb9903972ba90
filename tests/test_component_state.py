"""A component's init() cannot silently clobber the attributes the loop runs on."""

from __future__ import annotations

import pytest

from netcomp import Component, Event, Manager


class ping(Event):
    """ping(): a test event."""


def test_init_assigning_loop_state_is_refused_with_the_name() -> None:
    class Queueing(Component):
        def init(self) -> None:
            self._queue: list[int] = []  # a natural name, and the loop's event queue

    with pytest.raises(TypeError, match=r"Queueing\.init\(\) assigned _queue"):
        Queueing()


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
