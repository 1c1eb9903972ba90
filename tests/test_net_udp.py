"""UDP: UDPServer, UDP6Server and UDPClient on the tree's one selector.

Checked against an independent peer (a stdlib ``socket``) and between netcomp components:
echo both ways on IPv4 and IPv6, thousands of datagrams with content checked (paced by a
window of outstanding requests, so loopback never has to drop), write-back of a ``read``
handler's bytes, oversize and refused datagrams as ``error`` events, the bounded send queue,
broadcast (only ever to a recording socket: nothing leaves this host), name resolution off
the loop, and close.
"""

from __future__ import annotations

import errno
import gc
import os
import random
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from netcomp import BaseComponent, Component, Event, Manager, handler
from netcomp.net import (
    NotConnected,
    Poller,
    UDP6Client,
    UDP6Server,
    UDPClient,
    UDPServer,
    broadcast,
    close,
    write,
)
from netcomp.testing import Recorder, running

TIMEOUT = 5.0


def _ipv6_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


HAS_IPV6 = _ipv6_available()

FAMILIES = [
    pytest.param((UDPServer, socket.AF_INET, "127.0.0.1"), id="udp"),
    pytest.param(
        (UDP6Server, socket.AF_INET6, "::1"),
        id="udp6",
        marks=pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback"),
    ),
]


class Echo(Component):
    """Answers every datagram with its own bytes (the write-back idiom)."""

    channel = "server"

    def read(self, address: Any, data: bytes) -> bytes:
        return data


@pytest.fixture
def peer_factory() -> Iterator[Any]:
    """Makes stdlib UDP sockets bound to loopback, closed after the test."""
    made: list[socket.socket] = []

    def make(family: socket.AddressFamily = socket.AF_INET) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        made.append(sock)
        sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        sock.settimeout(TIMEOUT)
        return sock

    yield make
    for sock in made:
        sock.close()


def poller_of(manager: Manager) -> Poller:
    """The one Poller of ``manager``'s tree."""
    (poller,) = [c for c in manager.walk() if isinstance(c, Poller)]
    return poller


def on(channel: str) -> Any:
    """A Recorder predicate: the event was fired on ``channel``."""
    return lambda event: channel in event.channels


# ------------------------------------------------------------------ echo
@pytest.mark.parametrize("kind", FAMILIES)
def test_echo_with_a_stdlib_peer(
    app: tuple[Manager, Recorder], peer_factory: Any, kind: Any
) -> None:
    manager, recorder = app
    server_class, family, host = kind
    server = server_class(0)
    manager += Echo()
    manager += server  # registered into a running tree: the socket moves to its selector
    ready = recorder.wait_for("ready", TIMEOUT)
    assert ready.args[0] is server
    assert ready.args[1] == server.bind
    assert server.host == host and server.port != 0

    peer = peer_factory(family)
    for payload in (b"ping", b"", bytes(range(256)) * 20):
        peer.sendto(payload, server.bind)
        data, source = peer.recvfrom(65536)
        assert data == payload
        assert source[:2] == server.bind[:2]
    event = recorder.wait_for("read", TIMEOUT, count=3)
    assert event.args[0][:2] == peer.getsockname()[:2]
    assert len([p for p in manager.walk() if isinstance(p, Poller)]) == 1


@pytest.mark.parametrize("kind", FAMILIES)
def test_client_and_server_talk_in_one_tree(manager: Manager, kind: Any) -> None:
    server_class, _family, host = kind
    server = server_class(0)
    client = UDPClient() if server_class is UDPServer else UDP6Client()
    manager += server
    manager += Echo()
    manager += client
    assert client.channel == "client" and client.host == host and client.port != 0
    assert server.bind == (host, server.port) and client.bind == (host, client.port)
    with running(manager) as recorder:
        manager.fire(write(server.bind, b"hello"), "client")
        reply = recorder.wait_for("read", TIMEOUT, predicate=on("client"))
        heard = recorder.wait_for("read", TIMEOUT, predicate=on("server"))
    # bind is (host, port); a read gives the sender's address as the kernel does (a
    # 4-tuple on IPv6, as circuits gave it), which write takes back as it is.
    assert reply.args[0][:2] == server.bind and reply.args[1] == b"hello"
    assert heard.args[0][:2] == client.bind
    # one selector services both sockets; nothing else heard the other's events
    assert len([p for p in manager.walk() if isinstance(p, Poller)]) == 1
    assert recorder.count("read") == 2


def test_udp_server_as_the_root_finds_a_poller(peer_factory: Any) -> None:
    server = UDPServer(0)
    server += Echo()
    with running(server):
        peer = peer_factory()
        peer.sendto(b"root", server.bind)
        assert peer.recvfrom(100)[0] == b"root"
        assert any(isinstance(c, Poller) for c in server.walk())


# ---------------------------------------------------------- many datagrams
def _payloads(count: int) -> list[bytes]:
    rng = random.Random(1234)
    return [i.to_bytes(4, "big") + rng.randbytes(rng.randrange(0, 1400)) for i in range(count)]


def test_two_thousand_datagrams_from_a_stdlib_peer(
    app: tuple[Manager, Recorder], peer_factory: Any
) -> None:
    manager, _recorder = app
    server = UDPServer(0)
    manager += Echo()
    manager += server
    _recorder.wait_for("ready", TIMEOUT)
    peer = peer_factory()
    payloads = _payloads(2000)
    received: dict[int, bytes] = {}
    window = 32  # requests in flight: far below what the socket buffers hold
    sent = 0
    for _ in range(len(payloads) * 2):
        while sent < len(payloads) and sent - len(received) < window:
            peer.sendto(payloads[sent], server.bind)
            sent += 1
        if len(received) == len(payloads):
            break
        data, _source = peer.recvfrom(65536)
        received[int.from_bytes(data[:4], "big")] = data
    assert len(received) == len(payloads)
    assert all(received[i] == payload for i, payload in enumerate(payloads))


class Pinger(Component):
    """Sends ``payloads`` to ``target`` with at most ``window`` awaiting their echo."""

    channel = "client"

    def init(self, target: Any, payloads: list[bytes], window: int) -> None:
        self.target = target
        self.payloads = payloads
        self.window = window
        self.sent = 0
        self.replies: dict[int, bytes] = {}
        self.done = threading.Event()

    def go(self) -> None:
        self._send_more()

    def read(self, address: Any, data: bytes) -> None:
        assert address == self.target
        self.replies[int.from_bytes(data[:4], "big")] = data
        if len(self.replies) == len(self.payloads):
            self.done.set()
        self._send_more()

    def _send_more(self) -> None:
        while self.sent < len(self.payloads) and self.sent - len(self.replies) < self.window:
            self.fire(write(self.target, self.payloads[self.sent]))
            self.sent += 1


def test_two_thousand_datagrams_between_client_and_server(manager: Manager) -> None:
    server = UDPServer(0)
    payloads = _payloads(2000)
    pinger = Pinger(server.bind, payloads, window=32)
    manager += server
    manager += Echo()
    manager += UDPClient()
    manager += pinger
    with running(manager):
        manager.fire(Event.create("go"), "client")
        assert pinger.done.wait(15), f"{len(pinger.replies)} of {len(payloads)} echoed"
    assert all(pinger.replies[i] == payload for i, payload in enumerate(payloads))


# ------------------------------------------------------------- write-back
class Shout(Component):
    channel = "server"

    def read(self, address: Any, data: bytes) -> bytes:
        return data.upper()


class Tag(Component):
    channel = "server"

    @handler("read")
    def tag(self, address: Any, data: bytes) -> bytes | None:
        return None if data == b"quiet" else b"#" + data


def test_every_bytes_result_of_read_goes_back_to_the_sender(
    manager: Manager, peer_factory: Any
) -> None:
    server = UDPServer(0)
    manager += server
    manager += Shout()
    manager += Tag()
    with running(manager) as recorder:
        peer = peer_factory()
        peer.sendto(b"hey", server.bind)
        replies = {peer.recvfrom(100)[0], peer.recvfrom(100)[0]}
        assert replies == {b"HEY", b"#hey"}
        peer.sendto(b"quiet", server.bind)
        assert peer.recvfrom(100)[0] == b"QUIET"  # Tag returned None: one reply only
        recorder.wait_for("read", TIMEOUT, count=2)
        other = peer_factory()
        other.sendto(b"two", server.bind)
        assert {other.recvfrom(100)[0], other.recvfrom(100)[0]} == {b"TWO", b"#two"}
    peer.settimeout(0)
    with pytest.raises(BlockingIOError):
        peer.recvfrom(100)  # nothing else was sent to the first peer


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("kind", FAMILIES)
def test_oversize_datagram_is_an_error_event_and_the_loop_goes_on(
    manager: Manager, peer_factory: Any, kind: Any
) -> None:
    server_class, family, _host = kind
    server = server_class(0)
    manager += server
    manager += Echo()
    with running(manager) as recorder:
        peer = peer_factory(family)
        target = peer.getsockname()
        manager.fire(write(target, b"x" * 70_000), "server")
        failure = recorder.wait_for("error", TIMEOUT)
        address, err = failure.args
        assert address == target
        assert isinstance(err, OSError) and err.errno == errno.EMSGSIZE
        peer.sendto(b"still here", server.bind)
        assert peer.recvfrom(100)[0] == b"still here"
        manager.fire(write(target, b"y" * 1000), "server")
        assert peer.recvfrom(2000)[0] == b"y" * 1000


class FlakySocket(socket.socket):
    """A UDP socket whose first ``refusals`` sendto calls say EAGAIN, as a full kernel would."""

    refusals = 0

    def sendto(self, data: Any, *rest: Any) -> int:  # type: ignore[override]
        if self.refusals > 0:
            self.refusals -= 1
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        return super().sendto(data, *rest)


class Burst(Component):
    """``burst(address, payloads, then_close)``: writes them all in one batch."""

    channel = "burst"

    def burst(self, address: Any, payloads: list[bytes], then_close: bool = False) -> None:
        for payload in payloads:
            self.fire(write(address, payload), "server")
        if then_close:
            self.fire(close(), "server")


def _flaky_server(refusals: int, **options: Any) -> UDPServer:
    sock = FlakySocket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.refusals = refusals
    return UDPServer(sock=sock, **options)


def test_refused_datagrams_are_queued_in_order_and_the_queue_is_bounded(
    manager: Manager, peer_factory: Any
) -> None:
    server = _flaky_server(3, max_queued_bytes=25)
    manager += server
    manager += Burst()
    with running(manager) as recorder:
        peer = peer_factory()
        target = peer.getsockname()
        payloads = [b"first-----", b"second----", b"third-----"]  # 10 bytes each
        manager.fire(Event.create("burst", target, payloads), "burst")
        failure = recorder.wait_for("error", TIMEOUT)
        assert failure.args[0] == target
        assert isinstance(failure.args[1], OSError) and failure.args[1].errno == errno.ENOBUFS
        assert [peer.recvfrom(100)[0] for _ in range(2)] == payloads[:2]
        manager.fire(write(target, b"after"), "server")
        assert peer.recvfrom(100)[0] == b"after"
        # handled after the queue was flushed, so sent at once: nothing is queued now
        assert server.queued == 0
        assert recorder.count("error") == 1


def test_close_sends_what_is_queued_then_fires_closed(manager: Manager, peer_factory: Any) -> None:
    server = _flaky_server(2)
    manager += server
    manager += Burst()
    with running(manager) as recorder:
        peer = peer_factory()
        target = peer.getsockname()
        payloads = [b"a", b"b", b"c"]
        manager.fire(Event.create("burst", target, payloads, True), "burst")
        recorder.wait_for("closed", TIMEOUT)
        # circuits' order of words: the socket is gone (disconnect), the server is closed
        names = [e.name for e in recorder.events if e.name in ("disconnect", "closed")]
        assert names == ["disconnect", "closed"]
        assert recorder.wait_for("disconnect").args == (server.socket,)
        assert [peer.recvfrom(100)[0] for _ in payloads] == payloads
        assert server.socket.fileno() == -1
        assert poller_of(manager).fds == 0
        manager.fire(write(target, b"late"), "server")
        late = recorder.wait_for("error", TIMEOUT)
        assert late.args[0] == target and isinstance(late.args[1], NotConnected)
        manager.fire(close(), "server")  # closing twice is harmless
        recorder.wait_for("close", TIMEOUT, count=2)
    assert recorder.count("closed") == 1 and recorder.count("disconnect") == 1


class GateSocket(socket.socket):
    """A UDP socket that says EAGAIN until ``allowance`` sends are granted."""

    allowance = 0

    def sendto(self, data: Any, *rest: Any) -> int:  # type: ignore[override]
        if self.allowance <= 0:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        self.allowance -= 1
        return super().sendto(data, *rest)


class Gatekeeper(BaseComponent):
    """When the tree stops (before the server hears it), lets one datagram through."""

    def init(self, sock: GateSocket) -> None:
        self.sock = sock

    @handler("stopped", channel="*", priority=10)
    def _open(self, manager: Manager) -> None:
        self.sock.allowance = 1


def test_stopping_sends_what_the_kernel_takes_and_reports_the_rest(
    manager: Manager, peer_factory: Any
) -> None:
    sock = GateSocket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    server = UDPServer(sock=sock)
    manager += server
    manager += Burst()
    manager += Gatekeeper(sock)
    peer = peer_factory()
    target = peer.getsockname()
    with running(manager) as recorder:
        manager.fire(Event.create("burst", target, [b"sent", b"dropped"]), "burst")
        recorder.wait_for("write", TIMEOUT, count=2)
        assert server.queued == len(b"sentdropped")  # nothing could go out yet
    assert peer.recvfrom(100)[0] == b"sent"
    errors = [e.args for e in recorder.events if e.name == "error"]
    assert len(errors) == 1
    assert errors[0][0] == target and isinstance(errors[0][1], NotConnected)
    assert recorder.count("closed") == 1 and sock.fileno() == -1


def test_stopping_the_tree_closes_the_socket(manager: Manager) -> None:
    server = UDPServer(0)
    client = UDPClient()
    manager += server
    manager += client
    with running(manager):
        assert poller_of(manager).fds == 2
    assert server.socket.fileno() == -1 and client.socket.fileno() == -1
    assert poller_of(manager).fds == 0


def test_write_needs_bytes(manager: Manager) -> None:
    server = UDPServer(0)
    manager += server
    with running(manager, check_errors=False) as recorder:
        manager.fire(write(("127.0.0.1", 9), "text"), "server")
        failure = recorder.wait_for("exception", TIMEOUT)
    assert failure.args[0] is TypeError


def test_names_are_resolved_off_the_loop(manager: Manager, peer_factory: Any) -> None:
    server = UDPServer(0)
    manager += server
    with running(manager):
        peer = peer_factory()
        port = peer.getsockname()[1]
        for payload in (b"one", b"two", b"three"):
            manager.fire(write(("localhost", port), payload), "server")
        assert [peer.recvfrom(100)[0] for _ in range(3)] == [b"one", b"two", b"three"]


def test_datagrams_waiting_for_a_name_count_against_the_queue_bound(
    manager: Manager, peer_factory: Any
) -> None:
    server = UDPServer(0, max_queued_bytes=5)
    manager += server
    manager += Burst()
    with running(manager) as recorder:
        peer = peer_factory()
        target = ("localhost", peer.getsockname()[1])
        manager.fire(Event.create("burst", target, [b"abc", b"def"]), "burst")
        failure = recorder.wait_for("error", TIMEOUT)
        assert failure.args[0] == target and failure.args[1].errno == errno.ENOBUFS
        assert peer.recvfrom(100)[0] == b"abc"
        manager.fire(write(target, b"ghi"), "server")  # the bound is free again
        assert peer.recvfrom(100)[0] == b"ghi"
    assert recorder.count("error") == 1


# --------------------------------------------------------------- broadcast
class RecordingSocket(socket.socket):
    """Records broadcast sendto calls instead of sending them (nothing leaves this host)."""

    broadcasts: list[tuple[bytes, Any]]

    def sendto(self, data: Any, *rest: Any) -> int:  # type: ignore[override]
        address = rest[-1]
        if address[0] == "<broadcast>":
            self.broadcasts.append((bytes(data), address))
            return len(data)
        return super().sendto(data, *rest)


def test_broadcast_sets_so_broadcast_and_sends_to_the_broadcast_address(
    manager: Manager,
) -> None:
    sock = RecordingSocket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.broadcasts = []
    sock.bind(("127.0.0.1", 0))
    server = UDPServer(sock=sock)
    manager += server
    assert not sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST)
    with running(manager) as recorder:
        manager.fire(broadcast(b"anyone?", 9999), "server")
        manager.fire(broadcast(b"again", 9998), "server")
        recorder.wait_for("broadcast", TIMEOUT, count=2)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST)
    assert sock.broadcasts == [
        (b"anyone?", ("<broadcast>", 9999)),
        (b"again", ("<broadcast>", 9998)),
    ]
    assert recorder.count("error") == 0


@pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback")
def test_broadcast_on_ipv6_is_an_error_event(manager: Manager) -> None:
    server = UDP6Server(0)
    manager += server
    with running(manager) as recorder:
        manager.fire(broadcast(b"x", 9999), "server")
        failure = recorder.wait_for("error", TIMEOUT)
    assert failure.args[0] == ("<broadcast>", 9999)
    assert failure.args[1].errno == errno.EAFNOSUPPORT


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_each_udp_socket_costs_one_descriptor(manager: Manager) -> None:
    first = UDPServer(0)
    manager += first  # the tree's loop (selector and wake-up) exists from here on
    gc.collect()  # earlier tests' garbage must not close descriptors while we count
    before = len(os.listdir("/proc/self/fd"))
    servers = [UDPServer(0) for _ in range(10)] + [UDPClient() for _ in range(10)]
    for server in servers:
        manager += server
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) - before == len(servers)
    assert poller_of(manager).fds == len(servers) + 1
    for server in [first, *servers]:  # the loop never ran: nothing else closes them
        server.socket.close()


def test_constructor_checks() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as stream,
        pytest.raises(ValueError, match="datagram"),
    ):
        UDPServer(sock=stream)
    with pytest.raises(ValueError):
        UDPServer(0, max_reads=0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        with pytest.raises(OSError) as info:
            UDPServer(taken.getsockname())
        assert info.value.errno == errno.EADDRINUSE
