"""The ``netcomp`` command: --version, serving the user's own application (a controller, a
tree with its own servers, a factory), and clear errors for what cannot run."""

from __future__ import annotations

import pathlib
import re
import socket
import subprocess
import sys
import textwrap

import pytest

from netcomp import __version__
from test_web_main import Process

SCRIPT = pathlib.Path(sys.executable).with_name("netcomp")
TCP_LISTENING = re.compile(r"^listening on 127\.0\.0\.1:(\d+)$")

APP = """
from netcomp import Component, Manager
from netcomp.net import TCPServer
from netcomp.web import Controller


class Root(Controller):
    channel = "/"

    def index(self):
        return "hello from my app"

    def nothing(self):
        return None


class Echo(Component):
    channel = "echo"

    def read(self, sock, data):
        return data.upper()


def make_tree():
    return Manager() + TCPServer(("127.0.0.1", 0), channel="echo") + Echo()


number = 42
"""


@pytest.fixture
def app_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    (tmp_path / "myapp.py").write_text(textwrap.dedent(APP))
    return tmp_path


def run(*args: str, cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=20, check=False, cwd=cwd
    )


def test_version() -> None:
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout == f"netcomp {__version__}\n"


def test_no_command_prints_help_and_fails() -> None:
    proc = run()
    assert proc.returncode == 2
    assert "serve" in proc.stderr


def test_serve_a_controller_on_a_web_server(app_dir: pathlib.Path) -> None:
    process = Process(str(SCRIPT), "serve", "myapp:Root", "--bind", "127.0.0.1:0", cwd=app_dir)
    try:
        process.wait_listening()
        status, _, body = process.get("/")
        assert (status, body) == (200, b"hello from my app")
        code, err = process.stop()
        assert code == 0, err
    finally:
        process.close()


def test_log_level_debug_shows_netcomps_debug_lines(app_dir: pathlib.Path) -> None:
    process = Process(
        str(SCRIPT),
        "serve",
        "myapp:Root",
        "--bind",
        "127.0.0.1:0",
        "--log-level",
        "debug",
        cwd=app_dir,
    )
    try:
        process.wait_listening()
        assert process.get("/index/extra")[0] == 404
        assert process.get("/nothing")[0] == 404
        code, err = process.stop()
        assert code == 0, err
    finally:
        process.close()
    assert " DEBUG   netcomp.web: GET /index/extra: 404, Root.index() cannot take " in err
    assert " WARNING netcomp.web: GET /nothing: no handler answered" in err
    assert " INFO    netcomp.web.access: 127.0.0.1 - - [" in err


def test_serve_a_factory_of_a_tree_with_its_own_server(app_dir: pathlib.Path) -> None:
    process = Process(str(SCRIPT), "serve", "myapp:make_tree", cwd=app_dir)
    try:
        port = process.wait_listening(TCP_LISTENING)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"shout\n")
            assert sock.recv(100) == b"SHOUT\n"
        code, err = process.stop()
        assert code == 0, err
    finally:
        process.close()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("myapp", "serve: 'myapp': expected module:attribute, as in myapp:app\n"),
        ("nowhere:app", "serve: 'nowhere:app': cannot import 'nowhere': No module named"),
        ("myapp:missing", "serve: 'myapp:missing': myapp has no attribute 'missing'\n"),
        ("myapp:number", "serve: 'myapp:number' is a int; expected a component or a tree"),
    ],
)
def test_an_app_that_cannot_run_says_why(app_dir: pathlib.Path, spec: str, message: str) -> None:
    proc = run("serve", spec, cwd=app_dir)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"netcomp {message}")


def test_bind_is_refused_for_an_app_with_its_own_servers(app_dir: pathlib.Path) -> None:
    proc = run("serve", "myapp:make_tree", "--bind", "127.0.0.1:0", cwd=app_dir)
    assert proc.returncode == 2
    assert "brings its own servers: --bind is for an application without one" in proc.stderr


@pytest.mark.parametrize(
    ("bind", "message"),
    [
        ("nonsense", "bad bind address 'nonsense'; expected 'host:port' or a port"),
        ("127.0.0.1:http", "bad port in bind address '127.0.0.1:http'"),
        ("127.0.0.1:70000", "port out of range in '127.0.0.1:70000'"),
    ],
)
def test_a_bad_bind_says_what_was_expected(bind: str, message: str) -> None:
    proc = run("serve", "--bind", bind)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "invalid literal" not in proc.stderr


def test_serve_repeats_bind_on_one_server(app_dir: pathlib.Path) -> None:
    from _net_support import ipv6_loopback

    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    v6 = re.compile(r"^listening on http://\[::1\]:(\d+)$")
    process = Process(
        str(SCRIPT), "serve", "myapp:Root", "--bind", "127.0.0.1:0", "--bind", "[::1]:0",
        cwd=app_dir,
    )  # fmt: skip
    try:
        process.wait_listening()
        assert process.get("/")[2] == b"hello from my app"
        port6 = process.wait_listening(v6)
        with socket.create_connection(("::1", port6), timeout=10) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := conn.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"hello from my app")
    finally:
        code, errors = process.stop()
    assert code == 0, errors
