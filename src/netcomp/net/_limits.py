"""Per-connection limits: output water marks, input pausing, the TLS handshake timeout, and
the output budget a connection shares with others."""

from __future__ import annotations

from ._budget import OutputBudget
from ._checks import count, optional_seconds

__all__ = ["ConnectionLimits"]


class ConnectionLimits:
    """Per-connection buffer limits (bytes) and TLS handshake timeout (seconds).

    ``pause_reading``: stop reading while output is above high water. Right for servers
    (a peer that does not read our answers gets no more service, so it cannot make us
    buffer without bound). Clients leave it off: their output is what the application
    chose to send, and pausing their reading could deadlock two ends that both send more
    than they buffer; they pace themselves on ``drained`` instead.

    ``budget``: an :class:`OutputBudget` shared by the connections these limits are given
    to (a server's): their buffered output together stays near its limit. ``None``: each
    connection is bounded by its own high water only.
    """

    __slots__ = ("budget", "handshake_timeout", "high_water", "low_water", "pause_reading")

    def __init__(
        self,
        high_water: int = 1024 * 1024,
        low_water: int = 256 * 1024,
        handshake_timeout: float | None = 30.0,
        pause_reading: bool = True,
        budget: OutputBudget | None = None,
    ) -> None:
        count("high_water", high_water)
        count("low_water", low_water)
        if low_water > high_water:
            raise ValueError(f"need low_water <= high_water, got {low_water}, {high_water}")
        self.high_water = high_water
        self.low_water = low_water
        self.handshake_timeout = optional_seconds("handshake_timeout", handshake_timeout)
        self.pause_reading = pause_reading
        if budget is not None and not isinstance(budget, OutputBudget):
            raise TypeError(f"budget must be an OutputBudget or None, got {budget!r}")
        self.budget = budget
