"""A stream connection's lifecycle: one state, moved only along ``TRANSITIONS``.

The table is checked for consistency; then every legal transition is driven by real sockets
(a stdlib peer on 127.0.0.1, TLS with the test certificate) on a running loop, with a
:class:`Probe` as the connection's owner, and read back from the connection's trace.
"""

from __future__ import annotations

import itertools
import queue
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from _net_support import (
    StdServer,
    cert_files,
    client_ssl_context,
    payload,
    pump,
    server_ssl_context,
)
from netcomp import Manager
from netcomp.net import Connection, ConnectionLimits, ConnectionState
from netcomp.net._lifecycle import INITIAL, TRANSITIONS
from netcomp.testing import running

S = ConnectionState
CLOSED = S.CLOSED
EDGES = sorted(
    ((old, new) for old, targets in TRANSITIONS.items() for new in targets),
    key=lambda edge: (edge[0].name, edge[1].name),
)
_RESET = struct.pack("ii", 1, 0)


# ------------------------------------------------------------------ the table


def test_every_state_has_a_row_and_closed_is_terminal() -> None:
    assert set(TRANSITIONS) == set(ConnectionState)
    assert TRANSITIONS[CLOSED] == frozenset()
    assert {S.CONNECTING, S.OPEN} == INITIAL
    for state, targets in TRANSITIONS.items():
        assert state not in targets, f"{state.name} moves to itself"


def reachable(starts: set[ConnectionState]) -> set[ConnectionState]:
    seen = set(starts)
    frontier = list(starts)
    while frontier:
        for following in TRANSITIONS[frontier.pop()]:
            if following not in seen:
                seen.add(following)
                frontier.append(following)
    return seen


def test_every_state_is_reachable_and_every_state_can_end() -> None:
    assert reachable(set(INITIAL)) == set(ConnectionState)
    for state in ConnectionState:
        assert CLOSED in reachable({state}), f"{state.name} can never close"
        assert CLOSED in TRANSITIONS[state] or state is CLOSED, f"{state.name} cannot abort"


def test_an_illegal_transition_raises_and_says_which() -> None:
    left, right = socket.socketpair()
    with right:
        conn = Connection(Probe(), left, None, ConnectionLimits())
        conn.abort()  # no loop needed: OPEN -> CLOSED, reported to the owner
        assert conn.state is CLOSED and conn.closed
        with pytest.raises(RuntimeError, match="no transition from CLOSED to OPEN"):
            conn._transition(S.OPEN)
        assert conn.state is CLOSED


# ------------------------------------------------------------------ harness


class Probe:
    """A connection owner (the protocol servers and clients implement) that records what it
    hears; the test thread waits on it."""

    def __init__(self) -> None:
        self.heard: list[str] = []
        self.data = bytearray()
        self.error: BaseException | None = None
        self._cond = threading.Condition()

    def _note(self, name: str) -> None:
        with self._cond:
            self.heard.append(name)
            self._cond.notify_all()

    def connection_made(self, conn: Connection) -> None:
        self._note("made")

    def data_received(self, conn: Connection, data: bytes) -> None:
        with self._cond:
            self.data += data
        self._note("data")

    def eof_received(self, conn: Connection) -> None:
        self._note("eof")

    def connection_drained(self, conn: Connection) -> None:
        self._note("drained")

    def connection_lost(self, conn: Connection, error: BaseException | None) -> None:
        self.error = error
        self._note("lost")

    def wait(self, name: str, timeout: float = 10.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: name in self.heard, timeout):
                raise TimeoutError(f"no {name!r} within {timeout} s; heard {self.heard}")


class Harness:
    """Runs code on the loop thread of a running manager, and makes traced connections."""

    def __init__(self, manager: Manager) -> None:
        self.loop = manager.loop

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        answers: queue.Queue[tuple[bool, Any]] = queue.Queue()

        def run() -> None:
            try:
                answers.put((True, fn(*args)))
            except BaseException as err:
                answers.put((False, err))

        self.loop.call_soon_threadsafe(run)
        ok, value = answers.get(timeout=10)
        if not ok:
            raise value
        return value

    def adopt(self, sock: socket.socket, probe: Probe, **limits: Any) -> Connection:
        """An accepted socket as a server's connection (OPEN)."""

        def make() -> Connection:
            sock.setblocking(False)
            conn = Connection(probe, sock, sock.getpeername(), ConnectionLimits(**limits))
            conn._trace = []
            conn.attach(self.loop)
            return conn

        return self.call(make)  # type: ignore[no-any-return]

    def dial(
        self, address: Any, probe: Probe, context: ssl.SSLContext | None = None
    ) -> Connection:
        """A client connection to ``address`` (CONNECTING; TLS once connected with a
        ``context``), with ``b"early"`` written before it is up."""

        def make() -> Connection:
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(address)
            conn = Connection(probe, sock, address, ConnectionLimits(), connecting=True)
            conn._trace = []
            conn.attach(self.loop)
            if context is not None:
                conn.start_tls(context, False, "localhost")
            conn.write(b"early")
            return conn

        return self.call(make)  # type: ignore[no-any-return]


@pytest.fixture
def harness() -> Iterator[Harness]:
    manager = Manager()
    with running(manager):
        yield Harness(manager)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return cert_files(tmp_path_factory)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        sock.settimeout(10)
        yield sock


def accepted(listener: socket.socket) -> tuple[socket.socket, socket.socket]:
    """(our end, the stdlib peer's end) of a new TCP connection."""
    peer = socket.create_connection(listener.getsockname(), timeout=10)
    ours, _ = listener.accept()
    return ours, peer


def reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    sock.close()


# ------------------------------------------------------------------ scenarios
Trace = list[tuple[ConnectionState, ConnectionState]]


def connect_plain(harness: Harness, listener: socket.socket, certs: Any) -> Trace:
    probe = Probe()
    conn = harness.dial(listener.getsockname(), probe)
    probe.wait("made")
    peer, _ = listener.accept()
    with peer:
        assert peer.recv(100) == b"early"  # kept while connecting, sent once up
    assert conn.state is S.OPEN
    harness.call(conn.abort)
    return conn._trace or []


def connect_refused(harness: Harness, listener: socket.socket, certs: Any) -> Trace:
    with socket.socket() as bound:  # bound, not listening: the kernel refuses
        bound.bind(("127.0.0.1", 0))
        probe = Probe()
        conn = harness.dial(bound.getsockname(), probe)
        probe.wait("lost")
    assert isinstance(probe.error, ConnectionRefusedError)
    assert "made" not in probe.heard and not conn.established
    return conn._trace or []


def connect_tls(harness: Harness, listener: socket.socket, certs: Any) -> Trace:
    probe = Probe()
    context = server_ssl_context(*certs)
    with StdServer(socket.AF_INET, ("127.0.0.1", 0), context=context) as server:  # echo
        conn = harness.dial(server.address, probe, client_ssl_context(certs[0]))
        probe.wait("made")
        probe.wait("data")
        assert bytes(probe.data) == b"early"  # kept during connect and handshake, encrypted
        assert conn.tls and conn.state is S.OPEN
        harness.call(conn.close)
        probe.wait("lost")
    assert probe.error is None
    return conn._trace or []


def failed_handshake(harness: Harness, listener: socket.socket, certs: Any) -> Trace:
    ours, peer = accepted(listener)
    probe = Probe()
    conn = harness.adopt(ours, probe)
    with peer:
        harness.call(conn.start_tls, server_ssl_context(*certs), True)
        assert conn.state is S.HANDSHAKING
        peer.sendall(b"GET / HTTP/1.0\r\n\r\n")  # not a ClientHello
        probe.wait("lost")
    assert isinstance(probe.error, ssl.SSLError)
    assert "made" not in probe.heard and not conn.established
    return conn._trace or []


def starttls_on_the_server(harness: Harness, listener: socket.socket, certs: Any) -> Trace:
    ours, raw = accepted(listener)
    probe = Probe()
    conn = harness.adopt(ours, probe)
    harness.call(conn.write, b"OK\r\n")  # buffered or sent: plaintext, before the upgrade
    harness.call(conn.start_tls, server_ssl_context(*certs), True)
    assert raw.recv(4) == b"OK\r\n"
    with client_ssl_context(certs[0]).wrap_socket(raw, server_hostname="localhost") as peer:
        probe.wait("made")
        assert conn.established
        peer.sendall(b"secret")
        probe.wait("data")
        assert bytes(probe.data) == b"secret"
        harness.call(conn.abort)
    return conn._trace or []


def close_idle(harness: Harness, listener: socket.socket, certs: Any) -> Trace:
    ours, peer = accepted(listener)
    probe = Probe()
    conn = harness.adopt(ours, probe)
    with peer:
        harness.call(conn.close)
        assert conn.state is S.LINGERING  # FIN sent, waiting for the peer's
        assert peer.recv(100) == b""
    probe.wait("lost")
    assert probe.error is None
    return conn._trace or []


def close_busy(harness: Harness, listener: socket.socket, certs: Any) -> Trace:
    ours, peer = accepted(listener)
    probe = Probe()
    conn = harness.adopt(ours, probe, high_water=64 * 1024, low_water=16 * 1024)
    data = payload(8 * 1024 * 1024, seed=3)
    with peer:
        harness.call(conn.write, data)  # the peer is not reading: most of it is buffered
        harness.call(conn.close)
        assert conn.state is S.CLOSING
        got, eof = pump(peer, b"", until_eof=True, timeout=20)
        assert eof and got == data
        assert harness.call(lambda: conn.state) is S.LINGERING  # read on the loop thread
    probe.wait("lost")
    assert probe.error is None
    return conn._trace or []


def reset_while_closing(harness: Harness, listener: socket.socket, certs: Any) -> Trace:
    ours, peer = accepted(listener)
    probe = Probe()
    conn = harness.adopt(ours, probe, high_water=64 * 1024, low_water=16 * 1024)
    harness.call(conn.write, payload(8 * 1024 * 1024, seed=4))
    harness.call(conn.close)
    assert conn.state is S.CLOSING
    reset(peer)
    probe.wait("lost")
    assert isinstance(probe.error, (ConnectionResetError, BrokenPipeError))
    return conn._trace or []


def reset_while_open(harness: Harness, listener: socket.socket, certs: Any) -> Trace:
    ours, peer = accepted(listener)
    probe = Probe()
    conn = harness.adopt(ours, probe)
    peer.sendall(b"x")
    probe.wait("data")
    reset(peer)
    probe.wait("lost")
    assert isinstance(probe.error, ConnectionResetError)
    return conn._trace or []


SCENARIOS: dict[tuple[ConnectionState, ConnectionState], Callable[..., Trace]] = {
    (S.CONNECTING, S.OPEN): connect_plain,
    (S.CONNECTING, S.CLOSED): connect_refused,
    (S.CONNECTING, S.HANDSHAKING): connect_tls,
    (S.HANDSHAKING, S.OPEN): connect_tls,
    (S.HANDSHAKING, S.CLOSED): failed_handshake,
    (S.OPEN, S.HANDSHAKING): starttls_on_the_server,
    (S.OPEN, S.LINGERING): close_idle,
    (S.OPEN, S.CLOSING): close_busy,
    (S.OPEN, S.CLOSED): reset_while_open,
    (S.CLOSING, S.LINGERING): close_busy,
    (S.CLOSING, S.CLOSED): reset_while_closing,
    (S.LINGERING, S.CLOSED): close_idle,
}


def test_there_is_a_scenario_for_every_legal_transition() -> None:
    assert set(SCENARIOS) == set(EDGES)


@pytest.mark.parametrize("edge", EDGES, ids=lambda e: f"{e[0].name}-{e[1].name}")
def test_each_legal_transition_happens_on_real_sockets(
    edge: tuple[ConnectionState, ConnectionState],
    harness: Harness,
    listener: socket.socket,
    certs: tuple[str, str],
) -> None:
    trace = SCENARIOS[edge](harness, listener, certs)
    assert edge in trace, trace
    assert trace[0][0] in INITIAL
    for (_old, new), (following, _next) in itertools.pairwise(trace):
        assert new is following, f"the trace skips a state: {trace}"
    assert trace[-1][1] is CLOSED  # every scenario ends the connection


def test_close_while_handshaking_abandons_the_link(
    harness: Harness, listener: socket.socket, certs: tuple[str, str]
) -> None:
    ours, peer = accepted(listener)
    probe = Probe()
    conn = harness.adopt(ours, probe)
    with peer:
        harness.call(conn.start_tls, server_ssl_context(*certs), True)
        harness.call(conn.close)
        probe.wait("lost")
        assert peer.recv(100) == b""
    assert probe.error is None
    assert conn._trace == [(S.OPEN, S.HANDSHAKING), (S.HANDSHAKING, S.CLOSED)]
    assert harness.call(conn.write, b"late") is False
