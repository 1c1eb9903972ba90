"""The broker's events and errors.

Out of a :class:`RedisClient`: ``linked(client)`` (logged in, its session commands
answered), ``unlinked(client)`` (the link is gone; commands wait for the next one),
``error(err)``. Out of a :class:`RedisBridge`: ``bridged(bridge)`` (every link it needs is
up: after the start and after each recovery), ``error(err)``. An ``error`` nobody handles
by name is logged on ``netcomp.broker`` at WARNING, once, saying what and where.
"""

from __future__ import annotations

from typing import Any

from ..core import Event, NetcompError

__all__ = ["RemoteError", "WireError", "bridged", "error", "linked", "unlinked"]


class linked(Event):
    """Out: ``linked(client)``: the client is logged in and its session is set up."""

    notification = True


class unlinked(Event):
    """Out: ``unlinked(client)``: the client's link is gone; it reconnects by itself."""

    notification = True


class bridged(Event):
    """Out: ``bridged(bridge)``: every Redis link the bridge needs is up (again)."""

    notification = True


class error(Event):
    """Out: ``error(err)``: something failed that no caller waits for (a payload that
    cannot be read, an event class nobody registered, a full queue, an error reply)."""

    notification = True
    unhandled_logger = "netcomp.broker"

    def describe(self) -> str:
        """``error on 'channel': ERROR``."""
        err: Any = self.args[0] if self.args else None
        channels = ", ".join(repr(c) for c in self.channels)
        return f"error on {channels}: {err!r}" if err is not None else f"error on {channels}"


class WireError(NetcompError, ValueError):
    """A message from Redis that cannot become an event: not our format, an unknown event
    class, arguments its class refuses. ``payload`` is the raw message (bytes)."""

    def __init__(self, reason: str, payload: bytes = b"") -> None:
        shown = f" (payload {payload[:80]!r}{'...' if len(payload) > 80 else ''})"
        super().__init__(f"{reason}{shown if payload else ''}")
        self.reason = reason
        self.payload = payload


class RemoteError(NetcompError, RuntimeError):
    """A remote handler raised an error of a class this process did not register.

    ``type_name`` is the class's qualified name there, ``message`` its text, ``origin`` the
    process that answered.
    """

    def __init__(self, type_name: str, message: str, origin: str = "") -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message
        self.origin = origin
