"""slow_readers.py: streamed responses that wait for slow readers instead of piling up.

What it shows: a `netcomp.web.Server` streaming a large generated response to each
client. The generator is pulled only while the client's connection has room (below its
32 KiB high water mark), so a client that reads slowly is produced for at its own pace:
it costs the server 32 KiB plus one chunk, never the whole response, and a fast client
on another connection is served at full speed meanwhile. The server's output budget
(`HTTPLimits.output_budget`) caps what all connections buffer together. `/progress` is a
WSGI application (`WSGIGateway`) whose lines reach the client one by one as they are
made. `/stats` says what the streams produced so far and what the server buffers now.
It prints `listening on http://127.0.0.1:PORT` once bound and stops on Ctrl-C or SIGTERM.

Poke it:   python examples/slow_readers.py 8000             (port from argv[1]; 0 = any free)
           curl -s --limit-rate 64k http://127.0.0.1:8000/stream -o /dev/null &   (a slow reader)
           curl -s http://127.0.0.1:8000/stats                (JSON: it produced far under 4 MiB)
           curl -s -o /dev/null -w '%{size_download}' http://127.0.0.1:8000/stream   (4194304)
           curl -N http://127.0.0.1:8000/progress             (five lines, 0.2 s apart, as made)
The slow reader takes 64 s for its 4 MiB. Meanwhile /stats shows that its stream has made
only what the reader took, what the kernel's socket buffers hold, and at most 32 KiB and a
line more, which the server buffers ("buffered_max" <= "high_water" + 1 KiB), while the
fast reader gets its 4 MiB at once. Many slow readers, with slowhttptest installed:
           slowhttptest -c 500 -X -w 512 -y 1024 -n 5 -z 32 -l 20 -u http://127.0.0.1:8000/stream
then /stats again: "buffered" (all connections) stays under "budget".
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from netcomp import Component, Manager
from netcomp.web import Controller, Server, WSGIGateway

LINE = 1024  # bytes per line of /stream
MAX_KIB = 64 * 1024  # /stream?kib=N: at most 64 MiB


class Streams(Controller):
    """``/stream?kib=N``: N lines of 1 KiB (4 MiB by default), made as the client takes them."""

    channel = "/"

    def init(self, server: Server) -> None:
        self.server = server
        #: Bytes each stream produced so far, by stream number (finished ones stay).
        self.produced: dict[int, int] = {}
        self.done: set[int] = set()

    def stream(self, kib: str = "4096") -> Iterator[bytes]:
        lines = min(int(kib), MAX_KIB) if kib.isdigit() else 4096
        number = len(self.produced) + 1
        self.produced[number] = 0
        self.response.headers["Content-Type"] = "text/plain; charset=utf-8"
        return self._lines(number, lines)

    def _lines(self, number: int, lines: int) -> Iterator[bytes]:
        try:
            for n in range(1, lines + 1):
                line = f"stream {number} line {n} ".encode().ljust(LINE - 1, b".") + b"\n"
                self.produced[number] += len(line)  # counted as it is made, not as it is sent
                yield line
        finally:
            self.done.add(number)

    def stats(self) -> dict[str, Any]:
        server = self.server
        budget = server.limits.budget
        buffered = [server.buffered(sock) for sock in server.connections]
        return {
            "streams": [
                {"stream": n, "produced": size, "done": n in self.done}
                for n, size in self.produced.items()
            ],
            "connections": len(buffered),
            "buffered": sum(buffered),
            "buffered_max": max(buffered, default=0),
            "high_water": server.limits.high_water,
            "budget": budget.limit if budget is not None else None,
        }


def progress(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """A WSGI application: five lines, 0.2 s apart (it runs on a worker thread, so the
    sleeps hold that thread, never the server's loop)."""
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    for step in range(1, 6):
        if step > 1:
            time.sleep(0.2)
        yield f"step {step} of 5 at {time.strftime('%H:%M:%S')}\n".encode()


class Announce(Component):
    """Says where the server listens, once it does."""

    def init(self, server: Server) -> None:
        self.server = server

    def started(self, manager: Manager) -> None:
        print(f"listening on {self.server.url}", flush=True)


def main(argv: list[str]) -> int:
    port = int(argv[1]) if len(argv) > 1 else 0
    server = Server(("127.0.0.1", port))
    Streams(server).register(server)
    WSGIGateway(progress, "/progress", workers=4).register(server)
    Announce(server).register(server)
    code = server.run()  # SIGINT / SIGTERM stop it gracefully
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
