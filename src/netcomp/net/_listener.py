"""Listening sockets: one :class:`Listener` per bound address of a stream server.

Rules:
* A server owns one or more listeners (``TCPServer([("127.0.0.1", 0), ("::1", 0)])``);
  they share its channel, its connections and its limits. Each listener has its own
  watch on the loop's selector and its own accept backoff.
* Each readiness accepts at most ``max_accepts`` connections, so a flood of connects never
  starves established ones.
* Out of descriptors (EMFILE/ENFILE/ENOBUFS/ENOMEM): stop watching that socket for
  ``accept_backoff`` seconds (no spinning on a readiness we cannot serve), report the
  error once per shortage, keep serving open connections, then accept again.
* A listener knows nothing of connections: it hands each accepted socket to its owner's
  ``accept`` callback, chosen once by the server (with a peer filter or without), so a
  server with no ``allow``/``deny`` list pays nothing for the feature.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ._address import host_port
from ._connection import READ

if TYPE_CHECKING:
    from ..core import Loop, TimerHandle

__all__ = ["Listener", "ListenerOwner"]

_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_SKIP = {errno.ECONNABORTED, errno.EPROTO, errno.EPERM}


def _acceptor(listener: socket.socket) -> Callable[[], tuple[socket.socket, Any]]:
    """``listener.accept()`` without its per-call cost: ``socket.accept`` reads the
    listener's ``family`` and ``type`` properties (each an enum conversion in Python) for
    every connection; here they are read once. Where the socket type has no ``_accept``
    (not CPython's socket module), the plain ``accept``."""
    raw_accept = getattr(listener, "_accept", None)
    if raw_accept is None:  # pragma: no cover - CPython and PyPy both have it
        return listener.accept
    family, kind, proto = int(listener.family), int(listener.type), listener.proto
    make = socket.socket

    def accept() -> tuple[socket.socket, Any]:
        fd, address = raw_accept()
        return make(family, kind, proto, fd), address

    return accept


class ListenerOwner(Protocol):
    """What a :class:`Listener` needs of its server."""

    max_accepts: int
    accept_backoff: float
    loop: Loop

    def accept_failed(self, listener: Listener, err: OSError) -> None: ...


class Listener:
    """One bound, listening, non-blocking socket and its watch.

    ``accept(sock, address, listener)`` is called for each accepted connection.
    """

    __slots__ = (
        "_accept",
        "_listening",
        "_starved",
        "_timer",
        "_watch",
        "accept",
        "bind",
        "family",
        "owner",
        "owns_path",
        "sock",
    )

    def __init__(
        self,
        owner: ListenerOwner,
        sock: socket.socket,
        loop: Loop,
        accept: Callable[[socket.socket, Any, Listener], None],
        *,
        owns_path: bool = True,
    ) -> None:
        sock.setblocking(False)
        #: Whether closing removes a UNIX socket's path (not a supervisor's socket's).
        self.owns_path = owns_path
        self.owner = owner
        self.sock = sock
        self.family = sock.family
        #: The bound address: ``(host, port)`` (IPv6 too), or the UNIX path.
        self.bind: Any = host_port(sock.getsockname())
        self.accept = accept
        self._accept = _acceptor(sock)
        self._timer: TimerHandle | None = None
        self._starved = False  # out of descriptors, error already reported
        self._listening = True
        self._watch = loop.watch(sock, READ, self._on_acceptable)

    def move(self, loop: Loop) -> None:
        """The server's tree changed loops: carry the watch along."""
        self._watch.move(loop)

    def _on_acceptable(self, mask: int) -> None:
        accept_one = self._accept
        accept = self.accept
        for _ in range(self.owner.max_accepts):
            try:
                sock, address = accept_one()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:
                if err.errno in _OUT_OF_RESOURCES:
                    self._pause(err)
                    return
                if err.errno in _SKIP:
                    continue
                self.owner.accept_failed(self, err)
                return
            self._starved = False
            accept(sock, address, self)

    def _pause(self, err: OSError) -> None:
        self._watch.modify(0)
        if not self._starved:  # once per shortage, not once per retry
            self._starved = True
            self.owner.accept_failed(self, err)
        assert self._timer is None
        self._timer = self.owner.loop.call_later(self.owner.accept_backoff, self._resume)

    def _resume(self) -> None:
        self._timer = None
        if self._listening:
            self._watch.modify(READ)

    def close(self) -> None:
        """Stop listening and close the socket (a UNIX path is removed)."""
        if not self._listening:
            return
        self._listening = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._watch.cancel()
        self.sock.close()
        if (
            self.owns_path
            and self.family == socket.AF_UNIX
            and isinstance(self.bind, str)
            and self.bind
        ):
            with contextlib.suppress(OSError):
                os.unlink(self.bind)

    def __repr__(self) -> str:
        state = "listening" if self._listening else "closed"
        return f"<Listener {self.bind!r} {state}>"
