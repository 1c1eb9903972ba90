"""``netcomp.app.Daemon``: a real program turned into a daemon, observed from outside:
the command returns at once with status 0, the daemon is detached (its own session, not
a session leader), sits in the directory and umask it was given, writes its pid file,
sends its output where it was told, and still hears signals through its loop."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from netcomp.app import Daemon

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")

PROGRAM = """
    import json, os, sys
    from netcomp import Component
    from netcomp.app import Daemon, deletepid

    report_fd = int(sys.argv[1])
    pidfile, workdir, output = sys.argv[2:5]

    def report(**what):
        os.write(report_fd, (json.dumps(what) + "\\n").encode())

    class App(Component):
        def init(self):
            self.daemon = Daemon(pidfile, path=workdir, stdout=output, umask=0o027)
            self.daemon.register(self)

        def daemonized(self, daemon):
            print("to the output file")
            umask = os.umask(0)
            os.umask(umask)
            report(pid=os.getpid(), cwd=os.getcwd(), umask=umask, sid=os.getsid(0))

        def signal(self, signo, frame):
            with open(self.daemon.pidfile) as f:  # absolute: the cwd is workdir now
                report(signal=signo, pidfile=f.read())
            self.fire(deletepid(), "daemon")
            self.stop()

    App().run()
"""


def read_report(fd: int, timeout: float = 10.0) -> dict[str, object] | None:
    """The next JSON line the daemon wrote on the pipe (``None`` at end of file)."""
    line = b""
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"no report from the daemon in {timeout} s"
        chunk = os.read(fd, 1)
        if not chunk:
            return None
        line += chunk
    result: dict[str, object] = json.loads(line)
    return result


def test_a_program_becomes_a_daemon(tmp_path: Path) -> None:
    program = tmp_path / "daemon.py"
    program.write_text(textwrap.dedent(PROGRAM))
    pidfile = tmp_path / "app.pid"
    output = tmp_path / "out.log"
    workdir = tmp_path / "work"
    workdir.mkdir()
    reader, writer = os.pipe()
    try:
        started = subprocess.run(
            [sys.executable, str(program), str(writer), "app.pid", str(workdir), str(output)],
            cwd=tmp_path,  # the relative pid file is taken from here
            pass_fds=(writer,),
            timeout=30,
            capture_output=True,
        )
        os.close(writer)
        writer = -1
        assert started.returncode == 0 and started.stderr == b""  # it returns at once
        report = read_report(reader)
        assert report is not None
        pid = report["pid"]
        assert isinstance(pid, int) and pid != os.getpid()
        assert pidfile.read_text() == f"{pid}\n"
        assert report["cwd"] == str(workdir)
        assert report["umask"] == 0o027
        assert report["sid"] != pid and report["sid"] != os.getsid(0)  # detached
        os.kill(pid, signal.SIGTERM)
        report = read_report(reader)
        assert report == {"signal": signal.SIGTERM, "pidfile": f"{pid}\n"}
        assert read_report(reader) is None  # it exited: the pipe is closed
        assert not pidfile.exists()  # deletepid
        assert output.read_text() == "to the output file\n"
    finally:
        os.close(reader)
        if writer >= 0:
            os.close(writer)


def test_daemon_paths_are_absolute_and_defaults_are_safe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    daemon = Daemon("run/app.pid")
    assert daemon.pidfile == str(tmp_path / "run" / "app.pid")
    assert daemon.path == "/"
    assert daemon.stdin == daemon.stdout == daemon.stderr == os.devnull
    assert daemon.umask == 0o022
    assert daemon.channel == "daemon"
    assert "not daemonized" in repr(daemon)
