"""A worker process as its supervisor sees it: how it starts, what it says, how it ends.

Rules (docs/architecture.md, "Processes"):
* A worker is started with ``subprocess`` (fork and exec in C: safe while threads run) as
  a fresh interpreter in a session of its own, so a terminal's Ctrl-C reaches the
  supervisor only, which stops the workers once, gracefully. Its only inherited
  descriptor besides stdio is its end of the link.
* Nothing polls: the link and the exit are watched on the supervisor's loop. The exit is
  a pidfd where the OS has one (Linux); elsewhere the supervisor's SIGCHLD handler asks
  each worker :meth:`WorkerProcess.check_exit`.
* Every message counts as a sign of life (``last_seen``). One silent for the heartbeat
  timeout (its loop is blocked) is sent SIGUSR1 (it prints its threads' tracebacks),
  then SIGKILL ``DUMP_GRACE`` seconds later.
* Asked to stop, it is sent SIGTERM (its tree stops gracefully), then SIGKILL if it is
  still there when its budget is spent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import subprocess
import sys
from typing import Any, Protocol

from ..core import Loop, TimerHandle, Watch
from ._child import BOOT
from ._control import Channel

__all__ = ["READY", "STARTING", "STOPPING", "Owner", "WorkerProcess"]

#: A worker's states: booting, serving, asked to stop. Whether it has exited is ``alive``.
STARTING, READY, STOPPING = "starting", "ready", "stopping"
READ = selectors.EVENT_READ
#: Seconds a blocked worker has to print its tracebacks (SIGUSR1) before SIGKILL.
DUMP_GRACE = 0.5

log = logging.getLogger("netcomp")


class Owner(Protocol):
    """What a worker process reports to (the Supervisor)."""

    def worker_said(self, worker: WorkerProcess, message: dict[str, Any]) -> None: ...
    def worker_exited(self, worker: WorkerProcess) -> None: ...


class WorkerProcess:
    """One worker process: ``pid``, ``slot``, ``state``, ``alive`` and the link to it.

    ``config`` is what it is sent when it asks (its factory, arguments, settings).
    """

    def __init__(self, slot: int, config: dict[str, Any], loop: Loop, owner: Owner) -> None:
        self.slot = slot
        self.config = config
        self.state = STARTING
        self.alive = True
        self.loop = loop
        self._owner = owner
        channel, theirs = Channel.pair()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", BOOT, str(theirs.fileno()), f"worker={slot}"],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except BaseException:
            channel.close()
            raise
        finally:
            theirs.close()
        self.pid: int = self.proc.pid
        self.channel = channel
        self.started = self.last_seen = loop.time()
        self.ready_at: float | None = None
        self.listening: list[str] = []
        self.stop_timeout: float | None = None
        #: Why it failed, in its own words (a factory that raised), if it said so.
        self.failure: str | None = None
        #: The worker it is to replace once ready (a rolling restart, max_requests).
        self.replaces: WorkerProcess | None = None
        self.replacement: WorkerProcess | None = None
        self.check_timer: TimerHandle | None = None
        self.kill_timer: TimerHandle | None = None
        self._link: Watch | None = loop.watch(channel.sock, READ, self._readable)
        self._exit: Watch | None = None
        self._pidfd = -1
        if hasattr(os, "pidfd_open"):
            with contextlib.suppress(OSError):  # an old kernel: SIGCHLD tells instead
                self._pidfd = os.pidfd_open(self.pid)
                self._exit = loop.watch(self._pidfd, READ, self._exited)

    @property
    def status(self) -> int | None:
        """The exit status (negative: killed by that signal), None while it runs."""
        return self.proc.returncode

    @property
    def watches_exit(self) -> bool:
        """Whether its exit is watched on the loop (a pidfd), no SIGCHLD needed."""
        return self._exit is not None

    def describe(self) -> str:
        """``worker 2 (pid 4242)``."""
        return f"worker {self.slot} (pid {self.pid})"

    def describe_status(self) -> str:
        """How it ended: ``exit status 3`` or ``killed by SIGKILL``."""
        status = self.status
        if status is None:
            return "still running"
        if status < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-status).name}"
            return f"killed by signal {-status}"
        return f"exit status {status}"

    def send_signal(self, signo: int) -> None:
        """Send ``signo`` unless it has been reaped (then the pid may be another's)."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signo)

    def watch_heartbeat(self, timeout: float) -> None:
        """Kill it (tracebacks first) once it has said nothing for ``timeout`` seconds."""
        silent = self.loop.time() - self.last_seen
        if silent < timeout:
            self.check_timer = self.loop.call_later(
                timeout - silent, self.watch_heartbeat, timeout
            )
            return
        self.check_timer = None
        what = "sent nothing" if self.state == STARTING else "missed its heartbeats"
        self.failure = f"it {what} for {silent:.1f} s (a blocked loop?) and was killed"
        log.error(
            "%s %s for %.1f s (timeout %g s): killing it; its threads' tracebacks follow",
            self.describe(),
            what,
            silent,
            timeout,
        )
        self.send_signal(signal.SIGUSR1)  # faulthandler: where it is stuck, on stderr
        if self.kill_timer is not None:
            self.kill_timer.cancel()
        self.kill_timer = self.loop.call_later(DUMP_GRACE, self.send_signal, signal.SIGKILL)

    def stop(self, budget: float) -> None:
        """Stop gracefully (SIGTERM); SIGKILL if it is still there ``budget`` s later."""
        if not self.alive or self.state == STOPPING:
            return
        self.state = STOPPING
        self.send_signal(signal.SIGTERM)
        if self.kill_timer is None:
            self.kill_timer = self.loop.call_later(budget, self._kill_late, budget)

    def _kill_late(self, budget: float) -> None:
        self.kill_timer = None
        if self.alive:
            log.warning("%s did not stop within %g s: killed", self.describe(), budget)
            self.send_signal(signal.SIGKILL)

    def cancel_timers(self) -> None:
        """Drop the heartbeat check and the kill deadline."""
        for timer in (self.check_timer, self.kill_timer):
            if timer is not None:
                timer.cancel()
        self.check_timer = self.kill_timer = None

    def _readable(self, mask: int) -> None:
        self._read()

    def _read(self) -> bool:
        """Read once and hand the messages over; False when there was nothing to read
        or the link has closed."""
        try:
            messages = self.channel.receive()
        except (BlockingIOError, InterruptedError, TimeoutError):
            return False
        except OSError:
            messages = None
        if messages is None:  # it closed its end: it is exiting
            self._close_link()
            return False
        self.last_seen = self.loop.time()
        for message in messages:
            self._owner.worker_said(self, message)
        return True

    def _exited(self, mask: int) -> None:
        self.check_exit()

    def check_exit(self) -> bool:
        """Reap it if it has exited (then the owner hears ``worker_exited``); whether it has."""
        if not self.alive:
            return True
        if self.proc.poll() is None:
            return False
        self._drain()  # what it said before it exited comes first (a "ready", a "failed")
        self.alive = False
        self.cancel_timers()
        self._close_link()
        if self._exit is not None:
            self._exit.cancel()
            self._exit = None
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1
        self._owner.worker_exited(self)
        return True

    def _drain(self) -> None:
        if self._link is not None:
            self.channel.sock.setblocking(False)
            while self._read():
                pass

    def _close_link(self) -> None:
        if self._link is not None:
            self._link.cancel()
            self._link = None
            self.channel.close()

    def reap(self, timeout: float) -> None:
        """Wait for it to end (at most ``timeout`` s, then SIGKILL): the supervisor's last
        act, off the loop."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.check_exit()

    def __repr__(self) -> str:
        state = self.state if self.alive else self.describe_status()
        return f"<WorkerProcess {self.slot} pid={self.pid} {state}>"
