"""Checks of what users pass to the net components, made at construction: a wrong value is
refused at once, with a message that says what was expected and what was given, instead of
failing later deep inside a connect or a timer."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

__all__ = [
    "count",
    "destinations",
    "host",
    "optional_count",
    "optional_seconds",
    "port",
    "seconds",
]


def seconds(name: str, value: Any) -> float:
    """A duration in seconds: a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


def optional_seconds(name: str, value: Any) -> float | None:
    """A duration in seconds, or ``None`` for "never"."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, got {value!r}")
    return seconds(name, value)


def count(name: str, value: Any, minimum: int = 0) -> int:
    """A whole number >= ``minimum`` (bytes, connections, reads...)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return value


def optional_count(name: str, value: Any, minimum: int = 0) -> int | None:
    """A whole number >= ``minimum``, or ``None`` for "no limit"."""
    return None if value is None else count(name, value, minimum)


def port(value: Any, name: str = "port", allow_zero: bool = False) -> int:
    """A TCP/UDP port: 1 to 65535 (0 too where the kernel is to choose one)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a port number, got {value!r}")
    low = 0 if allow_zero else 1
    if not low <= value <= 65535:
        raise ValueError(f"{name} must be in {low}..65535, got {value!r}")
    return value


def host(owner: str, value: Any) -> Any:
    """A client's default destination: a name, an address or a UNIX path (or ``None``).

    circuits' clients took their *local* bind address as first argument (``Client(1234)``,
    ``Client(("0.0.0.0", 0))``); netcomp's take the host to connect to, so those forms are
    refused here instead of failing at the first connect.
    """
    if value is None or isinstance(value, (str, bytes, os.PathLike)):
        return value
    raise TypeError(
        f"{owner}'s first argument is the host to connect to (a name, an address or a UNIX "
        f"path), got {value!r}; netcomp clients connect from any local address (circuits' "
        "first argument, the local bind address, has no equivalent)"
    )


def destinations(value: Any) -> tuple[tuple[str, int], ...]:
    """Connex's destinations: ``(host, port)`` pairs, at least one."""
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    ):
        raise TypeError(
            f"Connex takes a list of (host, port) destinations, got the single pair "
            f"{value!r}: write [{value!r}]"
        )
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"Connex takes a list of (host, port) destinations, got {value!r}")
    found = []
    for item in value:
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise TypeError(f"a Connex destination is a (host, port) pair, got {item!r}")
        host, number = item
        if not isinstance(host, str) or not host:
            raise TypeError(f"a destination's host is a name or an address, got {host!r}")
        found.append((host, port(number, f"the port of destination {host!r}")))
    if not found:
        raise ValueError("Connex needs at least one (host, port) destination")
    return tuple(found)
