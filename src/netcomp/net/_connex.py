"""Connex: a client that keeps a link to one of several servers up, and loses nothing.

Rules (the reconnect policy; every state change goes through ``TRANSITIONS`` below):
* States: ``idle-closed`` (no link, nothing scheduled: the next write connects; the start
  state of a lazy Connex, and where ``close()`` and the inactivity timeout leave it),
  ``disconnected`` (no link, a retry is scheduled after a backoff delay), ``connecting``
  (one attempt in progress), ``connected``, ``disabled`` (no link and none is made until
  ``enable()``).
* A link is *wanted* when the Connex is eager or data is queued. An eager Connex connects when
  the loop starts; a lazy one only when data must go out.
* Destinations are tried in turn: a failed attempt (refused, timed out, TLS failure) fails
  over to the next destination at once; a *round* is one attempt at each. After a failed
  round, and after the loss of a link, the next round starts after ``backoff(n)`` seconds,
  ``n`` counting those failures since the link was last up (a connection resets it). After
  more than ``max_retries`` of them the Connex gives up: ``error(RetriesExhausted)``, then
  disabled, keeping its queue (``enable()`` starts over). A lost link is never retried at
  once: a server that accepts and drops every connection costs one attempt per delay.
* Data written while not connected is queued (at most ``queue_limit`` bytes; a write that
  does not fit is refused whole with ``error(QueueFull)``, never dropped silently) and
  flushed in order, as one write, as soon as a link is up, before anything written later.
  A write never restarts a connect in progress, never cuts a backoff delay short, and never
  reconnects a disabled Connex.
* Leaving ``connected`` fires ``disconnected()`` at once; a link we close sends what it was
  given first (the manager's stop waits for that). Bytes handed to a link that then breaks
  may be lost in the network: TCP gives no receipt, so end-to-end delivery needs
  acknowledgements in the application's protocol.
* Inputs are processed one at a time (an input fed by an action waits for it to finish).
"""

from __future__ import annotations

import random
import socket
import ssl
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..core import Event, Future, NetcompError, TimerHandle, handler
from ._address import link_names
from ._checks import count, optional_seconds
from ._checks import destinations as check_destinations
from ._client import Dial
from ._connection import Connection
from ._events import connected, disconnected, drained, error, read, unreachable
from ._limits import ConnectionLimits
from ._poller import SocketComponent
from ._tls import client_context
from ._waiters import AllClosed

__all__ = [
    "Backoff",
    "Connex",
    "QueueFull",
    "RetriesExhausted",
    "disable",
    "enable",
]

IDLE_CLOSED = "idle-closed"
DISCONNECTED = "disconnected"
CONNECTING = "connecting"
CONNECTED = "connected"
DISABLED = "disabled"

#: (state, input) -> (next state, actions run in order). Inputs: ``demand`` (data must go
#: out, or an eager start), ``due`` (the backoff delay ended), ``up`` (the attempt
#: connected), ``failover`` (it failed; another destination remains in this round),
#: ``retry`` (the round failed), ``give_up`` (a round failed or the link was lost, and no
#: retry is left), ``lost`` (the link went down and is still wanted), ``lost_idle`` (it went
#: down and is not wanted), ``idle`` (inactivity timeout), and the events ``close``,
#: ``enable``, ``disable``, ``stop`` (the manager stops). A pair missing here is a bug.
TRANSITIONS: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    (IDLE_CLOSED, "demand"): (CONNECTING, ("_start_round",)),
    (IDLE_CLOSED, "close"): (IDLE_CLOSED, ()),
    (IDLE_CLOSED, "enable"): (IDLE_CLOSED, ()),
    (IDLE_CLOSED, "disable"): (DISABLED, ()),
    (IDLE_CLOSED, "stop"): (IDLE_CLOSED, ()),
    (DISCONNECTED, "demand"): (DISCONNECTED, ()),  # the data waits for the scheduled retry
    (DISCONNECTED, "due"): (CONNECTING, ("_start_round",)),
    (DISCONNECTED, "close"): (IDLE_CLOSED, ("_cancel_retry", "_rest")),
    (DISCONNECTED, "enable"): (DISCONNECTED, ()),
    (DISCONNECTED, "disable"): (DISABLED, ("_cancel_retry", "_rest")),
    (DISCONNECTED, "stop"): (IDLE_CLOSED, ("_cancel_retry", "_rest")),
    (CONNECTING, "demand"): (CONNECTING, ()),  # never restarts the attempt
    (CONNECTING, "up"): (CONNECTED, ("_link_up",)),
    (CONNECTING, "failover"): (CONNECTING, ("_try_next",)),
    (CONNECTING, "retry"): (DISCONNECTED, ("_schedule_retry",)),
    (CONNECTING, "give_up"): (DISABLED, ("_give_up",)),
    (CONNECTING, "close"): (IDLE_CLOSED, ("_cancel_dial", "_rest")),
    (CONNECTING, "enable"): (CONNECTING, ()),
    (CONNECTING, "disable"): (DISABLED, ("_cancel_dial", "_rest")),
    (CONNECTING, "stop"): (IDLE_CLOSED, ("_cancel_dial", "_rest")),
    (CONNECTED, "demand"): (CONNECTED, ()),  # e.g. enable() while up
    (CONNECTED, "idle"): (IDLE_CLOSED, ("_drop_link", "_rest")),
    (CONNECTED, "lost"): (DISCONNECTED, ("_drop_link", "_schedule_retry")),
    (CONNECTED, "lost_idle"): (IDLE_CLOSED, ("_drop_link", "_rest")),
    (CONNECTED, "give_up"): (DISABLED, ("_drop_link", "_give_up")),
    (CONNECTED, "close"): (IDLE_CLOSED, ("_drop_link", "_rest")),
    (CONNECTED, "enable"): (CONNECTED, ()),
    (CONNECTED, "disable"): (DISABLED, ("_drop_link", "_rest")),
    (CONNECTED, "stop"): (IDLE_CLOSED, ("_drop_link", "_rest")),
    (DISABLED, "demand"): (DISABLED, ()),  # queued; no write reconnects a disabled Connex
    (DISABLED, "enable"): (IDLE_CLOSED, ()),  # then a wanted link is demanded
    (DISABLED, "disable"): (DISABLED, ()),
    (DISABLED, "close"): (DISABLED, ()),
    (DISABLED, "stop"): (DISABLED, ()),
}


class enable(Event):
    """In (Connex): ``enable()``: (re)connect when a link is wanted; see ``disable``."""


class disable(Event):
    """In (Connex): ``disable()``: close the link or cancel the connect, and stay down."""


class QueueFull(NetcompError, BufferError):
    """A write to a Connex did not fit in its queue (``queue_limit`` bytes); it was refused."""

    def __init__(self, size: int, queued: int, limit: int) -> None:
        super().__init__(
            f"a write of {size} bytes does not fit: {queued} of {limit} bytes already queued"
        )
        self.size = size
        self.queued = queued
        self.limit = limit


class RetriesExhausted(NetcompError, ConnectionError):
    """A Connex failed more than ``max_retries`` times in a row and disabled itself."""

    def __init__(self, failures: int, reason: BaseException | None) -> None:
        super().__init__(f"gave up after {failures} failure(s) in a row; last: {reason!r}")
        self.failures = failures
        self.reason = reason


@dataclass(frozen=True)
class Backoff:
    """Delays between connect rounds: exponential, capped, with random jitter.

    ``backoff(n)`` is ``min(maximum, initial * factor ** (n - 1))`` seconds for the ``n``-th
    failure in a row, shortened by a random fraction of at most ``jitter``: never longer
    than that nominal delay, so ``maximum`` is a true bound, and clients that lost the same
    server do not come back in lockstep. Defaults: 0.5 s, doubling, at most 30 s, up to
    20 % shorter (gRPC's connection backoff uses 1 s, x1.6, 120 s and +-20 %, for links over
    the Internet; these suit services on a LAN). ``factor=1`` gives a constant delay.
    """

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not 0 <= self.initial <= self.maximum:
            raise ValueError(f"need 0 <= initial <= maximum, got {self.initial}, {self.maximum}")
        if self.factor < 1:
            raise ValueError(f"factor must be at least 1, got {self.factor}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter is a fraction in [0, 1], got {self.jitter}")

    def __call__(self, attempt: int) -> float:
        """Seconds to wait before the retry that follows the ``attempt``-th failure (>= 1)."""
        exponent = max(0, attempt - 1)
        try:
            delay = min(self.maximum, self.initial * self.factor**exponent)
        except OverflowError:
            delay = self.maximum
        if self.jitter:
            delay *= 1.0 - self.jitter * random.random()
        return delay


class Connex(SocketComponent):
    """A reconnecting TCP client (GConnex done right). See the module's rules.

    Events in: ``write(data)``, ``close()``, ``enable()``, ``disable()``. Out:
    ``connected(host, port)``, ``disconnected()``, ``read(data)`` (a handler's bytes result
    is written back), ``unreachable(host, port, reason, attempt)`` for every failed attempt
    (``attempt`` counts them since the link was last up), ``drained()``, ``error(err)``.
    """

    channel = "connex"

    def __init__(
        self,
        destinations: Iterable[tuple[str, int]],
        connect_timeout: float | None = 10.0,
        backoff: Callable[[int], float] | None = None,
        max_retries: int | None = None,
        inactivity_timeout: float | None = None,
        queue_limit: int = 1024 * 1024,
        enabled: bool = True,
        eager: bool = True,
        secure: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        nodelay: bool = True,
        high_water: int = 1024 * 1024,
        low_water: int = 256 * 1024,
        channel: Any = "connex",
    ) -> None:
        """``destinations``: ``(host, port)`` pairs (IPv4, IPv6 or names), tried in turn.

        ``backoff``: a :class:`Backoff` (the default) or any ``f(n) -> seconds``.
        ``max_retries``: failures in a row tolerated before giving up (``None``: never give
        up). ``inactivity_timeout``: seconds without a byte either way before an idle link
        is closed (``None``: never). ``queue_limit``: bytes kept while not connected.
        ``eager``: connect when the loop starts (else on the first write). TLS as the TCP
        client: ``secure``, ``ssl_context``, ``server_hostname``.
        """
        super().__init__(channel=channel)
        self.destinations: tuple[tuple[str, int], ...] = check_destinations(destinations)
        if max_retries is not None:
            count("max_retries", max_retries)
        count("queue_limit", queue_limit)
        if backoff is not None and not callable(backoff):
            raise TypeError(f"backoff must be a Backoff or f(n) -> seconds, got {backoff!r}")
        self.connect_timeout = optional_seconds("connect_timeout", connect_timeout)
        self.backoff: Callable[[int], float] = backoff if backoff is not None else Backoff()
        self.max_retries = max_retries
        self.inactivity_timeout = optional_seconds("inactivity_timeout", inactivity_timeout)
        self.queue_limit = queue_limit
        self.eager = eager
        self.secure = secure
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.nodelay = nodelay
        self.limits = ConnectionLimits(high_water, low_water, pause_reading=False)
        self._tls: ssl.SSLContext | None = client_context(ssl_context) if secure else None
        self._init_state(enabled)

    def _init_state(self, enabled: bool) -> None:
        self._state = IDLE_CLOSED if enabled else DISABLED
        self._inputs: deque[str] = deque()
        self._feeding = False
        self._outbox: deque[bytes] = deque()
        self._outbox_size = 0
        self._refused = False  # a write was refused: say ``drained`` when there is room
        self._conn: Connection | None = None
        self._names: tuple[Any, Any] = (None, None)  # (peername, sockname) of the link
        self._closing: set[Connection] = set()  # links we closed, still sending
        self._all_closed = AllClosed()
        self._dial: Dial | None = None
        self._cursor = 0  # the destination to try next
        self._round_left = 0  # attempts left in the current round
        self._failures = 0  # failed rounds and lost links since the link was last up
        self._attempts = 0  # failed attempts since the link was last up
        self._last_reason: BaseException | None = None
        self._retry_timer: TimerHandle | None = None
        self._idle_timer: TimerHandle | None = None
        self._active = 0.0  # loop time of the link's last traffic
        #: When set to a list, every transition is appended as (state, input, next state).
        self._trace: list[tuple[str, str, str]] | None = None

    # ------------------------------------------------------------ properties
    @property
    def state(self) -> str:
        """``"idle-closed"``, ``"disconnected"``, ``"connecting"``, ``"connected"`` or
        ``"disabled"``."""
        return self._state

    @property
    def enabled(self) -> bool:
        """False once disabled (by ``disable()`` or after giving up) until ``enable()``."""
        return self._state != DISABLED

    @property
    def connected(self) -> bool:
        """Whether a link is up."""
        return self._state == CONNECTED

    @property
    def congested(self) -> bool:
        """Whether the link's output is above ``high_water`` (``drained()`` follows)."""
        conn = self._conn
        return conn is not None and conn.congested

    @property
    def peername(self) -> Any:
        """The peer's address while connected (as ``socket.getpeername`` says), else None."""
        return self._names[0] if self._state == CONNECTED else None

    @property
    def sockname(self) -> Any:
        """The local address of the link while connected, else None."""
        return self._names[1] if self._state == CONNECTED else None

    @property
    def destination(self) -> tuple[str, int] | None:
        """The one of ``destinations`` the link is up to, while connected, else None."""
        conn = self._conn
        if conn is None or self._state != CONNECTED:
            return None
        return conn.peer  # type: ignore[no-any-return]

    @handler(False)
    def next_destination(self) -> tuple[str, int]:
        """Move on: the next attempt goes to the destination after the last one tried
        (in turn, wrapping around); returns it. A failed attempt calls this itself, so
        calling it while connecting or connected only says where the next attempt goes."""
        self._cursor = (self._cursor + 1) % len(self.destinations)
        return self.destinations[self._cursor]

    @property
    def queued(self) -> int:
        """Bytes written while not connected, waiting for the next link."""
        return self._outbox_size

    # -------------------------------------------------------- state machine
    def _feed(self, name: str) -> None:
        """Process one input through ``TRANSITIONS`` (after any input being processed)."""
        self._inputs.append(name)
        if self._feeding:
            return
        self._feeding = True
        try:
            while self._inputs:
                name = self._inputs.popleft()
                state = self._state
                try:
                    following, actions = TRANSITIONS[(state, name)]
                except KeyError:
                    message = f"{self!r}: no transition for {name!r} in {state!r}"
                    raise RuntimeError(message) from None
                self._state = following
                if self._trace is not None:
                    self._trace.append((state, name, following))
                for action in actions:
                    getattr(self, action)()
        finally:
            self._feeding = False
            self._inputs.clear()

    def _wanted(self) -> bool:
        return self.eager or self._outbox_size > 0

    def _exhausted(self) -> bool:
        return self.max_retries is not None and self._failures > self.max_retries

    # --------------------------------------------------------------- actions
    def _start_round(self) -> None:
        self._round_left = len(self.destinations)
        self._try_next()

    def _try_next(self) -> None:
        host, port = self.destinations[self._cursor]
        dial = Dial(
            self,
            socket.AF_UNSPEC,
            host,
            port,
            self.limits,
            self.connect_timeout,
            self._tls,
            self.server_hostname,
            self.nodelay,
        )
        self._dial = dial
        dial.start(self.loop)

    def _cancel_dial(self) -> None:
        dial, self._dial = self._dial, None
        if dial is not None:
            dial.cancel()

    def _link_up(self) -> None:
        conn = self._conn
        assert conn is not None
        self._failures = self._attempts = 0
        self._last_reason = None
        self._names = link_names(conn.sock)
        host, port = conn.peer
        event = connected(host, port)
        event.peername, event.sockname = self._names
        event.destination = (host, port)
        self.fire(event)
        if self._outbox:
            data = b"".join(self._outbox)
            self._outbox.clear()
            self._outbox_size = 0
            if not conn.write(data):  # the link broke at once: keep it for the next one
                self._outbox.append(data)
                self._outbox_size = len(data)
        if self._refused and not conn.congested:
            self._refused = False
            self.fire(drained())
        self._active = self.loop.time()
        if self.inactivity_timeout is not None:
            self._idle_timer = self.loop.call_later(self.inactivity_timeout, self._idle_check)

    def _drop_link(self) -> None:
        conn, self._conn = self._conn, None
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if conn is not None and not conn.closed:
            self._closing.add(conn)  # first: close() may report at once
            conn.close()
        self.fire(disconnected())

    def _schedule_retry(self) -> None:
        delay = max(0.0, float(self.backoff(self._failures)))
        self._retry_timer = self.loop.call_later(delay, self._retry_due)

    def _retry_due(self) -> None:
        self._retry_timer = None
        self._feed("due")

    def _cancel_retry(self) -> None:
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self._retry_timer = None

    def _give_up(self) -> None:
        failures, reason = self._failures, self._last_reason
        self._rest()
        self.fire(error(RetriesExhausted(failures, reason)))

    def _rest(self) -> None:
        """No link and none being made: the next one starts afresh."""
        self._failures = self._attempts = 0
        self._last_reason = None

    # ------------------------------------------- outcomes of attempts and links
    def _dial_up(self, dial: Dial, conn: Connection) -> None:
        if dial is not self._dial:
            conn.abort()
            return
        self._dial = None
        self._conn = conn
        self._feed("up")

    def _dial_failed(self, dial: Dial, reason: BaseException) -> None:
        if dial is not self._dial:
            return
        self._dial = None
        self._attempts += 1
        self._last_reason = reason
        self.fire(unreachable(dial.host, dial.port, reason, self._attempts))
        self.next_destination()
        self._round_left -= 1
        if self._round_left > 0:
            self._feed("failover")
            return
        self._failures += 1
        self._feed("give_up" if self._exhausted() else "retry")

    def _link_lost(self, conn: Connection) -> None:
        if conn is not self._conn or self._state != CONNECTED:
            return
        if not self._wanted():
            self._feed("lost_idle")
            return
        self._failures += 1
        self._feed("give_up" if self._exhausted() else "lost")

    def _idle_check(self) -> None:
        self._idle_timer = None
        conn = self._conn
        timeout = self.inactivity_timeout
        if conn is None or timeout is None or self._state != CONNECTED:
            return
        now = self.loop.time()
        if conn.buffered:
            self._active = now  # still sending: not idle
        left = self._active + timeout - now
        if left > 0:
            self._idle_timer = self.loop.call_later(left, self._idle_check)
            return
        self._feed("idle")

    # The link reports here once it is up (Connection's owner protocol).
    @handler(False)
    def connection_made(self, conn: Connection) -> None:
        """Hook: not called (a link comes up through its dial, which tells the Connex)."""

    @handler(False)
    def data_received(self, conn: Connection, data: bytes) -> None:
        """Hook: ``data`` arrived; fires ``read`` (bytes returned go back)."""
        if conn is self._conn:
            self._active = self.loop.time()
        conn.track_read(self.fire(read(data)))

    @handler(False)
    def eof_received(self, conn: Connection) -> None:
        """Hook: the server will send no more; the link closes once reads are done."""
        # The peer is done sending: once our read handlers are done, the link is lost (we
        # close our side after sending what it was given).
        conn.after_reads(lambda: self._link_lost(conn))

    @handler(False)
    def connection_drained(self, conn: Connection) -> None:
        """Hook: output fell to low water; fires ``drained``."""
        if conn is self._conn:
            self._refused = False
            self.fire(drained())

    @handler(False)
    def connection_lost(self, conn: Connection, err: BaseException | None) -> None:
        """Hook: a link is gone (``err``: why); the state machine decides what next."""
        if conn in self._closing:
            self._closing.discard(conn)
            if err is not None:
                self.fire(error(err))  # what it was still sending may not have arrived
            if not self._closing:
                self._all_closed.done()
            return
        if conn is not self._conn:
            return
        if err is not None:
            self._last_reason = err
            self.fire(error(err))
        self._link_lost(conn)

    # -------------------------------------------------------------- handlers
    @handler("write")
    def _on_write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        conn = self._conn
        if conn is not None and self._state == CONNECTED and conn.write(data):
            self._active = self.loop.time()
            return
        size = len(data)
        if self._outbox_size + size > self.queue_limit:
            self._refused = True
            self.fire(error(QueueFull(size, self._outbox_size, self.queue_limit)))
            return
        self._outbox.append(bytes(data))
        self._outbox_size += size
        self._feed("demand")

    @handler("close")
    def _on_close(self) -> None:
        self._feed("close")

    @handler("enable")
    def _on_enable(self) -> None:
        self._feed("enable")
        if self._wanted():
            self._feed("demand")

    @handler("disable")
    def _on_disable(self) -> None:
        self._feed("disable")

    @handler("started", channel="*")
    def _on_loop_started(self, manager: Any) -> None:
        if self._wanted():
            self._feed("demand")

    @handler("registered", channel="*")
    def _on_registered(self, component: Any, parent: Any) -> None:
        if component is self and self.loop.running and self._wanted():
            self._feed("demand")  # joined a tree whose loop already runs

    @handler("stopped", channel="*")
    def _on_stopped(self, manager: Any) -> Future | None:
        self._feed("stop")
        # The loop waits (up to Manager.stop_timeout) for the links we closed to finish.
        return self._all_closed.wait(bool(self._closing))

    # --------------------------------------------------------------- plumbing
    def _rearm(self) -> None:
        loop = self.loop
        for conn in (self._conn, *self._closing):
            if conn is not None:
                conn.attach(loop)
        if self._dial is not None:
            self._dial.attach(loop)

    def loop_ended(self) -> None:
        """The loop is gone: stop, and cut the links still closing."""
        self._feed("stop")  # no-op unless the loop ended without a graceful stop
        closing, self._closing = list(self._closing), set()
        for conn in closing:
            conn.abort()

    def __repr__(self) -> str:
        host, port = self.destinations[self._cursor]
        return (
            f"<Connex/{self.channel} {self._state} next={host}:{port} queued={self._outbox_size}>"
        )
