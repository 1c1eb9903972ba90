"""The response a handler fills in, returns, or streams with ``write``/``flush``/``finish``.

A response is attached to an :class:`Output`: the exchange that sends it (see
:mod:`._exchange`), then, once that is over, :data:`FINISHED` or :data:`GONE`, which
hold no connection (so no reference cycle keeps a finished exchange alive).
"""

from __future__ import annotations

import json as _json
from collections.abc import Iterable
from http.cookies import SimpleCookie
from typing import Any, Protocol

from ..core import Future
from ._errors import reason_phrase
from ._headers import Headers

__all__ = ["FINISHED", "GONE", "Output", "Response"]

_new_headers = object.__new__


class Output(Protocol):
    """What a :class:`Response` needs of the exchange that sends it."""

    @property
    def head_sent(self) -> bool:
        """The head is out (or queued behind earlier pipelined responses)."""
        ...

    @property
    def finished(self) -> bool:
        """The whole response has been handed to the connection."""
        ...

    def write_body(self, data: bytes) -> None:
        """Send body bytes (the head first, if not yet sent)."""
        ...

    def finish(self) -> None:
        """End the response (the head first, if not yet sent)."""
        ...

    def room(self) -> Future:
        """A future done when the response may write without growing the buffer."""
        ...


class Response:
    """Status, header fields, cookies and body of one answer.

    ``body`` may be ``str`` (UTF-8, ``text/html`` unless a type is set), ``bytes``, a
    ``dict`` or ``list`` (JSON), an iterable of ``bytes``/``str`` or a binary file (both
    streamed, each chunk pulled only when the connection has room), or ``None``.

    Streaming by hand: ``write(data)`` sends the head at once (chunked unless a
    Content-Length was set) and then data; ``await flush()`` waits until the connection
    has room; ``finish()`` ends the body. The server finishes the response when the
    handler is done, unless ``streaming`` is set (then ``finish()`` is up to you).

    Response filters (``BaseServer.response_filters``, docs/web.md *Response filters*)
    see the response once, before its head is made: when the handler is done, or at its
    first ``write``. A filter that recodes what is written by hand sets ``encoder``.
    """

    #: The server's response filters still to run on this response (None: none, or run).
    filters: list[Any] | None = None
    #: Recodes what ``write`` sends (``encode(data)``; ``finish()`` gives the tail), set
    #: by a filter such as :class:`~netcomp.web.Gzip`; None: bytes go as they are.
    encoder: Any = None

    def __init__(
        self,
        body: Any = None,
        status: int = 200,
        headers: Iterable[tuple[str, str]] | dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        self.status = status
        if headers:
            self.headers = Headers(headers)
        else:  # Headers._checked_empty(), without the call
            self.headers = empty = _new_headers(Headers)
            empty.checked = True
            empty._items = []
        if content_type is not None:
            self.headers["Content-Type"] = content_type
        self._body: Any = body
        self.touched = body is not None

    # Class-level defaults: a new response stores none of them.
    _reason: str | None = None
    _cookies: SimpleCookie | None = None
    #: Keep the response open after the handler returns (see the class docs).
    streaming = False
    _exchange: Output | None = None  # what sends it, once it is attached
    #: Close the connection after this response.
    close = False

    @property
    def reason(self) -> str:
        """The reason phrase (the standard one unless set)."""
        return self._reason if self._reason is not None else reason_phrase(self.status)

    @reason.setter
    def reason(self, text: str) -> None:
        if "\r" in text or "\n" in text:
            raise ValueError(f"reason phrase with CR or LF: {text!r}")
        self._reason = text

    @property
    def cookies(self) -> SimpleCookie:
        """Cookies to set (``Set-Cookie``); see also :meth:`set_cookie`."""
        if self._cookies is None:
            self._cookies = SimpleCookie()
        return self._cookies

    @property
    def cookie(self) -> SimpleCookie:
        """The cookies to set (circuits' name for :attr:`cookies`)."""
        return self.cookies

    @property
    def request(self) -> Any:
        """The request this response answers, while it is being answered (else None)."""
        return getattr(self._exchange, "request", None)

    @property
    def body(self) -> Any:
        """What will be sent (see the class docs for the types)."""
        return self._body

    @body.setter
    def body(self, body: Any) -> None:
        # Once the connection is gone (GONE) a body is nothing to refuse: it is never sent
        # (the server closes it). A handler of a pipelined request whose client left before
        # the handler ran gets here: that is the client's doing, not the handler's bug.
        if self.started and self._exchange is not GONE:
            raise RuntimeError("the response is already being sent")
        self._body = body
        self.touched = True

    @property
    def started(self) -> bool:
        """The head has been sent (or queued behind earlier pipelined responses)."""
        return self._exchange is not None and self._exchange.head_sent

    @property
    def finished(self) -> bool:
        """The whole response has been handed to the connection."""
        return self._exchange is not None and self._exchange.finished

    def set_cookie(self, name: str, value: str, **attributes: Any) -> None:
        """Add a ``Set-Cookie`` (attributes: ``path``, ``max_age``, ``httponly``...)."""
        self.cookies[name] = value
        morsel = self.cookies[name]
        for key, attribute in attributes.items():
            morsel[key.replace("_", "-")] = attribute
        self.touched = True

    def json(self, data: Any, status: int | None = None) -> Response:
        """Set a JSON body (and type); returns the response, to ``return`` it."""
        self.headers["Content-Type"] = "application/json"
        self.body = _json.dumps(data, separators=(",", ":")).encode()
        if status is not None:
            self.status = status
        return self

    # ---------------------------------------------------------- streaming
    def _bound(self) -> Output:
        if self._exchange is None:
            raise RuntimeError("this response is not attached to a request")
        return self._exchange

    def write(self, data: bytes | str) -> None:
        """Send ``data`` now (the head first, if not yet sent).

        Raises :class:`ConnectionError` once the client has gone away, so a streaming
        handler learns to stop; ``RuntimeError`` after :meth:`finish`.
        """
        payload = data.encode("utf-8") if isinstance(data, str) else data
        self.touched = True
        output = self._bound()
        if self.filters is not None and not output.head_sent:
            self.run_filters(by_hand=True)
        if self.encoder is not None:
            payload = self.encoder.encode(payload)
            if not payload:
                return
        output.write_body(payload)

    def run_filters(self, by_hand: bool) -> None:
        """Run the response filters not yet run (once), before the head is made:
        ``run(response, by_hand)``; ``by_hand``: the body will come through ``write``.
        What a filter returns is ignored here (it cannot replace this response)."""
        filters, self.filters = self.filters, None
        for run in filters or ():
            run(self, by_hand)

    def flush(self) -> Future:
        """A future done once the connection's output is below its high water mark."""
        return self._bound().room()

    def finish(self) -> None:
        """End the body (the head first, if not yet sent). Idempotent."""
        self.touched = True
        output = self._bound()
        if not output.head_sent:
            if self.filters is not None:
                self.run_filters(by_hand=False)
        elif self.encoder is not None:
            encoder, self.encoder = self.encoder, None
            tail = encoder.finish()
            if tail and not output.finished:
                output.write_body(tail)
        output.finish()

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


class _Over:
    """What a response is attached to once its exchange is over: it answers as a
    finished exchange does and holds no connection (no cycle through the response)."""

    __slots__ = ("gone",)
    head_sent = True
    finished = True

    def __init__(self, gone: bool) -> None:
        self.gone = gone

    def write_body(self, data: bytes) -> None:
        """Refuse: the response is over."""
        if self.gone:
            raise ConnectionError("the client went away (the connection is closed)")
        raise RuntimeError("the response is finished")

    def finish(self) -> None:
        """Nothing to do: the response is over."""

    def room(self) -> Future:
        """Done at once: nothing will be sent."""
        future = Future()
        future.set_result(None)
        return future


#: The output of a response that was sent completely.
FINISHED: Output = _Over(False)
#: The output of a response whose connection closed first (writes raise ConnectionError).
GONE: Output = _Over(True)
