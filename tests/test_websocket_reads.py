"""How a peer's bytes are cut into reads never changes what a WebSocket delivers: many
frames in one read are acted on in order (and the limits still hold inside such a read),
a frame cut anywhere across reads (inside its header, its mask, its payload, a UTF-8
sequence) arrives the same, nothing after a close frame is delivered, and the client
takes frames that come with the server's 101 or after a 101 cut into pieces."""

from __future__ import annotations

import contextlib
import random
import socket
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from wsproto.frame_protocol import FrameProtocol, Opcode
from wsproto.utilities import generate_accept_token

from _ws_support import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    TEXT,
    TIMEOUT,
    Echo,
    RawWS,
    WSSite,
    frame,
    ws_serve,
)
from netcomp import Event, Manager
from netcomp.net import write
from netcomp.testing import Recorder, VirtualTime, running
from netcomp.web import WebSocketClient, WebSocketLimits, _wsendpoint

SMALL = WebSocketLimits(max_message_size=1000, max_frames=4, ping_interval=None)


def on_ws(event: Event) -> bool:
    return event.channels == ("ws",)


def reads(site: WSSite) -> list[Any]:
    """The messages the server's application got, in order."""
    return [e.args[1] for e in site.recorder.events if e.name == "read" and on_ws(e)]


def close_frame(code: int, reason: bytes = b"") -> bytes:
    return frame(CLOSE, code.to_bytes(2, "big") + reason)


# A stream of client frames and the messages it makes: short and 16-bit lengths, empty
# messages, a text message fragmented with a ping between its fragments and a UTF-8
# sequence cut between two of them, binary fragments.
STREAM = [
    (frame(TEXT, b"one"), "one"),
    (frame(BINARY, b"\x00\x01\x02"), b"\x00\x01\x02"),
    (frame(TEXT, b""), ""),
    (frame(TEXT, "é☃".encode() * 40), "é☃" * 40),  # 200 bytes: a 16-bit length
    (
        frame(TEXT, b"fr", fin=False)
        + frame(PING, b"between")
        + frame(CONTINUATION, b"ag \xe2\x98", fin=False)
        + frame(CONTINUATION, b"\x83"),
        "frag ☃",
    ),
    (
        frame(BINARY, b"\xff" * 3, fin=False) + frame(CONTINUATION, b"\xfe" * 2),
        b"\xff" * 3 + b"\xfe" * 2,
    ),
    (frame(BINARY, b""), b""),
]
STREAM_BYTES = b"".join(data for data, _ in STREAM)
STREAM_MESSAGES = [message for _, message in STREAM]


@pytest.fixture(params=["frame-generator", "received-frames"])
def framer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the endpoint taking wsproto's frame generator directly (what the
    installed wsproto allows), and again as if a wsproto kept it elsewhere (the endpoint
    then iterates ``received_frames()``)."""
    if request.param == "received-frames":
        monkeypatch.setattr(_wsendpoint, "frame_source", lambda proto: None)
    return str(request.param)


def test_the_installed_wsproto_lends_its_frame_generator_and_buffer() -> None:
    proto = FrameProtocol(False, [])
    source = _wsendpoint.frame_source(proto)
    assert source is not None, "this wsproto keeps its frame generator elsewhere"
    frames, buffer = source
    second = frame(TEXT, b"two")
    proto.receive_bytes(frame(TEXT, b"one") + second[:3])
    assert buffer  # the bytes wait in that buffer
    assert next(frames)[:2] == (Opcode.TEXT, "one")
    assert len(buffer) == 3  # what is left: part of the next frame
    assert next(frames) is None  # no whole frame: the generator says so
    proto.receive_bytes(second[3:])
    assert next(frames)[:2] == (Opcode.TEXT, "two")
    assert not buffer  # all parsed: the endpoint stops asking here


# ------------------------------------------------------------ many in one read
def test_many_messages_in_one_read_are_delivered_and_answered_in_order(framer: str) -> None:
    messages: list[str | bytes] = []
    for i in range(300):
        messages.append(f"m{i}" if i % 3 else f"m{i}".encode())
    blob = b"".join(
        frame(TEXT if isinstance(m, str) else BINARY, m.encode() if isinstance(m, str) else m)
        for m in messages
    )
    with ws_serve(Echo(), limits=SMALL) as site, site.raw() as raw:
        raw.send_raw(blob + STREAM_BYTES)
        expected = messages + STREAM_MESSAGES
        assert [raw.recv() for _ in expected] == expected
        assert raw.pongs == [b"between"]
        assert reads(site) == expected


def test_the_limits_hold_inside_one_read(framer: str) -> None:
    cases = [
        (frame(TEXT, b"x" * 1001), 1009),  # too big
        (b"".join(frame(CONTINUATION if i else TEXT, b"x", fin=i == 4) for i in range(5)), 1008),
        (frame(TEXT, b"\xff"), 1007),  # bad UTF-8
        (frame(0x3, b"?"), 1002),  # a reserved opcode
    ]
    for bad, code in cases:
        with ws_serve(Echo(), limits=SMALL) as site, site.raw() as raw:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                raw.send_raw(frame(TEXT, b"before") + bad + frame(TEXT, b"after"))
            assert raw.close_code()[0] == code
            assert raw.ends()
            raw.sock.close()  # our end too: the server stops lingering
            site.recorder.wait_for("disconnect", predicate=on_ws)
            # The message before the bad frame reached the application; its answer came
            # after our close frame, too late to be sent (RFC 6455 section 5.5.1).
            assert reads(site) == ["before"], code
            assert raw.messages == []


def test_nothing_after_a_close_frame_is_delivered(framer: str) -> None:
    with ws_serve(Echo(), limits=SMALL) as site, site.raw() as raw:
        raw.send_raw(frame(TEXT, b"a") + close_frame(1000, b"bye") + frame(TEXT, b"b"))
        assert raw.close_code() == (1000, "bye")  # answered at once: "a"'s echo comes too late
        assert raw.ends()
        raw.sock.close()
        site.recorder.wait_for("disconnect", predicate=on_ws)
    assert reads(site) == ["a"]
    closing = next(e for e in site.recorder.events if e.name == "closing" and on_ws(e))
    assert closing.args[1:] == (1000, "bye")


# -------------------------------------------------------------- cut anywhere
def send_in_reads(site: WSSite, raw: RawWS, data: bytes, cuts: list[int]) -> None:
    """Send ``data`` cut at ``cuts``, each piece read by the server before the next."""
    start = 0
    for end in [*cuts, len(data)]:
        with site.vt.reading():
            raw.send_raw(data[start:end])
        start = end


def test_a_stream_cut_at_every_byte_gives_the_same_messages(framer: str) -> None:
    with ws_serve(Echo(), limits=SMALL, virtual=True) as site, site.raw() as raw:
        send_in_reads(site, raw, STREAM_BYTES, list(range(1, len(STREAM_BYTES))))
        assert [raw.recv() for _ in STREAM_MESSAGES] == STREAM_MESSAGES
        assert raw.pongs == [b"between"]
    assert reads(site) == STREAM_MESSAGES


@pytest.mark.parametrize("seed", range(3))
def test_a_stream_cut_at_random_gives_the_same_messages(seed: int, framer: str) -> None:
    chooser = random.Random(seed)
    data = STREAM_BYTES * 3
    cuts = sorted(chooser.sample(range(1, len(data)), 40))
    with ws_serve(Echo(), limits=SMALL, virtual=True) as site, site.raw() as raw:
        send_in_reads(site, raw, data, cuts)
        expected = STREAM_MESSAGES * 3
        assert [raw.recv() for _ in expected] == expected
    assert reads(site) == expected


def test_a_too_big_message_fails_in_the_read_that_passes_the_limit() -> None:
    with ws_serve(Echo(), limits=SMALL, virtual=True) as site, site.raw() as raw:
        head = frame(BINARY, b"\x00" * 1001)
        with site.vt.reading():
            raw.send_raw(head[:900])  # the header and 892 bytes of payload: within
        assert raw.quiet()
        with site.vt.reading():
            raw.send_raw(head[900:1000])  # 992: still within
        assert raw.quiet()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError), site.vt.reading():
            raw.send_raw(head[1000:1009])  # 1001: one byte too many
        assert raw.close_code()[0] == 1009


# ------------------------------------------------------------------- client
@contextlib.contextmanager
def scripted_server() -> Iterator[socket.socket]:
    """A listening socket whose single connection the test drives itself."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(TIMEOUT)
    try:
        yield listener
    finally:
        listener.close()


def accept_handshake(listener: socket.socket) -> tuple[socket.socket, bytes]:
    """Accept the client, read its request; return the connection and the 101's head."""
    conn, _ = listener.accept()
    conn.settimeout(TIMEOUT)
    request = b""
    while b"\r\n\r\n" not in request:
        request += conn.recv(4096)
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    head = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + generate_accept_token(key) + b"\r\n\r\n"
    )
    return conn, head


def server_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """An unmasked (server) frame with a short payload."""
    assert len(payload) < 126
    return bytes([(0x80 if fin else 0) | opcode, len(payload)]) + payload


SERVER_STREAM = (
    server_frame(TEXT, b"hello")
    + server_frame(BINARY, b"\x01\x02")
    + server_frame(TEXT, b"sn\xe2", fin=False)
    + server_frame(PING, b"p")
    + server_frame(CONTINUATION, b"\x98\x83man")
)
SERVER_MESSAGES = ["hello", b"\x01\x02", "sn☃man"]


def client_reads(recorder: Recorder, count: int) -> list[Any]:
    on_client = lambda e: e.channels == ("wsclient",)  # noqa: E731
    recorder.wait_for("read", predicate=on_client, count=count)
    return [e.args[0] for e in recorder.events if e.name == "read" and on_client(e)]


def test_frames_that_come_with_the_101_are_delivered() -> None:
    with scripted_server() as listener:
        manager = Manager()
        WebSocketClient(f"ws://127.0.0.1:{listener.getsockname()[1]}/").register(manager)
        with running(manager, check_errors=False) as recorder:
            conn, head = accept_handshake(listener)
            with conn:
                conn.sendall(head + SERVER_STREAM)
                assert client_reads(recorder, 3) == SERVER_MESSAGES
                pong = conn.recv(64)  # the ping was answered: a masked pong of b"p"
                assert pong[:2] == b"\x8a\x81" and len(pong) == 7


def test_a_101_cut_into_pieces_and_the_frames_after_it() -> None:
    with scripted_server() as listener:
        manager = Manager()
        vt = VirtualTime(manager.loop)
        WebSocketClient(f"ws://127.0.0.1:{listener.getsockname()[1]}/").register(manager)
        with running(manager, check_errors=False) as recorder:
            conn, head = accept_handshake(listener)
            with conn:
                answer = head + SERVER_STREAM
                # every byte of the head's end, then the frames in odd pieces
                cuts = [*range(len(head) - 5, len(head) + 3), len(head) + 9, len(head) + 20]
                start = 0
                for end in [*cuts, len(answer)]:
                    with vt.reading():
                        conn.sendall(answer[start:end])
                    start = end
                assert client_reads(recorder, 3) == SERVER_MESSAGES
                connected = [
                    e
                    for e in recorder.events
                    if e.name == "connected" and e.channels == ("wsclient",)
                ]
                assert len(connected) == 1


# ------------------------------------------------------- compressed or not
def read_server_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One frame from the server, off the wire: (its first byte, its payload)."""

    def exactly(count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = sock.recv(count - len(data))
            assert chunk, "the server ended the connection"
            data += chunk
        return data

    first, length = exactly(2)
    assert not length & 0x80, "a server's frames are not masked"
    length &= 0x7F
    if length == 126:
        length = int.from_bytes(exactly(2), "big")
    return first, exactly(length)


@pytest.mark.parametrize(
    ("message", "compressed"),
    [
        ("x" * 127, False),  # shorter than 128 bytes: never compressed
        ("x" * 128, True),
        (b"\x00" * 127, False),
        (b"\x00" * 200, True),
        ("é" * 63, False),  # 126 bytes
        ("é" * 64, True),  # 64 characters, but 128 bytes: compressed
        (bytes(range(200)), False),  # does not shrink: sent as it is
    ],
    ids=["127-ascii", "128-ascii", "127-bytes", "200-bytes", "126-utf8", "128-utf8", "noise"],
)
def test_with_deflate_agreed_short_messages_go_uncompressed(
    message: str | bytes, compressed: bool
) -> None:
    with ws_serve(Echo()) as site, site.raw(deflate=True) as raw:
        assert raw.accepted is not None and raw.accepted.extensions
        raw.send(message)
        first, payload = read_server_frame(raw.sock)
        opcode = TEXT if isinstance(message, str) else BINARY
        assert first & 0x0F == opcode and first & 0x80  # whole: FIN
        assert bool(first & 0x40) == compressed  # RSV1: permessage-deflate
        expected = message.encode() if isinstance(message, str) else message
        if compressed:  # the server keeps no context: each message inflates on its own
            payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
        assert payload == expected


def read_client_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One frame from the client, off the wire: (its first byte, its unmasked payload)."""
    first, length = recv_exactly(sock, 2)
    assert length & 0x80, "a client's frames are masked"
    length &= 0x7F
    if length == 126:
        length = int.from_bytes(recv_exactly(sock, 2), "big")
    mask = recv_exactly(sock, 4)
    payload = recv_exactly(sock, length)
    return first, bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        assert chunk, "the peer ended the connection"
        data += chunk
    return data


def test_with_deflate_agreed_the_client_compresses_long_messages_only() -> None:
    # The client keeps its compression context: a long message repeated compresses to
    # less the second time, and a short message sent plain in between must not disturb
    # that context (one inflater, kept across the messages, reads them all).
    sent: list[tuple[str | bytes, bool]] = [
        ("a" * 300, True),
        ("short", False),
        (b"\x00" * 127, False),
        ("a" * 300, True),
        ("é" * 64, True),  # 128 bytes
        ("é" * 63, False),  # 126 bytes
    ]
    with scripted_server() as listener:
        manager = Manager()
        client = WebSocketClient(f"ws://127.0.0.1:{listener.getsockname()[1]}/")
        client.register(manager)
        with running(manager, check_errors=False) as recorder:
            conn, head = accept_handshake(listener)
            with conn:
                agreed = b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
                conn.sendall(head[:-2] + agreed)
                recorder.wait_for("connected", predicate=lambda e: e.channels == ("wsclient",))
                for message, _ in sent:
                    manager.fire(write(message), "wsclient")
                inflater = zlib.decompressobj(-15)
                sizes = []
                for message, compressed in sent:
                    first, payload = read_client_frame(conn)
                    opcode = TEXT if isinstance(message, str) else BINARY
                    assert first & 0x0F == opcode and first & 0x80
                    assert bool(first & 0x40) == compressed, message
                    if compressed:
                        sizes.append(len(payload))
                        payload = inflater.decompress(payload + b"\x00\x00\xff\xff")
                    assert payload == (message.encode() if isinstance(message, str) else message)
                assert sizes[1] < sizes[0]  # the context was kept across the plain ones
