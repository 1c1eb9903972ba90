"""Handler registry of a tree's root: which handlers an event meets, in which order.

Rules (docs/architecture.md, "Dispatch"):
* A handler matches an event fired on channel ``c`` when ``c`` is ``"*"``, when the
  handler's channel (its own, else its component's) is ``"*"`` or equals ``c``, or when ``c``
  is the handler's component itself (firing at an instance targets it).
* A handler runs once per event, however many of the event's channels it matches.
* Order: descending priority, ties in registration order (a counter per root).
The list for a ``(name, channels)`` pair is computed once and cached until a handler is
added or removed anywhere in the tree, together with the plain tuple of callables when no
handler takes the Event itself (the dispatcher's fastest loop).

Handlers may be added and removed from any thread while the loop dispatches: changes are
made under a lock and bump a generation number, and a lookup caches what it computed only
if no change happened meanwhile. Reading the cache (the hot path) takes no lock.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["HandlerEntry", "Plan", "Registry"]


class HandlerEntry:
    """One bound handler as the registry sees it."""

    __slots__ = ("channel", "component", "fn", "names", "order", "pass_event", "priority")

    def __init__(
        self,
        names: tuple[str, ...],
        fn: Callable[..., Any],
        component: Any,
        channel: Any,
        priority: float,
        pass_event: bool,
    ) -> None:
        self.names = names
        self.fn = fn
        self.component = component
        self.channel = channel
        self.priority = priority
        self.pass_event = pass_event
        self.order = 0

    def effective_channel(self) -> Any:
        """The handler's own channel, else its component's."""
        if self.channel is not None:
            return self.channel
        return getattr(self.component, "channel", "*")

    def __repr__(self) -> str:
        fn = self.fn
        qualname = getattr(getattr(fn, "__func__", fn), "__qualname__", repr(fn))
        return f"<handler {qualname} names={self.names} channel={self.effective_channel()!r}>"


Plan = tuple[
    tuple[HandlerEntry, ...],
    "tuple[Callable[..., Any], ...] | None",
    bool,
    "Callable[..., Any] | None",
]
"""What an event meets: its handler entries, their callables when all are plain, whether
one of them takes the event by name (catch-all ``"*"`` handlers do not), and the callable
when it is the only one and plain (dispatch's shortest path)."""


class Registry:
    """Entries by event name, with a cache of the ordered handler tuple per (name, channels).

    The cache is two dicts deep (``cache[name][channels]``): looking a plan up builds no
    key tuple, and a channels tuple that is the same object each time (``fire()`` reuses
    them) is found by identity.
    """

    __slots__ = ("_by_name", "_generation", "_lock", "_order", "cache")

    def __init__(self) -> None:
        self._by_name: dict[str, list[HandlerEntry]] = {}
        self._order = itertools.count(1)
        self._lock = threading.Lock()
        self._generation = 0
        self.cache: dict[str, dict[tuple[Hashable, ...], Plan]] = {}

    def _changed(self) -> None:
        self._generation += 1
        self.cache.clear()

    def add(self, entry: HandlerEntry) -> None:
        """Add ``entry``; it sorts after every entry already here at its priority."""
        with self._lock:
            entry.order = next(self._order)
            for name in entry.names:
                self._by_name.setdefault(name, []).append(entry)
            self._changed()

    def remove(self, entry: HandlerEntry, names: tuple[str, ...] = ()) -> None:
        """Remove ``entry`` if present; with ``names``, only for those event names (it
        keeps its place for the others)."""
        with self._lock:
            drop = entry.names if not names else tuple(n for n in entry.names if n in names)
            for name in drop:
                entries = self._by_name.get(name)
                if entries and entry in entries:
                    entries.remove(entry)
                    if not entries:
                        del self._by_name[name]
            if names:
                entry.names = tuple(n for n in entry.names if n not in drop)
            self._changed()

    def entries(self) -> list[HandlerEntry]:
        """Every entry, each once, in registration order."""
        seen: dict[int, HandlerEntry] = {}
        with self._lock:
            for entries in self._by_name.values():
                for entry in entries:
                    seen[id(entry)] = entry
        return sorted(seen.values(), key=lambda e: e.order)

    def has(self, name: str) -> bool:
        """Whether any handler listens for ``name`` specifically (not via ``"*"``)."""
        return name in self._by_name

    def lookup(self, name: str, channels: tuple[Hashable, ...]) -> Plan:
        """The handlers an event ``name`` fired on ``channels`` meets, in dispatch order,
        their callables when none of them takes the Event (else ``None``), and whether one
        of them handles ``name`` by name."""
        try:
            return self.cache[name][channels]
        except KeyError:
            pass
        generation = self._generation
        candidates = list(self._by_name.get(name, ()))
        if name != "*":
            candidates += self._by_name.get("*", ())
        matched = []
        for entry in candidates:
            hchannel = entry.effective_channel()
            component = entry.component
            for channel in channels:
                if (
                    channel is component
                    or channel == "*"
                    or hchannel == "*"
                    or channel == hchannel
                ):
                    matched.append(entry)
                    break
        matched.sort(key=lambda e: (-e.priority, e.order))
        handlers = tuple(matched)
        fns = None if any(e.pass_event for e in handlers) else tuple(e.fn for e in handlers)
        named = any(name in e.names for e in handlers)
        single = fns[0] if fns is not None and len(fns) == 1 else None
        plan = (handlers, fns, named, single)
        with self._lock:
            if generation == self._generation:  # else a change raced this lookup
                self.cache.setdefault(name, {})[channels] = plan
        return plan
