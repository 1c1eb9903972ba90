"""Slow and vanishing peers: clients that read slowly, send slowly or leave abruptly.

What holds: a client that leaves with pipelined requests in flight makes no handler fail;
streamed responses buffer a bounded amount per connection and over all connections; slow
bodies and heads are held to a minimum rate. Timers run on virtual time where the timing
is the subject; sockets are real.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from _web_support import TIMEOUT, raw_request, serve, small_buffer_listener
from netcomp.web import Controller


def reset(sock: socket.socket) -> None:
    """Close ``sock`` abruptly: the kernel sends a reset, not a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def slow_reader(port: int, rcvbuf: int = 4096) -> socket.socket:
    """A client socket with a small receive window (it reads nothing unless told)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(TIMEOUT)
    sock.connect(("127.0.0.1", port))
    return sock


class Streams(Controller):
    """``/stream``: a long generated body (as the demo's); ``/hold``: blocks the loop thread
    until the test releases it (a long batch of handlers, as a busy server runs);
    ``/broken``: a streamed body that raises at once; ``/file``: this file; ``/``: "ok"."""

    channel = "/"

    def __init__(self) -> None:
        super().__init__()
        self.holding = threading.Event()
        self.release = threading.Event()
        self.calls = 0
        self.files: list[Any] = []

    def index(self) -> str:
        return "ok"

    def stream(self) -> Iterator[bytes]:
        self.calls += 1
        return (b"x" * 1024 for _ in range(1000))

    def hold(self) -> str:
        self.holding.set()
        assert self.release.wait(TIMEOUT), "the test never released the handler"
        return "held"

    def file(self) -> Any:
        self.files.append(open(__file__, "rb"))  # noqa: SIM115 (the server closes it)
        return self.files[-1]

    def broken(self) -> Iterator[bytes]:
        def body() -> Iterator[bytes]:
            raise OSError("the source broke")
            yield b""  # pragma: no cover

        return body()


# ------------------------------------------------------ pipelined close race
def test_client_leaving_with_pipelined_requests_makes_no_handler_fail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The race behind "RuntimeError: the response is already being sent": the server has
    read several pipelined requests and fired them; before their handlers run, the client
    resets the connection; the first response's write finds the connection gone, and the
    handlers after it set bodies on responses whose connection is gone. They run quietly,
    and a file one of them returns is closed."""
    streams = Streams()
    with serve(streams, dispatcher=True, sock=small_buffer_listener()) as site:
        client = slow_reader(site.port)
        client.sendall(raw_request("/hold") + raw_request("/stream") * 3 + raw_request("/file"))
        assert streams.holding.wait(TIMEOUT)  # the loop is inside the first handler
        reset(client)
        streams.release.set()
        site.recorder.wait_for("request", count=5)  # every handler is done
        with site.client() as other:  # the server goes on
            assert other.request(target="/").text == "ok"
        assert streams.calls == 3
        assert [f.closed for f in streams.files] == [True]
    # serve() fails the test on any ``exception`` event (a handler that raised).
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []


def test_stream_failing_before_pipelined_handlers_run_fails_only_itself() -> None:
    """A streamed body that raises cuts its connection while later pipelined requests are
    still to be handled: their handlers run quietly, the failure is reported once."""
    streams = Streams()
    with serve(streams, dispatcher=True, check_errors=False) as site:
        with site.client() as client:
            client.send(raw_request("/broken") + raw_request("/stream") * 2)
            assert client.read_all().startswith(b"HTTP/1.1 200 OK\r\n")  # then cut
        site.recorder.wait_for("request", count=3)
        site.recorder.wait_for("exception")
        errors = [event.args[1] for event in site.recorder.errors]
        assert [type(e) for e in errors] == [OSError], errors
        assert streams.calls == 2
