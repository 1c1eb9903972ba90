"""A WSGI response body on its way from a worker thread to the connection: :class:`Pipe`,
and ``wsgi.file_wrapper``: :class:`FileWrapper`.

Rules:
* The worker thread :meth:`~Pipe.put` s each chunk; the loop thread takes what was put
  in one batch (one ``call_soon_threadsafe`` per batch, not per chunk) and writes it to
  the response. The first batch also sends the head (status and fields from
  ``start_response``), so the client sees the first chunk as soon as it exists.
* Backpressure: ``put`` blocks the worker while the connection is above its high water
  mark (until ``drained``), or while ``LIMIT`` bytes wait for the loop. A slow reader
  costs the connection's high water plus ``LIMIT``, and holds a worker thread (the pool
  size bounds how many such responses run at once; others wait for a thread).
* A client that leaves (or a loop that stops) makes ``put`` raise :class:`Gone` on the
  worker, so the application's iterable is closed there, as PEP 3333 wants.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..core import Future, Loop
from ._response import Response

__all__ = ["LIMIT", "FileWrapper", "Gone", "Pipe"]

#: The most body bytes put by the worker and not yet taken by the loop.
LIMIT = 64 * 1024
#: Seconds between checks that the loop still runs, while a worker waits for room.
_RECHECK = 0.5


class Gone(Exception):
    """The client left (or the server stopped): stop producing the body."""


class Pipe:
    """One response body, put by a worker thread and written by the loop thread."""

    def __init__(self, loop: Loop, response: Response, start: Callable[[], None]) -> None:
        self.loop = loop
        self.response = response
        self.start = start  # sets the response's status and fields (loop thread, once)
        self.started = False  # the first batch was taken: the head is out
        self.cond = threading.Condition()
        self.queued: list[bytes] = []
        self.size = 0  # bytes queued
        self.scheduled = False  # a take() is on its way to the loop
        self.room = True  # the connection is below high water (as the loop last saw)
        self.gone = False

    # ------------------------------------------------------------ worker side
    def put(self, chunk: bytes) -> None:
        """Queue ``chunk`` for the loop; wait first while there is no room."""
        loop = self.loop
        with self.cond:
            while not self.gone and (not self.room or self.size >= LIMIT):
                if not self.cond.wait(_RECHECK) and not loop.running:
                    self.gone = True
            if self.gone:
                raise Gone("the client went away")
            self.queued.append(chunk)
            self.size += len(chunk)
            if self.scheduled:
                return
            self.scheduled = True
        loop.call_soon_threadsafe(self.take)

    # -------------------------------------------------------------- loop side
    def take(self) -> None:
        """Write what was put (the head first, the first time)."""
        with self.cond:
            parts, self.queued = self.queued, []
            self.size = 0
            self.scheduled = False
        if not self.started:
            self.started = True
            self.start()
        response = self.response
        try:
            response.write(parts[0] if len(parts) == 1 else b"".join(parts))
        except (ConnectionError, RuntimeError):  # gone, or answered for it (a timeout)
            self._stop()
            return
        room = response.flush()
        if not room.done():
            with self.cond:
                self.room = False
            room.add_done_callback(self._room)
        with self.cond:
            self.cond.notify_all()

    def _room(self, _future: Future) -> None:
        with self.cond:
            self.room = True
            self.cond.notify_all()

    def _stop(self) -> None:
        with self.cond:
            self.gone = True
            self.cond.notify_all()


class FileWrapper:
    """``wsgi.file_wrapper``: a file-like object returned as the body (PEP 3333).

    Iterating reads ``block_size`` bytes at a time (what a server without a better way
    does); the gateway instead hands the file itself to the connection, which sends a
    regular file with ``os.sendfile`` on plain TCP. ``close()`` closes the file.
    """

    def __init__(self, filelike: Any, block_size: int = 8192) -> None:
        self.filelike = filelike
        self.block_size = block_size
        for name in ("fileno", "tell", "seek"):
            if hasattr(filelike, name):
                setattr(self, name, getattr(filelike, name))

    def read(self, size: int = -1) -> bytes:
        """Read from the file."""
        data: bytes = self.filelike.read(size)
        return data

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        data = self.read(self.block_size)
        if not data:
            raise StopIteration
        return data

    def close(self) -> None:
        """Close the file (if it can be closed)."""
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()
