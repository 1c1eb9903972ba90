"""The HTTP state of one connection (a :class:`Link`): parse, dispatch, answer in order.

Rules:
* A link parses ahead at most ``HTTPLimits.max_pipelined`` requests; past that it stops
  reading until responses go out. Requests are answered in order (see :mod:`._exchange`).
* A request is dispatched (see :mod:`._handling`) once its body is read, or at once,
  with ``request.stream``, when the body is too large to buffer.
* A protocol error queues its status after the responses already due, then closes that
  connection only.
* Timeouts (one timer per connection, re-armed lazily): head (408, close), body
  inactivity (408, close), head and body minimum rates (408, close; see
  :mod:`._progress`), response (503), keep-alive idle (close). Time the link holds the
  input because its handler has not taken a streamed body does not count against the
  body.
* A graceful stop closes an idle keep-alive connection at once (its client retries on a
  new one, as HTTP clients do), but one that has not brought its first request yet, or
  whose request is arriving, gets it answered (``Connection: close``) if it comes within
  ``FIRST_REQUEST_GRACE`` seconds: it was accepted a moment ago, its client is sending
  the request, and closing it would fail a request nobody can retry safely.
* A request asking to switch protocols pauses parsing (and reading) until its response is
  out: a 101 with a takeover hands the connection over (the bytes after the request go
  to the takeover, and the server routes the connection's input to it from then on); any
  other answer resumes HTTP.
"""

from __future__ import annotations

import logging
from collections import deque

from ..core import TimerHandle
from ..net import Connection
from ._accesslog import log_access
from ._bodies import close_source
from ._errors import HTTPError, ProtocolError, reason_phrase
from ._exchange import Exchange, Takeover
from ._handling import Host, call_handlers, release, report, time_out
from ._messages import NEED_DATA, PAUSED, Body, EndOfMessage, RequestHead
from ._progress import Progress
from ._protocol import ServerProtocol
from ._request import BodyStream, Request
from ._response import FINISHED, GONE

__all__ = ["FIRST_REQUEST_GRACE", "Link"]

log = logging.getLogger("netcomp.web")

#: Seconds a connection accepted just before a graceful stop has to send its request.
FIRST_REQUEST_GRACE = 1.0


class Link:
    """The HTTP state of one connection."""

    __slots__ = (
        "body_parts",
        "body_progress",
        "body_size",
        "conn",
        "exchanges",
        "fresh",
        "head_progress",
        "idle_deadline",
        "input_over",
        "processing",
        "proto",
        "receiving",
        "server",
        "timer",
        "timer_at",
    )

    def __init__(self, server: Host, conn: Connection) -> None:
        self.server = server
        self.conn = conn
        self.proto = ServerProtocol(server.http_limits)
        self.exchanges: deque[Exchange] = deque()
        self.receiving: Exchange | None = None  # the exchange whose body is arriving
        self.body_parts: list[bytes] = []
        self.body_size = 0
        self.input_over = False
        self.timer: TimerHandle | None = None
        self.timer_at = 0.0
        self.head_progress: Progress | None = None  # a head is arriving (with bounds on)
        self.body_progress: Progress | None = None  # the body of ``receiving`` is arriving
        self.idle_deadline = 0.0
        self.fresh = True  # no request yet
        self.processing = False  # in process(): a nested call leaves it to that loop
        self.idle()

    # ------------------------------------------------------------- input
    def data(self, data: bytes) -> None:
        """Bytes from the client: parse them, take what the pipeline has room for."""
        proto = self.proto
        proto.receive_data(data)
        if self.receiving is not None:  # its body bytes are counted as they are parsed
            if self.body_progress is not None:
                self.body_progress.got(0, self.server.loop.time())
        elif self.head_progress is not None:
            self.head_progress.got(len(data), self.server.loop.time())
        self.process()
        if self.head_progress is None and proto.receiving_head and self.receiving is None:
            self.head_begins(len(data))

    def head_begins(self, size: int) -> None:
        """A head has begun (``size``: about how much of it came): its bounds run."""
        limits = self.server.http_limits
        if Progress.wanted(limits.head_timeout, None, limits.head_min_rate):
            now = self.server.loop.time()
            self.head_progress = progress = Progress(
                now, limits.head_timeout, None, limits.head_min_rate, limits.min_rate_grace
            )
            progress.got(size, now)
            self.arm(progress.due()[0])

    def eof(self) -> None:
        """The client will send no more."""
        self.proto.receive_data(b"")
        self.process()

    def process(self) -> None:
        """Take parsed events while the pipeline has room. A call made from inside it (a
        response finished at once, while its request was being taken) returns at once:
        the running loop goes on with what is parsed (no recursion per request)."""
        if self.processing:
            return
        self.processing = True
        try:
            limits = self.server.http_limits
            limit = limits.max_pipelined
            next_event = self.proto.next_event
            exchanges = self.exchanges
            while not self.input_over:
                receiving = self.receiving
                if receiving is None:
                    if len(exchanges) >= limit:
                        break
                elif (
                    receiving.body_stream is not None
                    and receiving.body_stream.buffered > limits.max_buffered_body
                ):
                    break  # the handler has not taken what it has: wait for it
                event = next_event()
                if event is NEED_DATA:
                    if self.conn.held:
                        self.hold(False)  # (TLS read ahead comes by call_soon, not now)
                    return
                kind = type(event)
                if kind is RequestHead:
                    self.head(event)  # type: ignore[arg-type]
                elif kind is Body:
                    self.body(event.data)  # type: ignore[union-attr]
                elif kind is EndOfMessage:
                    if self.receiving is not None or self.body_progress is not None:
                        self.end()  # (else a bodiless request's end: nothing to do)
                elif kind is ProtocolError:
                    self.protocol_error(event)  # type: ignore[arg-type]
                elif event is PAUSED:  # a switch of protocols is pending: see exchange_done
                    self.hold(True)
                    return
                else:  # CLOSED: no more requests
                    self.input_over = True
                    if not self.exchanges:
                        self.conn.close()
                    return
            self.hold(True)
        finally:
            self.processing = False

    def hold(self, held: bool) -> None:
        """Stop (or resume) reading for the link's own reasons: the time it holds the
        input does not count against a head or body on its way in."""
        conn = self.conn
        if held == conn.held:
            return
        conn.hold(held)
        progress = self.body_progress if self.receiving is not None else self.head_progress
        if progress is not None:
            now = self.server.loop.time()
            if held:
                progress.pause(now)
            else:
                progress.resume(now)
                self.arm(progress.due()[0])

    def head(self, head: RequestHead) -> None:
        """A request head: dispatch it now, or once its body is read (or streaming)."""
        self.head_progress = None
        self.fresh = False
        server = self.server
        conn = self.conn
        req = Request(
            head.method,
            head.target,
            head.version,
            head.fields,
            conn.peer,
            server.scheme,
        )
        if server.proxy_headers is not None:  # trusted Forwarded / X-Forwarded-*
            server.proxy_headers.apply(req)
        exchange = Exchange(self, req, head.version, head.keep_alive)
        if head.upgrade is not None and head.keep_alive:
            exchange.might_switch = True  # the parser pauses after this request
        self.exchanges.append(exchange)
        if not (head.chunked or head.content_length):  # head.has_body, inline
            self.dispatch(exchange)
            return
        self.receiving = exchange
        self.body_parts = []
        self.body_size = 0
        limits = server.http_limits
        self.body_progress = None
        if Progress.wanted(None, limits.body_timeout, limits.body_min_rate):
            self.body_progress = progress = Progress(
                server.loop.time(),
                None,
                limits.body_timeout,
                limits.body_min_rate,
                limits.min_rate_grace,
            )
            self.arm(progress.due()[0])
        if head.expect_continue:
            if exchange.in_front:
                conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            else:
                exchange.continue_due = True
        length = head.content_length
        if length is not None and length > server.http_limits.max_buffered_body:
            self.start_stream(exchange)

    def start_stream(self, exchange: Exchange) -> None:
        """The body is too large to buffer: dispatch now, with ``request.stream``."""
        stream = BodyStream()
        stream.on_consumed = self.stream_consumed
        for part in self.body_parts:
            stream._feed(part)
        self.body_parts = []
        exchange.body_stream = stream
        assert exchange.request is not None
        exchange.request.stream = stream
        self.dispatch(exchange)

    def stream_consumed(self) -> None:
        """The handler took body bytes: read more once it is below the limit again."""
        receiving = self.receiving
        stream = receiving.body_stream if receiving is not None else None
        if stream is not None and stream.buffered <= self.server.http_limits.max_buffered_body:
            self.server.loop.call_soon(self.process)

    def body(self, data: bytes) -> None:
        """Body bytes of the request being received."""
        exchange = self.receiving
        if exchange is None:
            return
        if self.body_progress is not None:
            self.body_progress.received += len(data)
        stream = exchange.body_stream
        if stream is not None:
            if not exchange.finished:
                stream._feed(data)
            return
        self.body_parts.append(data)
        self.body_size += len(data)
        if self.body_size > self.server.http_limits.max_buffered_body:
            self.start_stream(exchange)

    def end(self) -> None:
        """The request being received is complete."""
        exchange = self.receiving
        self.receiving = None
        self.body_progress = None
        if exchange is None:
            return
        stream = exchange.body_stream
        if stream is not None:
            stream._end()
            return
        assert exchange.request is not None
        parts = self.body_parts
        exchange.request.body = parts[0] if len(parts) == 1 else b"".join(parts)
        self.body_parts = []
        self.dispatch(exchange)

    def protocol_error(self, error: ProtocolError) -> None:
        """The client broke the protocol: answer the error after what is due, then close."""
        self.input_over = True
        self.head_progress = self.body_progress = None
        receiving = self.receiving
        self.receiving = None
        if receiving is not None and receiving.body_stream is not None:
            receiving.body_stream._end(error)
        if receiving is not None and not receiving.answered and receiving.body_stream is None:
            self.exchanges.remove(receiving)  # never dispatched: the error answers instead
        log.debug(
            "%r: %s %s: %s", self.conn, error.status, reason_phrase(error.status), error.reason
        )
        self.queue_error(error.status, error.reason)

    def queue_error(self, status: int, reason: str) -> None:
        """Answer ``status`` after the responses already due, then close."""
        self.input_over = True
        exchange = Exchange(self, None, "1.1", False)
        exchange.answered = True
        self.exchanges.append(exchange)
        exchange.fail(HTTPError(status, reason))

    # ---------------------------------------------------------- dispatch
    def dispatch(self, exchange: Exchange) -> None:
        """Hand ``exchange`` to the handlers; its response deadline runs once in front."""
        call_handlers(self.server, exchange)
        if exchange.deadline:
            exchanges = self.exchanges  # (exchange.in_front, inline)
            if exchanges and exchanges[0] is exchange:
                self.arm(exchange.deadline)

    # ------------------------------------------------------------ output
    def exchange_done(self, exchange: Exchange) -> None:
        """The front exchange has written everything."""
        exchanges = self.exchanges
        if not exchanges or exchanges[0] is not exchange:
            return
        exchanges.popleft()
        log_access(self.conn.peer, exchange.request, exchange.response.status, exchange.sent)
        exchange.response._exchange = FINISHED  # no cycle: refcounting frees the exchange
        if exchange.might_switch and self.settle_switch(exchange):
            return
        if exchange.body_stream is not None and not exchange.body_stream.complete:
            self.receiving = None if self.receiving is exchange else self.receiving
            exchange.keep_alive = False  # the rest of its body was never read: resync
        if not exchange.keep_alive:
            self.input_over = True
            self.conn.close()
            return
        if exchanges:
            front = exchanges[0]
            front.reached_front()
            if front.deadline:
                self.arm(front.deadline)
        elif self.input_over:
            self.conn.close()
            return
        else:  # idle(), inline: the timer is re-armed only if it would fire too late
            timeout = self.server.http_limits.keepalive_timeout
            if timeout is not None:
                self.idle_deadline = deadline = self.server.loop.time() + timeout
                if self.timer is None or self.timer_at > deadline:
                    self.arm(deadline)
        # Reading stopped (the pipeline was full), or bytes wait: take what is parsed.
        # Otherwise the last process() ran dry (NEED_DATA) and nothing came since.
        if not self.input_over and (self.conn.held or self.proto.buffered):
            self.process()

    def settle_switch(self, exchange: Exchange) -> bool:
        """The answer to a request that asked to switch protocols is out: switch (a 101
        with a takeover), or go on with HTTP. True when HTTP is over on this connection."""
        takeover, exchange.switch_to = exchange.switch_to, None
        status = exchange.response.status
        if status == 101:
            if (
                takeover is not None
                and exchange.keep_alive
                and self.proto.paused
                and not self.conn.closed
            ):
                self.switch(takeover)
                return True
            if takeover is not None:
                takeover.abandon()
            self.input_over = True  # a 101 with nobody to take over: nothing more to say
            self.conn.close()
            return True
        if takeover is not None:
            takeover.abandon()
        if self.proto.paused:
            self.proto.resume()
        return False

    def switch(self, takeover: Takeover) -> None:
        """Hand the connection to ``takeover``: it handles the input from now on,
        starting with the bytes that came after the request (and the peer's EOF)."""
        self.input_over = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        trailing = self.proto.switch()
        conn = self.conn
        handling = takeover.start(conn)
        self.server._switched(conn, handling)  # before any input: it may close at once
        if trailing:
            handling.data(trailing)
        if conn.eof and not conn.closed:
            handling.eof()
        elif conn.held:
            conn.hold(False)

    def drained(self) -> None:
        """Room in the output again: resume the front exchange."""
        if self.exchanges:
            front = self.exchanges[0]
            if front.source is not None:
                front.pump()
            else:
                front.wake_room()

    def stream_failed(self, exchange: Exchange, error: BaseException) -> None:
        """A streamed body raised: report it, cut the connection."""
        report(self.server, error)
        self.abort(error)

    def abort(self, error: BaseException | None = None) -> None:
        """Cut the connection (a response that cannot be completed)."""
        self.input_over = True
        self.conn.abort()

    def shutdown(self) -> None:
        """The server stops: close now if idle, else after answering what is in progress
        (a request on its way to a new connection included, for a moment)."""
        if not self.exchanges:
            if self.fresh or self.proto.receiving_head:
                grace = self.server.loop.time() + FIRST_REQUEST_GRACE
                if not self.idle_deadline or grace < self.idle_deadline:
                    self.idle_deadline = grace
                    self.arm(grace)
                return
            self.conn.close()
            return
        self.input_over = True
        for exchange in self.exchanges:
            exchange.keep_alive = False

    def down(self) -> None:
        """The connection is gone: give back slots, stop timers and streams."""
        self.input_over = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.proto.close()
        for exchange in self.exchanges:
            release(self.server, exchange)
            takeover, exchange.switch_to = exchange.switch_to, None
            if takeover is not None:
                takeover.abandon()
            exchange.answered = True
            exchange.finished = True
            exchange.response._exchange = GONE  # its writes now raise ConnectionError
            exchange.wake_room()
            source, exchange.source = exchange.source, None
            close_source(source)
            stream = exchange.body_stream
            if stream is not None:
                stream.on_consumed = None
                if not stream.complete:
                    stream._end(ConnectionError("the connection closed"))
        self.exchanges.clear()

    # ------------------------------------------------------------ timers
    def idle(self) -> None:
        """No request in progress: the keep-alive timeout runs."""
        timeout = self.server.http_limits.keepalive_timeout
        if timeout is not None:
            self.idle_deadline = deadline = self.server.loop.time() + timeout
            self.arm(deadline)

    def arm(self, deadline: float) -> None:
        """Make sure the timer fires no later than ``deadline`` (lazy: never re-arms later)."""
        timer = self.timer
        if timer is not None:
            if self.timer_at <= deadline:
                return
            timer.cancel()
        self.timer_at = deadline
        self.timer = self.server.loop.call_at(deadline, self.expired)

    def expired(self) -> None:
        """The timer fired: act on the deadlines that passed, re-arm for the next one."""
        self.timer = None
        if self.conn.closed:
            return
        now = self.server.loop.time()
        next_at = 0.0
        receiving = self.receiving is not None
        progress = self.body_progress if receiving else self.head_progress
        if progress is not None and not self.input_over:
            due, why = progress.due()
            if now >= due:
                self.timeout(408, f"request {'body' if receiving else 'head'} {why}")
                return
            if due != float("inf"):
                next_at = due
        for exchange in list(self.exchanges):  # a 503 sent may end the front one
            if not exchange.answered and exchange.deadline and not exchange.head_sent:
                if now >= exchange.deadline:
                    time_out(self.server, exchange)
                    if self.conn.closed:
                        return
                elif not next_at or exchange.deadline < next_at:
                    next_at = exchange.deadline
        if not self.exchanges and not self.proto.receiving_head and self.idle_deadline:
            if now >= self.idle_deadline:
                self.input_over = True
                self.conn.close()
                return
            if not next_at or self.idle_deadline < next_at:
                next_at = self.idle_deadline
        if next_at:
            self.arm(next_at)

    def timeout(self, status: int, reason: str) -> None:
        """The head or body took too long: answer ``status`` after what is due, close."""
        receiving = self.receiving
        self.receiving = None
        self.head_progress = self.body_progress = None
        if receiving is not None:
            if receiving.body_stream is not None:
                receiving.body_stream._end(TimeoutError(reason))
            elif not receiving.answered:
                self.exchanges.remove(receiving)
        self.proto = ServerProtocol(self.server.http_limits)  # nothing more is parsed
        self.queue_error(status, reason)
