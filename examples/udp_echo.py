"""udp_echo.py: a UDP echo server: every datagram goes back to the address it came from.

What it shows: a `UDPServer` on 127.0.0.1 and an `Echo` component on its channel
("server"): `read(address, data)` returning bytes sends them back to `address`. It prints
`listening on 127.0.0.1:PORT` once bound, and stops gracefully on Ctrl-C or SIGTERM.

Poke it:   python examples/udp_echo.py 9000        (port from argv[1]; 0 or none = any free)
           nc -u 127.0.0.1 9000                     (each line you type comes back)
"""

from __future__ import annotations

import sys
from typing import Any

from netcomp import Component, Manager
from netcomp.net import UDPServer


class Echo(Component):
    """Answers each datagram with its own bytes."""

    channel = "server"

    def ready(self, server: Any, bind: Any) -> None:
        print(f"listening on {bind[0]}:{bind[1]}", flush=True)

    def read(self, address: Any, data: bytes) -> bytes:
        return data

    def stopped(self, manager: Manager) -> None:
        print("stopped", flush=True)


def main(argv: list[str]) -> int:
    port = int(argv[1]) if len(argv) > 1 else 0
    app = Manager()
    app += UDPServer(("127.0.0.1", port))
    app += Echo()
    code = app.run()  # SIGINT / SIGTERM stop it gracefully
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
