"""A peer process for the broker tests: ``python _broker_peer.py ROLE URL [OPTIONS]``.

Roles: ``echo`` (hears ``say`` on the broadcast channel ``chat``, answers ``heard`` on
``echo``), ``worker NAME`` (handles ``job`` from the work queue ``jobs`` and sends ``done``
to the work queue ``results``; ``--stuck`` takes jobs and never finishes them), ``rpc``
(answers ``compute`` on the work queue ``rpc``). It prints ``ready`` once bridged, and
stops gracefully on SIGTERM. The event classes live here so that the tests share them.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from netcomp import Component, Event, Future, handler
from netcomp.broker import RedisBridge, WorkQueue
from netcomp.net import Backoff


class say(Event):
    """``say(text)`` on ``chat``."""


class heard(Event):
    """``heard(pid, text, to=)`` on ``echo``."""


class hello(Event):
    """``hello(pid)`` on ``echo``: a peer is bridged."""


class job(Event):
    """``job(n)`` on ``jobs``."""


class done(Event):
    """``done(n, worker)`` on ``results``."""


class compute(Event):
    """``compute(x)`` on ``rpc``."""


class Unlucky(Exception):
    """Raised by ``compute(13)``."""


EVENTS: tuple[Any, ...] = (say, heard, hello, job, done, compute, Unlucky)
FAST = Backoff(initial=0.05, factor=2.0, maximum=0.5)


class Echo(Component):
    channel = "chat"

    def say(self, text: str, to: Any = None) -> None:
        self.fire(heard(os.getpid(), text, to=to), "echo")


class Worker(Component):
    channel = "jobs"

    def init(self, name: str, stuck: bool) -> None:
        self.name = name
        self.stuck = stuck

    def job(self, n: int) -> Any:
        if self.stuck:
            print(f"taken {n}", flush=True)
            return Future()  # never done: the entry stays unacknowledged
        self.fire(done(n, self.name), "results")
        return n


class Rpc(Component):
    channel = "rpc"

    def compute(self, x: int) -> int:
        if x == 13:
            raise Unlucky("thirteen")
        if x < 0:
            raise ValueError(f"negative: {x}")
        return x * 2


class Peer(Component):
    channel = "peer"

    def init(self, bridge: RedisBridge, announce: bool) -> None:
        self.bridge = bridge
        self.announce = announce
        self.said = False

    @handler("bridged", channel="redis-bridge")
    def _bridged(self, bridge: RedisBridge) -> None:
        if not self.said:
            self.said = True
            if self.announce:
                self.fire(hello(os.getpid()), "echo")
            print("ready", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["echo", "worker", "rpc"])
    parser.add_argument("url")
    parser.add_argument("--name", default="w")
    parser.add_argument("--stuck", action="store_true")
    parser.add_argument("--idle", type=float, default=1.0)
    parser.add_argument("--prefetch", type=int, default=256)
    parser.add_argument("--prefix", default="netcomp")
    parser.add_argument("--group", default="workers")
    args = parser.parse_args(argv)
    idle, claim = args.idle, args.idle / 4
    if args.role == "echo":
        channels: list[Any] = ["chat", "echo"]
        app: Component = Echo()
    elif args.role == "worker":
        channels = [
            WorkQueue(
                "jobs", group=args.group, consume=True, idle_timeout=idle,
                claim_interval=claim, prefetch=args.prefetch,
            ),
            WorkQueue("results"),
        ]  # fmt: skip
        app = Worker(args.name, args.stuck)
    else:
        channels = [WorkQueue("rpc", consume=True, idle_timeout=idle, claim_interval=claim)]
        app = Rpc()
    bridge = RedisBridge(
        args.url, channels, events=EVENTS, backoff=FAST, block=1.0, prefix=args.prefix
    )
    root = Peer(bridge, args.role == "echo")
    bridge.register(root)
    app.register(root)
    code = root.run()
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
