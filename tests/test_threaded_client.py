"""ThreadedTCPClient: a socket serviced by its own thread, talking to the tree by events.

Peers are :class:`RestartableServer` (records, echoes) and stdlib sockets. Every wait is on
an event or a condition with a timeout; the I/O thread must be gone after close and stop.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from _fault_proxy import RestartableServer, full_backlog, hold_port
from _net_support import Inbox, on, payload
from netcomp import Component, Event, Manager
from netcomp.net import ConnectTimeout, NotConnected, ThreadedTCPClient, close, write
from netcomp.testing import Recorder, running

CH = "threaded"


def client_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("netcomp-threadedclient")]


@contextlib.contextmanager
def app(client: ThreadedTCPClient, *others: Any) -> Iterator[tuple[Manager, Recorder]]:
    manager = Manager()
    client.register(manager)
    for other in others:
        other.register(manager)
    with running(manager) as recorder:
        yield manager, recorder
    assert not client.alive, "the I/O thread outlived the manager"


def test_initial_send_then_writes_then_echoed_reads_in_order() -> None:
    with RestartableServer(echo=True) as server:
        client = ThreadedTCPClient(*server.address, initial_send=b"hello;", channel=CH)
        inbox = Inbox(CH)
        with app(client, inbox) as (manager, recorder):
            for index in range(20):
                manager.fire(write(b"line %02d;" % index), CH)  # some before connected
            expected = b"hello;" + b"".join(b"line %02d;" % i for i in range(20))
            assert server.wait_received(len(expected)) == expected
            assert inbox.wait_size(len(expected), timeout=5) == expected
            assert recorder.wait_for("connected", predicate=on(CH)).args == server.address
            assert client.alive and client.connected
        assert not client_threads()


def test_megabytes_both_ways_do_not_deadlock() -> None:
    data = payload(8 * 1024 * 1024, seed=4)
    with RestartableServer(echo=True) as server:
        client = ThreadedTCPClient(*server.address, channel=CH)
        inbox = Inbox(CH)
        with app(client, inbox) as (manager, recorder):
            recorder.wait_for("connected", predicate=on(CH))
            manager.fire(write(data), CH)  # one write far larger than both socket buffers
            assert inbox.wait_size(len(data), timeout=30) == data


def test_close_sends_what_is_left_then_ends_and_joins_the_thread() -> None:
    with RestartableServer() as server:
        client = ThreadedTCPClient(*server.address, channel=CH)
        with app(client) as (manager, recorder):
            recorder.wait_for("connected", predicate=on(CH))
            manager.fire(write(b"x" * 100_000), CH)
            manager.fire(close(), CH)
            recorder.wait_for("disconnected", predicate=on(CH))
            assert server.wait_received(100_000) == b"x" * 100_000
            server.wait_eofs(1)
            manager.fire(write(b"too late"), CH)
            refused = recorder.wait_for("error", predicate=on(CH))
            assert isinstance(refused.args[0], NotConnected)
            thread = client._io_thread
            assert thread is not None
            thread.join(5)
            assert not thread.is_alive()
            names = [e.name for e in recorder.events if on(CH)(e)]
            assert names.index("connected") < names.index("disconnected")


def test_manager_stop_ends_the_thread() -> None:
    with RestartableServer() as server:
        client = ThreadedTCPClient(*server.address, channel=CH)
        manager = Manager()
        client.register(manager)
        with running(manager) as recorder:
            recorder.wait_for("connected", predicate=on(CH))
            manager.fire(write(b"bye"), CH)
            assert client.alive
        # running() stopped the manager: the stop waited for the thread, which was joined
        assert not client.alive
        assert server.wait_received(3) == b"bye"
        server.wait_eofs(1)
        assert "disconnected" in recorder.names_seen()


def test_refused_connect_is_unreachable_and_the_thread_ends() -> None:
    with hold_port() as holder:
        host, port = holder.getsockname()[:2]
        client = ThreadedTCPClient(host, port, channel=CH)
        with app(client) as (_manager, recorder):
            event = recorder.wait_for("unreachable", predicate=on(CH))
            assert event.args[:2] == (host, port)
            assert isinstance(event.args[2], ConnectionRefusedError)
            assert "connected" not in recorder.names_seen()


def test_connect_timeout_is_unreachable() -> None:
    with full_backlog() as address:
        client = ThreadedTCPClient(*address, channel=CH, connect_timeout=0.3)
        with app(client) as (_manager, recorder):
            recorder.wait_for("registered", predicate=lambda e: e.args[0] is client)
            event = recorder.wait_for("unreachable", predicate=on(CH), timeout=5, done=False)
            if recorder.count("connected"):
                pytest.skip("this kernel completed a connect to a listener with a full backlog")
            assert isinstance(event.args[2], ConnectTimeout)


def test_close_while_connecting_ends_quietly() -> None:
    with full_backlog() as address:
        client = ThreadedTCPClient(*address, channel=CH, connect_timeout=30)
        with app(client) as (manager, recorder):
            recorder.wait_for("started")
            manager.fire(close(), CH)
            recorder.wait_for("close", predicate=on(CH))
            thread = client._io_thread
            assert thread is not None
            thread.join(5)  # woken out of its connect wait, not after 30 s
            assert not thread.is_alive()
            if recorder.count("connected"):
                pytest.skip("this kernel completed a connect to a listener with a full backlog")
            assert "unreachable" not in recorder.names_seen()


@pytest.mark.parametrize("how", ["close", "reset"])
def test_peer_that_goes_away_gives_disconnected(how: str) -> None:
    with RestartableServer() as server:
        client = ThreadedTCPClient(*server.address, channel=CH)
        with app(client) as (manager, recorder):
            recorder.wait_for("connected", predicate=on(CH))
            server.wait_accepted(1)
            server.stop(reset=how == "reset")
            recorder.wait_for("disconnected", predicate=on(CH))
            errors = [e for e in recorder.events if e.name == "error" and on(CH)(e)]
            if how == "reset":
                assert errors and isinstance(errors[0].args[0], ConnectionResetError)
            else:
                assert not errors
            manager.fire(write(b"nobody"), CH)  # refused, or reported as too late to send
            recorder.wait_for(
                "error", predicate=lambda e: on(CH)(e) and isinstance(e.args[0], NotConnected)
            )


def test_read_handler_result_is_sent_back() -> None:
    class Answer(Component):
        channel = CH

        def read(self, data: bytes) -> bytes:
            return data.upper()

    with RestartableServer() as server:
        client = ThreadedTCPClient(*server.address, channel=CH)
        with app(client, Answer()) as (_manager, recorder):
            recorder.wait_for("connected", predicate=on(CH))
            server.wait_accepted(1)
            server.send(b"shout")
            assert server.wait_received(5) == b"SHOUT"


def test_reads_in_flight_are_bounded() -> None:
    """The thread stops reading while ``max_pending_reads`` reads wait for the loop."""

    class Slow(Component):
        channel = CH
        outstanding = 0
        peak = 0
        got = b""

        async def read(self, data: bytes) -> None:
            self.outstanding += 1
            self.peak = max(self.peak, self.outstanding)
            self.got += data
            await self.wait("release", "gate", timeout=10)
            self.outstanding -= 1

    slow = Slow()
    with RestartableServer() as server:
        client = ThreadedTCPClient(*server.address, channel=CH, max_pending_reads=2)
        with app(client, slow) as (manager, recorder):
            recorder.wait_for("connected", predicate=on(CH))
            server.wait_accepted(1)
            chunks = 12
            for index in range(chunks):
                server.send(b"<%02d>" % index)  # separate sends: usually separate reads
            expected = b"".join(b"<%02d>" % i for i in range(chunks))
            for round_ in range(200):  # bounded: release until everything arrived
                if len(slow.got) >= len(expected):
                    break
                recorder.wait_for("read", predicate=on(CH), count=round_ + 1, done=False)
                manager.fire(Event.create("release"), "gate")
                recorder.wait_for("release", count=round_ + 1)
            assert slow.got == expected
            assert slow.peak <= 2
            manager.fire(Event.create("release"), "gate")


def test_close_before_the_loop_starts_never_connects() -> None:
    with RestartableServer() as server:
        client = ThreadedTCPClient(*server.address, channel=CH)
        manager = Manager()
        manager.fire(close(), CH)  # queued before the client's own ``registered``
        client.register(manager)
        with running(manager) as recorder:
            recorder.wait_for("close", predicate=on(CH))
        assert client._io_thread is None
        assert server.accepted == 0


def test_stop_after_close_ends_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    # A bug: the loop's end nudged the wake-up descriptor the ended thread had closed
    # (ValueError from eventfd_write(-1)), logged as an error at every such stop.
    with RestartableServer() as server:
        client = ThreadedTCPClient(*server.address, channel=CH)
        with caplog.at_level(logging.ERROR, logger="netcomp"), app(client) as (manager, rec):
            rec.wait_for("connected", predicate=on(CH))
            manager.fire(close(), CH)
            rec.wait_for("disconnected", predicate=on(CH))
            thread = client._io_thread
            assert thread is not None
            thread.join(5)
            rec.wait_for("close", predicate=on(CH))
        assert not [r for r in caplog.records if "cleaned up" in r.getMessage()]
