"""The net API surface: bind forms, real addresses, poller backends, channels, lifecycle."""

from __future__ import annotations

import errno
import os
import selectors
import socket
import sys
from typing import Any

import pytest

from _net_support import Inbox, ipv6_loopback, on, pump, short_dir, std_connect
from netcomp import Component, Manager
from netcomp.net import (
    Poller,
    Server,
    TCP6Server,
    TCPClient,
    TCPServer,
    UNIXServer,
    close,
    connect,
    write,
)
from netcomp.testing import running

needs_ipv6 = pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1)")


class Echo(Component):
    def read(self, sock: socket.socket, data: bytes) -> bytes:
        return data


def serve_and_echo(manager: Manager, server: Server, message: bytes = b"echo") -> Any:
    """Run ``server`` (with an echo handler) and check a stdlib peer is echoed."""
    server.register(manager)
    Echo(channel=server.channel).register(manager)
    with running(manager) as recorder:
        ready = recorder.wait_for("ready", predicate=on(server.channel))
        with std_connect(server.family, server.bind) as peer:
            assert pump(peer, message, timeout=5)[0] == message
        return ready.args


# ------------------------------------------------------------------ bind forms


@pytest.mark.parametrize(
    "bind",
    [0, ("127.0.0.1", 0), "127.0.0.1:0", ":0", "0"],
    ids=["port", "tuple", "host:port", ":port", "port-string"],
)
def test_tcp_bind_forms(bind: Any) -> None:
    server = TCPServer(bind, channel="srv")
    assert server.bind[0] == "127.0.0.1"
    assert server.port is not None and server.port > 0
    component, bound = serve_and_echo(Manager(), server)
    assert component is server
    assert bound == server.bind == ("127.0.0.1", server.port)


@needs_ipv6
@pytest.mark.parametrize("bind", [0, ("::1", 0), "[::1]:0"], ids=["port", "tuple", "brackets"])
def test_tcp6_bind_forms(bind: Any) -> None:
    server = TCP6Server(bind, channel="srv")
    assert server.host == "::1"
    _component, bound = serve_and_echo(Manager(), server)
    assert bound[:2] == ("::1", server.port)


def test_unix_bind_to_a_path() -> None:
    with short_dir() as folder:
        path = str(folder / "api.sock")
        server = UNIXServer(path, channel="srv")
        assert server.bind == path == server.host
        assert server.port is None
        _component, bound = serve_and_echo(Manager(), server)
        assert bound == path
        assert not os.path.exists(path), "closing the server removes its socket file"


def test_unix_server_replaces_a_stale_socket_file_but_not_a_live_one_or_a_file() -> None:
    with short_dir() as folder:
        stale = folder / "stale.sock"
        with socket.socket(socket.AF_UNIX) as old:
            old.bind(str(stale))  # left behind: bound, nobody listening
        serve_and_echo(Manager(), UNIXServer(str(stale), channel="srv"))

        live = folder / "live.sock"
        with socket.socket(socket.AF_UNIX) as other:
            other.bind(str(live))
            other.listen(1)
            with pytest.raises(OSError, match="another server listens"):
                UNIXServer(str(live), channel="srv")

        regular = folder / "file.txt"
        regular.write_text("not a socket")
        with pytest.raises(FileExistsError, match="is not a socket"):
            UNIXServer(str(regular), channel="srv")
        assert regular.read_text() == "not a socket"


@pytest.mark.parametrize("listening", [True, False], ids=["listening", "bound-only"])
def test_bind_to_an_existing_socket(listening: bool) -> None:
    sock = socket.create_server(("127.0.0.1", 0)) if listening else socket.socket()
    if not listening:
        sock.bind(("127.0.0.1", 0))
    address = sock.getsockname()
    server = TCPServer(sock=sock, channel="srv")
    assert server.bind == address
    _component, bound = serve_and_echo(Manager(), server)
    assert bound == address


@pytest.mark.parametrize(
    ("server_class", "bind", "error", "match"),
    [
        (TCPServer, "no-port-here", ValueError, "bad bind address"),
        (TCPServer, "127.0.0.1:http", ValueError, "bad port"),
        (TCPServer, 70000, ValueError, "out of range"),
        (TCPServer, 1.5, TypeError, "cannot bind"),
        (TCP6Server, "[::1", ValueError, r"\[host\]:port"),
        (UNIXServer, 8000, TypeError, "path"),
    ],
)
def test_bad_bind_forms_say_what_is_expected(
    server_class: type[Server], bind: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        server_class(bind, channel="srv")


def test_address_in_use_surfaces_in_the_constructor() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        with pytest.raises(OSError) as caught:
            TCPServer(taken.getsockname(), channel="srv")
        assert caught.value.errno == errno.EADDRINUSE


# -------------------------------------------------------------------- poller


@pytest.mark.parametrize("backend", ["epoll", "poll", "select"])
def test_every_poller_backend_runs_the_echo_contract(backend: str) -> None:
    if not hasattr(
        selectors,
        {"epoll": "EpollSelector", "poll": "PollSelector"}.get(backend, "SelectSelector"),
    ):
        pytest.skip(f"{backend} is not available on this platform")
    manager = Manager()
    poller = Poller(backend=backend)
    poller.register(manager)
    server = TCPServer(0, channel="srv")
    server.register(manager)
    Echo(channel="srv").register(manager)
    TCPClient(channel="cli").register(manager)
    inbox = Inbox("cli")
    inbox.register(manager)
    with running(manager) as recorder:
        manager.fire(connect("127.0.0.1", server.port), "cli")
        recorder.wait_for("connected", predicate=on("cli"))
        manager.fire(write(b"via " + backend.encode()), "cli")
        assert inbox.wait_size(len(b"via " + backend.encode())) == b"via " + backend.encode()
        assert manager.loop.backend.lower().startswith(backend)
        assert [m for m in manager.walk() if isinstance(m, Poller)] == [poller]
        assert poller.fds == manager.loop.watched == 3
        manager.fire(close(), "cli")
        recorder.wait_for("disconnected", predicate=on("cli"))


def test_socket_components_find_or_create_the_one_poller() -> None:
    manager = Manager()
    servers = [TCPServer(0, channel="a"), TCPServer(0, channel="b")]
    for server in servers:
        server.register(manager)
    TCPClient(channel="c").register(manager)
    pollers = [m for m in manager.walk() if isinstance(m, Poller)]
    assert len(pollers) == 1
    assert pollers[0].parent is manager
    for server in servers:
        server.shutdown()  # never run: close the listening sockets here


def test_unknown_poller_backend_names_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown or unavailable poller backend 'kqueue-ish'"):
        Poller(backend="kqueue-ish")
    with pytest.raises(ValueError) as caught:
        Poller(backend="nope")
    for choice in ("epoll", "poll", "select"):
        if hasattr(selectors, f"{choice.capitalize()}Selector"):
            assert repr(choice) in str(caught.value)


# ------------------------------------------------------------------ channels


class Tagger(Component):
    """Echoes with its own tag and remembers what it saw."""

    def init(self, tag: bytes, channel: str) -> None:
        self.channel = channel
        self.tag = tag
        self.seen: list[bytes] = []

    def read(self, sock: socket.socket, data: bytes) -> bytes:
        self.seen.append(data)
        return self.tag + data


def test_servers_and_clients_on_different_channels_do_not_hear_each_other() -> None:
    manager = Manager()
    one = TCPServer(0, channel="one")
    two = TCPServer(0, channel="two")
    tag_one = Tagger(b"1:", channel="one")
    tag_two = Tagger(b"2:", channel="two")
    for component in (one, two, tag_one, tag_two):
        component.register(manager)
    for name in ("c1", "c2"):
        TCPClient(channel=name).register(manager)
    inbox_one, inbox_two = Inbox("c1"), Inbox("c2")
    inbox_one.register(manager)
    inbox_two.register(manager)
    with running(manager) as recorder:
        manager.fire(connect("127.0.0.1", one.port), "c1")
        manager.fire(connect("127.0.0.1", two.port), "c2")
        recorder.wait_for("connected", predicate=on("c1"))
        recorder.wait_for("connected", predicate=on("c2"))
        manager.fire(write(b"a"), "c1")
        manager.fire(write(b"b"), "c2")
        assert inbox_one.wait_size(3) == b"1:a"
        assert inbox_two.wait_size(3) == b"2:b"
        assert tag_one.seen == [b"a"]
        assert tag_two.seen == [b"b"]
        # Each server's events went to its own channel only.
        assert {e.channels for e in recorder.events if e.name == "connect"} == {
            ("c1",),
            ("c2",),
            ("one",),
            ("two",),
        }
        assert recorder.count("read") == 4


# ----------------------------------------------------------------- lifecycle


def test_client_connects_by_name_and_says_ready() -> None:
    manager = Manager()
    server = TCPServer(0, channel="srv")
    server.register(manager)
    Echo(channel="srv").register(manager)
    client = TCPClient(channel="cli")
    client.register(manager)
    inbox = Inbox("cli")
    inbox.register(manager)
    with running(manager) as recorder:
        assert recorder.wait_for("ready", predicate=on("cli")).args == (client,)
        manager.fire(connect("localhost", server.port), "cli")  # resolved off the loop
        assert recorder.wait_for("connected", predicate=on("cli")).args == (
            "localhost",
            server.port,
        )
        assert client.connected
        manager.fire(write(b"named"), "cli")
        assert inbox.wait_size(5) == b"named"


def test_closing_the_server_stops_listening_and_closes_connections() -> None:
    manager = Manager()
    server = TCPServer(0, channel="srv")
    server.register(manager)
    with running(manager) as recorder:
        with std_connect(socket.AF_INET, server.bind) as peer:
            recorder.wait_for("connect", predicate=on("srv"))
            manager.fire(close(), "srv")
            recorder.wait_for("closed", predicate=on("srv"))
            assert pump(peer, b"", until_eof=True, timeout=5) == (b"", True)
        recorder.wait_for("disconnect", predicate=on("srv"))
        assert manager.loop.watched == 0
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(server.bind, timeout=5).close()


def test_write_to_an_unknown_connection_is_an_error_event() -> None:
    manager = Manager()
    TCPServer(0, channel="srv").register(manager)
    TCPClient(channel="cli").register(manager)
    with running(manager) as recorder:
        stranger = socket.socket()
        try:
            manager.fire(write(stranger, b"x"), "srv")
            server_error = recorder.wait_for("error", predicate=on("srv"))
        finally:
            stranger.close()
        manager.fire(write(b"x"), "cli")
        client_error = recorder.wait_for("error", predicate=on("cli"))
    assert server_error.args[0] is stranger
    assert isinstance(server_error.args[1], ConnectionError)
    assert isinstance(client_error.args[0], ConnectionError)


def test_connection_limits_has_a_name_of_its_own() -> None:
    import netcomp.net
    import netcomp.web

    assert not hasattr(netcomp.net, "Limits")  # web's HTTP Limits is another type
    limits = netcomp.net.ConnectionLimits(high_water=10, low_water=5)
    assert (limits.high_water, limits.low_water, limits.pause_reading) == (10, 5, True)
    with pytest.raises(ValueError, match="low_water"):
        netcomp.net.ConnectionLimits(high_water=1, low_water=2)
    with pytest.raises(TypeError, match="OutputBudget"):
        netcomp.net.ConnectionLimits(budget=1000)  # type: ignore[arg-type]


def test_output_budget_is_checked_and_shared_by_a_servers_connections() -> None:
    import netcomp.net

    with pytest.raises(ValueError, match="output_budget"):
        TCPServer(0, output_budget=0)
    with pytest.raises(ValueError, match="output_grace"):
        TCPServer(0, output_budget=1000, output_grace=-1)
    server = TCPServer(0, output_budget=1000)
    try:
        budget = server.limits.budget
        assert isinstance(budget, netcomp.net.OutputBudget)
        assert (budget.limit, budget.resume, budget.total, budget.over) == (1000, 750, 0, False)
        plain = TCPServer(0)
        assert plain.limits.budget is None  # plain net servers: no ceiling by default
        plain.socket.close()
    finally:
        server.socket.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_NOTSENT_LOWAT: Linux")
@pytest.mark.parametrize("lowat", [None, 32 * 1024])
def test_accepted_tcp_sockets_get_the_notsent_lowat_asked_for(lowat: int | None) -> None:
    manager = Manager()
    server = TCPServer(0, channel="srv", notsent_lowat=lowat)
    server.register(manager)
    option = getattr(socket, "TCP_NOTSENT_LOWAT", 25)
    with running(manager) as recorder, std_connect(socket.AF_INET, server.bind):
        recorder.wait_for("connect", predicate=on("srv"))
        [sock] = server.connections
        got = sock.getsockopt(socket.IPPROTO_TCP, option)
    assert got == (lowat if lowat is not None else 0)  # 0: not set (the sysctl applies)
    with pytest.raises(ValueError, match="notsent_lowat"):
        TCPServer(0, notsent_lowat=0)


@pytest.mark.parametrize("nodelay", [True, False])
def test_accepted_tcp_sockets_get_nodelay_unless_asked_not_to(nodelay: bool) -> None:
    manager = Manager()
    server = TCPServer(0, channel="srv", nodelay=nodelay)
    server.register(manager)
    with running(manager) as recorder, std_connect(socket.AF_INET, server.bind):
        sock = recorder.wait_for("connect", predicate=on("srv")).args[0]
        assert bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)) is nodelay


@pytest.mark.parametrize("kind", ["tcp", "tcp6", "unix"])
def test_accepted_sockets_are_the_listeners_kind_non_blocking_and_close_on_exec(
    kind: str,
) -> None:
    if kind == "tcp6" and not ipv6_loopback():
        pytest.skip("no IPv6 loopback (::1)")
    manager = Manager()
    with short_dir() as folder:
        if kind == "unix":
            server: Server = UNIXServer(str(folder / "s"), channel="srv")
            family = socket.AF_UNIX
        elif kind == "tcp6":
            server, family = TCP6Server(("::1", 0), channel="srv"), socket.AF_INET6
        else:
            server, family = TCPServer(("127.0.0.1", 0), channel="srv"), socket.AF_INET
        server.register(manager)
        with running(manager) as recorder, std_connect(family, server.bind):
            sock = recorder.wait_for("connect", predicate=on("srv")).args[0]
            assert isinstance(sock, socket.socket)
            assert sock.family == family and isinstance(sock.family, socket.AddressFamily)
            assert sock.type == socket.SOCK_STREAM and isinstance(sock.type, socket.SocketKind)
            assert sock.getblocking() is False
            assert sock.get_inheritable() is False
            assert sock.getsockname() == server.connections[0].getsockname()


def test_set_nodelay_leaves_unix_sockets_alone() -> None:
    from netcomp.net._address import set_nodelay

    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        set_nodelay(left, socket.AF_UNIX)  # no TCP option on a UNIX socket: nothing to do
    with socket.socket() as tcp:
        set_nodelay(tcp, socket.AF_INET)
        assert tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_write_back_sends_bytes_and_the_bytes_of_a_list_in_order() -> None:
    from netcomp.net._replies import write_back

    sent: list[Any] = []
    for result in [b"a", bytearray(b"b"), memoryview(b"c"), [b"d", None, "e", b"f"], None, "g"]:
        write_back(result, sent.append)
    assert [bytes(chunk) for chunk in sent] == [b"a", b"b", b"c", b"d", b"f"]
