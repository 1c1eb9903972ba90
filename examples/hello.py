"""hello.py: components, events, handlers, a Timer and a coroutine handler, in one tree.

What it shows: a `Greeter` component answers `hello` events; a `Clock` timer fires `tick`
every 0.2 s; an async `Boss` handler awaits `self.call(hello(...))` for each tick and prints
the answer; after N ticks (argv[1], default 5; 0 = run until Ctrl-C) the program stops
itself with exit status 0, firing `stopped` on the way out.

Poke it:   python examples/hello.py 3        (three ticks, then exits)
           python examples/hello.py 0        (runs until Ctrl-C / SIGTERM: a graceful stop)
"""

from __future__ import annotations

import sys

from netcomp import Component, Event, Manager, Timer


class hello(Event):
    """hello(name): asks for a greeting."""


class tick(Event):
    """tick(): fired by the timer."""


class Greeter(Component):
    def hello(self, name: str) -> str:
        return f"Hello, {name}!"


class Boss(Component):
    def init(self, ticks: int) -> None:
        self.ticks = ticks
        self.seen = 0

    async def tick(self) -> None:  # handles the timer's tick events, as in circuits
        self.seen += 1
        greeting = await self.call(hello(f"tick #{self.seen}"))
        print(greeting, flush=True)
        if self.ticks and self.seen >= self.ticks:
            self.stop(0)

    def stopped(self, manager: Manager) -> None:
        print(f"stopped after {self.seen} ticks", flush=True)


def main(argv: list[str]) -> int:
    ticks = int(argv[1]) if len(argv) > 1 else 5
    app = Manager()
    app += Greeter()
    app += Boss(ticks)
    app += Timer(0.2, tick(), persist=True)
    code = app.run()
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
