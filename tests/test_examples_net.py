"""The network examples run, serve what their opening comment says, and stop cleanly.

Each example is started on port 0 in a subprocess; its `listening on HOST:PORT` line (read
by a thread, waited for with a timeout) gives the real port; stdlib sockets talk to it; then
a signal stops it and it must exit with status 0 after printing `stopped`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
TIMEOUT = 10.0
LISTENING = re.compile(r"^listening on 127\.0\.0\.1:(\d+)$")


class Example:
    """A running example: its process, its stdout lines (via a reader thread), its port."""

    def __init__(self, name: str, *argv: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / name), *(argv or ("0",))],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.errors: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self.reader.start()
        self.err_reader = threading.Thread(
            target=self.errors.extend, args=(self.proc.stderr,), daemon=True
        )
        self.err_reader.start()
        self.port = 0

    def wait_listening(self) -> None:
        """Read the first line, ``listening on 127.0.0.1:PORT``, and keep the real port."""
        first = self.next_line()
        match = LISTENING.match(first)
        assert match, f"expected 'listening on 127.0.0.1:PORT', got {first!r}"
        self.port = int(match.group(1))
        assert self.port != 0

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self) -> str:
        try:
            line = self.lines.get(timeout=TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"no output within {TIMEOUT} s") from None
        if line is None:
            self.proc.wait(TIMEOUT)
            self.err_reader.join(TIMEOUT)
            err = "".join(self.errors)
            raise AssertionError(f"the example's output ended early; stderr:\n{err}")
        return line

    def stop(self, signo: int = signal.SIGTERM) -> tuple[int, list[str], str]:
        """Send ``signo``; return the exit status, the remaining stdout lines and stderr."""
        self.proc.send_signal(signo)
        self.proc.wait(TIMEOUT)
        self.reader.join(TIMEOUT)
        self.err_reader.join(TIMEOUT)
        err = "".join(self.errors)
        rest: list[str] = []
        while not self.lines.empty():
            line = self.lines.get_nowait()
            if line is not None:
                rest.append(line)
        return self.proc.returncode, rest, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(TIMEOUT)
        self.reader.join(TIMEOUT)  # both readers end at EOF, before their streams close
        self.err_reader.join(TIMEOUT)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def example(name: str) -> Iterator[Example]:
    running = Example(name)
    try:
        running.wait_listening()
        yield running
    finally:
        running.kill()


def assert_clean_stop(ex: Example, signo: int = signal.SIGTERM) -> None:
    code, rest, err = ex.stop(signo)
    assert code == 0, err
    assert rest[-1:] == ["stopped"], (rest, err)
    assert "Traceback" not in err, err


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.settimeout(TIMEOUT)
    return sock


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(min(65536, size - len(chunks)))
        assert chunk, f"connection closed after {len(chunks)} of {size} bytes"
        chunks += chunk
    return bytes(chunks)


# ------------------------------------------------------------------ echo
@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_echo_server_echoes_and_stops_on_signal(signo: int) -> None:
    with example("echo_server.py") as ex:
        with connect(ex.port) as one, connect(ex.port) as two:
            one.sendall(b"hello\n")
            two.sendall(b"world\n")
            assert receive_exactly(one, 6) == b"hello\n"
            assert receive_exactly(two, 6) == b"world\n"
            payload = bytes(range(256)) * 1024  # 256 KiB, more than one read
            one.sendall(payload)
            assert receive_exactly(one, len(payload)) == payload
        assert_clean_stop(ex, signo)


# ------------------------------------------------------------------ chat
def test_chat_server_relays_lines_and_announces_joins_and_leaves() -> None:
    with example("chat_server.py") as ex:
        alice = connect(ex.port)
        alice_in = alice.makefile("rb")
        alice_name = f"127.0.0.1:{alice.getsockname()[1]}"
        assert alice_in.readline() == f"*** welcome {alice_name}, 0 other(s) here\n".encode()

        bob = connect(ex.port)
        bob_in = bob.makefile("rb")
        bob_name = f"127.0.0.1:{bob.getsockname()[1]}"
        assert bob_in.readline() == f"*** welcome {bob_name}, 1 other(s) here\n".encode()
        assert alice_in.readline() == f"*** {bob_name} joined\n".encode()

        alice.sendall(b"hi bob\r\nare you th")
        alice.sendall(b"ere?\n")
        assert bob_in.readline() == f"[{alice_name}] hi bob\n".encode()
        assert bob_in.readline() == f"[{alice_name}] are you there?\n".encode()
        bob.sendall(b"yes\n")
        assert alice_in.readline() == f"[{bob_name}] yes\n".encode()

        bob_in.close()
        bob.close()
        assert alice_in.readline() == f"*** {bob_name} left\n".encode()
        alice_in.close()
        alice.close()
        assert_clean_stop(ex)


# ------------------------------------------------------------------- udp
def test_udp_echo_answers_datagrams() -> None:
    with (
        example("udp_echo.py") as ex,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer,
    ):
        peer.settimeout(TIMEOUT)
        peer.bind(("127.0.0.1", 0))
        for payload in (b"ping", b"", b"x" * 60_000):
            peer.sendto(payload, ("127.0.0.1", ex.port))
            data, source = peer.recvfrom(65536)
            assert data == payload
            assert source == ("127.0.0.1", ex.port)
        assert_clean_stop(ex)


# ------------------------------------------------------------ reconnecting client
def test_reconnecting_client_delivers_what_it_queued_while_the_server_was_down() -> None:
    from _fault_proxy import RestartableServer

    with RestartableServer(echo=True) as server:
        ex = Example("reconnecting_client.py", str(server.port), "--interval", "0.05")
        try:
            connected = f"connected to 127.0.0.1:{server.port}"
            assert ex.next_line() == connected
            echoes: list[int] = []

            def until(predicate: Callable[[str], bool]) -> str:
                for _ in range(1000):  # bounded; each line waits at most TIMEOUT
                    line = ex.next_line()
                    if line.startswith("echo: tick "):
                        echoes.append(int(line.split()[-1]))
                    if predicate(line):
                        return line
                raise AssertionError("the expected line never came")

            until(lambda line: line.startswith("echo: "))
            server.stop()
            until(lambda line: line == "disconnected")
            until(lambda line: line.startswith("unreachable 127.0.0.1"))  # retrying
            server.start()
            line = until(lambda line: line.startswith(connected))
            match = re.fullmatch(
                re.escape(connected) + r" \(delivering (\d+) queued line\(s\)\)", line
            )
            assert match, line
            queued = int(match.group(1))
            assert queued >= 1
            last_before = echoes[-1]
            until(lambda line: len([n for n in echoes if n > last_before]) > queued)
            assert echoes == sorted(set(echoes)), "a tick came back twice or out of order"
            code, rest, err = ex.stop(signal.SIGTERM)
            assert code == 0, err
            assert rest[-1:] == ["stopped"], (rest, err)
            assert "Traceback" not in err, err
        finally:
            ex.kill()


def test_file_to_server_sink_listens_on_both_families() -> None:
    from _net_support import ipv6_loopback

    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    ex = Example("file_to_server.py", "sink", "0", "--also", "[::1]:0")
    try:
        ex.wait_listening()
        v6 = re.match(r"^listening on \[::1\]:(\d+)$", ex.next_line())
        assert v6, "expected the second address's line"
        data = bytes(range(256)) * 4096
        with socket.create_connection(("::1", int(v6.group(1))), timeout=TIMEOUT) as up:
            up.sendall(data)
            port = up.getsockname()[1]
        line = ex.next_line()
        digest = hashlib.sha256(data).hexdigest()
        assert line == f"received {len(data)} bytes from [::1]:{port} sha256={digest}"
        code, _rest, err = ex.stop(signal.SIGINT)
        assert code == 0, err
    finally:
        ex.kill()


# ------------------------------------------------------------------ worker processes


def http_get(port: int, path: str) -> str:
    """One request on a new connection; the body."""
    with connect(port) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    return body.decode()


def test_worker_processes_serve_with_their_own_state_and_are_supervised() -> None:
    ex = Example("worker_processes.py", "0", "2")
    try:
        port = int(re.fullmatch(r"listening on http://127\.0\.0\.1:(\d+)", ex.next_line())[1])
        line = re.fullmatch(r"supervisor pid (\d+), workers \[(\d+), (\d+)\]", ex.next_line())
        assert line and int(line[1]) == ex.proc.pid
        first = {int(line[2]), int(line[3])}
        answered: dict[int, int] = {}
        for _ in range(200):  # the kernel spreads new connections over both workers
            pid, count = re.fullmatch(
                r"worker pid (\d+) has answered (\d+) requests\n", http_get(port, "/hits")
            ).groups()  # type: ignore[union-attr]
            answered[int(pid)] = answered.get(int(pid), 0) + 1
            # Each worker counts its own answers only: state in a tree is per worker.
            assert int(count) == answered[int(pid)], (pid, count, answered)
            if len(answered) == 2 and min(answered.values()) >= 3:
                break
        assert set(answered) == first

        ex.proc.send_signal(signal.SIGHUP)  # a rolling restart: new workers, one at a time
        line = re.fullmatch(r"rolling restart done: workers \[(\d+), (\d+)\]", ex.next_line())
        assert line
        second = {int(line[1]), int(line[2])}
        assert not second & first
        assert int(http_get(port, "/").split()[-1]) in second

        victim = min(second)
        os.kill(victim, signal.SIGKILL)  # replaced at once
        deadline = time.monotonic() + TIMEOUT
        seen: set[int] = set()
        while not seen - second and time.monotonic() < deadline:
            seen.add(int(http_get(port, "/").split()[-1]))
        assert seen - second, seen
        assert victim not in seen
        assert_clean_stop(ex)
    finally:
        ex.kill()
