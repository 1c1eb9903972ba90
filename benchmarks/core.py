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
import contextlib
import datetime
import gc
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

LIBS = ("netcomp", "circuits")
#: The issue's three benchmarks, then an informational one (no goal).
BENCHES = ("pingpong", "callchain", "fanout", "callchain_tick")
#: Full sizes (``--quick`` divides by 10).
SIZES = {"pingpong": 1_000_000, "callchain": 10_000, "fanout": 50_000, "callchain_tick": 10_000}
FANOUT_COMPONENTS = 100
#: Goals from issue 2: netcomp / circuits at least this much.
GOALS = {"pingpong": 5.0, "callchain": 100.0, "fanout": 5.0}
UNITS = {
    "pingpong": "events/s",
    "callchain": "calls/s",
    "fanout": "events/s",
    "callchain_tick": "calls/s",
}
#: Seconds one repetition may take, by (library, benchmark); above it the child measures
#: fewer events or calls (sized by a probe run) and the rate is extrapolated. circuits'
#: call chain under run() idles 0.1 s per call (see README), so 10,000 calls would take
#: about 17 minutes.
BUDGETS = {("circuits", "callchain"): 10.0}
CHILD_TIMEOUT = 900.0

# A benchmark function takes its size and returns (count, seconds).
Bench = Callable[[int], "tuple[int, float]"]


# --------------------------------------------------------------------------- netcomp
def netcomp_pingpong_tree(n: int) -> tuple[Any, Any]:
    """The ping-pong tree (a Manager with a Pinger and a Ponger that stop after ``n``
    events) and its first event, not yet fired (``benchmarks/tracing.py`` uses it too)."""
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
    return manager, ping(1)


def netcomp_pingpong(n: int) -> tuple[int, float]:
    """``n`` events handled in total, alternating ``ping`` and ``pong``."""
    manager, first = netcomp_pingpong_tree(n)
    manager.fire(first)
    start = time.perf_counter()
    manager.run()
    return n, time.perf_counter() - start


def netcomp_callchain(n: int, tick: bool = False) -> tuple[int, float]:
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
    if tick:
        for _ in range(4 * n + 100):  # a few loop passes per call; bounded
            if elapsed:
                break
            manager.tick(0)
    else:
        manager.run()
    return n, elapsed[0]


def netcomp_callchain_tick(n: int) -> tuple[int, float]:
    """The call chain, the loop driven by ``tick()`` passes instead of ``run()``."""
    return netcomp_callchain(n, tick=True)


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
                self.root.stop()  # no code: circuits raises SystemExit only given a code
            else:
                self.fire(pong(i + 1))

    class Ponger(Component):
        def pong(self, i: int) -> None:
            if i >= n:
                self.root.stop()
            else:
                self.fire(ping(i + 1))

    manager = Manager()
    manager += Pinger()
    manager += Ponger()
    manager.fire(ping(1))
    start = time.perf_counter()
    _circuits_run(manager)
    return n, time.perf_counter() - start


def circuits_callchain(n: int, tick: bool = False) -> tuple[int, float]:
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
            self.root.stop()

    class Worker(Component):
        def work(self, i: int) -> int:
            return i

    manager = Manager()
    manager += Caller()
    manager += Worker()
    manager.fire(go())
    if tick:
        # Not running, circuits' tick() fires no generate_events, so it never idles.
        for _ in range(4 * n + 100):
            if elapsed:
                break
            manager.tick()
    else:
        _circuits_run(manager)
    return n, elapsed[0]


def circuits_callchain_tick(n: int) -> tuple[int, float]:
    return circuits_callchain(n, tick=True)


def circuits_fanout(n: int) -> tuple[int, float]:
    from circuits import Component, Event, Manager, handler

    class hit(Event):
        pass

    class Sink(Component):
        def hit(self, i: int) -> None:
            pass

    class Last(Component):
        def init(self, channel: Any = None) -> None:  # circuits passes channel= on
            self.count = 0

        def hit(self, i: int) -> None:
            self.count += 1
            if self.count == n:
                self.root.stop()

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
    with contextlib.suppress(SystemExit):
        manager.run()


FUNCS: dict[tuple[str, str], Bench] = {
    ("netcomp", "pingpong"): netcomp_pingpong,
    ("netcomp", "callchain"): netcomp_callchain,
    ("netcomp", "fanout"): netcomp_fanout,
    ("netcomp", "callchain_tick"): netcomp_callchain_tick,
    ("circuits", "pingpong"): circuits_pingpong,
    ("circuits", "callchain"): circuits_callchain,
    ("circuits", "fanout"): circuits_fanout,
    ("circuits", "callchain_tick"): circuits_callchain_tick,
}


# ----------------------------------------------------------------------------- child
def run_one(lib: str, bench: str, n: int, repeat: int, budget: float | None) -> dict[str, Any]:
    """Run one benchmark ``repeat`` times in this process; shrink ``n`` to fit ``budget`` s."""
    func = FUNCS[(lib, bench)]
    requested = n
    note = ""
    if budget is not None:
        probe = max(1, min(n // 100, 20))
        count, seconds = func(probe)
        if seconds / count * n > budget:
            n = max(probe, int(budget * count / seconds))
            note = f"measured {n:,} of {requested:,}, rate extrapolated"
    rates = []
    for _ in range(repeat):
        gc.collect()
        count, seconds = func(n)
        rates.append(count / seconds)
    return {"lib": lib, "bench": bench, "n": n, "rates": rates, "note": note}


# ---------------------------------------------------------------------------- parent
def run_child(lib: str, bench: str, n: int, repeat: int, budget: float | None) -> dict[str, Any]:
    """Run one (library, benchmark) in a fresh interpreter; its JSON result."""
    cmd = [sys.executable, __file__, "--one", lib, bench, "--n", str(n), "--repeat", str(repeat)]
    if budget is not None:
        cmd += ["--budget", str(budget)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def measure(bench: str, n: int, repeat: int, scale: int) -> dict[str, dict[str, Any]]:
    """``repeat`` runs per library, each in a fresh subprocess, alternating libraries.

    A library with a time budget for ``bench`` sizes itself in its first run (a probe);
    later runs reuse that size.
    """
    result: dict[str, dict[str, Any]] = {lib: {"n": n, "rates": [], "note": ""} for lib in LIBS}
    for _ in range(repeat):
        for lib in LIBS:
            budget = BUDGETS.get((lib, bench))
            first = not result[lib]["rates"]
            one = run_child(
                lib,
                bench,
                result[lib]["n"],
                1,
                budget / scale if budget is not None and first else None,
            )
            result[lib]["rates"] += one["rates"]
            if first:
                result[lib]["n"] = one["n"]
                result[lib]["note"] = one["note"]
    return result


def versions() -> str:
    import circuits

    import netcomp

    return (
        f"netcomp {netcomp.__version__}, circuits {circuits.__version__}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~1/10 sizes")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best)")
    parser.add_argument(
        "--only", choices=BENCHES, action="append", help="run only this benchmark (repeatable)"
    )
    parser.add_argument("--one", nargs=2, metavar=("LIB", "BENCH"), help="child mode")
    parser.add_argument("--n", type=int, help="child mode: size")
    parser.add_argument("--budget", type=float, help="child mode: seconds per run")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1

    if args.one:
        lib, bench = args.one
        if (lib, bench) not in FUNCS:
            parser.error(f"unknown library/benchmark {lib} {bench}")
        n = args.n or SIZES[bench] // scale
        print(json.dumps(run_one(lib, bench, n, args.repeat, args.budget)))
        return 0

    size = "quick (1/10)" if args.quick else "full"
    print(f"netcomp vs circuits, core benchmark: {size} sizes, best of {args.repeat}")
    print(f"{datetime.date.today()}; {versions()}")
    print("one fresh subprocess per library and run, the libraries alternating; rates:")
    rows = []
    for bench in args.only or BENCHES:
        result = measure(bench, SIZES[bench] // scale, args.repeat, scale)
        for lib in LIBS:
            rates = ", ".join(f"{r:,.0f}" for r in result[lib]["rates"])
            print(f"  {bench:<14} {lib:<8} n={result[lib]['n']:>9,}  {rates}", flush=True)
        rows.append((bench, result))

    print()
    header = f"{'benchmark':<14} {'unit':<8} {'netcomp':>11} {'circuits':>11} {'ratio':>9}  goal"
    print(header)
    print("-" * (len(header) + 10))
    notes = []
    for bench, result in rows:
        ours = max(result["netcomp"]["rates"])
        theirs = max(result["circuits"]["rates"])
        ratio = ours / theirs
        goal = GOALS.get(bench)
        verdict = (
            "(info)" if goal is None else f">={goal:g}x {'met' if ratio >= goal else 'NOT MET'}"
        )
        print(
            f"{bench:<14} {UNITS[bench]:<8} {ours:>11,.0f} {theirs:>11,.0f} {ratio:>8.1f}x  "
            f"{verdict}"
        )
        notes += [f"{bench} {lib}: {result[lib]['note']}" for lib in LIBS if result[lib]["note"]]
    if any(bench == "callchain_tick" for bench, _ in rows):
        notes.append(
            "callchain_tick: both loops driven by tick() instead of run(); circuits' run() "
            "idles 0.1 s per call, tick() never idles: the CPU cost of a call"
        )
    for note in notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
