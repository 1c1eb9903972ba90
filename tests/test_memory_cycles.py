"""What the loop is done with is freed by reference counting, not left to the cyclic GC.

Under connection churn, objects kept alive by reference cycles (or by cancelled timers
waiting in the heap) pile up until a full collection, which then pauses the loop for
hundreds of milliseconds (seen as a p99 of 300-600 ms with ``Connection: close`` load).
Each test disables the GC and counts what is left.
"""

from __future__ import annotations

import gc
import socket
import sys
import weakref
from collections.abc import Iterator

import pytest

from netcomp import Component, Event, Manager
from netcomp.core import _dispatch
from netcomp.testing import running
from netcomp.web import Controller, Server
from netcomp.web._link import Link


@pytest.fixture
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class ping(Event):
    """ping(): answered by Pong."""


class Pong(Component):
    def ping(self) -> str:
        return "pong"


def test_a_done_event_and_its_value_free_each_other(no_gc: None) -> None:
    manager = Manager() + Pong()
    event = ping()
    value = manager.fire(event)
    manager.flush()
    assert value.value == "pong" and value.event is event  # held by us: still there
    gone = weakref.ref(event)
    del event
    assert gone() is None and value.event is None  # no cycle kept it
    held = manager.fire(ping())
    manager.flush()
    assert held.value == "pong" and held.event is None  # nobody else held the event
    dropped = weakref.ref(held)
    del held
    assert dropped() is None


class Thing:
    """Something a timer callback keeps alive."""

    def run(self) -> None:
        raise AssertionError("a cancelled timer ran")


def test_a_cancelled_timer_lets_go_of_its_callback_and_the_heap_is_swept(no_gc: None) -> None:
    manager = Manager()
    thing = Thing()
    handle = manager.loop.call_later(3600, thing.run)
    alive = weakref.ref(thing)
    del thing
    handle.cancel()
    assert alive() is None
    for _ in range(5000):
        manager.loop.call_later(3600, Thing().run).cancel()
    assert manager.loop.stats()["timer_heap"] < 2100  # swept as it grew, not 5001 entries


class Hello(Controller):
    channel = "/"

    def index(self) -> str:
        return "hello"


def test_closed_connections_are_freed_without_the_gc(no_gc: None) -> None:
    # Links kept alive elsewhere (an earlier test's exception traceback holding a
    # response) are not this test's concern: only the ones made here are counted.
    earlier = {id(obj) for obj in gc.get_objects() if type(obj) is Link}
    manager = Manager()
    server = Server(("127.0.0.1", 0)).register(manager)
    Hello().register(server)
    with running(manager) as recorder:
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                reply = b""
                while chunk := sock.recv(65536):
                    reply += chunk
            assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"hello")
        recorder.wait_for("disconnect", count=20)  # every link is down
        left = [obj for obj in gc.get_objects() if type(obj) is Link and id(obj) not in earlier]
        assert left == []


@pytest.mark.skipif(
    sys.implementation.name != "cpython" or sys.version_info >= (3, 14),
    reason="the reference count shortcut is only taken on CPython before 3.14",
)
def test_dispatch_knows_a_lone_events_reference_count() -> None:
    # Dispatch lets go of an event only its Value holds without making a weak reference
    # (one per event); it needs the count such an event has, measured at import.
    assert _dispatch._LONE_EVENT_REFS == 3
