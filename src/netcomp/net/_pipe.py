"""A full-duplex pipe inside one program: two stream clients over a ``socketpair``.

Rules: each end is an ordinary :class:`~netcomp.net.UNIXClient` adopting one socket of the
pair, so it has a client's events and guarantees (buffered output with backpressure,
``read(data)`` out, ``write(data)``/``close()`` in, a clean close) and is serviced by the
selector of whatever tree it joins, like any socket component. Closing one end closes the
other once it has read what was sent: both fire ``disconnected()``.
"""

from __future__ import annotations

import socket
from typing import Any

from ._client import UNIXClient

__all__ = ["Pipe"]


def Pipe(
    first: Any = "a",
    second: Any = "b",
    *,
    high_water: int = 1024 * 1024,
    low_water: int = 256 * 1024,
) -> tuple[UNIXClient, UNIXClient]:
    """Two connected :class:`UNIXClient` ends, on channels ``first`` and ``second``
    (circuits' name for it, hence the capital).

    Each end fires ``ready(end)`` then ``connected("", None)`` (a socketpair has no address)
    once its loop runs; what one end is sent with ``write(data)`` the other fires as
    ``read(data)``. Register both ends (in one tree or two).
    """
    one, two = socket.socketpair()
    try:
        a = UNIXClient(channel=first, sock=one, high_water=high_water, low_water=low_water)
    except BaseException:
        one.close()
        two.close()
        raise
    try:
        b = UNIXClient(channel=second, sock=two, high_water=high_water, low_water=low_water)
    except BaseException:
        a.loop_ended()  # cuts its end
        two.close()
        raise
    return a, b
