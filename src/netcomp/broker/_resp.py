"""RESP, the Redis protocol, through hiredis: ``pack`` makes a command's bytes, ``new_reader``
a sans-I/O parser of replies. netcomp parses no RESP itself.

hiredis is an optional dependency (``pip install 'netcomp[redis]'``): importing this module
works without it, and :func:`require_hiredis` says how to install it when it is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core import NetcompError

_hiredis: Any
try:
    import hiredis as _hiredis
except ImportError:  # pragma: no cover - the redis extra is installed in the tests
    _hiredis = None

__all__ = ["NOT_ENOUGH", "ProtocolError", "RedisError", "new_reader", "pack", "require_hiredis"]

#: What ``Reader.gets()`` returns when no whole reply is buffered.
NOT_ENOUGH: Any = object()


class RedisError(NetcompError, RuntimeError):
    """An error reply from Redis (``-ERR ...``, ``-NOAUTH ...``); ``code`` is its first word."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = message.split(" ", 1)[0] if message else ""


class ProtocolError(NetcompError, ValueError):
    """Bytes from the server that are not RESP: the link is dropped and made anew."""


def require_hiredis() -> None:
    """Raise ``ImportError`` with the install command when hiredis is missing."""
    if _hiredis is None:
        raise ImportError(
            "netcomp.broker needs hiredis for the Redis protocol: pip install 'netcomp[redis]'"
        )


def pack(args: tuple[Any, ...]) -> bytes:
    """The RESP bytes of one command: ``pack(("SET", "k", b"v"))`` (str, bytes, int, float)."""
    assert _hiredis is not None, "require_hiredis() first"
    packed: bytes = _hiredis.pack_command(args)
    return packed


def new_reader() -> Any:
    """A hiredis ``Reader``: ``feed(bytes)``, then ``gets()`` until it returns
    :data:`NOT_ENOUGH`; error replies come back as :class:`RedisError` values."""
    assert _hiredis is not None, "require_hiredis() first"
    protocol_error: Callable[[str], Exception] = ProtocolError
    return _hiredis.Reader(
        protocolError=protocol_error, replyError=RedisError, notEnoughData=NOT_ENOUGH
    )
