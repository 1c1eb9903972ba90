"""HTTP benchmark: hello-world on netcomp.web, circuits.web, aiohttp, tornado and uvicorn.

Usage::

    python benchmarks/http/run.py                                # all servers, 50 conns, 5 s
    python benchmarks/http/run.py --servers netcomp,aiohttp --repeat 3 --json /tmp/http.json
    python benchmarks/http/run.py --duration 10 --connections 100
    python benchmarks/http/run.py --workers 2                    # worker processes, see below

For each server (``servers/<name>_app.py``, a fresh process pinned to CPU 0 with ``taskset``,
port 0, it prints ``listening PORT``), after one successful request as a readiness check,
``wrk -t1 -cN -dSs --latency`` runs pinned to CPU 1 twice: with keep-alive, then with
``-H "Connection: close"`` (one connection per request). The requests per second, the p99
latency, socket errors and non-2xx/3xx responses are parsed from wrk's output, and the CPU
time the server, wrk and the rest of the system used in the window is read from ``/proc``
and ``getrusage`` (1.00 = one core: a server at 1.00 was the bottleneck; a "rest" well above
0.1 means another process disturbed the run). The server is then stopped (SIGINT, then
SIGKILL) before the next one starts. ``--repeat R`` interleaves the servers R times and
keeps each cell's best run (most requests/s). ``--profile PATH`` runs the netcomp server
under cProfile and prints its top functions.

Prints one table with every server side by side, the ratios netcomp/circuits and
netcomp/aiohttp, and the goals of issue 5 (netcomp >= 5x circuits.web and >= 0.8x
aiohttp). Exit status 0 unless a server or wrk failed (the goals do not affect it).
Every server is killed on exit, also on Ctrl-C, SIGTERM or an error. Linux only. Never run
in CI.

``--workers N`` measures servers that use several cores: netcomp with 1 and N worker
processes (``netcomp.net.Supervisor``), ``uvicorn --workers N`` and gunicorn with N aiohttp
workers (``--servers`` picks from ``netcomp``, ``netcomp-wK``, ``uvicorn``, ``uvicorn-wK``,
``aiohttp``, ``gunicorn-wK``). Nothing is pinned: the servers and wrk (``--wrk-threads``)
share every core, and the CPU columns say how they shared it (the server's is the sum over
its processes). Each server gets a 1 s wrk warm-up first (its workers all started). The
goals printed are issue 15's: netcomp with N workers at least 1.3x netcomp with 1, and
ahead of uvicorn with N.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import json
import os
import platform
import pstats
import re
import resource
import selectors
import signal
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SERVERS = ("netcomp", "circuits", "aiohttp", "tornado", "uvicorn")
MODES = ("keep-alive", "close")
#: Goals from issue 5, netcomp / other, in the same run.
GOALS = {"circuits": 5.0, "aiohttp": 0.8}
SERVER_CPU = "0"
WRK_CPU = "1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
DISTRIBUTIONS = (
    "netcomp",
    "circuits",
    "aiohttp",
    "tornado",
    "uvicorn",
    "uvloop",
    "httptools",
    "gunicorn",
)
TICKS = os.sysconf("SC_CLK_TCK")
#: ``--workers``: the multi-process servers (``name-wK``) and the scripts that run them.
WORKER_SCRIPTS = {
    "netcomp": "netcomp_app",
    "uvicorn": "uvicorn_workers_app",
    "gunicorn": "gunicorn_app",
}
#: Goals of issue 15 (``--workers N``): netcomp-wN / netcomp-w1 and netcomp-wN / uvicorn-wN.
WORKER_GOALS = (1.3, 1.0)
WARMUP = 1

_children: list[subprocess.Popen[bytes]] = []


class BenchError(Exception):
    """A server that would not start or answer, or a wrk run that failed."""


# -- servers ---------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, from /proc (0.0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def _tree_cpu_seconds(pid: int) -> float:
    """utime + stime of a process and all its descendants (a supervisor and its workers)."""
    return sum(_cpu_seconds(p) for p in _tree(pid))


def _tree(pid: int) -> list[int]:
    """``pid`` and its live descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def _busy_seconds() -> float:
    """CPU seconds all CPUs spent busy since boot (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / TICKS


def server_argv(name: str) -> tuple[list[str], int | None]:
    """The script and arguments of server ``name`` (``netcomp``, ``uvicorn-w2``...), and
    its worker count (None: one process). A multi-process server gets a real port."""
    base, _, count = name.partition("-w")
    if not count:
        return [str(HERE / "servers" / f"{name}_app.py"), "0"], None
    script = HERE / "servers" / f"{WORKER_SCRIPTS[base]}.py"
    return [str(script), str(_free_port()), count], int(count)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    name: str, log: Path, profile: Path | None = None, pinned: bool = True
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``servers/<name>_app.py`` (pinned to CPU 0 unless ``pinned`` is false); wait
    for its port and one 200 (and, for worker processes, for every worker).

    With ``profile``, the server runs under ``cProfile`` writing to that path on exit.
    """
    argv, workers = server_argv(name)
    python = [sys.executable] + (["-m", "cProfile", "-o", str(profile)] if profile else [])
    pin = ["taskset", "-c", SERVER_CPU] if pinned else []
    errfile = open(log, "wb")  # noqa: SIM115 - closed below, the child keeps its copy
    try:
        proc = subprocess.Popen(
            [*pin, *python, *argv],
            stdout=subprocess.PIPE,
            stderr=errfile,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=HERE / "servers",
        )
    finally:
        errfile.close()
    _children.append(proc)
    deadline = time.monotonic() + START_TIMEOUT
    port = listening_port(proc, name, f"see {log}")
    while True:  # readiness: one successful request, bounded by the deadline
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read()
            finally:
                conn.close()
            if resp.status == 200 and body == b"Hello, World!":
                if workers:
                    _wait_for_workers(name, proc, workers, deadline)
                return proc, port
            raise BenchError(f"{name}: GET / gave {resp.status} {body[:80]!r}")
        except OSError as err:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise BenchError(f"{name}: not answering: {err}; see {log}") from err
            time.sleep(0.05)


def listening_port(proc: subprocess.Popen[bytes], name: str, hint: str = "") -> int:
    """The port of a server whose first line says ``listening PORT`` (within
    ``START_TIMEOUT`` s); ``BenchError`` naming ``name`` (and ``hint``) otherwise."""
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    line = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise BenchError(f"{name}: no 'listening' line within {START_TIMEOUT} s")
            chunk = os.read(proc.stdout.fileno(), 256)
            if not chunk:
                raise BenchError(f"{name}: exited ({proc.wait()}) before listening; {hint}")
            line += chunk
    match = re.match(rb"listening (\d+)", line)
    if not match:
        raise BenchError(f"{name}: unexpected first line {line!r}")
    return int(match.group(1))


def _wait_for_workers(
    name: str, proc: subprocess.Popen[bytes], workers: int, deadline: float
) -> None:
    """Until the server has ``workers`` processes under it (uvicorn, gunicorn: helpers
    count too, so also give them a moment to finish importing)."""
    while len(_tree(proc.pid)) - 1 < workers:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise BenchError(f"{name}: fewer than {workers} worker processes")
        time.sleep(0.05)
    time.sleep(0.5)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT the server's process group, SIGKILL it if it is still there after 5 s."""
    if proc.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired, ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(STOP_TIMEOUT)
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(STOP_TIMEOUT)
    if proc.stdout is not None:
        proc.stdout.close()
    if proc in _children:
        _children.remove(proc)


def kill_all() -> None:
    """Kill every server still running (used on every way out)."""
    for proc in list(_children):
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(STOP_TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()
        _children.remove(proc)


# -- wrk -------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(text: str) -> dict[str, Any]:
    """requests/s, p99 (ms), request count, socket errors and non-2xx/3xx from wrk's output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    count = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    if not (rps and p99 and count):
        raise BenchError("cannot parse wrk output:\n" + text)
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sock:
        errors = dict(zip(errors, map(int, sock.groups()), strict=True))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {
        "rps": float(rps.group(1)),
        "p99_ms": float(p99.group(1)) * _UNITS[p99.group(2)],
        "requests": int(count.group(1)),
        "socket_errors": errors,
        "non_2xx_3xx": int(non2xx.group(1)) if non2xx else 0,
    }


def run_wrk(
    url: str,
    mode: str,
    duration: int,
    connections: int,
    server_pid: int,
    pinned: bool = True,
    threads: int = 1,
) -> dict[str, Any]:
    """One wrk run (pinned to CPU 1 unless ``pinned`` is false); the parsed result plus
    the CPU both sides used (the server's summed over its processes)."""
    pin = ["taskset", "-c", WRK_CPU] if pinned else []
    cmd = [*pin, "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s"]
    cmd += ["--latency"]
    if mode == "close":
        cmd += ["-H", "Connection: close"]
    cmd.append(url)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = _tree_cpu_seconds(server_pid)
    busy_before = _busy_seconds()
    start = time.monotonic()
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=duration + 30, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise BenchError(f"wrk did not finish within {duration + 30} s") from err
    wall = time.monotonic() - start
    server_cpu = _tree_cpu_seconds(server_pid) - server_before
    busy = _busy_seconds() - busy_before
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise BenchError(f"wrk exited {done.returncode}:\n{done.stdout}{done.stderr}")
    result = parse_wrk(done.stdout)
    wrk_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["server_cpu"] = round(server_cpu / wall, 2)
    result["wrk_cpu"] = round(wrk_cpu / wall, 2)
    result["rest_cpu"] = round(max(0.0, busy - server_cpu - wrk_cpu) / wall, 2)
    result["wrk_output"] = done.stdout
    return result


# -- report ----------------------------------------------------------------------------


def _errors(cell: dict[str, Any]) -> str:
    total = sum(cell["socket_errors"].values())
    parts = []
    if total:
        parts.append("sock " + "/".join(str(v) for v in cell["socket_errors"].values()))
    if cell["non_2xx_3xx"]:
        parts.append(f"non2xx {cell['non_2xx_3xx']}")
    return ", ".join(parts) or "0"


def table(best: dict[str, dict[str, Any]], servers: list[str], options: Any) -> str:
    """The markdown table: one row per server, keep-alive and close side by side."""
    where = (
        f"nothing pinned: servers and wrk share {os.cpu_count()} CPUs"
        if options.workers
        else "server on CPU 0, wrk on CPU 1"
    )
    lines = [
        f"Hello world, wrk -t{options.wrk_threads} -c{options.connections} "
        f"-d{options.duration}s, best of {options.repeat}; {where}",
        "",
        "| server | keep-alive req/s | p99 ms | errors | CPU srv/wrk/rest "
        "| close req/s | p99 ms | errors | CPU srv/wrk/rest |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name in servers:
        row = [name]
        for mode in MODES:
            cell = best.get(name, {}).get(mode)
            if cell is None:
                row += ["failed", "", "", ""]
                continue
            row += [
                f"{cell['rps']:,.0f}",
                f"{cell['p99_ms']:.2f}",
                _errors(cell),
                f"{cell['server_cpu']:.2f}/{cell['wrk_cpu']:.2f}/{cell['rest_cpu']:.2f}",
            ]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines += worker_goals(best, options.workers) if options.workers else goals(best)
    return "\n".join(lines)


def goals(best: dict[str, dict[str, Any]]) -> list[str]:
    """Issue 5's goals: netcomp against circuits.web and aiohttp, same run."""
    lines = []
    for other, goal in GOALS.items():
        if "netcomp" not in best or other not in best:
            continue
        parts = []
        for mode in MODES:
            mine, theirs = best["netcomp"].get(mode), best[other].get(mode)
            if not (mine and theirs and theirs["rps"]):
                parts.append(f"{mode}: n/a")
                continue
            ratio = mine["rps"] / theirs["rps"]
            verdict = "met" if ratio >= goal else "NOT MET"
            parts.append(f"{mode} {ratio:.2f}x ({verdict})")
        lines.append(f"- netcomp/{other} (goal >= {goal:g}x): " + ", ".join(parts))
    return lines


def worker_goals(best: dict[str, dict[str, Any]], workers: int) -> list[str]:
    """Issue 15's goals: netcomp with N workers against 1 worker and uvicorn with N; then
    each server's requests per CPU-second it used (the rates depend on the CPU share a
    server got next to wrk and anything else running; this does not)."""
    lines = []
    many = f"netcomp-w{workers}"
    for other, goal in zip(("netcomp-w1", f"uvicorn-w{workers}"), WORKER_GOALS, strict=True):
        if many not in best or other not in best:
            continue
        parts = []
        for mode in MODES:
            mine, theirs = best[many].get(mode), best[other].get(mode)
            if not (mine and theirs and theirs["rps"]):
                parts.append(f"{mode}: n/a")
                continue
            ratio = mine["rps"] / theirs["rps"]
            met = ratio >= goal if goal > 1.0 else ratio > goal
            parts.append(f"{mode} {ratio:.2f}x ({'met' if met else 'NOT MET'})")
        relation = f">= {goal:g}x" if goal > 1.0 else "ahead"
        lines.append(f"- {many}/{other} (goal {relation}): " + ", ".join(parts))
    lines += ["", "Requests per server CPU-second (req/s divided by the server's CPU column):"]
    for name, cells in best.items():
        parts = [
            f"{mode} {cells[mode]['rps'] / cells[mode]['server_cpu']:,.0f}"
            for mode in MODES
            if cells.get(mode) and cells[mode]["server_cpu"] > 0
        ]
        lines.append(f"- {name}: " + (", ".join(parts) or "n/a"))
    return lines


def _versions() -> dict[str, str]:
    found = {}
    for dist in DISTRIBUTIONS:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "not installed"
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    found["wrk"] = (wrk.stdout or wrk.stderr).split(" Copyright")[0].strip()
    return found


# -- main ------------------------------------------------------------------------------


def _worker_server(name: str) -> bool:
    """Whether ``name`` is a multi-process server: ``netcomp-w2``, ``uvicorn-w4``..."""
    base, sep, count = name.partition("-w")
    return bool(sep) and base in WORKER_SCRIPTS and count.isdigit() and int(count) >= 1


def _on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Parse options, run every server, print the table; 1 if something failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections")
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help=f"comma list from {','.join(SERVERS)}"
    )
    parser.add_argument("--repeat", type=int, default=1, help="best of N (interleaved)")
    parser.add_argument(
        "--modes", default=",".join(MODES), help=f"comma list from {','.join(MODES)}"
    )
    parser.add_argument("--json", type=Path, help="write every run and the best as JSON")
    parser.add_argument(
        "--logs", type=Path, default=Path("/tmp"), help="directory for servers' stderr"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="run the netcomp server under cProfile, write the stats here and print the "
        "top 40 functions by tottime (the numbers are then not comparable)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="measure worker processes: netcomp with 1 and N, uvicorn and gunicorn "
        "(aiohttp workers) with N; nothing pinned",
    )
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (-t)")
    options = parser.parse_args(argv)
    if options.workers is not None and options.workers < 1:
        parser.error("--workers: at least 1")
    if options.workers and options.servers == ",".join(SERVERS):
        n = options.workers
        options.servers = f"netcomp-w1,netcomp-w{n},uvicorn-w{n},gunicorn-w{n}"
    servers = [s.strip() for s in options.servers.split(",") if s.strip()]
    unknown = {s for s in servers if s not in SERVERS and not _worker_server(s)}
    if unknown:
        parser.error(f"unknown server(s): {', '.join(sorted(unknown))}")
    modes = [m.strip() for m in options.modes.split(",") if m.strip()]
    if not modes or set(modes) - set(MODES):
        parser.error(f"--modes: choose from {','.join(MODES)}")
    if (os.cpu_count() or 1) < 2:
        print("warning: fewer than 2 CPUs; server and wrk will share one", file=sys.stderr)

    signal.signal(signal.SIGTERM, _on_sigterm)
    runs: list[dict[str, Any]] = []
    best: dict[str, dict[str, Any]] = {}
    failures: list[str] = []
    try:
        for round_ in range(options.repeat):
            for name in servers:
                log = options.logs / f"http_bench_{name}.log"
                try:
                    profile = options.profile if name == "netcomp" else None
                    pinned = not options.workers
                    proc, port = start_server(name, log, profile, pinned)
                    if not pinned:
                        url = f"http://127.0.0.1:{port}/"
                        run_wrk(url, modes[0], WARMUP, options.connections, proc.pid, False)
                except BenchError as err:
                    print(f"[{round_ + 1}] {name}: FAILED: {err}", flush=True)
                    failures.append(str(err))
                    kill_all()
                    continue
                try:
                    for mode in modes:
                        url = f"http://127.0.0.1:{port}/"
                        try:
                            res = run_wrk(
                                url,
                                mode,
                                options.duration,
                                options.connections,
                                proc.pid,
                                not options.workers,
                                options.wrk_threads,
                            )
                        except BenchError as err:
                            print(f"[{round_ + 1}] {name} {mode}: FAILED: {err}", flush=True)
                            failures.append(f"{name} {mode}: {err}")
                            continue
                        alive = proc.poll() is None
                        runs.append({"round": round_ + 1, "server": name, "mode": mode, **res})
                        print(
                            f"[{round_ + 1}] {name:11} {mode:10} {res['rps']:>10,.0f} req/s  "
                            f"p99 {res['p99_ms']:7.2f} ms  errors {_errors(res)}  "
                            f"cpu srv {res['server_cpu']:.2f} wrk {res['wrk_cpu']:.2f} "
                            f"rest {res['rest_cpu']:.2f}" + ("" if alive else "  SERVER DIED"),
                            flush=True,
                        )
                        if not alive:
                            failures.append(f"{name} died during {mode}; see {log}")
                            break
                        cell = best.setdefault(name, {}).get(mode)
                        if cell is None or res["rps"] > cell["rps"]:
                            best[name][mode] = res
                finally:
                    stop_server(proc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        kill_all()

    print()
    print(table(best, servers, options))
    if failures:
        print("\nfailures:\n" + "\n".join(f"- {f}" for f in failures))
    if options.json:
        report = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "versions": _versions(),
            "options": {
                "duration": options.duration,
                "connections": options.connections,
                "repeat": options.repeat,
                "servers": servers,
                "modes": modes,
                "workers": options.workers,
                "wrk_threads": options.wrk_threads,
            },
            "best": {
                name: {
                    mode: {k: v for k, v in cell.items() if k != "wrk_output"}
                    for mode, cell in cells.items()
                }
                for name, cells in best.items()
            },
            "runs": runs,
            "failures": failures,
        }
        options.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nJSON written to {options.json}")
    if options.profile and "netcomp" in servers and options.profile.exists():
        stats = pstats.Stats(str(options.profile))
        print(f"\nnetcomp server profile ({options.profile}), top 40 by tottime:")
        stats.sort_stats("tottime").print_stats(40)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
