"""Echo benchmark: netcomp's net layer against circuits, asyncio and uvloop, in one run.

Usage::

    python benchmarks/echo.py                       # full: 5 s per run, 10,000 idle conns
    python benchmarks/echo.py --quick               # 1 s per run, 1,000 idle conns
    python benchmarks/echo.py --servers netcomp,asyncio --conns 1,50,500 --seconds 5
    python benchmarks/echo.py --profile /tmp/echo.prof   # netcomp server under cProfile
    python benchmarks/echo.py --gens fast --servers netcomp,asyncio --conns 50,500 --idle 0

What runs (every process is a fresh ``python benchmarks/echo.py --serve/--load/--idle-port``):

* One echo server per measurement, in its own process pinned to CPU 0, on 127.0.0.1 port 0
  (it prints ``PORT <n>``): ``netcomp`` (a component whose ``read(sock, data)`` returns the
  data, on a ``TCPServer``), ``circuits`` (the same idiom on ``circuits.net.sockets``),
  ``asyncio`` (a stdlib ``asyncio.Protocol``), ``uvloop`` (the same Protocol on uvloop).
* Two load generators, each a regime of its own (``--gens fast,epoll``), in their own process
  pinned to CPU 1, the same for every server. N connections each do 64-byte round trips
  (send 64 bytes, wait until all 64 are back, repeat); after a short warm-up the generator
  counts the round trips completed in S seconds and the client-observed latency of each
  (p50/p99), and samples the CPU time of the server, of itself and of the rest of the
  system. ``fast``: asyncio Protocols on uvloop (C event loop), which keeps a Python server
  saturated with many ready sockets per wake-up, as a loaded server sees. ``epoll``: plain
  Python on one ``epoll``, which finds one or two ready sockets per wake-up and so favours a
  loop with a cheap wake-up. A run whose generator used more than ``GEN_LIMIT`` of its core
  is flagged GENERATOR-BOUND. Server CPU per round trip (server CPU seconds / round trips)
  is printed too: it holds up when other processes share the machine.
* Idle memory: the generator opens ``--idle`` connections to a fresh server and reads the
  server's ``VmRSS`` (``/proc/PID/status``) before, once every connection is accepted (the
  server's open descriptor count says so), and after one 64-byte echo on each connection.

Sockets are closed with ``SO_LINGER`` 0 (a reset), so repeated runs leave no TIME_WAIT.
Every child is killed in a ``finally``; every wait has a deadline. Goals: netcomp at least
1.0x asyncio at 50 and 500 connections (issue 18; issue 3 asked 0.8x); at most 4 KiB per
idle connection (issue 3).
circuits and uvloop come from the ``bench`` extra (``pip install -e '.[bench]'``). Linux only
(``epoll``, ``/proc``, ``sched_setaffinity``). Never run in CI.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import errno
import json
import os
import platform
import resource
import select
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

SERVERS = ("netcomp", "circuits", "asyncio", "uvloop")
PAYLOAD = b"x" * 64
SIZE = len(PAYLOAD)
HOST = "127.0.0.1"
BACKLOG = 1024
#: Goals: issue 18 (netcomp at least 1.0x asyncio with either generator), issue 3 (idle).
GOAL_VS_ASYNCIO = 1.0
GOAL_IDLE_BYTES = 4096
#: Load generators: ``fast`` (asyncio Protocols on uvloop: many ready sockets per server
#: wake-up, as a loaded server sees) and ``epoll`` (plain Python on epoll: few ready sockets
#: per wake-up, which favours a loop with a cheap wake-up).
GENERATORS = ("fast", "epoll")
#: A run whose generator used more than this share of its core is flagged: the generator,
#: not the server, may have been the limit.
GEN_LIMIT = 0.90
#: Descriptors a process needs beyond its connections (stdio, epoll, listener, imports).
FD_HEADROOM = 100
CONNECT_BATCH = 200
ECHO_GROUP = 100
SERVER_START_TIMEOUT = 20.0
_LINGER_RESET = struct.pack("ii", 1, 0)


# ----------------------------------------------------------------- process helpers
def pin(cpu: int) -> None:
    """Run this process on ``cpu`` only."""
    os.sched_setaffinity(0, {cpu})


def raise_nofile(wanted: int | None = None) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit (or ``wanted``); return (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted or 0, 1 << 16)
    if wanted is not None and hard == resource.RLIM_INFINITY:
        target = max(soft, wanted)
    if target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def cpu_pair() -> tuple[int, int]:
    """(server CPU, generator CPU): CPU 0 and CPU 1 when this process may use both."""
    cpus = sorted(os.sched_getaffinity(0))
    if 0 in cpus and 1 in cpus:
        return 0, 1
    return cpus[0], cpus[1] if len(cpus) > 1 else cpus[0]


def rss_bytes(pid: int) -> int:
    """The process's resident set size (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def busy_cores_ticks() -> tuple[int, int]:
    """(busy ticks, all ticks) summed over every CPU, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------ servers
def serve_netcomp(profile: str | None) -> None:
    from netcomp import Component, Manager
    from netcomp.net import TCPServer

    class Echo(Component):
        channel = "server"

        def read(self, sock: socket.socket, data: bytes) -> bytes:
            return data

    app = Manager()
    server = TCPServer((HOST, 0), backlog=BACKLOG)
    app += server
    app += Echo()
    print(f"PORT {server.port}", flush=True)
    if profile is None:
        app.run()  # SIGTERM stops it
        return
    import cProfile

    prof = cProfile.Profile()
    prof.enable()
    try:
        app.run()
    finally:
        prof.disable()
        prof.dump_stats(profile)


def serve_circuits() -> None:
    from circuits import Component
    from circuits.net.sockets import TCPServer

    class Echo(Component):
        channel = "server"

        def read(self, sock: Any, data: bytes) -> bytes:
            return data

    server = TCPServer((HOST, 0), backlog=BACKLOG)
    app = Echo()
    server.register(app)
    print(f"PORT {server.port}", flush=True)
    app.run()


def serve_asyncio(use_uvloop: bool) -> None:
    import asyncio

    class EchoProtocol(asyncio.Protocol):
        transport: Any = None

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

    if use_uvloop:
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(EchoProtocol, HOST, 0, backlog=BACKLOG))
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    loop.run_forever()  # ends by SIGTERM (default action)


def serve(kind: str, cpu: int, profile: str | None) -> None:
    pin(cpu)
    raise_nofile()
    if kind == "netcomp":
        serve_netcomp(profile)
    elif kind == "circuits":
        serve_circuits()
    elif kind in ("asyncio", "uvloop"):
        serve_asyncio(kind == "uvloop")
    else:
        raise SystemExit(f"unknown server {kind!r}")


# -------------------------------------------------------------------- generator
def close_reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    sock.close()


def open_connections(
    port: int, n: int, deadline: float, server_pid: int | None = None, base_fds: int = 0
) -> list[socket.socket]:
    """``n`` connected non-blocking TCP_NODELAY sockets, opened in batches.

    With ``server_pid``, each batch also waits until the server has accepted all but one
    backlog's worth, so the listen queue never overflows (dropped SYNs cost 1 s retries).
    """
    socks: list[socket.socket] = []
    ep = select.epoll()
    try:
        while len(socks) < n:
            pending: dict[int, socket.socket] = {}
            for _ in range(min(CONNECT_BATCH, n - len(socks))):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                code = sock.connect_ex((HOST, port))
                if code not in (0, errno.EINPROGRESS):
                    sock.close()
                    raise OSError(code, f"connect: {os.strerror(code)}")
                pending[sock.fileno()] = sock
                ep.register(sock.fileno(), select.EPOLLOUT)
            while pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    for sock in pending.values():
                        sock.close()
                    raise TimeoutError(f"connecting: {len(socks)} of {n} connected")
                for fd, _mask in ep.poll(min(left, 0.5)):
                    sock = pending.pop(fd)
                    ep.unregister(fd)
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if code:
                        sock.close()
                        raise OSError(code, f"connect: {os.strerror(code)}")
                    socks.append(sock)
            if server_pid is not None:
                wait_fds(server_pid, base_fds + len(socks) - BACKLOG // 2, deadline)
    except BaseException:
        for sock in socks:
            close_reset(sock)
        raise
    finally:
        ep.close()
    return socks


def wait_fds(pid: int, at_least: int, deadline: float, at_most: bool = False) -> int:
    """Wait until ``pid`` has at least (``at_most``: at most) ``at_least`` open fds."""
    while True:
        count = open_fds(pid)
        if (count <= at_least) if at_most else (count >= at_least):
            return count
        if time.monotonic() >= deadline:
            raise TimeoutError(f"server pid {pid} has {count} fds, waiting for {at_least}")
        time.sleep(0.01)


def echo_once(socks: list[socket.socket], deadline: float) -> None:
    """One 64-byte round trip on every connection, all at once."""
    ep = select.epoll()
    try:
        by_fd = {s.fileno(): s for s in socks}
        got = dict.fromkeys(by_fd, 0)
        for fd, sock in by_fd.items():
            ep.register(fd, select.EPOLLIN)
            sock.send(PAYLOAD)
        while got:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"echo: {len(got)} of {len(socks)} connections unanswered")
            for fd, _mask in ep.poll(min(left, 0.5)):
                data = by_fd[fd].recv(65536)
                if not data:
                    raise ConnectionError("server closed a connection during the echo")
                got[fd] += len(data)
                if got[fd] >= SIZE:
                    del got[fd]
                    ep.unregister(fd)
    finally:
        ep.close()


def drive(
    socks: list[socket.socket],
    seconds: float,
    warmup: float,
    server_pid: int | None,
    request: bytes = PAYLOAD,
    reply: int = SIZE,
) -> dict[str, Any]:
    """The timed round-trip loop: every connection keeps one ``request`` in flight and
    waits for ``reply`` bytes back (64 bytes out, 64 back by default; benchmarks/websocket.py
    sends a frame and counts the echoed frame's bytes)."""
    ep = select.epoll(len(socks) + 8)
    size = max(s.fileno() for s in socks) + 1
    # Per-descriptor state in flat lists, bound methods looked up once, and one receive
    # buffer: the generator must stay well ahead of the servers it measures.
    recv_into: list[Any] = [None] * size
    send: list[Any] = [None] * size
    got = [0] * size
    sent_at = [0.0] * size
    for sock in socks:
        recv_into[sock.fileno()] = sock.recv_into
        send[sock.fileno()] = sock.send
        ep.register(sock.fileno(), select.EPOLLIN)
    buf = bytearray(65536)
    clock = time.perf_counter
    poll = ep.poll
    payload = request
    errors = 0
    count = 0
    lat: list[float] = []
    now = clock()
    for sock in socks:
        sent_at[sock.fileno()] = now
        sock.send(payload)
    measure_from = now + warmup
    end = measure_from + seconds
    measuring = False
    start = now
    cpu0 = os.times()
    srv0 = cpu_seconds(server_pid) if server_pid else 0.0
    sys0 = busy_cores_ticks()
    try:
        while True:
            events = poll(0.1)
            now = clock()
            if not measuring and now >= measure_from:
                measuring = True
                count = 0
                lat = []
                start = now
                cpu0 = os.times()
                srv0 = cpu_seconds(server_pid) if server_pid else 0.0
                sys0 = busy_cores_ticks()
            if now >= end:
                break
            append = lat.append
            for fd, _mask in events:
                try:
                    n = recv_into[fd](buf)
                except BlockingIOError:
                    continue
                except OSError:
                    n = 0
                if not n:
                    errors += 1
                    ep.unregister(fd)
                    continue
                n += got[fd]
                if n < reply:
                    got[fd] = n
                    continue
                got[fd] = n - reply
                count += 1
                append(now - sent_at[fd])
                sent_at[fd] = now
                try:
                    send[fd](payload)
                except OSError:
                    errors += 1
                    ep.unregister(fd)
    finally:
        ep.close()
    elapsed = now - start
    cpu1 = os.times()
    srv1 = cpu_seconds(server_pid) if server_pid else 0.0
    sys1 = busy_cores_ticks()
    return generator_result(
        lat, len(socks), count, errors, elapsed, (cpu0, cpu1), (srv0, srv1), (sys0, sys1)
    )


def generator_result(
    latencies: list[float],
    conns: int,
    count: int,
    errors: int,
    elapsed: float,
    gen_times: tuple[Any, Any],
    server_seconds: tuple[float, float],
    machine_ticks: tuple[Any, Any],
) -> dict[str, Any]:
    """One run's row, the same for both generators: rate, latency percentiles, and the CPU
    of the generator (``os.times()`` before/after), the server (its CPU seconds
    before/after; 0 when unknown) and the rest of the machine (busy/all ticks)."""
    samples = sorted(latencies)
    cpu0, cpu1 = gen_times
    gen_cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / elapsed
    server_cpu = (server_seconds[1] - server_seconds[0]) / elapsed
    sys0, sys1 = machine_ticks
    all_ticks = sys1[1] - sys0[1]
    busy = (sys1[0] - sys0[0]) / all_ticks * (os.cpu_count() or 1) if all_ticks else 0.0

    def pct(p: float) -> float | None:
        return samples[min(len(samples) - 1, int(p * len(samples)))] * 1e3 if samples else None

    return {
        "conns": conns,
        "round_trips": count,
        "seconds": elapsed,
        "rate": count / elapsed if elapsed > 0 else 0.0,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "errors": errors,
        "gen_cpu": gen_cpu,
        "server_cpu": server_cpu,
        # Busy CPUs (in cores) not explained by the server and the generator: other
        # processes and interrupt work. Much above ~0.1 means the run was disturbed.
        "others_cpu": max(0.0, busy - gen_cpu - server_cpu),
    }


def drive_fast(
    socks: list[socket.socket], seconds: float, warmup: float, server_pid: int | None
) -> dict[str, Any]:
    """The same closed loop as :func:`drive` on uvloop: one ``asyncio.Protocol`` per
    connection, whose ``data_received`` counts the echo and sends the next 64 bytes.

    uvloop's C event loop reads every ready socket of a wake-up with little Python per
    read, so one process drives a Python server at full speed with CPU to spare (its CPU
    share is reported: above ``GEN_LIMIT`` the generator, not the server, is the limit).
    """
    import asyncio

    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    clock = time.perf_counter
    payload = PAYLOAD
    state = {"count": 0, "errors": 0}
    lat: list[float] = []

    class Client(asyncio.Protocol):
        transport: Any = None
        got = 0
        sent_at = 0.0

        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.write = transport.write

        def data_received(self, data: bytes) -> None:
            n = self.got + len(data)
            if n < SIZE:
                self.got = n
                return
            self.got = n - SIZE
            now = clock()
            state["count"] += 1
            lat.append(now - self.sent_at)
            self.sent_at = now
            self.write(payload)

        def connection_lost(self, exc: BaseException | None) -> None:
            state["errors"] += 1

    async def run() -> dict[str, Any]:
        clients: list[Client] = []
        for sock in socks:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            _transport, proto = await loop.create_connection(Client, sock=sock)
            clients.append(proto)
        now = clock()
        for c in clients:
            c.sent_at = now
            c.write(payload)
        await asyncio.sleep(warmup)
        state["count"] = 0
        lat.clear()
        start = clock()
        cpu0 = os.times()
        srv0 = cpu_seconds(server_pid) if server_pid else 0.0
        sys0 = busy_cores_ticks()
        await asyncio.sleep(seconds)
        end = clock()
        count = state["count"]
        cpu1 = os.times()
        srv1 = cpu_seconds(server_pid) if server_pid else 0.0
        sys1 = busy_cores_ticks()
        elapsed = end - start
        for c in clients:
            c.connection_lost = lambda exc: None  # type: ignore[method-assign]
            c.transport.abort()
        return generator_result(
            lat, len(socks), count, state["errors"], elapsed,
            (cpu0, cpu1), (srv0, srv1), (sys0, sys1),
        )  # fmt: skip

    try:
        return loop.run_until_complete(run())
    finally:
        loop.close()


def load(
    port: int,
    conns: int,
    seconds: float,
    warmup: float,
    server_pid: int | None,
    gen: str = "fast",
) -> None:
    soft, hard = raise_nofile(conns + FD_HEADROOM)
    if conns + FD_HEADROOM > soft:
        raise SystemExit(f"RLIMIT_NOFILE {soft}/{hard} is too low for {conns} connections")
    socks = open_connections(port, conns, time.monotonic() + 60.0)
    try:
        if gen == "fast":
            result = drive_fast(socks, seconds, warmup, server_pid)
        else:
            result = drive(socks, seconds, warmup, server_pid)
    finally:
        for sock in socks:
            close_reset(sock)
    print(json.dumps(result), flush=True)


def settle_rss(pid: int, pause: float = 0.3) -> int:
    time.sleep(pause)
    return rss_bytes(pid)


def idle(port: int, conns: int, server_pid: int) -> None:
    """RSS of the server before and after ``conns`` idle connections (and one echo each)."""
    soft, hard = raise_nofile(conns + FD_HEADROOM)
    usable = min(conns, soft - FD_HEADROOM)
    deadline = time.monotonic() + 120.0
    base_fds = open_fds(server_pid)
    # Warm-up: the server's first connections pay for imports, caches and free lists.
    warm = open_connections(port, min(200, usable), deadline, server_pid, base_fds)
    echo_once(warm, deadline)
    for sock in warm:
        close_reset(sock)
    wait_fds(server_pid, base_fds, deadline, at_most=True)
    rss0 = settle_rss(server_pid)
    base_fds = open_fds(server_pid)  # a descriptor held at start-up may be gone by now
    socks = open_connections(port, usable, deadline, server_pid, base_fds)
    try:
        wait_fds(server_pid, base_fds + usable, deadline)
        rss1 = settle_rss(server_pid)
        # In groups, as idle connections would talk: what stays is per-connection state,
        # not the high-water mark of 10,000 reads queued in one burst.
        for i in range(0, usable, ECHO_GROUP):
            echo_once(socks[i : i + ECHO_GROUP], deadline)
        rss2 = settle_rss(server_pid)
    finally:
        for sock in socks:
            close_reset(sock)
    result = {
        "requested": conns,
        "conns": usable,
        "nofile": [soft, hard],
        "rss_before": rss0,
        "rss_connected": rss1,
        "rss_echoed": rss2,
        "per_conn": (rss1 - rss0) / usable,
        "per_conn_echoed": (rss2 - rss0) / usable,
    }
    print(json.dumps(result), flush=True)


# ------------------------------------------------------------------ orchestrator
def child(*args: str) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), *args]


def stop_process(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def server_process(
    kind: str, cpu: int, profile: str | None = None, command: list[str] | None = None
) -> Iterator[tuple[subprocess.Popen[Any], int]]:
    cmd = command or child("--serve", kind, "--cpu", str(cpu))
    if profile:
        cmd += ["--profile", profile]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], SERVER_START_TIMEOUT)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("PORT "):
            raise RuntimeError(f"{kind} server did not start (got {line!r})")
        yield proc, int(line.split()[1])
    finally:
        stop_process(proc)


def run_child(cmd: list[str], cpu: int, timeout: float) -> dict[str, Any]:
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.sched_setaffinity(0, {cpu})
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        stop_process(proc, grace=2.0)
    lines = out.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{cmd[2:]} failed with exit code {proc.returncode}")
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def measure(kind: str, conns: int, args: argparse.Namespace, gen: str = "fast") -> dict[str, Any]:
    server_cpu, gen_cpu = cpu_pair()
    with server_process(kind, server_cpu) as (proc, port):
        cmd = child(
            "--load", str(port), "--conns", str(conns), "--seconds", str(args.seconds),
            "--warmup", str(args.warmup), "--server-pid", str(proc.pid), "--gen", gen,
        )  # fmt: skip
        return run_child(cmd, gen_cpu, args.seconds + args.warmup + 90.0)


def measure_idle(kind: str, conns: int) -> dict[str, Any]:
    server_cpu, gen_cpu = cpu_pair()
    with server_process(kind, server_cpu) as (proc, port):
        cmd = child("--idle-port", str(port), "--conns", str(conns), "--server-pid", str(proc.pid))
        return run_child(cmd, gen_cpu, 240.0)


def load_average() -> list[str]:
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def fmt_rate(r: dict[str, Any] | None) -> str:
    if r is None:
        return "failed"
    p99 = f"{r['p99_ms']:.2f}" if r["p99_ms"] is not None else "-"
    return f"{r['rate']:>9,.0f} ({p99} ms)"


def report(
    results: dict[tuple[str, int], dict[str, Any] | None],
    idles: dict[str, dict[str, Any] | None],
    servers: list[str],
    conns: list[int],
    repeat: int = 1,
    gen: str | None = None,
) -> None:
    width = 26
    if gen is not None:
        what = "uvloop Protocols" if gen == "fast" else "Python epoll, few ready sockets a wake-up"
        print(f"\n=== generator: {gen} ({what}) ===")
    if servers:
        report_rates(results, servers, conns, repeat, width)
    report_idle(idles)


def cpu_per_trip(r: dict[str, Any]) -> str:
    """Server CPU microseconds per round trip (robust when other processes share the CPU)."""
    if not r["rate"]:
        return "- us/rt"
    return f"{r['server_cpu'] / r['rate'] * 1e6:.1f} us/rt"


def report_rates(
    results: dict[tuple[str, int], dict[str, Any] | None],
    servers: list[str],
    conns: list[int],
    repeat: int,
    width: int,
) -> None:
    print()
    best = f", best of {repeat}" if repeat > 1 else ""
    print(f"Round trips/s (client p99 latency), 64-byte echo{best}:")
    print(f"{'server':<10}" + "".join(f"{f'{n} conns':>{width}}" for n in conns))
    for kind in servers:
        row = "".join(f"{fmt_rate(results.get((kind, n))):>{width}}" for n in conns)
        print(f"{kind:<10}{row}")
    print()
    print("CPU use in the window, server / generator / rest of the system (1.00 = one core):")
    for kind in servers:
        cells = []
        for n in conns:
            r = results.get((kind, n))
            cells.append(
                f"{r['server_cpu']:.2f} / {r['gen_cpu']:.2f} / {r['others_cpu']:.2f}" if r else "-"
            )
        print(f"{kind:<10}" + "".join(f"{c:>{width}}" for c in cells))
    print()
    print("Server CPU per round trip (us; lower is better), and runs the generator limited:")
    for kind in servers:
        cells = []
        for n in conns:
            r = results.get((kind, n))
            mark = " GEN-BOUND" if r and r["gen_cpu"] > GEN_LIMIT else ""
            cells.append(f"{cpu_per_trip(r)}{mark}" if r else "-")
        print(f"{kind:<10}" + "".join(f"{c:>{width}}" for c in cells))
    print(
        f"(GEN-BOUND: generator CPU share above {GEN_LIMIT:.2f}: the generator may be the limit)"
    )
    print()
    for other, goal in (("asyncio", GOAL_VS_ASYNCIO), ("circuits", None)):
        if "netcomp" not in servers or other not in servers:
            continue
        cells = []
        for n in conns:
            a, b = results.get(("netcomp", n)), results.get((other, n))
            if not a or not b or not b["rate"]:
                cells.append("-")
                continue
            ratio = a["rate"] / b["rate"]
            mark = "" if goal is None else (" ok" if ratio >= goal else " MISS")
            cells.append(f"{ratio:.2f}x{mark}")
        goal_text = f" (goal >= {goal}x)" if goal else ""
        print(f"netcomp/{other}{goal_text}:")
        print(" " * 10 + "".join(f"{c:>{width}}" for c in cells))
    errors = sum(r["errors"] for r in results.values() if r)
    if errors:
        print(f"connection errors during the runs: {errors}")


def report_idle(idles: dict[str, dict[str, Any] | None]) -> None:
    for kind, r in idles.items():
        print()
        if r is None:
            print(f"idle connections ({kind}): failed")
            continue
        note = ""
        if r["conns"] < r["requested"]:
            note = f" (RLIMIT_NOFILE {r['nofile'][0]}/{r['nofile'][1]}: wanted {r['requested']})"
        mark = "ok" if r["per_conn_echoed"] <= GOAL_IDLE_BYTES else "MISS"
        goal = f"goal <= {GOAL_IDLE_BYTES} B: {mark}" if kind == "netcomp" else "reference"
        print(f"idle connections ({kind}): {r['conns']:,}{note}")
        print(
            f"  RSS {r['rss_before'] / 2**20:.1f} MiB -> {r['rss_connected'] / 2**20:.1f} MiB"
            f" connected -> {r['rss_echoed'] / 2**20:.1f} MiB after one echo each"
        )
        print(
            f"  per connection: {r['per_conn']:,.0f} B connected, "
            f"{r['per_conn_echoed']:,.0f} B after one echo ({goal})"
        )


def profile_run(path: str, conns: int, args: argparse.Namespace) -> None:
    import pstats

    server_cpu, gen_cpu = cpu_pair()
    with server_process("netcomp", server_cpu, profile=path) as (proc, port):
        cmd = child(
            "--load", str(port), "--conns", str(conns), "--seconds", str(args.seconds),
            "--warmup", str(args.warmup), "--server-pid", str(proc.pid), "--gen", args.gen,
        )  # fmt: skip
        result = run_child(cmd, gen_cpu, args.seconds + args.warmup + 90.0)
        proc.terminate()  # graceful: the server dumps its profile as run() returns
        proc.wait(30)
    print(f"netcomp under cProfile, {conns} conns: {fmt_rate(result)} round trips/s")
    print(f"round trips: {result['round_trips']:,}; profile written to {path}")
    stats = pstats.Stats(path)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(25)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1 s runs, 1,000 idle connections")
    p.add_argument("--servers", default=",".join(SERVERS))
    p.add_argument("--conns", default="1,50,500")
    p.add_argument("--seconds", type=float, default=None, help="timed seconds per run")
    p.add_argument("--warmup", type=float, default=None, help="untimed seconds first")
    p.add_argument("--repeat", type=int, default=1, help="runs per cell; the best is kept")
    p.add_argument("--idle", type=int, default=None, help="idle connections (0: skip)")
    p.add_argument("--idle-servers", default="netcomp,asyncio")
    p.add_argument("--profile", metavar="PATH", help="profile the netcomp server instead")
    p.add_argument(
        "--gens",
        default=",".join(GENERATORS),
        help="load generators, each a regime of its own: fast (uvloop Protocols), epoll",
    )
    p.add_argument("--gen", choices=GENERATORS, default="fast", help=argparse.SUPPRESS)
    # Internal: the child processes.
    p.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    p.add_argument("--cpu", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--load", type=int, metavar="PORT", help=argparse.SUPPRESS)
    p.add_argument("--server-pid", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--idle-port", dest="idle_port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.seconds is None:
        args.seconds = 1.0 if args.quick else 5.0
    if args.warmup is None:
        args.warmup = 0.2 if args.quick else 0.5
    if args.idle is None:
        args.idle = 1_000 if args.quick else 10_000
    conns = [int(c) for c in args.conns.split(",") if c]

    if args.serve:
        serve(args.serve, args.cpu, args.profile)
        return 0
    if args.load is not None:
        load(args.load, conns[0], args.seconds, args.warmup, args.server_pid, args.gen)
        return 0
    if args.idle_port is not None:
        idle(args.idle_port, conns[0], args.server_pid)
        return 0
    if args.profile:
        profile_run(args.profile, conns[0] if args.conns != "1,50,500" else 50, args)
        return 0

    servers = [s for s in args.servers.split(",") if s]
    unknown = set(servers) - set(SERVERS)
    if unknown:
        p.error(f"unknown servers {sorted(unknown)}; choose from {SERVERS}")
    gens = [g for g in args.gens.split(",") if g]
    if set(gens) - set(GENERATORS):
        p.error(f"unknown generators {sorted(set(gens) - set(GENERATORS))}; choose {GENERATORS}")
    server_cpu, gen_cpu = cpu_pair()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    print(
        f"echo benchmark {datetime.date.today()}: Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs (server on CPU {server_cpu}, generator on CPU {gen_cpu}), "
        f"RLIMIT_NOFILE {soft}/{hard}"
    )
    print(f"{args.seconds:g} s per run after {args.warmup:g} s warm-up; conns {conns}")
    if hard != resource.RLIM_INFINITY and hard < args.idle + FD_HEADROOM:
        print(f"note: hard RLIMIT_NOFILE {hard} < {args.idle + FD_HEADROOM}; fewer idle conns")
    print(f"load average at start: {' '.join(load_average())}")
    failed = 0
    by_gen: dict[str, dict[tuple[str, int], dict[str, Any] | None]] = {g: {} for g in gens}
    # Servers interleaved per connection count (and per repetition), so the runs compared
    # in one column are close in time.
    for rep in range(args.repeat):
        for n in conns:
            for gen in gens:
                results = by_gen[gen]
                for kind in servers:
                    try:
                        r = measure(kind, n, args, gen)
                    except Exception as err:
                        failed += 1
                        results.setdefault((kind, n), None)
                        print(f"  {gen:<5} {kind:<9} {n:>4} conns: FAILED: {err}", flush=True)
                        continue
                    best = results.get((kind, n))
                    if best is None or r["rate"] > best["rate"]:
                        results[kind, n] = r
                    flag = "  GENERATOR-BOUND" if r["gen_cpu"] > GEN_LIMIT else ""
                    print(
                        f"  [{rep + 1}/{args.repeat}] {gen:<5} {kind:<9} {n:>4} conns: "
                        f"{fmt_rate(r)}  cpu {r['server_cpu']:.2f}/{r['gen_cpu']:.2f}/"
                        f"{r['others_cpu']:.2f}  {cpu_per_trip(r)}{flag}",
                        flush=True,
                    )
    idles: dict[str, dict[str, Any] | None] = {}
    if args.idle > 0:
        for kind in [s for s in args.idle_servers.split(",") if s]:
            try:
                idles[kind] = measure_idle(kind, args.idle)
            except Exception as err:
                failed += 1
                idles[kind] = None
                print(f"  idle {kind}: FAILED: {err}", flush=True)
    for gen in gens:
        report(by_gen[gen], {}, servers, conns, args.repeat, gen)
    if idles:
        report({}, idles, [], [], args.repeat)
    print(f"\nload average at end: {' '.join(load_average())}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
