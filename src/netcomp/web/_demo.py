"""The demo web server behind ``python -m netcomp.web`` and ``netcomp serve``.

Pages: ``/`` (hello, with links), ``/echo`` (JSON echo of the request), ``/stream``
(a chunked response produced line by line, paced by the client), ``/static/`` (files).
"""

from __future__ import annotations

import argparse
import html
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..core import Component, Manager, configure_logging, handler
from ..net import Supervisor
from ._controllers import Controller
from ._server import BaseServer, Server
from ._static import Static

__all__ = [
    "Announce",
    "Demo",
    "add_server_options",
    "build",
    "check_static",
    "main",
    "parser",
    "run_tree",
    "supervise",
    "without_workers",
    "worker_count",
    "worker_tree",
]

STATIC = Path(__file__).with_name("demo_static")

_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>netcomp</title></head>
<body>
<h1>Hello from netcomp.web</h1>
<ul>
<li><a href="/echo?name=world">/echo</a>: your request as JSON (try POSTing JSON to it)</li>
<li><a href="/stream?lines=20">/stream</a>: a streamed, chunked response</li>
<li><a href="/static/">/static/</a>: files from {static}</li>
</ul>
</body>
</html>
"""


class Demo(Controller):
    """The demo's pages under ``/``."""

    channel = "/"

    def __init__(self, static: Path = STATIC) -> None:
        """``static``: the directory shown on the index page."""
        super().__init__()
        self.static = static

    def index(self) -> str:
        """The hello page."""
        return _PAGE.format(static=html.escape(str(self.static)))

    def echo(self, *args: str, **kwargs: Any) -> dict[str, Any]:
        """The request, as JSON: method, path, query, headers and body (parsed if JSON)."""
        request = self.request
        body: Any = request.body.decode("utf-8", "replace")
        if request.content_type == "application/json" and request.body:
            body = request.json()
        return {
            "method": request.method,
            "path": request.path,
            "args": list(args),
            "query": request.query,
            "headers": dict(request.headers.items()),
            "body": body,
        }

    def stream(self, lines: str = "10") -> Iterator[str]:
        """``lines`` lines (at most 100,000), each pulled only when the client has room."""
        try:
            count = max(0, min(int(lines), 100_000))
        except ValueError:
            self.error(400, "lines must be an integer")
        self.response.headers["Content-Type"] = "text/plain; charset=utf-8"
        return (f"line {n} of {count}\n" for n in range(1, count + 1))


class Announce(Component):
    """Prints where each server listens (``listening on URL``) and ``stopped`` on the way
    out: what the command line shows, and what tests wait for. Under a Supervisor: where
    the workers listen, once they all serve."""

    @handler("ready", channel="*")
    def _on_ready(self, component: Any, bind: Any = None) -> None:
        if isinstance(component, BaseServer):
            if component.family == socket.AF_UNIX or bind is None:
                print(f"listening on {component.url}", flush=True)
            else:  # one line per address of a server that listens on several
                print(f"listening on {component.scheme}://{_address(bind)}", flush=True)
        elif bind is not None:
            print(f"listening on {_address(bind)}", flush=True)

    @handler("serving", channel="*")
    def _on_serving(self, supervisor: Supervisor) -> None:
        for where in supervisor.listening:
            print(f"listening on {where}", flush=True)

    def stopped(self, manager: Manager) -> None:
        """Say goodbye."""
        print("stopped", flush=True)


def _address(bind: Any) -> str:
    if isinstance(bind, tuple):
        host = f"[{bind[0]}]" if ":" in str(bind[0]) else bind[0]
        return f"{host}:{bind[1]}"
    return str(bind)


def build(bind: Any = "127.0.0.1:8000", static: Path | str = STATIC) -> Server:
    """The demo tree: a Server with the demo controller and static files under /static/."""
    server = Server(bind)
    Demo(Path(static)).register(server)
    Static(str(static), prefix="/static").register(server)
    return server


def worker_tree(bind: str, static: str, prog: str) -> Server:
    """The demo tree in a worker process of ``--workers`` (a bind that fails says so
    and exits, as the single process does)."""
    try:
        return build(bind, static)
    except (OSError, ValueError, TypeError) as err:
        raise SystemExit(f"{prog}: cannot listen on {bind}: {err}") from None


def run_tree(root: Manager, prog: str) -> int:
    """Run a tree until SIGINT/SIGTERM (a second one forces the exit) and give the
    process's exit status: the stop code if it is an int, 1 (with the text printed) for
    another one, 130 for a forced exit."""
    Announce().register(root)
    try:
        code = root.run()
    except KeyboardInterrupt as forced:
        print(f"{prog}: {forced}", file=sys.stderr)
        return 130
    if isinstance(code, int):
        return code
    print(f"{prog}: stopped: {code}", file=sys.stderr)
    return 1


def parser(prog: str = "python -m netcomp.web") -> argparse.ArgumentParser:
    """The command line of the demo server."""
    args = argparse.ArgumentParser(prog=prog, description="netcomp's demo web server")
    add_server_options(args)
    return args


def add_server_options(args: argparse.ArgumentParser) -> None:
    """``--bind``, ``--static``, ``--log-level`` and the worker options: what both
    commands take."""
    args.add_argument(
        "--bind",
        action="append",
        default=None,
        help="HOST:PORT, [V6]:PORT, PORT or a UNIX path (default 127.0.0.1:8000); "
        "repeat it to listen on several addresses",
    )
    args.add_argument("--static", type=Path, default=None, help="directory for /static/")
    args.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    workers = args.add_argument_group("worker processes (each runs its own tree)")
    workers.add_argument(
        "--workers",
        type=worker_count,
        default=None,
        metavar="N",
        help="serve from N supervised processes sharing the listeners ('auto': one per "
        "CPU); default: this process alone, unsupervised",
    )
    workers.add_argument(
        "--max-requests",
        type=int,
        default=0,
        metavar="N",
        help="replace a worker after N requests (0: never)",
    )
    workers.add_argument(
        "--max-requests-jitter",
        type=int,
        default=0,
        metavar="N",
        help="add up to N (random, per worker) to --max-requests",
    )
    workers.add_argument(
        "--worker-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="kill and replace a worker silent that long (a blocked loop); default 30",
    )


def worker_count(text: str) -> int:
    """``--workers``: a whole number >= 1, or ``auto`` (the CPUs this process may use)."""
    if text == "auto":
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - no sched_getaffinity (macOS)
            return os.cpu_count() or 1
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 worker, got {number}")
    return number


def without_workers(options: argparse.Namespace) -> str | None:
    """What is wrong with worker options given without ``--workers`` (None: nothing)."""
    given = [
        flag
        for flag, value, default in (
            ("--max-requests", options.max_requests, 0),
            ("--max-requests-jitter", options.max_requests_jitter, 0),
            ("--worker-timeout", options.worker_timeout, 30.0),
        )
        if value != default
    ]
    if options.workers is None and given:
        return f"{', '.join(given)}: worker options, given without --workers"
    return None


def supervise(options: argparse.Namespace, prog: str, factory: str, kwargs: dict[str, Any]) -> int:
    """Run ``factory`` (``module:attr``, called with ``kwargs``) in ``options.workers``
    supervised processes until SIGINT/SIGTERM; the exit status (see :func:`run_tree`)."""
    try:
        supervisor = Supervisor(
            factory,
            options.workers,
            kwargs=kwargs,
            log_level=options.log_level,
            timeout=options.worker_timeout,
            max_requests=options.max_requests,
            max_requests_jitter=options.max_requests_jitter,
        )
    except (ValueError, TypeError) as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    return run_tree(supervisor, prog)


def check_static(prog: str, static: Path | None) -> Path | None:
    """The demo's static directory, or None after saying why it is not one."""
    path = STATIC if static is None else static
    if not path.is_dir():
        print(f"{prog}: --static {path}: not a directory", file=sys.stderr)
        return None
    return path


def main(argv: list[str] | None = None, prog: str = "python -m netcomp.web") -> int:
    """Run the demo server until SIGINT/SIGTERM; returns the exit code."""
    options = parser(prog).parse_args(argv)
    wrong = without_workers(options)
    if wrong:
        print(f"{prog}: {wrong}", file=sys.stderr)
        return 2
    configure_logging(options.log_level, pid=options.workers is not None)
    static = check_static(prog, options.static)
    if static is None:
        return 2
    bind = options.bind or ["127.0.0.1:8000"]
    if options.workers is not None:
        kwargs = {"bind": bind, "static": str(static), "prog": prog}
        return supervise(options, prog, "netcomp.web._demo:worker_tree", kwargs)
    try:
        server = build(bind, static)
    except (OSError, ValueError, TypeError) as err:
        print(f"{prog}: cannot listen on {', '.join(bind)}: {err}", file=sys.stderr)
        return 1
    return run_tree(server, prog)
