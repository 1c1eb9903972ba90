"""Hello-world on netcomp.web: a ``Server`` and a ``Controller`` whose ``index`` says hello.

``python netcomp_app.py [PORT]`` (0 or nothing: any free port); prints ``listening PORT``
once the loop runs. Runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import sys

from netcomp import Component, Manager
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


def main() -> int:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = Server(("127.0.0.1", port), backlog=1024)
    server += Root()
    server += Announce(server)
    code = server.run()
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
