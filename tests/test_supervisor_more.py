"""The rest of the Supervisor's contract, with real processes: max_requests, the
heartbeat, listeners shared in every form (UNIX, two servers on port 0, one socket for
all), workers that outlive their supervisor, SIGCHLD where there are no pidfds, a
factory from the ``__main__`` script; and the options, checked where they are given."""

from __future__ import annotations

import http.client
import io
import json
import logging
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from _net_support import short_dir
from _process_support import Load, Supervised, exited, get, pid_of, write_app
from netcomp import configure_logging
from netcomp.net import Supervisor, restarted, serving
from netcomp.web._demo import worker_count

SCRIPT = str(pathlib.Path(sys.executable).with_name("netcomp"))


@pytest.fixture
def app_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    return write_app(tmp_path)


def serve(app_dir: pathlib.Path, app: str, *args: str) -> Supervised:
    argv = [SCRIPT, "serve", app, "--log-level", "info", *args]
    return Supervised(*argv, cwd=app_dir)


def supervise(app_dir: pathlib.Path, factory: str, **options: object) -> Supervised:
    argv = [sys.executable, "supervise.py", factory, json.dumps(options)]
    return Supervised(*argv, cwd=app_dir)


def test_max_requests_replaces_a_worker_without_losing_a_request(app_dir: pathlib.Path) -> None:
    sup = serve(
        app_dir, "wapp:Root", "--bind", "127.0.0.1:0", "--workers", "1", "--max-requests", "5"
    )
    try:
        port = sup.port()
        pids = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # sequential: the first worker answers 5, then
            status, body = get(port)  # more until its replacement is ready and it stops
            assert status == 200
            pids.append(pid_of(body))
            if len(set(pids)) == 2:
                break
        first, second = pids[0], pids[-1]
        assert first != second and pids.count(first) >= 5
        sup.err(rf"worker 0 \(pid {first}\) answered 5 requests \(max_requests\): replacing")
        sup.err(rf"worker 0 \(pid {second}\) ready")
        sup.err(rf"worker 0 \(pid {first}\) stopped \(exit status 0\)")
        sup.signal(signal.SIGTERM)
        assert sup.wait() == 0
    finally:
        sup.close()


def test_max_requests_jitter_gives_each_worker_its_own_limit(app_dir: pathlib.Path) -> None:
    sup = supervise(app_dir, "wapp:web", workers=1, max_requests=10, max_requests_jitter=500)
    try:
        (where,) = json.loads(sup.out("^serving (.*)$").group(1))
        port = int(where.rsplit(":", 1)[1])
        answered: dict[int, int] = {}
        limits: dict[int, int] = {}
        retire = re.compile(r"worker 0 \(pid (\d+)\) answered (\d+) requests \(max_requests\)")
        deadline = time.monotonic() + 30
        while len(limits) < 3 and time.monotonic() < deadline:  # three generations retire
            pid = pid_of(get(port)[1])
            answered[pid] = answered.get(pid, 0) + 1
            for line in sup.errors[-20:]:
                match = retire.search(line)
                if match:
                    limits[int(match.group(1))] = int(match.group(2))
        assert len(limits) == 3, (limits, answered)
        for pid, limit in limits.items():
            assert 10 <= limit <= 510, limits  # max_requests + randint(0, jitter)
            assert answered[pid] >= limit  # it retired when it had answered that many
        # One chance in about 250,000 that three draws from 501 values are all equal.
        assert len(set(limits.values())) > 1, limits
        sup.signal(signal.SIGTERM)
        assert sup.wait() == 0
    finally:
        sup.close()


def test_a_worker_that_does_not_stop_within_stop_timeout_is_killed(
    app_dir: pathlib.Path,
) -> None:
    sup = supervise(app_dir, "wapp:web", workers=1, stop_timeout=0.5)
    try:
        (where,) = json.loads(sup.out("^serving (.*)$").group(1))
        (pid,) = json.loads(sup.out("^pids (.*)$").group(1))
        port = int(where.rsplit(":", 1)[1])
        outcome: list[object] = []
        client = threading.Thread(target=lambda: outcome.append(_try_get(port, "/block")))
        client.start()
        sup.out(rf"^blocking {pid}$")  # the worker's stdout: its loop is blocked now
        stopping = time.monotonic()
        sup.signal(signal.SIGTERM)  # its loop is blocked: SIGTERM cannot stop it
        sup.err(rf"worker 0 \(pid {pid}\) did not stop within 1\.5 s: killed")
        assert sup.wait() == 0
        assert time.monotonic() - stopping < 5
        assert exited(pid)
        client.join(10)
        assert outcome and isinstance(outcome[0], (OSError, http.client.HTTPException))
        sup.err(rf"worker 0 \(pid {pid}\) stopped \(killed by SIGKILL\)")
    finally:
        sup.close()


def test_a_worker_whose_loop_blocks_is_killed_with_its_traceback_and_replaced(
    app_dir: pathlib.Path,
) -> None:
    args = ["--bind", "127.0.0.1:0", "--workers", "1", "--worker-timeout", "1.5"]
    sup = serve(app_dir, "wapp:Root", *args)
    try:
        port = sup.port()
        blocked = pid_of(get(port)[1])
        outcome: list[object] = []
        client = threading.Thread(target=lambda: outcome.append(_try_get(port, "/block")))
        client.start()
        sup.err(
            rf"worker 0 \(pid {blocked}\) missed its heartbeats for 1\.\d s \(timeout 1\.5 s\)"
        )
        sup.err(r'File ".*wapp\.py", line \d+ in block')  # faulthandler: where it was stuck
        sup.err(rf"worker 0 \(pid {blocked}\) ended \(it missed its heartbeats .* killed\)")
        client.join(10)
        assert outcome and isinstance(outcome[0], (OSError, http.client.HTTPException))
        assert pid_of(get(port)[1]) != blocked
        sup.signal(signal.SIGTERM)
        assert sup.wait() == 0
    finally:
        sup.close()


def _try_get(port: int, path: str) -> object:
    try:
        return get(port, path)
    except (OSError, http.client.HTTPException) as error:
        return error


def test_a_unix_socket_is_shared_and_its_path_outlives_the_workers(
    app_dir: pathlib.Path,
) -> None:
    with short_dir() as directory:
        path = str(directory / "w.sock")
        sup = serve(app_dir, "wapp:Root", "--bind", path, "--workers", "2")
        try:
            sup.out(rf"^listening on http\+unix://{path}$")
            assert _unix_get(path).startswith(b"HTTP/1.1 200 ")
            sup.signal(signal.SIGHUP)  # the old workers' servers stop: the path stays
            sup.err(r"worker 1 \(pid \d+\) stopped")
            sup.err("rolling restart done")  # once the old workers have exited
            assert os.path.exists(path)
            assert _unix_get(path).startswith(b"HTTP/1.1 200 ")
            sup.signal(signal.SIGTERM)
            assert sup.wait() == 0
        finally:
            sup.close()
        assert not os.path.exists(path)


def _unix_get(path: str) -> bytes:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_two_servers_on_port_0_get_one_port_each_in_every_worker(
    app_dir: pathlib.Path,
) -> None:
    sup = supervise(app_dir, "wapp:two_servers", workers=2)
    try:
        where = json.loads(sup.out("^serving (.*)$").group(1))
        pids = set(json.loads(sup.out("^pids (.*)$").group(1)))
        assert sup.out("^reuse_port (.*)$").group(1) == "True"
        echo = next(w for w in where if not w.startswith("http"))
        web = next(w for w in where if w.startswith("http"))
        echo_port, web_port = int(echo.rsplit(":", 1)[1]), int(web.rsplit(":", 1)[1])
        answered = set()
        for _ in range(200):
            with socket.create_connection(("127.0.0.1", echo_port), timeout=10) as sock:
                sock.sendall(b"hi")
                answered.add(int(sock.recv(100).split()[0]))
            answered.add(pid_of(get(web_port)[1]))
            if answered == pids:
                break
        assert answered == pids
        sup.signal(signal.SIGINT)
        assert sup.wait() == 0
        assert sup.out("^failure (.*)$").group(1) == "None"
    finally:
        sup.close()


def test_one_shared_socket_without_reuse_port_survives_a_rolling_restart(
    app_dir: pathlib.Path,
) -> None:
    sup = supervise(app_dir, "wapp:web", workers=2, reuse_port=False)
    try:
        (where,) = json.loads(sup.out("^serving (.*)$").group(1))
        assert sup.out("^reuse_port (.*)$").group(1) == "False"
        load = Load(int(where.rsplit(":", 1)[1]), close=3)
        try:
            load.wait_until(lambda x: sum(x.answers.values()) >= 50)
            before = set(load.answers)
            sup.signal(signal.SIGHUP)
            sup.err("rolling restart done")
            load.wait_until(lambda x: bool(set(x.answers) - before))
        finally:
            load.stop()
        assert load.errors == []
        sup.signal(signal.SIGTERM)
        assert sup.wait() == 0
    finally:
        sup.close()


def test_a_replacement_that_cannot_start_leaves_the_old_worker_serving(
    app_dir: pathlib.Path,
) -> None:
    sup = supervise(app_dir, "wapp:flaky", workers=1, max_failures=2, backoff=0.05)
    try:
        (where,) = json.loads(sup.out("^serving (.*)$").group(1))
        port = int(where.rsplit(":", 1)[1])
        (serving_pid,) = json.loads(sup.out("^pids (.*)$").group(1))
        (app_dir / "broken.flag").write_text("")
        sup.signal(signal.SIGHUP)
        sup.err(
            rf"worker 0 \(pid \d+\): 2 failed starts in a row \(last: wapp:flaky failed: "
            rf"RuntimeError: broken deploy\); worker 0 \(pid {serving_pid}\) keeps serving"
        )
        assert pid_of(get(port)[1]) == serving_pid
        (app_dir / "broken.flag").unlink()
        sup.signal(signal.SIGHUP)  # the fixed deploy
        sup.err(rf"worker 0 \(pid {serving_pid}\) stopped \(exit status 0\)")
        assert pid_of(get(port)[1]) != serving_pid
        sup.signal(signal.SIGTERM)
        assert sup.wait() == 0
    finally:
        sup.close()


def test_workers_stop_when_their_supervisor_is_killed(app_dir: pathlib.Path) -> None:
    sup = serve(app_dir, "wapp:Root", "--bind", "127.0.0.1:0", "--workers", "2")
    try:
        sup.port()
        pids = [int(sup.err(rf"worker {n} \(pid (\d+)\) ready").group(1)) for n in (0, 1)]
        sup.proc.kill()
        assert all(exited(pid) for pid in pids)
        sup.err(r"worker: the supervisor has gone \(its end of the link closed\): stopping")
    finally:
        sup.close()


def test_without_pidfds_sigchld_reports_the_exits(app_dir: pathlib.Path) -> None:
    script = app_dir / "nopidfd.py"
    script.write_text(
        "import os, runpy, sys\n"
        "del os.pidfd_open  # as on macOS or an old kernel\n"
        "runpy.run_path('supervise.py', run_name='__main__')\n"
    )
    argv = [sys.executable, str(script), "wapp:web", json.dumps({"workers": 1})]
    sup = Supervised(*argv, cwd=app_dir)
    try:
        (where,) = json.loads(sup.out("^serving (.*)$").group(1))
        (pid,) = json.loads(sup.out("^pids (.*)$").group(1))
        os.kill(pid, signal.SIGKILL)
        sup.err(rf"worker 0 \(pid {pid}\) ended \(killed by SIGKILL\); starting another now")
        assert pid_of(get(int(where.rsplit(":", 1)[1]))[1]) != pid
        sup.signal(signal.SIGTERM)
        assert sup.wait() == 0
    finally:
        sup.close()


def test_a_factory_of_the_main_script_is_found_and_restart_works(tmp_path: pathlib.Path) -> None:
    script = tmp_path / "main_app.py"
    script.write_text(
        textwrap.dedent(
            """
            import os
            import sys
            import threading

            from netcomp import Component
            from netcomp.net import Supervisor
            from netcomp.web import Controller, Server


            class Root(Controller):
                channel = "/"

                def index(self):
                    return str(os.getpid())


            def build(greeting):
                assert greeting == "hello", greeting
                return Server(0) + Root()


            class Quit(Component):
                def serving(self, supervisor):
                    self.first = supervisor.pids
                    print(supervisor.listening[0], flush=True)
                    threading.Thread(target=supervisor.restart).start()

                def restarted(self, supervisor):
                    print(sorted(self.first), sorted(supervisor.pids), flush=True)
                    assert not set(self.first) & set(supervisor.pids)
                    for pid in self.first:  # done: the old workers have exited
                        try:
                            os.kill(pid, 0)
                        except ProcessLookupError:
                            continue
                        raise AssertionError(f"old worker {pid} still there")
                    supervisor.stop()


            if __name__ == "__main__":
                supervisor = Supervisor(build, 2, args=["hello"])
                Quit().register(supervisor)
                sys.exit(supervisor.run())
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=20, check=False
    )
    assert done.returncode == 0, done.stderr
    url, pids = done.stdout.splitlines()
    assert url.startswith("http://127.0.0.1:")
    before, after = json.loads("[" + pids.replace("] [", "], [") + "]")
    assert len(before) == len(after) == 2 and not set(before) & set(after)


def test_the_options_are_checked_where_they_are_given() -> None:
    cases: list[tuple[dict[str, object], type[Exception], str]] = [
        ({"factory": "myapp"}, ValueError, "expected 'module:attr', as in 'myapp:build'"),
        ({"factory": lambda: None}, TypeError, "cannot be found by name in a worker process"),
        ({"factory": 42}, TypeError, "factory must be 'module:attr' or a function"),
        ({"workers": 0}, ValueError, "workers must be >= 1, got 0"),
        ({"timeout": 0}, ValueError, "timeout must be > 0 seconds"),
        ({"max_requests": -1}, ValueError, "max_requests must be >= 0"),
        ({"kwargs": {"x": object()}}, TypeError, "args and kwargs must be JSON values"),
        ({"log_level": "loud"}, ValueError, "log_level must be one of debug, info"),
        ({"backoff": -1}, ValueError, "backoff must be a finite number of seconds >= 0"),
    ]
    for options, kind, message in cases:
        arguments = {"factory": "myapp:build", **options}
        with pytest.raises(kind, match=message.replace("(", r"\(").replace(")", r"\)")):
            Supervisor(**arguments)  # type: ignore[arg-type]
    supervisor = Supervisor(test_the_options_are_checked_where_they_are_given, 3)
    assert supervisor.factory == {
        "module": __name__,
        "attr": "test_the_options_are_checked_where_they_are_given",
    }
    assert supervisor.pids == [] and supervisor.listening == [] and supervisor.failure is None
    assert "workers=3" in repr(supervisor)
    assert serving(supervisor).args == restarted(supervisor).args == (supervisor,)


def test_workers_option_of_the_commands(app_dir: pathlib.Path) -> None:
    assert worker_count("3") == 3
    assert worker_count("auto") == len(os.sched_getaffinity(0))
    for argv, message in [
        (["--workers", "0"], "expected at least 1 worker, got 0"),
        (["--workers", "many"], "expected a number or 'auto', got 'many'"),
        (["--workers", "2", "--max-requests", "-1"], "max_requests must be >= 0, got -1"),
        (
            ["--max-requests", "9", "--worker-timeout", "3"],
            "--max-requests, --worker-timeout: worker options, given without --workers",
        ),
    ]:
        done = subprocess.run(
            [SCRIPT, "serve", *argv], capture_output=True, text=True, timeout=20, check=False
        )
        assert done.returncode == 2 and message in done.stderr
    for app, message in [
        ("wapp", "'wapp': expected module:attribute, as in myapp:app"),
        ("nowhere:app", "'nowhere:app': cannot import 'nowhere': No module named 'nowhere'"),
    ]:
        done = subprocess.run(
            [SCRIPT, "serve", app, "--workers", "2"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            cwd=app_dir,
        )
        assert done.returncode == 2 and done.stderr == f"netcomp serve: {message}\n"


def test_an_app_that_fails_in_the_worker_says_why_once(app_dir: pathlib.Path) -> None:
    done = subprocess.run(
        [SCRIPT, "serve", "wapp:missing", "--workers", "3"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
        cwd=app_dir,
    )
    assert done.returncode == 1
    message = "netcomp serve: 'wapp:missing': wapp has no attribute 'missing'"
    assert done.stderr.startswith(message + "\n")
    assert done.stderr.count(message) == 2  # the worker's line, the supervisor's verdict
    assert "could not start: " + message + "; giving up" in done.stderr


def test_configure_logging_can_name_the_process() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("netcomp")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    try:
        configure_logging("info", stream, pid=True)
        logging.getLogger("netcomp.web.access").info("a line")
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved
    assert stream.getvalue().endswith(f" INFO    netcomp.web.access[{os.getpid()}]: a line\n")
