"""examples/websocket_chat.py, run as a program: two ``websockets`` clients chat through
it, and a real browser (headless Chromium) does too.

The browser is driven through its DevTools protocol (``--remote-debugging-port``) with the
``websockets`` library's client: open the example's page, let its own script connect with
the browser's ``WebSocket``, send from the page, and read what the page shows. No
downloads: Chromium is the Debian package (``.ci/run`` installs it); without it the browser
test is skipped, saying so. Every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as lib_connect

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "websocket_chat.py"
TIMEOUT = 10.0
LISTENING = re.compile(r"^listening on http://127\.0\.0\.1:(\d+)$")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: What the brief asks Chromium to run with here (the network is closed; no sandbox as root).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def chat_port() -> Iterator[int]:
    """The example, started on port 0; stopped with Ctrl-C (SIGINT) at the end."""
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()  # the example prints it first, flushed
        match = LISTENING.match(line)
        assert match, f"expected 'listening on http://127.0.0.1:PORT', got {line!r}"
        yield int(match.group(1))
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()


def join(port: int) -> ClientConnection:
    return lib_connect(
        f"ws://127.0.0.1:{port}/chat", proxy=None, open_timeout=TIMEOUT, close_timeout=TIMEOUT
    )


def joined(line: Any) -> str:
    """The name in ``*** NAME joined``."""
    match = re.fullmatch(r"\*\*\* (\S+) joined", str(line))
    assert match, line
    return match.group(1)


def test_two_clients_chat_through_the_example(chat_port: int) -> None:
    with join(chat_port) as alice:
        welcome = str(alice.recv(timeout=TIMEOUT))
        assert re.fullmatch(r"\*\*\* welcome 127\.0\.0\.1:\d+, 0 other\(s\) here", welcome)
        with join(chat_port) as bob:
            assert str(bob.recv(timeout=TIMEOUT)).endswith(", 1 other(s) here")
            bob_name = joined(alice.recv(timeout=TIMEOUT))
            alice.send("hi bob")
            alice_said = str(bob.recv(timeout=TIMEOUT))
            assert re.fullmatch(r"127\.0\.0\.1:\d+: hi bob", alice_said)
            bob.send("hi alice ☃")
            assert alice.recv(timeout=TIMEOUT) == f"{bob_name}: hi alice ☃"
        assert alice.recv(timeout=TIMEOUT) == f"*** {bob_name} left"


def test_the_page_is_served_on_the_same_port(chat_port: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{chat_port}/", timeout=TIMEOUT) as page:
        html = page.read().decode()
    assert "new WebSocket(`ws://${location.host}/chat`)" in html


# -------------------------------------------------------------------- the browser
class DevTools:
    """A minimal client of Chromium's DevTools protocol for one page (a websocket)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        self.ws.send(json.dumps({"id": number, "method": method, "params": params}))
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            if message.get("id") == number:
                assert "error" not in message, message
                return dict(message["result"])
            self.events.append(message)

    def wait_event(self, method: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not any(e.get("method") == method for e in self.events):
            left = deadline - time.monotonic()
            assert left > 0, f"no {method} in time"
            self.events.append(json.loads(self.ws.recv(timeout=left)))

    def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` in the page (awaited when it is a Promise)."""
        result = self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")


@contextlib.contextmanager
def chromium() -> Iterator[DevTools]:
    """Headless Chromium on a fresh profile, showing about:blank; its page's DevTools."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen(
            [
                CHROMIUM,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",  # the port it took is written to the profile
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            url = page_target(Path(profile) / "DevToolsActivePort", proc)
            with lib_connect(url, proxy=None, max_size=None, open_timeout=TIMEOUT) as ws:
                yield DevTools(ws)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(TIMEOUT)


def page_target(active_port: Path, proc: subprocess.Popen[bytes]) -> str:
    """The DevTools websocket URL of Chromium's page, once it listens."""
    deadline = time.monotonic() + 30  # a cold start on a busy machine
    while not (active_port.exists() and active_port.read_text().strip()):
        assert proc.poll() is None, f"chromium exited with {proc.returncode}"
        assert time.monotonic() < deadline, "chromium did not open its DevTools port"
        time.sleep(0.05)  # polling a file Chromium writes: there is nothing to wait on
    port = int(active_port.read_text().split()[0])
    listing = f"http://127.0.0.1:{port}/json/list"
    with urllib.request.urlopen(listing, timeout=TIMEOUT) as answer:
        targets = json.load(answer)
    return str(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])


WAIT_FOR = """new Promise((resolve, reject) => {
  const deadline = Date.now() + 10000;
  const check = () => {
    const found = window.chat && window.chat.open && window.chat.lines.find(l => %s);
    if (found) resolve(found);
    else if (Date.now() > deadline) reject(new Error("not in time: " + JSON.stringify(
      window.chat ? window.chat.lines : null)));
    else setTimeout(check, 20);
  };
  check();
})"""


@pytest.mark.browser
@pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian package 'chromium'; .ci/run installs it)",
)
def test_a_browser_chats_through_the_example(chat_port: int) -> None:
    with join(chat_port) as python, chromium() as page:
        assert str(python.recv(timeout=TIMEOUT)).endswith(", 0 other(s) here")
        page.call("Page.enable")
        page.call("Page.navigate", url=f"http://127.0.0.1:{chat_port}/")
        page.wait_event("Page.loadEventFired")
        welcome = page.evaluate(WAIT_FOR % "l.startsWith('*** welcome')")
        assert welcome.endswith(", 1 other(s) here")  # the Python client is there
        browser = joined(python.recv(timeout=TIMEOUT))
        page.evaluate("window.chat.socket.send('hello from chromium ☃')")
        assert python.recv(timeout=TIMEOUT) == f"{browser}: hello from chromium ☃"
        python.send("hello from python")
        line = page.evaluate(WAIT_FOR % "l.endsWith(': hello from python')")
        assert re.fullmatch(r"127\.0\.0\.1:\d+: hello from python", line)
        page.evaluate("window.chat.socket.close(1000, 'bye')")
        assert python.recv(timeout=TIMEOUT) == f"*** {browser} left"
