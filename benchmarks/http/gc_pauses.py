"""Garbage-collector pauses in the hello-world server, with and without ``run(gc_freeze=)``.

Usage::

    python benchmarks/http/gc_pauses.py                      # close and keep-alive, 5 s each
    python benchmarks/http/gc_pauses.py --modes close --repeat 3 --duration 10

The same app as ``run.py`` (``servers/netcomp_app.py``: a ``Server`` and a ``Controller``)
runs in a child process pinned to CPU 0, once with ``run()`` as documented (start-up objects
frozen once the tree has started) and once with ``run(gc_freeze=False)``; ``wrk -t1 -c50``
pinned to CPU 1 drives it. The child times every collection with ``gc.callbacks`` in its
own thread's CPU time (so another process on the machine does not inflate the figures),
from the first loop pass after ``started`` (start-up collections, ``run()``'s own included,
are not counted), and reports, per generation: collections, the longest pause and the
total, per 10,000 requests. wrk's requests/s and p99 are shown beside them. Linux only;
never run in CI.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import listening_port, parse_wrk  # noqa: E402  (benchmarks/http/run.py)

START_TIMEOUT = 20.0


def serve(freeze: bool, stats_path: str) -> None:
    """The child: the benchmark app, every collection timed, the figures written at exit."""
    sys.path.insert(0, str(HERE / "servers"))
    import netcomp_app

    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    began = [0.0]

    def timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            began[0] = time.thread_time()
        else:
            pauses[info["generation"]].append(time.thread_time() - began[0])

    class Reset(netcomp_app.Component):
        """Forget the start-up collections (run()'s own included) once the tree serves."""

        def started(self, manager: Any) -> None:
            self.loop.call_soon(lambda: [times.clear() for times in pauses.values()])

    server = netcomp_app.build(0)
    server += netcomp_app.Announce(server)
    server += Reset()
    gc.callbacks.append(timed)
    try:
        server.run(gc_freeze=freeze)
    finally:
        gc.callbacks.remove(timed)
        Path(stats_path).write_text(json.dumps({str(g): p for g, p in pauses.items()}))


def measure(freeze: bool, mode: str, duration: int, connections: int) -> dict[str, Any]:
    """One child server, one wrk run: wrk's figures and the pauses per generation."""
    with tempfile.TemporaryDirectory() as tmp:
        stats = os.path.join(tmp, "gc.json")
        argv = ["taskset", "-c", "0", sys.executable, __file__, "--serve", str(int(freeze))]
        proc = subprocess.Popen(
            [*argv, stats], stdout=subprocess.PIPE, start_new_session=True, cwd=HERE
        )
        try:
            port = listening_port(proc, "netcomp")
            cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration}s"]
            cmd += ["--latency"] + (["-H", "Connection: close"] if mode == "close" else [])
            done = subprocess.run(
                [*cmd, f"http://127.0.0.1:{port}/"],
                capture_output=True,
                text=True,
                timeout=duration + 30,
                check=True,
            )
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()
        result = parse_wrk(done.stdout)
        pauses = json.loads(Path(stats).read_text())
    per = 10_000 / max(1, result["requests"])
    for gen, times in pauses.items():
        result[f"gen{gen}"] = {
            "count": len(times),
            "max_ms": round(max(times, default=0.0) * 1000, 2),
            "ms_per_10k_requests": round(sum(times) * 1000 * per, 1),
        }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="close,keep-alive")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=1, help="rounds, alternating")
    parser.add_argument("--serve", nargs=2, metavar=("FREEZE", "STATS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0] == "1", args.serve[1])
        return 0
    print(
        "| mode | run() | req/s | p99 ms | gen2 collections | gen2 max ms | "
        "gen2 ms/10k req | gen0+1 ms/10k req |\n|---|---|--:|--:|--:|--:|--:|--:|"
    )
    for _ in range(args.repeat):
        for mode in args.modes.split(","):
            for freeze in (False, True):
                r = measure(freeze, mode, args.duration, args.connections)
                young = r["gen0"]["ms_per_10k_requests"] + r["gen1"]["ms_per_10k_requests"]
                label = "run()" if freeze else "run(gc_freeze=False)"
                print(
                    f"| {mode} | {label} | {r['rps']:,.0f} | {r['p99_ms']:.2f} | "
                    f"{r['gen2']['count']} | {r['gen2']['max_ms']:.2f} | "
                    f"{r['gen2']['ms_per_10k_requests']:.1f} | {young:.1f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
