"""worker_processes.py: one web application served by several worker processes.

What it shows: a `netcomp.net.Supervisor` runs the tree `build` makes in N worker
processes that share one listening port (SO_REUSEPORT on Linux: the kernel spreads the
connections). `/` says which worker answered (its pid); `/hits` counts the requests *that
worker* has answered: each worker builds its own tree, so state in it is per worker (state
all workers share goes through a broker: docs/broker.md, docs/workers.md). The supervisor
prints `listening on http://127.0.0.1:PORT` once every worker serves, and its own pid.
SIGHUP replaces the workers one at a time (new pids, no refused connection); Ctrl-C or
SIGTERM stops them all gracefully (requests in progress finish); a worker killed with
`kill -9` is replaced at once. The same thing from the command line:
`netcomp serve examples.worker_processes:build --workers 2`.

Poke it:   python examples/worker_processes.py 8000 2     (two workers on port 8000)
           curl http://127.0.0.1:8000/                      (the pid of the worker that answered)
           curl http://127.0.0.1:8000/hits                  (that worker's own count)
           kill -HUP <the supervisor pid it printed>        (rolling restart: new pids on /)
           kill -9 <a worker pid from />                    (replaced: a new pid answers)
"""

from __future__ import annotations

import os
import sys

from netcomp import Component
from netcomp.net import Supervisor
from netcomp.web import Controller, Server


class Root(Controller):
    """The application: which worker answered, and how many requests it has answered."""

    channel = "/"

    def init(self) -> None:
        self.answered = 0  # this worker's: every worker has its own Root

    def index(self) -> str:
        self.answered += 1
        return f"worker pid {os.getpid()}\n"

    def hits(self) -> str:
        self.answered += 1
        return f"worker pid {os.getpid()} has answered {self.answered} requests\n"


def build(port: int = 8000) -> Server:
    """The tree each worker builds: a web server on 127.0.0.1:PORT and the controller."""
    return Server(("127.0.0.1", port)) + Root()


class Announce(Component):
    """Prints where the workers listen once they all serve, each rolling restart, and
    ``stopped`` once every worker has stopped."""

    def serving(self, supervisor: Supervisor) -> None:
        print(f"listening on {supervisor.listening[0]}", flush=True)
        print(f"supervisor pid {os.getpid()}, workers {supervisor.pids}", flush=True)

    def restarted(self, supervisor: Supervisor) -> None:
        print(f"rolling restart done: workers {supervisor.pids}", flush=True)

    def stopped(self, manager: Supervisor) -> None:
        print("stopped", flush=True)


def main(argv: list[str]) -> int:
    port = int(argv[1]) if len(argv) > 1 else 8000
    workers = int(argv[2]) if len(argv) > 2 else 2
    supervisor = Supervisor(build, workers, args=[port])
    Announce().register(supervisor)
    code = supervisor.run()
    return code if isinstance(code, int) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
