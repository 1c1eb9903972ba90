"""netcomp.web.client.Client against real servers: netcomp's own (plain and TLS), the
standard library's ``http.server``, and raw sockets that answer badly.

Every request is made the way a program makes it: ``await self.call(request(...))`` in
a handler, or circuits' way (fire, then read ``client.response``)."""

from __future__ import annotations

import http.server
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from _net_support import cert_files, client_ssl_context, server_ssl_context
from _web_support import TIMEOUT, serve
from netcomp import Component, Event, Manager, TimeoutError
from netcomp.testing import VirtualTime, running
from netcomp.web import Controller, Response
from netcomp.web.client import Client, ClientResponse, MalformedResponse, parse_url, request


class Root(Controller):
    def index(self) -> str:
        return "Hello World!"

    def echo(self) -> bytes:
        return bytes(self.request.body)

    def chunks(self) -> Any:
        return iter([b"a" * 10, b"b" * 20000, b"c"])

    def headers(self) -> str:
        return self.request.headers.get("x-test", "-")

    def close(self) -> Response:
        return Response("bye", headers=[("Connection", "close")])


class Caller(Component):
    """Makes requests through a Client from a handler, as a program would."""

    channel = "caller"

    async def go(self, target: Any, args: tuple[Any, ...], box: list[Any], done: Any) -> None:
        try:
            box.append(await self.call(request(*args), target))
        except Exception as error:
            box.append(error)
        finally:
            done.set()


_CALLERS: dict[int, Caller] = {}


def call(manager: Manager, client: Client, *args: Any) -> ClientResponse:
    """``await self.call(request(*args))`` in a handler; the response (or the error)."""
    caller = _CALLERS.get(id(manager))
    if caller is None or caller.root is not manager:
        caller = _CALLERS[id(manager)] = Caller().register(manager)
    done = threading.Event()
    box: list[Any] = []
    manager.fire(Event.create("go", client.channel, args, box, done), "caller")
    assert done.wait(TIMEOUT), "no answer in time"
    if isinstance(box[0], Exception):
        raise box[0]
    return box[0]  # type: ignore[no-any-return]


@pytest.fixture
def site() -> Iterator[Any]:
    with serve(Root(), dispatcher=True) as site:
        yield site


@pytest.fixture
def client(site: Any) -> Client:
    return Client().register(site.manager)


def test_parse_url() -> None:
    assert parse_url("http://example.org") == ("example.org", 80, "/", False)
    assert parse_url("https://example.org:8443/a?b=1") == ("example.org", 8443, "/a?b=1", True)
    assert parse_url("http://[::1]:8000/x") == ("::1", 8000, "/x", False)
    for bad in ("ftp://example.org/", "/relative", "http:///nohost"):
        with pytest.raises(ValueError):
            parse_url(bad)


def test_get_keep_alive_and_post(site: Any, client: Client) -> None:
    first = call(site.manager, client, "GET", site.url)
    assert (first.status, first.reason, first.read()) == (200, "OK", b"Hello World!")
    link = client._link
    posted = call(site.manager, client, "POST", site.url + "/echo", b"x" * 100_000)
    assert posted.body == b"x" * 100_000
    assert client._link is link  # the same connection, kept alive
    assert client.response is posted


def test_chunked_head_and_headers(site: Any, client: Client) -> None:
    chunked = call(site.manager, client, "GET", site.url + "/chunks")
    assert chunked.headers["transfer-encoding"] == "chunked"
    assert chunked.body == b"a" * 10 + b"b" * 20000 + b"c"
    head = call(site.manager, client, "HEAD", site.url)
    assert head.status == 200 and head.body == b""
    assert head.headers["content-length"] == "12"
    sent = call(site.manager, client, "GET", site.url + "/headers", None, {"X-Test": "yes"})
    assert sent.text == "yes"
    again = call(site.manager, client, "GET", site.url)  # HEAD did not desync the link
    assert again.body == b"Hello World!"


def test_connection_close_then_reconnect(site: Any, client: Client) -> None:
    assert call(site.manager, client, "GET", site.url + "/close").body == b"bye"
    assert call(site.manager, client, "GET", site.url).body == b"Hello World!"


def test_circuits_style_fire_and_read_response(site: Any) -> None:
    client = Client()
    client.start()
    try:
        client.fire(request("GET", site.url + "/"))
        recorder_done = threading.Event()

        def poll() -> None:
            if client.response is not None:
                recorder_done.set()
            else:
                client.loop.call_later(0.001, poll)

        client.loop.call_soon_threadsafe(poll)
        assert recorder_done.wait(TIMEOUT)
        assert client.response.status == 200 and client.response.read() == b"Hello World!"
    finally:
        client.stop()
        client.join(TIMEOUT)


def test_bad_header_is_refused_before_sending() -> None:
    with serve(Root(), dispatcher=True, check_errors=False) as site:
        client = Client().register(site.manager)
        with pytest.raises(ValueError):
            call(site.manager, client, "GET", site.url, None, {"X-Evil": "a\r\nInjected: 1"})
        with pytest.raises(ValueError):
            call(site.manager, client, "GET WITH SPACE", site.url)
        assert call(site.manager, client, "GET", site.url).body == b"Hello World!"
        assert [type(e.args[1]) for e in site.recorder.errors] == [ValueError, ValueError]


def test_tls(tmp_path_factory: pytest.TempPathFactory) -> None:
    cert, key = cert_files(tmp_path_factory)
    context = server_ssl_context(cert, key)
    with serve(Root(), dispatcher=True, ssl_context=context, check_errors=False) as site:
        client = Client(ssl_context=client_ssl_context(cert)).register(site.manager)
        url = f"https://localhost:{site.port}/"
        assert call(site.manager, client, "GET", url).body == b"Hello World!"
        untrusting = Client(channel="untrusting").register(site.manager)
        with pytest.raises(ssl.SSLCertVerificationError):
            call(site.manager, untrusting, "GET", url)


# ------------------------------------------------------------ other servers
class _Quiet(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = f"stdlib {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stdlib_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


def test_against_the_stdlib_server(stdlib_server: str) -> None:
    manager = Manager()
    client = Client().register(manager)
    with running(manager):
        for path in ("/a", "/b?c=d"):
            reply = call(manager, client, "GET", stdlib_server + path)
            assert (reply.status, reply.body) == (200, f"stdlib {path}".encode())


class _Raw(socketserver.BaseRequestHandler):
    answer = b""

    def handle(self) -> None:
        self.request.recv(65536)
        self.request.sendall(self.answer)


def raw_server(answer: bytes) -> Any:
    handler = type("Answer", (_Raw,), {"answer": answer})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "closed in the middle"),
        (b"NOT HTTP AT ALL\r\n\r\n", "malformed response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", "after the response"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 200 + b"\r\n", "header fields"),
    ],
)
def test_a_malformed_response_is_a_clear_error(answer: bytes, says: str) -> None:
    server = raw_server(answer)
    manager = Manager()
    client = Client().register(manager)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        with running(manager, check_errors=False), pytest.raises(MalformedResponse, match=says):
            call(manager, client, "GET", url)
    finally:
        server.shutdown()
        server.server_close()


def test_close_delimited_body() -> None:
    server = raw_server(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")
    manager = Manager()
    client = Client().register(manager)
    try:
        with running(manager):
            reply = call(manager, client, "GET", f"http://127.0.0.1:{server.server_address[1]}/")
            assert reply.body == b"until the end"
    finally:
        server.shutdown()
        server.server_close()


def test_refused_connection_fails_the_request() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once it is closed
    manager = Manager()
    client = Client().register(manager)
    with running(manager, check_errors=False), pytest.raises(ConnectionError):
        call(manager, client, "GET", f"http://127.0.0.1:{port}/")


def test_timeout_on_virtual_time() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # the kernel accepts; nobody ever answers
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    manager = Manager()
    vt = VirtualTime(manager.loop)
    client = Client(timeout=30).register(manager)
    caller = Caller().register(manager)
    done = threading.Event()
    box: list[Any] = []
    try:
        with running(manager, check_errors=False):
            manager.fire(Event.create("go", client.channel, ("GET", url), box, done), "caller")
            vt.wait_timer(vt.now + 30)
            vt.advance(29)
            assert not done.is_set()
            vt.advance(1)
            assert done.wait(TIMEOUT)
            assert isinstance(box[0], TimeoutError)
    finally:
        listener.close()
        caller.unregister()


def test_a_reused_connection_closed_before_answering_is_retried_once() -> None:
    """The server answers a first request, then closes the connection when the next one
    arrives (an idle keep-alive connection it timed out): the GET goes again, once."""
    seen: list[int] = []

    class Closing(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            while self.request.recv(65536):
                seen.append(1)
                if len(seen) == 2:
                    return  # closes without an answer
                self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Closing)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    manager = Manager()
    client = Client().register(manager)
    try:
        with running(manager):
            assert call(manager, client, "GET", url).body == b"ok"
            assert call(manager, client, "GET", url).body == b"ok"
            assert len(seen) == 3
    finally:
        server.shutdown()
        server.server_close()
