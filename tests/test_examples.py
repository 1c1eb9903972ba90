"""Every program in examples/ runs, does what its opening comment says, and exits cleanly."""

from __future__ import annotations

import pathlib
import signal
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def run_example(*argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_every_example_has_a_test_and_an_opening_comment() -> None:
    tested = {
        "hello.py",
        "workers.py",
        "echo_server.py",
        "chat_server.py",
        "udp_echo.py",
        "reconnecting_client.py",
        "web_app.py",  # tests/test_web_main.py
        "circuits_chat.py",  # tests/test_compat.py (run with python -m netcomp.compat)
        "distributed_jobs.py",  # tests/test_broker.py (needs redis-server)
        "websocket_chat.py",  # tests/test_websocket_example.py
        "web_members.py",  # tests/test_web_examples.py
        "web_rpc.py",  # tests/test_web_examples.py
        "web_fetch.py",  # tests/test_web_examples.py
        "wsgi_app.py",  # tests/test_web_examples.py
        "inspector.py",  # tests/test_inspector.py (in a browser), test_example_headers.py
        "slow_readers.py",  # tests/test_example_headers.py
        "file_to_server.py",  # tests/test_examples_net.py, test_example_headers.py
        "worker_processes.py",
    }
    found = {p.name for p in EXAMPLES.glob("*.py")}
    missing = found - tested
    assert not missing, f"examples without a test: {sorted(missing)}"
    for path in EXAMPLES.glob("*.py"):
        first = path.read_text().lstrip().splitlines()[0]
        assert first.startswith('"""') and path.name in first, path


def test_hello_prints_greetings_and_exits() -> None:
    proc = run_example("hello.py", "3")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines == [
        "Hello, tick #1!",
        "Hello, tick #2!",
        "Hello, tick #3!",
        "stopped after 3 ticks",
    ]


@pytest.mark.parametrize("signo", [signal.SIGINT, signal.SIGTERM])
def test_hello_forever_stops_gracefully_on_signal(signo: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "hello.py"), "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # blocks until the loop is up and has ticked once
        assert first.startswith("Hello, tick #1")
        proc.send_signal(signo)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == 0, err
    assert out.splitlines()[-1].startswith("stopped after")


def test_workers_keep_the_loop_going() -> None:
    proc = run_example("workers.py")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "slow_square(7) = 49" in lines
    assert "slow_square(12) = 144" in lines
    # beats were printed between the start and the first result: the loop was not blocked
    assert any(line.startswith("beat") for line in lines[: lines.index("slow_square(7) = 49")])
