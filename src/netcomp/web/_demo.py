"""The demo web server behind ``python -m netcomp.web`` and ``netcomp serve``.

Pages: ``/`` (hello, with links), ``/echo`` (JSON echo of the request), ``/stream``
(a chunked response produced line by line, paced by the client), ``/static/`` (files).
"""

from __future__ import annotations

import argparse
import html
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..core import Component, Manager
from ._controllers import Controller
from ._server import BaseServer, Server
from ._static import Static

__all__ = ["Demo", "build", "main"]

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

    def init(self, static: Path = STATIC) -> None:
        """``static``: the directory shown on the index page."""
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


class _Announce(Component):
    """Prints where the server listens, and says goodbye on stop."""

    def init(self, server: BaseServer) -> None:
        self.server = server

    def started(self, manager: Manager) -> None:
        print(f"listening on {self.server.url}", flush=True)

    def stopped(self, manager: Manager) -> None:
        print("stopped", flush=True)


def build(bind: Any = ("127.0.0.1", 8000), static: Path = STATIC) -> Server:
    """The demo tree: a Server with the demo controller and static files under /static/."""
    server = Server(bind)
    Demo(static).register(server)
    Static(str(static), prefix="/static").register(server)
    _Announce(server).register(server)
    return server


def _parse_bind(text: str) -> Any:
    if text.startswith("/"):
        return text
    host, _, port = text.rpartition(":")
    if not host:
        return ("127.0.0.1", int(port))
    return (host.strip("[]"), int(port))


def parser(prog: str = "python -m netcomp.web") -> argparse.ArgumentParser:
    """The command line of the demo server."""
    args = argparse.ArgumentParser(prog=prog, description="netcomp's demo web server")
    args.add_argument(
        "--bind", default="127.0.0.1:8000", help="HOST:PORT, [V6]:PORT, PORT or a UNIX path"
    )
    args.add_argument("--static", type=Path, default=STATIC, help="directory for /static/")
    args.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return args


def main(argv: list[str] | None = None, prog: str = "python -m netcomp.web") -> int:
    """Run the demo server until SIGINT/SIGTERM; returns the exit code."""
    options = parser(prog).parse_args(argv)
    logging.basicConfig(level=options.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    if not options.static.is_dir():
        print(f"{prog}: --static {options.static}: not a directory", file=sys.stderr)
        return 2
    try:
        server = build(_parse_bind(options.bind), options.static)
    except (OSError, ValueError) as err:
        print(f"{prog}: cannot listen on {options.bind}: {err}", file=sys.stderr)
        return 1
    code = server.run()  # SIGINT / SIGTERM stop it gracefully
    return code if isinstance(code, int) else 0
