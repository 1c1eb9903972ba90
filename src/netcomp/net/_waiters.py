"""How a component's ``stopped`` handler makes the manager's stop wait for its connections.

The handler returns :meth:`AllClosed.wait` (a Future, or None when nothing is open); the
component calls :meth:`AllClosed.done` when its last connection is gone. The loop waits
for the Future at most ``Manager.stop_timeout`` seconds.
"""

from __future__ import annotations

from ..core import Future

__all__ = ["AllClosed"]


class AllClosed:
    """Futures resolved together once their owner has nothing open any more."""

    __slots__ = ("_futures",)

    def __init__(self) -> None:
        self._futures: list[Future] = []

    def wait(self, busy: bool) -> Future | None:
        """A Future for the next :meth:`done`; None when the owner is not ``busy``."""
        if not busy:
            return None
        future = Future()
        self._futures.append(future)
        return future

    def done(self) -> None:
        """Everything is closed: resolve the Futures handed out so far."""
        futures, self._futures = self._futures, []
        for future in futures:
            future.set_result(None)
