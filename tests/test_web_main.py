"""The main job (``python -m netcomp.web``, ``netcomp serve``) and examples/web_app.py run,
serve what they promise over real sockets, and stop cleanly on a signal."""

from __future__ import annotations

import http.client
import json
import pathlib
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
TIMEOUT = 10.0
LISTENING = re.compile(r"^listening on http://127\.0\.0\.1:(\d+)$")


class Process:
    """A server subprocess; its stdout lines are read by a thread (waits have timeouts)."""

    def __init__(self, *argv: str, cwd: pathlib.Path = ROOT) -> None:
        self.proc = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.errors: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._out = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._out.start()
        self._err = threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True)
        self._err.start()
        self.port = 0

    def _drain(self, stream: IO[str]) -> None:
        self.errors.extend(stream)

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_listening(self, pattern: re.Pattern[str] = LISTENING) -> int:
        line = self.lines.get(timeout=TIMEOUT)
        assert line is not None, "".join(self.errors)
        match = pattern.match(line)
        assert match, f"expected {pattern.pattern!r}, got {line!r}"
        self.port = int(match.group(1))
        return self.port

    def get(self, path: str, **kwargs: object) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            conn.request(kwargs.pop("method", "GET"), path, **kwargs)  # type: ignore[arg-type]
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def stop(self, signo: int = signal.SIGINT) -> tuple[int, str]:
        self.proc.send_signal(signo)
        try:
            self.proc.wait(timeout=TIMEOUT)
        finally:
            self.close()
        return self.proc.returncode, "".join(self.errors)

    def close(self) -> None:
        """Kill the process if it still runs, read its pipes to the end and close them."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        for reader in (self._out, self._err):
            reader.join(timeout=TIMEOUT)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def demo() -> Iterator[Process]:
    process = Process(sys.executable, "-m", "netcomp.web", "--bind", "127.0.0.1:0")
    try:
        process.wait_listening()
        yield process
    finally:
        process.close()


def test_demo_serves_hello_echo_stream_and_static(demo: Process) -> None:
    status, headers, body = demo.get("/")
    assert status == 200 and b"Hello from netcomp.web" in body
    assert headers["Content-Type"].startswith("text/html")

    status, headers, body = demo.get(
        "/echo/a?x=1",
        method="POST",
        body=json.dumps({"n": 1}),
        headers={"Content-Type": "application/json"},
    )
    assert status == 200
    echoed = json.loads(body)
    assert echoed["method"] == "POST" and echoed["args"] == ["a"]
    assert echoed["query"] == {"x": "1"} and echoed["body"] == {"n": 1}

    status, headers, body = demo.get("/stream?lines=2000")
    assert status == 200 and headers.get("Transfer-Encoding") == "chunked"
    lines = body.decode().splitlines()
    assert lines[0] == "line 1 of 2000" and lines[-1] == "line 2000 of 2000"
    assert len(lines) == 2000

    status, headers, body = demo.get("/static/index.html")
    assert status == 200 and b"Static files" in body

    status, _, _ = demo.get("/nowhere")
    assert status == 404
    code, err = demo.stop()
    assert code == 0, err


@pytest.mark.parametrize("signo", [signal.SIGINT, signal.SIGTERM])
def test_demo_stops_gracefully_on_signal(demo: Process, signo: int) -> None:
    assert demo.get("/")[0] == 200
    code, err = demo.stop(signo)
    assert code == 0, err
    remaining = []
    while (line := demo.lines.get(timeout=TIMEOUT)) is not None:
        remaining.append(line)
    assert remaining == ["stopped"]


def test_demo_refuses_a_missing_static_directory(tmp_path: pathlib.Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "netcomp.web", "--static", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode == 2
    assert "not a directory" in proc.stderr


def test_console_script_serve() -> None:
    script = pathlib.Path(sys.executable).with_name("netcomp")
    assert script.exists(), "the netcomp console script is not installed (pip install -e .)"
    process = Process(str(script), "serve", "--bind", "127.0.0.1:0", "--log-level", "warning")
    try:
        process.wait_listening()
        assert process.get("/echo?via=cli")[0] == 200
        code, err = process.stop()
        assert code == 0, err
    finally:
        process.close()


def test_web_app_example() -> None:
    process = Process(sys.executable, str(ROOT / "examples" / "web_app.py"), "0")
    try:
        process.wait_listening()
        status, headers, _ = process.get(
            "/add",
            method="POST",
            body="text=buy+milk",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status == 303 and headers["Location"] == "/"
        status, _, body = process.get("/")
        assert status == 200 and b"<li>buy milk</li>" in body
        status, _, body = process.get(
            "/api",
            method="POST",
            body=json.dumps({"text": "<call bob>"}),
            headers={"Content-Type": "application/json"},
        )
        assert status == 201 and json.loads(body) == {"number": 1, "text": "<call bob>"}
        status, _, body = process.get("/")
        assert b"&lt;call bob&gt;" in body  # escaped in the HTML page
        assert json.loads(process.get("/api")[2]) == {"notes": ["buy milk", "<call bob>"]}
        assert process.get("/api/9")[0] == 404
        status, headers, _ = process.get("/api", method="DELETE")
        assert status == 405 and headers["Allow"] == "GET, HEAD, POST"
        assert process.get("/count?to=3")[2] == b"1\n2\n3\n"
        assert process.get("/add")[0] == 400
        code, err = process.stop(signal.SIGTERM)
        assert code == 0, err
    finally:
        process.close()
