"""Listening sockets shared by the worker processes of a supervisor.

Rules (docs/architecture.md, "Processes"):
* In a worker process a stream server does not bind: it asks the supervisor for the
  listening socket of its address (:func:`supervised_listener`) and gets a descriptor.
  Nothing in the user's tree changes: ``TCPServer(8000)`` is the same line with and
  without workers, and port 0 means one port the kernel chose, the same for every worker.
* The supervisor makes each socket once (:class:`SharedListeners`) and keeps it open
  until it exits, so a socket outlives the workers that accept on it: connections queued
  while a worker is replaced wait for the next one instead of being reset.
* TCP where ``SO_REUSEPORT`` balances (Linux): one socket per worker slot in one reuseport
  group, so the kernel spreads new connections over the slots. Elsewhere, and for UNIX
  sockets: one socket every worker accepts on.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from ._address import SocketOptions, bound_socket, parse_bind

__all__ = [
    "ListenerSource",
    "SharedListeners",
    "set_listener_source",
    "supervised_listener",
]

#: ``source(bind, family, backlog, options)``: a bound, listening socket for ``bind``.
ListenerSource = Callable[[Any, socket.AddressFamily, int, SocketOptions], socket.socket]

_source: ListenerSource | None = None


def set_listener_source(source: ListenerSource | None) -> None:
    """Where this process's stream servers get their listening sockets from (a worker
    process of a supervisor sets it before it builds its tree; None: they bind)."""
    global _source
    _source = source


def supervised_listener(
    bind: Any, family: socket.AddressFamily, backlog: int, options: SocketOptions
) -> socket.socket | None:
    """The listening socket the supervisor holds for ``bind``, or None when this process
    has no supervisor (the server binds one itself)."""
    source = _source
    return None if source is None else source(bind, family, backlog, options)


def reuse_port_balances() -> bool:
    """Whether the kernel spreads connections over a ``SO_REUSEPORT`` group (Linux does;
    BSD and macOS give them all to one socket)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


class SharedListeners:
    """The supervisor's listening sockets, by address and worker slot.

    ``reuse_port``: one TCP socket per slot in a reuseport group (None: where the kernel
    balances such a group). A key is the address as bound (port 0 stays one port: the
    first bind picks it) and, for port 0, the how-manieth such request of the worker, so
    two ``bind=0`` servers of one tree get two ports, the same two in every worker.
    """

    def __init__(self, reuse_port: bool | None = None) -> None:
        self.reuse_port = reuse_port_balances() if reuse_port is None else bool(reuse_port)
        self._groups: dict[tuple[Any, ...], dict[int | None, socket.socket]] = {}
        self._addresses: dict[tuple[Any, ...], Any] = {}
        self._paths: list[str] = []

    def get(
        self,
        slot: int,
        family: socket.AddressFamily,
        bind: Any,
        backlog: int,
        options: SocketOptions = (),
        seq: int = 0,
    ) -> socket.socket:
        """The listening socket of ``bind`` for worker ``slot`` (made on first request).

        Raises what binding raises (``OSError`` naming the address, ``ValueError`` or
        ``TypeError`` for a bind form that is not one).
        """
        address = parse_bind(bind if bind is not None else 0, family)
        zero_port = isinstance(address, tuple) and address[1] == 0
        key = (int(family), _hashable(address), seq if zero_port else 0)
        per_slot = self.reuse_port and family in (socket.AF_INET, socket.AF_INET6)
        where = slot if per_slot else None
        group = self._groups.setdefault(key, {})
        sock = group.get(where)
        if sock is None:
            known = self._addresses.get(key, address)
            sock = self._listen(known, family, backlog, options, per_slot)
            if key not in self._addresses:
                self._addresses[key] = sock.getsockname() if zero_port else address
            group[where] = sock
        return sock

    def answer(
        self, slot: int, request: dict[str, Any]
    ) -> tuple[dict[str, Any], socket.socket | None]:
        """A worker's ``listen`` request: the reply, and the socket to send with it (None
        when it cannot be had: the reply says why, as the worker is to raise it)."""
        bind = request.get("bind")
        options = tuple(
            (level, name, bytes.fromhex(value["hex"]) if isinstance(value, dict) else value)
            for level, name, value in request.get("options", ())
        )
        try:
            sock = self.get(
                slot,
                socket.AddressFamily(request["family"]),
                tuple(bind) if isinstance(bind, list) else bind,
                int(request.get("backlog", 1024)),
                options,
                int(request.get("seq", 0)),
            )
        except (OSError, ValueError, TypeError) as error:
            text = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            errno = error.errno if isinstance(error, OSError) else None
            kind = type(error).__name__
            return {"ok": False, "error": text, "errno": errno, "type": kind}, None
        return {"ok": True}, sock

    def _listen(
        self,
        address: Any,
        family: socket.AddressFamily,
        backlog: int,
        options: SocketOptions,
        reuse_port: bool,
    ) -> socket.socket:
        sock = bound_socket(address, family, socket.SOCK_STREAM, reuse_port, options)
        try:
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        if family == socket.AF_UNIX and isinstance(address, str) and address[:1] != "\0":
            self._paths.append(address)
        return sock

    @property
    def sockets(self) -> list[socket.socket]:
        """Every listening socket made so far."""
        return [sock for group in self._groups.values() for sock in group.values()]

    def close(self) -> None:
        """Close every socket (the UNIX paths bound here are removed)."""
        for sock in self.sockets:
            sock.close()
        self._groups.clear()
        for path in self._paths:
            with contextlib.suppress(OSError):
                os.unlink(path)
        self._paths.clear()


def _hashable(address: Any) -> Any:
    return tuple(address) if isinstance(address, (list, tuple)) else address
