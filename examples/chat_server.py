"""chat_server.py: a line-based TCP chat: each line a client sends goes to all the others.

What it shows: a `Chat` component tracking connections through the server's `connect` and
`disconnect` events, splitting each connection's input into lines, and firing
`write(sock, data)` to the other clients. Lines go out as `[HOST:PORT] text`; everyone else
hears `*** HOST:PORT joined` / `*** HOST:PORT left`, and a newcomer is greeted with
`*** welcome HOST:PORT, N other(s) here`. Prints `listening on 127.0.0.1:PORT` once bound and
stops gracefully on Ctrl-C or SIGTERM.

Poke it:   python examples/chat_server.py 8001      (port from argv[1]; 0 or none = any free)
           nc 127.0.0.1 8001                         (in two or more terminals, and talk)
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from netcomp import Component, Manager
from netcomp.net import TCPServer, write

MAX_LINE = 64 * 1024  # a client that never sends a newline cannot grow our memory further


class Chat(Component):
    """Relays lines between the clients of the server on its channel."""

    channel = "server"

    def init(self) -> None:
        self.names: dict[socket.socket, str] = {}
        self.pending: dict[socket.socket, bytes] = {}

    def ready(self, server: Any, bind: Any) -> None:
        print(f"listening on {bind[0]}:{bind[1]}", flush=True)

    def connect(self, sock: socket.socket, host: str, port: int) -> None:
        name = f"{host}:{port}"
        others = len(self.names)
        self.names[sock] = name
        self.pending[sock] = b""
        self.fire(write(sock, f"*** welcome {name}, {others} other(s) here\n".encode()))
        self._tell_others(sock, f"*** {name} joined\n".encode())

    def read(self, sock: socket.socket, data: bytes) -> None:
        name = self.names.get(sock)
        if name is None:
            return
        *lines, rest = (self.pending[sock] + data).split(b"\n")
        if len(rest) > MAX_LINE:
            lines.append(rest)
            rest = b""
        self.pending[sock] = rest
        for line in lines:
            text = line.rstrip(b"\r")
            self._tell_others(sock, b"[" + name.encode() + b"] " + text + b"\n")

    def disconnect(self, sock: socket.socket) -> None:
        name = self.names.pop(sock, None)
        self.pending.pop(sock, None)
        if name is not None:
            self._tell_others(sock, f"*** {name} left\n".encode())

    def _tell_others(self, sender: socket.socket, data: bytes) -> None:
        for sock in self.names:
            if sock is not sender:
                self.fire(write(sock, data))

    def stopped(self, manager: Manager) -> None:
        print("stopped", flush=True)


def main(argv: list[str]) -> int:
    port = int(argv[1]) if len(argv) > 1 else 0
    app = Manager()
    app += TCPServer(("127.0.0.1", port))
    app += Chat()
    code = app.run()  # SIGINT / SIGTERM stop it gracefully
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
