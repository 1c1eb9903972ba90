"""What a circuits network program meets in netcomp.net: circuits' module names
(``netcomp.net.events``, ``netcomp.net.sockets``), ``Pipe``, ``UDP6Client``, clients that
adopt a connected socket, ``disconnect()`` as a client input, a failed connect reported as
``unreachable`` then ``error``, ``(host, port)`` binds on IPv6, ``socket_options``.

Real sockets on loopback (and a ``socketpair``), real peers, hard timeouts, no sleeps.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

import pytest

import netcomp.net
from _net_support import Inbox, ipv6_loopback, on
from netcomp import Component, Manager
from netcomp.net import (
    Pipe,
    TCP6Client,
    TCP6Server,
    TCPClient,
    TCPServer,
    UDP6Client,
    UDP6Server,
    UDPServer,
    UNIXClient,
    close,
    connect,
    disconnect,
    sockets,
    write,
)
from netcomp.net import events as net_events
from netcomp.testing import running

TIMEOUT = 5.0
needs_ipv6 = pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1)")

#: What circuits.net.events defines (its names; their argument shapes are netcomp's table).
CIRCUITS_EVENTS = {
    "broadcast",
    "close",
    "closed",
    "connect",
    "connected",
    "disconnect",
    "disconnected",
    "error",
    "read",
    "ready",
    "starttls",
    "unreachable",
    "write",
}


class Echo(Component):
    def read(self, sock: socket.socket, data: bytes) -> bytes:
        return data


# ------------------------------------------------------------------ module names
def test_events_module_names_the_same_classes_as_netcomp_net() -> None:
    assert set(net_events.__all__) >= CIRCUITS_EVENTS
    assert set(net_events.__all__) - CIRCUITS_EVENTS == {"drained"}
    for name in net_events.__all__:
        assert getattr(net_events, name) is getattr(netcomp.net, name), name


def test_sockets_module_names_the_same_classes_as_netcomp_net() -> None:
    for name in sockets.__all__:
        if name != "BUFSIZE":
            assert getattr(sockets, name) is getattr(netcomp.net, name), name
    assert isinstance(sockets.BUFSIZE, int) and sockets.BUFSIZE >= 4096


# ------------------------------------------------------------------ IPv6 binds
@needs_ipv6
@pytest.mark.parametrize("server_class", [TCP6Server, UDP6Server], ids=["tcp6", "udp6"])
def test_an_ipv6_server_names_its_address_host_port(server_class: Any) -> None:
    manager = Manager()
    server = server_class(("::1", 0), channel="srv").register(manager)
    assert server.bind == ("::1", server.port) and server.host == "::1"
    with running(manager) as recorder:
        ready = recorder.wait_for("ready", TIMEOUT, predicate=on("srv"))
    assert ready.args == (server, ("::1", server.port))


def _link_local() -> str | None:
    """A link-local IPv6 address of this host with its scope (``fe80::...%eth0``), from
    the kernel's table (Linux)."""
    try:
        with open("/proc/net/if_inet6") as table:
            rows = [line.split() for line in table]
    except OSError:
        return None
    for digits, _index, _length, scope, _flags, device in rows:
        if scope == "20":  # link scope
            return f"{socket.inet_ntop(socket.AF_INET6, bytes.fromhex(digits))}%{device}"
    return None


def test_a_link_local_bind_keeps_its_scope_in_the_host() -> None:
    local = _link_local()
    if local is None:
        pytest.skip("no link-local IPv6 address here")
    manager = Manager()
    server = TCP6Server((local, 0), channel="srv").register(manager)
    Echo(channel="srv").register(manager)
    assert server.host == local  # "fe80::...%eth0": a form connect takes back
    client = TCP6Client(channel="cli").register(manager)
    inbox = Inbox("cli").register(manager)
    with running(manager) as recorder:
        manager.fire(connect(server.host, server.port), "cli")
        recorder.wait_for("connected", TIMEOUT)
        manager.fire(write(b"scoped"), "cli")
        assert inbox.wait_size(6, TIMEOUT) == b"scoped"
    assert not client.connected


# ------------------------------------------------------------------ failed connects
class Failures(Component):
    """Takes both words for a failed connect, in the order they come."""

    channel = "client"

    def init(self) -> None:
        self.heard: list[tuple[str, Any]] = []

    def unreachable(self, host: Any, port: Any, reason: Any) -> None:
        self.heard.append(("unreachable", reason))

    def error(self, err: BaseException) -> None:
        self.heard.append(("error", err))


def _failed_connect(host: str, port: int) -> list[tuple[str, Any]]:
    manager = Manager()
    TCPClient().register(manager)
    failures = Failures().register(manager)
    with running(manager) as recorder:
        manager.fire(connect(host, port), "client")
        recorder.wait_for("error", TIMEOUT)
    return failures.heard


def test_a_refused_connect_is_unreachable_then_error_with_the_same_reason() -> None:
    with socket.socket() as bound:  # bound, not listening: connects are refused
        bound.bind(("127.0.0.1", 0))
        heard = _failed_connect("127.0.0.1", bound.getsockname()[1])
    assert [name for name, _ in heard] == ["unreachable", "error"]
    assert heard[0][1] is heard[1][1]
    assert isinstance(heard[1][1], ConnectionRefusedError)


def test_a_name_that_cannot_be_looked_up_is_unreachable_then_error() -> None:
    # A label longer than 63 bytes: refused by IDNA before any resolver is asked.
    heard = _failed_connect("x" * 70 + ".example", 80)
    assert [name for name, _ in heard] == ["unreachable", "error"]
    assert isinstance(heard[1][1], UnicodeError)


def test_a_client_refuses_circuits_local_bind_argument() -> None:
    for local in (1234, ("0.0.0.0", 0)):
        with pytest.raises(TypeError, match="first argument is the host to connect to"):
            TCPClient(local)  # type: ignore[arg-type]


# ------------------------------------------------------------------ disconnect()
def test_disconnect_asks_a_client_to_close() -> None:
    manager = Manager()
    server = TCPServer(0).register(manager)
    client = TCPClient().register(manager)
    with running(manager) as recorder:
        manager.fire(connect(*server.bind), "client")
        recorder.wait_for("connected", TIMEOUT)
        manager.fire(disconnect("not for a client"), "client")  # a server's shape: ignored
        manager.fire(disconnect(), "client")
        recorder.wait_for("disconnected", TIMEOUT)
        recorder.wait_for("disconnect", TIMEOUT, predicate=on("server"))
    assert not client.connected
    assert recorder.count("disconnected") == 1


# ------------------------------------------------------------------ adopted sockets
def test_a_client_adopts_a_connected_tcp_socket() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        mine = socket.create_connection(listener.getsockname(), timeout=TIMEOUT)
        theirs, _ = listener.accept()
    with theirs:
        manager = Manager()
        client = TCPClient(sock=mine, channel="cli").register(manager)
        inbox = Inbox("cli").register(manager)
        assert client.connected
        with running(manager) as recorder:
            connected = recorder.wait_for("connected", TIMEOUT)
            assert connected.args == mine.getpeername()
            names = recorder.names_seen()
            assert names.index("ready") < names.index("connected")
            manager.fire(write(b"from netcomp"), "cli")
            assert theirs.recv(100) == b"from netcomp"
            theirs.sendall(b"from the peer")
            assert inbox.wait_size(13, TIMEOUT) == b"from the peer"
            manager.fire(close(), "cli")
            assert theirs.recv(100) == b""  # a clean close: FIN, not a reset
            theirs.close()  # the peer's EOF ends the client's linger
            recorder.wait_for("disconnected", TIMEOUT)


def test_a_socket_as_first_argument_is_adopted_circuits_form() -> None:
    one, two = socket.socketpair()
    with two:
        client = UNIXClient(one)
        assert client.connected and client.host is None
        client.loop_ended()
    with socket.socket(type=socket.SOCK_DGRAM) as bound:
        bound.bind(("127.0.0.1", 0))
        udp = UDPServer(bound)
        assert udp.socket is bound and udp.bind == bound.getsockname()
    listener = socket.create_server(("127.0.0.1", 0))
    server = TCPServer(listener)
    assert server.socket is listener and server.bind == listener.getsockname()
    listener.close()


def test_connect_sets_host_and_port_and_a_bare_connect_goes_there_again() -> None:
    manager = Manager()
    server = TCPServer(0).register(manager)
    client = TCPClient().register(manager)
    with running(manager) as recorder:
        manager.fire(connect(*server.bind), "client")
        recorder.wait_for("connected", TIMEOUT)
        assert (client.host, client.port) == server.bind
        manager.fire(close(), "client")
        recorder.wait_for("disconnected", TIMEOUT)
        manager.fire(connect(), "client")  # circuits programs reconnect this way too
        assert recorder.wait_for("connected", TIMEOUT, count=2).args == server.bind


def test_a_client_refuses_a_socket_that_is_not_a_connected_stream() -> None:
    with socket.socket() as idle, pytest.raises(ValueError, match="is not"):
        TCPClient(sock=idle)
    datagram = socket.socket(type=socket.SOCK_DGRAM)
    with datagram, pytest.raises(ValueError, match="needs a stream socket"):
        TCPClient(sock=datagram)


# ------------------------------------------------------------------ Pipe
def test_a_pipe_carries_data_both_ways_and_closes_both_ends() -> None:
    a, b = Pipe("left", "right")
    assert isinstance(a, UNIXClient) and isinstance(b, UNIXClient)
    assert (a.channel, b.channel) == ("left", "right") and a.connected and b.connected
    manager = Manager()
    for member in (a, b, Inbox("left"), Inbox("right")):
        member.register(manager)
    inbox_a, inbox_b = (c for c in manager.components if isinstance(c, Inbox))
    with running(manager) as recorder:
        recorder.wait_for("connected", TIMEOUT, count=2)
        manager.fire(write(b"to the right"), "left")
        manager.fire(write(b"to the left"), "right")
        assert inbox_b.wait_size(12, TIMEOUT) == b"to the right"
        assert inbox_a.wait_size(11, TIMEOUT) == b"to the left"
        manager.fire(close(), "left")
        recorder.wait_for("disconnected", TIMEOUT, predicate=on("left"))
        recorder.wait_for("disconnected", TIMEOUT, predicate=on("right"))
    assert not a.connected and not b.connected


def test_pipe_ends_default_to_channels_a_and_b() -> None:
    a, b = Pipe()
    try:
        assert (a.channel, b.channel) == ("a", "b")
    finally:
        a.loop_ended()
        b.loop_ended()


# ------------------------------------------------------------------ UDP6Client
@needs_ipv6
def test_a_udp6_client_talks_to_a_udp6_server() -> None:
    manager = Manager()
    server = UDP6Server(0).register(manager)
    Echo(channel="server").register(manager)
    client = UDP6Client().register(manager)
    assert client.channel == "client" and client.bind == ("::1", client.port)
    with running(manager) as recorder:
        manager.fire(write(server.bind, b"over six"), "client")
        reply = recorder.wait_for("read", TIMEOUT, predicate=on("client"))
    assert reply.args[1] == b"over six"


# ------------------------------------------------------------------ socket_options
@pytest.mark.parametrize("server_class", [TCPServer, UDPServer], ids=["tcp", "udp"])
def test_socket_options_are_set_before_bind(server_class: Any) -> None:
    option = (socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    server = server_class(0, socket_options=[option])
    try:
        # Linux doubles the value it is given (bookkeeping overhead): at least what we asked
        assert server.socket.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 65536
    finally:
        server.socket.close()


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")
def test_socket_options_apply_to_an_adopted_socket_too() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = TCPServer(sock=sock, socket_options=[(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)])
    try:
        assert server.socket.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
    finally:
        server.socket.close()


@pytest.mark.parametrize(
    "options", [[(1, 2)], [("SOL_SOCKET", 2, 1)], "SO_REUSEADDR", [(1, 2, 3.5)]]
)
def test_malformed_socket_options_are_refused_at_construction(options: Any) -> None:
    with pytest.raises(TypeError, match=r"socket.option"):
        TCPServer(0, socket_options=options)


def test_an_option_the_kernel_refuses_names_itself() -> None:
    with pytest.raises(OSError, match=r"cannot set socket option \(1, 99999, 1\)") as raised:
        TCPServer(0, socket_options=[(socket.SOL_SOCKET, 99999, 1)])
    assert raised.value.errno in (errno.ENOPROTOOPT, errno.EINVAL)
