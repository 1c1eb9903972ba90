"""How each bridged channel travels: :class:`Broadcast` (pub/sub) or :class:`WorkQueue`
(a stream read by a consumer group). Checked when made, with the reason."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Broadcast", "WorkQueue"]


def _check_name(what: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{what} must be a non-empty str, got {value!r}")


def _check_seconds(what: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a finite number of seconds > 0, got {value!r}")


def _check_count(what: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a whole number >= 1, got {value!r}")


@dataclass(frozen=True)
class Broadcast:
    """Every process subscribed to ``channel`` gets each event (Redis pub/sub).

    Fast, and at most once: an event published while a subscriber's link is down is lost
    for that subscriber (pub/sub keeps nothing). ``key`` is the Redis channel (default
    ``"<prefix>:<channel>"``); put a ``{hash tag}`` in it for Redis Cluster.
    """

    channel: str
    key: str | None = None

    def __post_init__(self) -> None:
        _check_name("Broadcast channel", self.channel)
        if self.key is not None:
            _check_name("Broadcast key", self.key)


@dataclass(frozen=True)
class WorkQueue:
    """Each event on ``channel`` is handled by exactly one member of ``group`` (a Redis
    stream and consumer group): at least once, nothing lost when a worker dies.

    ``consume``: this process handles the channel's events (a worker); a process that only
    sends leaves it false. An entry is acknowledged (``XACK``) once its handlers finished
    without error. One that stays unacknowledged ``idle_timeout`` seconds (its worker died,
    or its handler failed) is claimed by a member (``XAUTOCLAIM``, every ``claim_interval``
    seconds) and handled again; one delivered more than ``max_deliveries`` times goes to the
    dead-letter stream ``dead_letter`` (default ``"<key>:dead"``) instead. ``prefetch``:
    entries a worker takes at once. ``key``: the stream (default ``"<prefix>:<channel>"``).
    A handler that may run longer than ``idle_timeout`` is kept claimed while it runs.
    """

    channel: str
    group: str = "workers"
    consume: bool = False
    key: str | None = None
    idle_timeout: float = 30.0
    claim_interval: float | None = None
    max_deliveries: int = 5
    prefetch: int = 256
    dead_letter: str | None = None

    def __post_init__(self) -> None:
        _check_name("WorkQueue channel", self.channel)
        _check_name("WorkQueue group", self.group)
        for what in ("key", "dead_letter"):
            value = getattr(self, what)
            if value is not None:
                _check_name(f"WorkQueue {what}", value)
        _check_seconds("idle_timeout", self.idle_timeout)
        if self.claim_interval is not None:
            _check_seconds("claim_interval", self.claim_interval)
        _check_count("max_deliveries", self.max_deliveries)
        _check_count("prefetch", self.prefetch)

    @property
    def every(self) -> float:
        """Seconds between two claims of idle entries (default: half ``idle_timeout``)."""
        return self.claim_interval if self.claim_interval is not None else self.idle_timeout / 2
