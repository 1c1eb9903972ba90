"""benchmarks/broker.py: events/s and p99 latency from one process to another through Redis.

One run starts a private redis-server (no persistence) on a free port, then for each case a
receiver process and a sender process:

* ``netcomp-broadcast``: RedisBridge, a Broadcast channel (PUBLISH / SUBSCRIBE);
* ``netcomp-workqueue``: RedisBridge, a WorkQueue channel (XADD / XREADGROUP / XACK);
* ``redis-py-await``: redis-py's asyncio client, ``await r.publish()`` per message, a
  pubsub subscriber (its everyday use);
* ``redis-py-pipeline``: redis-py's asyncio client, publishes in pipelines of ``--chunk``.

The sender sends ``--n`` messages in chunks of ``--chunk`` (one loop turn each; the next
once Redis answered the last, as a pipeline is awaited), each
carrying its send time (``time.monotonic``, one clock for both processes); the receiver
reports messages/s (first send to last receipt) and the p50/p99 send-to-handler latency.
circuits' process Bridge is not measured here (see benchmarks/README.md).

Run:  python benchmarks/broker.py [--n 50000] [--chunk 500] [--cases a,b]
Needs redis-server, ``pip install -e '.[redis,bench]'``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from netcomp import Component, Event, Manager, handler
from netcomp.broker import Broadcast, RedisBridge, WorkQueue

CASES = ["netcomp-broadcast", "netcomp-workqueue", "redis-py-await", "redis-py-pipeline"]


class tick(Event):
    """tick(i, sent): one message."""


def report(latencies: list[float], first_sent: float, last_seen: float) -> None:
    latencies.sort()
    n = len(latencies)
    print(
        json.dumps(
            {
                "n": n,
                "rate": n / (last_seen - first_sent),
                "p50_ms": statistics.median(latencies) * 1000,
                "p99_ms": latencies[int(n * 0.99) - 1] * 1000,
            }
        ),
        flush=True,
    )


# ------------------------------------------------------------------ netcomp
def spec(case: str, consume: bool) -> Any:
    if case == "netcomp-workqueue":
        return WorkQueue("bench", consume=consume, prefetch=1000)
    return Broadcast("bench")


class Receiver(Component):
    channel = "bench"

    def init(self, n: int) -> None:
        self.n = n
        self.latencies: list[float] = []
        self.first = 0.0
        self.said = False

    def tick(self, i: int, sent: float) -> None:
        now = time.monotonic()
        if not self.latencies:
            self.first = sent
        self.latencies.append(now - sent)
        if len(self.latencies) == self.n:
            report(self.latencies, self.first, now)
            self.stop()

    @handler("bridged", channel="redis-bridge")
    def _ready(self, bridge: RedisBridge) -> None:
        if not self.said:
            self.said = True
            print("ready", flush=True)


class Sender(Component):
    channel = "sender"

    def init(self, n: int, chunk: int) -> None:
        self.n = n
        self.chunk = chunk
        self.next = 0
        self.began = False

    @handler("bridged", channel="redis-bridge")
    def _go(self, bridge: RedisBridge) -> None:
        if not self.began:
            self.began = True
            self.bridge = bridge
            self.loop.call_soon(self._send)

    def _send(self) -> None:
        # Paced like redis-py's pipeline: the next chunk once the last one is answered
        # (at most one chunk in flight), else the latency measured is only queueing.
        if self.bridge.commands.waiting > 0:
            self.loop.call_later(0.0002, self._send)
            return
        end = min(self.n, self.next + self.chunk)
        for i in range(self.next, end):
            self.fire(tick(i, time.monotonic()), "bench")
        self.next = end
        if end < self.n:
            self.loop.call_soon(self._send)


def run_netcomp(role: str, case: str, url: str, n: int, chunk: int) -> None:
    app = Manager()
    RedisBridge(url, [spec(case, role == "receive")], events=[tick]).register(app)
    part = Receiver(n) if role == "receive" else Sender(n, chunk)
    part.register(app)
    app.run()


# ------------------------------------------------------------------ redis-py
async def redis_py(role: str, case: str, url: str, n: int, chunk: int) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    if role == "receive":
        pubsub = client.pubsub()
        await pubsub.subscribe("bench")
        print("ready", flush=True)
        latencies: list[float] = []
        first = 0.0
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            now = time.monotonic()
            i, sent = json.loads(message["data"])
            if not latencies:
                first = sent
            latencies.append(now - sent)
            if len(latencies) == n:
                report(latencies, first, now)
                break
        await pubsub.aclose()
    else:
        for start in range(0, n, chunk):
            if case == "redis-py-pipeline":
                async with client.pipeline(transaction=False) as pipe:
                    for i in range(start, min(n, start + chunk)):
                        pipe.publish("bench", json.dumps([i, time.monotonic()]))
                    await pipe.execute()
            else:
                for i in range(start, min(n, start + chunk)):
                    await client.publish("bench", json.dumps([i, time.monotonic()]))
        await asyncio.sleep(3600)  # the orchestrator ends us
    await client.aclose()


# ------------------------------------------------------------------ orchestration
def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError(f"no output within {timeout} s")
    return proc.stdout.readline().strip()


def start_redis(folder: str) -> tuple[subprocess.Popen[str], int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = shutil.which("redis-server") or "redis-server"
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", folder, "--logfile", ""],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while "Ready to accept" not in read_line(proc, deadline - time.monotonic()):
        pass
    return proc, port


def one_case(case: str, url: str, n: int, chunk: int) -> dict[str, Any]:
    me = [sys.executable, __file__, "--role"]
    options = ["--case", case, "--url", url, "--n", str(n), "--chunk", str(chunk)]
    receiver = subprocess.Popen([*me, "receive", *options], stdout=subprocess.PIPE, text=True)
    sender = None
    try:
        assert read_line(receiver, 15) == "ready"
        sender = subprocess.Popen([*me, "send", *options], stdout=subprocess.PIPE, text=True)
        result: dict[str, Any] = json.loads(read_line(receiver, 300))
        return result
    finally:
        for proc in (sender, receiver):
            if proc is not None:
                proc.kill()
                proc.wait(10)
                if proc.stdout is not None:
                    proc.stdout.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--role", choices=["send", "receive"])
    parser.add_argument("--case")
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.role:
        if args.case.startswith("netcomp"):
            run_netcomp(args.role, args.case, args.url, args.n, args.chunk)
        else:
            asyncio.run(redis_py(args.role, args.case, args.url, args.n, args.chunk))
        return 0
    with tempfile.TemporaryDirectory() as folder:
        proc, port = start_redis(folder)
        try:
            version = subprocess.run(
                ["redis-server", "--version"], capture_output=True, text=True, check=True
            ).stdout.split()[2]
            print(f"redis-server {version}, Python {sys.version.split()[0]}, "
                  f"{os.cpu_count()} cores, n={args.n}, chunk={args.chunk}")  # fmt: skip
            print(f"{'case':<20} {'msg/s':>10} {'p50 ms':>9} {'p99 ms':>9}")
            for case in args.cases.split(","):
                url = f"redis://127.0.0.1:{port}/0"
                result = one_case(case, url, args.n, args.chunk)
                print(
                    f"{case:<20} {result['rate']:>10,.0f} {result['p50_ms']:>9.2f} "
                    f"{result['p99_ms']:>9.2f}",
                    flush=True,
                )
        finally:
            proc.kill()
            proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
