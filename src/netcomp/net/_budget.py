"""A ceiling on the output buffered by many connections together: :class:`OutputBudget`.

Rules:
* Connections that share a budget (a server's, through their :class:`ConnectionLimits`)
  add what they buffer to ``total`` and take off what the kernel takes (or what a close
  drops). Only the slow path counts: output the kernel takes at once is never buffered.
* Above ``limit`` the budget is *over*. A connection that buffers anything while it is
  over becomes congested, as above its own high water (its owner stops producing and,
  on a server, it stops reading); one whose buffer drains to low water stays congested
  (*held*) until its buffer is empty or the budget is under again. So a peer that keeps
  up goes on at the kernel's pace, and one that does not waits.
* The budget is under again once ``total`` falls to ``resume`` (3/4 of the limit); the
  connections it held then hear ``drained``, on the next turn of the loop.
* Going over calls ``on_over`` once (the server starts its grace period there). The
  overshoot is bounded by one write per connection: each notices the budget at its next
  buffered write.
* :func:`shed` closes congested connections, the slowest readers first, until the budget
  is back to its resume mark (what a server does when it stays over past a grace period).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ._checks import count

if TYPE_CHECKING:
    from ..core import Loop
    from ._connection import Connection

__all__ = ["OutputBudget", "shed"]


class OutputBudget:
    """At most ``limit`` bytes of output buffered over the connections that share it.

    ``total``: bytes buffered now; ``over``: whether it went above ``limit`` and has not
    yet fallen back to ``resume``; ``over_since``: when that began (loop time).
    ``on_over()`` is called each time the budget goes over.
    """

    __slots__ = ("_held", "_waking", "limit", "on_over", "over_since", "resume", "total")

    def __init__(self, limit: int, on_over: Callable[[], Any] | None = None) -> None:
        self.limit = count("output budget", limit, 1)
        self.resume = limit * 3 // 4
        self.total = 0
        self.over_since: float | None = None
        self.on_over = on_over
        self._held: set[Connection] = set()
        self._waking = False

    @property
    def over(self) -> bool:
        """Above the limit, and not yet back to ``resume``."""
        return self.over_since is not None

    @property
    def held(self) -> int:
        """How many connections wait for the budget (their own buffers are low)."""
        return len(self._held)

    def add(self, size: int, loop: Loop | None) -> None:
        """``size`` more bytes are buffered (``loop``: whose clock dates an overrun)."""
        self.total += size
        if self.over_since is None and self.total > self.limit:
            self.over_since = loop.time() if loop is not None else 0.0
            if self.on_over is not None:
                self.on_over()

    def remove(self, size: int, loop: Loop | None) -> None:
        """``size`` bytes left the buffers (sent, or dropped by a close)."""
        self.total -= size
        if self.over_since is not None and self.total <= self.resume:
            self.over_since = None
            if self._held and not self._waking and loop is not None:
                self._waking = True
                loop.call_soon(self._wake)

    def hold(self, conn: Connection) -> None:
        """``conn`` drained to low water while over: it waits for the budget."""
        self._held.add(conn)

    def let_go(self, conn: Connection) -> None:
        """``conn`` no longer waits (its buffer emptied, or it closed)."""
        self._held.discard(conn)

    def _wake(self) -> None:
        """Under again: the connections held for the budget may go on (until it is over
        again: the rest then wait on)."""
        self._waking = False
        held = self._held
        while held and self.over_since is None:
            held.pop()._budget_released()

    def __repr__(self) -> str:
        state = "over" if self.over else "under"
        return f"<OutputBudget {self.total}/{self.limit} {state} held={len(self._held)}>"


def shed(budget: OutputBudget, connections: Iterable[Connection]) -> tuple[int, int]:
    """Abort congested connections, the slowest readers first, until ``budget`` is back to
    its resume mark; returns how many were closed and how many were congested.

    The slowest readers are those whose output has been congested the longest: a peer
    that reads keeps draining to low water (which ends congestion), one that does not
    stays congested from the moment it fell behind. Among equals, the one holding the
    most goes first. Aborting drops their buffered output at once (no error is reported
    for each: the caller logs one line for all).
    """
    congested = [c for c in connections if c.congested and c.buffered]
    congested.sort(key=lambda c: (c.congested_at, -c.buffered))
    closed = 0
    for conn in congested:
        if budget.total <= budget.resume:
            break
        conn.abort()
        closed += 1
    return closed, len(congested)
