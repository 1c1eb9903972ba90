"""Response filters: the one extension point between a handler's answer and its head.

Rules (docs/web.md, *Response filters*):
* A server's ``response_filters`` (empty by default: nothing is done per request) are
  copied onto each response as it is dispatched. They run once per response, in order,
  before its head is made: when its handlers are done (``by_hand`` false: the body is
  final), or at its first ``Response.write`` (``by_hand`` true: the body will come
  through ``write``; a filter that recodes it sets ``response.encoder``).
* A filter is ``run(response, by_hand)``. It changes the response in place and returns
  None, or returns another :class:`Response` to send instead, or an awaitable (a
  ``Value`` or a ``Future``) whose result is one of those: the response waits for it.
  Replacing and waiting apply only when the handlers are done, never to a response
  streamed by hand (its head is out by then).
* A filter that raises, or whose awaitable fails, gives 500 (logged like a handler's
  error). Error responses (an :class:`HTTPError`, a 404 for no answer) are not filtered.
* A response streamed by hand with an ``encoder`` gets the encoder's tail written before
  the server ends it.
* :class:`ResponseEvent` is the filter that fires circuits.web's ``response(response)``
  event; a server adds it while a handler takes ``response`` by name on its channel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core import Event, Future, Value
from ._events import response as response_event
from ._exchange import Exchange
from ._response import Response

__all__ = ["ResponseEvent", "ResponseFilter", "filter_response"]

#: ``run(response, by_hand) -> None | Response | Value | Future``.
ResponseFilter = Callable[[Response, bool], Any]


def filter_response(
    exchange: Exchange,
    result: Any,
    send: Callable[[Any], None],
    fail: Callable[[BaseException], None],
) -> None:
    """Run what is left of ``exchange``'s filters on the handlers' ``result``, then
    ``send`` the answer (or ``fail`` with the error a filter raised)."""
    response = exchange.response
    filters, response.filters = response.filters, None
    if exchange.head_sent:  # streamed by hand: the filters ran at the first write
        encoder, response.encoder = response.encoder, None
        if encoder is not None:
            tail = encoder.finish()
            if tail and not exchange.finished:
                exchange.write_body(tail)
        send(result)
        return
    target = result if isinstance(result, Response) else response
    if target is response and result is not None and result is not response:
        response.body = result
    if not filters or not target.touched:
        send(target if target.touched else result)
        return
    if target._exchange is None:
        target._exchange = exchange  # so that filters see ``response.request``
    _run(exchange, filters, 0, target, send, fail)


def _run(
    exchange: Exchange,
    filters: list[ResponseFilter],
    index: int,
    target: Response,
    send: Callable[[Any], None],
    fail: Callable[[BaseException], None],
) -> None:
    while index < len(filters):
        run = filters[index]
        index += 1
        try:
            outcome = run(target, False)
        except Exception as error:
            fail(error)
            return
        if isinstance(outcome, (Value, Future)):
            _wait(outcome, exchange, filters, index, target, send, fail)
            return
        if isinstance(outcome, Response):
            target = _adopt(exchange, outcome)
    send(target)


def _wait(
    outcome: Value | Future,
    exchange: Exchange,
    filters: list[ResponseFilter],
    index: int,
    target: Response,
    send: Callable[[Any], None],
    fail: Callable[[BaseException], None],
) -> None:
    def resume(done: Any) -> None:
        _resumed(exchange, filters, index, target, done, send, fail)

    outcome.add_done_callback(resume)


def _resumed(
    exchange: Exchange,
    filters: list[ResponseFilter],
    index: int,
    target: Response,
    done: Any,
    send: Callable[[Any], None],
    fail: Callable[[BaseException], None],
) -> None:
    error = done.exception if isinstance(done, Value) else done.exception()
    if error is not None:
        fail(error)
        return
    outcome = done.value if isinstance(done, Value) else done.result()
    if isinstance(outcome, Response):
        target = _adopt(exchange, outcome)
    _run(exchange, filters, index, target, send, fail)


def _adopt(exchange: Exchange, response: Response) -> Response:
    if response._exchange is None:
        response._exchange = exchange
    return response


class ResponseEvent:
    """The filter that fires ``response(response)`` (circuits.web's event) on a server's
    channel and sends what its handlers leave in ``event[0]`` (they may change the
    response or put another one there). Not fired for responses streamed by hand."""

    def __init__(self, fire: Callable[[Event], Value]) -> None:
        """``fire(event)``: fire on the server's channel (``server.fire`` bound to it)."""
        self.fire = fire

    def __call__(self, response: Response, by_hand: bool) -> Future | None:
        """Fire the event; the returned future gives the response its handlers left."""
        if by_hand:
            return None
        event = response_event(response)
        answer = Future()

        def done(value: Value) -> None:
            if value.errors and value.exception is not None:
                value.observed = True  # reported once, as this request's 500
                answer.set_exception(value.exception)
            else:
                answer.set_result(event.args[0])

        self.fire(event).add_done_callback(done)
        return answer
