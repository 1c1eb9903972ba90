"""Worker processes (``netcomp.net.Supervisor``, ``--workers``): real supervisors, real
workers, real sockets on 127.0.0.1. Each worker's pid is in the body of the test
application's answers, so the tests see who served what.

* N workers all serve, from the same port, and the access log names the pid;
* kill -9 of a worker under load loses at most the requests in flight on it, and a
  replacement serves within a second;
* SIGTERM during a long streamed response lets it finish, then the supervisor exits 0;
* SIGHUP under continuous load: a rolling restart with zero connection errors;
* a factory that raises gives up at once; a worker that keeps dying is restarted with
  backoff, then given up with a clear error.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import sys
import time

import pytest

from _process_support import Load, Supervised, exited, get, pid_of, write_app

SCRIPT = str(pathlib.Path(sys.executable).with_name("netcomp"))


@pytest.fixture
def app_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    return write_app(tmp_path)


def serve(app_dir: pathlib.Path, *args: str, level: str = "info") -> Supervised:
    argv = [SCRIPT, "serve", "wapp:Root", "--bind", "127.0.0.1:0", "--log-level", level]
    return Supervised(*argv, *args, cwd=app_dir)


def test_every_worker_serves_and_the_access_log_names_it(app_dir: pathlib.Path) -> None:
    sup = serve(app_dir, "--workers", "2")
    try:
        port = sup.port()
        pids = {sup.err(r"worker 0 \(pid (\d+)\) ready").group(1)}
        pids.add(sup.err(r"worker 1 \(pid (\d+)\) ready").group(1))
        seen: set[str] = set()
        for _ in range(200):  # the kernel spreads new connections over both sockets
            status, body = get(port)
            assert status == 200
            seen.add(str(pid_of(body)))
            if seen == pids:
                break
        assert seen == pids
        logged: set[str] = set()
        while logged != pids:  # one access line per request, each naming its worker
            access = r" INFO    netcomp\.web\.access\[(\d+)\]: 127\.0\.0\.1 - - \[.*\"GET / "
            logged.add(sup.err(access).group(1))
        sup.signal(signal.SIGINT)
        assert sup.wait() == 0
        assert sup.out("^stopped$")
    finally:
        sup.close()
    assert sum("stopped (exit status 0)" in line for line in sup.errors) == 2


def test_kill_9_loses_only_the_requests_in_flight_and_is_replaced_within_a_second(
    app_dir: pathlib.Path,
) -> None:
    sup = serve(app_dir, "--workers", "2", level="warning")
    try:
        port = sup.port()
        load = Load(port, close=4)
        try:
            load.wait_until(lambda x: len(x.answers) == 2)
            victim = min(load.answers)
            originals = set(load.answers)
            killed = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            load.wait_until(lambda x: len(x.answers) == 3)
            load.wait_until(lambda x: sum(x.answers.values()) >= 200 + x.answers[victim])
        finally:
            load.stop()
        (replacement,) = set(load.answers) - originals
        # At most one request per client thread was in flight on the killed worker.
        assert len(load.errors) <= 4, load.errors
        assert "ConnectionRefusedError" not in {kind for _, kind in load.errors}
        # ... and they failed when it died: nothing queued for it failed later.
        assert all(when < load.first_seen[replacement] for when, _ in load.errors), load.errors
        assert load.first_seen[replacement] - killed < 1.0
        print(
            f"answers {dict(load.answers)}, errors {[kind for _, kind in load.errors]}, "
            f"replacement's first answer {load.first_seen[replacement] - killed:.3f} s after"
        )
        sup.err(rf"worker \d \(pid {victim}\) ended \(killed by SIGKILL\); starting another now")
        sup.signal(signal.SIGTERM)
        assert sup.wait() == 0
    finally:
        sup.close()


def test_sigterm_lets_a_long_streamed_response_finish(app_dir: pathlib.Path) -> None:
    argv = [sys.executable, "-m", "netcomp.web", "--bind", "127.0.0.1:0", "--workers", "2"]
    sup = Supervised(*argv, "--log-level", "warning", cwd=app_dir)
    try:
        port = sup.port()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /stream?lines=100000 HTTP/1.1\r\nHost: x\r\n\r\n")
            received = sock.recv(65536)
            assert received.startswith(b"HTTP/1.1 200 ")
            sup.signal(signal.SIGTERM)  # while most of the ~2 MB response is to come
            while chunk := sock.recv(1 << 20):
                received += chunk
        body = received.split(b"\r\n\r\n", 1)[1]
        assert body.endswith(b"line 100000 of 100000\n\r\n0\r\n\r\n")
        assert body.count(b" of 100000\n") == 100000
        assert sup.wait() == 0
        assert sup.out("^stopped$")
    finally:
        sup.close()


def test_a_second_signal_forces_the_exit_and_kills_the_workers(app_dir: pathlib.Path) -> None:
    argv = [sys.executable, "-m", "netcomp.web", "--bind", "127.0.0.1:0", "--workers", "2"]
    sup = Supervised(*argv, cwd=app_dir)
    try:
        port = sup.port()
        pids = [int(sup.err(rf"worker {n} \(pid (\d+)\) ready").group(1)) for n in (0, 1)]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /stream?lines=100000 HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            sup.signal(signal.SIGTERM)  # a worker waits for this client, which reads no more
            sup.err("stopping 2 worker")
            sup.signal(signal.SIGTERM)
            assert sup.wait() == 130
        assert all(exited(pid) for pid in pids)
    finally:
        sup.close()
    assert "signal 15 again while stopping: forced exit" in "\n".join(sup.errors)


def test_sighup_rolling_restart_under_load_has_no_connection_error(
    app_dir: pathlib.Path,
) -> None:
    sup = serve(app_dir, "--workers", "2", level="warning")
    try:
        port = sup.port()
        load = Load(port, close=3, keep_alive=2)
        try:
            load.wait_until(lambda x: len(x.answers) == 2)
            before = set(load.answers)
            sup.signal(signal.SIGHUP)
            load.wait_until(lambda x: len(set(x.answers) - before) == 2, timeout=20)
            served = sum(load.answers.values())
            load.wait_until(lambda x: sum(x.answers.values()) >= served + 200)
        finally:
            load.stop()
        assert load.errors == []
        assert sum(load.answers.values()) > 400
        print(f"answers {dict(load.answers)}, keep-alive retries {load.retries}")
        sup.signal(signal.SIGTERM)
        assert sup.wait() == 0
    finally:
        sup.close()
    assert not [line for line in sup.errors if "WARNING" in line or "ERROR" in line]


def supervise(app_dir: pathlib.Path, factory: str, **options: object) -> Supervised:
    argv = [sys.executable, "supervise.py", factory, json.dumps(options)]
    return Supervised(*argv, cwd=app_dir)


def test_a_factory_that_raises_gives_up_at_once(app_dir: pathlib.Path) -> None:
    sup = supervise(app_dir, "wapp:broken", workers=3)
    try:
        assert sup.wait() == 1
        sup.out(r"^failure worker 0 \(pid \d+\) could not start: wapp:broken failed: ")
    finally:
        sup.close()
    errors = "\n".join(sup.errors)
    assert errors.count("RuntimeError: no database") == 2  # the traceback, the verdict
    assert "ERROR   netcomp[" in errors and "worker: wapp:broken failed" in errors
    assert "worker 1" not in errors  # the others never started


def test_a_worker_that_keeps_dying_is_restarted_with_backoff_then_given_up(
    app_dir: pathlib.Path,
) -> None:
    sup = supervise(app_dir, "wapp:dying", workers=1, max_failures=3, backoff=0.05)
    try:
        sup.err(r"worker 0 \(pid \d+\) ended \(exit status 3\); starting another now")
        sup.err(r"worker 0 \(pid \d+\) ended \(exit status 3\); starting another in 0\.05 s")
        sup.err(
            r"ERROR   netcomp\[\d+\]: worker 0 failed 3 times in a row "
            r"\(last: worker 0 \(pid \d+\), exit status 3\); giving up"
        )
        assert sup.wait() == 1
    finally:
        sup.close()
