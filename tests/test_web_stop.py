"""A web server's graceful stop, connection by connection: an idle keep-alive connection
closes at once, but one accepted a moment before the stop gets its first request
answered (``Connection: close``) if it comes within ``FIRST_REQUEST_GRACE`` seconds:
during a rolling restart of worker processes, closing it would fail a request that no
client retries. Virtual time: the grace passes only when the test says so."""

from __future__ import annotations

import socket

from _web_support import serve
from netcomp.web._link import FIRST_REQUEST_GRACE

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def hello(request: object, response: object) -> str:
    return "hello"


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_an_idle_keep_alive_connection_closes_at_once() -> None:
    with (
        serve(hello, virtual=True) as site,
        socket.create_connection(("127.0.0.1", site.port), timeout=5) as sock,
    ):
        sock.sendall(REQUEST)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ") and first.endswith(b"hello")
        site.manager.stop()
        assert read_all(sock) == b""  # no time passed: closed as the stop began


def test_a_request_on_its_way_to_a_new_connection_is_answered() -> None:
    with (
        serve(hello, virtual=True) as site,
        socket.create_connection(("127.0.0.1", site.port), timeout=5) as sock,
    ):
        site.recorder.wait_for("connect")
        site.manager.stop()
        site.recorder.wait_for("stopped", done=False)
        site.vt.advance(FIRST_REQUEST_GRACE / 2)
        sock.sendall(REQUEST)
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nConnection: close\r\n" in answer and answer.endswith(b"hello")


def test_a_new_connection_that_sends_nothing_is_closed_after_the_grace() -> None:
    with (
        serve(hello, virtual=True) as site,
        socket.create_connection(("127.0.0.1", site.port), timeout=5) as sock,
    ):
        site.recorder.wait_for("connect")
        site.manager.stop()
        site.recorder.wait_for("stopped", done=False)
        site.vt.advance(FIRST_REQUEST_GRACE * 0.9)
        sock.setblocking(False)
        try:
            early = sock.recv(1)
        except BlockingIOError:
            early = None
        assert early is None  # still open
        sock.setblocking(True)
        site.vt.advance(FIRST_REQUEST_GRACE * 0.2)
        assert read_all(sock) == b""
