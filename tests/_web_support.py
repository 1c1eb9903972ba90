"""Helpers shared by the web server tests (``test_web_server``, ``test_web_limits``...).

* :func:`serve` runs a web server on 127.0.0.1 (port 0) in a running tree and yields a
  :class:`Site` (port, server, recorder); with ``virtual=True`` on virtual time, which
  ``site.vt`` (a :class:`netcomp.testing.VirtualTime`) moves.
* :class:`OnRequest` answers ``request`` events with a plain function (sync or async).
* :class:`Client` is a raw-socket client: ``send`` any bytes, then read responses parsed
  by h11, a strict HTTP/1.1 client, so every response netcomp sends is also validated.
  ``request`` sends a well-formed request through h11 as well.
* :func:`curl` runs /usr/bin/curl with a hard timeout.

Nothing here sleeps to synchronise: reads are socket reads with a timeout; waits are on
conditions with a deadline.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import h11

from netcomp import Component, Event, Future, Manager, handler
from netcomp.testing import Recorder, VirtualTime, running
from netcomp.web import BaseServer, HTTPLimits, Server

TIMEOUT = 5.0
CURL = shutil.which("curl") or "/usr/bin/curl"

Handler = Callable[[Any, Any], Any]


@dataclass
class Site:
    """A running web server: where it listens and what its tree recorded."""

    server: BaseServer
    manager: Manager
    recorder: Recorder
    virtual_time: VirtualTime | None = None

    @property
    def vt(self) -> VirtualTime:
        """What moves the site's virtual time (``serve(virtual=True)``)."""
        assert self.virtual_time is not None, "serve(..., virtual=True) for virtual time"
        return self.virtual_time

    @property
    def port(self) -> int:
        return int(self.server.port)

    @property
    def url(self) -> str:
        return str(self.server.url)

    def client(self, timeout: float = TIMEOUT) -> Client:
        return Client(self.port, timeout)


class OnRequest(Component):
    """Answers every ``request`` on ``channel`` with ``func(request, response)``.

    ``func`` may be a plain function or an ``async def`` (its coroutine runs as a task).
    """

    def init(self, func: Handler, channel: Any = "web") -> None:
        self.channel = channel
        self.func = func

    @handler("request")
    def _answer(self, request: Any, response: Any) -> Any:
        return self.func(request, response)


def raw_request(
    target: str = "/", *fields: str, method: str = "GET", version: str = "1.1"
) -> bytes:
    """A request head as bytes (with ``Host: test`` for HTTP/1.1 unless given)."""
    lines = [f"{method} {target} HTTP/{version}"]
    if version == "1.1" and not any(f.lower().startswith("host:") for f in fields):
        lines.append("Host: test")
    lines.extend(fields)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def small_buffer_listener() -> socket.socket:
    """A listening socket whose accepted connections have a small, fixed send buffer
    (32 KiB), so that backpressure shows well before loopback's autotuned megabytes."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
    listener.bind(("127.0.0.1", 0))
    return listener


@contextlib.contextmanager
def serve(
    *components: Any,
    limits: HTTPLimits | None = None,
    dispatcher: bool = False,
    check_errors: bool = True,
    virtual: bool = False,
    catch_all: bool = True,
    record_requests: bool = True,
    **options: Any,
) -> Iterator[Site]:
    """Run a server (with a Dispatcher if ``dispatcher``) with ``components`` under it.

    A plain function in ``components`` becomes an :class:`OnRequest`. ``check_errors``:
    fail on an ``exception`` event (see :func:`netcomp.testing.running`). ``virtual``: on
    virtual time that only ``site.vt`` moves (timeouts never pass by themselves).
    ``catch_all=False``: record with a :class:`NamedRecorder` (no catch-all handler);
    with ``record_requests=False`` too, it does not hear ``request`` either (then a
    Dispatcher alone answers without the event: the server's fast path).
    """
    manager = Manager()
    virtual_time = VirtualTime(manager.loop) if virtual else None
    kind = Server if dispatcher else BaseServer
    server = kind(("127.0.0.1", 0), limits=limits, **options)
    server.register(manager)
    for component in components:
        if not isinstance(component, Component) and callable(component):
            component = OnRequest(component)
        component.register(server)
    named = None
    if not catch_all:
        named = (NamedRecorder() if record_requests else BareRecorder()).register(manager)
    with running(manager, check_errors=check_errors) as recorder:
        if named is not None:
            recorder.unregister()  # no catch-all handler left: see NamedRecorder
            named.wait_for("unregistered", predicate=lambda e: e.args[0] is recorder)
            recorder = named
        yield Site(server, manager, recorder, virtual_time)
    if named is not None and check_errors:
        assert named.errors == [], f"handlers raised: {named.errors!r}"


class NamedRecorder(Recorder):
    """A :class:`Recorder` that hears only the events it names (``exception``,
    ``registered``, ``unregistered``, ``request``), not every event: with no catch-all
    handler in the tree, a plain controller action runs without an event of its own
    (the Dispatcher's fast path), which a catch-all would see missing."""

    def __init__(self) -> None:
        super().__init__(channel="*", names=("exception", "registered", "unregistered", "request"))

    @handler("exception", "registered", "unregistered", "request", priority=1000)
    def _record(self, event: Event, *args: Any, **kwargs: Any) -> None:
        super()._record(event, *args, **kwargs)


class BareRecorder(Recorder):
    """A :class:`NamedRecorder` that does not hear ``request`` either: a Dispatcher alone
    then answers requests without the event (the server's fast path)."""

    def __init__(self) -> None:
        super().__init__(channel="*", names=("exception", "registered", "unregistered"))

    @handler("exception", "registered", "unregistered", priority=1000)
    def _record(self, event: Event, *args: Any, **kwargs: Any) -> None:
        super()._record(event, *args, **kwargs)


# ------------------------------------------------------------------ responses
@dataclass
class Reply:
    """One response as h11 parsed it."""

    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    informational: list[int] = field(default_factory=list)
    chunked: bool = False

    def header(self, name: str) -> str | None:
        """The first value of ``name`` (case-insensitive), or None."""
        key = name.lower()
        for n, v in self.headers:
            if n == key:
                return v
        return None

    def all(self, name: str) -> list[str]:
        key = name.lower()
        return [v for n, v in self.headers if n == key]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    @property
    def closes(self) -> bool:
        """The response says the connection ends after it."""
        return "close" in (self.header("connection") or "").lower()


class Client:
    """A raw TCP client whose input is parsed by h11 (a strict client state machine).

    ``send(raw)`` writes any bytes; ``reply(method)`` tells h11 a request of ``method``
    was sent (so it frames the answer right: HEAD has no body) and reads its response.
    ``request(...)`` builds a well-formed request with h11, sends it, and reads the reply.
    """

    def __init__(self, port: int, timeout: float = TIMEOUT, rcvbuf: int | None = None) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect: it sets the advertised window
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        try:
            sock.connect(("127.0.0.1", port))
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.timeout = timeout
        self.h11 = h11.Connection(h11.CLIENT)
        self.port = port

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv(self) -> bytes:
        try:
            return self.sock.recv(65536)
        except ConnectionResetError:
            return b""

    def _expect(self, method: str, version: str, headers: list[tuple[str, str]]) -> None:
        """Move h11 as if ``method`` was sent (its bytes are sent by the caller)."""
        conn = self.h11
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        fields = list(headers) or [("Host", "test")]
        if version == "1.0":
            # h11 only sends 1.1: a 1.1 request that ends the connection frames the
            # answer as a 1.0 one would (a body without length ends with the close).
            fields.append(("Connection", "close"))
        conn.send(h11.Request(method=method, target="/", headers=fields))
        conn.send(h11.EndOfMessage())

    def reply(
        self,
        method: str = "GET",
        version: str = "1.1",
        headers: list[tuple[str, str]] | None = None,
    ) -> Reply:
        """The next response, for a request of ``method`` sent by hand."""
        self._expect(method, version, headers or [])
        return self._read()

    def _read(self) -> Reply:
        conn = self.h11
        reply: Reply | None = None
        informational: list[int] = []
        parts: list[bytes] = []
        deadline = time.monotonic() + self.timeout
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if time.monotonic() > deadline:
                    raise TimeoutError("no complete response in time")
                conn.receive_data(self._recv())
                continue
            if isinstance(event, h11.InformationalResponse):
                informational.append(event.status_code)
                continue
            if isinstance(event, h11.Response):
                headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in event.headers]
                reply = Reply(
                    event.status_code,
                    event.reason.decode("latin-1"),
                    event.http_version.decode(),
                    headers,
                    informational=informational,
                )
                reply.chunked = any(
                    n == "transfer-encoding" and "chunked" in v.lower() for n, v in headers
                )
                continue
            if isinstance(event, h11.Data):
                parts.append(bytes(event.data))
                continue
            if isinstance(event, h11.EndOfMessage):
                assert reply is not None
                reply.body = b"".join(parts)
                return reply
            raise AssertionError(f"unexpected h11 event {event!r} while reading a response")

    def request(
        self,
        method: str = "GET",
        target: str = "/",
        headers: Iterable[tuple[str, str | bytes]] = (),
        body: bytes = b"",
    ) -> Reply:
        """Send a well-formed request with h11 and read its response."""
        conn = self.h11
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        fields = list(headers)
        if not any(n.lower() == "host" for n, _ in fields):
            fields.insert(0, ("Host", f"127.0.0.1:{self.port}"))
        if body and not any(n.lower() == "content-length" for n, _ in fields):
            fields.append(("Content-Length", str(len(body))))
        out = conn.send(h11.Request(method=method, target=target, headers=fields)) or b""
        if body:
            out += conn.send(h11.Data(data=body)) or b""
        out += conn.send(h11.EndOfMessage()) or b""
        self.sock.sendall(out)
        return self._read()

    def read_raw(self, until: bytes = b"\r\n\r\n") -> bytes:
        """Read raw bytes (bypassing h11) until ``until`` appears; returns them all."""
        data = b""
        deadline = time.monotonic() + self.timeout
        while until not in data:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {until!r} in time; got {data!r}")
            chunk = self._recv()
            if not chunk:
                raise ConnectionError(f"closed before {until!r}; got {data!r}")
            data += chunk
        return data

    def read_all(self) -> bytes:
        """Raw bytes (bypassing h11) until the server closes."""
        parts: list[bytes] = []
        for _ in range(100_000):
            chunk = self._recv()
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)
        raise AssertionError("the server never closed")

    def quiet(self) -> bool:
        """Nothing has arrived and the server has not closed (a peek that does not wait)."""
        timeout = self.sock.gettimeout()
        self.sock.setblocking(False)  # with a timeout, recv() would wait first
        try:
            self.sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return True
        except ConnectionResetError:
            return False
        finally:
            self.sock.settimeout(timeout)
        return False  # data, or b"" for a close

    def closed(self) -> bool:
        """Wait (the socket timeout) for the server's close: True at EOF, False if data."""
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return data == b""

    @property
    def peer_closed(self) -> bool:
        """h11 saw (or must see) the end of the connection after the last response."""
        return self.h11.their_state in (h11.MUST_CLOSE, h11.CLOSED)


def get(port: int, target: str = "/", **kwargs: Any) -> Reply:
    """One request on a new connection (h11), closed afterwards."""
    with Client(port) as client:
        return client.request(target=target, **kwargs)


# ------------------------------------------------------------------- curl
def curl(*args: str, timeout: float = 10.0) -> subprocess.CompletedProcess[bytes]:
    """Run curl (silent, failing on transport errors) with a hard timeout."""
    return subprocess.run(
        [CURL, "--silent", "--show-error", "--max-time", str(timeout), *args],
        capture_output=True,
        timeout=timeout + 5,
        check=False,
    )


# ----------------------------------------------------------------- counters
class Gauge:
    """Counts things in flight (thread-safe) and remembers the maximum."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.total = 0
        self._cond = threading.Condition()

    def enter(self) -> None:
        with self._cond:
            self.now += 1
            self.total += 1
            self.peak = max(self.peak, self.now)
            self._cond.notify_all()

    def leave(self) -> None:
        with self._cond:
            self.now -= 1
            self._cond.notify_all()

    def wait(self, predicate: Callable[[Gauge], bool], timeout: float = TIMEOUT) -> None:
        """Block until ``predicate(self)`` holds (TimeoutError after ``timeout``)."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self), timeout):
                raise TimeoutError(
                    f"condition not met: now={self.now} peak={self.peak} total={self.total}"
                )


class Gate:
    """Handlers ``await gate.wait()`` until the test thread calls ``gate.open(manager)``."""

    def __init__(self) -> None:
        self.is_open = False
        self._futures: list[Future] = []

    def wait(self) -> Future:
        """A future done once the gate is open (call on the loop thread)."""
        future = Future()
        if self.is_open:
            future.set_result(None)
        else:
            self._futures.append(future)
        return future

    def open(self, manager: Manager) -> None:
        """Open the gate from any thread."""
        manager.loop.call_soon_threadsafe(self._open)

    def _open(self) -> None:
        self.is_open = True
        futures, self._futures = self._futures, []
        for future in futures:
            if not future.done():
                future.set_result(None)
