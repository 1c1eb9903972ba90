"""Where sessions live: the :class:`Store` interface, :class:`MemoryStore` (the default)
and :class:`FileStore` (one JSON file per session).

Rules:
* A store keeps, per session id, a dict of data and the time it expires; ``load`` never
  returns an expired session (and forgets it). Times are on the clock the store asks
  for: ``wall_clock`` false means the loop's clock (monotonic; what tests move by
  hand), true means ``time.time()`` (for a store that outlives the process).
* Data is copied in and out (deep copies; JSON for :class:`FileStore`): a handler changing
  a session, nested values included, changes nothing in the store until it is saved.
  Nothing is pickled.
* A store is called on the loop's thread and should answer at once (memory, a local
  file, a fast key-value client); see docs/web.md, *Sessions*.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import tempfile
from collections import OrderedDict
from typing import Any, Protocol, runtime_checkable

__all__ = ["FileStore", "MemoryStore", "Store"]


@runtime_checkable
class Store(Protocol):
    """What :class:`~netcomp.web.Sessions` needs of a store."""

    #: Times are ``time.time()`` (True) or the loop's clock (False).
    wall_clock: bool

    def load(self, sid: str, now: float) -> tuple[dict[str, Any], float] | None:
        """The data of session ``sid`` and when it expires; None if unknown or expired."""
        ...

    def save(self, sid: str, data: dict[str, Any], expires: float) -> None:
        """Keep ``data`` for ``sid`` until ``expires``."""
        ...

    def delete(self, sid: str) -> None:
        """Forget ``sid`` (no error if unknown)."""
        ...


class MemoryStore:
    """Sessions in this process's memory, at most ``max_sessions`` of them (the least
    recently saved go first; expired ones are dropped as they are met)."""

    wall_clock = False

    def __init__(self, max_sessions: int = 100_000) -> None:
        """``max_sessions``: the bound on memory an unbounded number of clients could
        otherwise grow."""
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be at least 1, got {max_sessions}")
        self.max_sessions = max_sessions
        self._entries: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def load(self, sid: str, now: float) -> tuple[dict[str, Any], float] | None:
        """A copy of the data of ``sid`` and its expiry, unless unknown or expired."""
        entry = self._entries.get(sid)
        if entry is None:
            return None
        expires, data = entry
        if expires <= now:
            del self._entries[sid]
            return None
        return copy.deepcopy(data), expires

    def save(self, sid: str, data: dict[str, Any], expires: float) -> None:
        """Keep a copy of ``data`` until ``expires``."""
        entries = self._entries
        entries[sid] = (expires, copy.deepcopy(data))
        entries.move_to_end(sid)
        while len(entries) > self.max_sessions:
            entries.popitem(last=False)

    def delete(self, sid: str) -> None:
        """Forget ``sid``."""
        self._entries.pop(sid, None)


class FileStore:
    """Sessions as JSON files in ``directory`` (made ``0700`` if missing), each at most
    ``max_size`` bytes; a file's name is a hash of the session id, so an id never
    becomes a path. Survives restarts (wall-clock expiry)."""

    wall_clock = True

    def __init__(self, directory: str | os.PathLike[str], max_size: int = 64 * 1024) -> None:
        """Create ``directory`` if needed."""
        self.directory = os.fspath(directory)
        self.max_size = max_size
        os.makedirs(self.directory, mode=0o700, exist_ok=True)

    def _path(self, sid: str) -> str:
        name = hashlib.sha256(sid.encode("utf-8")).hexdigest()
        return os.path.join(self.directory, name + ".json")

    def load(self, sid: str, now: float) -> tuple[dict[str, Any], float] | None:
        """The data of ``sid`` and its expiry; None if unknown, expired or unreadable."""
        path = self._path(sid)
        try:
            with open(path, "rb") as file:
                raw = file.read(self.max_size + 1)
            record = json.loads(raw)
            expires, data = float(record["expires"]), record["data"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(data, dict) or expires <= now:
            self.delete(sid)
            return None
        return data, expires

    def save(self, sid: str, data: dict[str, Any], expires: float) -> None:
        """Write ``data`` (JSON: ``TypeError`` for what JSON cannot hold; ``ValueError``
        past ``max_size``) atomically."""
        raw = json.dumps({"expires": expires, "data": data}, separators=(",", ":")).encode()
        if len(raw) > self.max_size:
            raise ValueError(f"session data is {len(raw)} bytes, the store takes {self.max_size}")
        fd, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(raw)
            os.replace(temporary, self._path(sid))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def delete(self, sid: str) -> None:
        """Remove the file of ``sid``."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(sid))
