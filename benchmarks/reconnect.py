"""Reconnect benchmark: time from a server coming back to the first byte Connex delivers.

Usage::

    python benchmarks/reconnect.py                       # 50 restarts, delay 0.1 s
    python benchmarks/reconnect.py --restarts 50 --delay 0.05,0.1,0.25

What runs (one process, loopback only):

* A netcomp ``Manager`` runs one ``Connex`` on its own thread, with the backoff at its
  minimum: ``Backoff(initial=delay, factor=1, maximum=delay, jitter=0)``, so while the
  server is down every retry comes ``delay`` seconds after the previous refusal.
* The server is a listening socket on a port reserved for the whole run: a socket bound
  with ``SO_REUSEPORT`` that never listens holds it, so "down" (no listener: connects are
  refused by the kernel) and "up" (a new listener beside the holder) need no rebind.
* Per restart: with the server down and Connex retrying, one message is written (Connex
  queues it); after a random pause of 1 to 3 delays (so the server comes back at a random
  point of the retry cycle) the server listens (t0), accepts and reads until the message's
  first byte arrives (t1). ``t1 - t0`` is one sample. Then the server closes the connection
  and its listener and waits for Connex's ``disconnected``.

Expected: the next retry is at most ``delay`` after t0 (uniform over the cycle), plus the
connect and the flush: median about ``delay / 2``, maximum about ``delay``. Goal (issue 4):
median at most ``delay + 50 ms``. Never run in CI.
"""

from __future__ import annotations

import argparse
import platform
import random
import socket
import statistics
import sys
import threading
import time
from typing import Any

from netcomp import BaseComponent, Manager, handler
from netcomp.net import Backoff, Connex, write

CHANNEL = "bench"
GOAL_SLACK = 0.050
TIMEOUT = 10.0


class Signals(BaseComponent):
    """Turns Connex events into thread events the benchmark's main thread can wait on."""

    channel = CHANNEL

    def init(self) -> None:
        self.connected = threading.Event()
        self.disconnected = threading.Event()

    @handler("connected")
    def _on_connected(self, host: Any, port: Any) -> None:
        self.disconnected.clear()
        self.connected.set()

    @handler("disconnected")
    def _on_disconnected(self) -> None:
        self.connected.clear()
        self.disconnected.set()


def hold_port() -> socket.socket:
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    return holder


def listen_beside(holder: socket.socket) -> socket.socket:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind(holder.getsockname())
    listener.listen(16)
    listener.settimeout(TIMEOUT)
    return listener


def measure(delay: float, restarts: int, seed: int) -> list[float]:
    """One run: ``restarts`` samples of server-back-to-first-byte, in seconds."""
    rng = random.Random(seed)
    holder = hold_port()
    manager = Manager()
    signals = Signals()
    signals.register(manager)
    Connex(
        [holder.getsockname()],
        backoff=Backoff(initial=delay, factor=1.0, maximum=delay, jitter=0.0),
        connect_timeout=2.0,
        channel=CHANNEL,
    ).register(manager)
    samples: list[float] = []
    manager.start()
    try:
        for number in range(restarts + 1):  # the first round only gets Connex going
            manager.fire(write(b"message %d\n" % number), CHANNEL)
            if number:
                time.sleep(delay * rng.uniform(1.0, 3.0))  # down for a while, random phase
            listener = listen_beside(holder)
            came_back = time.perf_counter()
            try:
                conn, _ = listener.accept()
                with conn:
                    conn.settimeout(TIMEOUT)
                    first = conn.recv(1)
                    arrived = time.perf_counter()
                    if not first:
                        raise RuntimeError("Connex closed the link before sending")
                    if not signals.connected.wait(TIMEOUT):
                        raise RuntimeError("no connected event")
            finally:
                listener.close()  # the server is down again: connects are refused
            if number:
                samples.append(arrived - came_back)
            if not signals.disconnected.wait(TIMEOUT):
                raise RuntimeError("Connex did not notice the server going away")
    finally:
        manager.stop()
        manager.join(TIMEOUT)
        holder.close()
    return samples


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=50)
    parser.add_argument("--delay", default="0.1", help="backoff delays in s, comma-separated")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args(argv[1:])
    delays = [float(d) for d in args.delay.split(",")]
    print(f"Python {platform.python_version()} on {platform.platform()}, {args.restarts} restarts")
    print("| delay | median | p90 | max | min | goal: median <= delay + 50 ms |")
    print("|---|---|---|---|---|---|")
    for delay in delays:
        samples = measure(delay, args.restarts, args.seed)
        median = statistics.median(samples)
        verdict = "met" if median <= delay + GOAL_SLACK else "NOT met"
        print(
            f"| {delay * 1000:.0f} ms | {median * 1000:.1f} ms "
            f"| {percentile(samples, 0.9) * 1000:.1f} ms | {max(samples) * 1000:.1f} ms "
            f"| {min(samples) * 1000:.1f} ms | {verdict} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
