"""``netcomp.pipeline``: a FileReader's chunks through a ThreadedTCPClient (and a TCPClient,
with a transforming stage between) to a sink on 127.0.0.1, byte for byte, with the
reader paused by backpressure and the memory held bounded."""

from __future__ import annotations

import hashlib
import random
import resource
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from _net_support import on
from netcomp import Component, Event, FileReader, Manager, Pipeline, handler, pipeline
from netcomp.net import TCPClient, ThreadedTCPClient, connect
from netcomp.testing import VirtualTime, running

MiB = 1024 * 1024
CHUNK = 64 * 1024


def write_file(path: Path, size: int, seed: int = 7) -> str:
    """A file of ``size`` random bytes, written in chunks; returns its sha256."""
    rng = random.Random(seed)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            part = rng.randbytes(min(MiB, left))
            digest.update(part)
            out.write(part)
            left -= len(part)
    return digest.hexdigest()


class Sink:
    """A stdlib server that accepts one connection, reads nothing until ``go`` is set
    (so the sender's buffers fill), then reads to EOF, hashing."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.go = threading.Event()
        self.received = 0
        self.digest = hashlib.sha256()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.listener.settimeout(10)
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(30)
            self.go.wait(30)
            while data := conn.recv(MiB):
                self.digest.update(data)
                self.received += len(data)

    def close(self) -> None:
        self.go.set()
        self.thread.join(60)
        self.listener.close()
        assert not self.thread.is_alive()


@pytest.fixture
def peers() -> Any:
    """Made peers (Sink, Source), closed at teardown even when the test failed."""
    made: list[Any] = []
    yield made
    for peer in made:
        peer.close()


class Peak(Component):
    """After each ``write`` to the client is handled, records what the client buffers."""

    def init(self, client: Any, channel: Any) -> None:
        self.channel = channel
        self.client = client
        self.peak = 0

    @handler("write", priority=-1)
    def _after_write(self, data: bytes) -> None:
        self.peak = max(self.peak, self.client.buffered)


def test_fifty_mib_file_to_a_server_through_a_threaded_client(
    tmp_path: Path, peers: list[Any]
) -> None:
    size = 50 * MiB
    expected = write_file(tmp_path / "big", size)
    sink = Sink()
    peers.append(sink)
    high = 1 * MiB
    reader = FileReader(tmp_path / "big", chunk_size=CHUNK, channel="reader")
    client = ThreadedTCPClient(
        "127.0.0.1", sink.port, channel="up", high_water=high, low_water=high // 4
    )
    pipe = pipeline(reader, client)
    manager = Manager()
    pipe.register(manager)
    peak = Peak(client, "up")
    peak.register(manager)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    ends = ("pause", "resume", "close", "disconnected")
    with running(manager, record=ends) as recorder:  # not the 50 MiB of data events
        recorder.wait_for("pause", predicate=on("reader"), timeout=30)
        # held back while the sink reads nothing (the kernel's buffers take a few MiB: the
        # reader may resume and pause again meanwhile, but never gets far)
        assert reader.sent < size // 2
        sink.go.set()
        recorder.wait_for("disconnected", predicate=on("up"), timeout=60)
    sink.close()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    assert sink.received == size and sink.digest.hexdigest() == expected
    assert reader.sent == size and reader.pauses >= 1 and pipe.pauses == reader.pauses
    assert recorder.count("resume") == reader.pauses
    # memory bounded: the client never held more than high water plus the few chunks in
    # flight while the pause travels (the write's batch, the pause's, the reader's turn)...
    assert peak.peak <= high + 4 * CHUNK
    # ...and the process never grew by anything near the file's size
    assert rss_growth < 25 * MiB
    assert [e.name for e in recorder.events if e.name == "close" and on("up")(e)] == ["close"]


class Upper(Component):
    """A middle stage: ``write(data)`` in, ``shouted(data)`` out (a declared output)."""

    output_event = "shouted"
    channel = "upper"

    @handler("write")
    def _in(self, data: bytes) -> None:
        self.fire(Event.create("shouted", data.upper()))

    @handler("close")
    def _end(self) -> None:
        self.fire(Event.create("eof"))


def test_three_stages_with_a_declared_output_and_a_tcp_client(
    tmp_path: Path, peers: list[Any]
) -> None:
    text = b"".join(b"line %05d of the file\n" % n for n in range(20000))
    (tmp_path / "text").write_bytes(text)
    sink = Sink()
    peers.append(sink)
    sink.go.set()
    client = TCPClient(channel="tcp")
    manager = Manager()
    client.register(manager)
    with running(manager) as recorder:
        manager.fire(connect("127.0.0.1", sink.port), "tcp")
        recorder.wait_for("connected", predicate=on("tcp"))
        reader = FileReader(tmp_path / "text", chunk_size=4096, channel="reader")
        pipe = Pipeline(reader, Upper(), client)
        assert client.parent is manager and reader.parent is pipe
        pipe.register(manager)  # the reader starts: the loop is running
        recorder.wait_for("disconnected", predicate=on("tcp"), timeout=20)
    sink.close()
    assert sink.digest.hexdigest() == hashlib.sha256(text.upper()).hexdigest()


def test_file_reader_keeps_its_rate_on_the_loop_clock(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 1000)
    reader = FileReader(tmp_path / "f", chunk_size=100, rate=1000.0, channel="reader")
    manager = Manager()
    reader.register(manager)
    vt = VirtualTime(manager.loop)
    with running(manager) as recorder:
        vt.settle()
        assert reader.sent == 100  # the first chunk goes at once
        vt.advance(0.45)
        assert reader.sent == 500  # then one each 0.1 s: 100 bytes at 1000 B/s
        manager.fire(Event.create("pause"), "reader")
        vt.advance(1.0)
        assert reader.sent == 500 and reader.paused
        manager.fire(Event.create("resume"), "reader")
        vt.settle()
        assert reader.sent == 600  # no burst to catch up on the time paused
        vt.advance(1.0)
        recorder.wait_for("eof", predicate=on("reader"))
        assert reader.sent == 1000


def test_bad_pipelines_are_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    one = FileReader(tmp_path / "f", channel="a")
    with pytest.raises(ValueError, match="two or more"):
        pipeline(one)
    with pytest.raises(ValueError, match=r"distinct channels.*'a'"):
        pipeline(one, FileReader(tmp_path / "f", channel="a"))
    with pytest.raises(TypeError, match="is a component"):
        pipeline(one, "not a component")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunk_size"):
        FileReader(tmp_path / "f", chunk_size=0)
    with pytest.raises(FileNotFoundError):
        FileReader(tmp_path / "missing")


class Source:
    """A stdlib server that sends ``data`` to the one client that connects, then closes."""

    def __init__(self, data: bytes) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.data = data
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.listener.settimeout(10)
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(30)
            conn.sendall(self.data)

    def close(self) -> None:
        self.thread.join(60)
        self.listener.close()
        assert not self.thread.is_alive()


@pytest.mark.parametrize("source_kind", ["tcp", "threaded"])
def test_a_client_as_the_source_is_paused_too(source_kind: str, peers: list[Any]) -> None:
    data = random.Random(3).randbytes(16 * MiB)
    source, sink = Source(data), Sink()
    peers += [source, sink]
    high = 512 * 1024
    if source_kind == "tcp":
        upstream: Any = TCPClient(channel="down")
        downstream: Any = ThreadedTCPClient(
            "127.0.0.1", sink.port, channel="up", high_water=high, low_water=high // 4
        )
    else:
        # reads already handed to the loop when the pause comes still go on: at most
        # max_pending_reads of up to 64 KiB each
        upstream = ThreadedTCPClient("127.0.0.1", source.port, channel="down", max_pending_reads=8)
        downstream = TCPClient(channel="up", high_water=high, low_water=high // 4)
    manager = Manager()
    downstream.register(manager)
    peak = Peak(downstream, "up")
    peak.register(manager)
    ends = ("pause", "resume", "connected", "disconnected")
    with running(manager, record=ends) as recorder:
        if source_kind == "threaded":
            manager.fire(connect("127.0.0.1", sink.port), "up")
            recorder.wait_for("connected", predicate=on("up"))
        pipe = pipeline(upstream, downstream)
        pipe.register(manager)
        if source_kind == "tcp":
            manager.fire(connect("127.0.0.1", source.port), "down")
        recorder.wait_for("pause", predicate=on("down"), timeout=30)
        sink.go.set()
        recorder.wait_for("disconnected", predicate=on("up"), timeout=60)
    source.close()
    sink.close()
    assert sink.received == len(data)
    assert sink.digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert pipe.pauses >= 1 and recorder.count("resume") == pipe.pauses
    # the paused source stopped reading: what waited downstream stayed near high water
    # (a source that ignored pause() would have pushed most of the 16 MiB in)
    assert peak.peak <= high + 2 * MiB
