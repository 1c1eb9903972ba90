"""circuits_chat.py: a circuits program, run unchanged on netcomp: a line-based TCP chat.

Written for circuits (every import names circuits; it runs under circuits itself too).
`python -m netcomp.compat` runs it on netcomp, mapping `circuits.*` imports to netcomp's
modules of the same names (docs/circuits.md). Each line a client sends goes to the others
as `<HOST:PORT> text`; everyone hears `*** HOST:PORT joined` / `left`. Prints
`listening on 127.0.0.1:PORT` once bound and `stopped` on Ctrl-C or SIGTERM.

Poke it:   python -m netcomp.compat examples/circuits_chat.py 8000   (port from argv[1]; 0 = any)
           nc 127.0.0.1 8000                                        (in two or more terminals)
"""

import sys

from circuits import Component
from circuits.net.events import write
from circuits.net.sockets import TCPServer


class Chat(Component):
    """Relays lines between the clients of its TCPServer (both on channel "server")."""

    channel = "server"

    def init(self, host, port):
        self.names = {}
        self.pending = {}
        TCPServer((host, port)).register(self)

    def ready(self, server, bind):
        print("listening on {}:{}".format(*bind), flush=True)

    def connect(self, sock, host, port):
        name = f"{host}:{port}"
        self.names[sock] = name
        self.pending[sock] = b""
        self.fire(write(sock, f"*** welcome {name}\n".encode()))
        self._tell_others(sock, f"*** {name} joined\n")

    def read(self, sock, data):
        *lines, self.pending[sock] = (self.pending[sock] + data).split(b"\n")
        for line in lines:
            text = line.rstrip(b"\r").decode("utf-8", "replace")
            self._tell_others(sock, f"<{self.names[sock]}> {text}\n")

    def disconnect(self, sock):
        name = self.names.pop(sock, None)
        self.pending.pop(sock, None)
        if name is not None:
            self._tell_others(sock, f"*** {name} left\n")

    def _tell_others(self, sender, text):
        for sock in self.names:
            if sock is not sender:
                self.fire(write(sock, text.encode()))

    def stopped(self, manager):
        print("stopped", flush=True)


if __name__ == "__main__":
    Chat("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0).run()
