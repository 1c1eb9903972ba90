"""Connex, the reconnecting client, against real faults on loopback.

Servers are :class:`RestartableServer` (stops refusing connects, restarts on the same held
port) and :class:`FaultProxy` (delay, stall, reset, drop after N bytes, refuse). Every wait
is on an event or a condition with a timeout; states are read on the loop thread.
One test per transition of ``TRANSITIONS`` (``test_transition``), then behaviour tests.

The Connex runs on virtual time that only the test moves (``env.vt``): a backoff delay,
a connect timeout or the inactivity timeout passes when the test advances the clock,
once what schedules it has happened (so it is checked just before and at its deadline).
"""

from __future__ import annotations

import contextlib
import inspect
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import netcomp.net
from _fault_proxy import FaultProxy, RestartableServer, full_backlog, hold_port
from _net_support import cert_files, client_ssl_context, ipv6_loopback, on, server_ssl_context
from netcomp import Component, Event, Manager
from netcomp.net import (
    Backoff,
    ConnectTimeout,
    Connex,
    QueueFull,
    RetriesExhausted,
    TCPServer,
    close,
    disable,
    enable,
    write,
)
from netcomp.net._connex import (
    CONNECTED,
    CONNECTING,
    DISABLED,
    DISCONNECTED,
    IDLE_CLOSED,
    TRANSITIONS,
)
from netcomp.testing import Recorder, VirtualTime, running

CH = "cx"
STEP = 2.0**-10  # "just before a deadline"
FAST = Backoff(initial=0.02, factor=1.5, maximum=0.05, jitter=0.5)
NEVER = Backoff(initial=60.0, factor=1.0, maximum=60.0, jitter=0.0)


def on_loop(manager: Manager, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Run ``fn`` on the manager's loop thread and return its result."""
    done = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = fn()
        finally:
            done.set()

    manager.loop.call_soon_threadsafe(run)
    assert done.wait(timeout), "the loop did not run the probe"
    return box.get("result")


class Env:
    """A running manager with a recorder, plus the servers a test asks for."""

    def __init__(
        self,
        manager: Manager,
        recorder: Recorder,
        stack: contextlib.ExitStack,
        vt: VirtualTime,
    ):
        self.manager = manager
        self.recorder = recorder
        self.stack = stack
        self.vt = vt
        self.connex: Connex | None = None
        self._markers = 0

    # ------------------------------------------------------------- destinations
    def server(self, **options: Any) -> RestartableServer:
        return self.stack.enter_context(RestartableServer(**options))

    def refusing(self) -> tuple[str, int]:
        """A port nobody listens on (held, so it stays that way)."""
        holder = hold_port()
        self.stack.callback(holder.close)
        return holder.getsockname()[:2]

    def mute(self) -> tuple[str, int]:
        """A listener that never accepts or speaks: TCP connects, TLS never finishes."""
        sock = socket.socket()
        self.stack.callback(sock.close)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        return sock.getsockname()[:2]

    # ------------------------------------------------------------------ connex
    def make(self, destinations: list[tuple[str, int]], **options: Any) -> Connex:
        options.setdefault("backoff", FAST)
        options.setdefault("connect_timeout", 5.0)
        connex = Connex(destinations, channel=CH, **options)
        connex._trace = []
        self.connex = connex
        connex.register(self.manager)
        self.recorder.wait_for("registered", predicate=lambda e: e.args[0] is connex)
        return connex

    def make_connecting(self, **options: Any) -> Connex:
        """A Connex stuck in a TLS handshake that never answers."""
        return self.make([self.mute()], secure=True, connect_timeout=30.0, **options)

    def fire(self, event: Event) -> None:
        self.manager.fire(event, CH)

    def wait(self, name: str, count: int = 1, timeout: float = 5.0, **kw: Any) -> Event:
        predicate = kw.pop("predicate", None)

        def match(event: Event) -> bool:
            return on(CH)(event) and (predicate is None or predicate(event))

        return self.recorder.wait_for(name, timeout, predicate=match, count=count, **kw)

    def count(self, name: str) -> int:
        return sum(1 for e in list(self.recorder.events) if e.name == name and on(CH)(e))

    def attempts(self) -> int:
        """Connection attempts started so far: rounds begun, and failovers within them."""
        return sum(
            1
            for state, name, nxt in self.trace()
            if nxt == CONNECTING and (state != CONNECTING or name == "failover")
        )

    def settle(self) -> None:
        """Every event fired before this call has been handled (events are FIFO)."""
        self._markers += 1
        marker = Event.create(f"marker_{self._markers}")
        self.manager.fire(marker, "markers")
        self.recorder.wait_for(marker.name)

    def state(self) -> str:
        assert self.connex is not None
        connex = self.connex
        return on_loop(self.manager, lambda: connex.state)  # type: ignore[no-any-return]

    def trace(self) -> list[tuple[str, str, str]]:
        assert self.connex is not None
        connex = self.connex
        return on_loop(self.manager, lambda: list(connex._trace or []))  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.manager.stop()
        self.manager.join(10)
        assert not self.manager.running


@pytest.fixture
def env() -> Iterator[Env]:
    manager = Manager()
    vt = VirtualTime(manager.loop)
    with contextlib.ExitStack() as stack, running(manager) as recorder:
        yield Env(manager, recorder, stack, vt)


# ------------------------------------------------------------------ backoff
def test_backoff_grows_by_factor_up_to_the_maximum() -> None:
    policy = Backoff(initial=0.5, factor=2.0, maximum=3.0, jitter=0.0)
    assert [policy(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy(10_000) == 3.0  # no overflow
    assert Backoff(0.1, 1.0, 0.1, 0.0)(7) == 0.1  # factor 1: constant


def test_backoff_jitter_only_shortens_within_the_fraction() -> None:
    policy = Backoff(initial=1.0, factor=1.0, maximum=1.0, jitter=0.25)
    delays = [policy(1) for _ in range(500)]
    assert all(0.75 <= d <= 1.0 for d in delays)
    assert max(delays) - min(delays) > 0.1  # it does spread


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": -1.0},
        {"initial": 5.0, "maximum": 1.0},
        {"factor": 0.5},
        {"jitter": 1.5},
    ],
)
def test_backoff_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_connex_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="destination"):
        Connex([])
    with pytest.raises(ValueError, match="max_retries"):
        Connex([("127.0.0.1", 1)], max_retries=-1)
    with pytest.raises(ValueError, match="queue_limit"):
        Connex([("127.0.0.1", 1)], queue_limit=-1)


def test_transition_table_is_total_for_outside_inputs() -> None:
    states = {IDLE_CLOSED, DISCONNECTED, CONNECTING, CONNECTED, DISABLED}
    assert {state for state, _ in TRANSITIONS} == states
    assert {nxt for nxt, _ in TRANSITIONS.values()} <= states
    for state in states:
        for name in ("demand", "close", "enable", "disable", "stop"):
            assert (state, name) in TRANSITIONS, (state, name)
    for _next, actions in TRANSITIONS.values():
        for action in actions:
            assert callable(getattr(Connex, action)), action


# ------------------------------------------------------- one test per transition
SCENARIOS: dict[tuple[str, str], Callable[[Env], None]] = {}


def scenario(state: str, name: str) -> Callable[[Callable[[Env], None]], Callable[[Env], None]]:
    def register(fn: Callable[[Env], None]) -> Callable[[Env], None]:
        SCENARIOS[(state, name)] = fn
        return fn

    return register


@pytest.mark.parametrize("key", sorted(TRANSITIONS), ids=lambda k: f"{k[0]}+{k[1]}")
def test_transition(key: tuple[str, str], env: Env) -> None:
    assert key in SCENARIOS, f"no scenario for {key}"
    SCENARIOS[key](env)
    expected = (key[0], key[1], TRANSITIONS[key][0])
    assert expected in env.connex._trace  # type: ignore[union-attr, operator]


def test_every_transition_has_a_scenario() -> None:
    assert set(SCENARIOS) == set(TRANSITIONS)


# idle-closed ------------------------------------------------------------------
@scenario(IDLE_CLOSED, "demand")
def _idle_demand(env: Env) -> None:
    server = env.server()
    env.make([server.address], eager=False)
    env.settle()
    assert env.state() == IDLE_CLOSED and server.accepted == 0  # lazy: no link yet
    env.fire(write(b"now"))
    env.wait("connected")
    assert server.wait_received(3) == b"now"


@scenario(IDLE_CLOSED, "close")
def _idle_close(env: Env) -> None:
    env.make([env.refusing()], eager=False)
    env.fire(close())
    env.settle()
    assert env.state() == IDLE_CLOSED
    assert env.count("disconnected") == 0


@scenario(IDLE_CLOSED, "enable")
def _idle_enable(env: Env) -> None:
    env.make([env.refusing()], eager=False)
    env.fire(enable())
    env.settle()
    assert env.state() == IDLE_CLOSED  # lazy, nothing queued: still no link wanted
    assert env.count("unreachable") == 0


@scenario(IDLE_CLOSED, "disable")
def _idle_disable(env: Env) -> None:
    connex = env.make([env.refusing()], eager=False)
    env.fire(disable())
    env.settle()
    assert env.state() == DISABLED and not connex.enabled


@scenario(IDLE_CLOSED, "stop")
def _idle_stop(env: Env) -> None:
    env.make([env.refusing()], eager=False)
    env.stop()
    assert env.connex is not None and env.connex.state == IDLE_CLOSED


# disconnected -----------------------------------------------------------------
def _disconnected(env: Env, **options: Any) -> Connex:
    """Eager, the only destination refuses, next retry in a minute."""
    connex = env.make([env.refusing()], backoff=NEVER, **options)
    env.wait("unreachable")
    assert env.state() == DISCONNECTED
    assert connex._retry_timer is not None
    return connex


@scenario(DISCONNECTED, "demand")
def _disconnected_demand(env: Env) -> None:
    connex = _disconnected(env)
    env.fire(write(b"queued"))
    env.settle()
    assert env.state() == DISCONNECTED  # the backoff is not cut short
    assert on_loop(env.manager, lambda: connex.queued) == 6
    assert env.count("unreachable") == 1


@scenario(DISCONNECTED, "due")
def _disconnected_due(env: Env) -> None:
    server = env.server(listening=False)
    env.make([server.address], backoff=Backoff(0.05, 1.0, 0.05, 0.0))
    env.wait("unreachable")
    server.start()
    env.vt.advance_to(0.05 - STEP)
    assert env.attempts() == 1 and env.state() == DISCONNECTED
    env.vt.advance_to(0.05)
    env.wait("connected")  # the retry came by itself, after the delay
    trace = env.trace()
    assert trace.index((DISCONNECTED, "due", CONNECTING)) < trace.index(
        (CONNECTING, "up", CONNECTED)
    )


@scenario(DISCONNECTED, "close")
def _disconnected_close(env: Env) -> None:
    connex = _disconnected(env)
    env.fire(close())
    env.settle()
    assert env.state() == IDLE_CLOSED
    assert on_loop(env.manager, lambda: connex._retry_timer) is None


@scenario(DISCONNECTED, "enable")
def _disconnected_enable(env: Env) -> None:
    _disconnected(env)
    env.fire(enable())
    env.settle()
    assert env.state() == DISCONNECTED
    assert env.count("unreachable") == 1  # no extra attempt


@scenario(DISCONNECTED, "disable")
def _disconnected_disable(env: Env) -> None:
    connex = _disconnected(env)
    env.fire(disable())
    env.settle()
    assert env.state() == DISABLED
    assert on_loop(env.manager, lambda: connex._retry_timer) is None


@scenario(DISCONNECTED, "stop")
def _disconnected_stop(env: Env) -> None:
    connex = _disconnected(env)
    env.stop()
    assert connex.state == IDLE_CLOSED and connex._retry_timer is None


# connecting -------------------------------------------------------------------
@scenario(CONNECTING, "demand")
def _connecting_demand(env: Env) -> None:
    connex = env.make_connecting()
    dial = on_loop(env.manager, lambda: connex._dial)
    assert dial is not None
    for index in range(10):
        env.fire(write(b"%d" % index))
    env.settle()
    assert env.state() == CONNECTING
    assert on_loop(env.manager, lambda: connex._dial) is dial  # never restarted
    assert on_loop(env.manager, lambda: connex.queued) == 10
    assert env.trace().count((IDLE_CLOSED, "demand", CONNECTING)) == 1


@scenario(CONNECTING, "up")
def _connecting_up(env: Env) -> None:
    server = env.server()
    env.make([server.address])
    event = env.wait("connected")
    assert event.args == server.address
    server.wait_accepted(1)


@scenario(CONNECTING, "failover")
def _connecting_failover(env: Env) -> None:
    refusing, server = env.refusing(), env.server()
    env.make([refusing, server.address])
    env.wait("connected")
    failed = env.wait("unreachable")
    assert failed.args[:2] == refusing and failed.args[3] == 1
    assert isinstance(failed.args[2], ConnectionRefusedError)


@scenario(CONNECTING, "retry")
def _connecting_retry(env: Env) -> None:
    _disconnected(env)


@scenario(CONNECTING, "give_up")
def _connecting_give_up(env: Env) -> None:
    connex = env.make([env.refusing()], max_retries=0)
    failure = env.wait("error")
    assert isinstance(failure.args[0], RetriesExhausted)
    assert isinstance(failure.args[0].reason, ConnectionRefusedError)
    assert env.state() == DISABLED and not on_loop(env.manager, lambda: connex.enabled)


@scenario(CONNECTING, "close")
def _connecting_close(env: Env) -> None:
    connex = env.make_connecting()
    env.fire(close())
    env.settle()
    assert env.state() == IDLE_CLOSED
    assert on_loop(env.manager, lambda: (connex._dial, env.manager.loop.watched)) == (None, 0)
    assert env.count("disconnected") == 0  # it never was connected


@scenario(CONNECTING, "enable")
def _connecting_enable(env: Env) -> None:
    connex = env.make_connecting()
    dial = on_loop(env.manager, lambda: connex._dial)
    env.fire(enable())
    env.settle()
    assert env.state() == CONNECTING
    assert on_loop(env.manager, lambda: connex._dial) is dial


@scenario(CONNECTING, "disable")
def _connecting_disable(env: Env) -> None:
    connex = env.make_connecting()
    env.fire(disable())
    env.fire(write(b"kept"))
    env.settle()
    assert env.state() == DISABLED
    assert on_loop(env.manager, lambda: (connex._dial, env.manager.loop.watched)) == (None, 0)
    assert on_loop(env.manager, lambda: connex.queued) == 4


@scenario(CONNECTING, "stop")
def _connecting_stop(env: Env) -> None:
    connex = env.make_connecting()
    env.stop()
    assert connex.state == IDLE_CLOSED and connex._dial is None


# connected --------------------------------------------------------------------
def _connected(env: Env, **options: Any) -> tuple[Connex, RestartableServer]:
    server = env.server()
    connex = env.make([server.address], **options)
    env.wait("connected")
    server.wait_accepted(1)
    return connex, server


@scenario(CONNECTED, "demand")
def _connected_demand(env: Env) -> None:
    _connected(env)
    env.fire(enable())  # enable while up: a link is wanted, and there is one
    env.settle()
    assert env.state() == CONNECTED


@scenario(CONNECTED, "idle")
def _connected_idle(env: Env) -> None:
    connex, server = _connected(env, inactivity_timeout=0.05)
    env.vt.advance_to(0.05 - STEP)
    assert env.state() == CONNECTED
    env.vt.advance_to(0.05)
    env.wait("disconnected")
    server.wait_eofs(1)
    assert env.state() == IDLE_CLOSED
    assert on_loop(env.manager, lambda: (connex._retry_timer, connex._dial)) == (None, None)


@scenario(CONNECTED, "lost")
def _connected_lost(env: Env) -> None:
    connex, server = _connected(env, backoff=NEVER)
    server.stop()
    env.wait("disconnected")
    assert env.state() == DISCONNECTED
    assert on_loop(env.manager, lambda: connex._retry_timer) is not None


@scenario(CONNECTED, "lost_idle")
def _connected_lost_idle(env: Env) -> None:
    server = env.server()
    env.make([server.address], eager=False)
    env.fire(write(b"x"))
    env.wait("connected")
    server.wait_received(1)
    server.stop(reset=True)
    env.wait("disconnected")
    assert isinstance(env.wait("error").args[0], ConnectionResetError)
    assert env.state() == IDLE_CLOSED  # lazy, nothing to send: no reconnect
    assert env.count("unreachable") == 0


@scenario(CONNECTED, "give_up")
def _connected_give_up(env: Env) -> None:
    _connex, server = _connected(env, max_retries=0)
    server.stop()
    env.wait("disconnected")
    assert isinstance(env.wait("error").args[0], RetriesExhausted)
    assert env.state() == DISABLED


@scenario(CONNECTED, "close")
def _connected_close(env: Env) -> None:
    _connex, server = _connected(env)
    env.fire(write(b"last words"))
    env.fire(close())
    env.wait("disconnected")
    server.wait_eofs(1)
    assert server.conns[0].data == b"last words"  # sent before the close
    env.settle()
    assert env.state() == IDLE_CLOSED
    assert server.accepted == 1


@scenario(CONNECTED, "enable")
def _connected_enable(env: Env) -> None:
    _connected(env, eager=True)
    env.fire(enable())
    env.settle()
    assert env.state() == CONNECTED
    assert env.count("disconnected") == 0


@scenario(CONNECTED, "disable")
def _connected_disable(env: Env) -> None:
    connex, server = _connected(env)
    env.fire(disable())
    env.wait("disconnected")
    server.wait_eofs(1)
    assert env.state() == DISABLED and not on_loop(env.manager, lambda: connex.enabled)


@scenario(CONNECTED, "stop")
def _connected_stop(env: Env) -> None:
    connex, server = _connected(env)
    data = bytes(range(256)) * 4096  # 1 MiB: more than the kernel takes at once
    env.fire(write(data))
    env.stop()  # waits for the link to finish sending, then closes it
    assert server.wait_received(len(data)) == data
    server.wait_eofs(1)
    assert connex.state == IDLE_CLOSED


# disabled ---------------------------------------------------------------------
def _disabled(env: Env, **options: Any) -> tuple[Connex, RestartableServer]:
    server = env.server()
    connex = env.make([server.address], enabled=False, **options)
    env.settle()
    assert env.state() == DISABLED and server.accepted == 0
    return connex, server


@scenario(DISABLED, "demand")
def _disabled_demand(env: Env) -> None:
    connex, server = _disabled(env)
    env.fire(write(b"held"))
    env.settle()
    assert env.state() == DISABLED and server.accepted == 0
    assert on_loop(env.manager, lambda: connex.queued) == 4


@scenario(DISABLED, "enable")
def _disabled_enable(env: Env) -> None:
    _connex, server = _disabled(env, eager=False)
    env.fire(write(b"held"))
    env.fire(enable())  # lazy, but data is queued: it connects
    env.wait("connected")
    assert server.wait_received(4) == b"held"


@scenario(DISABLED, "disable")
def _disabled_disable(env: Env) -> None:
    _disabled(env)
    env.fire(disable())
    env.settle()
    assert env.state() == DISABLED


@scenario(DISABLED, "close")
def _disabled_close(env: Env) -> None:
    _disabled(env)
    env.fire(close())
    env.settle()
    assert env.state() == DISABLED


@scenario(DISABLED, "stop")
def _disabled_stop(env: Env) -> None:
    connex, _server = _disabled(env)
    env.stop()
    assert connex.state == DISABLED


# ------------------------------------------------------------ behaviour under faults
def test_server_restarted_20_times_loses_no_message_written_while_down(env: Env) -> None:
    server = env.server()
    connex = env.make([server.address])
    expected = bytearray()
    down_messages: list[bytes] = []
    number = 0

    def send(count: int) -> bytes:
        nonlocal number
        sent = bytearray()
        for _ in range(count):
            message = b"message %05d\n" % number
            number += 1
            env.fire(write(message))
            sent += message
        expected.extend(sent)
        return bytes(sent)

    for cycle in range(20):
        env.wait("connected", count=cycle + 1)
        send(5)  # while up
        server.wait_received(len(expected))
        server.stop(reset=cycle % 2 == 1)  # graceful or reset, alternately
        env.wait("disconnected", count=cycle + 1)
        down_messages.append(send(5))  # while down: queued
        env.settle()
        assert on_loop(env.manager, lambda: connex.queued) == len(down_messages[-1])
        server.start()
        env.vt.advance(FAST.maximum)  # the retry is due
    env.wait("connected", count=21)
    assert server.wait_received(len(expected)) == expected  # once each, in order
    assert server.accepted == 21
    for cycle, messages in enumerate(down_messages):
        # what was written while down opens the next connection, flushed on connect
        assert server.conns[cycle + 1].data.startswith(messages)
    assert env.count("connected") == 21


def test_failover_refused_then_black_hole_then_server(env: Env) -> None:
    refusing, server = env.refusing(), env.server()
    black_hole = socket.socket()  # a full accept queue: SYNs are dropped, connects time out
    env.stack.callback(black_hole.close)
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(0)
    for _ in range(2):
        filler = socket.socket()
        env.stack.callback(filler.close)
        filler.setblocking(False)
        filler.connect_ex(black_hole.getsockname())
    hole = black_hole.getsockname()[:2]
    env.make([refusing, hole, server.address], connect_timeout=0.3)
    env.fire(write(b"through at last"))
    first = env.wait("unreachable")  # refused at once; now the connect to the hole waits
    env.vt.advance_to(0.3 - STEP)
    if env.count("connected"):
        pytest.skip("this kernel completed a connect to a listener with a full backlog")
    assert env.count("unreachable") == 1  # the hole is given its whole connect timeout
    env.vt.advance_to(0.3)
    connected = env.wait("connected")
    if connected.args == hole:
        pytest.skip("this kernel completed a connect to a listener with a full backlog")
    second = env.wait("unreachable", count=2)
    assert first.args[:2] == refusing and isinstance(first.args[2], ConnectionRefusedError)
    assert second.args[:2] == hole and isinstance(second.args[2], ConnectTimeout)
    assert (first.args[3], second.args[3]) == (1, 2)
    assert connected.args == server.address
    assert server.wait_received(15) == b"through at last"


class Echo(Component):
    def read(self, sock: socket.socket, data: bytes) -> bytes:
        return data


def test_tls_failover_past_a_stalling_proxy(
    env: Env, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cert, key = cert_files(tmp_path_factory)
    server = TCPServer(("127.0.0.1", 0), channel="tls", ssl_context=server_ssl_context(cert, key))
    server.register(env.manager)
    Echo(channel="tls").register(env.manager)
    env.recorder.wait_for("ready", predicate=on("tls"))
    proxy = env.stack.enter_context(FaultProxy(server.bind))
    proxy.stall()  # TCP connects; the TLS handshake never answers
    refusing = env.refusing()
    env.make(
        [refusing, proxy.address, server.bind],
        secure=True,
        ssl_context=client_ssl_context(cert),
        server_hostname="localhost",
        connect_timeout=0.3,
    )
    env.fire(write(b"secret"))
    env.wait("unreachable")  # refused at once; the handshake through the proxy stalls
    proxy.wait_accepted(1)
    env.vt.advance_to(0.3 - STEP)
    assert (env.count("unreachable"), env.count("connected")) == (1, 0)
    env.vt.advance_to(0.3)
    assert env.wait("connected").args == server.bind
    assert env.wait("read").args == (b"secret",)
    stalled = env.wait("unreachable", count=2)
    assert stalled.args[:2] == proxy.address and isinstance(stalled.args[2], ConnectTimeout)
    assert proxy.accepted == 1


def test_inactivity_closes_the_link_and_a_write_reconnects(env: Env) -> None:
    connex, server = _connected(env, inactivity_timeout=0.25)
    env.vt.advance(0.125)
    env.fire(write(b"one"))  # activity: idle from now on
    server.wait_received(3)
    env.vt.advance(0.25 - STEP)  # past the first deadline, not past the write's
    assert env.count("disconnected") == 0
    env.vt.advance(STEP)
    env.wait("disconnected", timeout=5)
    server.wait_eofs(1)
    assert server.conns[0].data == b"one"
    assert env.state() == IDLE_CLOSED
    assert on_loop(env.manager, lambda: (connex._retry_timer, connex._dial)) == (None, None)
    env.fire(write(b"two"))  # data must go out: reconnect at once (no backoff)
    env.wait("connected", count=2)
    server.wait_received(6)
    assert server.conns[1].data == b"two"


def test_traffic_keeps_an_active_link_open(env: Env) -> None:
    """Writes every 1/16 s for longer than the 0.5 s timeout: no close until they stop."""
    connex, server = _connected(env, inactivity_timeout=0.5)
    writes = 12
    interval = 0.0625

    class Ticker(Component):
        channel = "beat"
        count = 0

        def beat(self) -> None:
            self.count += 1
            self.fire(write(b"t"), CH)
            if self.count < writes:
                self.loop.call_later(interval, self.fire, Event.create("beat"), "beat")

    Ticker().register(env.manager)
    env.manager.fire(Event.create("beat"), "beat")
    env.vt.advance((writes - 1) * interval)  # 0.6875 s of traffic, beat by beat
    server.wait_received(writes, timeout=10)
    env.vt.advance(0.5 - STEP)  # idle since the last write, not yet for the timeout
    assert env.count("disconnected") == 0
    env.vt.advance(STEP)
    env.wait("disconnected", timeout=5)
    events = list(env.recorder.events)
    last_write = max(i for i, e in enumerate(events) if e.name == "write" and on(CH)(e))
    closed = next(i for i, e in enumerate(events) if e.name == "disconnected")
    assert last_write < closed  # the link outlived the timeout while traffic flowed
    assert server.accepted == 1
    assert connex.state == IDLE_CLOSED


def test_lazy_connex_keeps_retrying_while_data_is_queued(env: Env) -> None:
    server = env.server(listening=False)
    env.make([server.address], eager=False)
    env.settle()
    assert env.count("unreachable") == 0  # lazy: no attempt without data
    env.fire(write(b"eventually"))
    for count in (1, 2, 3):
        env.wait("unreachable", count=count)
        assert env.attempts() == count  # the next one waits for its delay
        if count < 3:
            env.vt.advance_to_next()
    server.start()
    env.vt.advance_to_next()
    env.wait("connected")
    assert server.wait_received(10) == b"eventually"


def test_disable_queues_and_enable_delivers(env: Env) -> None:
    connex, server = _connected(env)
    env.fire(write(b"a"))
    server.wait_received(1)
    env.fire(disable())
    env.wait("disconnected")
    server.wait_eofs(1)
    for part in (b"b", b"c", b"d"):
        env.fire(write(part))
    env.settle()
    assert (env.state(), connex.queued, server.accepted) == (DISABLED, 3, 1)
    env.fire(enable())
    env.wait("connected", count=2)
    assert server.wait_received(4) == b"abcd"
    assert server.conns[1].data == b"bcd"


def test_queue_overflow_refuses_the_write_with_queue_full(env: Env) -> None:
    server = env.server(listening=False)
    connex = env.make([server.address], queue_limit=100)
    env.fire(write(b"a" * 60))
    env.fire(write(b"b" * 50))  # does not fit: refused whole
    env.fire(write(b"c" * 40))  # fits exactly
    refusal = env.wait("error", predicate=lambda e: isinstance(e.args[0], QueueFull))
    full = refusal.args[0]
    assert (full.size, full.queued, full.limit) == (50, 60, 100)
    assert isinstance(full, BufferError)
    env.wait("unreachable")
    env.settle()
    assert on_loop(env.manager, lambda: connex.queued) == 100
    server.start()
    env.vt.advance(FAST.maximum)
    env.wait("connected")
    env.wait("drained")  # there is room again
    assert server.wait_received(100) == b"a" * 60 + b"c" * 40
    names = [e.name for e in env.recorder.events if on(CH)(e)]
    assert names.index("error") < names.index("connected") < names.index("drained")


def test_max_retries_gives_up_then_enable_starts_over(env: Env) -> None:
    server = env.server(listening=False)
    connex = env.make([server.address], max_retries=2)
    for count in (1, 2):
        env.wait("unreachable", count=count)
        env.vt.advance_to_next()
    failure = env.wait("error")
    exhausted = failure.args[0]
    assert isinstance(exhausted, RetriesExhausted) and exhausted.failures == 3
    assert [e.args[3] for e in env.recorder.events if e.name == "unreachable"] == [1, 2, 3]
    assert env.state() == DISABLED
    env.fire(write(b"later"))
    server.start()
    env.fire(enable())
    env.wait("connected")
    assert server.wait_received(5) == b"later"
    assert connex.enabled


def test_backoff_counts_failed_rounds_and_resets_after_a_connection(env: Env) -> None:
    calls: list[int] = []

    def policy(failures: int) -> float:
        calls.append(failures)
        return 0.01

    server = env.server(listening=False)
    env.make([env.refusing(), server.address], backoff=policy)
    for count in (2, 4):  # three rounds of two attempts, a delay after each
        env.wait("unreachable", count=count)
        env.vt.advance(0.01)
    env.wait("unreachable", count=6)
    server.start()
    env.vt.advance(0.01)
    env.wait("connected")
    rounds = list(calls)
    assert rounds[:3] == [1, 2, 3] and rounds == list(range(1, len(rounds) + 1))
    attempts = [e.args[3] for e in env.recorder.events if e.name == "unreachable"]
    assert attempts == list(range(1, len(attempts) + 1))
    server.stop()
    env.wait("disconnected")
    env.vt.advance(0.01)
    env.wait("unreachable", count=len(attempts) + 1)
    assert calls[len(rounds)] == 1  # the lost link starts counting afresh


def test_a_server_that_drops_every_connection_is_retried_after_the_delay(env: Env) -> None:
    server = env.server()
    proxy = env.stack.enter_context(FaultProxy(server.address))
    proxy.reset()  # accept, then reset at once
    calls: list[int] = []

    def policy(failures: int) -> float:
        calls.append(failures)
        return 0.02

    env.make([proxy.address], backoff=policy)
    for count in range(1, 5):
        env.vt.waits.wait_idle(lambda count=count: len(calls) >= count)  # type: ignore[misc]
        assert env.attempts() == count  # no new attempt before the delay has passed
        env.vt.advance(0.02)
    proxy.wait_accepted(5)
    env.settle()
    failures = on_loop(env.manager, lambda: list(calls))
    # Every accepted-then-reset connect was followed by a delay (no tight reconnect loop).
    assert len(failures) >= 4
    assert proxy.accepted <= len(failures) + 1


def test_link_cut_after_n_bytes_reconnects_and_goes_on(env: Env) -> None:
    server = env.server()
    proxy = env.stack.enter_context(FaultProxy(server.address))
    proxy.drop_after(10)
    env.make([proxy.address])
    env.wait("connected")
    env.fire(write(b"0123456789 and the rest is lost"))
    env.wait("disconnected")
    proxy.forward()
    env.vt.advance(FAST.maximum)
    env.wait("connected", count=2)
    env.fire(write(b"after"))
    server.wait_received(15)
    assert server.conns[0].data == b"0123456789"
    assert server.conns[-1].data == b"after"


def test_delayed_link_delivers_everything_in_order(env: Env) -> None:
    server = env.server()
    proxy = env.stack.enter_context(FaultProxy(server.address))
    proxy.forward(delay=0.03)
    env.make([proxy.address])
    expected = b"".join(b"chunk %03d;" % i for i in range(50))
    for i in range(50):
        env.fire(write(b"chunk %03d;" % i))
    assert server.wait_received(len(expected)) == expected


def test_reads_arrive_and_a_bytes_result_is_written_back(env: Env) -> None:
    class Answer(Component):
        channel = CH

        def read(self, data: bytes) -> bytes:
            return b"got " + data

    Answer().register(env.manager)
    _connex, server = _connected(env)
    server.send(b"ping")
    assert env.wait("read").args == (b"ping",)
    assert server.wait_received(8) == b"got ping"


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_destination(env: Env) -> None:
    server = env.server(host="::1")
    env.make([server.address])
    assert env.wait("connected").args == server.address
    env.fire(write(b"six"))
    assert server.wait_received(3) == b"six"


def test_connex_registered_before_the_loop_starts_connects_when_it_starts() -> None:
    manager = Manager()
    with RestartableServer() as server:
        connex = Connex([server.address], channel=CH)
        connex.register(manager)
        with running(manager) as recorder:
            recorder.wait_for("connected", predicate=on(CH))
            server.wait_accepted(1)
        assert connex.state == IDLE_CLOSED


def test_exports_are_documented() -> None:
    new = [
        "Backoff",
        "Connex",
        "QueueFull",
        "RetriesExhausted",
        "ThreadedTCPClient",
        "disable",
        "enable",
    ]
    assert set(new) <= set(netcomp.net.__all__)
    assert netcomp.net.__all__ == sorted(netcomp.net.__all__)
    for name in new:
        obj = getattr(netcomp.net, name)
        assert (vars(obj).get("__doc__") or "").strip(), name
        for attr, member in vars(obj).items():
            if attr.startswith("_"):
                continue
            target = member.fget if isinstance(member, property) else member
            if inspect.isfunction(target):
                assert (target.__doc__ or "").strip(), f"{name}.{attr}"


# ------------------------------------------- the shared connect path (Dial), via TCPClient
@pytest.mark.parametrize("where", ["refused", "in progress"])
def test_tls_client_connect_fails_cleanly_before_tcp_is_up(where: str) -> None:
    """TLS is started once TCP is up: wrapping a socket still connecting (or refused) raises
    in ``ssl`` and leaks the half-made SSLSocket (this used to fail both ways)."""
    with contextlib.ExitStack() as stack:
        if where == "refused":
            holder = stack.enter_context(hold_port())
            address = holder.getsockname()[:2]
        else:
            address = stack.enter_context(full_backlog())
        manager = Manager()
        vt = VirtualTime(manager.loop)
        netcomp.net.TCPClient(channel="cli", secure=True, connect_timeout=0.3).register(manager)
        with running(manager) as recorder:
            manager.fire(netcomp.net.connect(*address), "cli")
            if where == "in progress":
                recorder.wait_for("connect", predicate=on("cli"))  # the attempt has begun
                vt.advance(0.3)
            event = recorder.wait_for("unreachable", predicate=on("cli"))
            if where == "in progress" and recorder.count("connected"):
                pytest.skip("this kernel completed a connect to a listener with a full backlog")
        expected = ConnectionRefusedError if where == "refused" else ConnectTimeout
        assert isinstance(event.args[2], expected), event.args[2]
        assert manager.loop.watched == 0
