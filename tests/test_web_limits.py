"""Limits, timeouts and protocol errors over real sockets, with small custom HTTPLimits.

Each breach gets its status and a close on that connection only; another keep-alive
connection in mid-conversation goes on, and the handler never sees a bad request.
Timeouts run on virtual time (``serve(virtual=True)``): the test moves the clock to just
before a deadline, sees the connection still quiet, then past it, and reads the outcome.
No test waits for a timeout in real time.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from _web_support import TIMEOUT, Client, Gate, Gauge, Site, curl, raw_request, serve
from netcomp import Component, Event, handler, sleep
from netcomp.web import HTTPError, HTTPLimits, ProtocolError, Request, Response

STEP = 2.0**-10  # "just before a deadline"

SMALL = HTTPLimits(
    max_request_line=256,
    max_field_size=256,
    max_head_size=1024,
    max_fields=10,
    max_body_size=1000,
    max_buffered_body=1000,
)


class Seen:
    """A handler that records the targets it is given and answers ``seen <target>``."""

    def __init__(self) -> None:
        self.targets: list[str] = []

    def __call__(self, request: Request, response: Response) -> str:
        self.targets.append(request.target)
        return f"seen {request.target} {len(request.body)}"


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def site(seen: Seen) -> Iterator[Site]:
    with serve(seen, limits=SMALL) as running_site:
        yield running_site


def refused(site: Site, data: bytes, status: int, send_after: bytes = b"") -> None:
    """``data`` gets ``status`` with ``Connection: close``, then the connection closes."""
    with site.client() as client:
        client.send(data)
        reply = client.reply()
        assert reply.status == status, reply
        assert reply.closes
        if send_after:
            with contextlib.suppress(OSError):  # already closed: as good
                client.send(send_after)
        assert client.closed()


# ---------------------------------------------------------------- sizes
def test_request_line_too_long_is_414(site: Site, seen: Seen) -> None:
    refused(site, raw_request("/" + "a" * 300), 414)
    refused(site, b"GET /" + b"a" * 2000, 414)  # known before the line ends
    assert seen.targets == []


def test_request_line_at_the_limit_is_served(site: Site, seen: Seen) -> None:
    with site.client() as client:
        assert client.request(target="/" + "a" * 200).status == 200


def test_field_too_large_is_431(site: Site, seen: Seen) -> None:
    refused(site, raw_request("/", "X-Big: " + "b" * 300), 431)
    refused(site, b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"b" * 2000, 431)  # head unfinished
    assert seen.targets == []


def test_head_too_large_is_431(site: Site, seen: Seen) -> None:
    fields = [f"X-F{n}: {'v' * 200}" for n in range(6)]  # each fits; together they do not
    refused(site, raw_request("/", *fields), 431)
    assert seen.targets == []


def test_too_many_fields_is_431(site: Site, seen: Seen) -> None:
    refused(site, raw_request("/", *[f"X-{n}: v" for n in range(12)]), 431)
    with site.client() as client:  # 10 fields in all (Host included) are fine
        assert client.request(headers=[(f"X-{n}", "v") for n in range(9)]).status == 200
    assert seen.targets == ["/"]


def test_body_too_large_is_413_before_the_body(site: Site, seen: Seen) -> None:
    """The 413 comes from the head alone: the body is never sent."""
    with site.client() as client:
        client.send(raw_request("/", "Content-Length: 5000", method="POST"))
        reply = client.reply("POST")
        assert reply.status == 413 and reply.closes
        assert client.closed()
    with site.client() as client:  # with Expect: the 413 instead of a 100
        client.send(
            raw_request("/", "Content-Length: 5000", "Expect: 100-continue", method="POST")
        )
        reply = client.reply("POST")
        assert (reply.status, reply.informational) == (413, [])
    assert seen.targets == []


def test_chunked_body_too_large_is_413(site: Site, seen: Seen) -> None:
    chunks = b"".join(b"100\r\n" + b"c" * 256 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
    refused(site, raw_request("/", "Transfer-Encoding: chunked", method="POST") + chunks, 413)
    assert seen.targets == []


def test_body_at_the_limit_is_served(site: Site, seen: Seen) -> None:
    with site.client() as client:
        assert client.request("POST", "/", body=b"x" * 1000).text == "seen / 1000"


def test_chunk_extensions_too_large_are_400(seen: Seen) -> None:
    limits = HTTPLimits(max_chunk_extension=64)
    with serve(seen, limits=limits) as site:
        body = b"3;" + b"e" * 500 + b"\r\nabc\r\n0\r\n\r\n"
        refused(site, raw_request("/", "Transfer-Encoding: chunked", method="POST") + body, 400)
    assert seen.targets == []


# ------------------------------------------------------------- timeouts
def test_slow_head_gets_408_and_is_closed(seen: Seen) -> None:
    limits = HTTPLimits(head_timeout=0.3)
    with serve(seen, limits=limits, virtual=True) as site, site.client() as client:
        vt = site.vt
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\n")  # and never the end of the head
        vt.wait_timer(0.3)  # the head's deadline, from its first bytes
        vt.advance_to(0.3 - STEP)
        assert client.quiet()
        vt.advance_to(0.3)
        reply = client.reply()
        assert (reply.status, reply.closes) == (408, True)
        assert client.closed()
    assert seen.targets == []


def test_slow_head_of_a_second_request_gets_408(seen: Seen) -> None:
    limits = HTTPLimits(head_timeout=0.3, keepalive_timeout=30)
    with serve(seen, limits=limits, virtual=True) as site, site.client() as client:
        vt = site.vt
        assert client.request().status == 200
        client.send(b"GET /second HTTP/1.1\r\n")
        vt.wait_timer(0.3)
        vt.advance_to(0.3 - STEP)
        assert client.quiet()
        vt.advance_to(0.3)
        assert client.reply().status == 408
        assert client.closed()
    assert seen.targets == ["/"]


def test_idle_keep_alive_connection_is_closed(seen: Seen) -> None:
    limits = HTTPLimits(keepalive_timeout=0.3)
    with serve(seen, limits=limits, virtual=True) as site, site.client() as client:
        vt = site.vt
        vt.advance(0.25)  # connected a while ago: the idle time counts from the response
        reply = client.request()
        assert reply.status == 200 and not reply.closes
        deadline = vt.now + 0.3
        vt.advance_to(deadline - STEP)
        assert client.quiet()
        vt.advance_to(deadline)
        assert client.sock.recv(100) == b""  # no 408: an idle connection just closes


def test_silent_new_connection_is_closed(seen: Seen) -> None:
    limits = HTTPLimits(keepalive_timeout=0.3)
    with serve(seen, limits=limits, virtual=True) as site, site.client() as client:
        vt = site.vt
        vt.wait_timer(0.3)  # the server has the connection: idle from now
        vt.advance_to(0.3 - STEP)
        assert client.quiet()
        vt.advance_to(0.3)
        assert client.sock.recv(100) == b""


def test_slow_body_gets_408(seen: Seen) -> None:
    limits = HTTPLimits(body_timeout=0.3, head_timeout=30)
    with serve(seen, limits=limits, virtual=True) as site, site.client() as client:
        vt = site.vt
        client.send(raw_request("/", "Content-Length: 100", method="POST") + b"x" * 10)
        vt.wait_timer(0.3)
        vt.advance_to(0.3 - STEP)
        assert client.quiet()
        vt.advance_to(0.3)
        reply = client.reply("POST")
        assert (reply.status, reply.closes) == (408, True)
        assert client.closed()
    assert seen.targets == []


def test_body_that_keeps_coming_is_not_timed_out(seen: Seen) -> None:
    """Body inactivity, not body duration: each piece re-arms the timer."""
    limits = HTTPLimits(body_timeout=0.3)
    with serve(seen, limits=limits, virtual=True) as site, site.client() as client:
        vt = site.vt
        client.send(raw_request("/", "Content-Length: 6", method="POST"))
        vt.wait_timer(0.3)
        for piece in (b"ab", b"cd", b"ef"):  # 0.75 s in all: longer than the timeout
            vt.advance(0.25)
            assert client.quiet()
            with vt.reading():  # the server has it before time moves on
                client.send(piece)
        assert client.reply("POST").text == "seen / 6"


def test_body_dripping_a_byte_every_ten_seconds_falls_below_the_minimum_rate(
    seen: Seen,
) -> None:
    """Never silent for body_timeout (60 s), yet far below 500 bytes/s: once the 20 s
    grace is over, the body must have sent (t - 20) * 500 bytes by t; it is cut then."""
    limits = HTTPLimits()  # the defaults: 500 bytes/s after 20 s, 60 s of silence
    with serve(seen, limits=limits, virtual=True) as site, site.client() as client:
        vt = site.vt
        with vt.reading():  # the body began: its rate is checked from 20 s
            client.send(raw_request("/", "Content-Length: 100", method="POST"))
        vt.advance_to(10.0)
        with vt.reading():
            client.send(b"x")  # one byte at 10 s: 20 s plus 1/500 s of credit
        due = 20.0 + 1 / 500
        vt.advance_to(due - STEP)
        assert client.quiet()
        vt.advance_to(due)
        reply = client.reply("POST")
        assert (reply.status, reply.closes) == (408, True)
        assert "request body too slow (under 500 bytes/s)" in reply.text
        assert client.closed()
    assert seen.targets == []


def test_body_at_the_minimum_rate_is_served(seen: Seen) -> None:
    """600 bytes/s for a minute (36 KB): above the minimum rate, never cut."""
    limits = HTTPLimits(body_min_rate=500)
    with serve(seen, limits=limits, virtual=True) as site, site.client() as client:
        vt = site.vt
        with vt.reading():
            client.send(raw_request("/", "Content-Length: 36000", method="POST"))
        for _ in range(60):
            vt.advance(1.0)
            with vt.reading():
                client.send(b"x" * 600)
        assert client.reply("POST").text == "seen / 36000"


def test_dripping_head_falls_below_the_minimum_rate(seen: Seen) -> None:
    """With no whole-head timeout, a head sent a byte a second is cut once it falls behind
    500 bytes/s after the 20 s grace."""
    limits = HTTPLimits(head_timeout=None)
    with serve(seen, limits=limits, virtual=True) as site, site.client() as client:
        vt = site.vt
        with vt.reading():
            client.send(b"GET / HTTP/1.1\r\n")  # 16 bytes
        for n in range(1, 20):
            vt.advance_to(float(n))
            with vt.reading():
                client.send(b"X")
        due = 20.0 + (16 + 19) / 500
        vt.advance_to(due - STEP)
        assert client.quiet()
        vt.advance_to(due)
        reply = client.reply()
        assert (reply.status, reply.closes) == (408, True)
        assert "request head too slow (under 500 bytes/s)" in reply.text
    assert seen.targets == []


def test_a_streamed_body_the_handler_holds_back_is_not_timed_out() -> None:
    """While the handler has not taken what it has of a streamed body, the server stops
    reading it: neither silence nor the minimum rate counts that time against the client."""

    async def late_reader(request: Request, response: Response) -> str:
        assert request.stream is not None
        await sleep(300.0)  # five minutes before it reads a byte
        return f"read {len(await request.stream.read())}"

    limits = HTTPLimits(max_buffered_body=1024, body_timeout=60.0, response_timeout=None)
    body = b"b" * (512 * 1024)
    with serve(late_reader, limits=limits, virtual=True) as site, site.client() as client:
        head = raw_request("/", f"Content-Length: {len(body)}", method="POST")
        sender = threading.Thread(target=client.send, args=(head + body,), daemon=True)
        sender.start()
        site.vt.wait_timer(300.0)  # the handler sleeps; the server holds the body back
        site.vt.advance(300.0)
        assert client.reply("POST").text == f"read {len(body)}"
        sender.join(TIMEOUT)


def test_response_timeout_while_a_streamed_body_arrives_gets_503_cleanly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The 503 ends the front exchange and the connection while the link's timer walks
    its exchanges: no error in the loop."""
    gate = Gate()

    async def never(request: Request, response: Response) -> str:
        await gate.wait()
        return "too late"

    limits = HTTPLimits(max_buffered_body=1024, response_timeout=0.3)
    with serve(never, limits=limits, virtual=True) as site, site.client() as client:
        with site.vt.reading():
            client.send(raw_request("/", "Content-Length: 100000", method="POST") + b"x" * 4096)
        site.vt.advance(0.3)
        reply = client.reply("POST")
        assert (reply.status, reply.closes) == (503, True)
        gate.open(site.manager)
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []


def test_handler_that_never_answers_gets_503() -> None:
    gate = Gate()

    async def never(request: Request, response: Response) -> str:
        await gate.wait()
        return "too late"

    with serve(never, limits=HTTPLimits(response_timeout=0.3), virtual=True) as site:
        vt = site.vt
        with site.client() as client:
            client.send(raw_request("/"))
            vt.wait_timer(0.3)  # the handler runs: its answer is due by then
            vt.advance_to(0.3 - STEP)
            assert client.quiet()
            vt.advance_to(0.3)
            reply = client.reply()
            assert (reply.status, reply.closes) == (503, True)
            assert client.closed()
        gate.open(site.manager)  # the late answer is dropped quietly
        with site.client() as client:
            assert client.request().text == "too late"


def test_response_timeout_in_a_pipeline_answers_in_order() -> None:
    gate = Gate()

    async def stuck(request: Request, response: Response) -> str:
        if request.path == "/stuck":
            await gate.wait()
        return f"ok {request.path}"

    limits = HTTPLimits(response_timeout=0.3)
    with serve(stuck, limits=limits, virtual=True) as site, site.client() as client:
        vt = site.vt
        client.send(raw_request("/one") + raw_request("/stuck") + raw_request("/three"))
        assert client.reply().text == "ok /one"
        vt.advance_to(0.3 - STEP)
        assert client.quiet()  # "/three" is answered, but waits its turn
        vt.advance_to(0.3)
        assert client.reply().status == 503
        assert client.closed()
        gate.open(site.manager)


# ------------------------------------------------------------- pipeline
def test_max_pipelined_bounds_handlers_in_flight() -> None:
    running = Gauge()

    async def counted(request: Request, response: Response) -> str:
        running.enter()
        try:
            await sleep(0.02)
        finally:
            running.leave()
        return f"#{request.path.strip('/')}"

    limits = HTTPLimits(max_pipelined=4)
    with serve(counted, limits=limits, virtual=True) as site, site.client() as client:
        client.send(b"".join(raw_request(f"/{n}") for n in range(50)))
        running.wait(lambda g: g.now == 4)
        site.vt.advance(1.0)  # 0.02 s at a time, four handlers at a time
        bodies = [client.reply().text for _ in range(50)]
    assert bodies == [f"#{n}" for n in range(50)]
    assert running.total == 50
    assert running.peak == 4  # the pipeline was used, and never beyond its limit


def test_max_connections() -> None:
    limits = HTTPLimits(max_connections=2)
    with serve(Seen(), limits=limits) as site:
        first, second = site.client(), site.client()
        try:
            assert first.request().status == 200
            assert second.request().status == 200
            with site.client() as third:
                reply = third.reply()  # without sending anything
                assert (reply.status, reply.closes) == (503, True)
                assert reply.header("retry-after") is not None
                assert third.closed()
            assert first.request().status == 200  # the others are untouched
            first.close()
            # Once the server has seen the close there is room again (bounded retries).
            for _ in range(200):
                with site.client() as fourth:
                    fourth.send(raw_request("/"))
                    if fourth.reply().status == 200:
                        break
            else:
                raise AssertionError("no room after a connection closed")
            assert second.request().status == 200
        finally:
            first.close()
            second.close()


def test_max_requests_in_progress() -> None:
    gate = Gate()
    running = Gauge()

    async def held(request: Request, response: Response) -> str:
        running.enter()
        await gate.wait()
        running.leave()
        return "released"

    with (
        serve(held, limits=HTTPLimits(max_requests=1)) as site,
        site.client() as first,
        site.client() as second,
    ):
        first.send(raw_request("/"))
        running.wait(lambda g: g.now == 1)
        reply = second.request()
        assert (reply.status, reply.closes) == (503, True)
        assert second.closed()
        gate.open(site.manager)
        assert first.reply().text == "released"
        assert first.request().text == "released"  # the slot is free again
    assert running.total == 2


# ------------------------------------------- max_requests: every path frees its slot
def in_progress(site: Site) -> int:
    """The server's count of handlers in flight, read once the loop is idle enough: call
    only after waiting for the ``request`` events concerned to be done."""
    return int(site.server.in_progress)


def reset(client: Client) -> None:
    """Leave with a reset (SO_LINGER 0), which the server sees at once as a lost connection
    (a plain close is only an EOF: the server may still answer a half-closed client)."""
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


def finish_then_return(request: Request, response: Response) -> None:
    response.body = "done"
    response.finish()


def write_then_finish(request: Request, response: Response) -> None:
    response.write("done")
    response.finish()


async def finish_then_await(request: Request, response: Response) -> None:
    response.write("do")
    await response.flush()
    response.write("ne")
    response.finish()
    await sleep(0)


def finish_then_raise(request: Request, response: Response) -> None:
    response.body = "done"
    response.finish()
    raise HTTPError(409)  # too late to change the answer: it only ends the handler


@pytest.mark.parametrize(
    "answer", [finish_then_return, write_then_finish, finish_then_await, finish_then_raise]
)
def test_handler_that_finishes_before_returning_frees_its_slot(answer: Any) -> None:
    """``finish()`` before the handler returns marks the exchange answered; the slot must
    still be given back when the handler is done, or every later request gets 503."""
    with serve(answer, limits=HTTPLimits(max_requests=1)) as site:
        done = 0
        with site.client() as client:  # keep-alive: one connection
            for _ in range(3):
                reply = client.request()
                assert (reply.status, reply.text) == (200, "done")
                done += 1
                site.recorder.wait_for("request", count=done)
                assert in_progress(site) == 0
        for _ in range(3):  # and a new connection each time
            conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=5)
            try:
                conn.request("GET", "/")
                response = conn.getresponse()
                assert (response.status, response.read()) == (200, b"done")
            finally:
                conn.close()
            done += 1
            site.recorder.wait_for("request", count=done)
            assert in_progress(site) == 0


def test_streaming_response_finished_by_another_event_frees_its_slot() -> None:
    held: list[Response] = []

    def start(request: Request, response: Response) -> None:
        response.streaming = True
        response.write("started; ")
        held.append(response)

    class Finisher(Component):
        channel = "web"

        @handler("finish_it")
        def _finish(self) -> None:
            held.pop().finish()

    with serve(start, Finisher(), limits=HTTPLimits(max_requests=1)) as site:
        for n in range(1, 4):
            with site.client() as client:
                client.send(raw_request("/"))
                client.read_raw(b"started; ")
                site.manager.fire(Event.create("finish_it"), "web")
                client.read_raw(b"0\r\n\r\n")
            site.recorder.wait_for("finish_it", count=n)
            site.recorder.wait_for("request", count=n)
            assert in_progress(site) == 0


def test_response_timeout_frees_the_slot_once() -> None:
    """The timed-out handler no longer counts; its late answer does not count it twice."""
    gate = Gate()

    async def stuck(request: Request, response: Response) -> str:
        if request.path == "/stuck":
            await gate.wait()
            return "too late"
        return "ok"

    limits = HTTPLimits(max_requests=1, response_timeout=0.3)
    with serve(stuck, limits=limits) as site:
        with site.client() as client:
            assert client.request(target="/stuck").status == 503
        for _ in range(3):  # the stuck handler still runs, and no longer holds the slot
            with site.client() as client:
                assert client.request(target="/ok").text == "ok"
        gate.open(site.manager)
        site.recorder.wait_for("request", predicate=lambda e: e.args[0].path == "/stuck")
        site.recorder.wait_for("request", count=4)
        assert in_progress(site) == 0
        with site.client() as client:
            assert [client.request(target="/ok").status for _ in range(2)] == [200, 200]


def test_client_gone_frees_the_slot_and_a_finished_handler_frees_it_on_return() -> None:
    gate = Gate()
    running = Gauge()

    async def held(request: Request, response: Response) -> str | None:
        if request.path == "/ok":
            return "ok"
        if request.path == "/finished":  # answered, then still busy for a while
            response.body = "done"
            response.finish()
        running.enter()
        await gate.wait()
        running.leave()
        return None if request.path == "/finished" else "too late"

    with serve(held, limits=HTTPLimits(max_requests=1)) as site:
        client = site.client()
        client.send(raw_request("/held"))
        running.wait(lambda g: g.now == 1)
        reset(client)
        site.recorder.wait_for("disconnect")  # the server saw the client go
        with site.client() as client:  # the handler still runs, but its client is gone
            assert client.request(target="/ok").text == "ok"
        gate.open(site.manager)
        site.recorder.wait_for("request", predicate=lambda e: e.args[0].path == "/held")
        assert in_progress(site) == 0

        gate.is_open = False
        client = site.client()
        assert client.request(target="/finished").text == "done"
        running.wait(lambda g: g.now == 1)
        reset(client)
        site.recorder.wait_for("disconnect", count=3)
        with site.client() as client:  # its handler is still running: that is one in flight
            reply = client.request(target="/ok")
            assert (reply.status, reply.closes) == (503, True)
        gate.open(site.manager)
        site.recorder.wait_for("request", predicate=lambda e: e.args[0].path == "/finished")
        assert in_progress(site) == 0
        with site.client() as client:
            assert client.request(target="/ok").text == "ok"


def test_streamed_request_body_cut_off_frees_the_slot() -> None:
    """The client resets mid-upload, closes mid-upload, or goes silent (body timeout)."""
    outcomes: list[str] = []

    async def upload(request: Request, response: Response) -> str:
        if request.stream is None:
            return "ok"
        try:
            await request.stream.read()
        except (ConnectionError, ProtocolError, TimeoutError) as error:
            outcomes.append(type(error).__name__)
            raise HTTPError(400) from None  # quiet: an answer, not a failure
        return "read"

    limits = HTTPLimits(max_requests=1, max_buffered_body=1024, body_timeout=0.3)
    head = raw_request("/", "Content-Length: 100000", method="POST")
    with serve(upload, limits=limits) as site:
        for n, leave in enumerate(("reset", "close", "silence"), start=1):
            client = site.client()
            client.send(head + b"x" * 4096)
            if leave == "reset":
                site.recorder.wait_for("request", count=2 * n - 1, done=False)
                reset(client)
            elif leave == "close":
                client.sock.shutdown(socket.SHUT_WR)
                client.read_all()  # the server answers and closes
            else:
                client.read_all()
            client.close()
            site.recorder.wait_for("request", count=2 * n - 1)
            assert in_progress(site) == 0
            with site.client() as other:
                assert other.request(target="/ok").text == "ok"
    assert outcomes == ["ConnectionError", "ProtocolError", "TimeoutError"]


def test_client_leaving_a_streamed_response_frees_the_slot() -> None:
    async def forever(request: Request, response: Response) -> str | None:
        if request.path == "/ok":
            return "ok"
        try:
            for _ in range(100_000):
                response.write(b"x" * 65536)
                await response.flush()
        except ConnectionError:
            return None
        return None

    with serve(forever, limits=HTTPLimits(max_requests=1)) as site:
        with site.client() as client:
            client.send(raw_request("/"))
            client.read_raw(b"xxxx")
        site.recorder.wait_for("request")
        assert in_progress(site) == 0
        with site.client() as client:
            assert client.request(target="/ok").text == "ok"


def broken_raise(request: Request, response: Response) -> str:
    raise RuntimeError("broken")


def broken_body(request: Request, response: Response) -> Any:
    return object()  # not a body: 500


async def broken_later(request: Request, response: Response) -> str:
    await sleep(0)
    raise RuntimeError("broken")


@pytest.mark.parametrize("broken", [broken_raise, broken_body, broken_later])
def test_failing_handler_frees_its_slot(broken: Any) -> None:
    limits = HTTPLimits(max_requests=1)
    with serve(broken, limits=limits, check_errors=False) as site, site.client() as client:
        for n in range(1, 4):
            assert client.request().status == 500
            site.recorder.wait_for("request", count=n)
            assert in_progress(site) == 0


# ------------------------------------------------------- protocol errors
BAD = {
    "cl-and-te": (
        raw_request("/", "Content-Length: 5", "Transfer-Encoding: chunked", method="POST")
        + b"0\r\n\r\n",
        400,
    ),
    "cl-not-a-number": (raw_request("/", "Content-Length: 12abc", method="POST"), 400),
    "cl-negative": (raw_request("/", "Content-Length: -1", method="POST"), 400),
    "cl-conflicting": (
        raw_request("/", "Content-Length: 3", "Content-Length: 4", method="POST") + b"abcd",
        400,
    ),
    "te-unknown": (raw_request("/", "Transfer-Encoding: gzip", method="POST"), 501),
    "te-gzip-chunked": (
        raw_request("/", "Transfer-Encoding: gzip, chunked", method="POST"),
        501,
    ),
    "te-http-1.0": (
        raw_request("/", "Transfer-Encoding: chunked", method="POST", version="1.0")
        + b"0\r\n\r\n",
        400,
    ),
    "no-host": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "two-hosts": (raw_request("/", "Host: a", "Host: b"), 400),
    "two-hosts-1.0": (raw_request("/", "Host: a", "Host: b", version="1.0"), 400),
    "http-2.0": (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    "http-3.1": (b"GET / HTTP/3.1\r\nHost: t\r\n\r\n", 505),
    "bare-lf": (b"GET / HTTP/1.1\nHost: t\n\n", 400),
    "bare-lf-in-fields": (b"GET / HTTP/1.1\r\nHost: t\nX: y\r\n\r\n", 400),
    "bare-cr": (b"GET / HTTP/1.1\r\nHost: t\rX: y\r\n\r\n", 400),
    "control-byte-in-value": (raw_request("/", "X-A: a\x01b"), 400),
    "nul-in-value": (raw_request("/", "X-A: a\x00b"), 400),
    "control-byte-in-target": (b"GET /a\x7fb HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    "space-before-colon": (raw_request("/", "X-A : b"), 400),
    "space-before-colon-host": (b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400),
    "obs-fold": (b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n", 400),
    "garbage": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 20, 400),
    "bad-chunk-size": (
        raw_request("/", "Transfer-Encoding: chunked", method="POST") + b"zz\r\nab\r\n",
        400,
    ),
    "truncated-by-eof": (raw_request("/", "Content-Length: 10", method="POST") + b"abc", 400),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_request_closes_only_its_connection(name: str, seen: Seen) -> None:
    data, status = BAD[name]
    with serve(seen) as site, site.client() as good:
        assert good.request(target="/before").text == "seen /before 0"
        with site.client() as bad:
            bad.send(data)
            if name == "truncated-by-eof":
                bad.sock.shutdown(socket.SHUT_WR)
            reply = bad.reply()
            assert reply.status == status, (reply.status, reply.body)
            assert reply.closes
            assert bad.closed()
        assert good.request(target="/after").text == "seen /after 0"
    assert seen.targets == ["/before", "/after"]  # the handler never saw the bad one


def test_valid_request_then_garbage_in_one_packet(seen: Seen) -> None:
    with serve(seen) as site, site.client() as client:
        client.send(raw_request("/ok") + b"THIS IS NOT HTTP\r\n\r\n")
        first = client.reply()
        assert (first.status, first.text, first.closes) == (200, "seen /ok 0", False)
        second = client.reply()
        assert (second.status, second.closes) == (400, True)
        assert client.closed()
    assert seen.targets == ["/ok"]


def test_error_after_pipelined_requests_comes_last(seen: Seen) -> None:
    """Responses due before the error go out first, in order, then the error."""

    async def slow(request: Request, response: Response) -> Any:
        await sleep(0.05 if request.path == "/a" else 0)
        return seen(request, response)

    with serve(slow, virtual=True) as site, site.client() as client:
        client.send(raw_request("/a") + raw_request("/b") + b"GET / HTTP/9.9\r\n\r\n")
        site.vt.wait_timer(0.05)  # "/a" sleeps; "/b" and the error are due after it
        assert client.quiet()
        site.vt.advance(0.05)
        assert [client.reply().text for _ in range(2)] == ["seen /a 0", "seen /b 0"]
        assert client.reply().status == 505
        assert client.closed()


# ------------------------------------------------------- timers in use
def test_dripping_head_is_still_timed_out(seen: Seen) -> None:
    """Slow loris: a byte now and then does not extend the head's deadline."""
    limits = HTTPLimits(head_timeout=0.3)
    with serve(seen, limits=limits, virtual=True) as site, site.client() as client:
        vt = site.vt
        head = b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"s" * 100
        client.send(head[:1])
        vt.wait_timer(0.3)
        for n, byte in enumerate(head[1:30], start=1):  # one byte every 0.01 s
            vt.advance_to(n * 0.01)
            assert client.quiet()
            with vt.reading():
                client.send(bytes([byte]))
        vt.advance_to(0.3 - STEP)
        assert client.quiet()
        vt.advance_to(0.3)
        assert client.read_raw().startswith(b"HTTP/1.1 408 ")
    assert seen.targets == []


def test_each_request_restarts_the_keep_alive_timer(seen: Seen) -> None:
    limits = HTTPLimits(keepalive_timeout=0.375)
    with serve(seen, limits=limits, virtual=True) as site, site.client() as client:
        vt = site.vt
        for n in range(4):  # 1 s in all: longer than one idle period
            assert client.request(target=f"/{n}").status == 200
            vt.advance(0.25)
            assert client.quiet()  # still open: idle since the response only
        vt.advance(0.125 - STEP)
        assert client.quiet()
        vt.advance(STEP)
        assert client.closed()  # 0.375 s after the last response
    assert seen.targets == ["/0", "/1", "/2", "/3"]


def test_slow_handler_is_not_cut_by_the_idle_timer() -> None:
    async def slow(request: Request, response: Response) -> str:
        await sleep(0.5)
        return "slow but fine"

    limits = HTTPLimits(keepalive_timeout=0.2, response_timeout=None)
    with serve(slow, limits=limits, virtual=True) as site, site.client() as client:
        vt = site.vt
        client.send(raw_request("/"))
        vt.wait_timer(0.5)  # the handler sleeps
        vt.advance_to(0.5 - STEP)  # well past the idle timeout
        assert client.quiet()
        vt.advance_to(0.5)
        assert client.reply().text == "slow but fine"


def test_streaming_response_may_outlast_the_response_timeout() -> None:
    async def ticker(request: Request, response: Response) -> None:
        response.write("tick ")
        for _ in range(3):
            await sleep(0.25)
            response.write("tick ")

    limits = HTTPLimits(response_timeout=0.3)
    with serve(ticker, limits=limits, virtual=True) as site, site.client() as client:
        client.send(raw_request("/"))
        site.vt.wait_timer(0.25)
        site.vt.advance(0.75)  # more than twice the response timeout
        assert client.reply().text == "tick " * 4


def test_curl_upload_over_the_body_limit_gets_413(tmp_path: Any) -> None:
    upload = tmp_path / "big.bin"
    upload.write_bytes(b"u" * (2 * 1024 * 1024))
    with serve(Seen(), limits=HTTPLimits(max_body_size=1000)) as site:
        result = curl(
            "--output",
            "/dev/null",
            "--write-out",
            "%{http_code}",
            "--data-binary",
            f"@{upload}",
            site.url + "/",
        )
    assert result.stdout == b"413", result.stderr
