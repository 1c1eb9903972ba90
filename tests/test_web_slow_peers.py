"""Slow and vanishing peers: clients that read slowly, send slowly or leave abruptly.

What holds: a client that leaves with pipelined requests in flight makes no handler fail;
streamed responses buffer a bounded amount per connection and over all connections; slow
bodies and heads are held to a minimum rate. Timers run on virtual time where the timing
is the subject; sockets are real.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from _web_support import TIMEOUT, raw_request, serve, small_buffer_listener
from netcomp.web import Controller, HTTPLimits
from netcomp.web._exchange import OVER_BUDGET_BATCH

KiB = 1024


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


# ------------------------------------------------------- per-connection bound
class Counted(Controller):
    """``/stream``: ``chunks`` chunks of ``size`` bytes, counting what was pulled."""

    channel = "/"

    def __init__(self, chunks: int = 2048, size: int = KiB) -> None:
        super().__init__()
        self.chunks = chunks
        self.size = size
        self.produced = 0

    def index(self) -> str:
        return "ok"

    def stream(self) -> Iterator[bytes]:
        def body() -> Iterator[bytes]:
            for _ in range(self.chunks):
                self.produced += self.size
                yield b"x" * self.size

        return body()


def read_chunked_to_the_end(sock: socket.socket, data: bytes = b"") -> bytes:
    """Read a chunked response until its last chunk (the connection stays open)."""
    deadline = time.monotonic() + TIMEOUT
    while not data.endswith(b"\r\n0\r\n\r\n"):
        assert time.monotonic() < deadline, f"no end of the body in time ({len(data)} bytes)"
        chunk = sock.recv(256 * KiB)
        assert chunk, f"closed after {len(data)} bytes"
        data += chunk
    return data


def body_bytes(data: bytes) -> int:
    """The body's bytes in a raw chunked response of b"x" chunks (sizes are hex digits)."""
    return data.split(b"\r\n\r\n", 1)[1].count(b"x")


def is_cut(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (what it had sent is read and dropped)."""
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            if not sock.recv(256 * KiB):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return False


def is_cut_now(sock: socket.socket) -> bool:
    """Whether the server closed ``sock``, without waiting for more."""
    sock.setblocking(False)
    try:
        while True:
            if not sock.recv(256 * KiB):
                return True
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.settimeout(TIMEOUT)


def test_a_slow_reader_holds_at_most_high_water_plus_a_chunk() -> None:
    """The stream is pulled only while the connection is below high water (32 KiB), and
    only as much as fills it; it resumes when the reader catches up, and ends complete."""
    streams = Counted()
    with serve(streams, dispatcher=True, virtual=True, sock=small_buffer_listener()) as site:
        server = site.server
        client = slow_reader(site.port)
        try:
            client.sendall(raw_request("/stream"))
            first = client.recv(4 * KiB)  # the head and some body: the pump ran
            site.vt.settle()  # it stopped: the output is congested
            [sock] = server.connections
            high = server.limits.high_water
            assert high == 32 * KiB
            assert high < server.buffered(sock) <= high + streams.size
            # The rest went to the kernel's socket buffers (tens of KiB on both sides),
            # not megabytes: the 2 MiB body is not produced ahead of the reader.
            assert streams.produced < 256 * KiB
            data = read_chunked_to_the_end(client, first)
        finally:
            client.close()
        assert body_bytes(data) == streams.chunks * streams.size == streams.produced


def test_over_the_output_budget_slow_readers_wait_then_the_slowest_are_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Three slow readers take the output over its budget (60 KiB): the third one is
    served a small batch at a time; a fast reader still gets its whole stream and a plain
    request its answer; past the grace period the reader congested longest is closed,
    and one WARNING counts it."""
    limits = HTTPLimits(output_budget=60 * KiB, output_grace=5.0)
    streams = Counted()
    slow: list[socket.socket] = []
    with serve(
        streams, dispatcher=True, virtual=True, limits=limits, sock=small_buffer_listener()
    ) as site:
        budget = site.server.limits.budget
        assert budget is not None and budget.limit == 60 * KiB
        try:
            for _ in range(3):  # congested at 0, 1 (over: 2 x 32 KiB) and 2 s (virtual)
                client = slow_reader(site.port)
                slow.append(client)
                client.sendall(raw_request("/stream"))
                client.recv(4 * KiB)
                site.vt.settle()
                site.vt.advance(1.0)
            assert budget.over
            # The write that crossed the limit, then a small batch per connection at most.
            high = site.server.limits.high_water
            assert budget.total <= budget.limit + high + 3 * (OVER_BUDGET_BATCH + KiB)
            with site.client() as fast:
                assert fast.request(target="/").text == "ok"
                reply = fast.request(target="/stream")
                assert len(reply.body) == streams.chunks * streams.size
            assert budget.over  # the slow readers still hold it
            with caplog.at_level(logging.WARNING, logger="netcomp.net"):
                site.vt.advance(3.0)  # over since 1 s: the grace period ends at 6 s
            assert is_cut(slow[0])
            assert not budget.over and budget.total <= budget.resume
            assert not is_cut_now(slow[1]) and not is_cut_now(slow[2])
        finally:
            for client in slow:
                client.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "netcomp.net"]
    assert len(lines) == 1 and "closed 1 of 3 congested connections" in lines[0], lines
    assert budget.total == 0  # every connection closed: nothing is counted any more
