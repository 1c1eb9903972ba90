"""ThreadedTCPClient: a TCP connection serviced by its own thread, talking to the tree by events.

Rules:
* The socket belongs to one thread, which blocks in ``select`` on it and on a
  :class:`~netcomp.core.Wakeup`; the tree's loop never touches it. ``write`` events reach
  the thread through a thread-safe deque plus a wake-up; ``read``, ``connected``,
  ``disconnected``, ``unreachable`` and ``error`` are handed from the thread to the loop
  thread in one FIFO (``call_soon_threadsafe``), so they are fired in the order they
  happened.
* Sending is interleaved with receiving (a chunk per writable readiness), so a peer that
  echoes everything never deadlocks the two ends, whatever the sizes.
* At most ``max_pending_reads`` ``read`` events are in flight: beyond that the thread stops
  reading until the loop has handled them, so a fast peer cannot grow memory without bound
  (TCP flow control pushes back on the peer).
* Output is counted (``buffered``: written and not yet taken by the kernel). Above
  ``high_water`` it is ``congested``; when it falls to ``low_water`` again ``drained()``
  fires, so a producer can pace itself (a :func:`~netcomp.pipeline` does).
* Whatever happens (refused, reset, closed, even closed before it connected), the
  thread's end fires one final ``disconnected()``, after ``unreachable`` or ``error``.
* Everything given to it is sent: ``initial_send`` first, then every ``write`` in order,
  including writes fired before the connection was up. ``close()`` sends what is left,
  then closes; a write after the end is refused with ``error(NotConnected)``.
* ``close()`` or the manager's stop ends the thread; the stop waits for it (up to
  ``Manager.stop_timeout``) and the thread is joined with a bounded timeout.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import threading
import time
from collections import deque
from typing import Any

from ..core import BaseComponent, Event, Future, TimeoutError, Wakeup, handler
from ._address import link_names, set_nodelay
from ._checks import count, optional_seconds, seconds
from ._checks import port as check_port
from ._errors import ConnectTimeout, NotConnected
from ._events import connected, disconnected, drained, error, read, unreachable
from ._limits import ConnectionLimits
from ._replies import write_back
from ._waiters import AllClosed

__all__ = ["ThreadedTCPClient"]

_RECV_SIZE = 64 * 1024
_SEND_CHUNK = 256 * 1024


class ThreadedTCPClient(BaseComponent):
    """A TCP client whose socket lives on its own thread (Kamaelia's ThreadedTCPClient).

    It connects when the loop starts (or when it joins a running tree). Events in:
    ``write(data)``, ``close()``, ``pause()``/``resume()`` (stop/resume reading: a
    pipeline's backpressure). Out: ``connected(host, port)`` (with ``peername``,
    ``sockname``, ``destination`` attributes), ``read(data)`` (a handler's bytes result is
    sent back), ``drained()`` (output fell to ``low_water`` after passing ``high_water``),
    ``unreachable(host, port, reason)`` if the connect fails, ``error(err)``, and always
    a final ``disconnected()``. One connection per instance.
    """

    channel = "threadedclient"

    def __init__(
        self,
        host: str,
        port: int,
        initial_send: bytes | None = None,
        channel: Any = "threadedclient",
        connect_timeout: float | None = 10.0,
        close_timeout: float = 5.0,
        join_timeout: float = 5.0,
        max_pending_reads: int = 64,
        high_water: int = 1024 * 1024,
        low_water: int = 256 * 1024,
    ) -> None:
        """``close_timeout``: seconds a close may spend sending what is left and waiting
        for the peer's EOF. ``join_timeout``: seconds to wait for the thread to end.
        ``high_water``/``low_water``: output bytes above which it is ``congested`` and at
        which ``drained()`` fires again."""
        super().__init__(channel=channel)
        self.host = host
        self.initial_send = bytes(initial_send) if initial_send else b""
        self.port = check_port(port)
        self.connect_timeout = optional_seconds("connect_timeout", connect_timeout)
        self.close_timeout = seconds("close_timeout", close_timeout)
        self.join_timeout = seconds("join_timeout", join_timeout)
        self.max_pending_reads = count("max_pending_reads", max_pending_reads, 1)
        self.limits = ConnectionLimits(high_water, low_water, None, pause_reading=False)
        self._buffered = len(self.initial_send)  # written, not yet sent (under _out_lock)
        self._congested = False
        self._out_lock = threading.Lock()
        self._names: tuple[Any, Any] = (None, None)
        self._held = False  # paused by ``pause()``: the thread does not read
        self._inbox: deque[bytes] = deque()  # writes, loop thread -> I/O thread
        self._wakeup: Wakeup | None = None  # made with the thread
        self._io_thread: threading.Thread | None = None
        self._closing = False  # close() asked: send what is left, then end
        self._aborting = False  # the loop is gone: end now
        self._ended = False  # the thread has ended (seen on the loop thread)
        self._reads_in_flight = 0
        self._reads_lock = threading.Lock()
        self._ended_waiters = AllClosed()
        self._up = False

    @property
    def connected(self) -> bool:
        """Whether the connection is up."""
        return self._up

    @property
    def peername(self) -> Any:
        """The peer's address while connected (as ``socket.getpeername`` says), else None."""
        return self._names[0] if self._up else None

    @property
    def sockname(self) -> Any:
        """The local address of the link while connected, else None."""
        return self._names[1] if self._up else None

    @property
    def destination(self) -> tuple[str, int] | None:
        """``(host, port)`` as given, while connected, else None."""
        return (self.host, self.port) if self._up else None

    @property
    def buffered(self) -> int:
        """Bytes written and not yet taken by the kernel."""
        return self._buffered

    @property
    def congested(self) -> bool:
        """Whether output passed ``high_water`` and has not fallen to ``low_water`` yet."""
        return self._congested

    @property
    def alive(self) -> bool:
        """Whether the I/O thread is running."""
        thread = self._io_thread
        return thread is not None and thread.is_alive()

    # ------------------------------------------------------------ loop side
    @handler("started", channel="*")
    def _on_loop_started(self, manager: Any) -> None:
        self._start_thread()

    @handler("registered", channel="*")
    def _on_registered(self, component: Any, parent: Any) -> None:
        if component is self and self.loop.running:
            self._start_thread()

    def _start_thread(self) -> None:
        if self._io_thread is not None or self._ended:
            return
        if self._closing:  # closed before it ever started
            self._settle()
            return
        self._wakeup = Wakeup()
        self._io_thread = threading.Thread(
            target=self._run, name=f"netcomp-threadedclient-{self.host}:{self.port}", daemon=True
        )
        self._io_thread.start()

    @handler("write")
    def _on_write(self, data: bytes | bytearray | memoryview) -> None:
        if self._ended or self._closing:
            self.fire(error(NotConnected(f"{self!r}: write after close() or the end")))
            return
        if data:
            with self._out_lock:
                self._buffered += len(data)
                if self._buffered > self.limits.high_water:
                    self._congested = True
            self._inbox.append(bytes(data))
            self._nudge()

    @handler("pause")
    def _on_pause(self) -> None:
        # A pipeline's backpressure (the client is its source): stop reading.
        self._held = True

    @handler("resume")
    def _on_resume(self) -> None:
        self._held = False
        self._nudge()

    @handler("close")
    def _on_close(self) -> None:
        if self._closing or self._ended:
            return
        self._closing = True
        if self._io_thread is None:
            self._settle()
        else:
            self._nudge()

    @handler("stopped", channel="*")
    def _on_stopped(self, manager: Any) -> Future | None:
        self._on_close()
        # The loop waits (up to Manager.stop_timeout) for the thread to end.
        return self._ended_waiters.wait(not self._ended)

    def loop_ended(self) -> None:
        """The loop is gone: end the thread now and join it (bounded)."""
        self._aborting = True
        self._nudge()
        thread = self._io_thread
        if thread is not None:
            thread.join(self.join_timeout)
        if thread is None or not thread.is_alive():
            self._close_wakeup()

    def _nudge(self) -> None:
        if self._wakeup is not None:
            self._wakeup.wake()  # never blocks; a no-op once closed

    def _close_wakeup(self) -> None:
        if self._wakeup is not None:
            self._wakeup.close()

    def _thread_ended(self) -> None:
        """On the loop thread, once the I/O thread is done: join it, settle, report."""
        thread = self._io_thread
        if thread is not None:
            thread.join(self.join_timeout)
        self._settle()

    def _settle(self) -> None:
        if self._ended:
            return
        self._ended = True
        self._close_wakeup()
        unsent = sum(len(chunk) for chunk in self._inbox)
        self._inbox.clear()
        with self._out_lock:
            self._buffered = 0
            self._congested = False
        if unsent:
            self.fire(error(NotConnected(f"{self!r}: {unsent} bytes written too late to send")))
        self._ended_waiters.done()

    def _read_done(self, value: Any) -> None:
        """A ``read`` event is done (loop thread): send back bytes, let the thread read on."""
        write_back(value.value, self._send_back)
        with self._reads_lock:
            self._reads_in_flight -= 1
            wake = self._reads_in_flight == self.max_pending_reads - 1
        if wake:
            self._nudge()

    def _send_back(self, data: bytes | bytearray | memoryview) -> None:
        if data:
            self._on_write(data)

    # -------------------------------------------------------------- I/O thread
    def _emit(self, event: Event) -> None:
        """From the I/O thread: fire ``event`` on the loop thread, in order with the rest."""
        self.loop.call_soon_threadsafe(self._fire_here, event)

    def _fire_here(self, event: Event) -> None:
        value = self.fire(event)
        if event.name == "read":
            value.add_done_callback(self._read_done)

    def _run(self) -> None:
        sock: socket.socket | None = None
        try:
            try:
                sock = self._connect()
            except (OSError, UnicodeError) as err:  # UnicodeError: a name IDNA refuses
                if not (self._closing or self._aborting):
                    self._emit(unreachable(self.host, self.port, err))
                return
            if sock is None:  # closed while connecting
                return
            self._names = link_names(sock)
            self._up = True
            event = connected(self.host, self.port)
            event.peername, event.sockname = self._names
            event.destination = (self.host, self.port)
            self._emit(event)
            try:
                self._serve(sock)
            except OSError as err:
                self._emit(error(err))
            self._up = False
        finally:
            if sock is not None:
                sock.close()
            self._emit(disconnected())  # the one final event, whatever happened
            self.loop.call_soon_threadsafe(self._thread_ended)

    def _connect(self) -> socket.socket | None:
        """Resolve and connect (this thread may block); None if closed meanwhile."""
        deadline = (
            None if self.connect_timeout is None else time.monotonic() + self.connect_timeout
        )
        infos = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_STREAM)
        family, _kind, _proto, _name, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            set_nodelay(sock, family)
            code = sock.connect_ex(address)
            if code not in (0, errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
                raise OSError(code, os.strerror(code))
            with selectors.DefaultSelector() as selector:
                selector.register(sock, selectors.EVENT_WRITE)
                assert self._wakeup is not None
                selector.register(self._wakeup, selectors.EVENT_READ)
                while True:
                    if self._closing or self._aborting:
                        sock.close()
                        return None
                    timeout = None if deadline is None else deadline - time.monotonic()
                    if timeout is not None and timeout <= 0:
                        raise ConnectTimeout("connect timed out")
                    ready = selector.select(timeout)
                    if any(key.fileobj is sock for key, _mask in ready):
                        break
                    self._wakeup.drain()
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, os.strerror(code))
        except BaseException:
            sock.close()
            raise
        return sock

    def _serve(self, sock: socket.socket) -> None:
        """Exchange data until either side closes (or the loop is gone)."""
        out = bytearray(self.initial_send)
        inbox = self._inbox
        peer_done = False  # the peer's EOF
        shut = False  # our FIN sent
        deadline: float | None = None  # for a close: send the rest, see the peer's EOF
        wakeup = self._wakeup
        assert wakeup is not None
        with selectors.DefaultSelector() as selector:
            selector.register(wakeup, selectors.EVENT_READ)
            selector.register(sock, selectors.EVENT_READ)
            while True:
                while inbox:
                    out += inbox.popleft()
                if self._aborting:
                    return
                ending = self._closing or peer_done
                if ending and deadline is None:
                    deadline = time.monotonic() + self.close_timeout
                if ending and not out and not shut:
                    sock.shutdown(socket.SHUT_WR)
                    shut = True
                if shut and peer_done:
                    return
                with self._reads_lock:
                    room = self._reads_in_flight < self.max_pending_reads and not self._held
                mask = 0
                if not peer_done and (room or shut):
                    mask |= selectors.EVENT_READ
                if out:
                    mask |= selectors.EVENT_WRITE
                if mask:
                    selector.modify(sock, mask)
                else:
                    selector.unregister(sock)
                timeout = None if deadline is None else deadline - time.monotonic()
                if timeout is not None and timeout <= 0:
                    if out:
                        raise TimeoutError(f"close timed out with {len(out)} bytes unsent")
                    return
                for key, events in selector.select(timeout):
                    if key.fileobj is not sock:
                        wakeup.drain()
                        continue
                    if events & selectors.EVENT_READ:
                        data = sock.recv(_RECV_SIZE)
                        if not data:
                            peer_done = True
                        elif not shut:  # after our FIN, what arrives is dropped
                            self._deliver(data)
                    if events & selectors.EVENT_WRITE and out:
                        try:
                            sent = sock.send(memoryview(out)[:_SEND_CHUNK])
                        except (BlockingIOError, InterruptedError):
                            sent = 0
                        del out[:sent]
                        self._sent(sent)
                if not mask:
                    selector.register(sock, selectors.EVENT_READ)

    def _sent(self, size: int) -> None:
        """I/O thread: ``size`` bytes went out; say ``drained`` on falling to low water."""
        with self._out_lock:
            self._buffered -= size
            drained_now = self._congested and self._buffered <= self.limits.low_water
            if drained_now:
                self._congested = False
        if drained_now:
            self._emit(drained())

    def _deliver(self, data: bytes) -> None:
        with self._reads_lock:
            self._reads_in_flight += 1
        self._emit(read(data))

    def __repr__(self) -> str:
        state = "connected" if self._up else "ended" if self._ended else "idle"
        return f"<ThreadedTCPClient/{self.channel} {self.host}:{self.port} {state}>"
