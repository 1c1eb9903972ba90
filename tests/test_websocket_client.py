"""WebSocketClient against the ``websockets`` library's server, netcomp's own server and
raw sockets: echo with permessage-deflate on and off, fragments, subprotocols, refusals,
queueing, close codes, TLS, reconnecting through a Connex, the handshake timeout on
virtual time, and the limits on what a server sends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response

from _net_support import cert_files, ipv6_loopback
from _ws_support import TIMEOUT, Echo, LibServer, deflated, ws_serve
from netcomp import Component, Event, Manager
from netcomp.net import Backoff, NotConnected, QueueFull, close, connect, write
from netcomp.testing import Recorder, VirtualTime, running
from netcomp.web import HandshakeError, Server, WebSocketClient, WebSocketsDispatcher
from netcomp.web._wstransport import parse_url

MiB = 1024 * 1024


async def lib_echo(ws: Any) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for message in ws:
            await ws.send(message)


def on_client(event: Event) -> bool:
    return event.channels == ("wsclient",)


@contextlib.contextmanager
def client(url: str, *components: Any, **options: Any) -> Iterator[tuple[Manager, Recorder]]:
    """A running tree with a WebSocketClient(url, **options) on channel "wsclient"."""
    manager = Manager()
    WebSocketClient(url, **options).register(manager)
    for component in components:
        component.register(manager)
    with running(manager, check_errors=False) as recorder:
        yield manager, recorder


@contextlib.contextmanager
def virtual_client(url: str, **options: Any) -> Iterator[tuple[Recorder, VirtualTime]]:
    """:func:`client` on virtual time."""
    manager = Manager()
    vt = VirtualTime(manager.loop)
    WebSocketClient(url, **options).register(manager)
    with running(manager, check_errors=False) as recorder:
        yield recorder, vt


def reads(recorder: Recorder, count: int) -> list[Any]:
    recorder.wait_for("read", predicate=on_client, count=count)
    return [e.args[0] for e in recorder.events if e.name == "read" and on_client(e)][:count]


# --------------------------------------------------------------------- echo
@pytest.mark.parametrize("compression", [True, False], ids=["deflate", "plain"])
def test_echo_with_the_websockets_library(compression: bool) -> None:
    lib_compression = "deflate" if compression else None
    with LibServer(lib_echo, compression=lib_compression) as lib:
        url = f"ws://127.0.0.1:{lib.port}/"
        with client(url, compression=compression) as (manager, recorder):
            recorder.wait_for("connected", predicate=on_client)
            big = bytes(range(256)) * 4096  # 1 MiB, compressible
            for message in ["hello", "héllo ☃", b"\x00\xff", "", big]:
                manager.fire(write(message), "wsclient")
            assert reads(recorder, 5) == ["hello", "héllo ☃", b"\x00\xff", "", big]
            manager.fire(close(), "wsclient")
            event = recorder.wait_for("closing", predicate=on_client)
            assert event.args == (1000, "")
            recorder.wait_for("disconnected", predicate=on_client)


def test_fragmented_messages_from_the_server_arrive_whole() -> None:
    async def fragments(ws: Any) -> None:
        await ws.send(["frag", "men", "ted"])
        await ws.send([b"\x01" * 70_000, b"\x02"])
        await ws.wait_closed()

    with LibServer(fragments) as lib, client(f"ws://127.0.0.1:{lib.port}/") as (_, recorder):
        assert reads(recorder, 2) == ["fragmented", b"\x01" * 70_000 + b"\x02"]


def test_subprotocols_and_handshake_fields() -> None:
    seen: queue.Queue[Any] = queue.Queue()

    async def handler(ws: Any) -> None:
        seen.put((ws.subprotocol, ws.request.headers.get("Origin"), ws.request.headers["X-A"]))
        await ws.wait_closed()

    options = {"subprotocols": ["v1", "v2"], "origin": "http://here", "headers": [("X-A", "b")]}
    with LibServer(handler, subprotocols=["v2"]) as lib:
        url = f"ws://127.0.0.1:{lib.port}/path?q=1"
        with client(url, **options) as (manager, recorder):
            recorder.wait_for("connected", predicate=on_client)
            assert seen.get(timeout=TIMEOUT) == ("v2", "http://here", "b")
            ws_client = next(c for c in manager.walk() if isinstance(c, WebSocketClient))
            assert ws_client.subprotocol == "v2" and ws_client.connected


def test_what_a_read_handler_returns_goes_back() -> None:
    got: queue.Queue[Any] = queue.Queue()

    async def handler(ws: Any) -> None:
        await ws.send("ping?")
        got.put(await ws.recv())
        await ws.wait_closed()

    class Answer(Component):
        channel = "wsclient"

        def read(self, message: str) -> str:
            return message.replace("?", "!")

    with LibServer(handler) as lib, client(f"ws://127.0.0.1:{lib.port}/", Answer()):
        assert got.get(timeout=TIMEOUT) == "ping!"


# --------------------------------------------------------------- failures
def test_a_declined_handshake_is_unreachable_with_its_status() -> None:
    def refuse(connection: Any, request: Any) -> Response:
        return Response(403, "Forbidden", Headers([("Content-Length", "2")]), b"no")

    with LibServer(lib_echo, process_request=refuse) as lib:
        with client(f"ws://127.0.0.1:{lib.port}/") as (_, recorder):
            event = recorder.wait_for("unreachable", predicate=on_client)
        host, port, reason = event.args
        assert (host, port) == ("127.0.0.1", lib.port)
        assert isinstance(reason, HandshakeError) and reason.status == 403
    assert not recorder.count("connected") or not any(
        on_client(e) for e in recorder.events if e.name == "connected"
    )


def test_a_refused_connection_is_unreachable(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with caplog.at_level(logging.WARNING), client(f"ws://127.0.0.1:{port}/") as (_, recorder):
        event = recorder.wait_for("unreachable", predicate=on_client)
    assert isinstance(event.args[2], ConnectionRefusedError)
    assert "cannot connect to 127.0.0.1" in caplog.text  # nobody handled it: logged


def test_a_server_that_never_answers_the_handshake_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # accepts (in the kernel) and never answers
        port = listener.getsockname()[1]
        url = f"ws://127.0.0.1:{port}/"
        with virtual_client(url, connect_timeout=10) as (recorder, vt):
            recorder.wait_for("connected", predicate=lambda e: not on_client(e))  # TCP is up
            vt.advance(9.9)
            assert not recorder.count("unreachable")
            vt.advance(0.1)
            event = recorder.wait_for("unreachable", predicate=on_client)
    assert isinstance(event.args[2], TimeoutError)


def test_writes_while_connecting_wait_and_writes_after_the_end_are_refused() -> None:
    got: queue.Queue[Any] = queue.Queue()

    async def handler(ws: Any) -> None:
        got.put(await ws.recv())
        got.put(await ws.recv())
        await ws.close(4000, "bye")

    gate = threading.Event()

    async def hold(connection: Any, request: Any) -> None:
        await asyncio.to_thread(gate.wait, TIMEOUT)  # the handshake waits for the test

    with LibServer(handler, process_request=hold) as lib:
        url = f"ws://127.0.0.1:{lib.port}/"
        with client(url, queue_limit=10) as (manager, recorder):
            manager.fire(write("early"), "wsclient")  # before the handshake is done
            manager.fire(write(b"more"), "wsclient")
            manager.fire(write("this is too much"), "wsclient")  # beyond queue_limit
            error = recorder.wait_for("error", predicate=on_client).args[0]
            assert isinstance(error, QueueFull)
            gate.set()
            assert [got.get(timeout=TIMEOUT), got.get(timeout=TIMEOUT)] == ["early", b"more"]
            event = recorder.wait_for("closing", predicate=on_client)
            assert event.args == (4000, "bye")
            recorder.wait_for("disconnected", predicate=on_client)
            manager.fire(write("late"), "wsclient")
            error = recorder.wait_for("error", predicate=on_client, count=2).args[0]
            assert isinstance(error, NotConnected)


def test_close_sends_its_code_and_ends_for_good() -> None:
    codes: queue.Queue[Any] = queue.Queue()

    async def handler(ws: Any) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.recv()
        codes.put((ws.close_code, ws.close_reason))

    with LibServer(handler) as lib:
        with client(f"ws://127.0.0.1:{lib.port}/", reconnect=True) as (manager, recorder):
            recorder.wait_for("connected", predicate=on_client)
            manager.fire(close(4002, "done"), "wsclient")
            assert codes.get(timeout=TIMEOUT) == (4002, "done")
            recorder.wait_for("disconnected", predicate=on_client)
            manager.fire(close(1005), "wsclient")  # a code nobody may send
            recorder.wait_for("exception")
        assert len([e for e in recorder.events if e.name == "connected" and on_client(e)]) == 1


# --------------------------------------------------------------- reconnect
def test_reconnect_comes_back_and_sends_what_was_written_while_down() -> None:
    got: queue.Queue[Any] = queue.Queue()
    visits = [0]

    async def handler(ws: Any) -> None:
        visits[0] += 1
        message = await ws.recv()
        got.put(message)
        if visits[0] == 1:
            await ws.close(1012, "restarting")  # the first visit ends at once
            return
        await ws.send(message)
        await lib_echo(ws)

    backoff = Backoff(initial=0.05, jitter=0)
    with LibServer(handler) as lib:
        url = f"ws://127.0.0.1:{lib.port}/"
        with client(url, reconnect=True, backoff=backoff) as (manager, recorder):
            recorder.wait_for("connected", predicate=on_client)
            manager.fire(write("first"), "wsclient")
            assert got.get(timeout=TIMEOUT) == "first"
            recorder.wait_for("disconnected", predicate=on_client)
            manager.fire(write("while down"), "wsclient")  # kept for the next link
            recorder.wait_for("connected", predicate=on_client, count=2)
            assert got.get(timeout=TIMEOUT) == "while down"
            assert reads(recorder, 1) == ["while down"]
            closing = recorder.wait_for("closing", predicate=on_client)
            assert closing.args == (1012, "restarting")


def test_eager_false_waits_for_connect() -> None:
    with LibServer(lib_echo) as lib:
        url = f"ws://127.0.0.1:{lib.port}/"
        with client(url, eager=False) as (manager, recorder):
            recorder.wait_for("started")
            assert not any(e.name == "connected" for e in recorder.events)
            manager.fire(connect(), "wsclient")
            recorder.wait_for("connected", predicate=on_client)


# ------------------------------------------------------------------ TLS, IPv6
def test_wss(tmp_path_factory: pytest.TempPathFactory) -> None:
    cert, key = cert_files(tmp_path_factory)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    with LibServer(lib_echo, ssl=server_context) as lib:
        url = f"wss://localhost:{lib.port}/"
        context = ssl.create_default_context(cafile=cert)
        with client(url, ssl_context=context) as (manager, recorder):
            recorder.wait_for("connected", predicate=on_client)
            manager.fire(write("over TLS"), "wsclient")
            assert reads(recorder, 1) == ["over TLS"]


def test_wss_verifies_the_certificate(tmp_path_factory: pytest.TempPathFactory) -> None:
    cert, key = cert_files(tmp_path_factory)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    with (
        LibServer(lib_echo, ssl=server_context) as lib,
        client(f"wss://localhost:{lib.port}/") as (_, recorder),
    ):
        event = recorder.wait_for("unreachable", predicate=on_client)
    assert isinstance(event.args[2], ssl.SSLCertVerificationError)


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
def test_netcomp_to_netcomp_over_ipv6() -> None:
    manager = Manager()
    server = Server("[::1]:0")
    server.register(manager)
    WebSocketsDispatcher("/ws").register(server)
    Echo().register(manager)
    WebSocketClient(f"ws://[::1]:{server.port}/ws").register(manager)
    with running(manager) as recorder:
        recorder.wait_for("connected", predicate=on_client)
        manager.fire(write("six"), "wsclient")
        assert reads(recorder, 1) == ["six"]


# ---------------------------------------------------------- netcomp to netcomp
def test_netcomp_to_netcomp_with_compression_both_ways() -> None:
    with ws_serve(Echo()) as site:
        WebSocketClient(site.url).register(site.manager)
        recorder = site.recorder
        recorder.wait_for("connected", predicate=on_client)
        text = "compress me " * 10_000
        site.manager.fire(write(text), "wsclient")
        assert reads(recorder, 1) == [text]
        site.manager.fire(close(), "wsclient")
        recorder.wait_for("disconnected", predicate=on_client)
        event = recorder.wait_for("closing", predicate=lambda e: e.channels == ("ws",))
        assert event.args[1:] == (1000, "")


# ------------------------------------------------------- a hostile server
@pytest.mark.parametrize(
    ("frames", "code"),
    [
        (b"\x82\x7f" + (8 * MiB).to_bytes(8, "big") + b"\0" * (MiB + 1), 1009),
        (b"\x81\x82abcd" + b"\x00\x00", 1002),  # a server's frames are never masked
        (b"\x81\x01\xff", 1007),
    ],
    ids=["huge-frame", "masked", "bad-utf8"],
)
def test_the_client_holds_a_server_to_the_limits(frames: bytes, code: int) -> None:
    with hostile(frames) as port, client(f"ws://127.0.0.1:{port}/") as (_, recorder):
        event = recorder.wait_for("closing", predicate=on_client)
        recorder.wait_for("disconnected", predicate=on_client)
    assert event.args[0] == code


def test_a_compression_bomb_from_the_server_stops_at_the_limit() -> None:
    bomb = deflated(b"\0" * (16 * MiB))
    header = b"\xc2" + bytes([126]) + len(bomb).to_bytes(2, "big") if len(bomb) < 65536 else b""
    assert header, "the bomb must fit a 16-bit length"
    extensions = "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    with (
        hostile(header + bomb, extensions) as port,
        client(f"ws://127.0.0.1:{port}/") as (_, recorder),
    ):
        event = recorder.wait_for("closing", predicate=on_client)
    assert event.args[0] == 1009 and "inflating to more than" in event.args[1]


@contextlib.contextmanager
def hostile(frames: bytes, extra: str = "") -> Iterator[int]:
    """A server that accepts one handshake and sends ``frames`` (unmasked, raw)."""
    from wsproto.utilities import generate_accept_token

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    done = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            key = next(
                line.split(b":", 1)[1].strip()
                for line in request.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                + generate_accept_token(key)
                + b"\r\n"
                + extra.encode()
                + b"\r\n"
                + frames
            )
            with contextlib.suppress(OSError):
                while conn.recv(65536):
                    pass
        done.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(TIMEOUT)


# ---------------------------------------------------------------------- URLs
@pytest.mark.parametrize(
    ("url", "host", "port", "secure", "resource", "field"),
    [
        ("ws://example.com/chat", "example.com", 80, False, "/chat", "example.com"),
        ("wss://example.com", "example.com", 443, True, "/", "example.com"),
        ("ws://h:8080/a?b=c", "h", 8080, False, "/a?b=c", "h:8080"),
        ("ws://[::1]:9000/", "::1", 9000, False, "/", "[::1]:9000"),
        ("WSS://H:443/x", "h", 443, True, "/x", "h"),
    ],
)
def test_urls(url: str, host: str, port: int, secure: bool, resource: str, field: str) -> None:
    target = parse_url(url)
    assert (target.host, target.port, target.secure) == (host, port, secure)
    assert (target.resource, target.host_field) == (resource, field)


@pytest.mark.parametrize("url", ["http://h/", "ws:///x", "ws://h:99999/", "ws://h/#frag"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        WebSocketClient(url)


def test_options_are_checked() -> None:
    with pytest.raises(TypeError, match="WebSocketLimits"):
        WebSocketClient("ws://h/", limits=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="queue_limit"):
        WebSocketClient("ws://h/", queue_limit=-1)
    assert HandshakeError(404, "x").status == 404
