"""examples/websocket_chat.py, run as a program: two ``websockets`` clients chat through
it, and a real browser (headless Chromium) does too.

The browser is driven through its DevTools protocol (``--remote-debugging-port``) with the
``websockets`` library's client (``_browser``, shared with the inspector's test): open the
example's page, let its own script connect with the browser's ``WebSocket``, send from the
page, and read what the page shows. No downloads: Chromium is the Debian package
(``.ci/run`` installs it); without it the browser test is skipped, saying so. Every wait
has a deadline.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as lib_connect

from _browser import chromium, needs_chromium

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "websocket_chat.py"
TIMEOUT = 10.0
LISTENING = re.compile(r"^listening on http://127\.0\.0\.1:(\d+)$")


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
@needs_chromium
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
