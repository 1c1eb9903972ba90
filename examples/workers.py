"""workers.py: blocking work on a thread pool while the event loop keeps going.

What it shows: a `Worker` answers `task(f, *args)` events on its pool; an async handler
awaits `self.call(task(...), "worker")` for a slow, blocking function while a Timer keeps
ticking on the loop (the ticks print while the work runs). Exits by itself when done.

Poke it:   python examples/workers.py          (computes two results, then exits 0)
"""

from __future__ import annotations

import sys
import time

from netcomp import Component, Event, Manager, Timer, Worker, task


def slow_square(n: int) -> int:
    time.sleep(0.3)  # stands for blocking I/O or a C library call
    return n * n


class go(Event):
    """go(): start the work."""


class beat(Event):
    """beat(): the loop is alive."""


class App(Component):
    def init(self) -> None:
        self.beats = 0

    def beat(self) -> None:
        self.beats += 1
        print(f"beat {self.beats} (the loop is not blocked)", flush=True)

    async def go(self) -> None:
        for n in (7, 12):
            result = await self.call(task(slow_square, n), "worker")
            print(f"slow_square({n}) = {result}", flush=True)
        self.stop(0)


def main() -> int:
    app = Manager()
    app += App()
    app += Worker()
    app += Timer(0.1, beat(), persist=True)
    app.fire(go())
    code = app.run()
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
