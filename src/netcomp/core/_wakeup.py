"""A file descriptor that another thread can make readable, to wake a sleeping loop.

Linux gets an ``eventfd`` (one descriptor, one syscall per wake); elsewhere a socketpair.
Writes are idempotent: many wakes between two drains cost one wake-up.
"""

from __future__ import annotations

import os
import socket

__all__ = ["Wakeup"]


class Wakeup:
    """Wake-up descriptor: ``wake()`` from any thread, ``drain()`` on the waiting thread.

    The waiting thread watches :meth:`fileno` for readability (in a selector, beside its
    sockets); any thread calls :meth:`wake` to make it readable; the waiting thread calls
    :meth:`drain` once woken. :meth:`close` releases it (a later ``wake`` does nothing).
    """

    __slots__ = ("_rfd", "_rsock", "_wfd", "_wsock")

    def __init__(self) -> None:
        self._rsock: socket.socket | None = None
        self._wsock: socket.socket | None = None
        if hasattr(os, "eventfd"):
            fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._rfd = self._wfd = fd
        else:  # pragma: no cover - non-Linux
            self._rsock, self._wsock = socket.socketpair()
            self._rsock.setblocking(False)
            self._wsock.setblocking(False)
            self._rfd = self._rsock.fileno()
            self._wfd = self._wsock.fileno()

    def fileno(self) -> int:
        """The descriptor to watch for readability."""
        return self._rfd

    def wake(self) -> None:
        """Make the descriptor readable. Safe from any thread; never blocks; a no-op
        once closed."""
        try:
            if self._wsock is None:
                if self._wfd < 0:
                    return  # closed
                os.eventfd_write(self._wfd, 1)
            else:  # pragma: no cover - non-Linux
                self._wsock.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already readable (full) or closing: the loop will wake either way

    def drain(self) -> None:
        """Consume pending wakes so the descriptor stops being readable."""
        try:
            if self._rsock is None:
                if self._rfd < 0:
                    return  # closed
                os.eventfd_read(self._rfd)
            else:  # pragma: no cover - non-Linux
                while self._rsock.recv(4096):
                    pass
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        """Release the descriptor(s)."""
        if self._rsock is None:
            if self._rfd >= 0:
                os.close(self._rfd)
                self._rfd = self._wfd = -1
        else:  # pragma: no cover - non-Linux
            self._rsock.close()
            assert self._wsock is not None
            self._wsock.close()
