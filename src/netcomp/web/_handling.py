"""Handing a request to the handlers and taking their answer back, within ``max_requests``.

Rules:
* ``request(request, response)`` is fired on the server's channel; the handlers' Value
  becomes the response when it is done (a list of ``str``/``bytes`` from several
  handlers is joined).
* ``max_requests``: a dispatched request holds a slot until its handlers are done, its
  response times out, or its connection is gone, whichever comes first, and gives it
  back once. A response finished early (``response.finish()``) keeps the slot until its
  handler returns. Past the limit a request is answered 503 and its connection closes.
* A handler that raises gives 500 (its traceback in the response only with
  ``expose_tracebacks``), fires ``exception`` like any handler error, and is logged with
  its traceback on ``netcomp.web`` at ERROR (the server takes the error, so the core does
  not log it again); an :class:`HTTPError` gives its status quietly. A result that cannot
  be sent is the handler's bug too: 500, ``exception`` and the same log line.
* Handlers that return nothing and write nothing get 404, as in circuits.web, with a
  WARNING on ``netcomp.web`` saying so (raise ``NotFound`` for a deliberate, quiet 404).
* A handler that has not started answering within ``response_timeout`` gets 503 sent
  for it; what it returns later is dropped. So is what a handler returns once its
  connection is gone (a pipelined request whose client left before the handler ran):
  quietly, closing a file or generator it returned.
* The server's ``response_filters`` (none by default) see each response before its head
  is made (:mod:`._filters`): they are copied onto the response here and run there.
* The requests a loop pass reads are handed to the handlers together, once its reads are
  done (a ``call_soon``): their responses leave in one burst, not one per read between
  the next reads (which costs the peer a wake-up per response).
* No event nobody could see: when the server's :class:`Dispatcher` is the only handler a
  ``request`` fired on the server's channel would meet, and no observer, waiter,
  completion tracking or feedback switch of the ``request`` class could see it,
  ``Dispatcher.answer`` is called then, without the event and its Value
  (docs/architecture.md, "Web"). The outcome is the same: its result (or the Value of an
  action fired as an event) becomes the response; an error it raises gets the event and
  its Value made then and failed as its dispatch would have (an :class:`HTTPError`
  quietly; anything else reported by ``exception`` naming the Dispatcher's handler and
  the ``request``, a 500 logged once); an action's coroutine or Future is run by the
  loop (``Dispatcher.answer_later``).

What is needed of the server is a :class:`Host`.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from functools import partial
from types import CoroutineType, GeneratorType
from typing import Any, Protocol

from ..core import Event, Future, Loop, Manager, Value, exception
from ..net import Connection
from ._bodies import close_source
from ._dispatcher import Dispatcher
from ._errors import HTTPError
from ._events import request
from ._exchange import Exchange, Handling
from ._filters import ResponseFilter, filter_response
from ._limits import HTTPLimits
from ._proxy import ProxyHeaders
from ._response import Response

__all__ = [
    "Host",
    "answer_dispatched",
    "call_handlers",
    "drop",
    "handlers_done",
    "release",
    "report",
    "settle",
    "time_out",
]

log = logging.getLogger("netcomp.web")


class Host(Protocol):
    """What handling requests (and a ``Link``) needs of the server (a ``BaseServer``)."""

    in_progress: int  # requests holding a max_requests slot, server-wide
    answering: list[Exchange]  # dispatched this pass, to answer after the reads

    @property
    def http_limits(self) -> HTTPLimits: ...
    @property
    def loop(self) -> Loop: ...
    @property
    def root(self) -> Manager: ...
    @property
    def channel(self) -> Any: ...  # where ``request`` is fired
    @property
    def scheme(self) -> str: ...
    @property
    def proxy_headers(self) -> ProxyHeaders | None: ...
    @property
    def expose_tracebacks(self) -> bool: ...
    @property
    def stopping(self) -> bool: ...
    @property
    def response_filters(self) -> list[ResponseFilter]: ...
    @property
    def _server_field(self) -> str: ...
    def fire(self, event: Event, *channels: Hashable) -> Value: ...
    def _switched(self, conn: Connection, handling: Handling) -> None: ...


def call_handlers(server: Host, exchange: Exchange) -> None:
    """Fire ``request`` for ``exchange`` with its deadline set (or answer 503 at once
    when ``max_requests`` are in progress)."""
    limits = server.http_limits
    if limits.max_requests is not None and server.in_progress >= limits.max_requests:
        exchange.answered = True
        exchange.keep_alive = False
        exchange.fail(HTTPError(503, "too many requests in progress"))
        return
    server.in_progress += 1
    exchange.holds_slot = True
    if limits.response_timeout is not None:
        exchange.deadline = server.loop.time() + limits.response_timeout
    if server.response_filters:  # an extension point: costs nothing unless used
        exchange.response.filters = list(server.response_filters)
    # Answered once the reads of this loop pass are done, all together: the responses
    # leave in one burst, as the events' dispatch would send them (see the rules).
    answering = server.answering
    answering.append(exchange)
    if len(answering) == 1:
        server.loop.call_soon(answer_dispatched, server)


def answer_dispatched(server: Host) -> None:
    """Hand the requests dispatched since the last call to the handlers: by a ``request``
    event each, or, when nobody but the Dispatcher could see it, without (see the rules)."""
    exchanges, server.answering = server.answering, []
    loop = server.loop
    channels = (server.channel,)
    # A feedback switch on the class (request_success, ...): someone awaits the events.
    feedback = request.success or request.failure or request.complete
    for exchange in exchanges:
        try:  # (lookup()'s own cache, read inline: no call on the common path)
            handlers = loop.registry.cache["request"][channels][0]
        except KeyError:
            handlers = loop.registry.lookup("request", channels)[0]
        if (
            len(handlers) == 1
            and not feedback
            and getattr(handlers[0].fn, "__func__", None) is _ON_REQUEST
            and loop.observer is None
            and not loop.tracking
            and "request" not in loop.waiters
        ):
            try:
                _answer(server, exchange, handlers[0])  # nobody else could see the event
            except Exception as error:  # (a bug of ours: it never strands the others)
                release(server, exchange)
                if exchange.answered:
                    log.error("answering %r failed", exchange.request, exc_info=error)
                else:
                    exchange.answered = True
                    _cannot_send(server, exchange, error)
            continue
        value = server.fire(request(exchange.request, exchange.response), server.channel)
        value.observed = True  # a handler's error becomes this request's 500, logged here
        # (a partial, not a lambda: its call makes no Python frame of its own)
        value.add_done_callback(partial(handlers_done, server, exchange))


_ON_REQUEST = Dispatcher._on_request
_LATER = (CoroutineType, GeneratorType, Future)


def _answer(server: Host, exchange: Exchange, entry: Any) -> None:
    """The Dispatcher answers ``exchange`` without a ``request`` event (see the rules)."""
    dispatcher: Dispatcher = entry.component
    req, resp = exchange.request, exchange.response
    try:
        result = dispatcher.answer(req, resp)  # type: ignore[arg-type]
    except Exception as error:
        # As its dispatch would have: the event and its Value, failed (reported unless an
        # HTTPError), then done; handlers_done answers (and logs a 500 once).
        event = request(req, resp)
        event.channels = (server.channel,)
        value = event.value = Value(event, server.root)
        value.observed = True
        server.loop.handler_error(event, entry, error)
        server.loop.finish(event)
        handlers_done(server, exchange, value)
        return
    if isinstance(result, _LATER):
        result = dispatcher.answer_later(result, req, resp)  # type: ignore[arg-type]
    elif not isinstance(result, Value):
        settle(server, exchange, result)
        return
    result.observed = True  # (as the core does for a Value a handler returns)
    result.add_done_callback(partial(handlers_done, server, exchange))


def handlers_done(server: Host, exchange: Exchange, value: Value) -> None:
    """The handlers of ``exchange`` are done: their result becomes the response."""
    if value.errors:
        error = value.exception
        assert error is not None
        settle(server, exchange, None, error)
    else:
        settle(server, exchange, value.value)


def settle(
    server: Host, exchange: Exchange, result: Any, error: BaseException | None = None
) -> None:
    """The handlers of ``exchange`` are done: ``result`` (or ``error``, what one raised)
    becomes the response."""
    if exchange.holds_slot:  # release(), inline: even when answered already
        exchange.holds_slot = False
        server.in_progress -= 1
    if exchange.answered:
        # Finished by the handler, timed out (503 sent), or the connection is gone: what
        # the handlers returned is dropped, and a stream in it (a file) closed now.
        if error is None:
            drop(exchange, result)
        return
    exchange.answered = True
    expose = server.expose_tracebacks
    if error is not None:
        if not isinstance(error, HTTPError):
            _log_500(exchange, error, "a handler raised")
        exchange.fail(error, expose)
        return
    if isinstance(result, HTTPError):  # returned, not raised (circuits' httperror idiom)
        exchange.fail(result, expose)
        return
    if result is None and not exchange.response.touched and not exchange.head_sent:
        req = exchange.request
        log.warning(
            "%s %s: no handler answered (they returned None and wrote nothing): 404; "
            "return a body, or raise NotFound() for a deliberate 404",
            req.method if req is not None else "-",
            req.target if req is not None else "-",
        )
    if isinstance(result, list) and all(isinstance(r, (str, bytes)) for r in result):
        result = (
            "".join(result)
            if all(isinstance(r, str) for r in result)
            else b"".join(r.encode() if isinstance(r, str) else r for r in result)
        )
    response = exchange.response
    if response.filters is not None or response.encoder is not None:
        filter_response(
            exchange,
            result,
            lambda answer: _send(server, exchange, answer),
            lambda error: _filter_failed(server, exchange, error),
        )
        return
    try:  # (inline, not _send: the common path makes no extra call)
        exchange.respond(result)
    except Exception as err:
        _cannot_send(server, exchange, err)


def _send(server: Host, exchange: Exchange, result: Any) -> None:
    try:
        exchange.respond(result)
    except Exception as error:
        _cannot_send(server, exchange, error)


def _cannot_send(server: Host, exchange: Exchange, error: BaseException) -> None:
    """A body we cannot send: the handler's bug, not fatal."""
    _log_500(exchange, error, "the handler's answer cannot be sent")
    report(server, error)
    exchange.fail(error, server.expose_tracebacks)


def _filter_failed(server: Host, exchange: Exchange, error: BaseException) -> None:
    if not isinstance(error, HTTPError):
        _log_500(exchange, error, "a response filter raised")
        report(server, error)
    exchange.fail(error, server.expose_tracebacks)


def drop(exchange: Exchange, result: Any) -> None:
    """Close the body in a result that will not be sent (unless it is being sent)."""
    body = result.body if isinstance(result, Response) else result
    if body is None or body is exchange.source or isinstance(body, _PLAIN):
        return
    close_source(body)


_PLAIN = (str, bytes, bytearray, memoryview, dict, list)


def _log_500(exchange: Exchange, error: BaseException, what: str) -> None:
    req = exchange.request
    # Once the head is out (a streamed body), the client gets a cut body, not a 500.
    outcome = (
        f"{exchange.response.status} cut after {exchange.sent} body bytes"
        if exchange.head_sent
        else "500 Internal Server Error"
    )
    log.error(
        "%s %s: %s: %s: %r",
        req.method if req is not None else "-",
        req.target if req is not None else "-",
        outcome,
        what,
        error,
        exc_info=error,
    )


def release(server: Host, exchange: Exchange) -> None:
    """The request of ``exchange`` no longer counts against ``max_requests`` (once)."""
    if exchange.holds_slot:
        exchange.holds_slot = False
        server.in_progress -= 1


def time_out(server: Host, exchange: Exchange) -> None:
    """The handler did not start answering in time: 503, and the slot is given back."""
    exchange.answered = True
    release(server, exchange)
    exchange.keep_alive = False
    exchange.fail(HTTPError(503, "the handler did not answer in time"))


def report(server: Host, error: BaseException) -> None:
    """Fire ``exception`` for a handler's bug found while sending its answer."""
    event = exception(type(error), error, error.__traceback__, handler=None, fevent=None)
    server.fire(event, server.root.channel)
