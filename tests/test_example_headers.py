"""The commands in each example's header work when pasted into a shell, in order.

Each example opens with a "Poke it:" block: a command per line, a comment in brackets after
it. This test runs those commands as written, with one change: a port number in the
header is replaced by the port the server really bound (servers are started on port 0, so
tests never fight over ports). Lines that are prose, not commands, are read and skipped.
What each command should do is checked from its comment: a status in it (``303``) must be
the status curl printed; ``nc`` sessions type a line and check what comes back.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TIMEOUT = 10.0
LISTENING = re.compile(r"listening on (?:http://)?127\.0\.0\.1:(\d+)")
PORT = re.compile(r"\b(8\d{3}|9\d{3})\b")
PROGRAMS = ("python", "curl", "nc")

needs_nc = pytest.mark.skipif(shutil.which("nc") is None, reason="nc (netcat) is not installed")
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
#: circuits_chat.py imports circuits.net.sockets and circuits.net.events, which
#: ``python -m netcomp.compat`` maps to these modules.
needs_net_modules = pytest.mark.skipif(
    not all(importlib.util.find_spec(f"netcomp.net.{name}") for name in ("sockets", "events")),
    reason="needs netcomp.net.sockets and netcomp.net.events (circuits' net module names)",
)


@dataclass
class Step:
    command: str
    comment: str


def steps(example: str) -> list[Step]:
    """The commands of ``example``'s "Poke it:" block, with their comments."""
    text = (EXAMPLES / example).read_text()
    block = text.split("Poke it:", 1)[1].split('"""', 1)[0]
    found = []
    for line in block.splitlines():
        line = line.strip()
        if not line.startswith(PROGRAMS):
            continue  # prose: what to do by hand
        parts = re.split(r"\s{2,}(?=\()", line, maxsplit=1)
        command = parts[0].strip()
        comment = parts[1].strip() if len(parts) > 1 else ""
        found.append(Step(command, comment))
    assert found, f"{example} has no commands in its header"
    return found


def argv_of(command: str) -> list[str]:
    """A header command as the shell would split it; ``python`` is this test's Python."""
    argv = shlex.split(command)
    if argv[0] == "python":
        argv[0] = sys.executable
    return argv


class Program:
    """A command running in the background; its output is read line by line (timeouts)."""

    def __init__(self, command: str) -> None:
        self.proc = subprocess.Popen(
            argv_of(command),
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, pattern: str | re.Pattern[str]) -> re.Match[str]:
        """The first line from now on that matches (within TIMEOUT s)."""
        while True:
            line = self.lines.get(timeout=TIMEOUT)
            if line is None:
                raise AssertionError(f"ended before {pattern!r}; saw {self.seen[-10:]}")
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def type(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def interrupt(self) -> int:
        """Ctrl-C, as a terminal sends it (to the process group); the exit status."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(TIMEOUT)

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(TIMEOUT)
        self._reader.join(TIMEOUT)  # the pipe is at its end: the reader is done
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class Session:
    """Runs a header's commands in order, mapping header ports to the real ones."""

    def __init__(self) -> None:
        self.ports: dict[str, str] = {}
        self.programs: list[Program] = []

    def real(self, command: str) -> str:
        return PORT.sub(lambda m: self.ports.get(m.group(1), m.group(1)), command)

    def start_server(self, step: Step) -> Program:
        """Start a server command with its port set to 0; learn the port it bound."""
        header_port = PORT.search(step.command)
        assert header_port, step.command
        program = self.start(PORT.sub("0", step.command, count=1))
        self.ports[header_port.group(1)] = program.expect(LISTENING).group(1)
        return program

    def start(self, command: str) -> Program:
        program = Program(self.real(command))
        self.programs.append(program)
        return program

    def run(self, step: Step) -> str:
        """Run a command to its end (it must succeed); its output."""
        argv = argv_of(self.real(step.command))
        proc = subprocess.run(
            argv, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
        assert proc.returncode == 0, (step.command, proc.stderr)
        status = re.search(r"\b([1-5]\d\d)\b", step.comment)
        if status and "-i" in argv:
            assert re.match(rf"HTTP/1\.1 {status.group(1)} ", proc.stdout), (step, proc.stdout)
        return proc.stdout

    def close(self) -> None:
        for program in reversed(self.programs):
            program.close()


@pytest.fixture
def session() -> Iterator[Session]:
    running = Session()
    try:
        yield running
    finally:
        running.close()


def test_every_example_header_is_covered_here() -> None:
    covered = {
        "hello.py",
        "workers.py",
        "echo_server.py",
        "chat_server.py",
        "udp_echo.py",
        "reconnecting_client.py",
        "web_app.py",
        "circuits_chat.py",
        "distributed_jobs.py",  # tests/test_broker.py (needs redis-server)
        "websocket_chat.py",
        "web_members.py",
        "web_rpc.py",
        "web_fetch.py",
        "wsgi_app.py",
        "inspector.py",
        "slow_readers.py",
        "file_to_server.py",
        "worker_processes.py",
    }
    assert {p.name for p in EXAMPLES.glob("*.py")} == covered


def test_hello_header(session: Session) -> None:
    three, forever = steps("hello.py")
    assert three.comment == "(three ticks, then exits)"
    out = session.run(three)
    assert out.count("Hello, tick #") == 3
    program = session.start(forever.command)
    program.expect(r"Hello, tick #2!")
    assert program.interrupt() == 0  # "(runs until Ctrl-C / SIGTERM: a graceful stop)"
    program.expect(r"^stopped after \d+ ticks$")


def test_workers_header(session: Session) -> None:
    (only,) = steps("workers.py")
    out = session.run(only)  # "(computes two results, then exits 0)"
    assert len(re.findall(r"slow_square\(\d+\) = \d+", out)) == 2


@needs_nc
def test_echo_server_header(session: Session) -> None:
    server, client = steps("echo_server.py")
    session.start_server(server)
    nc = session.start(client.command)
    nc.type("hello netcomp\n")
    nc.expect(r"^hello netcomp$")  # "(type lines: they come back)"


@needs_nc
def test_udp_echo_header(session: Session) -> None:
    server, client = steps("udp_echo.py")
    session.start_server(server)
    nc = session.start(client.command)
    nc.type("datagram one\n")
    nc.expect(r"^datagram one$")  # "(each line you type comes back)"


@needs_nc
def test_chat_server_header(session: Session) -> None:
    server, client = steps("chat_server.py")
    session.start_server(server)
    ada = session.start(client.command)  # "(in two or more terminals, and talk)"
    ada.expect(r"\*\*\* welcome ")
    bob = session.start(client.command)
    bob.expect(r"\*\*\* welcome ")
    ada.expect(r"joined")
    ada.type("hi bob\n")
    bob.expect(r"\] hi bob$")


@needs_nc
@needs_net_modules
def test_circuits_chat_header(session: Session) -> None:
    server, client = steps("circuits_chat.py")
    assert server.command.startswith("python -m netcomp.compat examples/circuits_chat.py")
    session.start_server(server)
    ada = session.start(client.command)  # "(in two or more terminals)"
    ada.expect(r"^\*\*\* welcome ")
    bob = session.start(client.command)
    bob.expect(r"^\*\*\* welcome ")
    ada.expect(r"joined$")
    ada.type("hi bob\n")
    bob.expect(r"> hi bob$")


def test_file_to_server_header(session: Session) -> None:
    sink, send = steps("file_to_server.py")
    server = session.start_server(sink)
    out = session.run(send)  # "(about 0.2 s)": README.md at 50 kB/s, paced by the reader
    size = (ROOT / "README.md").stat().st_size
    sent = re.search(
        rf"^sent {size} bytes of README.md sha256=(\w+) \(paused \d+ times\)$", out, re.M
    )
    assert sent and re.search(r"^connected to 127\.0\.0\.1:\d+ from 127\.0\.0\.1:\d+$", out, re.M)
    got = server.expect(r"^received (\d+) bytes from 127\.0\.0\.1:\d+ sha256=(\w+)$")
    assert got.groups() == (str(size), sent.group(1))  # "the two sha256 lines match"
    assert server.interrupt() == 0


def test_reconnecting_client_header(session: Session) -> None:
    server, client = steps("reconnecting_client.py")
    echo = session.start_server(server)
    session.ports.setdefault("8001", "1")  # "(or one on 8001)": nobody listens there
    connex = session.start(client.command)
    connex.expect(r"^connected to 127\.0\.0\.1:")
    connex.expect(r"^echo: tick 1$")
    echo.interrupt()  # "stop the echo server for a while ..."
    connex.expect(r"^disconnected$")
    for _ in range(6):  # three failed rounds: 0.1 + 0.2 + 0.4 s of backoff, past a tick
        connex.expect(r"^unreachable 127\.0\.0\.1:")
    restarted = session.start(PORT.sub(session.ports["8000"], server.command, count=1))
    restarted.expect(LISTENING)
    connex.expect(r"^connected to 127\.0\.0\.1:\d+ \(delivering \d+ queued line")
    assert connex.interrupt() == 0
    numbers = [int(m) for m in re.findall(r"^echo: tick (\d+)$", "\n".join(connex.seen), re.M)]
    assert numbers == list(range(1, len(numbers) + 1)), numbers  # "none lost, none twice"


@needs_curl
def test_web_app_header(session: Session) -> None:
    server, add, page, post, listing, missing, count = steps("web_app.py")
    session.start_server(server)
    session.run(add)  # 303 checked from the comment
    assert "<li>buy milk</li>" in session.run(page)
    assert '"call bob"' in session.run(post)  # 201 checked from the comment
    assert json.loads(session.run(listing)) == {"notes": ["buy milk", "call bob"]}
    session.run(missing)  # 404 checked from the comment
    assert session.run(count) == "1\n2\n3\n4\n5\n"


@needs_curl
def test_websocket_chat_header(session: Session) -> None:
    server, page = steps("websocket_chat.py")
    session.start_server(server)
    html = session.run(page)
    assert "<title>netcomp chat</title>" in html and "new WebSocket(" in html


@needs_curl
def test_web_members_header(session: Session) -> None:
    server, first, login, again, visits, logout = steps("web_members.py")
    Path("/tmp/m.jar").unlink(missing_ok=True)
    session.start_server(server)
    assert session.run(first) == "Hello, stranger\n"
    assert session.run(login) == "Welcome, ada\n"
    assert session.run(again) == "Hello, ada\n"
    assert session.run(visits).startswith("visit 1 of this session")
    assert session.run(logout) == "Bye\n"
    Path("/tmp/m.jar").unlink(missing_ok=True)


@needs_curl
def test_web_rpc_header(session: Session) -> None:
    server, add, divide, docs = steps("web_rpc.py")
    session.start_server(server)
    assert json.loads(session.run(add)) == {"jsonrpc": "2.0", "result": 3, "id": 1}
    failed = json.loads(session.run(divide))  # JSON-RPC 1.0's shape; the details stay put
    assert failed == {"result": None, "error": {"code": -32603, "message": "internal error"},
                      "id": 1}  # fmt: skip
    assert session.run(docs).startswith("methods: add")


def test_web_fetch_header(session: Session) -> None:
    server, fetch = steps("web_fetch.py")
    session.start_server(server)
    lines = session.run(fetch).splitlines()
    assert [line.split()[0] for line in lines] == ["200", "404"]


@needs_curl
def test_wsgi_app_header(session: Session) -> None:
    server, index, add, bad, lines = steps("wsgi_app.py")
    session.start_server(server)
    assert session.run(index) == "Hello from a WSGI server\n"
    assert session.run(add) == "5\n"
    assert session.run(bad).startswith("400 Bad Request")
    assert session.run(lines) == "line 1\nline 2\nline 3\n"


@needs_curl
def test_slow_readers_header(session: Session) -> None:
    server, slow, stats, fast, progress = steps("slow_readers.py")
    session.start_server(server)
    assert slow.command.endswith(" &")
    session.start(slow.command.removesuffix("&").strip())  # in the background, as & does
    # Until the slow reader's stream has made more than the kernel's buffers and the
    # server's take at once (256 KiB): from then on it is made at the reader's pace.
    deadline = time.monotonic() + TIMEOUT
    while True:
        report = json.loads(session.run(stats))
        made = {s["stream"]: s for s in report["streams"]}
        if 1 in made and made[1]["produced"] >= 256 * 1024:
            break
        assert time.monotonic() < deadline, report
    since, base = time.monotonic(), made[1]["produced"]
    assert session.run(fast) == str(4 * 1024 * 1024)  # a fast reader, meanwhile
    report = json.loads(session.run(stats))
    elapsed = time.monotonic() - since
    made = {s["stream"]: s for s in report["streams"]}
    assert made[2] == {"stream": 2, "produced": 4 * 1024 * 1024, "done": True}, report
    # Made at the slow reader's pace: what the kernel's buffers between take (on loopback
    # they autotune to about 2.2 MB while curl reads slowly), then 64 KiB/s (twice that for
    # curl's averaging) for as long as the fast reader took. Without backpressure all
    # 4 MiB would be made at once, and done.
    pace = max(base, 2560 * 1024) + 2 * 64 * 1024 * elapsed
    assert not made[1]["done"] and made[1]["produced"] <= pace, (report, elapsed)
    assert report["buffered_max"] <= report["high_water"] + 1024, report
    assert report["high_water"] == 32 * 1024 and report["budget"] == 64 * 1024 * 1024
    lines = session.run(progress).splitlines()
    assert [line.split(" at ")[0] for line in lines] == [f"step {n} of 5" for n in range(1, 6)]


def test_the_parser_reads_commands_and_comments() -> None:
    assert steps("udp_echo.py")[1] == Step(
        "nc -u 127.0.0.1 9000", "(each line you type comes back)"
    )


@needs_curl
def test_inspector_header(session: Session) -> None:
    server, greeting, stats, metrics = steps("inspector.py")
    session.start_server(server)
    assert "hello from netcomp" in session.run(greeting)  # "(200: the greeting)"
    data = json.loads(session.run(stats))  # "(the live numbers, as JSON)"
    assert data["version"] == 1 and data["servers"][0]["bind"].startswith("127.0.0.1:")
    text = session.run(metrics)  # "(the counters, for Prometheus)"
    assert "# TYPE netcomp_events_total counter" in text


@needs_curl
def test_worker_processes_header(session: Session) -> None:
    server, index, hits = steps("worker_processes.py")  # the kill lines are prose
    supervisor = session.start_server(server)
    pids = {int(p) for p in supervisor.expect(r"workers \[(\d+), (\d+)\]").groups()}
    answered = re.fullmatch(r"worker pid (\d+)\n", session.run(index))
    assert answered and int(answered.group(1)) in pids  # "(the pid of the worker ...)"
    count = re.fullmatch(r"worker pid (\d+) has answered (\d+) requests\n", session.run(hits))
    assert count and int(count.group(1)) in pids and int(count.group(2)) >= 1
    assert supervisor.interrupt() == 0
