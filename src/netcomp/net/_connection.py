"""One non-blocking stream socket: its lifecycle, buffered output with water marks, TLS.

Rules (the invariants every server and client relies on):
* A connection is in one :class:`ConnectionState` (CONNECTING, HANDSHAKING, OPEN, CLOSING,
  LINGERING, CLOSED); every change goes through ``_transition``, checked against
  ``TRANSITIONS`` (``_lifecycle.py``). What is not a stage of the lifecycle is a flag of
  its own: ``held`` (by the owner), ``congested`` (output), ``eof`` (the peer's), ``tls``.
* Output goes straight to the kernel when nothing is buffered; the rest is kept in one
  ``bytearray`` (front deletion is amortised O(1)) and flushed when the socket is writable.
  With TLS the buffer holds records: the water marks count ciphertext.
* Writes made before the link is up (CONNECTING, HANDSHAKING) are kept and sent, in order
  and before anything written later, once it is OPEN (encrypted, with TLS). Bytes already
  buffered when STARTTLS begins were written before it: they go out first, in plaintext.
* Above ``high_water`` buffered bytes a server connection stops reading (the peer is not
  serviced until it takes our output), so a peer that never reads cannot grow our memory
  without bound; at or below ``low_water`` reading resumes and the owner hears ``drained``.
* Connections may share an :class:`~netcomp.net.OutputBudget` (``limits.budget``): what
  they buffer counts in its total, and while it is over its limit a connection that
  buffers anything is congested too, until its own buffer is empty or the budget is under
  again (``_budget.py``).
* ``close()`` of an OPEN connection sends what is buffered (with TLS, then close_notify),
  then FIN. The peer's EOF stops reading but output still drains (half-close); the owner
  decides when to close. ``close()`` before the link is up abandons it.
* A closing connection keeps reading (and drops what it reads): a peer blocked on sending to
  us could never take our last output, and closing a socket with unread input makes the
  kernel reset the link and drop what it had not yet sent. Once the output is out it sends
  FIN and lingers until the peer's EOF (at most ``LINGER`` seconds), then closes.
* TLS is sans-I/O (:class:`~netcomp.net._tls.TLSLayer`): the socket stays a plain socket,
  so a failed handshake cannot leak it; the handshake is driven by readiness only and
  bounded by ``handshake_timeout``. Plaintext TLS has already decrypted is delivered at
  once, and when input resumes (``hold(False)``, drained).
* A TLS server's peer whose first bytes are no TLS record (plain HTTP sent to an HTTPS
  port) fails its handshake; if the owner's ``plaintext_answer`` hook returns bytes for
  it, they are sent in clear and the connection closes as an open one does (output
  first, then FIN and the linger), instead of a reset without a word.
* Every OSError is mapped once, here: it aborts this connection only.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import ssl
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ._errors import HandshakeTimeout
from ._lifecycle import (
    CLOSED,
    CLOSING,
    CONNECTING,
    HANDSHAKING,
    LINGERING,
    OPEN,
    TRANSITIONS,
    ConnectionState,
)
from ._limits import ConnectionLimits
from ._replies import write_back
from ._sendfile import FileSend
from ._tls import TLSLayer

if TYPE_CHECKING:
    from ..core import Loop, TimerHandle, Value, Watch

__all__ = ["READ_SIZE", "Connection"]

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE
#: The most bytes one read takes from a stream socket (one ``read`` event at most).
READ_SIZE = 256 * 1024
#: Seconds a closed connection waits for the peer's EOF after sending its FIN.
LINGER = 5.0
#: The first bytes of a TLS server's peer kept for ``plaintext_answer`` (a request line's
#: method and the start of its target fit).
GREETING = 64
#: First bytes of a TLS record (handshake) and of an SSLv2-style ClientHello.
_TLS_FIRST = frozenset((0x16, 0x80))
STOP_LINGER = 1.0


class Owner(Protocol):
    """What a Connection reports to (a server or a client component)."""

    def connection_made(self, conn: Connection) -> None: ...
    def data_received(self, conn: Connection, data: bytes) -> None: ...
    def eof_received(self, conn: Connection) -> None: ...
    def connection_drained(self, conn: Connection) -> None: ...
    def connection_lost(self, conn: Connection, error: BaseException | None) -> None: ...


_local = threading.local()


def _recv_view() -> memoryview:
    """This thread's receive buffer (each loop runs on one thread)."""
    try:
        return _local.view  # type: ignore[no-any-return]
    except AttributeError:
        _local.view = memoryview(bytearray(READ_SIZE))
        return _local.view  # type: ignore[no-any-return]


class Connection:
    """A connected (or connecting) stream socket serviced by its loop's selector.

    Its owner (a server or client component) hears ``connection_made`` once the link is up,
    then ``data_received``, ``eof_received``, ``connection_drained`` and, once,
    ``connection_lost``. Read-only for users: :attr:`state`, :attr:`closed`, :attr:`tls`,
    :attr:`paused`, :attr:`buffered`, the flags ``held``, ``congested``, ``eof`` and
    ``established`` (the owner heard ``connection_made``; it stays True once closed), the
    ``peer`` address, and the bytes ``received`` and ``sent`` on the wire (TLS records
    included, files sent with ``write_file`` too); ``congested_at``: when the output last
    became congested (loop time; 0.0 if never).
    """

    __slots__ = (
        "_early",
        "_file",
        "_greeting",
        "_handshake_timer",
        "_linger_timer",
        "_read_done_cb",
        "_state",
        "_tls",
        "_trace",
        "_watch",
        "congested",
        "congested_at",
        "eof",
        "established",
        "held",
        "last_read",
        "limits",
        "loop",
        "out",
        "owner",
        "peer",
        "received",
        "sent",
        "sock",
    )

    def __init__(
        self,
        owner: Owner,
        sock: socket.socket,
        peer: Any,
        limits: ConnectionLimits,
        connecting: bool = False,
    ) -> None:
        self.owner = owner
        self.sock: socket.socket = sock
        self.peer = peer
        self.limits = limits
        self.out = bytearray()  # bytes for the wire (TLS records once TLS is on)
        self._early: bytearray | None = None  # written before the link was up
        self._file: FileSend | None = None  # a file being sent with os.sendfile
        self._greeting: bytes | None = None  # a TLS server's peer's first bytes (b"": none yet)
        self.last_read: Value | None = None
        self._read_done_cb: Callable[[Value], None] | None = self._read_done
        self.loop: Loop | None = None
        self._watch: Watch | None = None
        self._tls: TLSLayer | None = None
        self._handshake_timer: TimerHandle | None = None
        self._linger_timer: TimerHandle | None = None
        self._state = CONNECTING if connecting else OPEN
        #: When set to a list, every transition is appended as (state, next state).
        self._trace: list[tuple[ConnectionState, ConnectionState]] | None = None
        self.held = False  # the owner stopped input (hold)
        self.congested = False  # output above high water, until it falls to low water
        self.congested_at = 0.0  # when it last became congested (loop time)
        self.eof = False  # the peer will send no more
        self.established = False  # the owner heard connection_made (stays True once closed)
        self.received = 0  # bytes read from the socket
        self.sent = 0  # bytes the kernel took

    # -------------------------------------------------------------- state
    @property
    def state(self) -> ConnectionState:
        """Where the connection is in its life."""
        return self._state

    @property
    def handle(self) -> socket.socket:
        """The socket users name this connection by: ``sock`` itself (TLS over memory
        buffers never replaces it)."""
        return self.sock

    @property
    def closed(self) -> bool:
        """Whether the socket is closed (nothing more will happen)."""
        return self._state is CLOSED

    @property
    def tls(self) -> bool:
        """Whether TLS is on (or starts once connected): handshaking or done."""
        return self._tls is not None

    @property
    def paused(self) -> bool:
        """Whether input is paused because output is congested (``pause_reading``)."""
        return self.congested and self.limits.pause_reading

    @property
    def buffered(self) -> int:
        """Bytes waiting to be sent (kept before the link is up, or not yet taken)."""
        early = self._early
        return len(self.out) + (len(early) if early is not None else 0)

    def _transition(self, new: ConnectionState) -> None:
        """Move to ``new``; a move ``TRANSITIONS`` does not allow is a bug and raises."""
        old = self._state
        if new not in TRANSITIONS[old]:
            raise RuntimeError(f"{self!r}: no transition from {old.name} to {new.name}")
        self._state = new
        if self._trace is not None:
            self._trace.append((old, new))

    # ----------------------------------------------------------- plumbing
    def attach(self, loop: Loop) -> None:
        """Start being serviced by ``loop`` (moving from a previous loop)."""
        if self._state is CLOSED:
            return
        self.loop = loop
        if self._watch is None:
            self._watch = loop.watch(self.sock, 0, self._on_ready)
        else:
            self._watch.move(loop)
        self._update()

    def _update(self) -> None:
        """Watch for what the state and the flags call for."""
        watch = self._watch
        state = self._state
        if watch is None or state is CLOSED:
            return
        if state is CONNECTING:
            mask = WRITE
        else:
            # Input: a handshake needs it and a closing link drops it; an open one reads
            # unless its owner holds it or its output is congested.
            mask = 0
            if not self.eof and (
                state is not OPEN
                or not (self.held or (self.congested and self.limits.pause_reading))
            ):
                mask = READ
            if self.out or self._file is not None:
                mask |= WRITE
        if mask != watch.events:
            watch.modify(mask)

    def hold(self, held: bool) -> None:
        """Stop (``True``) or resume reading, for an owner that cannot take more input now
        (an HTTP server whose pipeline is full); independent of output congestion."""
        if held != self.held:
            self.held = held
            self._update()
            if not held:
                self._resume_tls()

    def _on_ready(self, mask: int) -> None:
        state = self._state
        if state is OPEN:
            if mask & READ:
                self._read()
            if mask & WRITE and self._state is not CLOSED:
                self._flush()
        elif state is CONNECTING:
            self._finish_connect()
        elif state is HANDSHAKING:
            if mask & WRITE:
                self._flush()
            if mask & READ and self._state is HANDSHAKING:
                self._read_handshake()
        else:  # CLOSING or LINGERING
            if mask & READ:
                self._drop_input()
            if mask & WRITE and self._state is CLOSING:
                self._flush()

    # ------------------------------------------------------------ connect
    def _finish_connect(self) -> None:
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._shutdown(OSError(code, os.strerror(code)))
        elif self._tls is not None:
            self._begin_handshake()
        else:
            self._up()

    def start(self, context: ssl.SSLContext | None = None) -> None:
        """Begin an accepted connection: with ``context``, its TLS handshake (server side)
        first; the owner hears ``connection_made`` once it is up."""
        if context is not None:
            self.start_tls(context, server_side=True)
        elif self._state is OPEN and not self.established:
            self.established = True
            self.owner.connection_made(self)

    def _up(self) -> None:
        """The link is usable: send what was kept, then tell the owner."""
        self._transition(OPEN)
        early, self._early = self._early, None
        self._update()
        if early and not self.write(early):
            return  # it failed at once (and was reported)
        self.established = True
        self.owner.connection_made(self)
        if self.congested and self._state is OPEN and self.buffered <= self.limits.low_water:
            self._uncongest()  # what was kept went out at once

    # ---------------------------------------------------------------- TLS
    def start_tls(
        self, context: ssl.SSLContext, server_side: bool, server_hostname: str | None = None
    ) -> None:
        """Run a TLS handshake: now when OPEN (STARTTLS), or once the TCP connect is done.

        A no-op when TLS is already on, or when the connection is closing or closed.
        """
        state = self._state
        if self._tls is not None or (state is not OPEN and state is not CONNECTING):
            return
        try:
            self._tls = TLSLayer(context, server_side, server_hostname)
        except (ssl.SSLError, ValueError) as err:  # e.g. check_hostname without a name
            self._shutdown(err)
            return
        if server_side:
            self._greeting = b""
        if state is OPEN:
            self._begin_handshake()

    def _begin_handshake(self) -> None:
        self._transition(HANDSHAKING)
        loop = self.loop
        timeout = self.limits.handshake_timeout
        if loop is not None and timeout is not None:
            self._handshake_timer = loop.call_later(timeout, self._handshake_expired)
        self._handshake()

    def _read_handshake(self) -> None:
        tls = self._tls
        assert tls is not None
        try:
            count = self.sock.recv_into(_recv_view())
        except (BlockingIOError, InterruptedError):
            return
        except (OSError, ValueError) as err:  # e.g. the peer reset the link
            self._shutdown(err)
            return
        if count:
            if self._greeting == b"":
                self._greeting = bytes(_recv_view()[: min(count, GREETING)])
            tls.feed(_recv_view()[:count])
        else:
            tls.feed_eof()
        self._handshake()

    def _handshake(self) -> None:
        tls = self._tls
        assert tls is not None
        try:
            done = tls.handshake()
        except (OSError, ValueError) as err:  # ssl.SSLError is an OSError
            if not self._answer_plaintext():
                self._send_alert(tls.output())
                self._shutdown(err)
            return
        output = tls.output()
        if output and not self._push(output):
            return
        if not done:
            self._update()
            return
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        self._greeting = None
        self._up()
        if self._state is OPEN and tls.pending:
            self._deliver()  # records that came with the end of the handshake

    def _answer_plaintext(self) -> bool:
        """The handshake failed on a peer that spoke no TLS at all: send it the owner's
        answer in clear, then close gracefully. False when there is nothing to say."""
        greeting = self._greeting
        if not greeting or greeting[0] in _TLS_FIRST:
            return False
        hook = getattr(self.owner, "plaintext_answer", None)
        answer = hook(self, greeting) if hook is not None else None
        if not answer:
            return False
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        self._tls = None  # no session: the answer goes out as it is
        self._greeting = None
        self._transition(OPEN)
        self._update()
        if self.write(answer):
            self.close()
        return True

    def _send_alert(self, alert: bytes) -> None:
        """Best effort: tell the peer why the handshake failed (unknown CA, ...)."""
        if alert and not self.out:
            with contextlib.suppress(OSError, ValueError):
                self.sock.send(alert)

    def _handshake_expired(self) -> None:
        self._handshake_timer = None
        if self._state is HANDSHAKING:
            self._shutdown(HandshakeTimeout("TLS handshake timed out"))

    def _resume_tls(self) -> None:
        """Input may flow again: deliver what TLS already holds (no readiness will say so)."""
        tls = self._tls
        loop = self.loop
        if tls is not None and tls.pending and not self.eof and self._state is OPEN and loop:
            loop.call_soon(self._deliver)

    def _deliver(self) -> None:
        """Hand the owner what TLS can decrypt now (while input is not paused)."""
        tls = self._tls
        assert tls is not None
        view = _recv_view()  # free again: what the socket gave is inside ``tls`` already
        limits = self.limits
        while self._state is OPEN and not (self.held or (self.congested and limits.pause_reading)):
            try:
                count = tls.read_into(view)
            except (OSError, ValueError) as err:
                self._shutdown(err)
                return
            if not count:
                if tls.peer_closed and not self.eof:
                    self._peer_eof()
                break
            self.owner.data_received(self, bytes(view[:count]))
        output = tls.output()  # e.g. the answer to a key update
        if output and self._state is OPEN:
            self._push(output)

    # --------------------------------------------------------------- read
    def _read(self) -> None:
        view = _recv_view()
        try:
            # recv_into one per-thread buffer: recv(256 KiB) would have malloc map and unmap
            # a fresh block per read, and a small read would keep a whole page alive.
            count = self.sock.recv_into(view)
        except (BlockingIOError, InterruptedError):
            return
        except (OSError, ValueError) as err:
            if self._tls is None or not isinstance(err, ConnectionResetError):
                self._shutdown(err)
                return
            count = 0  # a TLS stream cut by a reset ends like one cut by a FIN (see _tls.py)
        self.received += count
        tls = self._tls
        if tls is not None:
            if count:
                tls.feed(view[:count])
            else:
                tls.feed_eof()
            self._deliver()
        elif count:
            self.owner.data_received(self, bytes(view[:count]))
        else:
            self._peer_eof()

    def _peer_eof(self) -> None:
        self.eof = True
        self._update()
        self.owner.eof_received(self)

    def _drop_input(self) -> None:
        """Closing or lingering: read and drop (below any TLS) until the peer's EOF."""
        try:
            count = self.sock.recv_into(_recv_view())
        except (BlockingIOError, InterruptedError):
            return
        except (OSError, ValueError) as err:
            # After our FIN, a reset only ends the wait; before it, output may be lost.
            self._shutdown(None if self._state is LINGERING else err)
            return
        if count:
            return
        if self._state is LINGERING:
            self._shutdown(None)
        else:
            self.eof = True
            self._update()

    def track_read(self, value: Value) -> None:
        """Remember the ``read`` event fired for this connection's latest data.

        Bytes its handlers return (or a list of bytes) are written back once it is done.
        """
        self.last_read = value
        value.add_done_callback(self._read_done_cb or self._read_done)

    def _read_done(self, value: Value) -> None:
        if self.last_read is value:
            self.last_read = None
        result = value.value
        if result is None or self._state is CLOSED:
            return
        if result.__class__ is bytes:  # the common case, on the echo hot path
            self.write(result)
        else:
            write_back(result, self.write)

    def after_reads(self, action: Callable[[], Any]) -> None:
        """Run ``action`` once every ``read`` fired so far is done (at once if they are)."""
        value = self.last_read
        if value is None or value.result:
            action()
        else:
            value.add_done_callback(lambda _v: action())

    # -------------------------------------------------------------- write
    def write(self, data: bytes | bytearray | memoryview) -> bool:
        """Send ``data`` (or buffer what the kernel won't take now). False once closing."""
        if self._state is not OPEN:
            return self._write_early(data)
        if not data:
            return True
        tls = self._tls
        if tls is not None:
            try:
                data = tls.encrypt(data)
            except (OSError, ValueError) as err:
                self._shutdown(err)
                return False
        elif not self.out and self._file is None:
            # _push inlined for plain data with nothing buffered: the measured hot path
            # (one method call less per echo).
            try:
                sent = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except (OSError, ValueError) as err:
                self._shutdown(err)
                return False
            self.sent += sent
            if sent != len(data):
                self._buffer(memoryview(data)[sent:])
            return True
        return self._push(data)

    def _write_early(self, data: bytes | bytearray | memoryview) -> bool:
        """Before the link is up: keep ``data`` for then. False if it is going away."""
        state = self._state
        if state is not CONNECTING and state is not HANDSHAKING:
            return False
        if data:
            early = self._early
            if early is None:
                early = self._early = bytearray()
            early += data
            if not self.congested and self.buffered > self.limits.high_water:
                self._congest()
                self._update()
        return True

    def _push(self, data: bytes | bytearray | memoryview) -> bool:
        """Send bytes for the wire now, buffering what the kernel does not take."""
        out = self.out
        if not out and self._file is None:
            try:
                sent = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except (OSError, ValueError) as err:
                self._shutdown(err)
                return False
            self.sent += sent
            if sent == len(data):
                return True
            data = memoryview(data)[sent:]
        self._buffer(data)
        return True

    def _buffer(self, data: bytes | bytearray | memoryview) -> None:
        """Keep what the kernel did not take, for the next writable readiness."""
        out = self.out
        out += data
        limits = self.limits
        budget = limits.budget
        if budget is not None:
            budget.add(len(data), self.loop)
            if not self.congested and budget.over_since is not None:
                self._congest()
        if not self.congested and len(out) > limits.high_water:
            self._congest()
        self._update()

    def _congest(self) -> None:
        self.congested = True
        loop = self.loop
        self.congested_at = loop.time() if loop is not None else 0.0

    def write_file(
        self,
        fd: int,
        offset: int,
        count: int,
        done: Callable[[BaseException | None], Any],
    ) -> bool:
        """Send ``count`` bytes of file descriptor ``fd`` from ``offset`` after what is
        buffered, with ``os.sendfile`` (the kernel copies; Python never sees the bytes).

        ``done(None)`` once sent, ``done(error)`` if the connection fails first. Plain
        sockets that are up only: False for TLS, a connection that is not OPEN or a file
        already in progress.
        """
        if self._state is not OPEN or self._tls is not None or self._file is not None:
            return False
        self._file = FileSend(fd, offset, count, done, len(self.out))
        if not self.out:
            self._flush_file()
        self._update()
        return True

    def _flush_file(self) -> bool:
        """Advance the file in progress; True once it is out (or there is none)."""
        file = self._file
        if file is None:
            return True
        out = self.out
        ahead = len(out)
        pending = file.ahead + file.count
        try:
            done = file.advance(self.sock, out)
        except (BlockingIOError, InterruptedError):
            done = False
        except (OSError, ValueError, EOFError) as err:
            self._took(ahead - len(out))
            self._shutdown(err)
            return False
        finally:
            self.sent += pending - file.ahead - file.count
        self._took(ahead - len(out))
        if not done:
            return False
        self._file = None
        file.done(None)
        return True

    def _flush(self) -> None:
        if self._file is not None and not self._flush_file():
            if self._state is not CLOSED:
                self._update()
            return
        out = self.out
        if out:
            try:
                sent = self.sock.send(out)  # one send per readiness: fair to the others
            except (BlockingIOError, InterruptedError):
                sent = 0
            except (OSError, ValueError) as err:
                self._shutdown(err)
                return
            self.sent += sent
            del out[:sent]
            budget = self.limits.budget
            if budget is not None:
                budget.remove(sent, self.loop)
        if self.congested and self.buffered <= self.limits.low_water:
            budget = self.limits.budget
            if budget is None or budget.over_since is None or not out:
                self._uncongest()
                if self._state is CLOSED:
                    return
            else:
                budget.hold(self)  # low, but the budget is over: wait for it (or for empty)
        if not out and self._state is CLOSING and self._file is None:
            self._close_write()
            return
        self._update()

    def _uncongest(self) -> None:
        self.congested = False
        budget = self.limits.budget
        if budget is not None:
            budget.let_go(self)
        self._update()
        self._resume_tls()
        self.owner.connection_drained(self)

    # -------------------------------------------------------------- close
    def close(self) -> None:
        """Close after sending what is buffered (abandons a link that is not up yet)."""
        state = self._state
        if state is OPEN:
            self._close_open()
        elif state is CONNECTING or state is HANDSHAKING:
            self._shutdown(None)
        elif state is LINGERING and (self.loop is None or not self.loop.running):
            self._shutdown(None)  # no loop left to end the linger

    def _close_open(self) -> None:
        tls = self._tls
        if tls is not None:  # close_notify: the peer can tell our end from a cut
            self._send_close_notify(tls.close_notify())
        if not self.out and self._file is None:
            self._close_write()
            return
        loop = self.loop
        if loop is None or not loop.running:
            self._flush()  # no loop to flush later: one last try, then close
            self._shutdown(None)
            return
        self._transition(CLOSING)
        self._update()

    def _send_close_notify(self, notify: bytes) -> None:
        """Queue close_notify after the last record; alone, it is a courtesy: a peer that is
        gone already (it reset the link) missed nothing, so that is no error."""
        if not notify:
            return
        if self.out or self._file is not None:
            self._keep(notify)
            return
        try:
            sent = self.sock.send(notify)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except (OSError, ValueError):
            sent = len(notify)
        if sent < len(notify):
            self._keep(memoryview(notify)[sent:])

    def _keep(self, data: bytes | memoryview) -> None:
        """Buffer ``data`` while closing (counted in the budget, no congestion)."""
        self.out += data
        budget = self.limits.budget
        if budget is not None:
            budget.add(len(data), self.loop)

    def _took(self, size: int) -> None:
        """``size`` buffered bytes went to the kernel."""
        budget = self.limits.budget
        if size and budget is not None:
            budget.remove(size, self.loop)

    def _drop_output(self) -> None:
        """Forget the buffered output (a close that will not send it)."""
        out = self.out
        budget = self.limits.budget
        if budget is not None:
            budget.let_go(self)
            if out:
                budget.remove(len(out), self.loop)
        out.clear()

    def _budget_released(self) -> None:
        """The budget that held this connection is under again (see ``_budget.py``)."""
        if self.congested and self._state is OPEN and self.buffered <= self.limits.low_water:
            self._uncongest()

    def _close_write(self) -> None:
        """All output is out: send FIN, then linger until the peer's EOF (bounded)."""
        loop = self.loop
        if self.eof or loop is None or not loop.running:  # no one to wait for, or no loop
            self._shutdown(None)
            return
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._shutdown(None)
            return
        self._transition(LINGERING)
        # While the tree stops, linger briefly: stop() waits for this close.
        delay = STOP_LINGER if loop.stopping else LINGER
        self._linger_timer = loop.call_later(delay, self._shutdown, None)
        self._update()

    def abort(self, error: BaseException | None = None) -> None:
        """Close now, dropping buffered output."""
        self._drop_output()
        self._early = None
        self._shutdown(error)

    def _shutdown(self, error: BaseException | None) -> None:
        if self._state is CLOSED:
            return
        self._transition(CLOSED)
        for timer in (self._handshake_timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        self._handshake_timer = self._linger_timer = None
        # Cancelling the watch lets go of its callback: with the line below, that breaks
        # the cycles through bound methods, so that refcounting frees a closed connection
        # at once instead of the cyclic GC later (it matters under churn).
        if self._watch is not None:
            self._watch.cancel()
        self._read_done_cb = None
        try:  # noqa: SIM105 - per connection (hot path)
            self.sock.close()
        except OSError:
            pass
        self._drop_output()
        self._early = None
        file, self._file = self._file, None
        if file is not None:
            file.done(error or ConnectionError("the connection closed before the file was sent"))
        self.owner.connection_lost(self, error)

    def __repr__(self) -> str:
        return f"<Connection {self.peer!r} {self._state.value} buffered={self.buffered}>"
