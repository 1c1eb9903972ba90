"""Bytes-only tests of the sans-IO HTTP layer: ServerProtocol, HTTPLimits, Headers, access log.

No socket anywhere. Every input goes through :func:`check`, which feeds it whole and then
one byte at a time and requires the same outcome (request heads, body bytes, completed
messages and the final error status or CLOSED). Small custom :class:`HTTPLimits` keep the
inputs that probe the limits small. Hypothesis properties cover arbitrary splits, random
bytes and generated requests.
"""

from __future__ import annotations

import dataclasses
import re
import string
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netcomp.web import (
    Body,
    EndOfMessage,
    Headers,
    HTTPLimits,
    ProtocolError,
    RequestHead,
    ServerProtocol,
)
from netcomp.web._accesslog import format_access
from netcomp.web._messages import (
    CLOSED,
    LAST_CHUNK,
    NEED_DATA,
    PAUSED,
    encode_chunk,
    encode_head,
)
from netcomp.web._protocol import PIECE

KiB = 1024
MiB = 1024 * KiB
#: next_event calls allowed per receive_data before the parser counts as stuck.
MAX_EVENTS = 100_000
#: Small limits: every limit is reached with inputs of a few hundred bytes.
SMALL = HTTPLimits(
    max_request_line=64,
    max_field_size=32,
    max_head_size=200,
    max_fields=6,
    max_body_size=10,
    max_chunk_extension=16,
)
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------ the harness


@dataclass
class Message:
    """One request as the parser reported it: head, body bytes, whether it ended."""

    head: tuple[Any, ...]
    body: bytes = b""
    complete: bool = False


@dataclass
class Outcome:
    """What a whole run produced; ``final`` is an error status, "closed" or "need_data"."""

    messages: list[Message] = field(default_factory=list)
    final: int | str = "need_data"
    reason: str = ""

    @property
    def served(self) -> int:
        return sum(m.complete for m in self.messages)

    def request(self, index: int = 0) -> tuple[Any, ...]:
        return self.messages[index].head


def head_info(head: RequestHead) -> tuple[Any, ...]:
    return (
        head.method,
        head.target,
        head.version,
        tuple(head.fields),
        head.keep_alive,
        head.content_length,
        head.chunked,
        head.expect_continue,
    )


def drain(proto: ServerProtocol, messages: list[Message]) -> object:
    """Take events until the parser needs data, is closed or failed; return that.

    A pending switch of protocols is declined (``resume``), as a server without a
    WebSocket dispatcher does: the request was a plain one.
    """
    for _ in range(MAX_EVENTS):
        event = proto.next_event()
        if event is PAUSED:
            assert messages and messages[-1].complete, "paused inside a message"
            proto.resume()
            continue
        if isinstance(event, RequestHead):
            assert not messages or messages[-1].complete, "a head inside a message"
            messages.append(Message(head_info(event)))
        elif isinstance(event, Body):
            assert messages and not messages[-1].complete, "body outside a message"
            assert isinstance(event.data, bytes) and event.data, "empty Body event"
            messages[-1].body += event.data
        elif isinstance(event, EndOfMessage):
            assert messages and not messages[-1].complete, "end outside a message"
            messages[-1].complete = True
        elif isinstance(event, ProtocolError) or event is NEED_DATA or event is CLOSED:
            return event
        else:
            raise AssertionError(f"unexpected event {event!r}")
    raise AssertionError("next_event never settled")


def assert_final(proto: ServerProtocol, final: object) -> None:
    """An error, or CLOSED, stays what it is: more calls and more bytes change nothing."""
    more = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    for data in (b"", more, b"\x00garbage", b""):
        if data:
            proto.receive_data(data)
        event = proto.next_event()
        if isinstance(final, ProtocolError):
            assert isinstance(event, ProtocolError)
            assert (event.status, event.reason) == (final.status, final.reason)
        else:
            assert event is CLOSED
        assert proto.buffered == 0


def run(chunks: Iterable[bytes], limits: HTTPLimits | None = None, eof: bool = True) -> Outcome:
    """Feed ``chunks`` (then EOF when ``eof``), draining events after each one."""
    proto = ServerProtocol(limits)
    out = Outcome()
    inputs = [c for c in chunks if c]
    if eof:
        inputs.append(b"")
    for data in inputs:
        proto.receive_data(data)
        event = drain(proto, out.messages)
        if event is NEED_DATA:
            continue
        if isinstance(event, ProtocolError):
            assert 400 <= event.status <= 505, event
            assert event.reason
            out.final, out.reason = event.status, event.reason
        else:
            out.final = "closed"
        assert_final(proto, event)
        return out
    return out


def assert_same(whole: Outcome, split: Outcome) -> None:
    """Same requests, bodies and final state; a body cut by an error may stop earlier."""
    assert split.final == whole.final, (whole.reason, split.reason)
    assert [m.head for m in split.messages] == [m.head for m in whole.messages]
    assert [m.complete for m in split.messages] == [m.complete for m in whole.messages]
    for a, b in zip(whole.messages, split.messages, strict=True):
        if a.complete or not isinstance(whole.final, int):
            assert a.body == b.body
        else:  # the error came mid-body: both saw a prefix of what was sent
            short, long = sorted((a.body, b.body), key=len)
            assert long.startswith(short)


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def check(data: bytes, limits: HTTPLimits | None = None, eof: bool = True) -> Outcome:
    """Run ``data`` whole and one byte at a time; both must agree. The whole outcome."""
    whole = run([data], limits, eof)
    assert_same(whole, run(bytewise(data), limits, eof))
    return whole


def http(*lines: str, version: str = "1.1", body: bytes = b"") -> bytes:
    """A request: ``lines[0]`` is "METHOD target", the rest are field lines."""
    start, *fields = lines
    text = "\r\n".join([f"{start} HTTP/{version}", *fields, "", ""])
    return text.encode("latin-1") + body


GET = http("GET /", "Host: a")
CHUNKED = "Transfer-Encoding: chunked"


def chunked(*parts: bytes, trailer: bytes = b"") -> bytes:
    """A chunked body of ``parts`` (each a complete chunk line and data)."""
    return b"".join(parts) + b"0\r\n" + trailer + b"\r\n"


# ----------------------------------------------------------------- rejections


def bad(
    name: str,
    data: bytes,
    status: int,
    heads: int = 0,
    served: int = 0,
    limits: HTTPLimits | None = None,
) -> Any:
    """A rejected input: the status, heads reported and requests completed before it."""
    return pytest.param(data, limits, status, heads, served, id=name)


def post(*fields: str, body: bytes = b"", version: str = "1.1") -> bytes:
    return http("POST /", "Host: a", *fields, body=body, version=version)


def head_with(*lines: bytes) -> bytes:
    return b"GET / HTTP/1.1\r\n" + b"".join(lines) + b"\r\n"


REJECTED = [
    # -- limits (small custom ones)
    bad("request-line", http("GET /" + "a" * 64, "Host: a"), 414, limits=SMALL),
    bad("field", http("GET /", "Host: a", "X: " + "v" * 32), 431, limits=SMALL),
    bad(
        "head",
        http("GET /" + "a" * 50, "Host: a", *(f"X{i}: {'v' * 29}" for i in range(4))),
        431,
        limits=SMALL,
    ),
    bad("fields", http("GET /", "Host: a", *(f"X{i}: v" for i in range(6))), 431, limits=SMALL),
    bad("body-length", post("Content-Length: 11", body=b"x" * 11), 413, limits=SMALL),
    bad("body-length-default", post("Content-Length: 1000000000000"), 413),
    bad(
        "body-chunked-grows",
        post(CHUNKED, body=chunked(b"5\r\n01234\r\n", b"6\r\n56789a\r\n")),
        413,
        heads=1,
        limits=SMALL,
    ),
    bad(
        "chunk-extension",
        post(CHUNKED, body=chunked(b"5;e=" + b"x" * 300 + b"\r\n01234\r\n")),
        400,
        heads=1,
        limits=SMALL,
    ),
    bad(
        "second-request-line",
        GET + http("GET /" + "a" * 64, "Host: a"),
        414,
        heads=1,
        served=1,
        limits=SMALL,
    ),
    # -- Content-Length with Transfer-Encoding
    bad("cl-then-te", post("Content-Length: 5", CHUNKED, body=chunked(b"5\r\nabcde\r\n")), 400),
    bad("te-then-cl", post(CHUNKED, "Content-Length: 5", body=chunked(b"5\r\nabcde\r\n")), 400),
    bad("cl-te-1.0", post("Content-Length: 5", CHUNKED, version="1.0", body=chunked()), 400),
    # -- conflicting or malformed Content-Length
    bad("cl-conflict", post("Content-Length: 3", "Content-Length: 4", body=b"abcd"), 400),
    *(
        bad(f"cl-{value!r}", post(f"Content-Length: {value}", body=b"abc"), 400)
        for value in ("3, 4", "3x", "-3", "+3", "0x3", "1 2", "", "99999999999999999999999")
    ),
    # -- transfer codings
    *(
        bad(f"te-{codings}", post(f"Transfer-Encoding: {codings}", body=chunked()), 501)
        for codings in ("gzip", "gzip, chunked", "deflate, chunked", "identity", "x-custom")
    ),
    bad("te-two-fields", post("Transfer-Encoding: gzip", CHUNKED, body=chunked()), 501),
    # chunked not last is 400 (RFC 9112 section 6.3); so is chunked twice
    bad("te-chunked-gzip", post("Transfer-Encoding: chunked, gzip", body=chunked()), 400),
    bad("te-chunked-twice", post("Transfer-Encoding: chunked, chunked", body=chunked()), 400),
    bad("te-http-1.0", http("POST /", CHUNKED, version="1.0", body=chunked()), 400),
    # -- Host
    bad("host-none-1.1", http("GET /"), 400),
    bad("host-two-1.1", http("GET /", "Host: a", "Host: b"), 400),
    bad("host-two-same-1.1", http("GET /", "Host: a", "HOST: a"), 400),
    bad("host-two-1.0", http("GET /", "Host: a", "host: b", version="1.0"), 400),
    # -- versions
    *(
        bad(f"version-{v}", http("GET /", "Host: a", version=v), 505)
        for v in ("2.0", "0.9", "1.2", "3.1")
    ),
    bad("version-0.9-simple", b"GET /\r\n\r\n", 505),
    # -- bare LF, bare CR
    bad("lf-only", b"GET / HTTP/1.1\nHost: a\n\n", 400),
    bad("lf-request-line", b"GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
    bad("lf-field", head_with(b"Host: a\n"), 400),
    bad("lf-end-of-head", b"GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
    bad("lf-chunk-size", post(CHUNKED, body=b"3\nabc\r\n0\r\n\r\n"), 400, heads=1),
    bad("lf-chunk-data", post(CHUNKED, body=b"3\r\nabc\n0\r\n\r\n"), 400, heads=1),
    bad("cr-request-line", b"GET / HTTP/1.1\rHost: a\r\n\r\n", 400),
    bad("cr-cr-lf", b"GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", 400),
    bad("cr-in-value", head_with(b"Host: a\rb\r\n"), 400),
    bad("cr-end-field", head_with(b"Host: a\rX: b\r\n"), 400),
    bad("cr-chunk-size", post(CHUNKED, body=b"3\rabc\r\n0\r\n\r\n"), 400, heads=1),
    # -- control bytes
    *(
        bad(
            f"control-in-value-{c[0]:#04x}", head_with(b"Host: a\r\n", b"X: a" + c + b"b\r\n"), 400
        )
        for c in (b"\x00", b"\x01", b"\x1b", b"\x7f")
    ),
    *(
        bad(
            f"control-in-target-{c[0]:#04x}", b"GET /a" + c + b"b HTTP/1.1\r\nHost: a\r\n\r\n", 400
        )
        for c in (b"\x00", b"\x01", b"\t", b"\x7f")
    ),
    bad("control-in-name", head_with(b"Ho\x1bst: a\r\n"), 400),
    bad("nul-in-name", head_with(b"Host: a\r\n", b"X-\x00: b\r\n"), 400),
    # -- whitespace before the colon, obs-fold, whitespace opening the fields
    bad("space-colon", head_with(b"Host : a\r\n"), 400),
    bad("tab-colon", head_with(b"Host\t: a\r\n"), 400),
    bad("space-colon-2", head_with(b"Host: a\r\n", b"X-Y : z\r\n"), 400),
    bad("fold-space", head_with(b"Host: a\r\n", b"X: a\r\n b\r\n"), 400),
    bad("fold-tab", head_with(b"Host: a\r\n", b"X: a\r\n\tb\r\n"), 400),
    bad("space-first-field", head_with(b" Host: a\r\n"), 400),
    # -- a valid request, then garbage or a bad request in the same bytes
    bad("then-garbage", GET + b"garbage\r\n\r\n", 400, heads=1, served=1),
    bad("then-binary", GET + b"\x00\x01\x02", 400, heads=1, served=1),
    bad("then-tls-hello", GET + b"\x16\x03\x01\x02\x00", 400, heads=1, served=1),
    bad("then-no-host", GET + GET + http("GET /"), 400, heads=2, served=2),
    bad("then-bad-version", GET + http("GET /", "Host: a", version="2.0"), 505, 1, 1),
    bad("body-over-length", post("Content-Length: 3", body=b"abcdef\r\n\r\n"), 400, 1, 1),
    # -- bad chunk framing
    bad("chunk-size-not-hex", post(CHUNKED, body=b"z\r\nabc\r\n0\r\n\r\n"), 400, heads=1),
    bad("chunk-over-size", post(CHUNKED, body=b"3\r\nabcd\r\n0\r\n\r\n"), 400, heads=1),
    bad("chunk-size-overflow", post(CHUNKED, body=b"f" * 20 + b"\r\n"), 400, heads=1),
    # -- EOF in the middle of a request
    bad("eof-in-method", b"GE", 400),
    bad("eof-in-target", b"GET /", 400),
    bad("eof-after-request-line", b"GET / HTTP/1.1\r\n", 400),
    bad("eof-in-head", b"GET / HTTP/1.1\r\nHost: a\r\n", 400),
    bad("eof-in-second-request", GET + b"GET / HT", 400, heads=1, served=1),
    bad("eof-in-body", post("Content-Length: 5", body=b"ab"), 400, heads=1),
    bad("eof-in-chunked-body", post(CHUNKED, body=b"3\r\nabc\r\n"), 400, heads=1),
    bad("eof-before-last-crlf", post(CHUNKED, body=b"3\r\nabc\r\n0\r\n"), 400, heads=1),
    bad("eof-in-trailers", post(CHUNKED, body=b"3\r\nabc\r\n0\r\nX: 1\r\n"), 400, heads=1),
]


@pytest.mark.parametrize(("data", "limits", "status", "heads", "served"), REJECTED)
def test_rejected(
    data: bytes, limits: HTTPLimits | None, status: int, heads: int, served: int
) -> None:
    out = check(data, limits)
    assert out.final == status, out.reason
    assert len(out.messages) == heads
    assert out.served == served


@pytest.mark.parametrize(
    ("data", "limits", "status"),
    [
        pytest.param(b"GET /" + b"a" * 1000, SMALL, 414, id="request-line"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * 1000, SMALL, 431, id="field"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nX" + b"v" * 1000, SMALL, 431, id="name"),
        pytest.param(
            b"GET / HTTP/1.1\r\n" + b"X: v\r\n" * 100, SMALL, 431, id="fields-without-end"
        ),
        pytest.param(b"GET /" + b"a" * (8 * KiB + 1), None, 414, id="default-request-line"),
    ],
)
def test_limits_counted_before_the_head_is_complete(
    data: bytes, limits: HTTPLimits | None, status: int
) -> None:
    """No EOF and no end of head: the limit alone ends it, the bytes are not buffered on."""
    out = check(data, limits, eof=False)
    assert out.final == status
    assert out.messages == []


def test_body_too_large_is_refused_before_any_body() -> None:
    """413 from Content-Length alone: the body need not (and does not) arrive."""
    head = http("POST /", "Host: a", "Content-Length: 11")
    out = check(head, SMALL, eof=False)
    assert (out.final, out.messages) == (413, [])


def test_default_limits() -> None:
    """The documented defaults, just under and just over (fed whole and in 4 KiB reads)."""
    assert HTTPLimits() == HTTPLimits(
        max_request_line=8 * KiB,
        max_field_size=8 * KiB,
        max_head_size=64 * KiB,
        max_fields=100,
        max_body_size=16 * MiB,
        max_buffered_body=1 * MiB,
        max_chunk_extension=16 * KiB,
        max_pipelined=16,
    )
    field = "X: " + "v" * 8000
    cases = [
        (http("GET /" + "a" * 8000, "Host: a"), "closed"),
        (http("GET /" + "a" * (8 * KiB), "Host: a"), 414),
        (http("GET /", "Host: a", "X: " + "v" * (8 * KiB - 1)), "closed"),
        (http("GET /", "Host: a", "X: " + "v" * (8 * KiB)), 431),
        (http("GET /", "Host: a", *[field] * 7), "closed"),
        (http("GET /", "Host: a", *[field] * 9), 431),
        (http("GET /", "Host: a", *(f"X{i}: v" for i in range(99))), "closed"),
        (http("GET /", "Host: a", *(f"X{i}: v" for i in range(100))), 431),
        (http("POST /", "Host: a", f"Content-Length: {16 * MiB}"), "need_data"),
        (http("POST /", "Host: a", f"Content-Length: {16 * MiB + 1}"), 413),
    ]
    for data, final in cases:
        eof = final != "need_data"
        whole = run([data], None, eof)
        assert whole.final == final, whole.reason
        pieces = [data[i : i + 4 * KiB] for i in range(0, len(data), 4 * KiB)]
        assert_same(whole, run(pieces, None, eof))


def test_large_body_crosses_pieces() -> None:
    """A body much larger than one parsing piece arrives whole and in order."""
    body = bytes(range(256)) * (3 * PIECE // 256 + 7)
    data = http("POST /", "Host: a", f"Content-Length: {len(body)}", body=body) + GET
    whole = run([data])
    assert whole.final == "closed"
    assert [m.body for m in whole.messages] == [body, b""]
    assert whole.served == 2
    assert_same(whole, run([data[i : i + 1000] for i in range(0, len(data), 1000)]))


# ------------------------------------------------------------------- limits at the edge


def test_request_line_at_the_limit_is_accepted() -> None:
    line = "GET /" + "a" * (64 - len("GET / HTTP/1.1"))
    assert len(f"{line} HTTP/1.1") == 64
    out = check(http(line, "Host: a"), SMALL)
    assert (out.final, out.served) == ("closed", 1)


def test_request_line_over_the_limit_by_one_is_414() -> None:
    line = "GET /" + "a" * (65 - len("GET / HTTP/1.1"))
    assert len(f"{line} HTTP/1.1") == 65
    assert check(http(line, "Host: a"), SMALL).final == 414


def head_of(size: int) -> bytes:
    """A GET head of exactly ``size`` bytes whose fields each fit SMALL (32 bytes, 6 fields)."""
    fields = ["Host: a"]
    room = size - len(http("GET /", "Host: a"))
    while room > 0:  # lines of at most 36 bytes: "Xn: " + value + CRLF, name + value <= 32
        line = min(room, 36)
        fields.append(f"X{len(fields)}: " + "v" * (line - 6))
        room -= line
    data = http("GET /", *fields)
    assert len(data) == size and len(fields) <= 6
    return data


def test_head_at_the_limit_is_accepted() -> None:
    data = head_of(200)  # every byte of the head, the empty last line included
    out = check(data, SMALL)
    assert (out.final, out.served) == ("closed", 1)


def test_head_over_the_limit_is_431() -> None:
    data = head_of(203)  # 201 bytes: over even without counting the empty last line
    assert check(data, SMALL).final == 431


def test_field_size_edge() -> None:
    """max_field_size bounds name and value: 32 bytes pass, 33 do not."""
    ok = check(http("GET /", "Host: a", "X: " + "v" * 31), SMALL)
    assert (ok.final, ok.served) == ("closed", 1)
    assert check(http("GET /", "Host: a", "Xy: " + "v" * 31), SMALL).final == 431


def test_field_count_edge() -> None:
    ok = check(http("GET /", "Host: a", *(f"X{i}: v" for i in range(5))), SMALL)
    assert (ok.final, ok.served) == ("closed", 1)
    assert len(ok.request()[3]) == 6


def test_body_size_edge() -> None:
    ok = check(http("POST /", "Host: a", "Content-Length: 10", body=b"0123456789"), SMALL)
    assert (ok.final, ok.messages[0].body) == ("closed", b"0123456789")
    body = chunked(b"5\r\n01234\r\n", b"5\r\n56789\r\n")
    ok = check(http("POST /", "Host: a", CHUNKED, body=body), SMALL)
    assert (ok.final, ok.messages[0].body) == ("closed", b"0123456789")
    empty = check(http("POST /", "Host: a", "Content-Length: 1"), HTTPLimits(max_body_size=0))
    assert empty.final == 413


def test_chunk_extension_at_the_limit_is_accepted() -> None:
    ext = b";e=" + b"x" * 13
    assert len(ext) == 16
    body = chunked(b"5" + ext + b"\r\n01234\r\n", b"1" + ext + b"\r\n5\r\n")
    out = check(http("POST /", "Host: a", CHUNKED, body=body), SMALL)
    assert (out.final, out.messages[0].body) == ("closed", b"012345")


@pytest.mark.parametrize("size", [20, 150])
def test_chunk_extension_over_the_limit_is_400(size: int) -> None:
    # 20: accepted whole and bytewise; 150: accepted whole, 400 bytewise.
    body = chunked(b"5;e=" + b"x" * (size - 3) + b"\r\n01234\r\n")
    assert check(http("POST /", "Host: a", CHUNKED, body=body), SMALL).final == 400


def test_many_chunks_with_extensions_under_the_limit() -> None:
    ext = b";e=" + b"x" * 147  # 150 bytes each, the limit is 200
    body = chunked(*[b"1" + ext + b"\r\nz\r\n"] * 5)
    out = check(http("POST /", "Host: a", CHUNKED, body=body), HTTPLimits(max_chunk_extension=200))
    assert (out.final, out.messages[0].body) == ("closed", b"zzzzz")


def test_trailers_are_not_chunk_extensions() -> None:
    body = chunked(b"3\r\nabc\r\n", trailer=b"T: " + b"v" * 100 + b"\r\n")
    out = check(http("POST /", "Host: a", CHUNKED, body=body), HTTPLimits(max_chunk_extension=16))
    assert (out.final, out.messages[0].body) == ("closed", b"abc")


def test_head_split_after_a_pipelined_body() -> None:
    first = http("POST /a", "Host: a", "Content-Length: 300", body=b"x" * 300)
    second = http("GET /b", "Host: a", "X: " + "v" * 28)  # 56 bytes, far under 200
    limits = HTTPLimits(max_request_line=64, max_head_size=200)
    assert run([first + second], limits).served == 2
    out = run([first + second[:10], second[10:30], second[30:]], limits)
    assert (out.final, out.served) == ("closed", 2), out.reason


# --------------------------------------------------------------------- accepted input


def test_simple_get() -> None:
    out = check(GET)
    assert out.final == "closed"
    assert out.messages == [
        Message(("GET", "/", "1.1", (("Host", "a"),), True, None, False, False), b"", True)
    ]


def test_head_request() -> None:
    out = check(http("HEAD /x", "Host: a") + http("GET /y", "Host: a"))
    assert [(m.head[0], m.head[1], m.body, m.complete) for m in out.messages] == [
        ("HEAD", "/x", b"", True),
        ("GET", "/y", b"", True),
    ]


def test_targets_are_kept_as_sent() -> None:
    out = check(
        http("GET /a/b%20c?d=e&f=%2F", "Host: a")
        + http("OPTIONS *", "Host: a")
        + http("GET http://a/b?c", "Host: a")
    )
    assert [m.head[1] for m in out.messages] == ["/a/b%20c?d=e&f=%2F", "*", "http://a/b?c"]


def test_field_names_and_values_as_sent() -> None:
    out = check(
        b"GET / HTTP/1.1\r\nHost: a\r\nx-Lower: one\r\nX-Multi: 1\r\nX-Multi: 2\r\n"
        b"X-Obs: caf\xe9\r\nX-Inner: a \t b\r\nX-Empty:\r\n\r\n"
    )
    assert out.request()[3] == (
        ("Host", "a"),
        ("x-Lower", "one"),
        ("X-Multi", "1"),
        ("X-Multi", "2"),
        ("X-Obs", "caf\xe9"),
        ("X-Inner", "a \t b"),
        ("X-Empty", ""),
    )


def test_trailing_whitespace_is_not_part_of_a_value() -> None:
    out = check(b"GET / HTTP/1.1\r\nHost: a\r\nX: a \t\r\nContent-Length: 3 \r\n\r\nabc")
    assert out.request()[3] == (("Host", "a"), ("X", "a"), ("Content-Length", "3"))


def test_pipelined_requests_in_order() -> None:
    data = (
        http("GET /1", "Host: a")
        + http("POST /2", "Host: a", "Content-Length: 3", body=b"abc")
        + http("PUT /3", "Host: a", CHUNKED, body=chunked(b"2\r\nde\r\n", b"1\r\nf\r\n"))
        + http("DELETE /4", "Host: a", "Content-Length: 0")
        + http("GET /5", "Host: a")
    )
    out = check(data)
    assert out.final == "closed"
    assert [(m.head[0], m.head[1], m.body, m.complete) for m in out.messages] == [
        ("GET", "/1", b"", True),
        ("POST", "/2", b"abc", True),
        ("PUT", "/3", b"def", True),
        ("DELETE", "/4", b"", True),
        ("GET", "/5", b"", True),
    ]
    assert [m.head[5:7] for m in out.messages] == [
        (None, False),
        (3, False),
        (None, True),
        (0, False),
        (None, False),
    ]


def test_chunked_body_with_extensions_and_trailers() -> None:
    body = chunked(
        b'3;name="quoted value";flag\r\nabc\r\n',
        b"A\r\n0123456789\r\n",
        b"a\r\nABCDEFGHIJ\r\n",
        trailer=b"X-Checksum: 123\r\nX-Other: yes\r\n",
    )
    out = check(http("POST /", "Host: a", CHUNKED, body=body) + GET)
    assert out.final == "closed"
    first, second = out.messages
    assert first.body == b"abc0123456789ABCDEFGHIJ"
    assert first.complete and first.head[6] is True
    assert first.head[3] == (("Host", "a"), ("Transfer-Encoding", "chunked"))
    assert second.complete and second.head[1] == "/"


def test_transfer_coding_is_case_insensitive() -> None:
    out = check(http("POST /", "Host: a", "Transfer-Encoding: Chunked", body=chunked()))
    assert (out.final, out.messages[0].head[6], out.messages[0].body) == ("closed", True, b"")


def test_chunked_from_encode_chunk() -> None:
    parts = [b"a", b"bc" * 9, b"", b"x" * 300]
    body = b"".join(encode_chunk(p) for p in parts) + LAST_CHUNK
    out = check(http("POST /", "Host: a", CHUNKED, body=body))
    assert out.messages[0].body == b"".join(parts)


@pytest.mark.parametrize(
    ("fields", "body", "flag"),
    [
        (["Expect: 100-continue", "Content-Length: 3"], b"abc", True),
        (["Expect: 100-Continue", CHUNKED], chunked(b"3\r\nabc\r\n"), True),
        (["Expect: 100-continue"], b"", False),  # nothing to wait for
        (["Expect: 100-continue", "Content-Length: 0"], b"", False),
        (["Content-Length: 3"], b"abc", False),
    ],
)
def test_expect_continue(fields: list[str], body: bytes, flag: bool) -> None:
    out = check(http("POST /", "Host: a", *fields, body=body))
    assert out.final == "closed"
    assert out.request()[7] is flag
    assert out.messages[0].body == (b"abc" if body else b"")


def test_expect_continue_needs_no_body_yet() -> None:
    """The head is reported before any body byte: the server can answer 100 first."""
    out = check(http("POST /", "Host: a", "Expect: 100-continue", "Content-Length: 3"), eof=False)
    assert out.final == "need_data"
    assert [(m.head[7], m.body, m.complete) for m in out.messages] == [(True, b"", False)]


def test_unknown_expectation_is_417() -> None:
    out = check(http("POST /", "Host: a", "Expect: something", "Content-Length: 3", body=b"abc"))
    assert (out.final, out.messages) == (417, [])


def test_expect_continue_ignored_in_http_1_0() -> None:
    fields = ["Expect: 100-continue", "Content-Length: 3"]
    out = check(http("POST /", *fields, version="1.0", body=b"abc"))
    assert out.request()[7] is False


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        ("1.1", [], True),
        ("1.1", ["Connection: close"], False),
        ("1.1", ["Connection: CLOSE"], False),
        ("1.1", ["Connection: foo, close"], False),
        ("1.1", ["Connection: foo", "Connection: close"], False),
        ("1.1", ["Connection: keep-alive"], True),
        ("1.1", ["Connection: closed"], True),
        ("1.0", [], False),
        ("1.0", ["Connection: close"], False),
        ("1.0", ["Connection: keep-alive"], True),
        ("1.0", ["Connection: Keep-Alive"], True),
        ("1.0", ["Connection: foo, keep-alive"], True),
    ],
)
def test_keep_alive(version: str, connection: list[str], keep_alive: bool) -> None:
    """The flag, and what happens to a request pipelined behind it."""
    out = check(
        http("GET /1", "Host: a", *connection, version=version) + http("GET /2", "Host: a")
    )
    assert out.final == "closed"
    assert out.request()[4] is keep_alive
    assert [m.head[1] for m in out.messages] == (["/1", "/2"] if keep_alive else ["/1"])


@pytest.mark.parametrize(
    "after",
    [
        GET,
        b"garbage\r\n\r\n",
        b"\x00\x01\x02\xff",
        b"GET / HTTP/9.9\r\n\r\n",
        b"X" * 10_000,
    ],
    ids=["request", "garbage", "binary", "bad-version", "long"],
)
@pytest.mark.parametrize(
    "first",
    [
        http("GET /", "Host: a", "Connection: close"),
        http("POST /", "Host: a", "Connection: close", "Content-Length: 2", body=b"ab"),
        http("GET /", version="1.0"),
    ],
    ids=["close", "close-with-body", "http-1.0"],
)
def test_data_after_connection_close_is_ignored(first: bytes, after: bytes) -> None:
    out = check(first + after)
    assert (out.final, out.served, len(out.messages)) == ("closed", 1, 1)
    body = out.messages[0].body
    assert body == (b"ab" if b"Content-Length" in first else b"")


def test_host_is_optional_in_http_1_0() -> None:
    for fields in ([], ["Host: a"]):
        out = check(http("GET /", *fields, version="1.0"))
        assert (out.final, out.served) == ("closed", 1)


def test_empty_lines_between_requests_are_skipped() -> None:
    out = check(b"\r\n" + GET + b"\r\n" + GET + b"\r\n")
    assert (out.final, out.served) == ("closed", 2)


@pytest.mark.parametrize("count", [0, 1, 3])
def test_eof_between_requests_is_closed(count: int) -> None:
    out = check(GET * count)
    assert (out.final, out.served, len(out.messages)) == ("closed", count, count)


def test_no_eof_means_need_data() -> None:
    for data in (b"", b"GET / HT", GET, GET + b"GE"):
        out = check(data, eof=False)
        assert out.final == "need_data"


def test_errors_are_final() -> None:
    proto = ServerProtocol()
    proto.receive_data(GET + b"BAD\r\n\r\n")
    assert isinstance(proto.next_event(), RequestHead)
    assert isinstance(proto.next_event(), EndOfMessage)
    error = proto.next_event()
    assert isinstance(error, ProtocolError) and error.status == 400
    for data in (GET, b"", GET):
        proto.receive_data(data)
        again = proto.next_event()
        assert isinstance(again, ProtocolError)
        assert (again.status, again.reason) == (error.status, error.reason)
    assert proto.buffered == 0


def test_parsing_waits_for_next_event() -> None:
    """Bytes are parsed only when asked for, one piece at a time (backpressure)."""
    proto = ServerProtocol()
    assert not proto.receiving_head
    data = GET * (3 * PIECE // len(GET))
    proto.receive_data(data)
    assert proto.buffered == len(data)
    assert proto.receiving_head  # unparsed bytes count as a head arriving
    assert isinstance(proto.next_event(), RequestHead)
    assert len(data) - PIECE <= proto.buffered < len(data)
    proto = ServerProtocol()
    proto.receive_data(GET[:10])
    assert proto.next_event() is NEED_DATA
    assert proto.receiving_head and proto.buffered == 0
    proto.receive_data(GET[10:])
    assert isinstance(proto.next_event(), RequestHead)
    assert isinstance(proto.next_event(), EndOfMessage)
    assert proto.next_event() is NEED_DATA
    assert not proto.receiving_head


@pytest.mark.parametrize(
    "body",
    [b"abc", chunked(b"3\r\nabc\r\n")],
    ids=["content-length", "chunked"],
)
def test_upgrade_request_body_is_read(body: bytes) -> None:
    framing = CHUNKED if body.startswith(b"3\r\n") else "Content-Length: 3"
    data = http("POST /", "Host: a", "Upgrade: h2c", "Connection: upgrade", framing, body=body)
    out = check(data + GET)
    assert (out.final, out.served) == ("closed", 2)
    assert out.messages[0].body == b"abc"


def test_upgrade_is_served_as_a_plain_request() -> None:
    data = http("GET /", "Host: a", "Upgrade: websocket", "Connection: upgrade") + GET
    out = check(data)
    assert (out.final, out.served) == ("closed", 2)


# ------------------------------------------------------------ a pending switch (Upgrade)
UPGRADE = http("GET /ws", "Host: a", "Upgrade: WebSocket", "Connection: keep-alive, Upgrade")


def pause_after(data: bytes, pieces: int = 1) -> tuple[ServerProtocol, list[Message]]:
    """Feed ``data`` in ``pieces`` parts, draining events until the parser pauses (what
    comes after is only received); the messages parsed."""
    proto = ServerProtocol()
    messages: list[Message] = []
    size = max(1, len(data) // pieces)
    for start in range(0, len(data), size):
        proto.receive_data(data[start : start + size])
        if proto.paused:
            continue  # kept for whoever takes the connection over
        for _ in range(MAX_EVENTS):
            event = proto.next_event()
            if event is NEED_DATA or event is PAUSED or event is CLOSED:
                break
            if isinstance(event, RequestHead):
                messages.append(Message((*head_info(event), event.upgrade)))
            elif isinstance(event, Body):
                messages[-1].body += event.data
            elif isinstance(event, EndOfMessage):
                messages[-1].complete = True
            else:
                raise AssertionError(f"unexpected {event!r}")
    return proto, messages


@pytest.mark.parametrize("pieces", [1, 3, 1000])
def test_an_upgrade_request_pauses_and_a_switch_hands_over_what_follows(pieces: int) -> None:
    frames = b"\x81\x85abcd" + b"\x00" * 5 + GET  # not HTTP: the new protocol's bytes
    proto, messages = pause_after(GET + UPGRADE + frames, pieces)
    assert proto.paused and [m.complete for m in messages] == [True, True]
    assert messages[0].head[-1] is None and messages[1].head[-1] == "websocket"
    assert proto.next_event() is PAUSED and not proto.receiving_head
    proto.receive_data(b"more")  # kept, not parsed
    assert proto.next_event() is PAUSED
    assert proto.switch() == frames + b"more"
    assert proto.next_event() is CLOSED and proto.buffered == 0
    with pytest.raises(RuntimeError, match="no switch"):
        proto.switch()


def test_a_declined_switch_goes_on_parsing_http() -> None:
    proto, messages = pause_after(UPGRADE + GET + GET)
    assert len(messages) == 1 and proto.paused
    proto.resume()
    out: list[Message] = []
    assert drain(proto, out) is NEED_DATA
    assert [m.complete for m in out] == [True, True]
    with pytest.raises(RuntimeError, match="no switch"):
        proto.switch()


def test_an_upgrade_request_with_a_body_pauses_after_the_body() -> None:
    data = http("POST /", "Host: a", "Upgrade: h2c", "Connection: upgrade", "Content-Length: 3")
    proto, messages = pause_after(data + b"abc" + b"after")
    assert proto.paused and messages[0].body == b"abc" and messages[0].complete
    assert messages[0].head[-1] == "h2c"
    assert proto.switch() == b"after"


def test_an_upgrade_request_that_closes_the_connection_does_not_pause() -> None:
    data = http("GET /", "Host: a", "Upgrade: websocket", "Connection: upgrade, close")
    proto, messages = pause_after(data + GET)
    assert not proto.paused and messages[0].complete
    assert proto.next_event() is CLOSED


def test_upgrade_without_connection_upgrade_is_a_plain_request() -> None:
    proto, messages = pause_after(http("GET /", "Host: a", "Upgrade: websocket") + GET)
    assert not proto.paused and len(messages) == 2 and messages[0].head[-1] is None


# ------------------------------------------------------------------------ HTTPLimits


@pytest.mark.parametrize(
    "options",
    [
        {"max_request_line": 0},
        {"max_field_size": 0},
        {"max_head_size": -1},
        {"max_fields": 0},
        {"max_chunk_extension": 0},
        {"max_pipelined": 0},
        {"max_connections": 0},
        {"max_body_size": -1},
        {"max_buffered_body": -1},
        {"head_timeout": 0},
        {"keepalive_timeout": -1.0},
        {"body_timeout": 0.0},
        {"response_timeout": -5},
        {"max_requests": 0},
    ],
    ids=str,
)
def test_limits_refuse_nonsense(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        HTTPLimits(**options)


def test_limits_accept_edges_and_are_frozen() -> None:
    limits = HTTPLimits(
        max_body_size=0,
        max_buffered_body=0,
        max_requests=1,
        head_timeout=None,
        keepalive_timeout=None,
        body_timeout=None,
        response_timeout=None,
    )
    assert limits.max_body_size == 0 and limits.head_timeout is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.max_fields = 5  # type: ignore[misc]
    assert ServerProtocol().limits == HTTPLimits()
    assert ServerProtocol(SMALL).limits is SMALL


# ---------------------------------------------------------------------- encoders


def test_encode_head_and_chunk() -> None:
    head = encode_head("1.1", 404, "Not Found", [("Content-Length", "0"), ("X", "y")])
    assert head == b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nX: y\r\n\r\n"
    assert encode_head("1.0", 204, "No Content", []) == b"HTTP/1.0 204 No Content\r\n\r\n"
    assert encode_chunk(b"") == b""
    assert encode_chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
    assert LAST_CHUNK == b"0\r\n\r\n"


# ------------------------------------------------------------------ hypothesis

TCHAR = "!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits
SPECIAL = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "proxy-connection",
    "keep-alive",
    "upgrade",
    "expect",
}
VCHAR = "".join(chr(c) for c in [*range(0x21, 0x7F), *range(0x80, 0x100)])
PATH_CHARS = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/?"

names = st.text(TCHAR, min_size=1, max_size=12).filter(lambda n: n.lower() not in SPECIAL)
values = st.text(VCHAR + " \t", max_size=24).map(lambda v: v.strip(" \t"))
fields_st = st.lists(st.tuples(names, values), max_size=8)
targets = st.text(PATH_CHARS, max_size=30).map(lambda p: "/" + p)
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
ext_st = st.text(TCHAR, min_size=1, max_size=8).map(lambda n: ";" + n) | st.just("")


@dataclass
class Generated:
    """A valid request and what the parser must report for it."""

    data: bytes
    method: str
    target: str
    version: str
    fields: list[tuple[str, str]]
    body: bytes
    framing: str


@st.composite
def requests(draw: st.DrawFn, version: str | None = None, close: bool = False) -> Generated:
    version = version or draw(st.sampled_from(["1.1", "1.1", "1.0"]))
    method, target = draw(methods), draw(targets)
    fields = draw(fields_st)
    if version == "1.1" or draw(st.booleans()):
        fields.insert(draw(st.integers(0, len(fields))), ("Host", draw(values)))
    if version == "1.0":
        fields.append(("Connection", "close" if close else "keep-alive"))
    elif close:
        fields.append(("Connection", "close"))
    body = draw(st.binary(max_size=600))
    framing = draw(st.sampled_from(["length", "chunked"] if version == "1.1" else ["length"]))
    if not body and draw(st.booleans()):
        framing = "none"
    if framing == "length":
        fields.append(("Content-Length", str(len(body))))
        payload = body
    elif framing == "chunked":
        fields.append(("Transfer-Encoding", "chunked"))
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=6)))
        parts = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True) if b > a]
        upper = draw(st.booleans())
        lines = []
        for part in parts:
            size = f"{len(part):X}" if upper else f"{len(part):x}"
            lines.append(f"{size}{draw(ext_st)}\r\n".encode() + part + b"\r\n")
        trailers = draw(st.lists(st.tuples(names, values), max_size=2))
        trailer = "".join(f"{n}: {v}\r\n" for n, v in trailers).encode("latin-1")
        payload = b"".join(lines) + b"0" + draw(ext_st).encode() + b"\r\n" + trailer + b"\r\n"
    else:
        payload = b""
    head = "".join(f"{n}: {v}\r\n" for n, v in fields)
    data = f"{method} {target} HTTP/{version}\r\n{head}\r\n".encode("latin-1") + payload
    return Generated(data, method, target, version, fields, body, framing)


def assert_generated(message: Message, request: Generated) -> None:
    method, target, version, fields, _, length, is_chunked, expect = message.head
    assert (method, target, version) == (request.method, request.target, request.version)
    assert list(fields) == request.fields
    assert message.body == request.body
    assert message.complete
    assert is_chunked is (request.framing == "chunked")
    assert length == (len(request.body) if request.framing == "length" else None)
    assert expect is False


@PROPS
@given(requests(), st.booleans())
def test_generated_requests_round_trip(request: Generated, eof: bool) -> None:
    out = run([request.data], eof=eof)
    assert out.final == ("closed" if eof else "need_data"), out.reason
    assert len(out.messages) == 1
    assert_generated(out.messages[0], request)
    assert out.request()[4] is True


@PROPS
@given(
    st.lists(requests(version="1.1"), min_size=1, max_size=5),
    st.booleans(),
    st.data(),
)
def test_any_split_gives_the_same_events(
    stream: list[Generated], close: bool, data: st.DataObject
) -> None:
    if close:  # the last request closes: what follows must be ignored however it is split
        stream[-1] = data.draw(requests(version="1.1", close=True))
    raw = b"".join(r.data for r in stream) + (b"\x00 ignored garbage" if close else b"")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=30)))
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    whole = run([raw])
    assert whole.final == "closed", whole.reason
    assert len(whole.messages) == len(stream)
    for message, request in zip(whole.messages, stream, strict=True):
        assert_generated(message, request)
    assert_same(whole, run(chunks))


FRAGMENTS = [
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"CONNECT ",
    b"/",
    b"/" + b"a" * 70,
    b" HTTP/1.1",
    b" HTTP/1.0",
    b" HTTP/2.0",
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b":",
    b"\x00",
    b"Host: a",
    b"Content-Length: 5",
    b"Content-Length: 99999999999",
    b"Transfer-Encoding: chunked",
    b"Transfer-Encoding: gzip",
    b"Connection: close",
    b"Connection: keep-alive",
    b"Connection: upgrade",
    b"Upgrade: x",
    b"Expect: 100-continue",
    b"X: " + b"v" * 40,
    b"0\r\n",
    b"5\r\nabcde\r\n",
    b"5;e=" + b"x" * 40 + b"\r\n",
    b"abcde",
]
noise = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=4), max_size=40).map(b"".join),
)


@PROPS
@given(noise, st.sampled_from([None, SMALL]), st.booleans(), st.data())
def test_random_bytes_never_raise(
    raw: bytes, limits: HTTPLimits | None, eof: bool, data: st.DataObject
) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=10)))
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    out = run(chunks, limits, eof)  # checks event types, statuses 400..505 and settling
    if eof:
        assert out.final != "need_data"
    if isinstance(out.final, int):
        assert 400 <= out.final <= 505


# ------------------------------------------------------------------------ Headers


def test_headers_case_insensitive_and_multi_valued() -> None:
    headers = Headers([("Set-Cookie", "a=1"), ("Content-Type", "text/plain")])
    headers.add("set-cookie", "b=2")
    assert headers["content-type"] == headers["CONTENT-TYPE"] == "text/plain"
    assert headers.get_all("SET-COOKIE") == ["a=1", "b=2"]
    assert "Set-cookie" in headers and "X" not in headers and 3 not in headers
    assert headers.get("missing") is None and headers.get("missing", "d") == "d"
    with pytest.raises(KeyError):
        headers["missing"]
    headers["SET-COOKIE"] = "c=3"
    assert headers.get_all("set-cookie") == ["c=3"]
    assert headers.items() == [("Content-Type", "text/plain"), ("SET-COOKIE", "c=3")]
    assert headers.setdefault("content-type", "x") == "text/plain"
    assert headers.setdefault("X-New", "v") == "v" and headers["x-new"] == "v"
    del headers["x-NEW"]
    with pytest.raises(KeyError):
        del headers["x-new"]
    assert headers.remove("nothing") == 0
    assert len(headers) == 2 and list(headers) == ["Content-Type", "SET-COOKIE"]
    assert headers == Headers({"content-type": "text/plain", "set-cookie": "c=3"})
    numbers = Headers()
    numbers.add("Content-Length", 5)  # type: ignore[arg-type]
    assert numbers["content-length"] == "5"


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\r\nX-Injected: 1", "a\x00b", "\n", "end\r"])
def test_headers_refuse_cr_lf_nul_in_values(value: str) -> None:
    headers = Headers()
    with pytest.raises(ValueError):
        headers.add("X", value)
    with pytest.raises(ValueError):
        headers["X"] = value
    with pytest.raises(ValueError):
        Headers([("X", value)])
    assert len(headers) == 0


@pytest.mark.parametrize(
    "name", ["", "X Y", "X:", "X\r", "X\nY", "X\x00", "(x)", "x,y", "caf\xe9", " X", "X\t"]
)
def test_headers_refuse_non_token_names(name: str) -> None:
    with pytest.raises(ValueError):
        Headers().add(name, "v")
    with pytest.raises(ValueError):
        Headers({name: "v"})


def test_headers_accept_every_token_char_and_obs_text() -> None:
    headers = Headers([(TCHAR, "tab\tand obs-text \xe9\xff")])
    assert headers[TCHAR.lower()] == "tab\tand obs-text \xe9\xff"


# --------------------------------------------------------------------- access log

LOG_LINE = re.compile(
    r"(?P<host>\S+) - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "
    r'"(?P<line>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<size>\d+|-) '
    r'"(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)"'
)


def unescape(text: str) -> str:
    return text.encode("latin-1").decode("unicode_escape")


def test_access_line_format() -> None:
    line = format_access("127.0.0.1", "GET / HTTP/1.1", 200, 5, "-", "curl/8")
    match = LOG_LINE.fullmatch(line)
    assert match is not None, line
    assert match.group("line", "status", "size", "referer", "agent") == (
        "GET / HTTP/1.1",
        "200",
        "5",
        "-",
        "curl/8",
    )
    empty = LOG_LINE.fullmatch(format_access("::1", "GET /", 304, 0, "", ""))
    assert empty is not None and empty.group("size", "referer", "agent") == ("-", "", "")


def test_access_line_escapes_control_bytes_and_quotes() -> None:
    hostile = 'GET /\x1b[31mred\r\n127.0.0.1 - - [forged] "GET /admin" 200\x00\x7f\\" HTTP/1.1'
    line = format_access("10.0.0.1", hostile, 400, 0, 'ref"\n', 'agent\t"x"\\')
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in line)
    match = LOG_LINE.fullmatch(line)
    assert match is not None, line
    assert unescape(match.group("line")) == hostile
    assert unescape(match.group("referer")) == 'ref"\n'
    assert unescape(match.group("agent")) == 'agent\t"x"\\'
    assert "\\x1b" in line and '\\"' in line


@settings(max_examples=100, deadline=None)
@given(st.text(st.characters(max_codepoint=0x7F), max_size=40))
def test_access_line_round_trips_ascii(text: str) -> None:
    line = format_access("h", text, 200, 1, text, text)
    assert "\n" not in line and "\r" not in line
    match = LOG_LINE.fullmatch(line)
    assert match is not None, line
    assert [unescape(match.group(g)) for g in ("line", "referer", "agent")] == [text] * 3


def test_access_line_escapes_c1_controls() -> None:
    agent = "evil\x85forged line\x9b31m"  # NEL and 8-bit CSI, from latin-1 field bytes
    line = format_access("h", "GET / HTTP/1.1", 200, 1, "-", agent)
    assert not [c for c in line if unicodedata.category(c) == "Cc"]
    assert len(line.splitlines()) == 1


# ------------------------------------------------- exact framing (the part scanner)


def test_empty_lines_before_a_request_are_ignored() -> None:
    out = check(b"\r\n\r\n" + GET + b"\r\n" + http("GET /2", "Host: a"))
    assert (out.final, [m.head[1] for m in out.messages]) == ("closed", ["/", "/2"])


def test_bare_lf_head_is_refused_without_waiting_for_more() -> None:
    out = check(b"GET / HTTP/1.1\nHost: a\n\n", eof=False)
    assert out.final == 400


def test_head_split_after_a_chunked_body_is_counted_exactly() -> None:
    """The bytes of a chunked body (extensions and trailers included) read together with
    the start of the next head are not charged to that head."""
    body = chunked(b"5;e=" + b"x" * 12 + b"\r\n01234\r\n", trailer=b"T: " + b"v" * 28 + b"\r\n")
    first = http("POST /a", "Host: a", CHUNKED, body=body)
    second = head_of(200)
    data = first + second
    out = run([data[: len(first) + 150], data[len(first) + 150 :]], SMALL)
    assert (out.final, out.served) == ("closed", 2), out.reason
    assert out.messages[0].body == b"01234"
    assert check(data, SMALL).served == 2


def test_chunk_size_with_too_many_digits_is_400() -> None:
    out = check(http("POST /", "Host: a", CHUNKED, body=b"0" * 17 + b"1\r\nx\r\n0\r\n\r\n"))
    assert out.final == 400


def test_trailer_section_over_the_head_limit_is_431() -> None:
    trailer = b"".join(b"T%d: %s\r\n" % (i, b"v" * 25) for i in range(8))  # > 200 bytes
    body = chunked(b"1\r\nz\r\n", trailer=trailer)
    assert check(http("POST /", "Host: a", CHUNKED, body=body), SMALL).final == 431


@PROPS
@given(noise, st.sampled_from([None, SMALL]), st.data())
def test_any_split_of_any_input_gives_the_same_outcome(
    raw: bytes, limits: HTTPLimits | None, data: st.DataObject
) -> None:
    """HTTPLimits are counted exactly: where reads happen to end never changes the answer."""
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=10)))
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    assert_same(run([raw], limits), run(chunks, limits))


def test_head_larger_than_a_parsing_piece() -> None:
    """A head allowed past PIECE bytes is found across pieces, its end split anywhere."""
    limits = HTTPLimits(max_head_size=4 * PIECE, max_field_size=PIECE, max_fields=10)
    fields = [f"X{i}: " + "v" * (PIECE // 2) for i in range(5)]  # about 2.5 pieces
    data = http("GET /big", "Host: a", *fields) + GET
    whole = run([data], limits)
    assert (whole.final, whole.served) == ("closed", 2), whole.reason
    assert len(whole.messages[0].head[3]) == 6
    for cut in (PIECE - 2, PIECE - 1, PIECE, 2 * PIECE + 1, len(data) - len(GET) - 2):
        assert_same(whole, run([data[:cut], data[cut:]], limits))
    assert run([data], HTTPLimits(max_head_size=2 * PIECE, max_field_size=PIECE)).final == 431
