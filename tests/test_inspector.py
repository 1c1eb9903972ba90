"""The Inspector (netcomp.tools): its JSON, Prometheus and WebSocket endpoints on a real
server, its refusals (non-local binds, tokens), and its page in a real browser.

The browser test runs ``examples/inspector.py`` as a program and opens the page in
headless Chromium (``_browser``): the tree is drawn, a counter rises while the test
watches, and a screenshot is saved to ``build/test-artifacts/inspector.png``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from _browser import chromium, needs_chromium, screenshot
from netcomp import Component, Manager
from netcomp.testing import running
from netcomp.tools import Inspector, InspectorRefused, is_local
from netcomp.web import Controller, Server

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "build" / "test-artifacts"
TIMEOUT = 10.0


class Hello(Controller):
    channel = "/"

    def index(self) -> str:
        return "hello"


@contextlib.contextmanager
def site(**options: Any) -> Iterator[tuple[Server, Inspector]]:
    manager = Manager()
    server = Server(("127.0.0.1", 0)).register(manager)
    Hello().register(server)
    inspector = Inspector(**options)
    inspector.register(server)
    with running(manager):
        yield server, inspector


def get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def base(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}/_netcomp"


# ------------------------------------------------------------------ endpoints
def test_stats_graph_metrics_and_page() -> None:
    with site() as (server, _inspector):
        for _ in range(3):
            assert get(f"http://127.0.0.1:{server.port}/") == (200, "hello")
        status, body = get(f"{base(server)}/api/stats")
        assert status == 200
        stats = json.loads(body)
        assert stats["version"] == 1
        assert set(stats) >= {"time", "components", "loop", "events", "servers", "connex"}
        assert set(stats["loop"]) == {
            "queued", "callbacks", "timers", "watched", "passes", "lag", "lag_max"
        }  # fmt: skip
        assert stats["events"]["by_name"]["index"]["total"] == 3
        (served,) = stats["servers"]
        assert served["bind"] == f"127.0.0.1:{server.port}"
        (conn,) = served["connections"]  # this request's own connection
        assert re.fullmatch(r"127\.0\.0\.1:\d+", conn["peer"]) and conn["state"] == "open"
        assert conn["received"] > 0
        assert any(t["callback"] == "Inspector._tick" for t in stats["timers"])

        status, body = get(f"{base(server)}/api/graph")
        graph = json.loads(body)
        labels = [c["label"] for c in graph["components"]]
        assert labels[:3] == ["Manager", "Server", "Dispatcher"] and "Inspector" in labels
        assert "request" in [n for c in graph["channels"]["web"] for n in c["names"]]

        status, body = get(f"{base(server)}/metrics")
        assert status == 200
        assert 'netcomp_events_total{event="index"} 3' in body.splitlines()
        sample = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+$')
        for line in body.splitlines():
            assert line.startswith(("# HELP ", "# TYPE ")) or sample.match(line), line

        status, page = get(base(server))
        assert status == 200 and "<title>netcomp inspector</title>" in page
        assert get(f"{base(server)}/")[0] == 200
        assert get(f"{base(server)}/nothing")[0] == 404
        assert get(f"{base(server)}/api/stats", method="POST")[0] == 405
        assert get(f"http://127.0.0.1:{server.port}/_netcompx")[0] == 404  # not its path


def test_the_live_socket_greets_then_streams() -> None:
    with site(interval=0.05) as (server, _inspector):
        url = f"ws://127.0.0.1:{server.port}/_netcomp/live"
        with ws_connect(url, proxy=None, open_timeout=TIMEOUT) as ws:
            ws.send("hello")
            full = json.loads(ws.recv(timeout=TIMEOUT))
            assert full["type"] == "full" and full["graph"]["version"] == 1
            before = full["stats"]["events"]["total"]
            assert get(f"http://127.0.0.1:{server.port}/") == (200, "hello")  # some events
            while True:  # the next ticks stream stats on their own; bounded by recv's timeout
                message = json.loads(ws.recv(timeout=TIMEOUT))
                if message["type"] == "stats" and message["stats"]["events"]["total"] > before:
                    break
            assert message["stats"]["events"]["by_name"]["index"]["total"] == 1


# --------------------------------------------------------------------- refusals
def test_a_token_is_required_and_compared() -> None:
    with site(token="s3cret") as (server, _inspector):
        assert get(f"{base(server)}/api/stats")[0] == 401
        assert get(f"{base(server)}/api/stats?token=wrong")[0] == 401
        assert get(f"{base(server)}/api/stats?token=s3cret")[0] == 200
        assert get(f"{base(server)}/metrics", {"Authorization": "Bearer s3cret"})[0] == 200
        assert get(f"{base(server)}/api/graph", {"X-Netcomp-Token": "s3cret"})[0] == 200
        url = f"ws://127.0.0.1:{server.port}/_netcomp/live"
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(url, proxy=None, open_timeout=TIMEOUT)
        assert refused.value.response.status_code == 403
        with ws_connect(f"{url}?token=s3cret", proxy=None, open_timeout=TIMEOUT) as ws:
            ws.send("hello")
            assert json.loads(ws.recv(timeout=TIMEOUT))["type"] == "full"


def test_a_non_local_bind_is_refused_unless_allowed() -> None:
    server = Server(("0.0.0.0", 0))
    try:
        with pytest.raises(InspectorRefused, match="allow_remote=True"):
            Inspector().register(server)
        assert not any(isinstance(c, Inspector) for c in server.components)
        Inspector(allow_remote=True, token="t").register(server)
    finally:
        server.socket.close()


def test_it_mounts_on_web_servers_only_and_checks_its_options() -> None:
    with pytest.raises(TypeError, match=r"netcomp\.web server"):
        Inspector().register(Component())
    with pytest.raises(ValueError, match="path"):
        Inspector("_netcomp")
    with pytest.raises(ValueError, match="token"):
        Inspector(token="")
    with pytest.raises(ValueError, match="interval"):
        Inspector(interval=0)


@pytest.mark.parametrize(
    ("address", "local"),
    [
        (("127.0.0.1", 1), True),
        (("127.8.9.10", 1), True),
        (("::1", 1, 0, 0), True),
        (("::ffff:127.0.0.1", 1, 0, 0), True),
        (("localhost", 1), True),
        ("/run/app.sock", True),
        (None, True),
        (("0.0.0.0", 1), False),
        (("::", 1, 0, 0), False),
        (("192.0.2.7", 1), False),
        (("example.org", 1), False),
    ],
)
def test_is_local(address: Any, local: bool) -> None:
    assert is_local(address) is local


# ---------------------------------------------------------------------- browser
@pytest.fixture
def example_port() -> Iterator[int]:
    """examples/inspector.py, started on port 0; stopped with SIGINT at the end."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "inspector.py"), "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        match = re.fullmatch(r"listening on http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        yield int(match.group(1))
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()


UNTIL = """new Promise((resolve, reject) => {
  const deadline = Date.now() + 10000;
  const check = () => {
    let found = null;
    try { found = (%s); } catch (error) { found = null; }
    if (found) resolve(found);
    else if (Date.now() > deadline) {
      const seen = window.inspector || {};
      reject(new Error(`not in time: mode ${seen.mode}, updates ${seen.updates}`));
    }
    else setTimeout(check, 25);
  };
  check();
})"""

HEARTBEATS = """(() => {
  for (const row of document.querySelectorAll('#events tbody tr')) {
    const cells = row.querySelectorAll('td');
    if (cells.length === 3 && cells[0].textContent === 'heartbeat') {
      return Number(cells[2].textContent);
    }
  }
  return 0;
})()"""


@pytest.mark.browser
@needs_chromium
def test_the_page_in_a_browser_shows_the_live_program(example_port: int) -> None:
    with chromium() as page:
        page.call("Page.enable")
        page.call("Emulation.setDeviceMetricsOverride", width=1280, height=1000,
                  deviceScaleFactor=1, mobile=False)  # fmt: skip
        page.call("Page.navigate", url=f"http://127.0.0.1:{example_port}/_netcomp")
        page.wait_event("Page.loadEventFired")
        mode = page.evaluate(UNTIL % "window.inspector.updates >= 1 && window.inspector.mode")
        assert mode == "live"  # over the WebSocket
        nodes = page.evaluate(
            "[...document.querySelectorAll('#tree li.tree-node > .name')].map(n => n.textContent)"
        )
        assert nodes[:2] == ["Manager", "Server"]
        assert {"Inspector", "Timer", "Connex", "Pulse", "Echo", "Greeting"} <= set(nodes)
        nested = page.evaluate("document.querySelectorAll('#tree li li li').length")
        assert nested >= 1  # the WebSocket dispatcher under the Inspector under the Server
        first = page.evaluate(UNTIL % f"{HEARTBEATS} > 0 && {HEARTBEATS}")
        later = page.evaluate(UNTIL % f"{HEARTBEATS} > {first} && {HEARTBEATS}")
        assert later > first  # the counter rises on its own, live
        handlers = page.evaluate("document.querySelectorAll('#handlers tbody tr').length")
        assert handlers >= 10
        connex = page.evaluate(
            "document.querySelector('#connex tbody td:nth-child(2)').textContent"
        )
        assert connex in ("connected", "connecting", "backing_off", "idle_closed")
        path = screenshot(page, ARTIFACTS / "inspector.png")
    assert path.stat().st_size > 10_000
