"""A private redis-server for the broker tests, and peer processes that run bridges.

* :class:`RedisServer` starts ``redis-server`` on a free port (no persistence, or with an
  append-only file), waits for its "Ready to accept connections" line (no polling, with a
  hard timeout), and stops it by PID: gracefully, or with ``kill -9``; ``restart()`` starts
  it again on the same port and directory.
* :class:`Peer` runs ``tests/_broker_peer.py`` in another Python process and reads what it
  prints, line by line, with timeouts.

Every broker test skips, saying why, when ``redis-server`` or hiredis is missing.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REDIS_SERVER = shutil.which("redis-server")
PEER = Path(__file__).with_name("_broker_peer.py")


def need_redis() -> None:
    """Skip the calling test when there is no redis-server or no hiredis."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (.ci/run installs the Debian package)")
    try:
        import hiredis  # noqa: F401
    except ImportError:
        pytest.skip("hiredis is not installed: pip install -e '.[redis]'")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _read_until(
    proc: subprocess.Popen[str], marker: str, timeout: float, rest: list[str] | None = None
) -> list[str]:
    """Lines of ``proc``'s stdout up to the one containing ``marker``; ``rest`` keeps what
    was read past it, for the next call."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    fd = proc.stdout.fileno()
    buffer = rest.pop() if rest else ""
    while True:
        while "\n" in buffer:
            line, buffer = buffer.split("\n", 1)
            seen.append(line)
            if marker in line:
                if rest is not None:
                    rest.append(buffer)
                return seen
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {marker!r} within {timeout} s; output: {seen[-10:]}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536).decode("utf-8", "replace")
            if not chunk:
                raise RuntimeError(f"process ended before {marker!r}; output: {seen[-20:]}")
            buffer += chunk


class RedisServer:
    """One redis-server process of the test run (see the module's doc)."""

    def __init__(
        self, folder: Path, *options: str, aof: bool = False, port: int | None = None
    ) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.options = list(options)
        self.aof = aof
        self.proc: subprocess.Popen[str] | None = None
        self.tls_port: int | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        assert REDIS_SERVER is not None
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.aof
            else ["--appendonly", "no"]
        )
        return [
            REDIS_SERVER,
            "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--dir", str(self.folder), *persistence, "--daemonize", "no",
            "--loglevel", "notice", "--logfile", "", *self.options,
        ]  # fmt: skip

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start it and return once it accepts connections."""
        self.proc = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        _read_until(self.proc, "Ready to accept connections", timeout)
        return self

    def kill(self) -> None:
        """``kill -9``: no shutdown, no final write."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._close()

    def stop(self) -> None:
        """Stop it gracefully (SIGTERM), by PID, and wait for it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._close()

    def _close(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def restart(self, timeout: float = 10.0) -> RedisServer:
        """Start it again, same port and directory (the AOF is loaded)."""
        return self.start(timeout)

    def call(self, *args: str | bytes | int) -> Any:
        """Run one command with a plain blocking socket (hiredis parses the reply)."""
        import hiredis

        reader = hiredis.Reader()
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(hiredis.pack_command(args))  # type: ignore[arg-type]
            while True:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("redis closed the connection")
                reader.feed(data)
                reply = reader.gets()
                if reply is not False:
                    return reply


@contextlib.contextmanager
def redis_server(
    folder: Path, *options: str, aof: bool = False, port: int | None = None
) -> Iterator[RedisServer]:
    """A started server, stopped by PID on exit."""
    need_redis()
    server = RedisServer(folder, *options, aof=aof, port=port).start()
    try:
        yield server
    finally:
        server.stop()


class Peer:
    """Another process running a bridge (``tests/_broker_peer.py ROLE URL [options]``)."""

    def __init__(
        self,
        role: str,
        url: str,
        *options: str,
        script: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """``script``: run that program (and arguments) instead of the peer script."""
        env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        argv = script if script is not None else [str(PEER), role, url, *options]
        self.proc = subprocess.Popen(
            [sys.executable, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.pid = self.proc.pid
        self.output: list[str] = []
        self._rest: list[str] = []

    def wait_line(self, marker: str, timeout: float = 15.0) -> list[str]:
        """Block until the peer printed a line containing ``marker``."""
        lines = _read_until(self.proc, marker, timeout, self._rest)
        self.output += lines
        return lines

    def kill(self) -> None:
        """``kill -9`` the peer."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM (a graceful stop of its loop); returns its exit status."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()
