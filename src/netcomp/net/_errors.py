"""The net layer's errors: each a :class:`~netcomp.core.NetcompError` and the builtin that
describes it, so ``except ConnectionError`` / ``except TimeoutError`` keep catching them.

The timeouts derive from ``netcomp.TimeoutError`` (itself a ``NetcompError`` and a builtin
``TimeoutError``), so ``except netcomp.TimeoutError`` catches them too.
"""

from __future__ import annotations

from ..core import NetcompError, TimeoutError

__all__ = ["ConnectTimeout", "HandshakeTimeout", "NotConnected"]


class NotConnected(NetcompError, ConnectionError):
    """A write, close or starttls named a connection that is not (or no longer) open."""


class ConnectTimeout(TimeoutError):
    """A connect (resolve, TCP connect and any TLS handshake) ran past ``connect_timeout``."""


class HandshakeTimeout(TimeoutError):
    """A TLS handshake ran past the connection's ``handshake_timeout``."""
