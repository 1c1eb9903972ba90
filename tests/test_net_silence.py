"""Net failures nobody handles are logged once, saying what, where and why
(docs/architecture.md, "Errors"): a refused connect, a write on a link that is down, a
Connex giving up, a peer's reset (at INFO: the peer's doing)."""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from netcomp import Component, Manager
from netcomp.net import Backoff, Connex, TCPClient, TCPServer, connect, write
from netcomp.testing import VirtualTime, running


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port nothing listens on (bound, so nobody else takes it): connects are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def net_records(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "netcomp.net"]


def test_a_refused_connect_nobody_handles_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    manager = Manager() + TCPClient()
    with closed_port() as port, running(manager) as recorder:
        manager.fire(connect("127.0.0.1", port), "client")
        recorder.wait_for("unreachable")
        (report,) = recorder.wait_for("error").args  # circuits' pair: unreachable, error
        assert isinstance(report, ConnectionRefusedError)
    assert net_records(caplog) == [
        (
            logging.WARNING,
            f"cannot connect to 127.0.0.1:{port} on 'client': "
            "ConnectionRefusedError(111, 'Connection refused') "
            "(nothing handles 'unreachable' or 'error' there)",
        )
    ]


class TakesUnreachable(Component):
    channel = "client"

    def unreachable(self, host: str, port: int, reason: Any) -> None:
        pass


class TakesError(Component):
    channel = "client"

    def error(self, err: BaseException) -> None:
        pass


@pytest.mark.parametrize("taker", [TakesUnreachable, TakesError], ids=["unreachable", "error"])
def test_a_refused_connect_handled_as_either_event_is_not_logged(
    caplog: pytest.LogCaptureFixture, taker: type[Component]
) -> None:
    manager = Manager() + TCPClient() + taker()
    with closed_port() as port, running(manager) as recorder:
        manager.fire(connect("127.0.0.1", port), "client")
        recorder.wait_for("error")
    assert net_records(caplog) == []


def test_a_write_while_not_connected_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    manager = Manager() + TCPClient()
    with running(manager) as recorder:
        manager.fire(write(b"lost?"), "client")
        recorder.wait_for("error")
    ((level, message),) = net_records(caplog)
    assert level == logging.WARNING
    assert message.startswith("error on 'client': NotConnected(")
    assert message.endswith("write while not connected') (nothing handles 'error' there)")


def test_a_connex_that_gives_up_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with closed_port() as port:
        connex = Connex([("127.0.0.1", port)], max_retries=2, backoff=Backoff(0.5, 1, 0.5, 0))
        manager = Manager() + connex
        vt = VirtualTime(manager.loop)
        with running(manager) as recorder:
            for attempt in (1, 2):
                recorder.wait_for("unreachable", count=attempt)
                vt.advance_to_next()  # the backoff delay
            recorder.wait_for("unreachable", count=3)
            recorder.wait_for("error")
    records = net_records(caplog)
    assert [level for level, _ in records] == [logging.WARNING] * 4
    assert records[0][1].startswith(f"cannot connect to 127.0.0.1:{port} (attempt 1) on ")
    assert records[-1][1] == (
        "error on 'connex': RetriesExhausted(\"gave up after 3 failure(s) in a row; last: "
        "ConnectionRefusedError(111, 'Connection refused')\") (nothing handles 'error' there)"
    )


def test_a_peers_reset_on_a_server_connection_is_logged_at_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="netcomp.net")
    server = TCPServer(0)
    manager = Manager() + server
    with running(manager) as recorder:
        peer = socket.create_connection(server.bind, timeout=5)
        recorder.wait_for("connect")
        host, port = peer.getsockname()
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()  # linger on with a zero timeout: the kernel sends RST, not FIN
        recorder.wait_for("disconnect")
    assert net_records(caplog) == [
        (
            logging.INFO,
            f"error with {host}:{port} on 'server': "
            "ConnectionResetError(104, 'Connection reset by peer') "
            "(nothing handles 'error' there)",
        )
    ]
