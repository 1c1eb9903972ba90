"""One tree, one poller: 3 servers and 100 clients exchanging data at the same time."""

from __future__ import annotations

import socket

from _net_support import Inbox, on, payload
from netcomp import Component, Manager
from netcomp.net import Poller, TCPClient, TCPServer, close, connect, write
from netcomp.testing import running

SERVERS = 3
CLIENTS = 100


class Echo(Component):
    def read(self, sock: socket.socket, data: bytes) -> bytes:
        return data


def pollers(manager: Manager) -> list[Poller]:
    return [member for member in manager.walk() if isinstance(member, Poller)]


def test_three_servers_and_a_hundred_clients_share_one_poller() -> None:
    manager = Manager()
    servers = []
    for number in range(SERVERS):
        server = TCPServer(("127.0.0.1", 0), channel=f"s{number}")
        server.register(manager)
        Echo(channel=f"s{number}").register(manager)
        servers.append(server)
    inboxes = []
    for number in range(CLIENTS):
        TCPClient(channel=f"c{number}").register(manager)
        inbox = Inbox(f"c{number}")
        inbox.register(manager)
        inboxes.append(inbox)
    assert len(pollers(manager)) == 1
    messages = [payload(32 * 1024 + number, seed=100 + number) for number in range(CLIENTS)]

    with running(manager) as recorder:
        for number in range(CLIENTS):
            server = servers[number % SERVERS]
            manager.fire(connect("127.0.0.1", server.port), f"c{number}")
        for number in range(CLIENTS):
            recorder.wait_for("connected", predicate=on(f"c{number}"), timeout=10)
        for number in range(SERVERS):
            expected = len(range(number, CLIENTS, SERVERS))
            recorder.wait_for("connect", predicate=on(f"s{number}"), count=expected)
        assert len(pollers(manager)) == 1
        assert manager.loop.watched == SERVERS + 2 * CLIENTS  # listeners + both ends

        # Everyone at once, twice: two writes per client queued before any is serviced.
        for number, message in enumerate(messages):
            half = len(message) // 2
            manager.fire(write(message[:half]), f"c{number}")
        for number, message in enumerate(messages):
            half = len(message) // 2
            manager.fire(write(message[half:]), f"c{number}")
        for number, (inbox, message) in enumerate(zip(inboxes, messages, strict=True)):
            got = inbox.wait_size(len(message), timeout=20)
            assert got == message, f"client {number} got the wrong bytes"
        # No server echoed to the wrong peer: nobody received more than it sent.
        assert [inbox.size() for inbox in inboxes] == [len(m) for m in messages]
        for number, server in enumerate(servers):
            assert len(server.connections) == len(range(number, CLIENTS, SERVERS))

        for number in range(CLIENTS):
            manager.fire(close(), f"c{number}")
        for number in range(CLIENTS):
            recorder.wait_for("disconnected", predicate=on(f"c{number}"), timeout=10)
        for number in range(SERVERS):
            expected = len(range(number, CLIENTS, SERVERS))
            recorder.wait_for("disconnect", predicate=on(f"s{number}"), count=expected)
        assert all(server.connections == [] for server in servers)
        assert manager.loop.watched == SERVERS
        assert len(pollers(manager)) == 1
