"""The web examples run and do what their opening comments say: each is started on port
0, poked with real clients (curl, xmlrpc.client, netcomp's own web_fetch.py), then
stopped with SIGINT."""

from __future__ import annotations

import gzip
import json
import pathlib
import re
import signal
import subprocess
import sys
import xmlrpc.client
from collections.abc import Iterator
from contextlib import contextmanager

from _web_support import curl

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


@contextmanager
def example(name: str) -> Iterator[tuple[str, list[str]]]:
    """Run ``examples/name 0``; yield its base URL and the lines it printed so far."""
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / name), "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        found = re.match(r"listening on (http://\S+)", first)
        assert found is not None, first + (proc.stderr.read() if proc.stderr else "")
        printed: list[str] = []
        yield found.group(1), printed
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        printed.extend(out.splitlines())
        assert proc.returncode == 0, err
    finally:
        proc.kill()
        proc.wait(timeout=10)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=30, check=False
    )


def test_web_members(tmp_path: pathlib.Path) -> None:
    jar = str(tmp_path / "jar")
    cookies = ("-c", jar, "-b", jar)
    with example("web_members.py") as (url, printed):
        assert curl(*cookies, url + "/").stdout == b"Hello, stranger\n"
        login = curl(*cookies, "--digest", "-u", "ada:lovelace", url + "/login")
        assert login.stdout == b"Welcome, ada\n"
        assert curl(*cookies, url + "/").stdout == b"Hello, ada\n"
        raw = curl(*cookies, "-H", "Accept-Encoding: gzip", "-D", "-", url + "/visits").stdout
        head, _, body = raw.partition(b"\r\n\r\n")
        assert b"content-encoding: gzip" in head.lower()
        assert gzip.decompress(body).startswith(b"visit 1 of this session")
        assert curl(*cookies, url + "/logout").stdout == b"Bye\n"
        assert curl(*cookies, url + "/").stdout == b"Hello, stranger\n"
        wrong = curl("--digest", "-u", "ada:nope", "-o", "/dev/null", "-w", "%{http_code}",
                     url + "/login")  # fmt: skip
        assert wrong.stdout == b"401"
        fetched = run(str(EXAMPLES / "web_fetch.py"), url + "/", url + "/nowhere")
        assert fetched.returncode == 0, fetched.stderr
        assert fetched.stdout.splitlines() == [
            f"200 OK 16 {url}/",
            f"404 Not Found 25 {url}/nowhere",
        ]
    log = [line for line in printed if '"GET ' in line]
    assert any('"GET /login HTTP/1.1" 401' in line for line in log)
    assert any('"GET /login HTTP/1.1" 200' in line for line in log)


def test_web_fetch_reports_failures() -> None:
    fetched = run(str(EXAMPLES / "web_fetch.py"), "http://127.0.0.1:9/")
    assert fetched.returncode == 1
    assert fetched.stdout.startswith("error: ")


def test_web_rpc() -> None:
    with example("web_rpc.py") as (url, _):
        call = {"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1}
        square = {"jsonrpc": "2.0", "method": "slow_square", "params": [7], "id": 2}
        reply = curl("--json", json.dumps([call, square]), url + "/json")
        assert json.loads(reply.stdout) == [
            {"jsonrpc": "2.0", "result": 3, "id": 1},
            {"jsonrpc": "2.0", "result": 49, "id": 2},
        ]
        proxy = xmlrpc.client.ServerProxy(url + "/xml")
        assert proxy.add(2, 3) == 5
        try:
            proxy.divide(1, 0)
        except xmlrpc.client.Fault as fault:
            assert fault.faultCode == -32603
        else:
            raise AssertionError("divide(1, 0) should fail")
        proxy("close")()
        docs = curl("-H", "Host: docs.localhost", url + "/").stdout
        assert docs.startswith(b"methods: add")
        assert curl(url + "/").stdout.startswith(b"POST JSON-RPC")


def test_wsgi_app() -> None:
    with example("wsgi_app.py") as (url, _):
        assert curl(url + "/").stdout == b"Hello from a WSGI server\n"
        assert curl(url + "/add/2/3").stdout == b"5\n"
        bad = curl("-o", "/dev/null", "-w", "%{http_code}", url + "/add/2/x").stdout
        assert bad == b"400"
        assert curl(url + "/lines?count=3").stdout == b"line 1\nline 2\nline 3\n"
