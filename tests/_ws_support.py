"""Helpers shared by the WebSocket tests (``test_websocket_*``).

* :func:`ws_serve` runs a netcomp web ``Server`` with a ``WebSocketsDispatcher`` (and the
  given components) on 127.0.0.1, port 0, in a running tree; with ``virtual=True`` on
  virtual time that ``site.vt`` moves.
* :class:`RawWS` is a WebSocket client over a plain socket: the handshake and the frames
  it reads are wsproto's (a strict parser: every frame netcomp sends is checked), the
  frames it sends may be anything (:func:`frame` makes raw ones: oversized, fragmented,
  invalid UTF-8, compressed bombs...).
* :class:`LibServer` runs a ``websockets`` library server in a thread (a peer for the
  netcomp client).

Nothing here sleeps to synchronise: socket reads have timeouts, waits have deadlines.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

from netcomp import Component, Manager
from netcomp.testing import Recorder, VirtualTime, running
from netcomp.web import Server, WebSocketLimits, WebSocketsDispatcher

TIMEOUT = 5.0
TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


class Echo(Component):
    """Sends every message back (the read handler's result), on channel ``ws``."""

    channel = "ws"

    def read(self, sock: socket.socket, message: str | bytes) -> str | bytes:
        return message


@dataclass
class WSSite:
    """A running server with a WebSocket dispatcher."""

    server: Server
    dispatcher: WebSocketsDispatcher
    manager: Manager
    recorder: Recorder
    virtual_time: VirtualTime | None = None

    @property
    def port(self) -> int:
        return int(self.server.port)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.dispatcher.path}"

    @property
    def vt(self) -> VirtualTime:
        assert self.virtual_time is not None, "ws_serve(..., virtual=True) for virtual time"
        return self.virtual_time

    def raw(self, **options: Any) -> RawWS:
        return RawWS(self.port, self.dispatcher.path, **options)


@contextlib.contextmanager
def ws_serve(
    *components: Any,
    path: str = "/ws",
    limits: WebSocketLimits | None = None,
    virtual: bool = False,
    check_errors: bool = True,
    server_options: dict[str, Any] | None = None,
    **options: Any,
) -> Iterator[WSSite]:
    """A ``Server`` with a ``WebSocketsDispatcher(path, limits=..., **options)`` and
    ``components`` (registered at the root) running; yields a :class:`WSSite`."""
    manager = Manager()
    virtual_time = VirtualTime(manager.loop) if virtual else None
    server = Server(("127.0.0.1", 0), **(server_options or {}))
    server.register(manager)
    dispatcher = WebSocketsDispatcher(path, limits=limits, **options)
    dispatcher.register(server)
    for component in components:
        component.register(manager)
    with running(manager, check_errors=check_errors) as recorder:
        yield WSSite(server, dispatcher, manager, recorder, virtual_time)


# ------------------------------------------------------------------ raw frames
def frame(
    opcode: int,
    payload: bytes = b"",
    fin: bool = True,
    rsv1: bool = False,
    length: int | None = None,
) -> bytes:
    """A client frame (masked), byte by byte; ``length`` may lie about the payload."""
    size = len(payload) if length is None else length
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    if size < 126:
        head = struct.pack("!BB", first, 0x80 | size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, size)
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


def deflated(data: bytes) -> bytes:
    """``data`` compressed as permessage-deflate sends it (raw deflate, tail stripped)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


class Rejected(Exception):
    """The server answered the handshake with another status than 101."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        super().__init__(f"handshake rejected: {status}")
        self.status = status
        self.headers = {k.decode().lower(): v.decode() for k, v in headers}
        self.body = body


class RawWS:
    """A WebSocket client on a plain socket: wsproto handshakes and parses what comes in;
    ``send_raw`` sends any bytes."""

    def __init__(
        self,
        port: int,
        path: str = "/ws",
        headers: list[tuple[str, str]] | None = None,
        subprotocols: list[str] | None = None,
        deflate: bool = False,
        timeout: float = TIMEOUT,
        family: socket.AddressFamily = socket.AF_INET,
        rcvbuf: int | None = None,
    ) -> None:
        host = "127.0.0.1" if family == socket.AF_INET else "::1"
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connecting: it sets the advertised window
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect((host, port))
        except BaseException:
            self.sock.close()
            raise
        self.timeout = timeout
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.messages: list[str | bytes] = []  # every message received, in order
        self.taken = 0  # how many of them recv() returned
        self.pings: list[bytes] = []
        self.pongs: list[bytes] = []
        self.closed_with: tuple[int, str] | None = None
        self.accepted: AcceptConnection | None = None
        self._parts: list[Any] = []
        extensions = [PerMessageDeflate()] if deflate else []
        request = Request(
            host=f"127.0.0.1:{port}",
            target=path,
            extensions=extensions,
            extra_headers=[(k.encode(), v.encode()) for k, v in headers or []],
            subprotocols=subprotocols or [],
        )
        try:
            self.sock.sendall(self.ws.send(request))
            self._handshake()
        except BaseException:
            self.sock.close()
            raise

    def _handshake(self) -> None:
        reject: RejectConnection | None = None
        body = b""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            data = self._recv()
            self.ws.receive_data(data or None)
            for event in self.ws.events():
                if isinstance(event, AcceptConnection):
                    self.accepted = event
                    self._absorb(self.ws.events())  # what came with the 101
                    return
                if isinstance(event, RejectConnection):
                    reject = event
                    if not event.has_body:
                        raise Rejected(event.status_code, list(event.headers), b"")
                elif isinstance(event, RejectData):
                    body += event.data
                    if event.body_finished:
                        assert reject is not None
                        raise Rejected(reject.status_code, list(reject.headers), body)
            if not data:
                raise ConnectionError("closed during the handshake")
        raise TimeoutError("no answer to the handshake")

    def __enter__(self) -> RawWS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def _recv(self) -> bytes:
        try:
            return self.sock.recv(65536)
        except ConnectionResetError:
            return b""

    # ------------------------------------------------------------------ send
    def send(self, message: str | bytes) -> None:
        event: Message[Any] = (
            TextMessage(data=message) if isinstance(message, str) else BytesMessage(data=message)
        )
        self.sock.sendall(self.ws.send(event))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.sock.sendall(self.ws.send(CloseConnection(code=code, reason=reason)))

    # --------------------------------------------------------------- receive
    def _absorb(self, events: Iterator[Event]) -> None:
        for event in events:
            if isinstance(event, Message):
                self._parts.append(event.data)
                if event.message_finished:
                    joined = "" if isinstance(event, TextMessage) else b""
                    self.messages.append(joined.join(self._parts))  # type: ignore[attr-defined]
                    self._parts = []
            elif isinstance(event, Ping):
                self.pings.append(event.payload)
            elif isinstance(event, Pong):
                self.pongs.append(event.payload)
            elif isinstance(event, CloseConnection):
                self.closed_with = (int(event.code), event.reason or "")

    def pump(self, until: Callable[[], bool], timeout: float | None = None) -> bool:
        """Read until ``until()`` holds (True) or the server ends the connection (False)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not until():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met; got {self.messages!r} {self.closed_with}")
            data = self._recv()
            if not data:
                return until()
            if self.closed_with is None:
                self.ws.receive_data(data)
                self._absorb(self.ws.events())
        return True

    def recv(self) -> str | bytes:
        """The next message not returned yet."""
        index = self.taken
        if not self.pump(lambda: len(self.messages) > index):
            raise ConnectionError(f"closed before a message; close={self.closed_with}")
        self.taken += 1
        return self.messages[index]

    def close_code(self) -> tuple[int, str]:
        """Wait for the server's close frame; return its (code, reason)."""
        self.pump(lambda: self.closed_with is not None)
        assert self.closed_with is not None, "the connection ended without a close frame"
        return self.closed_with

    def quiet(self) -> bool:
        """Nothing has arrived and the server has not ended the connection (no wait)."""
        self.sock.setblocking(False)  # with a timeout, recv() would wait for it first
        try:
            self.sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return True
        except ConnectionResetError:
            return False
        finally:
            self.sock.settimeout(self.timeout)
        return False  # data, or b"": the end

    def pong(self, payload: bytes) -> None:
        self.sock.sendall(self.ws.send(Pong(payload=payload)))

    def ends(self) -> bool:
        """Wait for the server to end the connection (True), dropping what comes."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if not self._recv():
                return True
        return False


# ------------------------------------------------------ a websockets-library server
class LibServer:
    """A ``websockets`` server (asyncio, in a thread) running ``handler`` per connection."""

    def __init__(self, handler: Callable[[Any], Awaitable[None]], **options: Any) -> None:
        self.handler = handler
        self.options = options
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from websockets.asyncio.server import serve

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with serve(self.handler, "127.0.0.1", self.port, **self.options) as server:
                self.port = server.sockets[0].getsockname()[1]
                self._ready.set()
                await self._stop.wait()

        try:
            asyncio.run(main())
        except BaseException as err:  # reported by start()
            self._error = err
            self._ready.set()

    def start(self) -> LibServer:
        self._thread.start()
        if not self._ready.wait(TIMEOUT) or self._error is not None:
            raise RuntimeError(f"the websockets server did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive(), "the websockets server did not stop"

    def __enter__(self) -> LibServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
