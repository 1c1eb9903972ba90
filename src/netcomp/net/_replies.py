"""What a ``read`` handler returns is sent back where the data came from.

The rule, for every reader (stream connections, UDP sockets, the threaded client): a
bytes-like result is sent; a list (several handlers answered) has each of its bytes-like
items sent, in order; anything else (``None``, other types) sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["write_back"]

_BYTES = (bytes, bytearray, memoryview)


def write_back(result: Any, send: Callable[[bytes | bytearray | memoryview], object]) -> None:
    """Call ``send(chunk)`` for each chunk a ``read`` handler's ``result`` asks to send."""
    if isinstance(result, _BYTES):
        send(result)
    elif isinstance(result, list):
        for item in result:
            if isinstance(item, _BYTES):
                send(item)
