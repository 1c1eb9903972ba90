"""A running Loop keeps fewer than 30 instance attributes.

CPython (3.11+) stores an object's attributes in a shared-keys layout only while the class's
instances have at most 30 keys; past that, every attribute read on the loop (dispatch makes
several per event) takes the slow dictionary path. Rarely set state lives as class
defaults for that reason (docs/architecture.md, "Dispatch"); this guards the budget.
"""

from __future__ import annotations

from typing import Any

from netcomp import Component, Manager

LIMIT = 30


class Look(Component):
    def init(self) -> None:
        self.keys: list[str] = []

    def started(self, manager: Manager) -> None:
        self.keys = sorted(self.loop.__dict__)
        self.root.stop()

    def ping(self) -> Any:
        return None


def test_a_running_loop_keeps_under_the_shared_keys_limit() -> None:
    look = Look()
    app = Manager() + look
    app.start()
    assert app.join(10.0) == 0
    assert look.keys, "started was not handled"
    assert len(look.keys) < LIMIT, f"{len(look.keys)} instance attributes: {look.keys}"
