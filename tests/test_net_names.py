"""The addresses of a client's link (``peername``, ``sockname``, ``destination``: properties
and ``connected`` event attributes, checked against the stdlib's getpeername/getsockname
on the other end), ``Connex.next_destination()``, and the one final ``disconnected`` of a
client whose connect failed. Real sockets on 127.0.0.1 and ::1."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from _fault_proxy import hold_port
from _net_support import ipv6_loopback, on
from netcomp import Component, Manager, handler
from netcomp.net import (
    Backoff,
    Connex,
    TCP6Client,
    TCPClient,
    ThreadedTCPClient,
    connect,
    write,
)
from netcomp.testing import running

CH = "names"


class CircuitsStyle(Component):
    """A circuits program's handlers: ``connected(host, port)``, and one taking the event."""

    channel = CH

    def init(self) -> None:
        self.plain: list[tuple[Any, Any]] = []
        self.names: list[tuple[Any, Any, Any]] = []

    def connected(self, host: Any, port: Any) -> None:
        self.plain.append((host, port))

    @handler("connected")
    def _with_event(self, event: Any, host: Any, port: Any) -> None:
        self.names.append((event.peername, event.sockname, event.destination))


def accepted(listener: socket.socket) -> socket.socket:
    listener.settimeout(5)
    conn, _ = listener.accept()
    return conn


@pytest.mark.parametrize("family", ["tcp", "tcp6"])
def test_client_names_match_the_other_end(family: str) -> None:
    if family == "tcp6" and not ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    host = "127.0.0.1" if family == "tcp" else "::1"
    kind = TCPClient if family == "tcp" else TCP6Client
    with socket.create_server(
        (host, 0), family=socket.AF_INET if family == "tcp" else socket.AF_INET6
    ) as listener:
        port = listener.getsockname()[1]
        client = kind(channel=CH)
        seen = CircuitsStyle()
        manager = Manager()
        client.register(manager)
        seen.register(manager)
        assert client.peername is None and client.sockname is None and client.destination is None
        with running(manager) as recorder:
            manager.fire(connect(host, port), CH)
            with accepted(listener) as other:
                event = recorder.wait_for("connected", predicate=on(CH))
                their_peer = other.getpeername()[:2]
                their_sock = other.getsockname()[:2]
                assert client.sockname == their_peer and client.peername == their_sock
                assert client.destination == (host, port)
                assert (event.peername, event.sockname, event.destination) == (
                    their_sock,
                    their_peer,
                    (host, port),
                )
                assert seen.plain == [(host, port)]  # circuits' handler shape still works
                assert seen.names == [(their_sock, their_peer, (host, port))]
                other.close()
                recorder.wait_for("disconnected", predicate=on(CH))
            assert client.peername is None and client.destination is None


def test_connex_names_its_destination_and_rotates() -> None:
    with hold_port() as dead, socket.create_server(("127.0.0.1", 0)) as listener:
        live = ("127.0.0.1", listener.getsockname()[1])
        down = ("127.0.0.1", dead.getsockname()[1])
        connex = Connex([down, live], backoff=Backoff(0.01, 1, 0.01, 0), channel=CH)
        manager = Manager()
        connex.register(manager)
        with running(manager) as recorder, accepted(listener) as other:
            event = recorder.wait_for("connected", predicate=on(CH))
            assert recorder.count("unreachable") == 1  # the dead one was tried first
            assert connex.destination == live == event.destination == event.args
            assert connex.peername == other.getsockname()[:2] == event.peername
            assert connex.sockname == other.getpeername()[:2] == event.sockname
            # public rotation: the next attempt goes to the one after the last tried
            assert connex.next_destination() == down
            assert connex.next_destination() == live
            assert connex.destination == live  # the link in use is unchanged
        assert connex.peername is None and connex.destination is None


def test_threaded_client_names_match_the_other_end() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        client = ThreadedTCPClient("127.0.0.1", port, channel=CH)
        manager = Manager()
        client.register(manager)
        with running(manager) as recorder, accepted(listener) as other:
            event = recorder.wait_for("connected", predicate=on(CH))
            assert client.peername == other.getsockname()[:2] == event.peername
            assert client.sockname == other.getpeername()[:2] == event.sockname
            assert client.destination == ("127.0.0.1", port) == event.destination


def finals(recorder: Any) -> list[str]:
    names = ("connected", "unreachable", "error", "disconnected")
    return [e.name for e in recorder.events if e.name in names and on(CH)(e)]


def test_tcp_client_refused_ends_with_one_disconnected() -> None:
    with hold_port() as dead:
        client = TCPClient(channel=CH)
        manager = Manager()
        client.register(manager)
        with running(manager) as recorder:
            manager.fire(connect(*dead.getsockname()[:2]), CH)
            recorder.wait_for("disconnected", predicate=on(CH))
            manager.fire(write(b"x"), CH)  # a write error is not the end of a client
            recorder.wait_for("error", predicate=on(CH), count=2)
        assert finals(recorder) == ["unreachable", "error", "disconnected", "error"]


def test_threaded_client_refused_ends_with_one_disconnected() -> None:
    with hold_port() as dead:
        client = ThreadedTCPClient(*dead.getsockname()[:2], channel=CH)
        manager = Manager()
        client.register(manager)
        with running(manager) as recorder:
            recorder.wait_for("disconnected", predicate=on(CH))
            thread = client._io_thread
            assert thread is not None
            thread.join(5)
        assert finals(recorder) == ["unreachable", "disconnected"]


def test_threaded_client_reset_ends_with_error_then_disconnected() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = ThreadedTCPClient("127.0.0.1", listener.getsockname()[1], channel=CH)
        manager = Manager()
        client.register(manager)
        with running(manager) as recorder:
            with accepted(listener) as other:
                recorder.wait_for("connected", predicate=on(CH))
                other.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            recorder.wait_for("disconnected", predicate=on(CH))
        assert finals(recorder) == ["connected", "error", "disconnected"]
