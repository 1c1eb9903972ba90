"""The link between a supervisor and one of its worker processes.

Rules (docs/architecture.md, "Processes"):
* One UNIX socketpair per worker: the supervisor keeps one end, the worker inherits the
  other (and nothing else of the supervisor's). ``SOCK_SEQPACKET`` where the OS has it, so
  a message is sent whole or not at all; a byte stream elsewhere.
* Messages are small JSON objects, one per line. A listening socket travels with its
  reply as an ``SCM_RIGHTS`` descriptor.
* Each end learns that the other is gone from its own end: end of file (the worker has
  exited, or the supervisor has). A send that cannot complete within ``SEND_TIMEOUT``
  (the other side stopped reading) counts as the link being down.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from ..core import NetcompError

__all__ = ["Channel", "LinkDown"]

#: The longest message (the worker's configuration is the biggest: sys.path, arguments).
MAX_MESSAGE = 256 * 1024
#: Seconds a send may wait for room (a peer that does not read for that long is stuck).
SEND_TIMEOUT = 2.0


class LinkDown(NetcompError, ConnectionError):
    """The other end of a supervisor-worker link has gone (or stopped reading)."""


class Channel:
    """One end of a supervisor-worker link: JSON lines, plus descriptors with a line."""

    __slots__ = ("_buffer", "_fds", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.settimeout(SEND_TIMEOUT)
        self._buffer = b""
        self._fds: list[int] = []

    @classmethod
    def pair(cls) -> tuple[Channel, socket.socket]:
        """A new link: this side's channel, and the socket the worker is to inherit."""
        kind = getattr(socket, "SOCK_SEQPACKET", socket.SOCK_STREAM)
        try:
            mine, theirs = socket.socketpair(socket.AF_UNIX, kind)
        except OSError:  # pragma: no cover - an OS without SEQPACKET on UNIX sockets
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return cls(mine), theirs

    def fileno(self) -> int:
        """The socket's descriptor (-1 once closed)."""
        return self.sock.fileno()

    def send(self, message: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
        """Send one message (with ``fds``); raises :class:`LinkDown` if it cannot."""
        data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        if len(data) > MAX_MESSAGE:
            raise LinkDown(f"a message of {len(data)} bytes is too long for the link")
        try:
            if fds:
                sent = socket.send_fds(self.sock, [data], list(fds))
                if sent < len(data):
                    self.sock.sendall(data[sent:])
            else:
                self.sock.sendall(data)
        except OSError as error:  # timeout, reset, closed
            raise LinkDown(f"cannot send to the other process: {error}") from None

    def receive(self) -> list[dict[str, Any]] | None:
        """What one read brings: the complete messages (maybe none), or None at end of
        file. Raises ``BlockingIOError``/``TimeoutError`` when nothing can be read yet."""
        data, fds, _flags, _address = socket.recv_fds(self.sock, MAX_MESSAGE, 4)
        self._fds.extend(fds)
        if not data:
            return None
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        messages = []
        for line in lines:
            try:
                message = json.loads(line)
            except ValueError:
                raise LinkDown(f"garbled message on the link: {line[:80]!r}") from None
            if isinstance(message, dict):
                messages.append(message)
        return messages

    def take_fds(self) -> list[int]:
        """The descriptors received so far (the caller owns them now)."""
        fds, self._fds = self._fds, []
        return fds

    def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send ``message`` and wait (at most ``timeout`` s) for the one reply; the worker
        side, before or between loop passes. Descriptors that came with it: ``take_fds``."""
        previous = self.sock.gettimeout()
        self.send(message)
        self.sock.settimeout(timeout)
        try:
            while True:
                messages = self.receive()
                if messages is None:
                    raise LinkDown("the supervisor has gone")
                if messages:
                    return messages[0]
        except OSError as error:
            if isinstance(error, LinkDown):
                raise
            raise LinkDown(f"no reply from the supervisor: {error}") from None
        finally:
            self.sock.settimeout(previous)

    def close(self) -> None:
        """Close this end, and any descriptor received and not taken."""
        for fd in self.take_fds():
            socket.socket(fileno=fd).close()
        self.sock.close()
