"""WebSocket echo benchmark: netcomp against the websockets library's server and aiohttp's.

Usage::

    python benchmarks/websocket.py                          # 5 s per run, best of 3
    python benchmarks/websocket.py --seconds 2 --repeat 1   # quick
    python benchmarks/websocket.py --servers netcomp --profile /tmp/ws.prof

What runs (every process is a fresh ``python benchmarks/websocket.py --serve/--load``):

* One echo server per measurement, in its own process pinned to CPU 0, on 127.0.0.1 port 0
  (it prints ``PORT <n>``): ``netcomp`` (a ``netcomp.web.Server`` with a
  ``WebSocketsDispatcher`` and a component whose ``read(sock, message)`` returns the
  message), ``websockets`` (the library's asyncio server, ``async for m in ws: await
  ws.send(m)``), ``aiohttp`` (a ``WebSocketResponse`` handler, ``send_str`` of each text
  message). Each with its defaults; no compression (the generator does not offer it).
* One load generator, its own process pinned to CPU 1, the same for every server: plain
  non-blocking sockets on one ``epoll``. It opens N connections, does each opening
  handshake (a fixed request, the 101 and its accept token checked), then every
  connection does round trips of one 64-byte text message: send one masked frame (made
  once by wsproto's client), wait for the 66 bytes of the unmasked echo, repeat. After a
  warm-up it counts the round trips completed in S seconds and the latency of each
  (p50/p99), and samples both processes' CPU time, so a saturated generator would show.

Sockets are closed with ``SO_LINGER`` 0. Every child is killed in a ``finally``; every
wait has a deadline. Goal (the WebSockets issue): netcomp ahead of both in messages/s at
50 connections. aiohttp comes from the ``bench`` extra, websockets from ``test``. Linux
only (``epoll``, ``/proc``, ``sched_setaffinity``). Never run in CI.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import platform
import socket
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echo import (  # the TCP echo benchmark's process helpers
    HOST,
    close_reset,
    cpu_pair,
    drive,
    load_average,
    open_connections,
    pin,
    raise_nofile,
    run_child,
    server_process,
)

SERVERS = ("netcomp", "websockets", "aiohttp")
MESSAGE = "x" * 64
KEY = base64.b64encode(b"netcomp-bench-16").decode()
HANDSHAKE = (
    f"GET / HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
).encode()
REPLY = 66  # an unmasked text frame of 64 bytes: 2 bytes of header, then the payload


# ------------------------------------------------------------------------ servers
def serve_netcomp(profile: str | None) -> None:
    from netcomp import Component, Manager
    from netcomp.web import Server, WebSocketsDispatcher

    class Echo(Component):
        channel = "ws"

        def read(self, sock: Any, message: str | bytes) -> str | bytes:
            return message

    app = Manager()
    server = Server((HOST, 0), backlog=1024)
    server.register(app)
    WebSocketsDispatcher("/").register(server)
    Echo().register(app)
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


def serve_websockets() -> None:
    import asyncio
    import logging

    # The generator ends its connections with a reset: not worth a traceback each.
    logging.getLogger("websockets").setLevel(logging.CRITICAL)

    from websockets.asyncio.server import serve

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        async with serve(echo, HOST, 0, compression=None) as server:
            print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
            await asyncio.Future()  # until SIGTERM

    asyncio.run(main())


def serve_aiohttp() -> None:
    import asyncio

    from aiohttp import WSMsgType, web

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str(message.data)
            elif message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data)
        return ws

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/", echo)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0, backlog=1024)
        await site.start()
        sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr]
        print(f"PORT {sockets[0].getsockname()[1]}", flush=True)
        await asyncio.Future()  # until SIGTERM

    asyncio.run(main())


def serve(kind: str, cpu: int, profile: str | None) -> None:
    pin(cpu)
    raise_nofile()
    if kind == "netcomp":
        serve_netcomp(profile)
    elif kind == "websockets":
        serve_websockets()
    elif kind == "aiohttp":
        serve_aiohttp()
    else:
        raise SystemExit(f"unknown server {kind!r}")


# -------------------------------------------------------------------- generator
def masked_frame() -> bytes:
    """One masked text frame of MESSAGE, made by wsproto's client (not by hand)."""
    from wsproto.connection import Connection, ConnectionType
    from wsproto.events import TextMessage

    frame = Connection(ConnectionType.CLIENT).send(TextMessage(data=MESSAGE))
    assert len(frame) == 2 + 4 + len(MESSAGE)
    return frame


def handshakes(socks: list[socket.socket], deadline: float) -> None:
    """The opening handshake on every connection (blocking, with a deadline)."""
    from wsproto.utilities import generate_accept_token

    accept = generate_accept_token(KEY.encode())
    for sock in socks:
        sock.setblocking(True)
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        sock.sendall(HANDSHAKE)
    for sock in socks:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("the server closed during the handshake")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101 ") or accept not in head:
            raise ConnectionError(f"bad handshake answer: {head[:200]!r}")
        if rest:
            raise ConnectionError(f"unexpected bytes after the 101: {rest[:50]!r}")
        sock.setblocking(False)


def load(port: int, conns: int, seconds: float, warmup: float, server_pid: int | None) -> None:
    raise_nofile(conns + 100)
    deadline = time.monotonic() + 60.0
    socks = open_connections(port, conns, deadline)
    try:
        handshakes(socks, deadline)
        result = drive(socks, seconds, warmup, server_pid, masked_frame(), REPLY)
    finally:
        for sock in socks:
            close_reset(sock)
    print(json.dumps(result), flush=True)


# ------------------------------------------------------------------ orchestrator
def child(*args: str) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), *args]


def measure(kind: str, conns: int, args: argparse.Namespace) -> dict[str, Any]:
    server_cpu, gen_cpu = cpu_pair()
    command = child("--serve", kind, "--cpu", str(server_cpu))
    profile = args.profile if kind == "netcomp" else None
    with server_process(kind, server_cpu, profile, command) as (proc, port):
        cmd = child(
            "--load", str(port), "--conns", str(conns), "--seconds", str(args.seconds),
            "--warmup", str(args.warmup), "--server-pid", str(proc.pid),
        )  # fmt: skip
        return run_child(cmd, gen_cpu, args.seconds + args.warmup + 90.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--conns", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--serve")
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--profile")
    parser.add_argument("--load", type=int)
    parser.add_argument("--server-pid", type=int)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.cpu, args.profile)
        return
    if args.load:
        load(args.load, args.conns, args.seconds, args.warmup, args.server_pid)
        return
    servers = [s for s in args.servers.split(",") if s]
    started = datetime.datetime.now().isoformat(timespec="seconds")
    print(f"{started}  {platform.python_version()}  load {' '.join(load_average())}")
    best: dict[str, dict[str, Any] | None] = dict.fromkeys(servers)
    for round_ in range(1, args.repeat + 1):
        for kind in servers:  # alternate the servers within each round
            try:
                result = measure(kind, args.conns, args)
            except Exception as err:  # one failing server must not hide the others
                print(f"[{round_}] {kind:<10} failed: {err}", flush=True)
                continue
            print(
                f"[{round_}] {kind:<10} {result['rate']:>9,.0f} msg/s  p50 "
                f"{result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms  errors "
                f"{result['errors']}  cpu srv {result['server_cpu']:.2f} gen "
                f"{result['gen_cpu']:.2f} rest {result['others_cpu']:.2f}",
                flush=True,
            )
            previous = best[kind]
            if previous is None or result["rate"] > previous["rate"]:
                best[kind] = result
    report(best, args)


def report(best: dict[str, dict[str, Any] | None], args: argparse.Namespace) -> None:
    print()
    print(
        f"WebSocket echo, 64-byte text messages, {args.conns} connections, "
        f"{args.seconds:g} s, best of {args.repeat}; server on CPU 0, generator on CPU 1"
    )
    print()
    print("| server | messages/s | p50 ms | p99 ms | errors | CPU srv/gen/rest |")
    print("|---|--:|--:|--:|--:|--:|")
    for kind, r in best.items():
        if r is None:
            print(f"| {kind} | failed | | | | |")
            continue
        print(
            f"| {kind} | {r['rate']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['errors']} | {r['server_cpu']:.2f}/{r['gen_cpu']:.2f}/{r['others_cpu']:.2f} |"
        )
    ours = best.get("netcomp")
    if ours is None:
        return
    print()
    for other in ("websockets", "aiohttp"):
        theirs = best.get(other)
        if theirs and theirs["rate"]:
            ratio = ours["rate"] / theirs["rate"]
            print(f"netcomp/{other}: {ratio:.2f}x ({'ahead' if ratio > 1 else 'BEHIND'})")


if __name__ == "__main__":
    main()
