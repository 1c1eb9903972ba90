"""Instructions per keep-alive request of the netcomp hello-world server, under callgrind.

usage: .venv/bin/python benchmarks/http/callgrind.py [TREE ...] [--requests N] [--depth D]
       .venv/bin/python benchmarks/http/callgrind.py [TREE ...] --close [--requests N]

For each source tree (a checkout of netcomp; default: this one) runs its
``benchmarks/http/servers/netcomp_app.py`` under ``valgrind --tool=callgrind`` with
``PYTHONHASHSEED=0``, warms it up with 512 pipelined requests on one connection, zeroes
the counters (``callgrind_control -z``), sends N more (pipelined D deep), dumps the counters
(``callgrind_control -d``) and prints instructions per request. Instruction counts do not
depend on what else runs on the machine: repeat runs agree within about 0.2 %, so two trees
are compared reliably on a busy machine (the rates of ``run.py`` are not). Pipelining
leaves the per-read costs (poll, recv, send) mostly out: this measures the request path.
``--close``: each request on a connection of its own (``Connection: close``, read to the
end, one connection at a time): the cost of a whole connection, accept to close.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
CLOSING = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def one_connection(port: int) -> None:
    """One request on a connection of its own, read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(CLOSING)
        buffer = b""
        while data := sock.recv(65536):
            buffer += data
        if not buffer.endswith(b"Hello, World!"):
            raise ConnectionError(f"unexpected answer {buffer[-80:]!r}")


def measure(tree: Path, requests: int, depth: int, close: bool = False) -> float:
    out = tempfile.mkdtemp(prefix="netcomp-cg-")
    env = dict(os.environ, PYTHONPATH=str(tree / "src"), PYTHONHASHSEED="0")
    app = tree / "benchmarks/http/servers/netcomp_app.py"
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.%p",
         sys.executable, str(app), "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        if close:
            count = requests
            _count(
                server.pid,
                lambda: [one_connection(port) for _ in range(64)],
                lambda: [one_connection(port) for _ in range(count)],
            )
        else:
            count = requests // depth * depth
            with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:

                def batches(rounds: int) -> None:
                    for _ in range(rounds):
                        sock.sendall(REQUEST * depth)
                        seen, buffer = 0, b""
                        while seen < depth:
                            data = sock.recv(65536)
                            if not data:
                                raise ConnectionError("the server closed the connection")
                            buffer += data
                            seen = buffer.count(b"Hello, World!")

                _count(server.pid, lambda: batches(512 // depth), lambda: batches(count // depth))
    finally:
        _stop(server)
    return _total(out, server.pid) / count


def _count(pid: int, warm: Callable[[], object], work: Callable[[], object]) -> None:
    """Warm up, zero the counters, do the work, dump the counters."""
    warm()
    control = ["callgrind_control", "-z", str(pid)]
    subprocess.run(control, check=True, capture_output=True, timeout=120)
    work()
    control[1] = "-d"
    subprocess.run(control, check=True, capture_output=True, timeout=120)


def _stop(server: subprocess.Popen[str]) -> None:
    """End the server. Under valgrind it sometimes ignores SIGTERM: killed after 10 s
    (the dump is written by then)."""
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=30)


def _total(out: str, pid: int) -> int:
    dump = Path(out) / f"cg.{pid}.1"
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dump}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*", type=Path, default=[Path(__file__).parents[2]])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--depth", type=int, default=16)
    parser.add_argument("--close", action="store_true", help="a connection per request")
    args = parser.parse_args()
    for tree in args.trees:
        ir = measure(tree.resolve(), args.requests, args.depth, args.close)
        print(f"{tree}: {ir:,.0f} instructions/{'connection' if args.close else 'request'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
