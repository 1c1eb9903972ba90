"""A Flask application behind WSGIGateway: when streamed lines arrive, and what a large
generated download costs the server.

Usage::

    python benchmarks/wsgi_stream.py                 # 5 lines 0.3 s apart, 100 MiB download
    python benchmarks/wsgi_stream.py --size-mib 1000

The server is a child process (``python benchmarks/wsgi_stream.py --serve``: a netcomp
``Server`` with the Flask app mounted at ``/``). ``/lines`` yields five lines 0.3 s
apart; the client prints when each arrives (seconds after the request). ``/download``
yields ``--size-mib`` MiB in 64 KiB chunks; curl downloads it to /dev/null and the
server's peak RSS (``VmHWM``) is read before it stops. Needs Flask (the test extra) and
curl.
"""

from __future__ import annotations

import argparse
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from typing import Any

LINES = 5
GAP = 0.3


def serve(size: int) -> int:
    import flask

    from netcomp import Component, Manager
    from netcomp.web import Server, WSGIGateway

    app = flask.Flask("wsgi_stream")

    @app.route("/lines")
    def lines() -> Any:
        def generate() -> Any:
            for n in range(LINES):
                if n:
                    time.sleep(GAP)
                yield f"line {n}\n"

        return flask.Response(generate(), mimetype="text/plain")

    @app.route("/download")
    def download() -> Any:
        def generate() -> Any:
            block = os.urandom(64 * 1024)
            for _ in range(size // len(block)):
                yield block

        response = flask.Response(generate(), mimetype="application/octet-stream")
        response.headers["Content-Length"] = str(size)
        return response

    class Announce(Component):
        def started(self, manager: Manager) -> None:
            print(f"listening {server.port}", flush=True)

    server = Server(("127.0.0.1", 0))
    WSGIGateway(app, workers=4).register(server)
    Announce().register(server)
    code = server.run()
    return code if isinstance(code, int) else 0


def _rss(pid: int, name: str) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(name + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args.add_argument("--size-mib", type=int, default=100)
    options = args.parse_args()
    size = options.size_mib * 1024 * 1024
    if options.serve:
        return serve(size)
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--size-mib", str(options.size_mib)],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(child.stdout, selectors.EVENT_READ)
            selector.select(20)
        found = re.search(rb"listening (\d+)", os.read(child.stdout.fileno(), 100))
        assert found, "the server did not start"
        port = int(found.group(1))
        arrivals = lines(port)
        print("lines arrive at (s):", ", ".join(f"{t:.2f}" for t in arrivals))
        rss = _rss(child.pid, "VmRSS")
        start = time.monotonic()
        curl = subprocess.run(
            [
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{size_download}",
                f"http://127.0.0.1:{port}/download",
            ],
            capture_output=True,
            check=True,
            timeout=600,
        )
        took = time.monotonic() - start
        print(
            f"download: {int(curl.stdout)} bytes in {took:.2f} s; server RSS before "
            f"{rss:.1f} MB, peak {_rss(child.pid, 'VmHWM'):.1f} MB"
        )
    finally:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    return 0


def lines(port: int) -> list[float]:
    """When each line of /lines arrives, in seconds after the request was sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /lines HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        arrivals: list[float] = []
        data = b""
        while len(arrivals) < LINES:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            now = time.monotonic() - start
            arrivals.extend(now for _ in range(data.count(b"line ") - len(arrivals)))
    return arrivals


if __name__ == "__main__":
    sys.exit(main())
