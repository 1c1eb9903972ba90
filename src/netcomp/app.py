"""netcomp.app: components for applications: :class:`Daemon` (circuits' ``circuits.app``).

A ``Daemon`` in a tree turns the process into a daemon when the tree's loop starts (or at
once, when it joins a tree whose loop runs): it forks twice, so that the process is
detached from its parent and its terminal and can never get one back, starts a session,
changes directory, sets the file mode mask, points standard input, output and error at
``/dev/null`` (or at the files it is given), writes the pid file and fires
``daemonized(daemon)``. The original process exits with status 0 at the first fork, as
the command that started a daemon expects.

It never closes descriptors other than the standard ones: the loop's selector and
wake-up, and the tree's sockets, carry on in the daemon. Forking while other threads run
is refused (the child could deadlock on a lock one of them held): daemonize before any
thread starts.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from typing import Any

from .core import BaseComponent, Event, handler

__all__ = ["Daemon", "daemonize", "daemonized", "deletepid", "writepid"]


class daemonize(Event):
    """``daemonize()``: turn the process into a daemon now (a :class:`Daemon` fires it)."""


class daemonized(Event):
    """``daemonized(daemon)``: this process is now the daemon (the pid file is written)."""

    notification = True


class writepid(Event):
    """``writepid()``: write this process's id to the :class:`Daemon`'s pid file."""


class deletepid(Event):
    """``deletepid()``: remove the :class:`Daemon`'s pid file."""


def _absolute(path: str | os.PathLike[str] | None, default: str) -> str:
    return default if path is None else os.path.abspath(os.fspath(path))


class Daemon(BaseComponent):
    """Turns the process into a daemon when the tree's loop starts.

    ``pidfile``: where to write the daemon's process id (a relative path is taken from
    the directory the program started in). ``path``: the directory to change to (``/``,
    so that the daemon holds no mount point busy). ``stdin``, ``stdout``, ``stderr``:
    files for the standard streams (default ``/dev/null``; output files are appended
    to). ``umask``: the file mode mask to set (default ``0o022``; circuits sets 0, which
    makes the files a daemon creates writable by everyone).

    Events on its channel (``"daemon"``): ``daemonize()``, ``writepid()`` and
    ``deletepid()`` in, ``daemonized(daemon)`` out. The pid file stays when the daemon
    exits, as in circuits: fire ``deletepid()`` to remove it.
    """

    channel = "daemon"

    def __init__(
        self,
        pidfile: str | os.PathLike[str],
        path: str | os.PathLike[str] = "/",
        stdin: str | os.PathLike[str] | None = None,
        stdout: str | os.PathLike[str] | None = None,
        stderr: str | os.PathLike[str] | None = None,
        umask: int = 0o022,
        channel: Any = "daemon",
    ) -> None:
        """See the class docstring."""
        if not hasattr(os, "fork") or not hasattr(os, "setsid"):
            raise RuntimeError("Daemon needs os.fork() and os.setsid() (a POSIX system)")
        super().__init__(channel=channel)
        self.pidfile = _absolute(pidfile, "")
        self.path = _absolute(path, "/")
        self.stdin = _absolute(stdin, os.devnull)
        self.stdout = _absolute(stdout, os.devnull)
        self.stderr = _absolute(stderr, os.devnull)
        self.umask = umask
        #: Whether this process is the daemon now.
        self.daemonized = False
        self._requested = False

    def _request(self) -> None:
        if not self._requested:  # once: started and registered may both ask
            self._requested = True
            self.fire(daemonize())

    @handler("started", channel="*")
    def _on_started(self, manager: Any) -> None:
        self._request()

    @handler("registered", channel="*")
    def _on_registered(self, component: Any, manager: Any) -> None:
        if component is self and self.loop.running:
            self._request()

    @handler("daemonize")
    def _on_daemonize(self) -> None:
        if self.daemonized:
            return  # a process becomes a daemon once
        others = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
        if others:
            raise RuntimeError(
                "a Daemon forks, and forking while other threads run is unsafe "
                f"(running: {', '.join(others)}); daemonize before any thread starts"
            )
        sys.stdout.flush()
        sys.stderr.flush()
        if os.fork() > 0:
            os._exit(0)  # the process that started the daemon: done, status 0
        os.setsid()  # a new session, without a controlling terminal
        if os.fork() > 0:
            os._exit(0)  # the session leader: the daemon can never get a terminal back
        os.chdir(self.path)
        os.umask(self.umask)
        self._redirect()
        self.daemonized = True
        self.fire(writepid())
        self.fire(daemonized(self))

    def _redirect(self) -> None:
        for stream, path, mode in (
            (sys.stdin, self.stdin, os.O_RDONLY),
            (sys.stdout, self.stdout, os.O_WRONLY | os.O_APPEND | os.O_CREAT),
            (sys.stderr, self.stderr, os.O_WRONLY | os.O_APPEND | os.O_CREAT),
        ):
            fd = os.open(path, mode, 0o644)
            try:
                os.dup2(fd, stream.fileno())
            finally:
                os.close(fd)

    @handler("writepid")
    def _on_writepid(self) -> None:
        # Written whole or not at all: a reader never sees a partial pid.
        directory = os.path.dirname(self.pidfile)
        fd, tmp = tempfile.mkstemp(prefix=".pid-", dir=directory)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(f"{os.getpid()}\n")
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.pidfile)
        except BaseException:
            os.unlink(tmp)
            raise

    @handler("deletepid")
    def _on_deletepid(self) -> None:
        os.remove(self.pidfile)

    def __repr__(self) -> str:
        state = "daemonized" if self.daemonized else "not daemonized"
        return f"<Daemon/{self.channel} {self.pidfile} {state}>"
