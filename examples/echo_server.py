"""echo_server.py: a TCP echo server: a component whose `read` handler returns the data.

What it shows: a `TCPServer` on 127.0.0.1 and an `Echo` component on the same channel
("server"); whatever `read(sock, data)` returns is written back to that connection (the
circuits echo idiom), with the server's buffering and backpressure doing the rest. It prints
`listening on 127.0.0.1:PORT` once bound, and stops gracefully on Ctrl-C or SIGTERM.

Poke it:   python examples/echo_server.py 8000      (port from argv[1]; 0 or none = any free)
           nc 127.0.0.1 8000                         (type lines: they come back)
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from netcomp import Component, Manager
from netcomp.net import TCPServer


class Echo(Component):
    """Sends every chunk a client sends straight back to it."""

    channel = "server"

    def ready(self, server: Any, bind: Any) -> None:
        print(f"listening on {bind[0]}:{bind[1]}", flush=True)

    def read(self, sock: socket.socket, data: bytes) -> bytes:
        return data

    def stopped(self, manager: Manager) -> None:
        print("stopped", flush=True)


def main(argv: list[str]) -> int:
    port = int(argv[1]) if len(argv) > 1 else 0
    app = Manager()
    app += TCPServer(("127.0.0.1", port))
    app += Echo()
    code = app.run()  # SIGINT / SIGTERM stop it gracefully
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
