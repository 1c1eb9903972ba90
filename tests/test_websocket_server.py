"""WebSocketsDispatcher with the ``websockets`` library (a separate, well-known
implementation) and raw sockets as peers: echo, fragments, permessage-deflate on and off,
subprotocols, origins, refusals, HTTP on the same port and connection, events in and out,
broadcast, TLS, stop, and 1,000 sockets at once."""

from __future__ import annotations

import base64
import logging
import os
import resource
import selectors
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as lib_connect
from wsproto.utilities import generate_accept_token

from _net_support import cert_files
from _ws_support import TIMEOUT, Echo, RawWS, Rejected, ws_serve
from netcomp import Component, Event, Manager
from netcomp.net import close, write
from netcomp.testing import running
from netcomp.web import (
    Controller,
    Forbidden,
    HTTPError,
    Server,
    WebSocketLimits,
    WebSocketsDispatcher,
    websockets,
)


def open_lib(url: str, **options: Any) -> ClientConnection:
    """A ``websockets`` sync client (no proxy from the environment, hard timeouts)."""
    options.setdefault("open_timeout", TIMEOUT)
    options.setdefault("close_timeout", TIMEOUT)
    return lib_connect(url, proxy=None, **options)


class Root(Controller):
    channel = "/"

    def index(self) -> str:
        return "page"


def on_ws(event: Event) -> bool:
    """The event was fired on the dispatcher's channel (not the web server's)."""
    return event.channels == ("ws",)


# -------------------------------------------------------------------- echo
@pytest.mark.parametrize("compression", ["deflate", None], ids=["deflate", "plain"])
def test_echo_with_the_websockets_library(compression: str | None) -> None:
    with ws_serve(Echo()) as site:
        with open_lib(site.url, compression=compression) as ws:
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
            assert (extensions is not None) == (compression is not None)
            for message in ["hello", "héllo ☃", "", b"\x00\x01\xff", b"", "x" * 5000]:
                ws.send(message)
                assert ws.recv(timeout=TIMEOUT) == message
            big = os.urandom(1024 * 1024 - 1)
            ws.send(big)
            assert ws.recv(timeout=TIMEOUT) == big
        site.recorder.wait_for("disconnect", predicate=on_ws)
    names = [e.name for e in site.recorder.events if e.channels == ("ws",)]
    assert names[0] == "connect" and names[-2:] == ["closing", "disconnect"]
    connect_event = next(e for e in site.recorder.events if e.name == "connect" and on_ws(e))
    sock, request = connect_event.args
    assert isinstance(sock, socket.socket) and request.path == "/ws"
    closing = next(e for e in site.recorder.events if e.name == "closing")
    assert closing.args == (sock, 1000, "")


def test_fragmented_messages_are_delivered_whole() -> None:
    seen: list[Any] = []

    class Keep(Echo):
        def read(self, sock: socket.socket, message: str | bytes) -> str | bytes:
            seen.append(message)
            return message

    with ws_serve(Keep()) as site, open_lib(site.url) as ws:
        ws.send(["frag", "men", "ted ☃"])
        assert ws.recv(timeout=TIMEOUT) == "fragmented ☃"
        ws.send([b"\x01" * 70_000, b"\x02" * 70_000])
        assert ws.recv(timeout=TIMEOUT) == b"\x01" * 70_000 + b"\x02" * 70_000
    assert seen == ["fragmented ☃", b"\x01" * 70_000 + b"\x02" * 70_000]


def test_a_ping_between_fragments_is_answered_and_the_message_still_whole() -> None:
    with ws_serve(Echo()) as site, site.raw() as raw:
        from _ws_support import CONTINUATION, PING, TEXT, frame

        raw.send_raw(frame(TEXT, b"ab", fin=False) + frame(PING, b"p?"))
        raw.send_raw(frame(CONTINUATION, b"c\xe2\x98", fin=False) + frame(CONTINUATION, b"\x83"))
        assert raw.recv() == "abc☃"


def test_read_handlers_may_answer_several_messages() -> None:
    class Several(Component):
        channel = "ws"

        def read(self, sock: socket.socket, message: str) -> list[Any]:
            return [message.upper(), message.encode(), bytearray(b"!"), 42]

    with ws_serve(Several()) as site, site.raw() as raw:
        raw.send("hi")
        assert [raw.recv() for _ in range(3)] == ["HI", b"hi", b"!"]


# -------------------------------------------------------------- negotiation
def test_the_server_chooses_its_preferred_subprotocol() -> None:
    with ws_serve(Echo(), subprotocols=["chat.v2", "chat.v1"]) as site:
        with open_lib(site.url, subprotocols=["chat.v1", "chat.v2"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "chat.v2"
            sock = site.recorder.wait_for("connect").args[0]
            assert site.dispatcher.subprotocol(sock) == "chat.v2"
        with open_lib(site.url, subprotocols=["other"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol is None
        with site.raw(subprotocols=["Chat.V2"]) as raw:  # names are case-sensitive
            assert raw.accepted is not None and raw.accepted.subprotocol is None


def test_compression_can_be_turned_off() -> None:
    with ws_serve(Echo(), compression=False) as site, open_lib(site.url) as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        ws.send("x" * 1000)
        assert ws.recv(timeout=TIMEOUT) == "x" * 1000


def test_deflate_parameters_the_client_asks_for_are_kept() -> None:
    with ws_serve(Echo()) as site:
        header = "permessage-deflate; server_max_window_bits=10; client_no_context_takeover"
        # (wsproto's client would refuse an answer to an offer it did not make itself.)
        response = handshake_response(site.port, [("Sec-WebSocket-Extensions", header)])
        line = next(x for x in response.split("\r\n") if x.lower().startswith("sec-websocket-e"))
        assert "server_max_window_bits=10" in line and "server_no_context_takeover" in line
        assert "client_no_context_takeover" in line


def handshake_request(
    path: str = "/ws", fields: list[tuple[str, str]] | None = None, method: str = "GET"
) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: test",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: " + base64.b64encode(b"0123456789abcdef").decode(),
    ]
    names = {name.lower() for name, _ in fields or []}
    lines = [line for line in lines if line.split(":")[0].lower() not in names]
    lines.extend(f"{name}: {value}" for name, value in fields or [])
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def handshake_response(port: int, fields: list[tuple[str, str]] | None = None) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(handshake_request(fields=fields))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            assert chunk, data
            data += chunk
    return data.decode("latin-1")


@pytest.mark.parametrize(
    ("fields", "method", "status"),
    [
        ([("Sec-WebSocket-Key", "short")], "GET", 400),
        ([("Sec-WebSocket-Key", "")], "GET", 400),
        ([("Sec-WebSocket-Version", "8")], "GET", 426),
        ([("Connection", "keep-alive, Upgrade")], "POST", 400),
    ],
    ids=["bad-key", "no-key", "version-8", "post"],
)
def test_invalid_handshakes_get_the_status_rfc_6455_names(
    fields: list[tuple[str, str]], method: str, status: int
) -> None:
    with ws_serve(Echo()) as site:
        response = handshake_response_raw(site.port, handshake_request("/ws", fields, method))
    assert response.startswith(f"HTTP/1.1 {status} "), response
    if status == 426:
        assert "\r\nSec-WebSocket-Version: 13\r\n" in response
    assert not [e for e in site.recorder.events if e.name == "connect" and on_ws(e)]


def handshake_response_raw(port: int, request: bytes) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            assert chunk, data
            data += chunk
    return data.decode("latin-1")


def test_a_websocket_request_without_connection_upgrade_is_refused() -> None:
    request = handshake_request(fields=[("Connection", "keep-alive")])
    with ws_serve(Echo()) as site:
        assert handshake_response_raw(site.port, request).startswith("HTTP/1.1 400 ")


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize(
    ("origins", "origin", "accepted"),
    [
        ({"http://good"}, "http://good", True),
        ({"http://good"}, "http://evil", False),
        ({"http://good"}, None, False),
        ({"http://good", None}, None, True),
        (lambda origin, request: origin == "http://fn", "http://fn", True),
        (lambda origin, request: origin == "http://fn", "http://no", False),
    ],
)
def test_origins(origins: Any, origin: str | None, accepted: bool) -> None:
    headers = [("Origin", origin)] if origin is not None else []
    with ws_serve(Echo(), origins=origins) as site:
        if accepted:
            with site.raw(headers=headers) as raw:
                raw.send("ok")
                assert raw.recv() == "ok"
        else:
            with pytest.raises(Rejected) as refused:
                site.raw(headers=headers)
            assert refused.value.status == 403


class Gate(Echo):
    """Refuses connects by the ``answer`` query parameter."""

    def connect(self, sock: socket.socket, request: Any) -> Any:
        answer = request.query.get("answer")
        if answer == "false":
            return False
        if answer == "401":
            raise HTTPError(401, "who are you?")
        if answer == "forbidden":
            raise Forbidden()
        if answer == "boom":
            raise ValueError("the connect handler broke")
        return None


@pytest.mark.parametrize(
    ("answer", "status"), [("false", 403), ("401", 401), ("forbidden", 403), ("boom", 500)]
)
def test_connect_handlers_refuse(
    answer: str, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    with ws_serve(Gate(), check_errors=answer != "boom") as site:
        with pytest.raises(Rejected) as refused:
            RawWS(site.port, f"/ws?answer={answer}")
        assert refused.value.status == status
        with site.raw() as raw:  # others are not affected
            raw.send("still")
            assert raw.recv() == "still"
            assert len(site.dispatcher.sockets) == 1
    assert [e.name for e in site.recorder.events if on_ws(e)].count("disconnect") == 1
    if answer == "boom":
        assert "the connect handler broke" in caplog.text


def test_a_refused_upgrade_leaves_http_going_on_the_same_connection() -> None:
    with ws_serve(Gate(), Root()) as site, connection(site.port) as sock:
        sock.sendall(handshake_request("/ws?answer=false") + b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        data = read_until(sock, b"page")
    assert data.startswith(b"HTTP/1.1 403 ")
    assert data.count(b"HTTP/1.1 200 OK\r\n") == 1 and data.endswith(b"page")


def connection(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while marker not in data:
        assert time.monotonic() < deadline, data
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return data


# --------------------------------------------------------- same port, same connection
def test_http_keeps_working_on_the_port_and_before_the_upgrade_on_a_connection() -> None:
    with ws_serve(Echo(), Root()) as site:
        with socket.create_connection(("127.0.0.1", site.port), timeout=TIMEOUT) as sock:
            # Two pipelined requests, the second an upgrade, and a frame right behind it.
            from _ws_support import TEXT, frame

            sock.sendall(
                b"GET / HTTP/1.1\r\nHost: t\r\n\r\n" + handshake_request() + frame(TEXT, b"hey")
            )
            data = read_until(sock, b"\x81\x03hey")
        first, _, rest = data.partition(b"\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 200 OK") and rest.startswith(b"page")
        head, _, frames = rest[len(b"page") :].partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        accept = generate_accept_token(base64.b64encode(b"0123456789abcdef")).decode()
        assert f"\r\nSec-WebSocket-Accept: {accept}" in head.decode()
        assert "\r\nConnection: Upgrade" in head.decode() and "Content-Length" not in head.decode()
        assert frames == b"\x81\x03hey"
        # Keep-alive HTTP on other connections of the same port.
        with socket.create_connection(("127.0.0.1", site.port), timeout=TIMEOUT) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n" * 2)
            data = read_until(sock, b"page")
            data += read_until(sock, b"page") if data.count(b"page") < 2 else b""
            assert data.count(b"HTTP/1.1 200 OK") == 2


def test_a_plain_get_of_the_websocket_path_is_not_the_dispatchers() -> None:
    class Page(Component):
        channel = "web"

        def request(self, request: Any, response: Any) -> str:
            return "plain"

    with ws_serve(Page()) as site, connection(site.port) as sock:
        sock.sendall(b"GET /ws HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_until(sock, b"plain").startswith(b"HTTP/1.1 200 OK")


# ------------------------------------------------------------ events in and out
class Talker(Component):
    """Greets on connect (before the 101 is out), then echoes; closes on "bye"."""

    channel = "ws"

    def connect(self, sock: socket.socket, request: Any) -> None:
        self.fire(write(sock, "welcome"))

    def read(self, sock: socket.socket, message: str) -> None:
        if message == "bye":
            self.fire(close(sock, 4001, "see you"))
        else:
            self.fire(write(sock, message))


def test_write_and_close_events() -> None:
    with ws_serve(Talker()) as site, open_lib(site.url) as ws:
        assert ws.recv(timeout=TIMEOUT) == "welcome"
        ws.send(b"bin")
        assert ws.recv(timeout=TIMEOUT) == b"bin"
        ws.send("bye")
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=TIMEOUT)
        assert (ws.close_code, ws.close_reason) == (4001, "see you")
        closing = site.recorder.wait_for("closing")
        assert closing.args[1:] == (4001, "see you")
        site.recorder.wait_for("disconnect", predicate=on_ws)


def test_close_with_no_socket_closes_them_all_and_bad_codes_are_refused() -> None:
    with ws_serve(Echo(), check_errors=False) as site:
        clients = [site.raw() for _ in range(3)]
        site.recorder.wait_for("connect", predicate=on_ws, count=3)
        site.manager.fire(close(None, 1012, "restart"), "ws")
        for raw in clients:
            assert raw.close_code() == (1012, "restart")
            raw.close(1012)
            assert raw.ends()
            raw.sock.close()
        value = site.manager.fire(close(None, 1005), "ws")
        site.recorder.wait_for("exception")
    assert isinstance(value.exception, ValueError)


def test_a_write_to_a_closed_websocket_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    with ws_serve(Echo()) as site:
        with open_lib(site.url):
            sock = site.recorder.wait_for("connect").args[0]
        site.recorder.wait_for("disconnect", predicate=on_ws)
        with caplog.at_level(logging.INFO, logger="netcomp.web"):
            site.manager.fire(write(sock, "late"), "ws")
            site.recorder.wait_for("error")
    assert "write to a closed WebSocket" in caplog.text
    assert site.dispatcher.send(sock, "x") is False


# ---------------------------------------------------------------- broadcast
class Counting(WebSocketsDispatcher):
    encoded = 0

    def _encode(self, key: int | None, message: str | bytes) -> bytes:
        type(self).encoded += 1
        return super()._encode(key, message)


def test_broadcast_frames_a_message_once_per_wire_format() -> None:
    manager = Manager()
    server = Server(("127.0.0.1", 0))
    server.register(manager)
    dispatcher = Counting("/ws")
    dispatcher.register(server)
    with running(manager) as recorder:
        plain = [RawWS(server.port) for _ in range(3)]
        packed = [RawWS(server.port, deflate=True) for _ in range(2)]
        recorder.wait_for("connect", count=5)
        long_text = "all of you " * 50
        call = manager.loop.call_soon_threadsafe
        call(dispatcher.broadcast, long_text)
        for raw in plain + packed:
            assert raw.recv() == long_text
        assert Counting.encoded == 2  # once plain, once compressed
        call(dispatcher.broadcast, b"short")
        for raw in plain + packed:
            assert raw.recv() == b"short"
        assert Counting.encoded == 3  # short messages are not compressed: one frame for all
        for raw in plain + packed:
            raw.sock.close()


def test_broadcast_to_some_and_excluding_one() -> None:
    class Relay(Component):
        channel = "ws"

        def init(self, dispatcher: WebSocketsDispatcher) -> None:
            self.dispatcher = dispatcher

        def read(self, sock: socket.socket, message: str) -> None:
            self.dispatcher.broadcast(message, exclude=sock)

    manager = Manager()
    server = Server(("127.0.0.1", 0))
    server.register(manager)
    dispatcher = WebSocketsDispatcher("/ws").register(server)
    Relay(dispatcher).register(manager)
    with running(manager) as recorder:
        a, b, c = (RawWS(server.port) for _ in range(3))
        recorder.wait_for("connect", count=3)
        a.send("from a")
        assert b.recv() == "from a" and c.recv() == "from a"
        b.send("from b")
        assert a.recv() == "from b" and c.recv() == "from b"
        assert a.messages == ["from b"]
        for raw in (a, b, c):
            raw.sock.close()


# ---------------------------------------------------------------- TLS, stop
def test_wss_with_the_websockets_library(tmp_path_factory: pytest.TempPathFactory) -> None:
    cert, key = cert_files(tmp_path_factory)
    with ws_serve(Echo(), server_options={"certfile": cert, "keyfile": key}) as site:
        context = ssl.create_default_context(cafile=cert)
        with open_lib(f"wss://127.0.0.1:{site.port}/ws", ssl=context) as ws:
            ws.send("secret")
            assert ws.recv(timeout=TIMEOUT) == "secret"


def test_stopping_the_server_closes_websockets_with_1001() -> None:
    manager = Manager()
    server = Server(("127.0.0.1", 0))
    server.register(manager)
    WebSocketsDispatcher("/ws").register(server)
    Echo().register(manager)
    with running(manager) as recorder, RawWS(server.port) as raw:
        recorder.wait_for("connect", predicate=on_ws)
        manager.loop.call_soon_threadsafe(manager.stop)
        assert raw.close_code() == (1001, "going away")
        raw.close(1001)
        assert raw.ends()


def test_the_public_module_has_circuits_names() -> None:
    assert websockets.WebSocketsDispatcher is WebSocketsDispatcher
    assert websockets.WebSocketLimits is WebSocketLimits
    assert set(websockets.__all__) == {
        "HandshakeError",
        "WebSocketClient",
        "WebSocketLimits",
        "WebSocketsDispatcher",
    }
    for name in websockets.__all__:
        assert getattr(websockets, name).__doc__


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="path"):
        WebSocketsDispatcher("ws")
    with pytest.raises(TypeError, match="WebSocketLimits"):
        WebSocketsDispatcher("/ws", limits={"max_message_size": 5})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_message_size"):
        WebSocketLimits(max_message_size=0)
    with pytest.raises(ValueError, match="ping_timeout"):
        WebSocketLimits(ping_timeout=-1)
    with pytest.raises(ValueError, match="close_timeout"):
        WebSocketLimits(close_timeout=None)  # type: ignore[arg-type]
    assert WebSocketLimits(ping_interval=None).ping_interval is None


# ---------------------------------------------------------- 1,000 at once
HANDSHAKE = handshake_request()
ACCEPT = generate_accept_token(base64.b64encode(b"0123456789abcdef"))


def test_a_thousand_websockets_at_once() -> None:
    count = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 3 * count:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * count), hard))
    from _ws_support import TEXT, frame

    hello = frame(TEXT, b"hello")
    with ws_serve(Echo(), server_options={"backlog": 2048}) as site:
        socks = list(connect_many(site.port, count))
        try:
            replies = exchange_all(socks, HANDSHAKE, b"\r\n\r\n")
            assert all(r.startswith(b"HTTP/1.1 101 ") and ACCEPT in r for r in replies)
            assert len(site.dispatcher.sockets) == count
            echoes = exchange_all(socks, hello, b"hello")
            assert all(e.endswith(b"\x81\x05hello") for e in echoes)
        finally:
            for sock in socks:
                sock.close()
        site.recorder.wait_for("disconnect", count=count, timeout=30)
    assert site.dispatcher.sockets == []


def connect_many(port: int, count: int) -> Iterator[socket.socket]:
    for _ in range(count):
        yield socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


def exchange_all(socks: list[socket.socket], data: bytes, marker: bytes) -> list[bytes]:
    """Send ``data`` on every socket, then read each until ``marker`` (one selector)."""
    got = {sock: b"" for sock in socks}
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            sock.sendall(data)
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        waiting = set(socks)
        deadline = time.monotonic() + 30
        while waiting:
            assert time.monotonic() < deadline, f"{len(waiting)} sockets still waiting"
            for key, _mask in selector.select(1.0):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                chunk = sock.recv(65536)
                assert chunk, got[sock]
                got[sock] += chunk
                if marker in got[sock]:
                    waiting.discard(sock)
                    selector.unregister(sock)
        for sock in socks:
            sock.setblocking(True)
            sock.settimeout(TIMEOUT)
    return [got[sock] for sock in socks]


def test_events_reach_handlers_by_name_on_the_dispatchers_channel() -> None:
    seen: list[str] = []

    class All(Component):
        channel = "chat"

        def connect(self, sock: socket.socket, request: Any) -> None:
            seen.append("connect")

        def read(self, sock: socket.socket, message: str) -> str:
            seen.append(f"read {message}")
            return message

        def closing(self, sock: socket.socket, code: int, reason: str) -> None:
            seen.append(f"closing {code}")

        def disconnect(self, sock: socket.socket) -> None:
            seen.append("disconnect")

    with ws_serve(All(), path="/chat", channel="chat") as site:
        with open_lib(f"ws://127.0.0.1:{site.port}/chat") as ws:
            ws.send("x")
            assert ws.recv(timeout=TIMEOUT) == "x"
        site.recorder.wait_for("disconnect", predicate=lambda e: e.channels == ("chat",))
    assert seen == ["connect", "read x", "closing 1000", "disconnect"]
