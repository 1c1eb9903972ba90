"""Net components refuse wrong arguments at construction, saying what they expected and
what they got (instead of failing later, deep inside a connect or a timer)."""

from __future__ import annotations

import errno
import socket
from typing import Any

import pytest

from netcomp.net import Connex, TCPClient, TCPServer, ThreadedTCPClient, UDPServer


@pytest.mark.parametrize(
    ("destinations", "error", "message"),
    [
        (
            ("127.0.0.1", 8101),
            TypeError,
            "Connex takes a list of (host, port) destinations, got the single pair "
            "('127.0.0.1', 8101): write [('127.0.0.1', 8101)]",
        ),
        ([], ValueError, "Connex needs at least one (host, port) destination"),
        ("127.0.0.1:8101", TypeError, "Connex takes a list of (host, port) destinations"),
        ([("127.0.0.1",)], TypeError, "a Connex destination is a (host, port) pair, got"),
        ([("127.0.0.1", "80")], TypeError, "the port of destination '127.0.0.1' must be a port"),
        ([("127.0.0.1", 70000)], ValueError, "must be in 1..65535, got 70000"),
        ([("", 80)], TypeError, "a destination's host is a name or an address, got ''"),
    ],
)
def test_connex_destinations_are_checked(
    destinations: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        Connex(destinations)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Connex([("h", 1)], connect_timeout=-1), ValueError, "connect_timeout must be"),
        (lambda: Connex([("h", 1)], inactivity_timeout="5"), TypeError, "inactivity_timeout"),
        (lambda: Connex([("h", 1)], queue_limit=-1), ValueError, "queue_limit must be >= 0"),
        (lambda: Connex([("h", 1)], max_retries=1.5), TypeError, "max_retries must be a whole"),
        (lambda: Connex([("h", 1)], backoff=3), TypeError, "backoff must be a Backoff"),
        (lambda: TCPClient(port=0), ValueError, "port must be in 1..65535, got 0"),
        (lambda: TCPClient(connect_timeout=float("nan")), ValueError, "finite number"),
        (lambda: TCPClient(high_water=1, low_water=2), ValueError, "low_water <= high_water"),
        (lambda: TCPServer(0, max_accepts=0), ValueError, "max_accepts must be >= 1"),
        (lambda: TCPServer(0, accept_backoff=None), TypeError, "accept_backoff must be a"),
        (lambda: TCPServer(0, handshake_timeout=-2), ValueError, "handshake_timeout must"),
        (lambda: ThreadedTCPClient("h", 99999), ValueError, "port must be in 1..65535"),
        (lambda: ThreadedTCPClient("h", 1, close_timeout=None), TypeError, "close_timeout"),
        (lambda: UDPServer(0, max_reads=0), ValueError, "max_reads"),
    ],
)
def test_options_are_checked(make: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        make()
    assert message in str(info.value)


def test_an_address_in_use_is_named() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError) as info:
            TCPServer(("127.0.0.1", port))
    assert info.value.errno == errno.EADDRINUSE
    assert isinstance(info.value, OSError)
    assert str(info.value) == f"[Errno 98] cannot bind 127.0.0.1:{port}: Address already in use"
