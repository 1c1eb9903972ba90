"""reconnecting_client.py: a Connex that keeps a link to echo servers and loses no line.

What it shows: a `Connex` trying 127.0.0.1:PORT (and any fallback ports, in turn) with a
short backoff, and a `Ticker` writing `tick N` lines every `--interval` seconds whether
the link is up or not. Lines written while it is down are queued and delivered, in order,
as soon as a server answers again; what the server echoes is printed as `echo: tick N`.
It prints `connected to 127.0.0.1:PORT` (with how many queued lines it is delivering),
`disconnected`, `unreachable 127.0.0.1:PORT: REASON (attempt N)`, and `stopped` when it
ends gracefully on Ctrl-C or SIGTERM.

Poke it:   python examples/echo_server.py 8000             (in another terminal)
           python examples/reconnecting_client.py 8000 8001   (ports from argv, in turn)
           stop the echo server for a while, start it again (or one on 8001): the ticks
           written meanwhile come back, none lost, none twice
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from netcomp import Component, Event, Manager, Timer
from netcomp.net import Backoff, Connex, write


class Ticker(Component):
    """Writes a numbered line on every beat and prints the lines echoed back."""

    channel = "connex"

    def init(self, connex: Connex) -> None:
        self.connex = connex
        self.number = 0
        self.queued: list[int] = []  # ticks written while the link was down
        self.partial = b""

    def beat(self) -> None:
        self.number += 1
        if not self.connex.connected:
            self.queued.append(self.number)
        self.fire(write(b"tick %d\n" % self.number))

    def connected(self, host: str, port: int) -> None:
        waiting = f" (delivering {len(self.queued)} queued line(s))" if self.queued else ""
        print(f"connected to {host}:{port}{waiting}", flush=True)
        self.queued.clear()

    def disconnected(self) -> None:
        print("disconnected", flush=True)

    def unreachable(self, host: str, port: int, reason: Any, attempt: int) -> None:
        print(f"unreachable {host}:{port}: {reason!r} (attempt {attempt})", flush=True)

    def read(self, data: bytes) -> None:
        *lines, self.partial = (self.partial + data).split(b"\n")
        for line in lines:
            print(f"echo: {line.decode(errors='replace')}", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ports", nargs="+", type=int, help="echo server ports on 127.0.0.1")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between ticks")
    args = parser.parse_args(argv[1:])
    app = Manager()
    connex = Connex(
        [("127.0.0.1", port) for port in args.ports],
        backoff=Backoff(initial=0.1, factor=2.0, maximum=2.0),
        connect_timeout=2.0,
    )
    app += connex
    app += Ticker(connex)
    app += Timer(args.interval, Event.create("beat"), "connex", persist=True)
    code = app.run()  # SIGINT / SIGTERM stop it gracefully (the link closes cleanly)
    print("stopped", flush=True)
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
