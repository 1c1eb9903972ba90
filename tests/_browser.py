"""Headless Chromium for tests: the Debian package, driven through its DevTools protocol
(``--remote-debugging-port``) with the ``websockets`` library's client.

No downloads: without Chromium the browser tests are skipped, saying so (``.ci/run``
installs it). Every wait has a deadline. Shared by the tests that open pages
(``test_websocket_example``, ``test_inspector``).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as lib_connect

TIMEOUT = 10.0
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

#: Marks a test that drives the browser (skipped, saying why, without Chromium).
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian package 'chromium'; .ci/run installs it)",
)


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


def screenshot(page: DevTools, path: Path) -> Path:
    """Save what the page shows now as a PNG at ``path``; returns it."""
    shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
