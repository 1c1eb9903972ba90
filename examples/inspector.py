"""inspector.py: a small web program with netcomp's live inspector page mounted on it.

What it shows: `netcomp.tools.Inspector` on a `netcomp.web.Server` bound to 127.0.0.1 (the
inspector refuses other binds unless told otherwise). The program itself is a greeting
page at "/", a WebSocket echo at "/echo", a `Timer` that fires `heartbeat` twice a second
(so the counters move with no traffic at all) and a `Connex` that keeps a link to the
server's own port (so there is a Connex state to see). Open /_netcomp in a browser: the
component tree, the handler map, events per second, the loop's queue and lag, the open
connections with their bytes, the Connex, the timers, updated live over a WebSocket. It
prints `listening on http://127.0.0.1:PORT` once bound and stops on Ctrl-C or SIGTERM.

Poke it:   python examples/inspector.py 8003                      (port from argv[1]; 0 = any free)
           curl -i http://127.0.0.1:8003/                           (200: the greeting)
           curl -s http://127.0.0.1:8003/_netcomp/api/stats         (the live numbers, as JSON)
           curl -s http://127.0.0.1:8003/_netcomp/metrics           (the counters, for Prometheus)
           Then open http://127.0.0.1:8003/_netcomp in a browser and watch it move.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from netcomp import Component, Event, Manager, Timer
from netcomp.net import Connex
from netcomp.tools import Inspector
from netcomp.web import Controller, Server, WebSocketsDispatcher


class heartbeat(Event):
    """Fired by the timer, twice a second."""


class Greeting(Controller):
    """The page at "/"."""

    channel = "/"

    def index(self) -> str:
        return "hello from netcomp: the inspector is at /_netcomp\n"


class Echo(Component):
    """Sends every WebSocket message back."""

    channel = "echo"

    def read(self, sock: socket.socket, message: str | bytes) -> str | bytes:
        return message


class Pulse(Component):
    """Counts heartbeats."""

    channel = "pulse"

    def init(self) -> None:
        self.beats = 0

    def heartbeat(self) -> None:
        self.beats += 1


class Announce(Component):
    """Says where the server listens."""

    channel = "web"

    def ready(self, server: Any, bind: Any) -> None:
        print(f"listening on http://{bind[0]}:{bind[1]}", flush=True)


def build(port: int = 0) -> Manager:
    """The program's tree (``netcomp graph examples.inspector:build`` draws it)."""
    app = Manager()
    server = Server(("127.0.0.1", port)).register(app)
    Greeting().register(server)
    Announce().register(server)
    WebSocketsDispatcher("/echo", channel="echo").register(server)
    Echo().register(app)
    Pulse().register(app)
    Timer(0.5, heartbeat(), "pulse", persist=True).register(app)
    Connex([("127.0.0.1", server.port or port)], channel="selflink").register(app)
    Inspector("/_netcomp", interval=0.5).register(server)
    return app


def main(argv: list[str]) -> int:
    port = int(argv[1]) if len(argv) > 1 else 0
    code = build(port).run()  # SIGINT / SIGTERM stop it gracefully
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
