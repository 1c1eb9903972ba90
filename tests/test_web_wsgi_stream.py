"""WSGIGateway streams: chunks reach the client as the application produces them, the
worker waits for a slow reader (bounded memory), a client that leaves closes the
application's iterable and frees the worker, ``wsgi.file_wrapper`` files go out as
files. With hand-written applications and with Flask (a real framework's iterables,
``send_file`` and ``stream_with_context``).

The applications wait on events the test sets after reading what came before, so a
chunk seen before the next one exists proves it was streamed; nothing sleeps.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import flask

from _web_support import TIMEOUT, small_buffer_listener
from netcomp import Manager
from netcomp.testing import Recorder, running
from netcomp.web import Server, WSGIGateway

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
KiB = 1024
MiB = 1024 * KiB


class Steps:
    """Events an application waits on, one per step, set by the test."""

    def __init__(self, count: int) -> None:
        self.events = [threading.Event() for _ in range(count)]

    def wait(self, n: int) -> None:
        assert self.events[n].wait(TIMEOUT), f"the test never allowed step {n}"

    def allow(self, n: int) -> None:
        self.events[n].set()

    def allow_all(self) -> None:
        for event in self.events:
            event.set()


class Site:
    def __init__(self, port: int, recorder: Recorder) -> None:
        self.port = port
        self.recorder = recorder


@contextlib.contextmanager
def serve(app: Any, workers: int = 2, small: bool = False, **kwargs: Any) -> Iterator[Site]:
    """Run ``app`` under a WSGIGateway at ``/`` on a fresh server (``small``: accepted
    sockets with a 32 KiB send buffer, so backpressure shows early)."""
    manager = Manager()
    if small:
        server = Server(sock=small_buffer_listener()).register(manager)
    else:
        server = Server(("127.0.0.1", 0)).register(manager)
    WSGIGateway(app, workers=workers).register(server)
    with running(manager, **kwargs) as recorder:
        yield Site(int(server.port or 0), recorder)


def connect(port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(TIMEOUT)
    sock.connect(("127.0.0.1", port))
    return sock


def read_until(sock: socket.socket, marker: bytes, data: bytes = b"") -> bytes:
    """Read until ``marker`` is in what was read (TimeoutError from the socket if not)."""
    while marker not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before {marker!r}; got {data!r}"
        data += chunk
    return data


# ------------------------------------------------------------ hand-written apps
def test_each_chunk_reaches_the_client_before_the_next_exists() -> None:
    steps = Steps(5)

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        for n in range(5):
            if n:
                steps.wait(n)
            yield f"data: {n}\n\n".encode()

    with serve(app) as site, connect(site.port) as sock:
        try:
            sock.sendall(b"GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
            data = read_until(sock, b"data: 0\n\n")
            assert b"Transfer-Encoding: chunked" in data
            for n in range(1, 5):
                assert f"data: {n}".encode() not in data  # not produced yet
                steps.allow(n)
                data = read_until(sock, f"data: {n}\n\n".encode(), data)
            read_until(sock, b"\r\n0\r\n\r\n", data)  # and the end of the body
        finally:
            steps.allow_all()


def test_write_callable_streams_before_the_application_returns() -> None:
    steps = Steps(1)

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written first;")
        steps.wait(0)
        return [b"then returned"]

    with serve(app) as site, connect(site.port) as sock:
        try:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            data = read_until(sock, b"written first;")
            steps.allow(0)
            data = read_until(sock, b"\r\n0\r\n\r\n", data)
            assert b"then returned" in data
        finally:
            steps.allow_all()


class Producer:
    """A WSGI app: ``total`` bytes in 64 KiB chunks, recording how far it ran ahead of
    the client (``received`` is what the client has read so far)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.produced = 0
        self.received = 0
        self.ahead = 0  # the most produced and not yet read by the client

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response(
            "200 OK",
            [("Content-Type", "application/octet-stream"), ("Content-Length", str(self.total))],
        )
        block = bytes(range(256)) * 256  # 64 KiB
        while self.produced < self.total:
            self.ahead = max(self.ahead, self.produced - self.received)
            self.produced += len(block)
            yield block


def test_a_slow_reader_makes_the_worker_wait() -> None:
    """20 MiB to a client that reads 4 KiB at a time through small socket buffers: the
    application never runs more than a few hundred KiB ahead of it (it used to produce
    the whole body before the first byte went out)."""
    producer = Producer(20 * MiB)
    with serve(producer, small=True) as site, connect(site.port, rcvbuf=16 * KiB) as sock:
        sock.sendall(b"GET /download HTTP/1.1\r\nHost: t\r\n\r\n")
        head = read_until(sock, b"\r\n\r\n")
        body = len(head.split(b"\r\n\r\n", 1)[1])
        producer.received = body
        while body < producer.total:
            chunk = sock.recv(4 * KiB)
            assert chunk, f"closed after {body} bytes"
            body += len(chunk)
            producer.received = body
    assert body == producer.total == producer.produced
    # Kernel buffers (about 64 + 32 KiB), high water (32 KiB), the pipe (64 KiB), a chunk.
    assert producer.ahead < 1 * MiB, producer.ahead


def test_a_client_that_leaves_closes_the_iterable_and_frees_the_worker() -> None:
    closed = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        if environ["PATH_INFO"] == "/other":
            yield b"the worker is free"
            return
        try:
            while True:
                yield b"x" * 65536
        finally:
            closed.set()

    with serve(app, workers=1, small=True) as site:
        with connect(site.port, rcvbuf=16 * KiB) as sock:
            sock.sendall(b"GET /endless HTTP/1.1\r\nHost: t\r\n\r\n")
            read_until(sock, b"xxxx")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        assert closed.wait(TIMEOUT), "the application's generator was never closed"
        conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=TIMEOUT)
        try:
            conn.request("GET", "/other")
            assert conn.getresponse().read() == b"the worker is free"  # one worker only
        finally:
            conn.close()


def test_file_wrapper_goes_out_as_a_file(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    opened: list[Any] = []

    def app(environ: Environ, start_response: StartResponse) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        opened.append(path.open("rb"))
        return environ["wsgi.file_wrapper"](opened[-1], 32 * KiB)

    with serve(app) as site:
        for method in ("GET", "HEAD"):
            conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=TIMEOUT)
            try:
                conn.request(method, "/file")
                response = conn.getresponse()
                body = response.read()
            finally:
                conn.close()
            assert response.headers["Content-Length"] == str(len(data))  # the file's size
            assert body == (data if method == "GET" else b"")
    assert [f.closed for f in opened] == [True, True]


# ------------------------------------------------------------------- Flask
def flask_app(steps: Steps, producer: Producer, tmp_path: Path) -> flask.Flask:
    app = flask.Flask("netcomp_test")
    (tmp_path / "page.txt").write_bytes(b"a file sent by Flask\n" * 1000)

    @app.route("/lines")
    def lines() -> flask.Response:
        def generate() -> Iterator[str]:
            for n in range(5):
                if n:
                    steps.wait(n)
                yield f"line {n}\n"

        return flask.Response(flask.stream_with_context(generate()), mimetype="text/plain")

    @app.route("/hello")
    def hello() -> str:
        return "hello from Flask"

    @app.route("/download")
    def download() -> flask.Response:
        response = flask.Response(
            producer(flask.request.environ, lambda *a: None), mimetype="application/octet-stream"
        )
        response.headers["Content-Length"] = str(producer.total)
        return response

    @app.route("/file")
    def file() -> flask.Response:
        return flask.send_file(tmp_path / "page.txt", mimetype="text/plain")

    return app


def test_flask_streams_a_generator_response(tmp_path: Path) -> None:
    steps = Steps(5)
    app = flask_app(steps, Producer(0), tmp_path)
    with serve(app) as site, connect(site.port) as sock:
        try:
            sock.sendall(b"GET /lines HTTP/1.1\r\nHost: t\r\n\r\n")
            data = read_until(sock, b"line 0\n")
            for n in range(1, 5):
                assert f"line {n}".encode() not in data
                steps.allow(n)
                data = read_until(sock, f"line {n}\n".encode(), data)
        finally:
            steps.allow_all()


def test_flask_plain_view_file_and_large_download(tmp_path: Path) -> None:
    producer = Producer(20 * MiB)
    app = flask_app(Steps(0), producer, tmp_path)
    with serve(app, small=True) as site:
        conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=TIMEOUT)
        # A small window too: a 32 KiB send buffer facing a large window stalls on
        # delayed ACKs (tens of ms per window), which has nothing to do with netcomp.
        conn.sock = connect(site.port, rcvbuf=64 * KiB)
        try:
            conn.request("GET", "/hello")
            response = conn.getresponse()
            assert response.read() == b"hello from Flask"
            assert response.headers["Content-Length"] == "16"  # Werkzeug's, kept
            conn.request("GET", "/file")
            response = conn.getresponse()
            assert response.read() == (tmp_path / "page.txt").read_bytes()
            conn.request("GET", "/download")
            response = conn.getresponse()
            digest = hashlib.sha256()
            while True:
                chunk = response.read(64 * KiB)
                if not chunk:
                    break
                producer.received += len(chunk)
                digest.update(chunk)
        finally:
            conn.close()
    expected = hashlib.sha256()
    block = bytes(range(256)) * 256
    for _ in range(producer.total // len(block)):
        expected.update(block)
    assert digest.hexdigest() == expected.hexdigest()
    assert producer.ahead < 2 * MiB, producer.ahead
