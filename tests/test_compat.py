"""netcomp.compat: circuits programs run unchanged, their ``circuits.*`` imports mapped to
netcomp's modules of the same names.

Every check runs in a fresh interpreter (the mapping changes ``sys.modules`` and
``sys.meta_path`` of the process it is installed in), and the programs run with
``python -m netcomp.compat`` are driven over real sockets, with timeouts.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import queue
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 10.0
LISTENING = re.compile(r"^listening on 127\.0\.0\.1:(\d+)$")

#: Modules of the net compat work (netcomp.net.sockets, netcomp.net.events): the chat
#: example imports them under circuits' names.
HAS_NET_MODULES = all(
    importlib.util.find_spec(name) is not None
    for name in ("netcomp.net.sockets", "netcomp.net.events")
)
needs_net_modules = pytest.mark.skipif(
    not HAS_NET_MODULES,
    reason="needs netcomp.net.sockets and netcomp.net.events (circuits' net module names)",
)


def python(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=cwd,
    )


def script(source: str) -> str:
    proc = python("-c", textwrap.dedent(source))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


# ------------------------------------------------------------------ the hook
def test_circuits_names_are_netcomps_modules() -> None:
    out = script(
        """
        import sys
        import netcomp.compat
        netcomp.compat.install()
        import circuits, circuits.core, circuits.core.bridge, circuits.web.errors
        from circuits import Component, Event, ipc
        from circuits.web import Controller, Server
        from circuits.web.dispatchers.dispatcher import Dispatcher
        import netcomp, netcomp.core.bridge, netcomp.web, netcomp.web.errors

        assert circuits is netcomp and circuits.core is netcomp.core
        assert circuits.core.bridge is netcomp.core.bridge is sys.modules["circuits.core.bridge"]
        assert (Component, Event, ipc) == (netcomp.Component, netcomp.Event, netcomp.ipc)
        assert (Controller, Server) == (netcomp.web.Controller, netcomp.web.Server)
        assert Dispatcher is netcomp.web.Dispatcher
        # the modules keep their own identity: name, spec, file
        assert circuits.web.errors.__name__ == "netcomp.web.errors"
        assert circuits.web.errors.__spec__.name == "netcomp.web.errors"
        assert circuits.__spec__.name == "netcomp"
        assert netcomp.compat.install() is netcomp.compat.install()  # idempotent
        netcomp.compat.uninstall()
        assert not [name for name in sys.modules if name.startswith("circuits")]
        try:
            import circuits.core  # noqa
        except ImportError:
            print("gone after uninstall")
        else:  # the real circuits is installed here (the bench extra brings it)
            print("gone after uninstall" if circuits.core is not netcomp.core else "still mapped")
        """
    )
    assert out == "gone after uninstall\n"


def test_a_circuits_module_without_counterpart_says_so() -> None:
    out = script(
        """
        import netcomp.compat
        netcomp.compat.install()
        for name in ("circuits.io", "circuits.io.file", "circuits.web.sessions",
                     "circuits.web.nosuchmodule"):
            try:
                __import__(name)
            except ModuleNotFoundError as error:
                assert name.startswith(error.name), (error.name, name)  # a parent first
                print(error)
        print(netcomp.compat.counterpart("circuits.net.events"))
        """
    )
    io, io_file, sessions, nosuch, mapped = out.splitlines()
    assert io.startswith("No module named 'circuits.io': netcomp has no counterpart of")
    assert "circuits.io (circuits' file, serial, process" in io
    assert io_file == io  # its parent package fails first, as for any missing package
    assert "circuits.web.sessions (circuits.web's sessions)" in sessions
    assert nosuch.startswith(
        "No module named 'circuits.web.nosuchmodule': netcomp.compat maps it to "
        "netcomp.web.nosuchmodule, which this netcomp does not have"
    )
    assert "docs/circuits.md" in nosuch
    assert mapped == "netcomp.net.events"


def test_install_refuses_after_the_real_circuits_was_imported(tmp_path: Path) -> None:
    fake = tmp_path / "circuits"
    fake.mkdir()
    (fake / "__init__.py").write_text('"""a stand-in for the real circuits package"""\n')
    proc = python(
        "-c",
        "import circuits, netcomp.compat\n"
        "try:\n    netcomp.compat.install()\n"
        "except RuntimeError as error:\n    print(error)\n",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "is imported already; call netcomp.compat.install() before" in proc.stdout


# ---------------------------------------------------------- python -m netcomp.compat
def test_the_command_runs_a_program_as_python_would(tmp_path: Path) -> None:
    program = tmp_path / "prog.py"
    program.write_text(
        textwrap.dedent(
            """
            import sys
            import circuits
            import helper  # next to the program: sys.path[0] is its directory
            print(circuits.__name__, __name__, sys.argv, helper.VALUE)
            sys.exit(5)
            """
        )
    )
    (tmp_path / "helper.py").write_text("VALUE = 42\n")
    proc = python("-m", "netcomp.compat", str(program), "a", "--b")
    assert proc.returncode == 5, proc.stderr
    assert proc.stdout == f"netcomp __main__ [{str(program)!r}, 'a', '--b'] 42\n"


def test_the_command_runs_a_module(tmp_path: Path) -> None:
    package = tmp_path / "app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "main.py").write_text(
        "import sys\nfrom circuits import Manager\nprint(Manager.__module__, sys.argv[1:])\n"
    )
    proc = python("-m", "netcomp.compat", "-m", "app.main", "x", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "netcomp.core._manager ['x']\n"


def test_the_command_explains_its_usage_and_missing_files(tmp_path: Path) -> None:
    for argv in ((), ("-m",), ("--bogus",)):
        proc = python("-m", "netcomp.compat", *argv)
        assert proc.returncode == 2 and proc.stderr.startswith("usage: python -m netcomp.compat")
    proc = python("-m", "netcomp.compat", "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage:")
    proc = python("-m", "netcomp.compat", str(tmp_path / "nope.py"))
    assert proc.returncode == 2 and "can't open file" in proc.stderr


def test_an_import_without_counterpart_fails_the_program_with_the_reason(tmp_path: Path) -> None:
    program = tmp_path / "uses_io.py"
    program.write_text("from circuits.io import File\n")
    proc = python("-m", "netcomp.compat", str(program))
    assert proc.returncode == 1
    assert "ModuleNotFoundError: No module named 'circuits.io': netcomp has no counterpart" in (
        proc.stderr
    )


# ------------------------------------------------------- a circuits program, served
class Program:
    """A program started with ``python -m netcomp.compat``; its stdout read line by line."""

    def __init__(self, path: Path, *argv: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "netcomp.compat", str(path), *argv],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.errors: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(
            target=self.errors.extend, args=(self.proc.stderr,), daemon=True
        )
        self._err_reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def line(self) -> str:
        line = self.lines.get(timeout=TIMEOUT)
        if line is None:
            self.proc.wait(TIMEOUT)
            self._err_reader.join(TIMEOUT)
            raise AssertionError(f"the program ended early:\n{''.join(self.errors)}")
        return line

    def port(self) -> int:
        match = LISTENING.match(self.line())
        assert match, "expected 'listening on 127.0.0.1:PORT'"
        return int(match.group(1))

    def stop(self) -> tuple[int, list[str], str]:
        """SIGTERM; the exit status, the rest of stdout, stderr."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(TIMEOUT)
        self._reader.join(TIMEOUT)
        self._err_reader.join(TIMEOUT)
        rest = []
        while not self.lines.empty():
            line = self.lines.get_nowait()
            if line is not None:
                rest.append(line)
        return self.proc.returncode, rest, "".join(self.errors)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(TIMEOUT)
        self._reader.join(TIMEOUT)  # both readers end at EOF, before their streams close
        self._err_reader.join(TIMEOUT)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def program(path: Path, *argv: str) -> Iterator[Program]:
    running = Program(path, *argv)
    try:
        yield running
    finally:
        running.close()


#: A circuits.web program (written for circuits; every import names circuits).
WEB_PROGRAM = """
import sys

from circuits import Component
from circuits.web import Controller, JSONController, Server
from circuits.web.errors import notfound, redirect
from circuits.web.exceptions import Forbidden


class Root(Controller):
    def index(self):
        return "Hello World!"

    def hello(self, name="world"):
        return f"Hello, {name}!"

    def gone(self):
        return notfound(self.request, self.response, description="nothing here")

    def secret(self):
        raise Forbidden("keep out")

    def old(self):
        return redirect(self.request, self.response, "/hello")


class Api(JSONController):
    channel = "/api"

    def index(self):
        return {"ok": True, "items": [1, 2]}


class Announce(Component):
    channel = "web"

    def ready(self, server, bind):
        print("listening on {}:{}".format(*bind), flush=True)

    def stopped(self, manager):
        print("stopped", flush=True)


app = Server(("127.0.0.1", int(sys.argv[1])))
Root().register(app)
Api().register(app)
Announce().register(app)
app.run()
"""


def get(port: int, path: str) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


def test_a_circuits_web_program_serves_on_netcomp(tmp_path: Path) -> None:
    path = tmp_path / "web_program.py"
    path.write_text(WEB_PROGRAM)
    with program(path, "0") as web:
        port = web.port()
        assert get(port, "/") == (200, get(port, "/")[1], "Hello World!")
        assert get(port, "/hello?name=ada")[2] == "Hello, ada!"
        status, _headers, body = get(port, "/gone")
        assert status == 404 and "nothing here" in body
        status, _headers, body = get(port, "/secret")
        assert status == 403 and "keep out" in body
        status, headers, _body = get(port, "/old")
        assert status == 303 and headers["Location"] == "/hello"
        status, headers, body = get(port, "/api")
        assert status == 200 and body == '{"ok":true,"items":[1,2]}'
        code, rest, err = web.stop()
    assert code == 0, err
    assert rest == ["stopped"], (rest, err)
    assert "Traceback" not in err and "WARNING" not in err, err


# --------------------------------------------------------- examples/circuits_chat.py
def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.settimeout(TIMEOUT)
    return sock


@needs_net_modules
def test_the_circuits_chat_example_relays_lines() -> None:
    with program(ROOT / "examples" / "circuits_chat.py", "0") as chat:
        port = chat.port()
        with connect(port) as ada, connect(port) as bob:
            ada_in, bob_in = ada.makefile("rb"), bob.makefile("rb")
            ada_name = f"127.0.0.1:{ada.getsockname()[1]}"
            bob_name = f"127.0.0.1:{bob.getsockname()[1]}"
            assert ada_in.readline() == f"*** welcome {ada_name}\n".encode()
            assert bob_in.readline() == f"*** welcome {bob_name}\n".encode()
            assert ada_in.readline() == f"*** {bob_name} joined\n".encode()
            ada.sendall(b"hi bob\r\nare you th")
            ada.sendall(b"ere?\n")
            assert bob_in.readline() == f"<{ada_name}> hi bob\n".encode()
            assert bob_in.readline() == f"<{ada_name}> are you there?\n".encode()
            bob_in.close()
            bob.close()
            assert ada_in.readline() == f"*** {bob_name} left\n".encode()
            ada_in.close()
        code, rest, err = chat.stop()
    assert code == 0, err
    assert rest == ["stopped"], (rest, err)
    assert "Traceback" not in err, err
