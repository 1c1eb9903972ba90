"""Pollers in the core: ``Poller`` chooses the selector a tree's loop waits in (it never
polls), ``Select``/``Poll``/``EPoll``/``KQueue`` are Pollers with a fixed backend under
circuits' names, ``ensure_poller`` finds or makes the tree's one Poller. The same objects
are exported by ``netcomp.net`` (docs/architecture.md, "Net")."""

from __future__ import annotations

import os
import selectors
import threading

import pytest

import netcomp.net
from netcomp import BaseComponent, Component, Manager, Poller, ensure_poller
from netcomp.core.pollers import BasePoller, EPoll, KQueue, Poll, Select
from netcomp.testing import running

FIXED = [
    (Select, "select", "SelectSelector"),
    (Poll, "poll", "PollSelector"),
    (EPoll, "epoll", "EpollSelector"),
    (KQueue, "kqueue", "KqueueSelector"),
]


def test_net_exports_the_core_poller() -> None:
    assert netcomp.net.Poller is Poller
    assert netcomp.net.ensure_poller is ensure_poller
    assert BasePoller is Poller and issubclass(BasePoller, BaseComponent)


@pytest.mark.parametrize(("cls", "backend", "selector"), FIXED, ids=lambda x: str(x))
def test_a_fixed_backend_poller_makes_its_tree_wait_in_that_selector(
    cls: type[Poller], backend: str, selector: str
) -> None:
    if not hasattr(selectors, selector):
        with pytest.raises(ValueError, match=f"unavailable poller backend '{backend}'"):
            cls()
        return
    manager = Manager()
    poller = cls()
    assert isinstance(poller, Poller)
    assert poller.channel == backend and poller.backend == backend
    poller.register(manager)
    reader, writer = os.pipe()
    ready = threading.Event()

    def readable(_mask: int) -> None:
        os.read(reader, 1)
        ready.set()

    try:
        with running(manager):
            manager.loop.call_soon_threadsafe(
                manager.loop.watch, reader, selectors.EVENT_READ, readable
            )
            os.write(writer, b"x")
            assert ready.wait(5)  # the loop, sleeping in that selector, saw the pipe
            assert manager.loop.backend == selector
    finally:
        os.close(reader)
        os.close(writer)


def test_a_fixed_backend_refuses_another() -> None:
    with pytest.raises(ValueError, match="Select waits in 'select', not 'epoll'"):
        Select(backend="epoll")
    assert Select(backend="select").backend == "select"


def test_ensure_poller_finds_or_registers_the_trees_poller() -> None:
    manager = Manager()
    child = Component()
    manager += child
    made = ensure_poller(child)
    assert made.parent is manager and type(made) is Poller
    assert ensure_poller(manager) is made
    other = Manager()
    select = Select()
    other += select
    assert ensure_poller(other) is select  # a fixed-backend one counts
    alone = Poll()
    assert ensure_poller(alone) is alone  # a Poller that is its own root serves itself
