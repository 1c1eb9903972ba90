"""Core benchmark: the same work on netcomp and on circuits, in one run.

Usage::

    python benchmarks/core.py            # full sizes (a few minutes on a 2-core VM)
    python benchmarks/core.py --quick    # ~1/10 sizes
    python benchmarks/core.py --one netcomp pingpong --n 100000 --repeat 3   # one child

Benchmarks (each library runs in its own fresh subprocess, best of ``--repeat`` runs):

1. ``pingpong``: two components whose handlers fire each other's event; events per second
   under the loop's real ``run()``; the manager is stopped when the count is reached.
2. ``callchain``: sequential ``await self.call(e)`` in one netcomp coroutine handler vs
   ``yield self.call(e)`` in one circuits generator handler; calls per second. circuits is
   slow here: it measures fewer calls (sized from a short probe to fit a time budget) and
   the rate is extrapolated; the table says so.
3. ``fanout``: one event handled by 100 components on one channel; events per second
   (each event is 100 handler calls), fired from a ``started`` handler, under ``run()``.

circuits comes from the ``bench`` extra (``pip install -e '.[bench]'``). Never run in CI.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

LIBS = ("netcomp", "circuits")
BENCHES = ("pingpong", "callchain", "fanout")
#: Full sizes (``--quick`` divides by 10).
SIZES = {"pingpong": 1_000_000, "callchain": 10_000, "fanout": 20_000}
FANOUT_COMPONENTS = 100
#: Goal from issue 2: netcomp / circuits at least this much.
GOALS = {"pingpong": 5.0, "callchain": 100.0, "fanout": 5.0}
UNITS = {"pingpong": "events/s", "callchain": "calls/s", "fanout": "events/s"}
#: Seconds one circuits repetition may take; above it the size shrinks and the rate is
#: extrapolated from fewer events or calls.
CIRCUITS_BUDGET = 20.0
CHILD_TIMEOUT = 900.0

# A benchmark function takes its size and returns (count, seconds).
Bench = Callable[[int], "tuple[int, float]"]


# --------------------------------------------------------------------------- netcomp
def netcomp_pingpong(n: int) -> tuple[int, float]:
    """``n`` events handled in total, alternating ``ping`` and ``pong``."""
    from netcomp import Component, Event, Manager

    class ping(Event):
        pass

    class pong(Event):
        pass

    class Pinger(Component):
        def ping(self, i: int) -> None:
            if i >= n:
                self.stop()
            else:
                self.fire(pong(i + 1))

    class Ponger(Component):
        def pong(self, i: int) -> None:
            if i >= n:
                self.stop()
            else:
                self.fire(ping(i + 1))

    manager = Manager()
    manager += Pinger()
    manager += Ponger()
    manager.fire(ping(1))
    start = time.perf_counter()
    manager.run()
    return n, time.perf_counter() - start


def netcomp_callchain(n: int) -> tuple[int, float]:
    """``n`` sequential ``await self.call(work(i))`` in one coroutine handler."""
    from netcomp import Component, Event, Manager

    class go(Event):
        pass

    class work(Event):
        pass

    elapsed: list[float] = []

    class Caller(Component):
        async def go(self) -> None:
            start = time.perf_counter()
            for i in range(n):
                result = await self.call(work(i))
                assert result == i
            elapsed.append(time.perf_counter() - start)
            self.stop()

    class Worker(Component):
        def work(self, i: int) -> int:
            return i

    manager = Manager()
    manager += Caller()
    manager += Worker()
    manager.fire(go())
    manager.run()
    return n, elapsed[0]


def netcomp_fanout(n: int) -> tuple[int, float]:
    """``n`` events on channel "fan", each handled by FANOUT_COMPONENTS components."""
    from netcomp import Component, Event, Manager, handler

    class hit(Event):
        pass

    class Sink(Component):
        def hit(self, i: int) -> None:
            pass

    class Last(Component):
        def init(self) -> None:
            self.count = 0

        def hit(self, i: int) -> None:
            self.count += 1
            if self.count == n:
                self.stop()

    class Source(Component):
        @handler("started")
        def _fire_all(self, manager: Any) -> None:
            fire = self.fire
            for i in range(n):
                fire(hit(i), "fan")

    manager = Manager()
    for _ in range(FANOUT_COMPONENTS - 1):
        manager += Sink(channel="fan")
    manager += Last(channel="fan")
    manager += Source()
    start = time.perf_counter()
    manager.run()
    return n, time.perf_counter() - start


# -------------------------------------------------------------------------- circuits
def circuits_pingpong(n: int) -> tuple[int, float]:
    from circuits import Component, Event, Manager

    class ping(Event):
        pass

    class pong(Event):
        pass

    class Pinger(Component):
        def ping(self, i: int) -> None:
            if i >= n:
                self.stop()  # no code: circuits' stop() raises SystemExit only with a code
            else:
                self.fire(pong(i + 1))

    class Ponger(Component):
        def pong(self, i: int) -> None:
            if i >= n:
                self.stop()
            else:
                self.fire(ping(i + 1))

    manager = Manager()
    manager += Pinger()
    manager += Ponger()
    manager.fire(ping(1))
    start = time.perf_counter()
    _circuits_run(manager)
    return n, time.perf_counter() - start


def circuits_callchain(n: int) -> tuple[int, float]:
    from circuits import Component, Event, Manager

    class go(Event):
        pass

    class work(Event):
        pass

    elapsed: list[float] = []

    class Caller(Component):
        def go(self) -> Any:
            start = time.perf_counter()
            for i in range(n):
                value = yield self.call(work(i))
                assert value.value == i
            elapsed.append(time.perf_counter() - start)
            self.stop()

    class Worker(Component):
        def work(self, i: int) -> int:
            return i

    manager = Manager()
    manager += Caller()
    manager += Worker()
    manager.fire(go())
    _circuits_run(manager)
    return n, elapsed[0]


def circuits_fanout(n: int) -> tuple[int, float]:
    from circuits import Component, Event, Manager, handler

    class hit(Event):
        pass

    class Sink(Component):
        def hit(self, i: int) -> None:
            pass

    class Last(Component):
        def init(self) -> None:
            self.count = 0

        def hit(self, i: int) -> None:
            self.count += 1
            if self.count == n:
                self.stop()

    class Source(Component):
        @handler("started")
        def _fire_all(self, manager: Any) -> None:
            fire = self.fire
            for i in range(n):
                fire(hit(i), "fan")

    manager = Manager()
    for _ in range(FANOUT_COMPONENTS - 1):
        manager += Sink(channel="fan")
    manager += Last(channel="fan")
    manager += Source()
    start = time.perf_counter()
    _circuits_run(manager)
    return n, time.perf_counter() - start


def _circuits_run(manager: Any) -> None:
    """circuits' ``run()``: it ends once stopped and its queue is empty.

    ``stop(code)`` with a code raises SystemExit out of the handler's loop; the benchmarks
    stop without a code, but accept SystemExit here in case a version behaves otherwise.
    """
    try:
        manager.run()
    except SystemExit:
        pass


FUNCS: dict[tuple[str, str], Bench] = {
    ("netcomp", "pingpong"): netcomp_pingpong,
    ("netcomp", "callchain"): netcomp_callchain,
    ("netcomp", "fanout"): netcomp_fanout,
    ("circuits", "pingpong"): circuits_pingpong,
    ("circuits", "callchain"): circuits_callchain,
    ("circuits", "fanout"): circuits_fanout,
}


# ----------------------------------------------------------------------------- child
def run_one(lib: str, bench: str, n: int, repeat: int, budget: float | None) -> dict[str, Any]:
    """Run one benchmark ``repeat`` times in this process; sizes down to fit ``budget``."""
    func = FUNCS[(lib, bench)]
    requested = n
    note = ""
    if budget is not None:
        probe = max(1, min(n, n // 100))
        count, seconds = func(probe)
        estimate = seconds / count * n
        if estimate > budget:
            n = max(probe, int(budget * count / seconds))
            note = f"measured {n:,} of {requested:,}, rate extrapolated"
    rates = []
    for _ in range(repeat):
        gc.collect()
        count, seconds = func(n)
        rates.append(count / seconds)
    return {"lib": lib, "bench": bench, "n": n, "requested": requested, "rates": rates,
            "note": note}


# ---------------------------------------------------------------------------- parent
def run_child(lib: str, bench: str, n: int, repeat: int, budget: float | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--one", lib, bench, "--n", str(n), "--repeat", str(repeat)]
    if budget is not None:
        cmd += ["--budget", str(budget)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def versions() -> str:
    import circuits

    import netcomp

    return (
        f"netcomp {netcomp.__version__}, circuits {circuits.__version__}, "
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~1/10 sizes")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best)")
    parser.add_argument("--only", choices=BENCHES, action="append", help="benchmark(s) to run")
    parser.add_argument("--one", nargs=2, metavar=("LIB", "BENCH"), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1

    if args.one:
        lib, bench = args.one
        n = args.n or SIZES[bench] // scale
        print(json.dumps(run_one(lib, bench, n, args.repeat, args.budget)))
        return 0

    print(f"netcomp vs circuits core benchmark ({'quick' if args.quick else 'full'} sizes, "
          f"best of {args.repeat}), {datetime.date.today()}")
    print(versions())
    rows = []
    for bench in args.only or BENCHES:
        n = SIZES[bench] // scale
        result = {}
        for lib in LIBS:
            budget = CIRCUITS_BUDGET / scale if lib == "circuits" else None
            result[lib] = run_child(lib, bench, n, args.repeat, budget)
            best = max(result[lib]["rates"])
            print(f"  {bench:<10} {lib:<9} n={result[lib]['n']:>9,}  best {best:>12,.0f} "
                  f"{UNITS[bench]}  runs: "
                  + ", ".join(f"{r:,.0f}" for r in result[lib]["rates"]), flush=True)
        rows.append((bench, result))

    print()
    header = f"{'benchmark':<10} {'unit':<9} {'netcomp':>12} {'circuits':>12} {'ratio':>8} goal"
    print(header)
    print("-" * len(header) + "------")
    notes = []
    for bench, result in rows:
        nc = max(result["netcomp"]["rates"])
        ci = max(result["circuits"]["rates"])
        ratio = nc / ci
        goal = GOALS[bench]
        mark = "met" if ratio >= goal else "NOT met"
        print(f"{bench:<10} {UNITS[bench]:<9} {nc:>12,.0f} {ci:>12,.0f} {ratio:>7.1f}x "
              f">={goal:g}x {mark}")
        for lib in LIBS:
            if result[lib]["note"]:
                notes.append(f"{bench} {lib}: {result[lib]['note']}")
    for note in notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
