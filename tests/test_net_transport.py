"""The transport contract: every stream transport (tcp, tcp6, unix, tls) passes the same suite.

Each behaviour is checked with netcomp on both ends, with a stdlib ``socket``/``ssl`` peer
against a netcomp server, and with a netcomp client against a threaded stdlib server.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from _net_support import (
    Inbox,
    StdServer,
    cert_files,
    client_ssl_context,
    ipv6_loopback,
    on,
    payload,
    pump,
    server_ssl_context,
    short_dir,
    shut_write,
    std_connect,
)
from netcomp import Component, Manager
from netcomp.net import (
    Client,
    Server,
    TCP6Client,
    TCP6Server,
    TCPClient,
    TCPServer,
    UNIXClient,
    UNIXServer,
    close,
    connect,
    write,
)
from netcomp.testing import Recorder, running

MiB = 1024 * 1024


@dataclass
class Transport:
    """How to build servers, clients and stdlib peers of one transport."""

    name: str
    family: socket.AddressFamily
    server_cls: type[Server]
    client_cls: type[Client]
    folder: Path
    certs: tuple[str, str] | None = None
    _paths: int = 0

    def bind(self) -> Any:
        if self.family == socket.AF_UNIX:
            self._paths += 1
            return str(self.folder / f"s{self._paths}.sock")
        return ("::1", 0) if self.family == socket.AF_INET6 else ("127.0.0.1", 0)

    def server(self, channel: str, **options: Any) -> Server:
        if self.certs is not None:
            options.setdefault("ssl_context", server_ssl_context(*self.certs))
        return self.server_cls(self.bind(), channel=channel, **options)

    def client(self, channel: str, **options: Any) -> Client:
        if self.certs is not None:
            options.setdefault("secure", True)
            options.setdefault("ssl_context", client_ssl_context(self.certs[0]))
        return self.client_cls(channel=channel, **options)

    def target(self, address: Any) -> tuple[Any, ...]:
        """The arguments of a client ``connect`` event for a server at ``address``."""
        if self.family == socket.AF_UNIX:
            return (address,)
        return (address[0], address[1])

    def std_connect(self, address: Any, bio: bool = False) -> Any:
        """A stdlib peer; ``bio``: for TLS, one that can half-close (see ``BioTLS``)."""
        context = client_ssl_context(self.certs[0]) if self.certs is not None else None
        return std_connect(self.family, address, context, bio=bio)

    def std_server(self, **options: Any) -> StdServer:
        context = server_ssl_context(*self.certs) if self.certs is not None else None
        return StdServer(self.family, self.bind(), context=context, **options)


@pytest.fixture(params=["tcp", "tcp6", "unix", "tls"])
def transport(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Transport]:
    name = request.param
    with short_dir() as folder:
        if name == "tcp":
            yield Transport(name, socket.AF_INET, TCPServer, TCPClient, folder)
        elif name == "tcp6":
            if not ipv6_loopback():
                pytest.skip("no IPv6 loopback (::1) on this host")
            yield Transport(name, socket.AF_INET6, TCP6Server, TCP6Client, folder)
        elif name == "unix":
            yield Transport(name, socket.AF_UNIX, UNIXServer, UNIXClient, folder)
        else:
            certs = cert_files(tmp_path_factory)
            yield Transport(name, socket.AF_INET, TCPServer, TCPClient, folder, certs)


class Echo(Component):
    """Writes every read back to its peer (the ``read`` handler's result)."""

    def read(self, sock: socket.socket, data: bytes) -> bytes:
        return data


def echo_server(manager: Manager, transport: Transport, channel: str = "srv") -> Server:
    server = transport.server(channel)
    server.register(manager)
    Echo(channel=channel).register(manager)
    return server


def with_client(manager: Manager, transport: Transport, channel: str = "cli") -> Inbox:
    transport.client(channel).register(manager)
    inbox = Inbox(channel)
    inbox.register(manager)
    return inbox


def stream(
    manager: Manager, channel: str, inbox: Inbox, data: bytes, chunk: int = 256 * 1024
) -> bytes:
    """Write ``data`` in chunks from a netcomp client, at most ~1 MiB ahead of the echo."""
    window = 4 * chunk
    for start in range(0, len(data), chunk):
        inbox.wait_size(max(0, start + chunk - window), timeout=30)
        manager.fire(write(data[start : start + chunk]), channel)
    return inbox.wait_size(len(data), timeout=30)


def connect_client(
    manager: Manager, recorder: Recorder, transport: Transport, address: Any, channel: str = "cli"
) -> None:
    manager.fire(connect(*transport.target(address)), channel)
    recorder.wait_for("connected", predicate=on(channel))


# ----------------------------------------------------------------------- echo


def test_echo_between_netcomp_client_and_server(transport: Transport) -> None:
    manager = Manager()
    server = echo_server(manager, transport)
    inbox = with_client(manager, transport)
    with running(manager) as recorder:
        connect_client(manager, recorder, transport, server.bind)
        manager.fire(write(b"hello"), "cli")
        assert inbox.wait_size(5, timeout=5) == b"hello"
        accepted = recorder.wait_for("connect", predicate=on("srv"))
        sock, host, port = accepted.args
        assert sock in server.connections
        if transport.family == socket.AF_UNIX:
            assert port is None
        else:
            assert isinstance(port, int) and port > 0
            assert host == server.bind[0]
        connected = recorder.wait_for("connected", predicate=on("cli"))
        assert connected.args == transport.target(server.bind) + (
            (None,) if transport.family == socket.AF_UNIX else ()
        )


def test_echo_with_stdlib_peer(transport: Transport) -> None:
    manager = Manager()
    server = echo_server(manager, transport)
    with running(manager) as recorder:
        with transport.std_connect(server.bind) as peer:
            got, _ = pump(peer, b"hello over " + transport.name.encode())
            assert got == b"hello over " + transport.name.encode()
        recorder.wait_for("disconnect", predicate=on("srv"))


def test_echo_from_netcomp_client_to_stdlib_server(transport: Transport) -> None:
    manager = Manager()
    inbox = with_client(manager, transport)
    with transport.std_server() as peer, running(manager) as recorder:
        connect_client(manager, recorder, transport, peer.address)
        manager.fire(write(b"ping"), "cli")
        assert inbox.wait_size(4, timeout=5) == b"ping"
        manager.fire(close(), "cli")
        recorder.wait_for("disconnected", predicate=on("cli"))
    assert peer.errors == []


# -------------------------------------------------------------- large transfers


def test_large_transfer_between_netcomp_ends(transport: Transport) -> None:
    data = payload(10 * MiB, seed=2)
    manager = Manager()
    server = echo_server(manager, transport)
    inbox = with_client(manager, transport)
    with running(manager) as recorder:
        connect_client(manager, recorder, transport, server.bind)
        got = stream(manager, "cli", inbox, data)
        assert len(got) == len(data)
        assert got == data


def test_large_transfer_with_stdlib_peer(transport: Transport) -> None:
    data = payload(10 * MiB, seed=3)
    manager = Manager()
    server = echo_server(manager, transport)
    with running(manager), transport.std_connect(server.bind) as peer:
        got, eof = pump(peer, data, timeout=30)
        assert not eof
        assert len(got) == len(data)
        assert got == data


def test_large_transfer_from_netcomp_client_to_stdlib_server(transport: Transport) -> None:
    data = payload(10 * MiB, seed=4)
    manager = Manager()
    inbox = with_client(manager, transport)
    with transport.std_server() as peer, running(manager) as recorder:
        connect_client(manager, recorder, transport, peer.address)
        got = stream(manager, "cli", inbox, data)
        assert got == data
        manager.fire(close(), "cli")
        recorder.wait_for("disconnected", predicate=on("cli"))
    assert peer.errors == []


# ------------------------------------------------------------------- closing


def test_server_close_sends_buffered_output_then_disconnects(transport: Transport) -> None:
    data = payload(3 * MiB, seed=5)
    manager = Manager()
    server = transport.server("srv")
    server.register(manager)
    inbox = with_client(manager, transport)
    with running(manager) as recorder:
        connect_client(manager, recorder, transport, server.bind)
        sock = recorder.wait_for("connect", predicate=on("srv")).args[0]
        manager.fire(write(sock, data), "srv")
        manager.fire(close(sock), "srv")
        recorder.wait_for("disconnected", predicate=on("cli"), timeout=20)
        assert inbox.size() == len(data)  # every read came before disconnected
        assert bytes(inbox.data) == data
        recorder.wait_for("disconnect", predicate=lambda e: e.args == (sock,))
        assert server.connections == []


def test_server_close_with_stdlib_peer(transport: Transport) -> None:
    data = payload(3 * MiB, seed=6)
    manager = Manager()
    server = transport.server("srv")
    server.register(manager)
    with running(manager) as recorder:
        with transport.std_connect(server.bind) as peer:
            sock = recorder.wait_for("connect", predicate=on("srv")).args[0]
            manager.fire(write(sock, data), "srv")
            manager.fire(close(sock), "srv")
            got, eof = pump(peer, b"", until_eof=True, timeout=20)
            assert eof
            assert got == data
        # The server lingers after its FIN until our close; then the connection is gone.
        recorder.wait_for("disconnect", predicate=lambda e: e.args == (sock,))
        assert server.connections == []


def test_client_close_delivers_everything_to_the_server(transport: Transport) -> None:
    data = payload(3 * MiB, seed=7)
    manager = Manager()
    server = transport.server("srv")
    server.register(manager)
    received = Inbox("srv")
    received.register(manager)
    transport.client("cli").register(manager)
    with running(manager) as recorder:
        connect_client(manager, recorder, transport, server.bind)
        manager.fire(write(data), "cli")
        manager.fire(close(), "cli")
        recorder.wait_for("disconnected", predicate=on("cli"), timeout=20)
        recorder.wait_for("disconnect", predicate=on("srv"), timeout=20)
        assert bytes(received.data) == data  # every read came before disconnect
        assert server.connections == []


def test_client_close_with_stdlib_peer(transport: Transport) -> None:
    data = payload(2 * MiB, seed=8)
    manager = Manager()
    server = transport.server("srv")
    server.register(manager)
    received = Inbox("srv")
    received.register(manager)
    with running(manager) as recorder:
        with transport.std_connect(server.bind, bio=True) as peer:
            # Send, half-close, read to EOF, close: a graceful close (with TLS, closing a
            # socket with unread input, such as session tickets, resets the link).
            got, eof = pump(peer, data, expect=0, half_close=True, until_eof=True)
            assert (got, eof) == (b"", True)
        recorder.wait_for("disconnect", predicate=on("srv"), timeout=20)
        assert bytes(received.data) == data


def test_half_close_from_stdlib_peer_still_gets_every_echoed_byte(
    transport: Transport,
) -> None:
    data = payload(4 * MiB, seed=9)
    manager = Manager()
    server = echo_server(manager, transport)
    with running(manager) as recorder:
        with transport.std_connect(server.bind, bio=True) as peer:
            got, eof = pump(peer, data, half_close=True, until_eof=True, timeout=30)
            assert eof, "the server never closed after our half-close"
            assert len(got) == len(data)
            assert got == data
        recorder.wait_for("disconnect", predicate=on("srv"))


def test_half_close_from_stdlib_server_delivers_all_then_disconnected(
    transport: Transport,
) -> None:
    data = payload(2 * MiB, seed=10)
    leftovers: list[bytes] = []

    def send_then_half_close(conn: socket.socket) -> None:
        conn.sendall(data)
        shut_write(conn)  # TLS: close_notify, and unwrap() waits for the client's answer
        rest = conn.recv(1024) if transport.certs is None else b""
        leftovers.append(rest)  # the client closes once it saw our EOF

    manager = Manager()
    inbox = with_client(manager, transport)
    with (
        transport.std_server(handler=send_then_half_close) as peer,
        running(manager) as recorder,
    ):
        connect_client(manager, recorder, transport, peer.address)
        recorder.wait_for("disconnected", predicate=on("cli"), timeout=20)
        assert bytes(inbox.data) == data
    assert peer.errors == []
    assert leftovers == [b""]


# ----------------------------------------------------- sequential connections


def test_many_sequential_stdlib_connections(transport: Transport) -> None:
    rounds = 200
    manager = Manager()
    server = echo_server(manager, transport)
    with running(manager) as recorder:
        for number in range(rounds):
            message = b"round %d" % number
            with transport.std_connect(server.bind) as peer:
                got, _ = pump(peer, message, timeout=5)
                assert got == message
        recorder.wait_for("disconnect", predicate=on("srv"), count=rounds, timeout=20)
        assert recorder.count("connect") == rounds
        assert server.connections == []
        assert manager.loop.watched == 1  # only the listening socket is left


def test_many_sequential_netcomp_connections(transport: Transport) -> None:
    rounds = 100
    manager = Manager()
    server = echo_server(manager, transport)
    inbox = with_client(manager, transport)
    with running(manager) as recorder:
        expected = b""
        for number in range(rounds):
            message = b"<%d>" % number
            expected += message
            connect_client(manager, recorder, transport, server.bind)
            # connected fires once per round: wait for this round's
            recorder.wait_for("connected", predicate=on("cli"), count=number + 1)
            manager.fire(write(message), "cli")
            assert inbox.wait_size(len(expected), timeout=5) == expected
            manager.fire(close(), "cli")
            recorder.wait_for("disconnected", predicate=on("cli"), count=number + 1)
        recorder.wait_for("disconnect", predicate=on("srv"), count=rounds, timeout=20)
        assert server.connections == []
        assert manager.loop.watched == 1
