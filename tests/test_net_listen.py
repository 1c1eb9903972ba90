"""Servers listening on several addresses, and the allow/deny lists of stream and datagram
servers, over real sockets on 127.0.0.1 (the whole 127/8 is loopback: a peer bound to
127.0.0.2 is "another host") and ::1."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from _net_support import ipv6_loopback, on
from netcomp import Component, Manager, handler
from netcomp.net import Networks, PeerFilter, TCPServer, UDPServer, UNIXServer
from netcomp.testing import running
from netcomp.web import BaseServer

CH = "listen"
needs_ipv6 = pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback")


class Echo(Component):
    """Echoes what a stream or datagram server reads (a read handler's bytes go back)."""

    channel = CH

    @handler("read")
    def _echo(self, *args: Any) -> bytes:
        return bytes(args[-1])


def peer(family: socket.AddressFamily, source: str | None = None) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(5)
    if source is not None:
        sock.bind((source, 0))
    return sock


def echoes(address: Any, family: socket.AddressFamily, source: str | None = None) -> bytes:
    with peer(family, source) as sock:
        sock.connect(address)
        sock.sendall(b"ping")
        return sock.recv(16)


def refused_read(address: Any, source: str) -> bytes:
    """What a peer from ``source`` reads from a server that refuses it: EOF, nothing else."""
    with peer(socket.AF_INET, source) as sock:
        sock.connect(address)  # the kernel completes the handshake before accept
        try:
            return sock.recv(16)
        except ConnectionResetError:
            return b""


@contextlib.contextmanager
def serving(server: Any) -> Iterator[Any]:
    manager = Manager()
    server.register(manager)
    Echo().register(manager)
    with running(manager) as recorder:
        yield recorder


@needs_ipv6
def test_one_server_listens_on_both_families() -> None:
    server = TCPServer([("127.0.0.1", 0), ("::1", 0)], channel=CH)
    assert [s.family for s in server.sockets] == [socket.AF_INET, socket.AF_INET6]
    assert server.bind == server.binds[0] and server.socket is server.sockets[0]
    with serving(server) as recorder:
        readies = [recorder.wait_for("ready", predicate=on(CH), count=n) for n in (1, 2)]
        assert [e.args for e in readies] == [(server, b) for b in server.binds]
        assert server.binds[1][0] == "::1"
        assert echoes(server.binds[0], socket.AF_INET) == b"ping"
        assert echoes(server.binds[1], socket.AF_INET6) == b"ping"
        hosts = {e.args[1] for e in recorder.events if e.name == "connect"}
        assert hosts == {"127.0.0.1", "::1"}
        server.shutdown()
        recorder.wait_for("closed", predicate=on(CH))
        for address, family in zip(server.binds, (socket.AF_INET, socket.AF_INET6), strict=True):
            with pytest.raises(ConnectionRefusedError), peer(family) as sock:
                sock.connect(address)


def test_string_forms_and_two_ports_of_one_family() -> None:
    server = TCPServer(["127.0.0.1:0", 0], channel=CH)
    assert len(server.binds) == 2 and server.binds[0] != server.binds[1]
    with serving(server):
        assert all(echoes(b, socket.AF_INET) == b"ping" for b in server.binds)


def test_a_bind_that_fails_closes_the_ones_made_before() -> None:
    first = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    first.bind(("127.0.0.1", 0))
    with socket.create_server(("127.0.0.1", 0)) as taken, pytest.raises(OSError, match="bind"):
        TCPServer([first, taken.getsockname()])
    assert first.fileno() == -1
    with pytest.raises(ValueError, match="empty list"):
        TCPServer([])


@needs_ipv6
def test_web_server_on_both_families() -> None:
    server = BaseServer([("127.0.0.1", 0), "[::1]:0"], channel=CH)
    assert [s.family for s in server.sockets] == [socket.AF_INET, socket.AF_INET6]
    assert server.url.startswith("http://127.0.0.1:")
    server.shutdown()
    assert all(s.fileno() == -1 for s in server.sockets)


def test_allow_list_closes_other_peers_at_accept(caplog: pytest.LogCaptureFixture) -> None:
    server = TCPServer(("127.0.0.1", 0), channel=CH, allow=["127.0.0.1/32"])
    with caplog.at_level(logging.DEBUG, logger="netcomp.net"), serving(server) as recorder:
        assert refused_read(server.bind, "127.0.0.2") == b""
        assert echoes(server.bind, socket.AF_INET, "127.0.0.1") == b"ping"
        recorder.wait_for("connect", predicate=on(CH))
        assert server.refused == 1
        assert [e.args[1] for e in recorder.events if e.name == "connect"] == ["127.0.0.1"]
    assert any(
        "refused" in r.getMessage() and "127.0.0.2:" in r.getMessage() for r in caplog.records
    )


def test_deny_list_wins_over_allow() -> None:
    server = TCPServer(("127.0.0.1", 0), channel=CH, allow="127.0.0.0/8", deny=["127.0.0.2"])
    with serving(server) as recorder:
        assert refused_read(server.bind, "127.0.0.2") == b""
        assert echoes(server.bind, socket.AF_INET, "127.0.0.3") == b"ping"
        recorder.wait_for("connect", predicate=on(CH))
        assert server.refused == 1


def test_web_server_answers_nothing_to_a_refused_peer() -> None:
    server = BaseServer(("127.0.0.1", 0), channel=CH, deny=["127.0.0.2"])
    manager = Manager()
    server.register(manager)
    with running(manager):
        with peer(socket.AF_INET, "127.0.0.2") as sock:
            sock.connect(server.bind)
            try:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = sock.recv(1024)
            except (ConnectionResetError, BrokenPipeError):
                answer = b""
        assert answer == b""
        with peer(socket.AF_INET, "127.0.0.1") as sock:
            sock.connect(server.bind)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(1024).startswith(b"HTTP/1.1 404")
        assert server.refused == 1


def test_udp_drops_datagrams_from_refused_senders() -> None:
    server = UDPServer(("127.0.0.1", 0), channel=CH, allow=["127.0.0.1"])
    with serving(server) as recorder:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            stranger.bind(("127.0.0.2", 0))
            stranger.sendto(b"from afar", server.bind)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as friend:
            friend.settimeout(5)
            friend.bind(("127.0.0.1", 0))
            friend.sendto(b"hello", server.bind)
            assert friend.recv(64) == b"hello"
        reads = [e for e in recorder.events if e.name == "read" and on(CH)(e)]
        assert [e.args[1] for e in reads] == [b"hello"]
        assert server.refused == 1


def test_bad_lists_are_refused_where_given(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match=r"bad network '10\.0\.0\.300'"):
        TCPServer(0, allow=["10.0.0.300"])
    with pytest.raises(TypeError, match="expected a network"):
        TCPServer(0, deny=[42])
    with pytest.raises(ValueError, match="UNIX server"):
        UNIXServer(str(tmp_path / "s.sock"), allow=["127.0.0.1"])


def test_networks_and_peer_filter() -> None:
    nets = Networks(["10.0.0.0/8", "::1"])
    assert "10.1.2.3" in nets and ("10.0.0.1", 80) in nets and "::1" in nets
    assert "11.0.0.1" not in nets and "not an address" not in nets
    assert "::ffff:10.0.0.7" in nets  # an IPv4-mapped peer is its IPv4 address
    assert "fe80::1%lo" not in nets and "::1%lo" in nets
    only_v6 = PeerFilter(allow=["::1"], deny=None)
    assert only_v6.permits(("::1", 1, 0, 0)) and not only_v6.permits(("127.0.0.1", 1))
    assert not PeerFilter(deny=["0.0.0.0/0"]).permits("1.2.3.4")
    assert PeerFilter(deny=["0.0.0.0/0"]).permits("::2")
    assert not PeerFilter(allow=["0.0.0.0/0"]).permits("/tmp/socket")
    assert PeerFilter.make(None, None) is None


class Noting(TCPServer):
    """A TCPServer that notes the thread each connection is shut down on."""

    def init(self, *args: Any, **kwargs: Any) -> None:
        self.threads: list[threading.Thread] = []

    @handler(False)
    def shutdown_connection(self, conn: Any) -> None:
        self.threads.append(threading.current_thread())
        super().shutdown_connection(conn)


def test_shutdown_from_another_thread_closes_the_connections_on_the_loop_thread() -> None:
    # The connections are the loop's: closing one from the caller's thread raced the loop
    # closing it too ("no transition from CLOSED to LINGERING", seen in CI).
    server = Noting(("127.0.0.1", 0), channel=CH)
    with serving(server) as recorder, peer(socket.AF_INET) as sock:
        recorder.wait_for("ready", predicate=on(CH))
        sock.connect(server.bind)
        recorder.wait_for("connect", predicate=on(CH))
        server.shutdown()  # from the test thread
        recorder.wait_for("closed", predicate=on(CH))
        assert sock.recv(16) == b""  # the server closed it (after draining nothing)
    assert len(server.threads) == 1
    assert server.threads[0] is server.loop.thread
