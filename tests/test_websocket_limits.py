"""WebSocket limits and close codes, with raw frames on a plain socket: each limit and
each code, checked as frames arrive; failures touch one WebSocket only; timers (ping
interval, pong timeout, close timeout) on virtual time; backpressure through ``drained``.
"""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

import pytest

from _web_support import small_buffer_listener
from _ws_support import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    TEXT,
    Echo,
    RawWS,
    WSSite,
    deflated,
    frame,
    ws_serve,
)
from netcomp import Component, Event
from netcomp.net import close, write
from netcomp.web import WebSocketLimits, WebSocketsDispatcher

KiB = 1024
MiB = 1024 * KiB
SMALL = WebSocketLimits(max_message_size=1000, max_frames=4)


def on_ws(event: Event) -> bool:
    return event.channels == ("ws",)


def send(raw: RawWS, data: bytes) -> None:
    """Send, ignoring that the server may cut the connection before taking it all."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        raw.send_raw(data)


def fails_with(site: WSSite, raw: RawWS, data: bytes, code: int, reason: str = "") -> None:
    """``data`` makes the server close with ``code``, end the connection, and tell the
    application the same code."""
    send(raw, data)
    got, why = raw.close_code()
    assert got == code, (got, why)
    assert reason in why
    assert raw.ends()
    raw.sock.close()
    site.recorder.wait_for("closing", predicate=lambda e: on_ws(e) and e.args[1:] == (code, why))
    site.recorder.wait_for("disconnect", predicate=on_ws)


# ------------------------------------------------------------------ sizes
def test_a_huge_frame_fails_once_the_limit_is_passed_not_when_it_ends() -> None:
    with ws_serve(Echo()) as site, site.raw() as raw:
        head = frame(BINARY, b"", length=1 << 40)  # a terabyte is announced...
        started = time.monotonic()
        fails_with(site, raw, head + b"\0" * (MiB + 1), 1009, "larger than 1048576 bytes")
        assert time.monotonic() - started < 5  # ...and refused after one MiB


@pytest.mark.parametrize(
    ("frames", "ok"),
    [
        ([frame(TEXT, b"a" * 1000)], True),
        ([frame(TEXT, "é".encode() * 500)], True),
        ([frame(TEXT, b"a" * 1001)], False),
        ([frame(TEXT, "é".encode() * 500 + b"a")], False),
        ([frame(BINARY, b"a" * 600, fin=False), frame(CONTINUATION, b"b" * 400)], True),
        ([frame(BINARY, b"a" * 600, fin=False), frame(CONTINUATION, b"b" * 401)], False),
    ],
    ids=["1000", "500x2-bytes", "1001", "1001-utf8", "600+400", "600+401"],
)
def test_the_message_size_limit_is_exact(frames: list[bytes], ok: bool) -> None:
    with ws_serve(Echo(), limits=SMALL) as site, site.raw() as raw:
        if ok:
            raw.send_raw(b"".join(frames))
            assert len(raw.recv()) in (1000, 500)
        else:
            fails_with(site, raw, b"".join(frames), 1009, "larger than 1000 bytes")


def test_too_many_frames_in_one_message() -> None:
    with ws_serve(Echo(), limits=SMALL) as site:
        with site.raw() as raw:
            parts = [frame(TEXT, b"a", fin=False), frame(CONTINUATION, b"b", fin=False)]
            raw.send_raw(b"".join(parts) + frame(CONTINUATION, b"c", fin=False))
            raw.send_raw(frame(CONTINUATION, b"d"))  # the fourth: fine
            assert raw.recv() == "abcd"
        with site.raw() as raw:  # empty continuations cost nothing in size, but count
            flood = frame(TEXT, b"a", fin=False) + frame(CONTINUATION, b"", fin=False) * 10
            fails_with(site, raw, flood, 1008, "more than 4 frames")


# ------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "data",
    [
        frame(TEXT, b"\xff"),
        frame(TEXT, b"ok \xe2\x98"),  # cut in the middle of a character
        frame(TEXT, b"\xe2", fin=False) + frame(CONTINUATION, b"\x28\xa1"),
        frame(CLOSE, b"\x03\xe8\xff"),  # a close reason must be UTF-8 too
    ],
    ids=["0xff", "truncated", "split-invalid", "close-reason"],
)
def test_invalid_utf8_is_1007(data: bytes) -> None:
    with ws_serve(Echo()) as site, site.raw() as raw:
        fails_with(site, raw, data, 1007)


def unmasked(opcode: int, payload: bytes) -> bytes:
    return bytes([0x80 | opcode, len(payload)]) + payload


@pytest.mark.parametrize(
    "data",
    [
        unmasked(TEXT, b"no mask"),
        bytes([0x80 | 0x20 | TEXT]) + frame(TEXT, b"x")[1:],  # RSV2
        frame(0x3, b"reserved opcode"),
        frame(PING, b"x", fin=False),  # a control frame cannot be fragmented
        frame(CONTINUATION, b"nothing to continue"),
        frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"),  # a new message inside one
        frame(CLOSE, b"\x03"),  # one byte: no room for a code
        frame(CLOSE, (999).to_bytes(2, "big")),
        frame(PING, b"p" * 126),  # control frames carry at most 125 bytes
        frame(TEXT, b"compressed?", rsv1=True),  # deflate was not negotiated
    ],
    ids=[
        "unmasked",
        "rsv2",
        "opcode-3",
        "fragmented-ping",
        "lone-continuation",
        "nested-message",
        "close-1-byte",
        "close-999",
        "long-ping",
        "rsv1-no-deflate",
    ],
)
def test_protocol_errors_are_1002(data: bytes) -> None:
    with ws_serve(Echo()) as site, site.raw() as raw:
        fails_with(site, raw, data, 1002)


def test_a_failure_touches_its_websocket_only() -> None:
    with ws_serve(Echo(), limits=SMALL) as site, site.raw() as good, site.raw() as bad:
        good.send("before")
        assert good.recv() == "before"
        fails_with(site, bad, frame(TEXT, b"x" * 2000), 1009)
        good.send("after")
        assert good.recv() == "after"


def test_pings_are_answered_and_closes_echoed() -> None:
    with ws_serve(Echo()) as site, site.raw() as raw:
        raw.send_raw(frame(PING, b"are you there"))
        raw.pump(lambda: bool(raw.pongs))
        assert raw.pongs == [b"are you there"]
        raw.close(4000, "done here")
        assert raw.close_code() == (4000, "done here")
        assert raw.ends()
        event = site.recorder.wait_for("closing", predicate=on_ws)
        assert event.args[1:] == (4000, "done here")


def test_the_connection_ending_without_a_close_frame_is_1006() -> None:
    with ws_serve(Echo()) as site:
        raw = site.raw()
        raw.sock.shutdown(socket.SHUT_WR)
        assert raw.ends()
        raw.sock.close()
        event = site.recorder.wait_for("closing", predicate=on_ws)
        assert event.args[1] == 1006
        site.recorder.wait_for("disconnect", predicate=on_ws)


# ---------------------------------------------------------- compression
def test_a_compression_bomb_stops_at_the_limit_after_inflation() -> None:
    bomb = deflated(b"\0" * (64 * MiB))  # about 64 KiB on the wire
    assert len(bomb) < 100 * KiB
    with ws_serve(Echo()) as site, site.raw(deflate=True) as raw:
        started = time.monotonic()
        fails_with(site, raw, frame(BINARY, bomb, rsv1=True), 1009, "inflating to more than")
        assert time.monotonic() - started < 5


def test_a_bomb_in_fragments_too() -> None:
    bomb = deflated(b"a" * (4 * MiB))
    third = len(bomb) // 3
    parts = [
        frame(TEXT, bomb[:third], rsv1=True, fin=False),
        frame(CONTINUATION, bomb[third : 2 * third], fin=False),
        frame(CONTINUATION, bomb[2 * third :]),
    ]
    with ws_serve(Echo()) as site, site.raw(deflate=True) as raw:
        fails_with(site, raw, b"".join(parts), 1009, "inflating to more than")


def test_endless_empty_deflate_blocks_are_bounded_on_the_wire() -> None:
    empty_block = b"\x00\x00\x00\xff\xff"  # a stored block of no bytes: inflates to nothing
    with ws_serve(Echo(), limits=SMALL) as site, site.raw(deflate=True) as raw:
        data = frame(BINARY, empty_block * 500, rsv1=True, fin=False)
        fails_with(site, raw, data, 1009, "compressed message of more than")


def test_compressed_messages_within_the_limit_pass() -> None:
    text = "netcomp " * 120  # 960 bytes, compresses well
    with ws_serve(Echo(), limits=SMALL) as site, site.raw(deflate=True) as raw:
        raw.send_raw(frame(TEXT, deflated(text.encode()), rsv1=True))
        assert raw.recv() == text
        raw.send(text)  # wsproto's own compression, and its answer compressed by us
        assert raw.recv() == text


def test_deflate_errors_are_1007() -> None:
    with ws_serve(Echo()) as site, site.raw(deflate=True) as raw:
        fails_with(site, raw, frame(BINARY, b"\xff\xff\xff\xff", rsv1=True), 1007)


# ------------------------------------------------------------- virtual time
def test_an_idle_peer_is_pinged_and_a_silent_one_closed_on_time() -> None:
    limits = WebSocketLimits(ping_interval=20, ping_timeout=10)
    with ws_serve(Echo(), limits=limits, virtual=True) as site, site.raw() as raw:
        vt = site.vt
        vt.advance(19.9)
        assert raw.quiet()
        vt.advance(0.1)
        raw.pump(lambda: bool(raw.pings))
        vt.advance(9.9)
        assert raw.quiet()
        vt.advance(0.1)
        assert raw.close_code() == (1011, "keepalive ping timeout")
        assert raw.ends()


def test_a_peer_that_answers_or_talks_stays() -> None:
    limits = WebSocketLimits(ping_interval=20, ping_timeout=10)
    with ws_serve(Echo(), limits=limits, virtual=True) as site, site.raw() as raw:
        vt = site.vt
        vt.advance(20)
        raw.pump(lambda: bool(raw.pings))
        with vt.reading():
            raw.pong(raw.pings[0])
        vt.advance(15)  # past the pong timeout: the pong counted
        assert raw.quiet()
        vt.advance(5)  # 20 s after the pong: another ping
        raw.pump(lambda: len(raw.pings) == 2)
        with vt.reading():
            raw.send("data counts too")
        assert raw.recv() == "data counts too"
        vt.advance(15)
        assert raw.quiet() and raw.closed_with is None


def test_no_keepalive_when_the_interval_is_none() -> None:
    limits = WebSocketLimits(ping_interval=None)
    with ws_serve(Echo(), limits=limits, virtual=True) as site, site.raw() as raw:
        assert site.vt.deadlines() == []
        site.vt.advance(3600)
        assert raw.quiet()


def test_our_close_waits_for_the_answer_then_cuts() -> None:
    limits = WebSocketLimits(close_timeout=5, ping_interval=None)
    with ws_serve(Echo(), limits=limits, virtual=True) as site, site.raw() as raw:
        sock = site.recorder.wait_for("connect", predicate=on_ws).args[0]
        site.manager.fire(close(sock, 1000, "bye"), "ws")
        assert raw.close_code() == (1000, "bye")
        site.vt.advance(4.9)
        assert raw.quiet()
        site.vt.advance(0.1)
        assert raw.ends()
        site.recorder.wait_for("disconnect", predicate=on_ws)


def test_an_answered_close_ends_at_once() -> None:
    limits = WebSocketLimits(ping_interval=None)
    with ws_serve(Echo(), limits=limits, virtual=True) as site, site.raw() as raw:
        sock = site.recorder.wait_for("connect", predicate=on_ws).args[0]
        site.manager.fire(close(sock, 1000, "bye"), "ws")
        assert raw.close_code() == (1000, "bye")
        raw.close(1000)
        assert raw.ends()  # no time passed


# ------------------------------------------------------------- backpressure
class Flood(Component):
    """On "flood", writes 64 messages of 64 KiB at once; records drained."""

    channel = "ws"

    def read(self, sock: socket.socket, message: str) -> None:
        for _ in range(64):
            self.fire(write(sock, b"x" * (64 * KiB)))


def test_a_slow_reader_fills_the_buffer_and_drained_says_when_it_empties() -> None:
    with ws_serve(Flood(), server_options={"sock": small_buffer_listener()}) as site:
        raw = RawWS(site.port, rcvbuf=32 * KiB)
        dispatcher: WebSocketsDispatcher = site.dispatcher
        sock = site.recorder.wait_for("connect", predicate=on_ws).args[0]
        raw.send("flood")
        site.recorder.wait_for("write", predicate=on_ws, count=64)
        buffered = call_on_loop(site, dispatcher.buffered, sock)
        assert buffered > 1 * MiB  # above the high water mark: reading from it paused
        assert not site.recorder.count("drained")
        raw.pump(lambda: len(raw.messages) == 64, timeout=10)
        site.recorder.wait_for("drained", predicate=on_ws)
        assert call_on_loop(site, dispatcher.buffered, sock) == 0
        raw.sock.close()


def call_on_loop(site: WSSite, func: Any, *args: Any) -> Any:
    """Run ``func(*args)`` on the loop's thread (its state is the loop's) and return it."""
    from concurrent.futures import Future

    result: Future[Any] = Future()
    site.manager.loop.call_soon_threadsafe(lambda: result.set_result(func(*args)))
    return result.result(timeout=5)
