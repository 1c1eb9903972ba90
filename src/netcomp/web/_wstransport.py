"""What carries a :class:`~._wsclient.WebSocketClient`: a ``ws://``/``wss://`` URL read
into its parts, and the net layer's client under it, plain (:class:`Link`, a TCP client)
or reconnecting (:class:`Relink`, a Connex).

Both report their connection's input, end and drain straight to the WebSocket client
(the net layer's public connection hooks, overridden: no ``read`` event per input); their
other events (``connected``, ``disconnected``, ``unreachable``, ``error``) go on their
own channel, which the WebSocket client listens to.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..net import Connection, Connex, TCP6Client, TCPClient

__all__ = ["Link", "Relink", "Target", "TransportOwner", "parse_url"]


class Target:
    """A WebSocket URL's parts: where to connect and what the handshake asks for."""

    __slots__ = ("host", "host_field", "port", "resource", "secure")

    def __init__(self, host: str, port: int, secure: bool, resource: str) -> None:
        self.host = host
        self.port = port
        self.secure = secure
        self.resource = resource
        literal = ":" in host  # an IPv6 address goes in brackets
        name = f"[{host}]" if literal else host
        default = 443 if secure else 80
        self.host_field = name if port == default else f"{name}:{port}"

    @property
    def ipv6(self) -> bool:
        """Whether the host is an IPv6 address literal."""
        try:
            return ipaddress.ip_address(self.host).version == 6
        except ValueError:
            return False


def parse_url(url: str) -> Target:
    """``ws://host[:port]/path?query`` or ``wss://...``; ``ValueError`` if it is not one."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, got {url!r}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss"):
        raise ValueError(f"a WebSocket URL starts with ws:// or wss://, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"no host in {url!r}")
    if parts.fragment:
        raise ValueError(f"a WebSocket URL has no fragment (#...): {url!r}")
    try:
        port = parts.port
    except ValueError as err:
        raise ValueError(f"bad port in {url!r}: {err}") from None
    secure = scheme == "wss"
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.hostname, port or (443 if secure else 80), secure, resource)


class TransportOwner(Protocol):
    """What the transports report to (the WebSocket client)."""

    def link_data(self, conn: Connection, data: bytes) -> None: ...
    def link_eof(self, conn: Connection) -> None: ...
    def link_drained(self, conn: Connection) -> None: ...
    def link_lost(self, conn: Connection) -> None: ...


class Link(TCPClient):
    """A WebSocket client's TCP (or TLS) connection, made once per ``connect``."""

    def __init__(
        self,
        owner: TransportOwner,
        target: Target,
        connect_timeout: float | None,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        channel: Any,
    ) -> None:
        """One destination: ``target``'s host and port."""
        super().__init__(
            target.host,
            target.port,
            secure=target.secure,
            ssl_context=ssl_context,
            server_hostname=server_hostname,
            connect_timeout=connect_timeout,
            channel=channel,
        )
        self.owner = owner
        if target.ipv6:
            self.family = TCP6Client.family

    def data_received(self, conn: Connection, data: bytes) -> None:
        """Input goes to the WebSocket client (no ``read`` event)."""
        self.owner.link_data(conn, data)

    def eof_received(self, conn: Connection) -> None:
        """The server will send no more: the WebSocket client decides."""
        self.owner.link_eof(conn)

    def connection_drained(self, conn: Connection) -> None:
        """Room in the output again."""
        self.owner.link_drained(conn)

    def connection_lost(self, conn: Connection, err: BaseException | None) -> None:
        """The connection is gone: the client's bookkeeping, then the WebSocket's."""
        super().connection_lost(conn, err)
        self.owner.link_lost(conn)


class Relink(Connex):
    """A WebSocket client's connection that comes back after a failure (a Connex)."""

    def __init__(
        self,
        owner: TransportOwner,
        target: Target,
        connect_timeout: float | None,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        channel: Any,
        backoff: Callable[[int], float] | None = None,
        max_retries: int | None = None,
        eager: bool = True,
    ) -> None:
        """One destination: ``target``'s host and port; the Connex's reconnect policy."""
        super().__init__(
            [(target.host, target.port)],
            connect_timeout=connect_timeout,
            backoff=backoff,
            max_retries=max_retries,
            eager=eager,
            secure=target.secure,
            ssl_context=ssl_context,
            server_hostname=server_hostname,
            channel=channel,
        )
        self.owner = owner

    def data_received(self, conn: Connection, data: bytes) -> None:
        """Input goes to the WebSocket client (no ``read`` event)."""
        self.owner.link_data(conn, data)

    def eof_received(self, conn: Connection) -> None:
        """The server will send no more: the WebSocket client decides."""
        self.owner.link_eof(conn)

    def connection_drained(self, conn: Connection) -> None:
        """Room in the output again (the Connex's bookkeeping first)."""
        super().connection_drained(conn)
        self.owner.link_drained(conn)

    def connection_lost(self, conn: Connection, err: BaseException | None) -> None:
        """The connection is gone: the Connex decides what next, then the WebSocket."""
        super().connection_lost(conn, err)
        self.owner.link_lost(conn)
