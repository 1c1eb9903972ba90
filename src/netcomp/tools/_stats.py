"""What the inspector measures: event counters (a loop observer) and a snapshot of a tree.

Rules (docs/tools.md, "The inspector"):
* :class:`EventCounters` counts dispatched events by name and handler errors; it runs on
  the loop thread only (``fired`` does nothing), so it needs no lock. Its memory is one
  integer per event name (names are few: they are code, not data).
* :func:`snapshot` reads a tree through public names only: the loop's ``stats()`` and
  ``scheduled()``, net servers' ``connections`` and ``connection(sock)``, Connex's
  ``state``. It is called on the loop thread.
* The JSON shapes are stable (``"version": 1``): fields may be added, never renamed or
  removed without a new version. :func:`prometheus` renders the counters and gauges in
  Prometheus' text format 0.0.4.
"""

from __future__ import annotations

import time
from typing import Any

from ..core import Event, Manager
from ..net import Connex
from ..net import Server as StreamServer

__all__ = ["MAX_TIMERS", "EventCounters", "Rates", "prometheus", "snapshot"]

#: Timers listed in a snapshot (soonest first); ``timers_total`` counts them all.
MAX_TIMERS = 100


class EventCounters:
    """A loop observer counting dispatched events by name, and handler errors."""

    def __init__(self) -> None:
        self.by_name: dict[str, int] = {}
        self.total = 0
        self.errors = 0

    def fired(self, source: Any, event: Event) -> None:
        """Observer: nothing to count here."""

    def dispatching(self, event: Event, handlers: tuple[Any, ...]) -> None:
        """Observer: count ``event``."""
        name = event.name
        self.by_name[name] = self.by_name.get(name, 0) + 1
        self.total += 1

    def running(self, event: Event, entry: Any) -> None:
        """Observer: nothing to count here."""

    def ran(self, event: Event, entry: Any, seconds: float, error: BaseException | None) -> None:
        """Observer: count a handler error (not an error that is an answer, such as
        web's ``HTTPError``: its class says ``report = False``)."""
        if error is not None and getattr(error, "report", True) is not False:
            self.errors += 1

    def dispatched(self, event: Event) -> None:
        """Observer: nothing to count here."""


class Rates:
    """Events per second by name, from two readings of :class:`EventCounters`."""

    def __init__(self) -> None:
        self.per_second: dict[str, float] = {}
        self._last: dict[str, int] = {}
        self._when: float | None = None

    def update(self, counters: EventCounters, now: float) -> None:
        """Take a reading at ``now`` (seconds): rates since the previous one."""
        current = dict(counters.by_name)
        if self._when is not None and now > self._when:
            span = now - self._when
            self.per_second = {
                name: (count - self._last.get(name, 0)) / span for name, count in current.items()
            }
        self._last = current
        self._when = now


def _address(value: Any) -> str:
    if isinstance(value, tuple) and len(value) >= 2:
        host = str(value[0])
        return f"[{host}]:{value[1]}" if ":" in host else f"{host}:{value[1]}"
    return str(value) if value else ""


def _labels(root: Manager) -> dict[int, tuple[str, str]]:
    """Each member's (id, label) as :func:`netcomp.tools.graph` numbers them."""
    counts: dict[str, int] = {}
    out: dict[int, tuple[str, str]] = {}
    for number, member in enumerate(root.walk(), 1):
        base = type(member).__name__
        counts[base] = counts.get(base, 0) + 1
        out[id(member)] = (f"c{number}", base if counts[base] == 1 else f"{base}#{counts[base]}")
    return out


def _server(server: StreamServer, ident: tuple[str, str]) -> dict[str, Any]:
    connections = []
    for sock in server.connections:
        conn = server.connection(sock)
        if conn is None:
            continue
        connections.append(
            {
                "peer": _address(conn.peer),
                "state": conn.state.value,
                "received": conn.received,
                "sent": conn.sent,
                "buffered": conn.buffered,
                "tls": conn.tls,
            }
        )
    return {
        "component": ident[0],
        "label": ident[1],
        "bind": _address(server.bind),
        "connections": connections,
    }


def _connex(connex: Connex, ident: tuple[str, str]) -> dict[str, Any]:
    return {
        "component": ident[0],
        "label": ident[1],
        "state": connex.state,
        "connected": connex.connected,
        "enabled": connex.enabled,
        "queued": connex.queued,
        "destinations": [_address(d) for d in connex.destinations],
    }


def _callback_name(callback: Any) -> str:
    owner = getattr(callback, "__self__", None)
    name = getattr(callback, "__qualname__", None) or getattr(callback, "__name__", None)
    if name is None:
        return type(callback).__name__
    if owner is not None and "." not in name:
        return f"{type(owner).__name__}.{name}"
    return str(name)


def snapshot(
    root: Manager, counters: EventCounters, rates: Rates, lag: float, lag_max: float
) -> dict[str, Any]:
    """The state of ``root``'s tree now, as the inspector serves it (docs/tools.md)."""
    loop = root.loop
    now = loop.time()
    idents = _labels(root)
    members = list(root.walk())
    timers = loop.scheduled()
    stats = loop.stats()
    return {
        "version": 1,
        "time": time.time(),
        "components": len(members),
        "loop": {
            "queued": stats["queued"],
            "callbacks": stats["callbacks"],
            "timers": stats["timers"],
            "watched": stats["watched"],
            "passes": stats["passes"],
            "lag": lag,
            "lag_max": lag_max,
        },
        "events": {
            "total": counters.total,
            "errors": counters.errors,
            "by_name": {
                name: {"total": count, "rate": round(rates.per_second.get(name, 0.0), 3)}
                for name, count in sorted(counters.by_name.items())
            },
        },
        "servers": [_server(m, idents[id(m)]) for m in members if isinstance(m, StreamServer)],
        "connex": [_connex(m, idents[id(m)]) for m in members if isinstance(m, Connex)],
        "timers": [
            {"in": round(h.when - now, 6), "callback": _callback_name(h.callback)}
            for h in timers[:MAX_TIMERS]
        ],
        "timers_total": len(timers),
    }


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus(data: dict[str, Any]) -> str:
    """A :func:`snapshot` in Prometheus' text exposition format."""
    out: list[str] = []

    def metric(name: str, kind: str, text: str, samples: list[tuple[str, Any]]) -> None:
        out.append(f"# HELP {name} {text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(f"{name}{labels} {value}" for labels, value in samples)

    events = data["events"]
    metric(
        "netcomp_events_total",
        "counter",
        "Events dispatched, by event name.",
        [(f'{{event="{_escape(n)}"}}', v["total"]) for n, v in events["by_name"].items()],
    )
    metric(
        "netcomp_handler_errors_total",
        "counter",
        "Handler calls that raised.",
        [("", events["errors"])],
    )
    loop = data["loop"]
    metric("netcomp_loop_passes_total", "counter", "Loop passes made.", [("", loop["passes"])])
    for key, text in (
        ("queued", "Events queued now."),
        ("callbacks", "Callbacks waiting to run."),
        ("timers", "Live timers."),
        ("watched", "Descriptors watched."),
    ):
        metric(f"netcomp_loop_{key}", "gauge", text, [("", loop[key])])
    metric(
        "netcomp_loop_lag_seconds",
        "gauge",
        "How late the inspector's last tick ran.",
        [("", loop["lag"])],
    )
    metric(
        "netcomp_server_connections",
        "gauge",
        "Open connections, by server.",
        [
            (
                f'{{server="{_escape(s["label"])}",bind="{_escape(s["bind"])}"}}',
                len(s["connections"]),
            )
            for s in data["servers"]
        ],
    )
    metric(
        "netcomp_connex_connected",
        "gauge",
        "1 while a Connex is connected.",
        [(f'{{connex="{_escape(c["label"])}"}}', int(c["connected"])) for c in data["connex"]],
    )
    return "\n".join(out) + "\n"
