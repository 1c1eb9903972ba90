"""Helpers for the tests of worker processes (``test_supervisor*``).

* :class:`Supervised` runs a supervisor (the ``netcomp`` command, ``python -m
  netcomp.web`` or a script) as a real process; its stdout and stderr lines are read by
  threads into queues, and ``out``/``err`` wait (with a hard timeout) for the next line
  that matches. Closing it stops it (SIGTERM, then SIGKILL).
* :class:`Load` runs client threads that make requests in a bounded loop, each on a new
  connection (``Connection: close``) or on one kept-alive connection, and record who
  answered (the worker's pid in the body) and every error, by kind.
* :func:`exited` waits for a process that is not ours (a worker) to end, on a pidfd.

Nothing sleeps to synchronise: waits are on queues, sockets and pidfds, with deadlines.
"""

from __future__ import annotations

import http.client
import os
import queue
import re
import select
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO

TIMEOUT = 10.0
APP = """
import os
import threading

from netcomp import Component, Manager
from netcomp.net import TCPServer
from netcomp.web import Controller, Server


class Root(Controller):
    channel = "/"

    def index(self):
        return f"{os.getpid()}\\n"

    def block(self):
        print("blocking", os.getpid(), flush=True)
        threading.Event().wait(60)
        return "unblocked"


def web(bind="127.0.0.1:0"):
    return Server(bind) + Root()


def broken():
    raise RuntimeError("no database")


class Die(Component):
    def started(self, manager):
        self.loop.call_later(0.05, os._exit, 3)


def dying():
    return Server("127.0.0.1:0") + Root() + Die()


class Echo(Component):
    channel = "echo"

    def read(self, sock, data):
        return f"{os.getpid()} ".encode() + data


def flaky():
    if os.path.exists("broken.flag"):  # a deploy that cannot start
        raise RuntimeError("broken deploy")
    return web()


def two_servers():
    root = Manager()
    TCPServer(0, channel="echo").register(root)
    Echo().register(root)
    (Server(0) + Root()).register(root)
    return root
"""

SUPERVISE = """
import json
import sys

from netcomp import Component, configure_logging
from netcomp.net import Supervisor


class Show(Component):
    def serving(self, supervisor):
        print("serving", json.dumps(supervisor.listening), flush=True)
        print("pids", json.dumps(supervisor.pids), flush=True)
        print("reuse_port", supervisor.reuse_port, flush=True)


configure_logging("info", pid=True)
supervisor = Supervisor(sys.argv[1], **json.loads(sys.argv[2]))
Show().register(supervisor)
code = supervisor.run()
print("failure", supervisor.failure, flush=True)
sys.exit(code)
"""


def write_app(directory: Path) -> Path:
    """The test application (``wapp``) and the supervisor script (``supervise.py``)."""
    (directory / "wapp.py").write_text(APP)
    (directory / "supervise.py").write_text(SUPERVISE)
    return directory


class Supervised:
    """A supervisor process; ``out(pattern)``/``err(pattern)`` wait for matching lines."""

    def __init__(self, *argv: str, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd
        )
        self._queues: dict[str, queue.Queue[str | None]] = {
            "out": queue.Queue(),
            "err": queue.Queue(),
        }
        #: Every stderr line so far.
        self.errors: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, "out"), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, "err"), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str], name: str) -> None:
        for line in stream:
            line = line.rstrip("\n")
            if name == "err":
                self.errors.append(line)
            self._queues[name].put(line)
        self._queues[name].put(None)

    def _expect(self, name: str, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._queues[name].get(timeout=left) if left > 0 else None
            except queue.Empty:
                line = None
            if line is None:  # out of time, or the stream ended
                tail = "\n".join(self.errors[-30:])
                raise AssertionError(
                    f"no {name} line matching {pattern!r} (last seen: {seen[-5:]!r}); "
                    f"stderr:\n{tail}"
                )
            seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def out(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        """The next stdout line matching ``pattern`` (a regex, searched)."""
        return self._expect("out", pattern, timeout)

    def err(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        """The next stderr line matching ``pattern`` (a regex, searched)."""
        return self._expect("err", pattern, timeout)

    def port(self) -> int:
        """Wait for ``listening on http://127.0.0.1:PORT``; the port."""
        return int(self.out(r"^listening on http://127\.0\.0\.1:(\d+)$").group(1))

    def signal(self, signo: int) -> None:
        """Send ``signo`` to the supervisor."""
        self.proc.send_signal(signo)

    def wait(self, timeout: float = TIMEOUT) -> int:
        """Its exit status, once it has exited (and its pipes are read to the end)."""
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return code

    def close(self) -> None:
        """Stop it if it still runs (SIGTERM, then SIGKILL) and close its pipes."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(TIMEOUT)
        for reader in self._readers:
            reader.join(TIMEOUT)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def get(port: int, path: str = "/", timeout: float = TIMEOUT) -> tuple[int, bytes]:
    """One request on a new connection: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def pid_of(body: bytes) -> int:
    """The pid a test application's index page gives."""
    return int(body.decode().strip())


class Load:
    """Client threads requesting ``/`` in a bounded loop until :meth:`stop`.

    ``close``: threads making one connection per request; ``keep_alive``: threads keeping
    one connection, which retry once on a new connection when the server closed the one
    they reused before answering (what HTTP clients do for an idempotent request; those
    retries are counted apart). ``answers`` counts responses by pid; ``errors`` lists
    (time, kind) of every request that failed.
    """

    def __init__(
        self, port: int, close: int = 3, keep_alive: int = 0, limit: int = 20_000
    ) -> None:
        self.port = port
        self.limit = limit
        self.answers: Counter[int] = Counter()
        self.first_seen: dict[int, float] = {}
        self.errors: list[tuple[float, str]] = []
        self.retries = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._changed = threading.Condition(self._lock)
        targets: list[Callable[[], None]] = [self._close_loop] * close
        targets += [self._keep_alive_loop] * keep_alive
        self._threads = [threading.Thread(target=t, daemon=True) for t in targets]
        for thread in self._threads:
            thread.start()

    def _record(self, pid: int | None, error: BaseException | None = None) -> None:
        with self._changed:
            if pid is not None:
                self.answers[pid] += 1
                self.first_seen.setdefault(pid, time.monotonic())
            else:
                self.errors.append((time.monotonic(), type(error).__name__))
            self._changed.notify_all()

    def _close_loop(self) -> None:
        for _ in range(self.limit):
            if self._stop.is_set():
                return
            try:
                status, body = get(self.port)
                assert status == 200, status
                self._record(pid_of(body))
            except (OSError, http.client.HTTPException, AssertionError) as error:
                self._record(None, error)

    def _keep_alive_loop(self) -> None:
        conn: http.client.HTTPConnection | None = None
        for _ in range(self.limit):
            if self._stop.is_set():
                break
            reused = conn is not None
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
            try:
                conn.request("GET", "/")
                response = conn.getresponse()
                body = response.read()
                self._record(pid_of(body))
                if response.will_close:
                    conn.close()
                    conn = None
            except (
                http.client.RemoteDisconnected,
                ConnectionResetError,
                BrokenPipeError,
            ) as error:
                conn.close()
                conn = None
                if reused:
                    with self._lock:
                        self.retries += 1
                    continue  # the next turn retries on a new connection
                self._record(None, error)
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                conn = None
                self._record(None, error)
        if conn is not None:
            conn.close()

    def wait_until(self, condition: Callable[[Load], bool], timeout: float = TIMEOUT) -> None:
        """Until ``condition(self)`` holds (checked after each answer), or fail."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition(self):
                left = deadline - time.monotonic()
                if left <= 0 or not any(t.is_alive() for t in self._threads):
                    raise AssertionError(
                        f"load: condition not met; answers {dict(self.answers)}, "
                        f"errors {self.errors[-10:]}"
                    )
                self._changed.wait(left)

    def stop(self) -> None:
        """Stop the threads (each finishes its request in flight)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(TIMEOUT + 1)


def exited(pid: int, timeout: float = TIMEOUT) -> bool:
    """Whether process ``pid`` (not necessarily a child) ends within ``timeout`` s."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(fd)


__all__ = [
    "TIMEOUT",
    "Load",
    "Supervised",
    "exited",
    "get",
    "pid_of",
    "write_app",
]
