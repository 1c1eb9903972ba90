"""The Inspector: a live page of a running program, on its own netcomp.web server.

Rules (docs/tools.md, "The inspector"):
* Off unless a program mounts it: ``Inspector().register(server)`` under a
  ``netcomp.web`` server. It refuses (``InspectorRefused``, at ``register``) a server
  bound to anything but a loopback address or a UNIX socket unless
  ``allow_remote=True``, and answers 403 to a peer that is not local under the same rule.
* With ``token``, every request and WebSocket must carry it (``?token=``, or
  ``Authorization: Bearer``, or ``X-Netcomp-Token``); it is compared in constant time
  (``hmac.compare_digest``). Without it: 401 (a WebSocket: 403).
* Under ``path`` (default ``/_netcomp``): the page (``/``), ``/api/graph`` and
  ``/api/stats`` (JSON, ``"version": 1``, documented in docs/tools.md), ``/metrics``
  (Prometheus text), and ``/live``, a WebSocket: the page says ``hello`` and gets
  ``{"type": "full", "graph", "stats"}``, then ``{"type": "stats"}`` every ``interval``
  seconds and ``{"type": "graph"}`` when the tree changed. GET and HEAD only.
* While mounted it observes the loop (``EventCounters``): the loop runs its observed
  dispatch, with the cost docs/tools.md gives. Its tick (every ``interval`` s) measures
  the loop's lag: how late the tick ran.
"""

from __future__ import annotations

import hmac
import importlib.resources
import ipaddress
import json
from typing import Any

from ..core import BaseComponent, Event, Manager, NetcompError, TimerHandle, handler
from ..web import BaseServer, Request, Response, WebSocketsDispatcher
from ._graph import graph
from ._stats import EventCounters, Rates, prometheus, snapshot

__all__ = ["Inspector", "InspectorRefused", "is_local"]

_NO_STORE = [
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
]


class InspectorRefused(NetcompError, PermissionError):
    """The inspector will not serve where it was asked to (a non-local bind)."""


def is_local(address: Any) -> bool:
    """Whether ``address`` (a bind or a peer: ``(host, port)``, a UNIX path, ``None``) is
    on this machine only: a loopback address, ``localhost``, or a UNIX socket."""
    if not isinstance(address, tuple):
        return True  # a UNIX socket (a path, or an unnamed peer)
    host = str(address[0]).split("%", 1)[0]
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def _page() -> bytes:
    return importlib.resources.files(__package__).joinpath("inspector.html").read_bytes()


class Inspector(BaseComponent):
    """A live inspector page of this program, mounted on a web server (see the rules).

    ``path``: where it answers (default ``/_netcomp``); ``token``: a secret every request
    must carry; ``allow_remote``: serve a non-local bind and non-local peers;
    ``interval``: seconds between live updates (and lag measurements).
    """

    channel: Any = "netcomp.inspector"

    def __init__(
        self,
        path: str = "/_netcomp",
        *,
        token: str | None = None,
        allow_remote: bool = False,
        interval: float = 1.0,
        channel: Any = "netcomp.inspector",
    ) -> None:
        """See the class docstring."""
        super().__init__(channel=channel)
        if not isinstance(path, str) or not path.startswith("/") or path.endswith("/"):
            raise ValueError(f"path must start with '/' and not end with one, got {path!r}")
        if token is not None and (not isinstance(token, str) or not token):
            raise ValueError("token must be a non-empty string (or None)")
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self.path = path
        self.token = token
        self.allow_remote = bool(allow_remote)
        self.interval = float(interval)
        self.counters = EventCounters()
        self.rates = Rates()
        self.lag = 0.0
        self.lag_max = 0.0
        self.server: BaseServer | None = None
        self.live: WebSocketsDispatcher | None = None
        self._tick_handle: TimerHandle | None = None
        self._graph_changed = False
        self._observed: Any = None

    # ---------------------------------------------------------------- mounting
    def register(self, parent: Manager) -> Manager:
        """Mount on ``parent``, a netcomp.web server (or a component under one).
        ``InspectorRefused`` for a non-local bind without ``allow_remote``."""
        server = parent
        while server is not None and not isinstance(server, BaseServer):
            server = server.parent  # type: ignore[assignment]
        if server is None:
            raise TypeError(
                f"mount the Inspector on a netcomp.web server (Inspector().register(server)), "
                f"not {parent!r}"
            )
        if not self.allow_remote and not is_local(server.bind):
            raise InspectorRefused(
                f"the inspector shows a program's insides; {server!r} listens on "
                f"{server.bind!r}, which is not a loopback address: bind the server to "
                "127.0.0.1 (or ::1), or pass allow_remote=True (and a token)"
            )
        if self.server is None:
            self.server = server
            self.add_handler(self._on_request, "request", channel=server.channel, priority=2)
            live = WebSocketsDispatcher(
                f"{self.path}/live", channel=f"{self.channel}.live", web_channel=server.channel
            )
            self.live = live
            self.add_handler(self._on_live_connect, "connect", channel=live.channel)
            self.add_handler(self._on_live_read, "read", channel=live.channel)
            live.register(self)
        elif server.channel != self.server.channel:
            raise ValueError("an Inspector serves one web channel: make another one")
        return super().register(parent)

    def loop_changed(self) -> None:
        """Count the events of the tree it joined (and stop counting the old one's)."""
        if self._observed is not None and self._observed is not self.loop:
            self._observed.unobserve(self.counters)
        self._observed = self.loop
        self.loop.observe(self.counters)
        if self.loop.running:
            self._arm()

    @handler("started", channel="*")
    def _on_started(self, manager: Any) -> None:
        self.loop.observe(self.counters)  # again, if the loop ran and ended before
        self._observed = self.loop
        self._arm()

    @handler("registered", "unregistered", channel="*")
    def _on_tree_change(self, component: Any, manager: Any) -> None:
        self._graph_changed = True

    def loop_ended(self) -> None:
        """Stop ticking and counting: a loop that has ended costs nothing more."""
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None
        if self._observed is not None:
            self._observed.unobserve(self.counters)
            self._observed = None

    # -------------------------------------------------------------------- tick
    def _arm(self) -> None:
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        due = self.loop.time() + self.interval
        self._tick_handle = self.loop.call_at(due, self._tick, due)

    def _tick(self, due: float) -> None:
        now = self.loop.time()
        self.lag = max(now - due, 0.0)
        self.lag_max = max(self.lag_max, self.lag)
        self.rates.update(self.counters, now)
        self._tick_handle = None
        live = self.live
        if live is not None and live.sockets:
            if self._graph_changed:
                self._graph_changed = False
                live.broadcast(self._message("graph"))
            live.broadcast(self._message("stats"))
        if self.parent is not None:
            self._arm()

    # -------------------------------------------------------------------- data
    def graph(self) -> dict[str, Any]:
        """The ``/api/graph`` document: the tree, its handlers and channels."""
        return graph(self.root).to_json()

    def stats(self) -> dict[str, Any]:
        """The ``/api/stats`` document: counters, rates, loop, connections, timers."""
        return snapshot(self.root, self.counters, self.rates, self.lag, self.lag_max)

    def metrics(self) -> str:
        """The ``/metrics`` text (Prometheus' text format)."""
        return prometheus(self.stats())

    def _message(self, kind: str) -> str:
        if kind == "full":
            return json.dumps({"type": "full", "graph": self.graph(), "stats": self.stats()})
        if kind == "graph":
            return json.dumps({"type": "graph", "graph": self.graph()})
        return json.dumps({"type": "stats", "stats": self.stats()})

    # ---------------------------------------------------------------- requests
    def allowed(self, request: Request) -> int:
        """0 if ``request`` may see the inspector, else the status refusing it (403 for
        a peer that is not local, 401 for a missing or wrong token)."""
        if not self.allow_remote and not is_local(request.remote):
            return 403
        if self.token is None:
            return 0
        given = request.query.get("token")
        if not isinstance(given, str):
            auth = request.headers.get("authorization") or ""
            given = auth[7:] if auth.lower().startswith("bearer ") else None
        if given is None:
            given = request.headers.get("x-netcomp-token")
        if given is None:
            return 401
        ok = hmac.compare_digest(given.encode("utf-8"), self.token.encode("utf-8"))
        return 0 if ok else 401

    def _on_request(self, event: Event, request: Request, response: Response) -> Any:
        path = request.path
        base = self.path
        if event.answered or (path != base and not path.startswith(base + "/")):
            return None
        if path == f"{base}/live":
            return None  # the WebSocket's (a plain GET there gets the usual 404)
        status = self.allowed(request)
        if status:
            text = "not a local peer" if status == 403 else "a valid token is needed"
            headers = [*_NO_STORE]
            if status == 401:
                headers.append(("WWW-Authenticate", 'Bearer realm="netcomp inspector"'))
            return Response(f"{status}: {text}\n", status, headers, "text/plain; charset=utf-8")
        if request.method not in ("GET", "HEAD"):
            return Response("GET only\n", 405, [*_NO_STORE, ("Allow", "GET, HEAD")], "text/plain")
        return self._route(path[len(base) :])

    def _route(self, rest: str) -> Response:
        if rest in ("", "/"):
            return Response(_page(), 200, _NO_STORE, "text/html; charset=utf-8")
        if rest == "/api/graph":
            return self._json(self.graph())
        if rest == "/api/stats":
            return self._json(self.stats())
        if rest == "/metrics":
            return Response(
                self.metrics(), 200, _NO_STORE, "text/plain; version=0.0.4; charset=utf-8"
            )
        return Response("not found\n", 404, _NO_STORE, "text/plain; charset=utf-8")

    def _json(self, data: dict[str, Any]) -> Response:
        body = json.dumps(data, indent=1).encode("utf-8")
        return Response(body, 200, _NO_STORE, "application/json")

    # --------------------------------------------------------------- WebSocket
    def _on_live_connect(self, sock: Any, request: Request) -> bool | None:
        return False if self.allowed(request) else None

    def _on_live_read(self, sock: Any, message: str | bytes) -> str | None:
        return self._message("full") if message == "hello" else None

    def __repr__(self) -> str:
        return f"<Inspector {self.path} {'mounted' if self.server else 'unmounted'}>"
