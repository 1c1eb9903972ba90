"""``Client``: circuits.web's HTTP client, on the net layer's TCP client and llhttp.

Rules:
* ``request(method, url, body=None, headers=None)`` fired on the client's channel sends
  one request; its value is the :class:`ClientResponse` (``await self.call(...)``), and
  ``response(response)`` fires on the channel when it arrives (circuits' event);
  ``client.response`` is the last one.
* Requests go one at a time, in order, on one connection: kept alive while the server
  agrees and the next request is for the same origin (scheme, host, port); another
  origin closes it and connects there. TLS (``https``) verifies certificates and names
  (``ssl_context=`` to trust another CA). Connecting is bounded by ``connect_timeout``.
* ``timeout``: seconds from sending a request to its complete response, on the loop's
  clock; past it the request fails with :class:`netcomp.TimeoutError` and the connection
  is dropped. A malformed response fails with :class:`MalformedResponse` and the
  connection is dropped; a connection that fails fails its request with the reason.
  Either way the next request goes on a new connection.
* A request sent on a reused connection that the server closed before answering a byte
  (an idle keep-alive connection it timed out) is sent again, once, on a new
  connection, if its method is idempotent.
"""

from __future__ import annotations

import socket
import ssl
from collections import deque
from typing import Any

from ..core import Event, Future, TimeoutError, TimerHandle, handler
from ..net import Connection, TCPClient, connect
from ._clientwire import (
    ClientResponse,
    MalformedResponse,
    ResponseParser,
    encode_request,
    parse_url,
)
from ._events import response as response_event

__all__ = ["Client", "request"]

_IDEMPOTENT = frozenset(("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"))


class request(Event):
    """``request(method, url, body=None, headers=None)``: send an HTTP request (fired on a
    :class:`Client`'s channel); the value is the response."""

    def __init__(self, method: str, url: str, body: Any = None, headers: Any = None) -> None:
        super().__init__(method, url, body, headers)


class _Pending:
    __slots__ = ("data", "future", "method", "origin", "retried", "url")

    def __init__(self, method: str, url: str, origin: tuple[str, int, bool], data: bytes) -> None:
        self.method, self.url, self.origin, self.data = method, url, origin, data
        self.future = Future()
        self.retried = False


class Client(TCPClient):
    """An HTTP/1.1 client component (see the module rules)."""

    channel: Any = "client"
    family = socket.AF_UNSPEC  # whatever the URL's host is

    def __init__(
        self,
        channel: Any = "client",
        *,
        timeout: float | None = 30.0,
        connect_timeout: float | None = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        max_body: int = 64 * 1024 * 1024,
    ) -> None:
        """``timeout``: per request (None: none). ``max_body``: the largest response body."""
        super().__init__(channel=channel, connect_timeout=connect_timeout, ssl_context=ssl_context)
        self.timeout = timeout
        self.max_body = max_body
        self._response: ClientResponse | None = None
        self._queue: deque[_Pending] = deque()
        self._current: _Pending | None = None
        self._parser: ResponseParser | None = None
        self._link: Connection | None = None
        self._origin: tuple[str, int, bool] | None = None
        self._usable = False  # the link may carry the next request
        self._reused = False
        self._timer: TimerHandle | None = None

    @property
    def response(self) -> ClientResponse | None:
        """The last response received (circuits' ``client.response``)."""
        return self._response

    # ------------------------------------------------------------ requests
    @handler("request")
    def _on_request(self, method: str, url: str, body: Any = None, headers: Any = None) -> Future:
        host, port, target, secure = parse_url(url)
        data = encode_request(method, host, port, secure, target, body, headers)
        pending = _Pending(method, url, (host, port, secure), data)
        self._queue.append(pending)
        self._next()
        return pending.future

    def _next(self) -> None:
        if self._current is not None or not self._queue:
            return
        pending = self._queue[0]
        link = self._link
        if link is not None:
            if self._usable and self._origin == pending.origin and not link.closed:
                self._send(self._queue.popleft(), link)
            elif self._usable:
                self._usable = False
                link.close()  # another origin: connection_lost calls back
        elif self._origin is None:
            host, port, secure = pending.origin
            self._origin = pending.origin
            self.fire(connect(host, port, secure), self.channel)

    def _send(self, pending: _Pending, link: Connection) -> None:
        self._current = pending
        self._parser = ResponseParser(pending.method, pending.url, max_body=self.max_body)
        if self.timeout is not None:
            self._timer = self.loop.call_later(self.timeout, self._timed_out, pending)
        link.write(pending.data)

    def _done(self, error: BaseException | None = None) -> None:
        pending, self._current = self._current, None
        parser, self._parser = self._parser, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if pending is None:
            return
        if error is not None:
            pending.future.set_exception(error)
        else:
            assert parser is not None
            self._response = parser.response
            self.fire(response_event(parser.response), self.channel)
            pending.future.set_result(parser.response)
            self._reused = True
            if not parser.keep_alive and self._link is not None:
                self._usable = False
                self._link.close()
        self._next()

    def _timed_out(self, pending: _Pending) -> None:
        if pending is self._current:
            link = self._link
            self._usable = False
            what = f"{pending.method} {pending.url}"
            self._done(TimeoutError(f"no complete response to {what} within {self.timeout} s"))
            if link is not None:
                link.abort()

    # ------------------------------------------------- connection hooks
    @handler(False)
    def connection_made(self, conn: Connection) -> None:
        """The link is up: send the first waiting request."""
        self._link = conn
        self._usable = True
        self._reused = False
        super().connection_made(conn)
        if self._queue and self._queue[0].origin == self._origin:
            self._send(self._queue.popleft(), conn)

    @handler(False)
    def data_received(self, conn: Connection, data: bytes) -> None:
        """Response bytes: parse them (no ``read`` event)."""
        parser = self._parser
        if parser is None:
            conn.abort()  # nothing was asked: a server that talks out of turn
            return
        try:
            done = parser.feed(data)
        except MalformedResponse as error:
            self._usable = False
            self._done(error)
            conn.abort()
            return
        if done is not None:
            self._done()

    @handler(False)
    def eof_received(self, conn: Connection) -> None:
        """The server will send no more: a close-delimited body ends here."""
        self._usable = False
        parser = self._parser
        if parser is not None and (parser.started or not self._retry()):
            try:
                parser.eof()
            except MalformedResponse as error:
                self._done(error)
            else:
                self._done()
        conn.close()

    @handler(False)
    def connection_lost(self, conn: Connection, err: BaseException | None) -> None:
        """The link is gone: fail what was sent on it, connect again for what waits."""
        if conn is self._link:
            self._link = None
            self._origin = None
            self._usable = False
            parser = self._parser
            retried = parser is not None and not parser.started and self._retry()
            if self._current is not None and not retried:
                self._done(err or ConnectionError("the connection closed before the response"))
        super().connection_lost(conn, err)
        self._next()

    def _retry(self) -> bool:
        """Put the current request back to be sent again, if that is safe (once)."""
        pending = self._current
        if pending is None or not self._reused or pending.retried:
            return False
        if pending.method not in _IDEMPOTENT:
            return False
        pending.retried = True
        self._current = self._parser = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.appendleft(pending)
        return True

    @handler("unreachable")
    def _on_unreachable(self, host: Any, port: Any, reason: BaseException) -> None:
        self._origin = None
        if self._queue and self._current is None:
            pending = self._queue.popleft()
            pending.future.set_exception(reason)
            self._next()

    def __repr__(self) -> str:
        state = "busy" if self._current else "idle"
        return f"<Client/{self.channel} {self._origin!r} {state} queued={len(self._queue)}>"
