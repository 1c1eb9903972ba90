"""A file sent on a plain stream socket with ``os.sendfile``: the kernel copies it, Python
never sees its bytes. It goes after the bytes the connection had buffered before it."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

__all__ = ["FileSend"]


class FileSend:
    """``count`` bytes of descriptor ``fd`` from ``offset``, to send once the first
    ``ahead`` bytes of the connection's output buffer are out; ``done(error)`` when over."""

    __slots__ = ("ahead", "count", "done", "fd", "offset")

    def __init__(
        self,
        fd: int,
        offset: int,
        count: int,
        done: Callable[[BaseException | None], Any],
        ahead: int,
    ) -> None:
        self.fd = fd
        self.offset = offset
        self.count = count
        self.done = done
        self.ahead = ahead

    def advance(self, sock: socket.socket, out: bytearray) -> bool:
        """Send what the socket takes now (the buffered bytes ahead first); True once the
        whole file is out. Raises what the socket raises (``BlockingIOError``: later), and
        ``EOFError`` if the file is shorter than promised."""
        if self.ahead:
            sent = sock.send(memoryview(out)[: self.ahead])
            del out[:sent]
            self.ahead -= sent
            if self.ahead:
                return False
        sent = os.sendfile(sock.fileno(), self.fd, self.offset, self.count)
        if sent == 0:
            raise EOFError(f"file ended {self.count} bytes early")
        self.offset += sent
        self.count -= sent
        return not self.count
