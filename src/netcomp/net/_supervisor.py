"""The Supervisor: one component tree run in N worker processes sharing its listeners.

Rules (docs/architecture.md, "Processes"):
* Each worker is a fresh interpreter that builds its own tree with the factory
  (``module:attr``); the supervisor never forks, so it is safe whatever threads run.
  The first worker starts alone, the others once it is ready: an application that
  cannot start fails once, not N times.
* The supervisor makes every listening socket and keeps it (:mod:`._listeners`); workers
  accept on it. A worker that dies leaves its queued connections to the next one.
* Its own tree runs on a netcomp Loop: workers' links, exits (pidfd, else SIGCHLD),
  heartbeat deadlines and restart backoff are watches and timers. Nothing polls.
* A worker that dies unasked is replaced: at once the first time, then after a backoff
  that doubles up to ``max_backoff``; ``max_failures`` in a row (a worker that served
  ``max_backoff`` seconds clears the count) and the supervisor gives up: it logs why,
  stops the others and exits 1. If no worker has ever started, the first failure is
  final (retrying the same code cannot help), with that worker's exit status.
* A worker silent for ``timeout`` seconds (no heartbeat: its loop is blocked) is sent
  SIGUSR1 (it prints its threads' tracebacks), then SIGKILL, and replaced.
* SIGTERM/SIGINT: every worker is sent SIGTERM and stops gracefully (its own
  ``stop_timeout``); one still there ``KILL_GRACE`` seconds later is killed. Then the
  supervisor exits 0. SIGHUP (or :meth:`Supervisor.restart`): a rolling restart, one
  worker at a time, each new one ready before the old one stops; ``restarted`` fires
  once every old worker has exited. A replacement that cannot start leaves the old
  worker serving.
* ``max_requests``: a worker that has answered that many ``request`` events (plus a
  random jitter) is replaced the same way.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from ..core import BaseComponent, Event, Future, Manager, TimerHandle, handler
from ._checks import count, seconds
from ._control import LinkDown
from ._factory import factory_spec, worker_config
from ._listeners import SharedListeners
from ._processes import READY, STARTING, STOPPING, WorkerProcess

__all__ = ["Supervisor", "restarted", "serving"]

log = logging.getLogger("netcomp")

#: Seconds past a worker's own ``stop_timeout`` before a worker that is stopping is killed.
KILL_GRACE = 1.0
_LEVELS = ("debug", "info", "warning", "error")


class serving(Event):
    """``serving(supervisor)``: every first worker is ready; ``supervisor.listening``
    says where they listen (fired once)."""


class restarted(Event):
    """``restarted(supervisor)``: a rolling restart is done: every worker serving when
    it began was replaced and has exited (one abandoned is logged instead)."""


class _Slot:
    """One place for a worker: its consecutive failures and pending restart."""

    __slots__ = ("failures", "index", "timer")

    def __init__(self, index: int) -> None:
        self.index = index
        self.failures = 0
        self.timer: TimerHandle | None = None


class Supervisor(BaseComponent):
    """Run the tree ``factory`` builds in ``workers`` processes that share its listeners.

    >>> Supervisor("myapp:build", workers=4).run()   # doctest: +SKIP

    ``factory``: ``"module:attr"`` (or a module-level function) naming a component tree
    or a callable that returns one, called in each worker with ``args`` and ``kwargs``
    (JSON values). Each worker has its own tree, so state in it is that worker's; state
    shared by the workers (or by machines) belongs in a broker, not here.
    ``reuse_port``: one SO_REUSEPORT socket per worker (None: where the kernel balances
    them, Linux). ``timeout``: seconds of silence after which a worker is killed.
    ``max_requests`` (0: never), ``max_requests_jitter``: a worker that has answered
    that many ``request`` events (netcomp.web fires one per HTTP request; not
    ``HTTPLimits.max_requests``, which bounds requests in progress) is replaced.
    ``stop_timeout``: the workers' graceful stop (None: their tree's own). ``backoff``,
    ``max_backoff``, ``max_failures``: restarts of a worker that keeps dying.
    ``log_level``: the workers call ``configure_logging(log_level, pid=True)``.
    """

    channel = "supervisor"

    def __init__(
        self,
        factory: str | Callable[..., Any],
        workers: int = 1,
        *,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        reuse_port: bool | None = None,
        timeout: float = 30.0,
        max_requests: int = 0,
        max_requests_jitter: int = 0,
        stop_timeout: float | None = None,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        max_failures: int = 5,
        log_level: str | None = None,
        channel: Any = "supervisor",
    ) -> None:
        """Checks every option (nothing starts before ``run()``)."""
        super().__init__(channel=channel)
        self.factory = factory_spec(factory)
        self.workers = count("workers", workers, 1)
        self.timeout = seconds("timeout", timeout)
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.max_requests = count("max_requests", max_requests)
        self.max_requests_jitter = count("max_requests_jitter", max_requests_jitter)
        self.worker_stop_timeout = (
            None if stop_timeout is None else seconds("stop_timeout", stop_timeout)
        )
        self.backoff = seconds("backoff", backoff)
        self.max_backoff = max(self.backoff, seconds("max_backoff", max_backoff))
        self.max_failures = count("max_failures", max_failures, 1)
        if log_level is not None and log_level not in _LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(_LEVELS)}, not {log_level!r}")
        self.log_level = log_level
        self._base = worker_config(
            self.factory, args, kwargs, self.timeout, self.worker_stop_timeout, log_level
        )
        #: Why the supervisor gave up, if it did.
        self.failure: str | None = None
        #: Where the workers listen (their servers' URLs or addresses), once one is ready.
        self.listening: list[str] = []
        self._listeners = SharedListeners(reuse_port)
        self._slots = [_Slot(i) for i in range(self.workers)]
        self._procs: list[WorkerProcess] = []
        self._ever_ready = self._serving = self._stopping = False
        self._all_exited: Future | None = None
        self._roll: deque[int] = deque()
        self._rolling: int | None = None
        #: Workers a rolling restart replaced that have not exited yet; ``restarted``
        #: fires once the restart has gone through every slot and this is empty.
        self._roll_old: set[WorkerProcess] = set()
        self._roll_finishing = False
        self._saved_signals: dict[int, Any] = {}
        self.stop_timeout = self._worker_budget() + 1.0

    # ------------------------------------------------------------- public
    @property
    def pids(self) -> list[int]:
        """The pids of the worker processes alive now, but those asked to stop."""
        return [w.pid for w in self._procs if w.state != STOPPING]

    @property
    def reuse_port(self) -> bool:
        """Whether each worker has a SO_REUSEPORT socket of its own (else one is shared)."""
        return self._listeners.reuse_port

    def restart(self) -> None:
        """Replace every worker, one at a time, each new one ready before the old one
        stops (what SIGHUP does); ``restarted`` fires when the old ones have all exited.
        Safe from any thread."""
        if not self.loop.on_loop_thread():
            self.loop.call_soon_threadsafe(self.restart)
            return
        if self._stopping:
            return
        log.info("rolling restart: replacing %d worker(s) one at a time", len(self._slots))
        self._roll = deque(range(len(self._slots)))
        if self._rolling is None:
            self._roll_next()

    # -------------------------------------------------------- lifecycle
    @handler("started", channel="*")
    def _on_started(self, manager: Any) -> None:
        self._install_signals()
        self._spawn(self._slots[0])  # the others once it is ready: a broken app fails once

    @handler("stopped", channel="*")
    def _on_stopped(self, manager: Any) -> Future | None:
        self._stopping = True
        for slot in self._slots:
            if slot.timer is not None:
                slot.timer.cancel()
                slot.timer = None
        self._roll.clear()
        self._rolling = None
        self._roll_finishing = False
        if self._procs:
            log.info("stopping %d worker(s)", len(self._procs))
        for worker in list(self._procs):
            self._stop_worker(worker)
        if not self._procs:
            self._listeners.close()
            return None
        self._all_exited = Future()
        return self._all_exited

    def loop_ended(self) -> None:
        """The supervisor's loop is over: kill and reap any worker left (a forced exit),
        close the listeners, give the signals back."""
        for worker in list(self._procs):
            worker.send_signal(signal.SIGKILL)
        for worker in list(self._procs):
            worker.reap(KILL_GRACE)
        self._listeners.close()
        for signo, previous in self._saved_signals.items():
            signal.signal(signo, previous)
        self._saved_signals.clear()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            if not hasattr(os, "pidfd_open"):
                raise RuntimeError("without pidfds a Supervisor runs in the main thread")
            return
        self._saved_signals[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_sighup)
        self._saved_signals[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, self._on_sigchld)

    def _on_sighup(self, signo: int, frame: Any) -> None:
        self.loop.call_soon_threadsafe(self.restart)

    def _on_sigchld(self, signo: int, frame: Any) -> None:
        self.loop.call_soon_threadsafe(self._reap_unwatched)

    def _reap_unwatched(self) -> None:
        for worker in list(self._procs):
            if not worker.watches_exit:
                worker.check_exit()

    # ---------------------------------------------------------- workers
    def _spawn(self, slot: _Slot, replaces: WorkerProcess | None = None) -> None:
        slot.timer = None
        if self._stopping or self.failure is not None:
            return
        config = dict(self._base, slot=slot.index, max_requests=self._request_limit())
        try:
            worker = WorkerProcess(slot.index, config, self.loop, self)
        except OSError as error:
            self._give_up(f"cannot start a worker process: {error}")
            return
        self._procs.append(worker)
        worker.watch_heartbeat(self.timeout)
        if replaces is not None and replaces.alive and replaces.state == READY:
            worker.replaces, replaces.replacement = replaces, worker
        log.debug("%s started", worker.describe())

    def _request_limit(self) -> int:
        if not self.max_requests:
            return 0
        return self.max_requests + random.randint(0, self.max_requests_jitter)

    def worker_said(self, worker: WorkerProcess, message: dict[str, Any]) -> None:
        """Owner hook: ``worker`` sent ``message`` (it is alive)."""
        op = message.get("op")
        if op == "hello":
            self._reply(worker, worker.config)
        elif op == "listen":
            self._hand_listener(worker, message)
        elif op == "ready":
            self._on_ready(worker, message)
        elif op == "retire":
            self._on_retire(worker, message)
        elif op == "failed":
            worker.failure = str(message.get("error"))

    def _reply(
        self, worker: WorkerProcess, message: dict[str, Any], fds: tuple[int, ...] = ()
    ) -> None:
        try:
            worker.channel.send(message, fds)
        except LinkDown as error:  # it is exiting: its exit is what counts
            log.debug("%s: %s", worker.describe(), error)

    def _hand_listener(self, worker: WorkerProcess, message: dict[str, Any]) -> None:
        reply, sock = self._listeners.answer(worker.slot, message)
        self._reply(worker, reply, () if sock is None else (sock.fileno(),))

    def _on_ready(self, worker: WorkerProcess, message: dict[str, Any]) -> None:
        if worker.state != STARTING:
            return
        worker.state = READY
        worker.ready_at = self.loop.time()
        worker.listening = [str(where) for where in message.get("listening", ())]
        timeout = message.get("stop_timeout")
        worker.stop_timeout = float(timeout) if isinstance(timeout, (int, float)) else None
        self.stop_timeout = max(self.stop_timeout, self._worker_budget(worker) + 1.0)
        log.info("%s ready", worker.describe())
        if not self._ever_ready:
            self._ever_ready = True
            for slot in self._slots[1:]:
                self._spawn(slot)
        old, worker.replaces = worker.replaces, None
        if old is not None:
            old.replacement = None
            self._stop_worker(old)
        if self._rolling == worker.slot:
            if old is not None:
                self._roll_old.add(old)
            self._roll_next()
        if not self._serving and all(self._serving_in(slot) for slot in self._slots):
            self._serving = True
            self.listening = worker.listening
            self.fire(serving(self))

    def _serving_in(self, slot: _Slot) -> bool:
        return any(w.slot == slot.index and w.state == READY for w in self._procs)

    def _on_retire(self, worker: WorkerProcess, message: dict[str, Any]) -> None:
        if self._stopping or worker.state != READY or worker.replacement is not None:
            return
        log.info(
            "%s answered %s requests (max_requests): replacing it",
            worker.describe(),
            message.get("requests"),
        )
        self._spawn(self._slots[worker.slot], replaces=worker)

    def _stop_worker(self, worker: WorkerProcess) -> None:
        worker.stop(self._worker_budget(worker))

    def _worker_budget(self, worker: WorkerProcess | None = None) -> float:
        """Seconds a stopping worker gets before SIGKILL."""
        timeout = worker.stop_timeout if worker is not None else None
        if timeout is None:
            timeout = self.worker_stop_timeout
        return (Manager.stop_timeout if timeout is None else timeout) + KILL_GRACE

    def worker_exited(self, worker: WorkerProcess) -> None:
        """Owner hook: ``worker`` has ended (reaped)."""
        self._procs.remove(worker)
        if not (self._stopping or worker.state == STOPPING):
            self._failed(worker)
            return
        log.info("%s stopped (%s)", worker.describe(), worker.failure or worker.describe_status())
        if self._stopping and not self._procs and self._all_exited is not None:
            self._listeners.close()
            self._all_exited.set_result(None)
        if worker in self._roll_old:
            self._roll_old.discard(worker)
            self._roll_done()

    # ---------------------------------------------------------- failures
    def _failed(self, worker: WorkerProcess) -> None:
        slot = self._slots[worker.slot]
        why = worker.failure or worker.describe_status()
        if not self._ever_ready:
            status = worker.status if worker.status is not None and worker.status > 0 else 1
            self._give_up(f"{worker.describe()} could not start: {why}; giving up", status)
            return
        ready_at = worker.ready_at
        if ready_at is not None and self.loop.time() - ready_at >= self.max_backoff:
            slot.failures = 0
        slot.failures += 1
        old = worker.replaces if worker.replaces is not None and worker.replaces.alive else None
        if old is not None:
            old.replacement = None
        if slot.failures >= self.max_failures:
            self._too_many(worker, slot, why, old)
            return
        new = worker.replacement
        if new is not None and new.alive:
            new.replaces = None  # it takes the slot over as it is
            log.warning("%s ended (%s); %s takes over", worker.describe(), why, new.describe())
            return
        delay = 0.0 if slot.failures == 1 else self.backoff * 2 ** (slot.failures - 2)
        delay = min(delay, self.max_backoff)
        when = "now" if not delay else f"in {delay:g} s"
        log.warning("%s ended (%s); starting another %s", worker.describe(), why, when)
        slot.timer = self.loop.call_later(delay, self._spawn, slot, old)

    def _too_many(
        self, worker: WorkerProcess, slot: _Slot, why: str, old: WorkerProcess | None
    ) -> None:
        if old is not None:  # a replacement that cannot start: keep the one that works
            log.error(
                "%s: %d failed starts in a row (last: %s); %s keeps serving (the rolling "
                "restart, if any, is abandoned)",
                worker.describe(),
                slot.failures,
                why,
                old.describe(),
            )
            slot.failures = 0
            self._roll.clear()
            if self._rolling == slot.index:
                self._rolling = None
                self._roll_finishing = False
            return
        self._give_up(
            f"worker {slot.index} failed {slot.failures} times in a row (last: {worker.describe()}"
            f", {why}); giving up"
        )

    def _give_up(self, message: str, code: int = 1) -> None:
        if self.failure is not None:
            return
        self.failure = message
        log.error("%s", message)
        self.stop(code)

    # ---------------------------------------------------------- rolling
    def _roll_next(self) -> None:
        while self._roll:
            index = self._roll.popleft()
            current = [w for w in self._procs if w.slot == index and w.state == READY]
            if len(current) != 1 or current[0].replacement is not None:
                continue  # restarting or being replaced already: its next worker is new
            self._rolling = index
            self._roll_finishing = False  # a restart asked again: done when this one is
            self._spawn(self._slots[index], replaces=current[0])
            return
        self._rolling = None
        self._roll_finishing = True
        self._roll_done()

    def _roll_done(self) -> None:
        """``restarted`` once the last slot is replaced and the old workers have exited."""
        if self._roll_finishing and not self._roll_old and not self._stopping:
            self._roll_finishing = False
            log.info("rolling restart done")
            self.fire(restarted(self))

    def __repr__(self) -> str:
        where = self.factory.get("module") or self.factory.get("path")
        factory = f"{where}:{self.factory['attr']}"
        return f"<Supervisor {factory} workers={self.workers} pids={self.pids}>"
