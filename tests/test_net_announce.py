"""A stream server fires ``connect`` and ``disconnect`` only when someone hears them.

``Loop.heard(kind, channels)`` says whether an event would reach anyone: a handler by
name or a catch-all one, a waiter, an observer, a feedback switch. A server that nobody
listens to makes no event per connection (issue 18: two of the three events of a
``Connection: close`` request); a handler, a waiter or a Debugger added at any time gets
them from the next connection on.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

from netcomp import Component, Event, Manager, handler
from netcomp.net import TCPServer, connect, disconnect
from netcomp.testing import Recorder, Trace

TIMEOUT = 10.0


class CountingServer(TCPServer):
    """A TCPServer that notes the name of every event it fires (its own public fire)."""

    def init(self, *args: Any, **kwargs: Any) -> None:
        self.fired: list[str] = []
        self.lock = threading.Lock()

    @handler(False)  # a deliberate override, not a handler
    def fire(self, event: Event, *channels: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.fired.append(event.name)
        return super().fire(event, *channels, **kwargs)

    def names(self) -> list[str]:
        with self.lock:
            return list(self.fired)


class Connects(Component):
    def init(self) -> None:
        self.seen: list[str] = []
        self.both = threading.Semaphore(0)
        self.in_tree = threading.Event()

    def registered(self, component: Any, manager: Any) -> None:
        if component is self:
            self.in_tree.set()

    def connect(self, sock: socket.socket, host: str, port: int) -> None:
        self.seen.append("connect")

    def disconnect(self, sock: socket.socket) -> None:
        self.seen.append("disconnect")
        self.both.release()


def one_connection(server: TCPServer) -> None:
    """A stdlib client connects, sends a byte, closes; returns once the server closed too."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"x")
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(16) == b""


class Ready(Component):
    """Tells the test thread the server listens (a ``ready`` handler, not a catch-all)."""

    def init(self, channel: Any) -> None:
        self.channel = channel
        self.up = threading.Event()

    def ready(self, server: Any, bind: Any = None) -> None:
        self.up.set()


@contextlib.contextmanager
def serving(server: TCPServer, manager: Manager) -> Iterator[None]:
    """Run the tree in a thread until the server listens (``running()`` is not used: its
    Recorder is a catch-all handler, which hears every event)."""
    ready = Ready(server.channel)
    ready.register(manager)
    manager.start()
    try:
        assert ready.up.wait(TIMEOUT), "the server did not start listening"
        yield
    finally:
        manager.stop()
        assert manager.join(TIMEOUT) == 0


def test_heard_answers_from_handlers_waiters_observers_and_switches() -> None:
    manager = Manager()  # a server would fire on its channel, here "srv"
    loop = manager.loop
    on_srv = ("srv",)
    assert loop.heard(connect, on_srv) is False

    listener = Connects(channel="srv").register(manager)
    assert loop.heard(connect, on_srv) is True
    assert loop.heard(disconnect, on_srv) is True
    listener.unregister()
    manager.flush()
    assert loop.heard(connect, on_srv) is False

    elsewhere = Connects(channel="other").register(manager)
    manager.flush()
    assert loop.heard(connect, on_srv) is False  # a handler on another channel hears nothing
    elsewhere.unregister()
    manager.flush()

    catch_all = Recorder()  # a "*" handler (as a Debugger is)
    catch_all.register(manager)
    manager.flush()
    assert loop.heard(connect, on_srv) is True
    catch_all.unregister()
    manager.flush()
    assert loop.heard(connect, on_srv) is False

    trace = Trace()
    loop.observe(trace)
    assert loop.heard(connect, on_srv) is True
    loop.unobserve(trace)
    assert loop.heard(connect, on_srv) is False

    connect.complete = True
    try:
        assert loop.heard(connect, on_srv) is True  # connect_complete is wanted
    finally:
        connect.complete = False
    assert loop.heard(connect, on_srv) is False


def test_a_server_nobody_listens_to_fires_no_event_per_connection() -> None:
    manager = Manager()
    server = CountingServer(("127.0.0.1", 0))
    server.register(manager)
    with serving(server, manager):
        before = server.names()
        for _ in range(3):
            one_connection(server)
        assert [n for n in server.names() if n != "read"] == before  # no (dis)connect

        listener = Connects(channel=server.channel)
        listener.register(manager)  # from another thread: done on the loop thread
        assert listener.in_tree.wait(TIMEOUT)
        one_connection(server)
        assert listener.both.acquire(timeout=TIMEOUT)
        assert listener.seen == ["connect", "disconnect"]
        after = [n for n in server.names() if n != "read"][len(before) :]
        assert after == ["connect", "disconnect"]


class Waiter(Component):
    """Waits for the next ``disconnect`` without a handler of that name."""

    def init(self, channel: Any) -> None:
        self.channel = channel
        self.got = threading.Event()
        self.armed = threading.Event()

    @handler("watch")
    async def _watch(self) -> None:
        waiting = self.wait("disconnect", self.channel, timeout=TIMEOUT)
        # Awaiting registers the waiter at once; this callback runs after that.
        self.loop.call_soon(self.armed.set)
        await waiting
        self.got.set()


def test_a_waiter_alone_gets_the_event() -> None:
    manager = Manager()
    server = CountingServer(("127.0.0.1", 0))
    server.register(manager)
    waiter = Waiter(server.channel)
    waiter.register(manager)
    with serving(server, manager):
        manager.fire(Event.create("watch"))
        assert waiter.armed.wait(TIMEOUT)
        assert "disconnect" in manager.loop.waiters
        one_connection(server)
        assert waiter.got.wait(TIMEOUT)
        assert "disconnect" in server.names()
