"""The events the web server fires."""

from __future__ import annotations

from ..core import Event

__all__ = ["request"]


class request(Event):
    """``request(request, response)``: an HTTP request to answer (fired on the server's
    channel). The handlers' result becomes the response."""
