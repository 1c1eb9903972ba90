"""One non-blocking stream socket: buffered output with water marks, optional TLS.

Rules (the invariants every server and client relies on):
* Output goes straight to the kernel when nothing is buffered; the rest is kept in one
  ``bytearray`` (front deletion is amortised O(1)) and flushed when the socket is writable.
* Above ``high_water`` buffered bytes the connection stops reading (the peer is not serviced
  until it takes our output), so a peer that never reads cannot grow our memory without
  bound; at or below ``low_water`` reading resumes and the owner hears ``drained``.
* ``close()`` sends what is buffered, then closes. The peer's EOF stops reading but output
  still drains (half-close); the owner decides when to close.
* A closing connection keeps reading (and drops what it reads): a peer blocked on sending to
  us could never take our last output, and closing a socket with unread input makes the
  kernel reset the link and drop what it had not yet sent. Once the output is out it sends
  FIN and lingers until the peer's EOF (at most ``LINGER`` seconds), then closes.
* A TLS handshake is driven by readiness only (never blocks), bounded by a timeout that the
  owner arms. TLS data the SSL object has already buffered is delivered at once (``pending``).
* Every OSError is mapped once, here: it aborts this connection only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import socket
import ssl
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ._errors import HandshakeTimeout
from ._limits import ConnectionLimits
from ._replies import write_back

if TYPE_CHECKING:
    from ..core import Loop, TimerHandle, Value, Watch

__all__ = ["Connection"]

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE
_RECV_SIZE = 256 * 1024
_TLS_SEND_CHUNK = 256 * 1024
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
#: Seconds a closed connection waits for the peer's EOF after sending its FIN.
LINGER = 5.0
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
        _local.view = memoryview(bytearray(_RECV_SIZE))
        return _local.view  # type: ignore[no-any-return]


def _close_half_wrapped(err: BaseException) -> None:
    """Close the SSLSocket a failed ``wrap_socket`` made and dropped.

    ``SSLSocket._create`` moves the descriptor into the new object before it checks the
    connection; when that check raises (a reset or refused link), nothing closes it.
    """
    tb = err.__traceback__
    while tb is not None:
        candidate = tb.tb_frame.f_locals.get("self")
        if isinstance(candidate, ssl.SSLSocket) and tb.tb_frame.f_code.co_name == "_create":
            with contextlib.suppress(OSError):
                candidate.close()
        tb = tb.tb_next


class Connection:
    """A connected (or connecting) stream socket serviced by its loop's selector."""

    __slots__ = (
        "_file",
        "_handshake_timer",
        "_linger_timer",
        "_read_done_cb",
        "_watch",
        "closed",
        "closing",
        "congested",
        "connecting",
        "eof",
        "handle",
        "handshaking",
        "held",
        "last_read",
        "limits",
        "loop",
        "out",
        "owner",
        "paused",
        "peer",
        "sock",
        "tls",
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
        self.handle = sock  # stays the user's handle across a TLS upgrade
        self.peer = peer
        self.limits = limits
        self.out = bytearray()
        # A file being sent with os.sendfile: [fd, offset, remaining, done, bytes of
        # ``out`` that go before it].
        self._file: list[Any] | None = None
        self.last_read: Value | None = None
        self._read_done_cb: Callable[[Value], None] | None = self._read_done
        self.loop: Loop | None = None
        self._watch: Watch | None = None
        self._handshake_timer: TimerHandle | None = None
        self._linger_timer: TimerHandle | None = None
        self.connecting = connecting
        self.handshaking = False
        self.paused = False
        self.held = False
        self.congested = False
        self.closing = False
        self.closed = False
        self.eof = False
        self.tls = False

    # ----------------------------------------------------------- plumbing
    def attach(self, loop: Loop) -> None:
        """Start being serviced by ``loop`` (moving from a previous loop)."""
        if self.closed:
            return
        self.loop = loop
        if self._watch is None:
            self._watch = loop.watch(self.sock, 0, self._on_ready)
        else:
            self._watch.move(loop)
        self._update()

    def _update(self) -> None:
        watch = self._watch
        if watch is None or self.closed:
            return
        if self.connecting:
            mask = WRITE
        elif self.handshaking:
            mask = watch.events or READ
        else:
            mask = 0
            if not self.eof and (self.closing or not (self.paused or self.held)):
                mask |= READ
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
            sock = self.sock
            if not held and self.tls and self.loop is not None and sock.pending():  # type: ignore[attr-defined]
                self.loop.call_soon(self._read)  # decrypted bytes wait in the TLS object

    def _set_mask(self, mask: int) -> None:
        if self._watch is not None:
            self._watch.modify(mask)

    def _on_ready(self, mask: int) -> None:
        if self.connecting:
            self._finish_connect()
            return
        if self.handshaking:
            self._handshake()
            return
        if mask & READ:
            self._read()
        if mask & WRITE and not self.closed:
            self._flush()

    # ------------------------------------------------------------ connect
    def _finish_connect(self) -> None:
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._shutdown(OSError(code, errno.errorcode.get(code, str(code))))
            return
        self.connecting = False
        if self.handshaking:
            self._set_mask(READ | WRITE)
            self._handshake()
        else:
            self._update()
            self.owner.connection_made(self)

    # ---------------------------------------------------------------- TLS
    def start_tls(
        self, context: ssl.SSLContext, server_side: bool, server_hostname: str | None = None
    ) -> None:
        """Wrap the socket and run the handshake (now, or once connected)."""
        if self.closed or self.tls:
            return
        loop = self.loop
        if self._watch is not None:
            self._watch.cancel()  # the wrapped socket is a new file object
            self._watch = None
        try:
            self.sock = context.wrap_socket(
                self.sock,
                server_side=server_side,
                server_hostname=server_hostname,
                do_handshake_on_connect=False,
            )
        except (OSError, ValueError) as err:  # e.g. the peer reset the link just before
            _close_half_wrapped(err)
            self._shutdown(err)
            return
        if loop is not None:
            self._watch = loop.watch(self.sock, 0, self._on_ready)
        self.tls = True
        self.handshaking = True
        if loop is not None and self.limits.handshake_timeout is not None:
            self._handshake_timer = loop.call_later(
                self.limits.handshake_timeout, self._handshake_expired
            )
        if not self.connecting:
            if loop is not None:
                self._set_mask(READ)
            self._handshake()
        else:
            self._update()

    def _handshake(self) -> None:
        sock = self.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._set_mask(READ)
            return
        except ssl.SSLWantWriteError:
            self._set_mask(WRITE)
            return
        except (OSError, ValueError) as err:  # ssl.SSLError is an OSError
            self._shutdown(err)
            return
        self.handshaking = False
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        self._update()
        self.owner.connection_made(self)
        if sock.pending():
            self._read()

    def _handshake_expired(self) -> None:
        if self.handshaking and not self.closed:
            self._shutdown(HandshakeTimeout("TLS handshake timed out"))

    # --------------------------------------------------------------- read
    def _read(self) -> None:
        if self._linger_timer is not None:
            self._linger()
            return
        sock = self.sock
        view = _recv_view()
        try:
            # recv_into one per-thread buffer: recv(256 KiB) would have malloc map and unmap
            # a fresh block per read, and a small read would keep a whole page alive.
            count = sock.recv_into(view)
            data = bytes(view[:count])
        except _WOULD_BLOCK:
            return
        except ssl.SSLEOFError:
            data = b""  # a TLS peer that closed without close_notify: treat as EOF
        except (OSError, ValueError) as err:
            self._shutdown(err)
            return
        if not data:
            self.eof = True
            self._update()
            if not self.closing:
                self.owner.eof_received(self)
            return
        if self.closing:
            return  # input after close() is dropped
        self.owner.data_received(self, data)
        if self.tls:
            sock = self.sock
            assert isinstance(sock, ssl.SSLSocket)
            while not self.closed and not (self.paused or self.held) and sock.pending():
                try:
                    more = sock.recv(_RECV_SIZE)
                except _WOULD_BLOCK:
                    return
                except (OSError, ValueError) as err:
                    self._shutdown(err)
                    return
                if not more:
                    return
                if not self.closing:
                    self.owner.data_received(self, more)

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
        if result is not None and not self.closed:
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
        """Send ``data`` (or buffer what the kernel won't take now). False if closed."""
        if self.closed or self.closing:
            return False
        if not data:
            return True
        out = self.out
        if not out and not self.connecting and not self.handshaking and self._file is None:
            try:
                if self.tls:
                    sent = self.sock.send(data[:_TLS_SEND_CHUNK])
                else:
                    sent = self.sock.send(data)
            except _WOULD_BLOCK:
                sent = 0
            except (OSError, ValueError) as err:
                self._shutdown(err)
                return False
            if sent == len(data):
                return True
            out += memoryview(data)[sent:]
        else:
            out += data
        if not self.congested and len(out) > self.limits.high_water:
            self.congested = True
            self.paused = self.limits.pause_reading
        self._update()
        return True

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
        sockets only: False for TLS, a closed connection or a file already in progress.
        """
        if self.closed or self.closing or self.tls or self._file is not None:
            return False
        self._file = [fd, offset, count, done, len(self.out)]
        if not self.out and not self.connecting and not self.handshaking:
            self._flush_file()
        self._update()
        return True

    def _flush_file(self) -> bool:
        """Advance the file in progress; True once it is out (or there is none)."""
        file = self._file
        if file is None:
            return True
        sock = self.sock
        try:
            if file[4]:  # buffered bytes that go before the file
                sent = sock.send(memoryview(self.out)[: file[4]])
                del self.out[:sent]
                file[4] -= sent
                if file[4]:
                    return False
            sent = os.sendfile(sock.fileno(), file[0], file[1], file[2])
        except _WOULD_BLOCK:
            return False
        except (OSError, ValueError) as err:
            self._shutdown(err)
            return False
        if sent == 0:  # the file is shorter than promised
            self._shutdown(EOFError(f"file ended {file[2]} bytes early"))
            return False
        file[1] += sent
        file[2] -= sent
        if file[2]:
            return False
        self._file = None
        file[3](None)
        return True

    def _flush(self) -> None:
        if self._file is not None and not self._flush_file():
            if not self.closed:
                self._update()
            return
        out = self.out
        sock = self.sock
        while out:
            try:
                if self.tls:
                    sent = sock.send(out[:_TLS_SEND_CHUNK])
                else:
                    sent = sock.send(out)
            except _WOULD_BLOCK:
                break
            except (OSError, ValueError) as err:
                self._shutdown(err)
                return
            if not sent:
                break
            del out[:sent]
            if not self.tls:
                break  # one send per readiness: fair to other connections
        if self.congested and len(out) <= self.limits.low_water:
            self.congested = False
            self.paused = False
            self._update()
            self.owner.connection_drained(self)
        if not out and self.closing and self._file is None:
            self._close_write()
            return
        self._update()

    @property
    def buffered(self) -> int:
        """Bytes waiting to be sent."""
        return len(self.out)

    # -------------------------------------------------------------- close
    def close(self) -> None:
        """Close after sending what is buffered."""
        if self.closed:
            return
        self.closing = True
        loop = self.loop
        if self.connecting:
            self._shutdown(None)
        elif not self.out and self._file is None:
            self._close_write()
        elif loop is None or not loop.running:
            # No loop to flush later: one last try, then close.
            if not self.handshaking:
                self._flush()
            self._shutdown(None)
        else:
            self._update()

    def _close_write(self) -> None:
        """All output is out: send FIN, then linger until the peer's EOF (bounded)."""
        loop = self.loop
        if self.closed:
            return
        ending = loop is None or not loop.running  # no loop: nothing would linger
        if self._linger_timer is not None:
            if ending:
                self._shutdown(None)
            return
        if self.tls and not self.handshaking:  # close_notify: the peer can tell it from a cut
            with contextlib.suppress(OSError, ValueError):
                self.sock.unwrap()  # type: ignore[attr-defined]
        if self.eof or self.handshaking or ending or loop is None:
            self._shutdown(None)
            return
        try:  # the plain socket method: SSLSocket.shutdown() would drop the TLS state
            socket.socket.shutdown(self.sock, socket.SHUT_WR)
        except OSError:
            self._shutdown(None)
            return
        # While the tree stops, linger briefly: stop() waits for this close.
        delay = STOP_LINGER if loop.stopping else LINGER
        self._linger_timer = loop.call_later(delay, self._shutdown, None)
        self._update()

    def _linger(self) -> None:
        """After our FIN: drop input (below any TLS layer) until the peer's EOF."""
        try:
            data = socket.socket.recv(self.sock, _RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._shutdown(None)

    def abort(self, error: BaseException | None = None) -> None:
        """Close now, dropping buffered output."""
        self.out.clear()
        self._shutdown(error)

    def _shutdown(self, error: BaseException | None) -> None:
        if self.closed:
            return
        self.closed = True
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        # Cancelling the watch lets go of its callback: with the line below, that breaks
        # the cycles through bound methods, so that refcounting frees a closed connection
        # at once instead of the cyclic GC later (it matters under churn).
        if self._watch is not None:
            self._watch.cancel()
        self._read_done_cb = None
        with contextlib.suppress(OSError):
            self.sock.close()
        file, self._file = self._file, None
        if file is not None:
            file[3](error or ConnectionError("the connection closed before the file was sent"))
        self.owner.connection_lost(self, error)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "connecting" if self.connecting else "open"
        return f"<Connection {self.peer!r} {state} buffered={len(self.out)}>"
