"""How a request head or body is arriving, and when it has taken too long: :class:`Progress`.

Rules (each bound is off when its limit is ``None``):
* A whole-duration limit (``head_timeout``): from the first byte.
* A silence limit (``body_timeout``): from the last byte received.
* A minimum rate (``head_min_rate``, ``body_min_rate``, as Apache's ``mod_reqtimeout``):
  after ``min_rate_grace`` seconds, the bytes received must keep up with the rate; by
  ``t`` seconds after the first byte, ``(t - grace) * rate`` of them. A peer that sends
  one byte now and then, which no silence limit catches, falls behind and is cut.
* Time the server itself holds the input (its handler has not taken what it has) does
  not count: :meth:`Progress.pause` and :meth:`Progress.resume` move the clock's origin.
"""

from __future__ import annotations

__all__ = ["Progress"]


class Progress:
    """One request head or body on its way in (times are loop times, in seconds)."""

    __slots__ = ("grace", "last", "limit", "paused_at", "rate", "received", "silence", "start")

    def __init__(
        self,
        now: float,
        limit: float | None = None,
        silence: float | None = None,
        rate: int | None = None,
        grace: float = 0.0,
    ) -> None:
        self.start = now
        self.last = now
        self.received = 0
        self.limit = limit
        self.silence = silence
        self.rate = rate
        self.grace = grace
        self.paused_at: float | None = None  # the server holds the input since then

    @staticmethod
    def wanted(limit: float | None, silence: float | None, rate: int | None) -> bool:
        """Whether any bound is on (else there is nothing to track)."""
        return limit is not None or silence is not None or rate is not None

    def got(self, size: int, now: float) -> None:
        """``size`` more bytes arrived at ``now`` (0: bytes that do not count, such as a
        body's framing, still end a silence)."""
        self.received += size
        self.last = now

    def due(self) -> tuple[float, str]:
        """When the first bound runs out, and what to say then (``inf`` while paused or
        with no bound)."""
        if self.paused_at is not None:
            return float("inf"), ""
        when, why = float("inf"), ""
        if self.limit is not None:
            when, why = self.start + self.limit, "timed out"
        if self.silence is not None and self.last + self.silence < when:
            when, why = self.last + self.silence, "timed out"
        if self.rate is not None:
            behind = self.start + self.grace + self.received / self.rate
            if behind < when:
                when, why = behind, f"too slow (under {self.rate} bytes/s)"
        return when, why

    def pause(self, now: float) -> None:
        """The server stops reading (for its own reasons): the clock stops."""
        if self.paused_at is None:
            self.paused_at = now

    def resume(self, now: float) -> None:
        """The server reads again: the time it held the input does not count."""
        if self.paused_at is not None:
            self.start += now - self.paused_at
            self.paused_at = None
            self.last = now
