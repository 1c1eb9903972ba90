"""The events the web server fires."""

from __future__ import annotations

from ..core import Event

__all__ = ["request", "response"]


class request(Event):
    """``request(request, response)``: an HTTP request to answer (fired on the server's
    channel). The handlers' result becomes the response. While the server's Dispatcher is
    the only one who could see it (no other handler, catch-all, waiter, observer), the
    server asks the Dispatcher directly and fires none."""


class response(Event):
    """``response(response)``: circuits.web's event before a response goes out, fired on
    the server's channel only while a handler takes it by name there (see docs/web.md,
    *Response filters*). Handlers may change the response, or put another one in
    ``event[0]``; it is not fired for responses streamed by hand."""
