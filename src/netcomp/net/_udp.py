"""Datagram sockets: UDP over IPv4 and IPv6 on the tree's one selector.

Rules:
* Each read readiness receives at most ``max_reads`` datagrams, so a flood on one socket
  never starves the others; each becomes ``read(address, data)`` on the component's channel.
  A ``read`` handler's bytes result is sent back to that address.
* ``write(address, data)`` goes straight to the kernel; only what the kernel refuses with
  EAGAIN is queued (in order), and sent when the socket is writable. The queue holds at most
  ``max_queued_bytes``: past that a datagram is dropped with an ``error(address, err)``
  (ENOBUFS), never silently and never by growing without bound.
* Every failure to send one datagram (too large, no route, a name that does not resolve)
  is an ``error(address, err)`` event; the loop goes on. A datagram is never split.
* ``allow``/``deny`` (:mod:`._peers`): a datagram from a refused sender is dropped unread
  by handlers, counted in ``refused`` and logged at DEBUG; without the lists nothing is
  checked.
* Destination names are resolved on a helper thread (never on the loop), in order per
  destination; numeric addresses are sent at once.
* ``close()`` sends what is queued, then closes and fires ``disconnect(sock)`` (circuits'
  word for "this socket is gone", with the closed socket) and ``closed()``; when the tree
  stops, what the kernel takes now is sent and the rest is dropped.
"""

from __future__ import annotations

import errno
import functools
import logging
import selectors
import socket
from collections import deque
from typing import Any

from ..core import Value, handler
from ._address import SocketOptions, apply_options, bound_socket, host_port, is_ip_literal
from ._address import socket_options as check_options
from ._client import _resolve_pool
from ._errors import NotConnected
from ._events import closed, disconnect, error, read, ready
from ._peers import NetworkSpec, PeerFilter
from ._poller import SocketComponent
from ._replies import write_back

__all__ = ["UDP6Client", "UDP6Server", "UDPClient", "UDPServer"]

log = logging.getLogger("netcomp.net")

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE
_MAX_DATAGRAM = 65536  # larger than any UDP payload (65,507 bytes on IPv4, 65,527 on IPv6)
_BROADCAST = "<broadcast>"  # the stdlib's name for INADDR_BROADCAST: never resolved


class UDPServer(SocketComponent):
    """A UDP socket on IPv4 bound to ``bind`` (a port on 127.0.0.1, ``(host, port)``, ...).

    Out: ``ready(component, bind)``, ``read(address, data)``, ``error(address, err)``,
    ``disconnect(sock)`` and ``closed()`` once closed. In: ``write(address, data)``,
    ``broadcast(data, port)``, ``close()``. ``read`` gives the sender's address as the
    kernel does (a 4-tuple on IPv6); ``bind`` and ``ready`` give ``(host, port)``.
    """

    channel = "server"
    family: socket.AddressFamily = socket.AF_INET

    def __init__(
        self,
        bind: Any = None,
        channel: Any = "server",
        reuse_port: bool = False,
        max_queued_bytes: int = 1024 * 1024,
        max_reads: int = 64,
        sock: socket.socket | None = None,
        socket_options: SocketOptions = (),
        allow: NetworkSpec | None = None,
        deny: NetworkSpec | None = None,
    ) -> None:
        """Bind (or adopt the bound datagram socket ``sock``) at once, so errors surface here.

        ``max_queued_bytes``: output that may wait for writability or a name lookup (1 MiB,
        like the stream servers' high water mark). ``max_reads``: datagrams received per
        readiness before other sockets get their turn. ``socket_options``: ``(level,
        option, value)`` triples set before the socket binds (on ``sock`` when adopted).
        A socket given as ``bind`` (circuits' form) is adopted as ``sock``. ``allow`` /
        ``deny``: networks whose datagrams are read / dropped (counted in :attr:`refused`).
        """
        super().__init__(channel=channel)
        if isinstance(bind, socket.socket) and sock is None:
            bind, sock = None, bind
        if max_queued_bytes < 0 or max_reads < 1:
            raise ValueError("need max_queued_bytes >= 0 and max_reads >= 1")
        self.max_queued_bytes = max_queued_bytes
        self.max_reads = max_reads
        #: The peer filter (``allow``/``deny``), or None: every datagram is read.
        self.peer_filter = PeerFilter.make(allow, deny)
        #: Datagrams dropped by ``allow``/``deny``.
        self.refused = 0
        if self.peer_filter is not None:  # chosen once: no check per datagram without it
            self._receive = self._receive_filtered  # type: ignore[method-assign]
        options = check_options(socket_options)
        if sock is None:
            sock = bound_socket(bind, self.family, socket.SOCK_DGRAM, reuse_port, options)
        else:
            if sock.type != socket.SOCK_DGRAM:
                raise ValueError(f"{type(self).__name__} needs a datagram socket, not {sock!r}")
            self.family = sock.family
            apply_options(sock, options)
        sock.setblocking(False)
        self.socket = sock
        #: The bound address: ``(host, port)``, IPv6 too.
        self.bind: Any = host_port(sock.getsockname())
        self._buffer = bytearray(_MAX_DATAGRAM)
        self._view = memoryview(self._buffer)
        self._out: deque[tuple[Any, bytes]] = deque()
        self._queued_bytes = 0
        self._resolving: dict[tuple[str, Any], list[bytes]] = {}
        self._broadcast_on = False
        self._closing = False
        self._closed = False
        self._watch = self.loop.watch(sock, 0, self._on_ready)
        self._update()
        self.fire(ready(self, self.bind))

    # ---------------------------------------------------------- selector
    def _update(self) -> None:
        """Watch for READ while open and for WRITE while output is queued."""
        mask = 0
        if not self._closed:
            if not self._closing:
                mask |= READ
            if self._out:
                mask |= WRITE
        self._watch.modify(mask)

    def _rearm(self) -> None:
        self._watch.move(self.loop)

    def _on_ready(self, mask: int) -> None:
        if mask & READ:
            self._receive()
        if mask & WRITE and not self._closed:
            self._flush(self.max_reads)

    # -------------------------------------------------------------- input
    def _receive(self) -> None:
        sock = self.socket
        view = self._view
        for _ in range(self.max_reads):
            if self._closed or self._closing:
                return
            try:
                size, address = sock.recvfrom_into(self._buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:  # e.g. an ICMP error queued on the socket
                self.fire(error(None, err))
                return
            value = self.fire(read(address, bytes(view[:size])))
            value.add_done_callback(functools.partial(self._reply, address))

    def _receive_filtered(self) -> None:
        """``_receive`` with the ``allow``/``deny`` check (dropped datagrams are counted)."""
        sock = self.socket
        view = self._view
        permits = self.peer_filter.permits  # type: ignore[union-attr]
        for _ in range(self.max_reads):
            if self._closed or self._closing:
                return
            try:
                size, address = sock.recvfrom_into(self._buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:
                self.fire(error(None, err))
                return
            if not permits(address):
                self.refused += 1
                log.debug("%r dropped a datagram from %r (allow/deny)", self, address)
                continue
            value = self.fire(read(address, bytes(view[:size])))
            value.add_done_callback(functools.partial(self._reply, address))

    def _reply(self, address: Any, value: Value) -> None:
        result = value.value
        if result is not None and not (self._closed or self._closing):
            write_back(result, lambda data: self._send(address, bytes(data)))

    # ------------------------------------------------------------- output
    def _send(self, address: Any, data: bytes) -> None:
        if self._closed or self._closing:
            self.fire(error(address, NotConnected(f"{self!r}: write after close")))
            return
        if not isinstance(address, tuple) or len(address) < 2:
            raise TypeError(f"a UDP destination is (host, port), not {address!r}")
        host = address[0]
        if isinstance(host, str) and host != _BROADCAST and not is_ip_literal(host):
            self._resolve(address, data)
            return
        if self._out:  # keep the order: behind what the kernel refused before
            self._queue_datagram(address, data)
            return
        try:
            self.socket.sendto(data, address)
        except (BlockingIOError, InterruptedError):
            self._queue_datagram(address, data)
        except OSError as err:  # EMSGSIZE, ENETUNREACH, EACCES, ENOBUFS (dropped), ...
            self.fire(error(address, err))

    def _room_for(self, address: Any, data: bytes) -> bool:
        if self._queued_bytes + len(data) <= self.max_queued_bytes:
            return True
        reason = f"UDP send queue full ({self._queued_bytes} bytes queued); datagram dropped"
        self.fire(error(address, OSError(errno.ENOBUFS, reason)))
        return False

    def _queue_datagram(self, address: Any, data: bytes) -> None:
        if not self._room_for(address, data):
            return
        self._out.append((address, data))
        self._queued_bytes += len(data)
        if len(self._out) == 1:
            self._update()

    def _flush(self, limit: int | None) -> None:
        queue = self._out
        sock = self.socket
        sent = 0
        while queue and (limit is None or sent < limit):
            address, data = queue[0]
            try:
                sock.sendto(data, address)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as err:
                self.fire(error(address, err))
            queue.popleft()
            self._queued_bytes -= len(data)
            sent += 1
        if not queue and self._closing:
            self._finish_close()
        else:
            self._update()

    def _resolve(self, address: tuple[Any, ...], data: bytes) -> None:
        host, port = address[0], address[1]
        key = (host, port)
        if not self._room_for(key, data):
            return
        self._queued_bytes += len(data)  # waiting for its address counts as queued
        waiting = self._resolving.get(key)
        if waiting is not None:
            waiting.append(data)  # one lookup per destination; sent in order after it
            return
        self._resolving[key] = [data]
        family = self.family

        def lookup() -> None:
            try:
                infos = socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM)
                resolved: Any = infos[0][4]
                failure: Exception | None = None
            except Exception as err:  # gaierror, or UnicodeError for a name IDNA refuses
                resolved, failure = None, err
            self.loop.call_soon_threadsafe(self._resolved, key, resolved, failure)

        _resolve_pool().submit(lookup)

    def _resolved(self, key: tuple[str, Any], resolved: Any, failure: Exception | None) -> None:
        waiting = self._resolving.pop(key, [])
        for data in waiting:
            self._queued_bytes -= len(data)
            if failure is not None:
                self.fire(error(key, failure))
            else:
                self._send(resolved, data)

    # ------------------------------------------------------------ handlers
    @handler("write")
    def _on_write(self, address: Any, data: bytes) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"UDP write needs bytes, not {type(data).__name__}")
        self._send(address, bytes(data))

    @handler("broadcast")
    def _on_broadcast(self, data: bytes, port: int) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"UDP broadcast needs bytes, not {type(data).__name__}")
        address = (_BROADCAST, port)
        if self.family != socket.AF_INET:
            reason = "IPv6 has no broadcast; send to a multicast group instead"
            self.fire(error(address, OSError(errno.EAFNOSUPPORT, reason)))
            return
        if not self._broadcast_on and not self._closed:
            try:
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            except OSError as err:
                self.fire(error(address, err))
                return
            self._broadcast_on = True
        self._send(address, bytes(data))

    @handler("close")
    def _on_close(self) -> None:
        if self._closing or self._closed:
            return
        self._closing = True
        if self._out:
            self._update()  # stop reading; close once the queue is sent
        else:
            self._finish_close()

    @handler("stopped", channel="*")
    def _on_stopped(self, manager: Any) -> None:
        if self._closed:
            return
        self._closing = True
        self._flush(None)  # what the kernel takes now; the loop is ending
        if not self._closed:
            self._drop_queue()
            self._finish_close()

    def _drop_queue(self) -> None:
        while self._out:
            address, data = self._out.popleft()
            self._queued_bytes -= len(data)
            self.fire(error(address, NotConnected(f"{self!r} closed before sending")))

    def _finish_close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._watch.cancel()
        self.socket.close()
        self.fire(disconnect(self.socket))
        self.fire(closed())

    # ------------------------------------------------------------ queries
    @property
    def queued(self) -> int:
        """Bytes waiting to be sent (for the socket to be writable, or for a name lookup)."""
        return self._queued_bytes

    @property
    def host(self) -> str:
        """The bound host."""
        return str(self.bind[0])

    @property
    def _sock(self) -> socket.socket:
        """The socket under circuits' name (``server._sock``); netcomp's is :attr:`socket`."""
        return self.socket

    @property
    def port(self) -> int:
        """The bound port (the real one when bound to port 0)."""
        return int(self.bind[1])

    def __repr__(self) -> str:
        state = "closed" if self._closed else "closing" if self._closing else "open"
        return f"<{type(self).__name__}/{self.channel} {self.bind!r} {state}>"


class UDP6Server(UDPServer):
    """A UDP socket on IPv6. ``bind``: a port (on ::1), ``(host, port)``, ``"[host]:port"``."""

    family = socket.AF_INET6


class UDPClient(UDPServer):
    """A UDP socket on IPv4 bound to an ephemeral port (``bind=0``): write to any address.

    The same events as :class:`UDPServer`, on channel ``"client"`` by default.
    """

    channel = "client"

    def __init__(
        self,
        bind: Any = 0,
        channel: Any = "client",
        reuse_port: bool = False,
        max_queued_bytes: int = 1024 * 1024,
        max_reads: int = 64,
        sock: socket.socket | None = None,
        socket_options: SocketOptions = (),
        allow: NetworkSpec | None = None,
        deny: NetworkSpec | None = None,
    ) -> None:
        """``bind`` defaults to any free port on loopback; the options are UDPServer's."""
        super().__init__(
            bind, channel, reuse_port, max_queued_bytes, max_reads, sock, socket_options
        )


class UDP6Client(UDPClient):
    """A UDP socket on IPv6 bound to an ephemeral port on ::1 (``bind=0``): write to any
    IPv6 address. The same events as :class:`UDPServer`, on channel ``"client"``."""

    family = socket.AF_INET6
