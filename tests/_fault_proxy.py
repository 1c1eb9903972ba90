"""Real faults for the reconnecting-client tests: a server that stops and restarts on the same
port, and a fault-injecting TCP proxy (delay, stall, reset, drop after N bytes, refuse).

* A port is *held* for the helper's whole life by a socket bound with ``SO_REUSEPORT`` that
  never listens: while no listener is open, connects are refused by the kernel (a real
  "server down"), nobody else can bind the port (the holder lacks ``SO_REUSEADDR``), and a
  restart binds a new listener beside the holder. No bind-close-rebind race.
* Each helper runs one thread with one selector; the test thread changes modes with
  :meth:`IOThread.call`, which runs a function on that thread and waits for it (bounded),
  so a mode is in force when the call returns. Waits on what happened (bytes received,
  connections accepted) are condition waits with a timeout. Nothing sleeps.
* ``close()`` closes every socket and joins the thread (bounded), failing if it hangs.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import selectors
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE
CHUNK = 64 * 1024
#: Output a proxy keeps for one side before it stops reading the other.
PROXY_HIGH_WATER = 1024 * 1024


def hold_port(host: str = "127.0.0.1") -> socket.socket:
    """A socket reserving a free port on ``host`` (see the module's rules)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    try:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((host, 0))
    except BaseException:
        holder.close()
        raise
    return holder


def listen_on(holder: socket.socket, backlog: int = 64) -> socket.socket:
    """A non-blocking listener on the port ``holder`` reserves."""
    listener = socket.socket(holder.family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(holder.getsockname()[:2])
        listener.listen(backlog)
        listener.setblocking(False)
    except BaseException:
        listener.close()
        raise
    return listener


def reset_close(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class IOThread:
    """One thread, one selector, timers, and functions run on it from the test thread."""

    def __init__(self, name: str) -> None:
        self.selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r, READ, None)
        self._calls: deque[Callable[[], None]] = deque()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._ending = False
        self.cond = threading.Condition()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.thread.start()

    # ---------------------------------------------------------- test thread side
    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 5.0) -> Any:
        """Run ``fn(*args)`` on the I/O thread; return its result (or raise its error)."""
        done = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["result"] = fn(*args)
            except BaseException as err:
                box["error"] = err
            finally:
                done.set()

        self._calls.append(run)
        self._wake()
        if not done.wait(timeout):
            raise TimeoutError(f"{fn!r} did not run on {self.thread.name} within {timeout} s")
        if "error" in box:
            raise box["error"]
        return box.get("result")

    def wait_until(
        self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = ""
    ) -> None:
        """Block until ``predicate()`` (checked under the lock) holds; TimeoutError if not."""
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                raise TimeoutError(f"{self.thread.name}: no {what or predicate!r} in {timeout} s")

    def close(self) -> None:
        """Close every socket (on the thread), end the thread and join it (bounded)."""
        if self.thread.is_alive():
            with contextlib.suppress(TimeoutError):
                self.call(self._close_sockets)
            self._ending = True
            self._wake()
            self.thread.join(5)
        assert not self.thread.is_alive(), f"{self.thread.name} did not end"
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()
        assert not self.errors, self.errors

    def __enter__(self) -> IOThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ I/O thread side
    def later(self, delay: float, fn: Callable[[], None]) -> None:
        """On the I/O thread: run ``fn`` after ``delay`` seconds."""
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), fn))

    def notify(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _close_sockets(self) -> None:
        """Subclasses close what they own."""

    def _loop(self) -> None:
        while not self._ending:
            timeout = None
            if self._timers:
                timeout = max(0.0, self._timers[0][0] - time.monotonic())
            for key, mask in self.selector.select(timeout):
                if key.data is None:
                    with contextlib.suppress(OSError):
                        while self._wake_r.recv(4096):
                            pass
                    continue
                self._guard(key.data, mask)
            while self._calls:
                self._calls.popleft()()
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                self._guard(heapq.heappop(self._timers)[2])

    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as err:  # a helper bug must fail the test, not hang it
            self.errors.append(err)
            self.notify()


class _Conn:
    """One accepted connection of a :class:`RestartableServer`."""

    __slots__ = ("data", "eof", "out", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = bytearray()
        self.out = bytearray()
        self.eof = False


class RestartableServer(IOThread):
    """A TCP server on a held port: ``stop()`` refuses new connects and ends the open ones,
    ``start()`` listens again on the same port. Records what it receives; echoes with
    ``echo=True``."""

    def __init__(self, echo: bool = False, listening: bool = True, host: str = "127.0.0.1"):
        self.holder = hold_port(host)
        self.address: tuple[str, int] = self.holder.getsockname()[:2]
        self.echo = echo
        self.listener: socket.socket | None = None
        self.conns: list[_Conn] = []  # every connection ever accepted, in order
        self.received = bytearray()  # everything received, in arrival order
        self.eofs = 0  # connections the client ended (FIN or reset)
        super().__init__(f"server-{self.address[1]}")
        if listening:
            self.start()

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def accepted(self) -> int:
        return len(self.conns)

    def start(self) -> None:
        """Listen (again) on the held port."""
        self.call(self._listen)

    def stop(self, reset: bool = False) -> None:
        """Stop listening (connects are refused) and end every open connection: FIN, or RST
        with ``reset``."""
        self.call(self._stop, reset)

    def send(self, data: bytes) -> None:
        """Send ``data`` on every open connection."""
        self.call(self._send_all, data)

    def open_connections(self) -> int:
        return self.call(lambda: sum(1 for c in self.conns if c.sock.fileno() >= 0))

    def wait_received(self, size: int, timeout: float = 5.0) -> bytes:
        self.wait_until(lambda: len(self.received) >= size, timeout, f"{size} bytes received")
        with self.cond:
            return bytes(self.received)

    def wait_accepted(self, count: int, timeout: float = 5.0) -> None:
        self.wait_until(lambda: len(self.conns) >= count, timeout, f"{count} accepted")

    def wait_eofs(self, count: int, timeout: float = 5.0) -> None:
        self.wait_until(lambda: self.eofs >= count, timeout, f"{count} client closes")

    # ------------------------------------------------------------ I/O thread
    def _listen(self) -> None:
        if self.listener is None:
            self.listener = listen_on(self.holder)
            self.selector.register(self.listener, READ, self._accept)

    def _stop(self, reset: bool) -> None:
        if self.listener is not None:
            self.selector.unregister(self.listener)
            self.listener.close()
            self.listener = None
        for conn in self.conns:
            self._end(conn, reset)

    def _end(self, conn: _Conn, reset: bool = False) -> None:
        if conn.sock.fileno() < 0:
            return
        self.selector.unregister(conn.sock)
        if reset:
            reset_close(conn.sock)
        else:
            conn.sock.close()

    def _close_sockets(self) -> None:
        self._stop(reset=True)
        self.holder.close()

    def _accept(self, mask: int) -> None:
        assert self.listener is not None
        while True:
            try:
                sock, _address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            conn = _Conn(sock)
            with self.cond:
                self.conns.append(conn)
                self.cond.notify_all()
            self.selector.register(sock, READ, lambda m, c=conn: self._ready(c, m))

    def _ready(self, conn: _Conn, mask: int) -> None:
        if mask & READ:
            try:
                data = conn.sock.recv(CHUNK)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data == b"":
                self._end(conn)
                with self.cond:
                    conn.eof = True
                    self.eofs += 1
                    self.cond.notify_all()
                return
            if data:
                with self.cond:
                    conn.data += data
                    self.received += data
                    self.cond.notify_all()
                if self.echo:
                    conn.out += data
        if conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._end(conn)
                return
            del conn.out[:sent]
        if conn.sock.fileno() >= 0:
            self.selector.modify(
                conn.sock, READ | (WRITE if conn.out else 0), lambda m, c=conn: self._ready(c, m)
            )

    def _send_all(self, data: bytes) -> None:
        for conn in self.conns:
            if conn.sock.fileno() >= 0:
                conn.out += data
                self._ready(conn, 0)


class _Pair:
    """A proxied connection: the client side (down) and the upstream side (up)."""

    __slots__ = (
        "allowance",
        "down",
        "down_eof",
        "down_out",
        "up",
        "up_connected",
        "up_eof",
        "up_out",
    )

    def __init__(self, down: socket.socket, allowance: int | None) -> None:
        self.down = down
        self.up: socket.socket | None = None
        self.up_connected = False
        self.down_out = bytearray()  # to the client
        self.up_out = bytearray()  # to the upstream
        self.down_eof = False
        self.up_eof = False
        self.allowance = allowance  # client bytes still forwarded before the cut


class FaultProxy(IOThread):
    """A TCP proxy on a held port in front of ``upstream``, with faults for new connections.

    Modes (each applies to connections accepted after the call returns):
    ``forward(delay=0)`` forwards both ways, each chunk ``delay`` seconds late;
    ``stall()`` accepts (the kernel completes the handshake) and then never reads, forwards
    or answers anything: a black hole; ``reset()`` accepts and resets at once;
    ``drop_after(n)`` forwards the client's first ``n`` bytes, then resets the client (the
    upstream sees a plain close);
    ``refuse()`` stops listening (connects refused) and the other modes listen again.
    ``cut()`` ends every open pair (RST by default).
    """

    def __init__(self, upstream: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.holder = hold_port(host)
        self.address: tuple[str, int] = self.holder.getsockname()[:2]
        self.listener: socket.socket | None = None
        self.mode = "forward"
        self.delay = 0.0
        self.limit: int | None = None
        self.pairs: list[_Pair] = []
        self.accepted = 0
        self.forwarded_up = 0  # client bytes handed to the upstream
        self.forwarded_down = 0
        super().__init__(f"proxy-{self.address[1]}")
        self.forward()

    @property
    def port(self) -> int:
        return self.address[1]

    # ---------------------------------------------------------- test thread side
    def forward(self, delay: float = 0.0) -> None:
        self.call(self._set, "forward", delay, None)

    def stall(self) -> None:
        self.call(self._set, "stall", 0.0, None)

    def reset(self) -> None:
        self.call(self._set, "reset", 0.0, None)

    def drop_after(self, size: int) -> None:
        self.call(self._set, "forward", 0.0, size)

    def refuse(self) -> None:
        self.call(self._set, "refuse", 0.0, None)

    def cut(self, reset: bool = True) -> None:
        self.call(self._cut_all, reset)

    def wait_accepted(self, count: int, timeout: float = 5.0) -> None:
        self.wait_until(lambda: self.accepted >= count, timeout, f"{count} accepted")

    def wait_forwarded_up(self, size: int, timeout: float = 5.0) -> None:
        self.wait_until(lambda: self.forwarded_up >= size, timeout, f"{size} bytes forwarded")

    # ------------------------------------------------------------ I/O thread
    def _set(self, mode: str, delay: float, limit: int | None) -> None:
        self.mode, self.delay, self.limit = mode, delay, limit
        if mode == "refuse":
            if self.listener is not None:
                self.selector.unregister(self.listener)
                self.listener.close()
                self.listener = None
        elif self.listener is None:
            self.listener = listen_on(self.holder)
            self.selector.register(self.listener, READ, self._accept)

    def _close_sockets(self) -> None:
        self._set("refuse", 0.0, None)
        self._cut_all(True)
        self.holder.close()

    def _cut_all(self, reset: bool) -> None:
        for pair in list(self.pairs):
            self._drop(pair, reset)

    def _accept(self, mask: int) -> None:
        assert self.listener is not None
        while True:
            try:
                down, _address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            down.setblocking(False)
            with self.cond:
                self.accepted += 1
                self.cond.notify_all()
            if self.mode == "reset":
                reset_close(down)
                continue
            pair = _Pair(down, self.limit)
            self.pairs.append(pair)
            if self.mode == "stall":
                continue  # never watched: held open, unread, until cut() or close()
            up = socket.socket(down.family, socket.SOCK_STREAM)
            up.setblocking(False)
            up.connect_ex(self.upstream)
            pair.up = up
            self._update(pair)

    def _drop(self, pair: _Pair, reset: bool) -> None:
        if pair in self.pairs:
            self.pairs.remove(pair)
        for sock in (pair.down, pair.up):
            if sock is None or sock.fileno() < 0:
                continue
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(sock)
            if reset:
                reset_close(sock)
            else:
                sock.close()

    def _down_ready(self, pair: _Pair, mask: int) -> None:
        if mask & READ:
            data = self._recv(pair, pair.down)
            if data is None:
                return
            if not data:
                pair.down_eof = True
            else:
                if pair.allowance is not None:
                    data = data[: pair.allowance]
                    pair.allowance -= len(data)
                self._pass(pair, data, to_up=True)
        if mask & WRITE:
            self._send(pair, pair.down, pair.down_out)
        self._update(pair)

    def _up_ready(self, pair: _Pair, mask: int) -> None:
        assert pair.up is not None
        if not pair.up_connected:
            if pair.up.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self._drop(pair, True)  # upstream refused: the client sees a reset
                return
            pair.up_connected = True
        if mask & READ:
            data = self._recv(pair, pair.up)
            if data is None:
                return
            if not data:
                pair.up_eof = True
            else:
                self._pass(pair, data, to_up=False)
        if mask & WRITE:
            self._send(pair, pair.up, pair.up_out)
        self._update(pair)

    def _recv(self, pair: _Pair, sock: socket.socket) -> bytes | None:
        try:
            return sock.recv(CHUNK)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            self._drop(pair, True)
            return None

    def _pass(self, pair: _Pair, data: bytes, to_up: bool) -> None:
        def deliver() -> None:
            if pair not in self.pairs:
                return
            (pair.up_out if to_up else pair.down_out).extend(data)
            self._update(pair)

        if self.delay:
            self.later(self.delay, deliver)
        else:
            deliver()

    def _send(self, pair: _Pair, sock: socket.socket, out: bytearray) -> None:
        if not out:
            return
        try:
            sent = sock.send(out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(pair, True)
            return
        del out[:sent]
        with self.cond:
            if sock is pair.up:
                self.forwarded_up += sent
            else:
                self.forwarded_down += sent
            self.cond.notify_all()

    def _update(self, pair: _Pair) -> None:
        """Watch each side for what it needs; pass EOFs on and cut once output is out."""
        up = pair.up
        if pair not in self.pairs or up is None:
            return
        if pair.up_connected:
            if pair.allowance == 0 and not pair.up_out:
                # drop_after(n): n bytes delivered; the client is reset, the upstream gets
                # a plain close (so it keeps what it was given)
                self.pairs.remove(pair)
                for sock in (pair.down, up):
                    self.selector.unregister(sock)
                reset_close(pair.down)
                up.close()
                return
            if pair.down_eof and not pair.up_out:
                with contextlib.suppress(OSError):
                    up.shutdown(socket.SHUT_WR)
            if pair.up_eof and not pair.down_out:
                with contextlib.suppress(OSError):
                    pair.down.shutdown(socket.SHUT_WR)
            if pair.down_eof and pair.up_eof and not pair.up_out and not pair.down_out:
                self._drop(pair, False)
                return
        room_up = len(pair.up_out) < PROXY_HIGH_WATER
        room_down = len(pair.down_out) < PROXY_HIGH_WATER
        down_mask = (READ if not pair.down_eof and room_up else 0) | (
            WRITE if pair.down_out else 0
        )
        if not pair.up_connected:
            up_mask = WRITE
        else:
            up_mask = (READ if not pair.up_eof and room_down else 0) | (
                WRITE if pair.up_out else 0
            )
        self._watch(pair.down, down_mask, lambda m, p=pair: self._down_ready(p, m))
        self._watch(up, up_mask, lambda m, p=pair: self._up_ready(p, m))

    def _watch(self, sock: socket.socket, mask: int, callback: Callable[[int], None]) -> None:
        try:
            key = self.selector.get_key(sock)
        except (KeyError, ValueError):
            key = None
        if not mask:
            if key is not None:
                self.selector.unregister(sock)
        elif key is None:
            self.selector.register(sock, mask, callback)
        else:
            self.selector.modify(sock, mask, callback)


@contextlib.contextmanager
def full_backlog() -> Iterator[tuple[str, int]]:
    """A listener whose accept queue is full: SYNs are dropped, connects stay in progress."""
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        for _ in range(2):
            filler = stack.enter_context(socket.socket())
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
        yield listener.getsockname()[:2]
