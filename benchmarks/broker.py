"""benchmarks/broker.py: events/s and latency from one process to another, across processes.

One run starts a private redis-server (no persistence) on a free port; then, for each case,
a receiver process and a sender process:

* ``netcomp-broadcast``: RedisBridge, a Broadcast channel (PUBLISH / SUBSCRIBE);
* ``netcomp-workqueue``: RedisBridge, a WorkQueue channel (XADD / XREADGROUP / XACK + XDEL);
* ``redis-py-await``: redis-py's asyncio client, ``await r.publish()`` per message, a
  pubsub subscriber (its everyday use);
* ``redis-py-pipeline``: redis-py's asyncio client, each chunk one pipeline of publishes;
* ``redis-py-stream``: redis-py's asyncio client doing what the work queue does: each chunk
  one pipeline of ``XADD``; the receiver in a consumer group, ``XREADGROUP COUNT window
  BLOCK``, then ``XACK`` + ``XDEL`` of what it read in one pipeline (not awaited before the
  next read, as netcomp's acks go out on a link of their own);
* ``circuits-bridge``: circuits' process ``Bridge`` (no Redis): the parent fires
  ``ipc(sample(...), "bench")`` on the Bridge that ``start(process=True, link=parent)``
  made, over circuits' Pipe (a socket pair, pickle), to the child. circuits' ``ipc``
  handler waits for each event's value (``yield self.fire(ipc(...))`` is its documented
  use): the child's handler returns ``True``, which travels back and ends the wait;
* ``circuits-oneway``: the same, the child's handler returns ``None``: nothing comes back,
  and every ``ipc`` stays waiting in the parent (one waiting handler per message, never
  freed): faster, but not something a long-running program can do.

Load model, the same for every case: a closed loop with a window. At most ``--window``
messages are in flight (sent, not yet handled by the receiver); the sender sends in chunks
of ``--chunk`` (one loop turn, or one pipeline, each) whenever the window has room for a
whole chunk, and otherwise looks again after ``--poll`` seconds. The receiver counts what
it handled in a shared memory page that the sender reads: nothing of the feedback travels
through the transport being measured. (``redis-py-await`` has one publish in flight at a
time from its sender: that is what awaiting each publish means.) ``--rate R`` also caps the
offered load at R messages/s (chunk k is not sent before k * chunk / R seconds): the
latency of a load every contender can carry, rather than of a full window.

Each message carries its index and send time (``time.monotonic``: one clock for both
processes); the receiver's handler takes the latency. Reported per case: messages/s
(first send to last receipt), p50/p99 latency, and the CPU of each process over that time
(sender, receiver, redis-server, from their own ``process_time`` and redis' /proc stat):
microseconds per message and share of one core. ``--rounds R`` runs the cases in turn R
times (alternating, each round starting with the next case) and reports, per case, the
round with the highest rate, then the median of the rounds (each column on its own): at
an offered ``--rate`` every round has the same rate, and the median is the one to read.

Run:  python benchmarks/broker.py [--n 50000] [--window 1000] [--chunk 100] [--rate 0]
      [--rounds 3] [--gc-freeze] [--pipelines 1] [--cases a,b]
Needs redis-server, ``pip install -e '.[redis,bench]'`` (redis-py, circuits).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import mmap
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from circuits import Event as CircuitsEvent

from netcomp import Component, Event, Manager, handler
from netcomp.broker import Broadcast, RedisBridge, WorkQueue

CASES = [
    "netcomp-broadcast",
    "netcomp-workqueue",
    "redis-py-await",
    "redis-py-pipeline",
    "redis-py-stream",
    "circuits-bridge",
    "circuits-oneway",
]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DUMP = os.environ.get("BROKER_BENCH_TRACE")  # a file: (time, latency) of every message


# ------------------------------------------------------------------ the shared window
class Shared:
    """Two counters in a shared memory page: messages handled, receiver ready."""

    def __init__(self, path: str) -> None:
        with open(path, "r+b") as file:
            self._map = mmap.mmap(file.fileno(), 16)
        self.slots = memoryview(self._map).cast("q")

    @property
    def received(self) -> int:
        return int(self.slots[0])

    @property
    def ready(self) -> bool:
        return bool(self.slots[1])

    def set_ready(self) -> None:
        self.slots[1] = 1


def report(result: dict[str, Any]) -> None:
    """One JSON line on stdout in one write(): circuits' parent and child share the pipe,
    and a line written in pieces could interleave with the other's."""
    sys.stdout.flush()
    os.write(sys.stdout.fileno(), (json.dumps(result) + "\n").encode())


class Recorder:
    """The receiver's part: latencies, the shared count, the report at the n-th message."""

    def __init__(self, n: int, shared: Shared) -> None:
        self.n = n
        self.slots = shared.slots
        self.latencies: list[float] = []
        self.first = 0.0
        self.cpu = 0.0
        self.trace: list[tuple[float, float]] = []

    def take(self, sent: float) -> bool:
        """Record one message; True at the last one (after printing the report)."""
        now = time.monotonic()
        latencies = self.latencies
        if not latencies:
            self.first = sent
            self.cpu = time.process_time()
        latencies.append(now - sent)
        if DUMP:
            self.trace.append((now, now - sent))
        count = len(latencies)
        self.slots[0] = count
        if count < self.n:
            return False
        cpu = time.process_time() - self.cpu
        if DUMP:
            with open(DUMP, "w") as file:
                json.dump(self.trace, file)
        latencies.sort()
        out = {
            "role": "receive",
            "n": count,
            "seconds": now - self.first,
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(count * 0.99) - 1] * 1000,
            "cpu": cpu,
        }
        report(out)
        return True


class Pacer:
    """The sender's part: what the window (and the rate) lets it send now, its CPU at the end."""

    def __init__(self, args: argparse.Namespace, shared: Shared) -> None:
        self.n: int = args.n
        self.window: int = args.window
        self.chunk: int = args.chunk
        self.rate: float = args.rate
        self.poll: float = args.poll
        self.shared = shared
        self.next = 0
        self.cpu = 0.0
        self.began = 0.0

    def room(self) -> tuple[int, float]:
        """``(count, 0)``: send ``count`` messages now; ``(0, seconds)``: look again then."""
        if self.next == 0:
            self.cpu = time.process_time()
            self.began = time.monotonic()
        want = min(self.chunk, self.n - self.next)
        if self.next + want - self.shared.received > self.window:
            return 0, self.poll
        if self.rate:
            early = self.began + self.next / self.rate - time.monotonic()
            if early > 0:
                return 0, early
        return want, 0.0

    def finished(self) -> bool:
        """Whether the receiver has everything; prints the sender's report once it has."""
        if self.shared.received < self.n:
            return False
        report({"role": "send", "cpu": time.process_time() - self.cpu})
        return True


# ------------------------------------------------------------------ netcomp
class sample(Event):
    """sample(i, sent): one message."""


def spec(case: str, consume: bool, window: int) -> Any:
    if case == "netcomp-workqueue":
        return WorkQueue("bench", consume=consume, prefetch=window)
    return Broadcast("bench")


class Receiver(Component):
    channel = "bench"

    def init(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.said = False

    def sample(self, i: int, sent: float) -> None:
        if self.recorder.take(sent):
            self.loop.call_later(0.2, self.stop)  # a work queue's last acks go out first

    @handler("bridged", channel="redis-bridge")
    def _ready(self, bridge: RedisBridge) -> None:
        if not self.said:
            self.said = True
            print("ready", flush=True)


class Sender(Component):
    channel = "sender"

    def init(self, pacer: Pacer) -> None:
        self.pacer = pacer
        self.began = False

    @handler("bridged", channel="redis-bridge")
    def _go(self, bridge: RedisBridge) -> None:
        if not self.began:
            self.began = True
            self.loop.call_soon(self._send)

    def _send(self) -> None:
        pacer = self.pacer
        if pacer.next >= pacer.n:
            if not pacer.finished():
                self.loop.call_later(pacer.poll, self._send)
            return
        count, wait = pacer.room()
        if not count:
            self.loop.call_later(wait, self._send)
            return
        fire = self.fire
        monotonic = time.monotonic
        for i in range(pacer.next, pacer.next + count):
            fire(sample(i, monotonic()), "bench")
        pacer.next += count
        self.loop.call_soon(self._send)


def run_netcomp(role: str, case: str, url: str, args: argparse.Namespace) -> None:
    shared = Shared(args.shm)
    app = Manager()
    consume = role == "receive"
    RedisBridge(url, [spec(case, consume, args.window)], events=[sample]).register(app)
    if consume:
        Receiver(Recorder(args.n, shared)).register(app)
    else:
        Sender(Pacer(args, shared)).register(app)
    app.run()


# ------------------------------------------------------------------ redis-py
async def redis_py(role: str, case: str, url: str, args: argparse.Namespace) -> None:
    import redis.asyncio as aioredis

    shared = Shared(args.shm)
    client = aioredis.from_url(url)
    if case == "redis-py-stream":
        await redis_py_stream(role, client, shared, args)
    elif role == "receive":
        recorder = Recorder(args.n, shared)
        pubsub = client.pubsub()
        await pubsub.subscribe("bench")
        print("ready", flush=True)
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            i, sent = json.loads(message["data"])
            if recorder.take(sent):
                break
        await pubsub.aclose()
    else:
        pacer = Pacer(args, shared)
        pipelines = Pipelines(client, pacer, args.pipelines)
        dumps = json.dumps
        monotonic = time.monotonic
        while pacer.next < pacer.n:
            count, wait = pacer.room()
            if not count:
                await asyncio.sleep(wait)
                continue
            if case == "redis-py-pipeline":
                await pipelines.send(count, lambda pipe, data: pipe.publish("bench", data))
                continue
            for i in range(pacer.next, pacer.next + count):
                await client.publish("bench", dumps([i, monotonic()]))
            pacer.next += count
        await pipelines.drain()
        while not pacer.finished():
            await asyncio.sleep(args.poll)
    await client.aclose()


class Pipelines:
    """A redis-py sender's chunks: each one pipeline; at most ``--pipelines`` of them in
    flight (each on a connection of its own from redis-py's pool), the next chunk sent
    while earlier ones wait for their replies."""

    def __init__(self, client: Any, pacer: Pacer, most: int) -> None:
        self.client = client
        self.pacer = pacer
        self.most = most
        self.flying: set[asyncio.Task[Any]] = set()

    async def send(self, count: int, add: Any) -> None:
        """Send the next ``count`` messages as one pipeline (``add(pipe, data)`` each)."""
        while len(self.flying) >= self.most:
            await asyncio.wait(self.flying, return_when=asyncio.FIRST_COMPLETED)
        pacer = self.pacer
        pipe = self.client.pipeline(transaction=False)
        dumps = json.dumps
        monotonic = time.monotonic
        for i in range(pacer.next, pacer.next + count):
            add(pipe, dumps([i, monotonic()]))
        pacer.next += count
        if self.most == 1:
            await pipe.execute()
            return
        task = asyncio.create_task(pipe.execute())
        self.flying.add(task)
        task.add_done_callback(self.flying.discard)
        await asyncio.sleep(0)  # the task writes its pipeline now

    async def drain(self) -> None:
        """Wait for every pipeline's replies."""
        await asyncio.gather(*self.flying)


async def redis_py_stream(
    role: str, client: Any, shared: Shared, args: argparse.Namespace
) -> None:
    """The work queue's job with redis-py: a stream and a consumer group."""
    key, group = "bench-stream", "workers"
    if role == "receive":
        recorder = Recorder(args.n, shared)
        await client.delete(key)  # a fresh stream and group in every round
        await client.xgroup_create(key, group, id="0", mkstream=True)
        print("ready", flush=True)
        acks: set[asyncio.Task[Any]] = set()

        async def ack(ids: list[bytes]) -> None:
            async with client.pipeline(transaction=False) as pipe:
                pipe.xack(key, group, *ids)
                pipe.xdel(key, *ids)
                await pipe.execute()

        done = False
        while not done:
            reply = await client.xreadgroup(
                group, "reader", {key: ">"}, count=args.window, block=5000
            )
            ids = []
            for _stream, entries in reply or ():
                for entry_id, fields in entries:
                    ids.append(entry_id)
                    _i, sent = json.loads(fields[b"d"])
                    if recorder.take(sent):
                        done = True
            if ids:
                task = asyncio.create_task(ack(ids))
                acks.add(task)
                task.add_done_callback(acks.discard)
        await asyncio.gather(*acks)
    else:
        pacer = Pacer(args, shared)
        pipelines = Pipelines(client, pacer, args.pipelines)
        while pacer.next < pacer.n:
            count, wait = pacer.room()
            if not count:
                await asyncio.sleep(wait)
                continue
            await pipelines.send(count, lambda pipe, data: pipe.xadd(key, {"d": data}))
        await pipelines.drain()
        while not pacer.finished():
            await asyncio.sleep(args.poll)


# ------------------------------------------------------------------ circuits
class CircuitsSample(CircuitsEvent):  # type: ignore[misc]
    """sample(i, sent) for circuits: at module level, as its Bridge pickles events by
    reference (a class it cannot pickle is dropped without a word: circuits' Bridge
    swallows the error)."""

    name = "sample"


def run_circuits(args: argparse.Namespace) -> None:
    """The parent sends, a child made by ``start(process=True, link=parent)`` receives."""
    reply = args.case == "circuits-bridge"
    from circuits import Component as CircuitsComponent
    from circuits import handler as circuits_handler
    from circuits import ipc

    class CircuitsReceiver(CircuitsComponent):  # type: ignore[misc]
        channel = "bench"

        def init(self, n: int, path: str) -> None:
            self.n = n
            self.path = path

        def started(self, manager: Any) -> None:  # in the child
            self.shared = Shared(self.path)
            self.recorder = Recorder(self.n, self.shared)
            self.shared.set_ready()

        def sample(self, i: int, sent: float) -> Any:
            if self.recorder.take(sent):
                self.stop()
            # circuits' ipc handler in the sender waits for each event's value: a value
            # sent back ends that wait (None would leave one waiting handler per message).
            return True if reply else None

    class CircuitsSender(CircuitsComponent):  # type: ignore[misc]
        channel = "sender"

        def init(self, pacer: Pacer) -> None:
            self.pacer = pacer
            self.bridge: Any = None
            self.done = False

        def started(self, manager: Any) -> None:
            # From the running loop: the parent's end of the pipe then finds its poller.
            receiver = CircuitsReceiver(self.pacer.n, args.shm)
            _process, self.bridge = receiver.start(process=True, link=self)

        @circuits_handler("generate_events")
        def _send(self, event: Any) -> None:
            pacer = self.pacer
            if self.done:
                return
            if self.bridge is None or not pacer.shared.ready:
                event.reduce_time_left(pacer.poll)
                return
            if pacer.next >= pacer.n:
                if pacer.finished():
                    self.done = True
                    self.stop()
                else:
                    event.reduce_time_left(pacer.poll)
                return
            count, wait = pacer.room()
            if not count:
                event.reduce_time_left(wait)
                return
            fire = self.fire
            channel = self.bridge.channel
            monotonic = time.monotonic
            for i in range(pacer.next, pacer.next + count):
                fire(ipc(CircuitsSample(i, monotonic()), "bench"), channel)
            pacer.next += count
            event.reduce_time_left(0)

    shared = Shared(args.shm)
    CircuitsSender(Pacer(args, shared)).run()


# ------------------------------------------------------------------ orchestration
class Lines:
    """A child's stdout read line by line with a timeout (os.read: no buffered line hides
    from select)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.fd = proc.stdout.fileno()
        self.buffer = b""

    def next(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError(f"no output within {timeout} s from {self.proc.args!r}")
            data = os.read(self.fd, 65536)
            if not data:
                raise RuntimeError(f"{self.proc.args!r} ended without a result")
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode().strip()

    def result(self, timeout: float) -> dict[str, Any]:
        """The next JSON line (other lines are skipped)."""
        while True:
            line = self.next(timeout)
            if line.startswith("{"):
                result: dict[str, Any] = json.loads(line)
                return result


def start_redis(folder: str) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = shutil.which("redis-server") or "redis-server"
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", folder, "--logfile", ""],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    lines = Lines(proc)
    deadline = time.monotonic() + 10
    while "Ready to accept" not in lines.next(deadline - time.monotonic()):
        pass
    return proc, port


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a process used so far, from /proc."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def spawn(command: list[str]) -> subprocess.Popen[bytes]:
    # A session of its own: killing it also ends what it started (circuits' child).
    return subprocess.Popen(command, stdout=subprocess.PIPE, start_new_session=True)


def end(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


def one_case(case: str, url: str, redis_pid: int, folder: str, args: argparse.Namespace) -> Any:
    shm = os.path.join(folder, f"window-{case}")
    with open(shm, "wb") as file:
        file.write(bytes(mmap.PAGESIZE))
    me = [sys.executable, __file__, "--case", case, "--url", url, "--shm", shm]
    me += ["--n", str(args.n), "--window", str(args.window), "--chunk", str(args.chunk)]
    me += ["--poll", str(args.poll), "--rate", str(args.rate), "--pipelines", str(args.pipelines)]
    if args.gc_freeze:
        me.append("--gc-freeze")
    receiver = sender = None
    try:
        redis_before = cpu_of(redis_pid)
        if case.startswith("circuits"):
            sender = receiver = spawn([*me, "--role", "circuits"])
            out = Lines(sender)
            results = [out.result(args.timeout), out.result(args.timeout)]
            got = {result["role"]: result for result in results}
            received, sent = got["receive"], got["send"]
        else:
            receiver = spawn([*me, "--role", "receive"])
            received_lines = Lines(receiver)
            assert received_lines.next(30) == "ready"
            redis_before = cpu_of(redis_pid)
            sender = spawn([*me, "--role", "send"])
            received = received_lines.result(args.timeout)
            sent = Lines(sender).result(30)
        redis_cpu = cpu_of(redis_pid) - redis_before
        return {**received, "send_cpu": sent["cpu"], "redis_cpu": redis_cpu}
    finally:
        end(sender)
        if receiver is not sender:
            end(receiver)
        os.unlink(shm)


def row(case: str, result: dict[str, Any], n: int) -> str:
    seconds = result["seconds"]
    redis = case.startswith(("netcomp", "redis"))
    per = [f"{result[k] / n * 1e6:>5.1f}" for k in ("send_cpu", "cpu", "redis_cpu")]
    share = [f"{result[k] / seconds * 100:>4.0f}%" for k in ("send_cpu", "cpu", "redis_cpu")]
    if not redis:
        per[2], share[2] = f"{'-':>5}", f"{'-':>5}"
    return (
        f"{case:<18} {n / seconds:>9,.0f} {result['p50_ms']:>7.2f} {result['p99_ms']:>7.2f}"
        f"   {' '.join(per)}          {' '.join(share)}"
    )


HEADER = (
    f"{'case':<18} {'msg/s':>9} {'p50 ms':>7} {'p99 ms':>7}"
    f"   {'CPU us/msg: send recv redis':<28}  {'CPU share: send recv redis'}"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--window", type=int, default=1000, help="messages in flight at most")
    parser.add_argument("--chunk", type=int, default=100, help="messages per send turn")
    parser.add_argument("--poll", type=float, default=0.001, help="seconds, full window")
    parser.add_argument("--rate", type=float, default=0, help="offered msg/s (0: no limit)")
    parser.add_argument(
        "--pipelines", type=int, default=1, help="redis-py: pipelines in flight at most"
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--gc-freeze", action="store_true", help="gc.freeze() in every process before it runs"
    )
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--role", choices=["send", "receive", "circuits"])
    parser.add_argument("--case")
    parser.add_argument("--url")
    parser.add_argument("--shm")
    args = parser.parse_args()
    if args.chunk > args.window:
        parser.error("--chunk must not exceed --window")
    if args.gc_freeze:
        gc.freeze()  # what start-up made is never scanned again (every contender alike)
    if args.role == "circuits":
        run_circuits(args)
        return 0
    if args.role:
        if args.case.startswith("netcomp"):
            run_netcomp(args.role, args.case, args.url, args)
        else:
            asyncio.run(redis_py(args.role, args.case, args.url, args))
        return 0
    cases = args.cases.split(",")
    best: dict[str, dict[str, Any]] = {}
    every: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        proc, port = start_redis(folder)
        try:
            version = (
                subprocess.run(
                    ["redis-server", "--version"], capture_output=True, text=True, check=True
                )
                .stdout.split()[2]
                .removeprefix("v=")
            )
            print(
                f"redis-server {version}, Python {sys.version.split()[0]}, "
                f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; n={args.n}, "
                f"window={args.window}, chunk={args.chunk}, rate={args.rate or 'unlimited'}, "
                f"redis-py pipelines={args.pipelines}, "
                f"rounds={args.rounds}{', gc frozen' if args.gc_freeze else ''}"
            )
            print(HEADER)
            url = f"redis://127.0.0.1:{port}/0"
            for round_ in range(args.rounds):
                turn = round_ % len(cases)  # each round starts with another case
                for case in cases[turn:] + cases[:turn]:
                    result = one_case(case, url, proc.pid, folder, args)
                    print(f"{row(case, result, args.n)}   (round {round_ + 1})", flush=True)
                    if case not in best or result["seconds"] < best[case]["seconds"]:
                        best[case] = result
                    every.setdefault(case, []).append(result)
        finally:
            proc.kill()
            proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()
    if args.rounds > 1:
        print(f"\nbest of {args.rounds} (the round with the highest rate), load now "
              f"{os.getloadavg()[0]:.2f}:")  # fmt: skip
        print(HEADER)
        for case in cases:
            print(row(case, best[case], args.n))
        print(f"\nmedian of {args.rounds} rounds (each column on its own; at an offered "
              "--rate, where every round has the same rate, read this one):")  # fmt: skip
        print(HEADER)
        for case in cases:
            rounds = every[case]
            middle = {
                key: statistics.median(r[key] for r in rounds)
                for key, value in rounds[0].items()
                if isinstance(value, (int, float))
            }
            print(row(case, middle, args.n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
