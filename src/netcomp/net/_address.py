"""Bind and connect addresses: the forms users write, parsed in one place.

Accepted bind forms: ``8000`` (port on 127.0.0.1 for TCP, ::1 for TCP6), ``("host", port)``,
``"host:port"``, ``"[::1]:port"``, a UNIX path (``"/tmp/x.sock"``), or a bound socket.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

__all__ = ["is_ip_literal", "parse_bind"]


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
    if family == socket.AF_INET6:
        return (host, int(port), 0, 0)
    return (host, int(port))


def is_ip_literal(host: str) -> bool:
    """Whether ``host`` is a numeric IPv4/IPv6 address (no name resolution needed)."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True
