"""distributed_jobs.py: a web front hands jobs to worker processes through Redis.

What it shows: `netcomp.broker.RedisBridge` with a work queue. The front (a web server)
answers `GET /square?n=7` by awaiting `self.call(job("square", 7), "jobs")`: the event goes
to the Redis stream of the `jobs` channel, exactly one worker of the group handles it
(acknowledged once done; another worker takes it over if that one dies), and its answer
comes back to the waiting request. `GET /fail` shows a worker's error coming back as the
same exception class. Needs Redis and `pip install 'netcomp[redis]'`; the Redis URL is
$REDIS_URL (default redis://127.0.0.1:6379/0). Each process prints `listening on ...` or
`worker ... ready` once bridged, and stops gracefully on Ctrl-C or SIGTERM.

Poke it:   python examples/distributed_jobs.py worker          (a worker; start two)
           python examples/distributed_jobs.py front 8000      (the web front on port 8000)
           curl http://127.0.0.1:8000/square?n=7               (JSON: n, square 49, worker pid)
           curl -i http://127.0.0.1:8000/fail                  (500: the worker's ValueError)
"""

from __future__ import annotations

import os
import sys
from typing import Any

from netcomp import Component, Event, Manager, handler
from netcomp.broker import RedisBridge, WorkQueue
from netcomp.web import JSONController, Server

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


class job(Event):
    """job(kind, n): work for one worker."""


class Worker(Component):
    """Handles jobs (in a worker process)."""

    channel = "jobs"

    def job(self, kind: str, n: int) -> dict[str, Any]:
        if kind != "square":
            raise ValueError(f"no such job: {kind!r}")
        return {"n": n, "square": n * n, "worker": os.getpid()}


class Front(JSONController):
    """The web side: one URL per kind of job."""

    channel = "/"

    async def square(self, n: str = "2") -> Any:
        return await self.call(job("square", int(n)), "jobs", timeout=10)

    async def fail(self) -> Any:
        return await self.call(job("explode", 0), "jobs", timeout=10)


class Announce(Component):
    """Prints once the bridge is up."""

    def init(self, text: str) -> None:
        self.text = text
        self.said = False

    @handler("bridged", channel="redis-bridge")
    def _bridged(self, bridge: RedisBridge) -> None:
        if not self.said:
            self.said = True
            print(self.text, flush=True)


def main(argv: list[str]) -> int:
    role = argv[1] if len(argv) > 1 else "worker"
    app = Manager()
    consume = role == "worker"
    RedisBridge(REDIS_URL, [WorkQueue("jobs", consume=consume)], events=[job]).register(app)
    if consume:
        Worker().register(app)
        Announce(f"worker {os.getpid()} ready").register(app)
    elif role == "front":
        port = int(argv[2]) if len(argv) > 2 else 8000
        server = Server(("127.0.0.1", port))
        server.register(app)
        Front().register(server)
        Announce(f"listening on {server.url}").register(app)
    else:
        print(f"usage: {argv[0]} worker | front [PORT]", file=sys.stderr)
        return 2
    return int(app.run() or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
