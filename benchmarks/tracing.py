"""What observing a loop costs: ping-pong events per second with nothing attached, with a
``Trace`` recording (the default ring of 10,000 records), and with the inspector's
``EventCounters``.

Usage::

    python benchmarks/tracing.py                 # 500,000 events, 5 rounds, best of 3 each
    python benchmarks/tracing.py --n 100000 --rounds 2

Each measurement runs in a fresh interpreter, and the three modes alternate round after
round (the machine's other load touches all of them alike). The ping-pong is
``benchmarks/core.py``'s: two components whose handlers fire each other's event under the
loop's real ``run()``. With nothing attached the loop runs its plain dispatch
(``benchmarks/core.py --one netcomp pingpong`` measures that path). Never run in CI.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

MODES = ("off", "trace", "counters")


def pingpong(n: int, mode: str) -> float:
    """Events per second for ``n`` ping-pong events with ``mode`` attached."""
    from core import netcomp_pingpong_tree  # benchmarks/core.py, beside this file

    from netcomp import Trace
    from netcomp.tools import EventCounters

    manager, first = netcomp_pingpong_tree(n)
    if mode == "trace":
        Trace().attach(manager)
    elif mode == "counters":
        manager.loop.observe(EventCounters())
    manager.fire(first)
    start = time.perf_counter()
    manager.run()
    return n / (time.perf_counter() - start)


def child(mode: str, n: int, repeat: int) -> float:
    """Best of ``repeat`` runs in a fresh interpreter."""
    code = [sys.executable, __file__, "--child", mode, "--n", str(n), "--repeat", str(repeat)]
    done = subprocess.run(code, capture_output=True, text=True, timeout=900, check=True)
    return float(json.loads(done.stdout)["rate"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        rate = max(pingpong(options.n, options.child) for _ in range(options.repeat))
        print(json.dumps({"rate": rate}))
        return 0
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    for round_ in range(options.rounds):
        for mode in MODES:
            rates[mode].append(child(mode, options.n, options.repeat))
        print(f"round {round_ + 1}: " + ", ".join(f"{m} {rates[m][-1]:,.0f}" for m in MODES))
    best: dict[str, Any] = {mode: max(values) for mode, values in rates.items()}
    print(f"\nping-pong, {options.n:,} events, best of {options.rounds} x {options.repeat}:")
    for mode in MODES:
        share = best[mode] / best["off"]
        print(f"  {mode:9} {best[mode]:>10,.0f} events/s  ({share:.0%} of off)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
