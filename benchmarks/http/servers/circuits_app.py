"""Hello-world on circuits.web: circuits' ``Server`` and a ``Controller``.

``python circuits_app.py [PORT]`` (0 or nothing: any free port); prints ``listening PORT``
when circuits fires ``ready`` (the listening socket is up).
"""

from __future__ import annotations

import sys

from circuits import Component, handler
from circuits.web import Controller, Server


class Root(Controller):
    def index(self):
        self.response.headers["Content-Type"] = "text/plain; charset=utf-8"
        return "Hello, World!"


class Announce(Component):
    @handler("ready", channel="web")
    def _ready(self, server, bind):
        print(f"listening {bind[1]}", flush=True)


def main() -> int:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    app = Server(("127.0.0.1", port), display_banner=False)
    Root().register(app)
    Announce().register(app)
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
