"""The HTTP server component: a TCP/TLS server with one protocol state per connection.

Rules:
* Each connection (a :class:`Link`) parses ahead at most ``HTTPLimits.max_pipelined``
  requests; past that it stops reading until responses go out. Requests are answered
  in order (see :mod:`._exchange`).
* ``request(request, response)`` is fired on the server's channel once the body is read
  (or at once, with ``request.stream``, when the body is too large to buffer). The
  handlers' Value becomes the response when it is done.
* A protocol error queues its status after the responses already due, then closes that
  connection only. A handler that raises gives 500 (its traceback only with
  ``expose_tracebacks``) and fires ``exception`` like any handler error; an
  :class:`HTTPError` gives its status quietly.
* Timeouts (one timer per connection, re-armed lazily): head (408, close), body
  inactivity (408, close), response (503), keep-alive idle (close).
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections import deque
from typing import Any

from ..core import Event, TimerHandle, Value, handler
from ..net import Connection
from ..net import Server as _StreamServer
from ._errors import HTTPError, ProtocolError, reason_phrase
from ._exchange import FINISHED, GONE, Exchange, close_source
from ._headers import check_field
from ._limits import HTTPLimits
from ._protocol import NEED_DATA, Body, EndOfMessage, RequestHead, ServerProtocol
from ._request import BodyStream, Request

__all__ = ["BaseServer", "request"]

access_log = logging.getLogger("netcomp.web.access")


class request(Event):
    """``request(request, response)``: an HTTP request to answer (fired on the server's
    channel). The handlers' result becomes the response."""


def _family(bind: Any) -> socket.AddressFamily:
    if isinstance(bind, str) and ("/" in bind or bind.startswith("\0")):
        return socket.AF_UNIX
    host = bind[0] if isinstance(bind, tuple) else bind if isinstance(bind, str) else ""
    if isinstance(host, str) and (host.startswith("[") or host.count(":") > 1):
        return socket.AF_INET6
    return socket.AF_INET


class Link:
    """The HTTP state of one connection."""

    __slots__ = (
        "body_deadline",
        "body_parts",
        "body_size",
        "conn",
        "exchanges",
        "head_deadline",
        "idle_deadline",
        "input_over",
        "proto",
        "receiving",
        "server",
        "timer",
        "timer_at",
    )

    def __init__(self, server: BaseServer, conn: Connection) -> None:
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
        self.head_deadline = 0.0
        self.body_deadline = 0.0
        self.idle_deadline = 0.0
        self.idle()

    # ------------------------------------------------------------- input
    def data(self, data: bytes) -> None:
        proto = self.proto
        proto.receive_data(data)
        if self.receiving is not None and self.server.http_limits.body_timeout is not None:
            self.body_deadline = self.server.loop.time() + self.server.http_limits.body_timeout
        self.process()
        if not self.head_deadline and proto.receiving_head and self.receiving is None:
            timeout = self.server.http_limits.head_timeout
            if timeout is not None:
                self.head_deadline = deadline = self.server.loop.time() + timeout
                self.arm(deadline)

    def eof(self) -> None:
        self.proto.receive_data(b"")
        self.process()

    def process(self) -> None:
        """Take parsed events while the pipeline has room."""
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
                    self.conn.hold(False)
                return
            kind = type(event)
            if kind is RequestHead:
                self.head(event)  # type: ignore[arg-type]
            elif kind is Body:
                self.body(event.data)  # type: ignore[union-attr]
            elif kind is EndOfMessage:
                self.end()
            elif kind is ProtocolError:
                self.protocol_error(event)  # type: ignore[arg-type]
            else:  # CLOSED: no more requests
                self.input_over = True
                if not self.exchanges:
                    self.conn.close()
                return
        self.conn.hold(True)

    def head(self, head: RequestHead) -> None:
        self.head_deadline = 0.0
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
        exchange = Exchange(self, req, head.version, head.keep_alive)
        self.exchanges.append(exchange)
        if not head.has_body:
            self.dispatch(exchange)
            return
        self.receiving = exchange
        self.body_parts = []
        self.body_size = 0
        if server.http_limits.body_timeout is not None:
            self.body_deadline = server.loop.time() + server.http_limits.body_timeout
            self.arm(self.body_deadline)
        if head.expect_continue:
            if exchange.in_front:
                conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            else:
                exchange.continue_due = True
        length = head.content_length
        if length is not None and length > server.http_limits.max_buffered_body:
            self.start_stream(exchange)

    def start_stream(self, exchange: Exchange) -> None:
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
        receiving = self.receiving
        stream = receiving.body_stream if receiving is not None else None
        if stream is not None and stream.buffered <= self.server.http_limits.max_buffered_body:
            self.server.loop.call_soon(self.process)

    def body(self, data: bytes) -> None:
        exchange = self.receiving
        if exchange is None:
            return
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
        exchange = self.receiving
        self.receiving = None
        self.body_deadline = 0.0
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
        self.input_over = True
        self.head_deadline = self.body_deadline = 0.0
        receiving = self.receiving
        self.receiving = None
        if receiving is not None and receiving.body_stream is not None:
            receiving.body_stream._end(error)
        if receiving is not None and not receiving.answered and receiving.body_stream is None:
            self.exchanges.remove(receiving)  # never dispatched: the error answers instead
        self.server._log_protocol_error(self, error)
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
        server = self.server
        limits = server.http_limits
        if limits.max_requests is not None and server.in_progress >= limits.max_requests:
            exchange.answered = True
            exchange.keep_alive = False
            exchange.fail(HTTPError(503, "too many requests in progress"))
            return
        server.in_progress += 1
        exchange.holds_slot = True
        if limits.response_timeout is not None:
            exchange.deadline = deadline = server.loop.time() + limits.response_timeout
            if self.exchanges[0] is exchange:
                self.arm(deadline)
        value = server.fire(request(exchange.request, exchange.response), server.channel)
        value.add_done_callback(lambda v: server._answered(self, exchange, v))

    # ------------------------------------------------------------ output
    def exchange_done(self, exchange: Exchange) -> None:
        """The front exchange has written everything."""
        exchanges = self.exchanges
        if not exchanges or exchanges[0] is not exchange:
            return
        exchanges.popleft()
        self.server._log_access(self, exchange)
        exchange.response._exchange = FINISHED  # no cycle: refcounting frees the exchange
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
        else:
            self.idle()
        if not self.input_over:
            self.process()

    def release(self, exchange: Exchange) -> None:
        """The handler of ``exchange`` no longer counts against ``max_requests`` (once:
        when it is done, timed out, or its connection is gone, whichever comes first)."""
        if exchange.holds_slot:
            exchange.holds_slot = False
            self.server.in_progress -= 1

    def drained(self) -> None:
        if self.exchanges:
            front = self.exchanges[0]
            if front.source is not None:
                front.pump()
            else:
                front.wake_room()

    def stream_failed(self, exchange: Exchange, error: BaseException) -> None:
        self.server._stream_failed(self, exchange, error)
        self.abort(error)

    def abort(self, error: BaseException | None = None) -> None:
        self.input_over = True
        self.conn.abort()

    def down(self) -> None:
        """The connection is gone: stop timers and streams."""
        self.input_over = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.proto.close()
        for exchange in self.exchanges:
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
        self.timer = None
        if self.conn.closed:
            return
        now = self.server.loop.time()
        limits = self.server.http_limits
        next_at = 0.0
        if self.receiving is not None and self.body_deadline and not self.input_over:
            if now >= self.body_deadline:
                self.timeout(408, "request body timed out")
                return
            next_at = self.body_deadline
        elif self.head_deadline and not self.input_over:
            if now >= self.head_deadline:
                self.timeout(408, "request head timed out")
                return
            next_at = self.head_deadline
        for exchange in self.exchanges:
            if not exchange.answered and exchange.deadline and not exchange.head_sent:
                if now >= exchange.deadline:
                    self.server._response_timed_out(self, exchange)
                    if self.conn.closed:
                        return
                elif not next_at or exchange.deadline < next_at:
                    next_at = exchange.deadline
        if not self.exchanges and not self.proto.receiving_head and self.idle_deadline:
            if limits.keepalive_timeout is not None and now >= self.idle_deadline:
                self.input_over = True
                self.conn.close()
                return
            if not next_at or self.idle_deadline < next_at:
                next_at = self.idle_deadline
        if next_at:
            self.arm(next_at)

    def timeout(self, status: int, reason: str) -> None:
        receiving = self.receiving
        self.receiving = None
        if receiving is not None:
            if receiving.body_stream is not None:
                receiving.body_stream._end(TimeoutError(reason))
            elif not receiving.answered:
                self.exchanges.remove(receiving)
        self.proto = ServerProtocol(self.server.http_limits)  # nothing more is parsed
        self.queue_error(status, reason)


class BaseServer(_StreamServer):
    """An HTTP/1.1 server: fires ``request(request, response)`` on its channel.

    ``bind``: a port, ``(host, port)``, ``"host:port"``, ``"[::1]:port"`` or a UNIX path.
    TLS with ``ssl_context=`` or ``certfile=``/``keyfile=``. ``limits``: :class:`HTTPLimits`.
    Other keywords go to the stream server (``backlog``, ``reuse_port``, ``sock``...).
    """

    channel = "web"

    def init(  # type: ignore[override]
        self,
        bind: Any = None,
        secure: bool | None = None,
        ssl_context: ssl.SSLContext | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        limits: HTTPLimits | None = None,
        expose_tracebacks: bool = False,
        server_name: str | None = "netcomp",
        channel: Any = "web",
        **options: Any,
    ) -> None:
        """Bind and listen at once (errors surface here)."""
        sock = options.get("sock")
        self.family = sock.family if sock is not None else _family(bind)
        self.http_limits = limits if limits is not None else HTTPLimits()
        self.expose_tracebacks = expose_tracebacks
        self.server_name = server_name
        self._server_field = f"Server: {server_name}\r\n" if server_name else ""
        if server_name:
            check_field("Server", server_name)
        self.in_progress = 0
        self.stopping = False
        self._links: dict[Connection, Link] = {}
        super().init(bind, secure, ssl_context, certfile, keyfile, channel=channel, **options)
        self.scheme = "https" if self.secure else "http"

    @property
    def url(self) -> str:
        """The base URL clients use (``http://127.0.0.1:8000``)."""
        host = self.host
        if self.family == socket.AF_INET6:
            host = f"[{host}]"
        elif self.family == socket.AF_UNIX:
            return f"{self.scheme}+unix://{host}"
        return f"{self.scheme}://{host}:{self.port}"

    # -------------------------------------------------- connection owner
    def connection_made(self, conn: Connection) -> None:
        """A connection is up: give it its HTTP state (or a 503 past ``max_connections``)."""
        if len(self._links) >= self.http_limits.max_connections:
            conn.write(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                b"Connection: close\r\nRetry-After: 1\r\n\r\n"
            )
            conn.close()
            return
        self._links[conn] = Link(self, conn)
        super().connection_made(conn)

    def data_received(self, conn: Connection, data: bytes) -> None:
        """Bytes from a client go to its parser (no ``read`` event)."""
        link = self._links.get(conn)
        if link is not None:
            link.data(data)

    def eof_received(self, conn: Connection) -> None:
        """The client will send no more: answer what it asked, then close."""
        link = self._links.get(conn)
        if link is not None:
            link.eof()
        else:
            conn.close()

    def connection_drained(self, conn: Connection) -> None:
        """Room in the output again: resume a streamed response."""
        link = self._links.get(conn)
        if link is not None:
            link.drained()

    def connection_lost(self, conn: Connection, err: BaseException | None) -> None:
        """The connection is gone: end its exchanges, then the stream server's part."""
        link = self._links.pop(conn, None)
        if link is not None:
            for exchange in link.exchanges:
                link.release(exchange)
                exchange.answered = True
            link.down()
        super().connection_lost(conn, err)

    def shutdown_connection(self, conn: Connection) -> None:
        """On shutdown, an idle connection closes; a busy one answers what it has first."""
        link = self._links.get(conn)
        if link is None or not link.exchanges:
            conn.close()
            return
        link.input_over = True  # answer what is in progress, then close
        for exchange in link.exchanges:
            exchange.keep_alive = False

    @handler("stopped", channel="*", priority=1)
    def _web_stopping(self, manager: Any) -> None:
        self.stopping = True

    # ------------------------------------------------------------ answers
    def _answered(self, link: Link, exchange: Exchange, value: Value) -> None:
        link.release(exchange)  # even when answered already (finish() before returning)
        if exchange.answered:
            return  # finished by the handler, timed out (503 sent), or the connection is gone
        exchange.answered = True
        if value.errors:
            error = value.exception
            assert error is not None
            exchange.fail(error, self.expose_tracebacks)
            return
        result = value.value
        if isinstance(result, list) and all(isinstance(r, (str, bytes)) for r in result):
            result = (
                "".join(result)
                if all(isinstance(r, str) for r in result)
                else b"".join(r.encode() if isinstance(r, str) else r for r in result)
            )
        try:
            exchange.respond(result)
        except Exception as error:  # a body we cannot send: the handler's bug, not fatal
            self._report(exchange, error)
            exchange.fail(error, self.expose_tracebacks)

    def _report(self, exchange: Exchange, error: BaseException) -> None:
        from ..core import exception

        self.fire(
            exception(type(error), error, error.__traceback__, handler=None, fevent=None),
            self.root.channel,
        )

    def _response_timed_out(self, link: Link, exchange: Exchange) -> None:
        exchange.answered = True
        link.release(exchange)
        exchange.keep_alive = False
        exchange.fail(HTTPError(503, "the handler did not answer in time"))

    def _stream_failed(self, link: Link, exchange: Exchange, error: BaseException) -> None:
        self._report(exchange, error)

    # -------------------------------------------------------------- logs
    def _log_access(self, link: Link, exchange: Exchange) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        req = exchange.request
        peer = link.conn.peer
        host = peer[0] if isinstance(peer, tuple) else "-"
        if req is None:
            line, referer, agent = "-", "-", "-"
        else:
            line = f"{req.method} {req.target} HTTP/{req.version}"
            referer = req.headers.get("referer", "-")
            agent = req.headers.get("user-agent", "-")
        from ._accesslog import format_access

        access_log.info(
            format_access(host, line, exchange.response.status, exchange.sent, referer, agent)
        )

    def _log_protocol_error(self, link: Link, error: ProtocolError) -> None:
        logging.getLogger("netcomp.web").debug(
            "%r: %s %s: %s", link.conn, error.status, reason_phrase(error.status), error.reason
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__}/{self.channel} {self.url} connections={len(self._links)}>"
