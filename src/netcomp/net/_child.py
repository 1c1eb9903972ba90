"""A worker process of a supervisor: it builds the user's tree and runs it.

Rules (docs/architecture.md, "Processes"):
* A worker is a fresh interpreter (``python -c BOOT FD``), never a fork: it inherits one
  end of its link to the supervisor and nothing else, reads its configuration from it,
  imports the factory (``module:attr``) and builds its own tree.
* Every stream server the tree makes gets its listening socket from the supervisor
  (:mod:`._listeners`), so the factory is the same code with and without workers.
* The :class:`Agent`, added to the tree, says ``ready`` once the loop runs, beats every
  ``heartbeat`` seconds from the loop (a blocked loop misses its beats, and the supervisor
  kills it), counts ``request`` events when ``max_requests`` is set (and asks to be
  replaced when it reaches it), and stops the tree when the supervisor is gone.
* A factory that fails is reported to the supervisor (what failed, in one line) and
  logged with its traceback here; the worker then exits non-zero.
* SIGUSR1 prints every thread's traceback (``faulthandler``): the supervisor sends it to
  a worker it is about to kill for a blocked loop, so the log says where it was stuck.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import selectors
import signal
import socket
import sys
from typing import Any

from ..core import BaseComponent, Manager, TimerHandle, Watch, configure_logging, handler
from ._address import SocketOptions, host_port
from ._control import Channel, LinkDown
from ._factory import build, describe_factory
from ._listeners import set_listener_source
from ._server import Server

__all__ = ["BOOT", "Agent", "RequestCounter", "SupervisorListeners", "listening", "main"]

log = logging.getLogger("netcomp")

#: The command a worker runs: ``python -c BOOT FD``.
BOOT = "import sys; from netcomp.net._child import main; sys.exit(main(sys.argv[1:]))"
#: Seconds a worker waits for its configuration, and for the reply to a listen request.
REPLY_TIMEOUT = 30.0


class SupervisorListeners:
    """The worker's listener source: asks the supervisor for each listening socket."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._seen: dict[tuple[Any, ...], int] = {}

    def __call__(
        self, bind: Any, family: socket.AddressFamily, backlog: int, options: SocketOptions
    ) -> socket.socket:
        key = (int(family), repr(bind))
        seq = self._seen[key] = self._seen.get(key, -1) + 1
        request = {
            "op": "listen",
            "family": int(family),
            "bind": list(bind) if isinstance(bind, tuple) else bind,
            "backlog": backlog,
            "options": [
                [level, name, value if isinstance(value, int) else {"hex": value.hex()}]
                for level, name, value in options
            ],
            "seq": seq,
        }
        reply = self.channel.request(request, REPLY_TIMEOUT)
        fds = self.channel.take_fds()
        if not reply.get("ok") or len(fds) != 1:
            for fd in fds:
                socket.socket(fileno=fd).close()
            error = reply.get("error") or "the supervisor sent no socket"
            kind = {"ValueError": ValueError, "TypeError": TypeError}.get(reply.get("type", ""))
            if kind is not None:
                raise kind(error)
            errno = reply.get("errno")
            raise OSError(errno, error) if errno else OSError(error)
        return socket.socket(fileno=fds[0])


class Agent(BaseComponent):
    """The supervisor's agent in a worker's tree: readiness, heartbeats, the link."""

    channel = "netcomp.worker"

    def __init__(self, link: Channel, heartbeat: float) -> None:
        """``link``: the channel to the supervisor; ``heartbeat``: seconds between beats."""
        super().__init__(channel=self.channel)
        self.link = link
        self.heartbeat = heartbeat
        self._timer: TimerHandle | None = None
        self._watch: Watch | None = None

    @handler("started", channel="*")
    def _on_started(self, manager: Any) -> None:
        self._watch = self.loop.watch(self.link.sock, selectors.EVENT_READ, self._on_link)
        self.send(
            {
                "op": "ready",
                "listening": listening(self.root),
                "stop_timeout": self.root.stop_timeout,
            }
        )
        self._timer = self.loop.call_later(self.heartbeat, self._beat)

    def _beat(self) -> None:
        self._timer = None
        if self.send({"op": "beat"}):
            self._timer = self.loop.call_later(self.heartbeat, self._beat)

    @handler(False)
    def send(self, message: dict[str, Any]) -> bool:
        """Send ``message`` to the supervisor; False (and the tree stops) if it is gone."""
        try:
            self.link.send(message)
        except LinkDown as error:
            self._orphaned(str(error))
            return False
        return True

    def _on_link(self, mask: int) -> None:
        try:
            messages = self.link.receive()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            messages = None
        if messages is None:
            self._orphaned("its end of the link closed")

    def _orphaned(self, why: str) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if not self.loop.stopping:
            log.warning("worker: the supervisor has gone (%s): stopping", why)
            self.root.stop()

    def loop_ended(self) -> None:
        """The worker's loop is over: stop beating, close the link."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        self.link.close()


class RequestCounter(BaseComponent):
    """Counts ``request`` events; at ``limit`` asks the supervisor for a replacement."""

    channel = "netcomp.worker"

    def __init__(self, agent: Agent, limit: int) -> None:
        """``agent``: who tells the supervisor; ``limit``: requests before retiring."""
        super().__init__(channel=self.channel)
        self.agent = agent
        self.limit = limit
        self.count = 0

    @handler("request", channel="*", priority=100)
    def _on_request(self, *args: Any, **kwargs: Any) -> None:
        self.count += 1
        if self.count == self.limit:
            log.info("worker: %d requests answered (max_requests): replace me", self.count)
            self.agent.send({"op": "retire", "requests": self.count})


def listening(root: Manager) -> list[str]:
    """Where the stream servers of ``root``'s tree listen: their URL when they have one
    (web servers), else ``host:port`` or the UNIX path."""
    found = []
    for node in root.walk():
        if isinstance(node, Server):
            url = getattr(node, "url", None)
            found.append(url if isinstance(url, str) else _where(node.bind))
    return found


def _where(bind: Any) -> str:
    bind = host_port(bind)
    if isinstance(bind, tuple):
        host = f"[{bind[0]}]" if ":" in str(bind[0]) else bind[0]
        return f"{host}:{bind[1]}"
    return str(bind)


def main(argv: list[str]) -> int:
    """A worker process: read the configuration, build the tree, run it; the exit status."""
    channel = Channel(socket.socket(fileno=int(argv[0])))
    channel.sock.set_inheritable(False)
    try:
        config = channel.request({"op": "hello"}, REPLY_TIMEOUT)
    except LinkDown as error:
        print(f"netcomp worker: no configuration from the supervisor: {error}", file=sys.stderr)
        return 1
    sys.path[:] = config["path"]
    if config.get("log_level"):
        configure_logging(config["log_level"], pid=True)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    set_listener_source(SupervisorListeners(channel))
    root = _build_or_report(config, channel)
    if isinstance(root, int):
        return root
    agent = Agent(channel, config["heartbeat"])
    agent.register(root)
    if config.get("max_requests"):
        RequestCounter(agent, config["max_requests"]).register(root)
    if config.get("stop_timeout") is not None:
        root.stop_timeout = config["stop_timeout"]
    try:
        code = root.run()
    except KeyboardInterrupt:
        return 130
    return code if isinstance(code, int) else 1


def _build_or_report(config: dict[str, Any], channel: Channel) -> Manager | int:
    """The tree, or the exit status after the failure was logged and reported."""
    name = describe_factory(config["factory"])
    try:
        return build(config)
    except SystemExit as exit_:  # a factory that exits says why itself
        code = exit_.code
        if isinstance(code, str):
            print(code, file=sys.stderr)
        status = code if isinstance(code, int) and code else 1
        reason = code if isinstance(code, str) else f"{name} exited with status {code}"
    except Exception as error:
        log.error("worker: %s failed", name, exc_info=True)
        status = 1
        reason = f"{name} failed: {type(error).__name__}: {error}"
    with contextlib.suppress(LinkDown):
        channel.send({"op": "failed", "error": reason, "status": status})
    return status
