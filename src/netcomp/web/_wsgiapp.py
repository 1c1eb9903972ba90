"""``Application``: a netcomp tree as a WSGI (PEP 3333) application, circuits.web's
``wsgi.Application``: ``application = Application() + Root()`` can be served by any
WSGI server (or mounted with a :class:`~netcomp.web.WSGIGateway`).

Rules:
* ``Application`` is the root of its tree and has a :class:`Dispatcher` on its channel.
  Each call builds a :class:`Request` from the environ (``path`` is ``PATH_INFO``,
  ``script_name`` is ``SCRIPT_NAME``), fires ``request(request, response)`` and answers
  with the handlers' value as the server would: str, bytes, JSON data, a
  :class:`Response`, an iterable, what was written with ``response.write``; an
  :class:`HTTPError` gives its status; ``None`` with nothing written gives 404; an
  exception 500, logged on ``netcomp.web`` with its traceback.
* When the tree's loop is not running, the calling thread runs it until the request is
  answered (one call at a time: a lock); when it runs (``application.start()``), the
  call is handed to it. Either way a call waits at most ``timeout`` seconds (then 503).
* The body is read from ``wsgi.input``, at most ``max_body`` bytes (413 beyond).
* Hop-by-hop fields are the WSGI server's: they are not passed to ``start_response``.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import quote

from ..core import BaseComponent, Future, Value
from ._bodies import FileChunks, close_source, plain_body
from ._dispatcher import Dispatcher
from ._errors import HTTPError, reason_phrase
from ._events import request as request_event
from ._request import Request
from ._response import Response

__all__ = ["Application"]

log = logging.getLogger("netcomp.web")
_HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade")
)
_CGI = {"CONTENT_TYPE": "Content-Type", "CONTENT_LENGTH": "Content-Length"}


class _Collected:
    """Where a response written by hand goes inside an Application (an ``Output``)."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.chunks: list[bytes] = []
        self.head_sent = False
        self.finished = False

    def write_body(self, data: bytes) -> None:
        if self.finished:
            raise RuntimeError("the response is finished")
        self.head_sent = True
        self.chunks.append(bytes(data))

    def finish(self) -> None:
        self.head_sent = self.finished = True

    def room(self) -> Future:
        future = Future()
        future.set_result(None)
        return future


def request_from(environ: dict[str, Any], max_body: int) -> Request:
    """The :class:`Request` a WSGI environ describes (413 past ``max_body`` bytes)."""
    fields = [(_CGI[key], str(value)) for key, value in environ.items() if key in _CGI and value]
    fields += [
        (key[5:].replace("_", "-").title(), str(value))
        for key, value in environ.items()
        if key.startswith("HTTP_")
    ]
    raw_path = environ.get("PATH_INFO", "") or "/"
    target = quote(raw_path.encode("latin-1"), safe="/:@!$&'()*+,;=-._~")
    if environ.get("QUERY_STRING"):
        target += "?" + environ["QUERY_STRING"]
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > max_body:
        raise HTTPError(413)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    version = str(environ.get("SERVER_PROTOCOL", "HTTP/1.1")).partition("/")[2] or "1.1"
    remote = (environ.get("REMOTE_ADDR", ""), int(environ.get("REMOTE_PORT") or 0))
    request = Request(
        environ["REQUEST_METHOD"], target, version, fields, remote,
        environ.get("wsgi.url_scheme", "http"), body,
    )  # fmt: skip
    request.script_name = environ.get("SCRIPT_NAME", "")
    request.wsgi_environ = environ  # type: ignore[attr-defined]
    return request


class Application(BaseComponent):
    """A WSGI application whose requests the components of this tree answer."""

    channel: Any = "web"

    def __init__(
        self,
        channel: Any = "web",
        *,
        timeout: float = 60.0,
        max_body: int = 16 * 1024 * 1024,
        expose_tracebacks: bool = False,
    ) -> None:
        """``timeout``: seconds a call may take; ``max_body``: the largest request body."""
        super().__init__(channel=channel)
        self.timeout = timeout
        self.max_body = max_body
        self.expose_tracebacks = expose_tracebacks
        self.dispatcher = Dispatcher(channel=channel).register(self)
        self._lock = threading.Lock()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """PEP 3333: answer ``environ``."""
        try:
            request = request_from(environ, self.max_body)
        except HTTPError as error:
            return self._error(error, start_response)
        output = _Collected(request)
        response = Response()
        response._exchange = output
        value = self._run(request, response)
        if value is None:
            return self._error(HTTPError(503, "the application did not answer in time"),
                               start_response)  # fmt: skip
        return self._answer(request, response, output, value, start_response)

    def _run(self, request: Request, response: Response) -> Value | None:
        event = request_event(request, response)
        if self.loop.running:
            done = threading.Event()
            box: list[Value] = []

            def fire() -> None:
                value = self.fire(event, self.channel)
                value.observed = True  # a handler's error is this call's 500, logged here
                box.append(value)
                value.add_done_callback(lambda _v: done.set())

            self.loop.call_soon_threadsafe(fire)
            return box[0] if done.wait(self.timeout) else None
        with self._lock:
            value = self.fire(event, self.channel)
            value.observed = True
            deadline = self.loop.time() + self.timeout
            while not value.result:
                left = deadline - self.loop.time()
                if left <= 0:
                    return None
                self.loop.tick(min(left, 1.0))
            return value

    def _answer(
        self,
        request: Request,
        response: Response,
        output: _Collected,
        value: Value,
        start_response: Callable[..., Any],
    ) -> Iterable[bytes]:
        result = value.exception if value.errors else value.value
        if isinstance(result, BaseException):
            if not isinstance(result, HTTPError):
                log.error("%s %s: 500: a handler raised: %r", request.method, request.target,
                          result, exc_info=result)  # fmt: skip
            return self._error(result, start_response)
        if isinstance(result, Response):
            response = result
        elif result is not None and not output.head_sent:
            response.body = result
        if output.head_sent:
            body: Any = list(output.chunks)
        elif response.touched:
            body = plain_body(response.body, response.headers)
        else:
            return self._error(HTTPError(404), start_response)
        start_response(f"{response.status} {response.reason}", _fields(response))
        if request.method == "HEAD":
            close_source(body)
            return [b""]
        if isinstance(body, bytes):
            return [body]
        return _encoded(FileChunks(body) if hasattr(body, "read") else body)

    def _error(self, error: BaseException, start_response: Callable[..., Any]) -> list[bytes]:
        if isinstance(error, HTTPError):
            status, headers, text = error.status, list(error.headers), error.description
        else:
            status, headers, text = 500, [], reason_phrase(500)
            if self.expose_tracebacks:
                text = "".join(traceback.format_exception(error))
        body = f"{status} {reason_phrase(status)}\n\n{text}\n".encode()
        headers += [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ]
        start_response(f"{status} {reason_phrase(status)}", headers)
        return [body]


def _fields(response: Response) -> list[tuple[str, str]]:
    fields = [(n, v) for n, v in response.headers.items() if n.lower() not in _HOP_BY_HOP]
    if response._cookies is not None:
        fields += [("Set-Cookie", m.OutputString()) for m in response._cookies.values()]
    return fields


def _encoded(body: Iterable[Any]) -> Iterator[bytes]:
    try:
        for chunk in body:
            yield chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)
    finally:
        close_source(body)
