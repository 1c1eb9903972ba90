"""Bind and connect addresses (the forms users write, parsed in one place) and the socket
options every stream socket gets.

Accepted bind forms: ``8000`` (port on 127.0.0.1 for TCP, ::1 for TCP6), ``("host", port)``,
``"host:port"``, ``"[::1]:port"``, a UNIX path (``"/tmp/x.sock"``), or a bound socket.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import stat
import sys
from collections.abc import Iterable
from typing import Any

__all__ = [
    "SocketOptions",
    "address_family",
    "apply_options",
    "bound_socket",
    "host_port",
    "is_ip_literal",
    "link_names",
    "parse_bind",
    "set_nodelay",
    "set_notsent_lowat",
    "sockaddr",
    "socket_options",
]


def parse_bind(bind: Any, family: socket.AddressFamily) -> Any:
    """Turn a user's bind form into the address ``socket.bind`` takes for ``family``."""
    if family == socket.AF_UNIX:
        if not isinstance(bind, (str, bytes)):
            raise TypeError(f"a UNIX socket binds to a path, not {bind!r}")
        return bind
    default_host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    if isinstance(bind, int) and not isinstance(bind, bool):
        host, port = default_host, bind
    elif isinstance(bind, tuple) and len(bind) >= 2:
        host, port = bind[0], bind[1]
    elif isinstance(bind, str):
        text = bind.strip()
        if text.startswith("["):
            end = text.find("]")
            if end < 0 or text[end + 1 : end + 2] != ":":
                raise ValueError(f"bad bind address {bind!r}; expected '[host]:port'")
            host, port_text = text[1:end], text[end + 2 :]
        elif text.count(":") == 1:
            host, port_text = text.split(":")
        elif text.isdigit():
            host, port_text = default_host, text
        else:
            raise ValueError(f"bad bind address {bind!r}; expected 'host:port' or a port")
        try:
            port = int(port_text)
        except ValueError:
            raise ValueError(f"bad port in bind address {bind!r}") from None
        host = host or default_host
    else:
        raise TypeError(f"cannot bind to {bind!r}: use a port, (host, port) or 'host:port'")
    if not 0 <= int(port) <= 65535:
        raise ValueError(f"port out of range in {bind!r}")
    return sockaddr(host, int(port), family)


def address_family(bind: Any, default: socket.AddressFamily) -> socket.AddressFamily:
    """The family a bind form names: an IPv6 literal (``("::1", 0)``, ``"[::1]:80"``) is
    IPv6 and an IPv4 literal IPv4, whatever ``default`` (the server class's family) says;
    a bound socket has its own; anything else (a port, a name, a path) is ``default``."""
    if isinstance(bind, socket.socket):
        return bind.family
    if default not in (socket.AF_INET, socket.AF_INET6):
        return default
    if isinstance(bind, tuple) and bind:
        host = bind[0]
    elif isinstance(bind, str):
        text = bind.strip()
        if text.startswith("["):
            return socket.AF_INET6
        host = text.rpartition(":")[0] if text.count(":") == 1 else text
    else:
        return default
    if not isinstance(host, str) or not is_ip_literal(host):
        return default
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def sockaddr(host: Any, port: Any, family: socket.AddressFamily) -> Any:
    """The address tuple ``bind``/``connect`` take for ``(host, port)`` in ``family``.

    An IPv6 literal with a scope (``"fe80::1%eth0"``, as :func:`host_port` writes it) gets
    its scope id as a number: the socket module ignores the ``%`` part of a host."""
    if family != socket.AF_INET6:
        return (host, port)
    if isinstance(host, str) and "%" in host:
        with contextlib.suppress(OSError, IndexError):
            return socket.getaddrinfo(
                host, port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST
            )[0][4]
    return (host, port, 0, 0)


def host_port(address: Any) -> Any:
    """A socket address as netcomp names it to users: ``(host, port)`` for IPv4 *and* IPv6
    (circuits' shape; an IPv6 scope id is kept in the host as ``"fe80::1%eth0"``, a form
    ``connect`` and ``bind`` take back), a UNIX path as it is."""
    if not isinstance(address, tuple) or len(address) < 4:
        return address
    host, port, scope = address[0], address[1], address[3]
    if scope and "%" not in host:
        try:
            name = socket.if_indextoname(scope)
        except OSError:
            name = str(scope)
        host = f"{host}%{name}"
    return (host, port)


def link_names(sock: socket.socket) -> tuple[Any, Any]:
    """A connected socket's ``(peername, sockname)`` as :func:`host_port` writes them
    (None for one the kernel no longer knows)."""
    try:
        peer = host_port(sock.getpeername())
    except OSError:
        peer = None
    try:
        local = host_port(sock.getsockname())
    except OSError:
        local = None
    return peer, local


def is_ip_literal(host: str) -> bool:
    """Whether ``host`` is a numeric IPv4/IPv6 address (no name resolution needed)."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def bound_socket(
    bind: Any,
    family: socket.AddressFamily,
    kind: socket.SocketKind,
    reuse_port: bool = False,
    options: SocketOptions = (),
) -> socket.socket:
    """A new socket of ``family`` and ``kind`` bound to a user's bind form (closed on error).

    IP stream sockets get SO_REUSEADDR (a restart need not wait out TIME_WAIT); datagram
    sockets do not (on Linux it would let another socket share the port). IPv6 sockets are
    v6-only. A UNIX path left over by a dead server is replaced; a live one is refused.
    ``options`` (``(level, option, value)`` triples) are set after those, before ``bind``.
    """
    address = parse_bind(bind if bind is not None else 0, family)
    sock = socket.socket(family, kind)
    try:
        if family == socket.AF_UNIX:
            _remove_stale_unix_socket(address)
        else:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        apply_options(sock, options)
        try:
            sock.bind(address)
        except OSError as error:
            # The kernel's message names no address: say which one could not be had.
            shown = address if isinstance(address, str) else f"{address[0]}:{address[1]}"
            raise OSError(error.errno, f"cannot bind {shown}: {error.strerror}") from None
    except BaseException:
        sock.close()
        raise
    return sock


#: ``setsockopt`` arguments: ``(level, option, value)`` triples (circuits' ``socket_options``).
SocketOptions = Iterable[tuple[int, int, "int | bytes"]]


def socket_options(value: Any) -> tuple[tuple[int, int, int | bytes], ...]:
    """Check a ``socket_options`` argument at construction: ``(level, option, value)``
    triples of integers (the value may be bytes), as ``socket.setsockopt`` takes them."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"socket_options takes (level, option, value) triples, got {value!r}")
    found = []
    for item in value:
        if not (
            isinstance(item, (tuple, list))
            and len(item) == 3
            and all(isinstance(n, int) and not isinstance(n, bool) for n in item[:2])
            and isinstance(item[2], (int, bytes))
        ):
            raise TypeError(f"a socket option is (level, option, value), got {item!r}")
        found.append((item[0], item[1], item[2]))
    return tuple(found)


def apply_options(sock: socket.socket, options: SocketOptions) -> None:
    """``setsockopt`` each option; a refused one raises ``OSError`` naming it."""
    for level, option, value in options:
        try:
            sock.setsockopt(level, option, value)
        except OSError as error:
            raise OSError(
                error.errno,
                f"cannot set socket option ({level}, {option}, {value!r}): {error.strerror}",
            ) from None


def set_nodelay(sock: socket.socket, family: int) -> None:
    """Turn Nagle's algorithm off on a TCP socket of ``family``, so a small write goes out at
    once instead of waiting for the peer's ACK of the previous one (request/response
    latency). No-op for UNIX sockets; a failure (the peer is already gone) is left to the
    next I/O to report. (The caller passes the family it knows: ``sock.family`` is a
    Python-level property, a cost on every accept.)"""
    if family == socket.AF_INET or family == socket.AF_INET6:
        try:  # noqa: SIM105 - per accept: suppress() would add an object and two calls
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


#: Linux's TCP_NOTSENT_LOWAT (named by the socket module where the build knows it).
_NOTSENT_LOWAT: int | None = getattr(
    socket, "TCP_NOTSENT_LOWAT", 25 if sys.platform.startswith("linux") else None
)


def set_notsent_lowat(sock: socket.socket, family: int, size: int) -> None:
    """Let the kernel hold at most ``size`` bytes of ``sock``'s output not yet sent
    (``TCP_NOTSENT_LOWAT``): a send beyond it would block, so the connection buffers
    (and counts) the rest itself. What is in flight is the congestion window's; only the
    queue behind it is bounded. Without it a peer that advertises a tiny window lets the
    kernel take megabytes (its send buffer autotunes up to ``tcp_wmem``'s maximum) that
    no limit of ours sees. No-op for UNIX sockets and where the option is unknown."""
    if _NOTSENT_LOWAT is not None and (family == socket.AF_INET or family == socket.AF_INET6):
        try:  # noqa: SIM105 - per connection (hot path)
            sock.setsockopt(socket.IPPROTO_TCP, _NOTSENT_LOWAT, size)
        except OSError:
            pass


def _remove_stale_unix_socket(path: Any) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(f"{path!r} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)  # nobody listens: a leftover from a previous run
    except OSError:
        pass
    else:
        raise OSError(errno.EADDRINUSE, f"another server listens on {path!r}")
    finally:
        probe.close()
