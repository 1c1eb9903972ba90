"""Hello-world on netcomp.web: a ``Server`` and a ``Controller`` whose ``index`` says hello.

``python netcomp_app.py [PORT] [WORKERS]`` (0 or nothing: any free port); prints
``listening PORT`` once it serves. Runs until SIGINT/SIGTERM. With ``WORKERS``, a
``netcomp.net.Supervisor`` runs the same tree (``build``) in that many worker processes
sharing the listening socket(s); the line comes once every worker is ready.
"""

from __future__ import annotations

import sys

from netcomp import Component, Manager
from netcomp.net import Supervisor
from netcomp.web import Controller, Server


class Root(Controller):
    channel = "/"

    def index(self) -> str:
        self.response.headers["Content-Type"] = "text/plain; charset=utf-8"
        return "Hello, World!"


class Announce(Component):
    def init(self, server: Server) -> None:
        self.server = server

    def started(self, manager: Manager) -> None:
        print(f"listening {self.server.port}", flush=True)


class AnnounceWorkers(Component):
    def serving(self, supervisor: Supervisor) -> None:
        port = supervisor.listening[0].rsplit(":", 1)[1]
        print(f"listening {port}", flush=True)


def build(port: int = 0) -> Server:
    """The tree, in one process or in each worker."""
    return Server(("127.0.0.1", port), backlog=1024) + Root()


def main() -> int:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    if len(sys.argv) > 2:
        supervisor = Supervisor("netcomp_app:build", int(sys.argv[2]), args=[port])
        AnnounceWorkers().register(supervisor)
        code = supervisor.run()
        return code if isinstance(code, int) else 1
    server = build(port)
    server += Announce(server)
    code = server.run()
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
