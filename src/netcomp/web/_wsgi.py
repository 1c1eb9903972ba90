"""``WSGIGateway``: a WSGI (PEP 3333) application mounted under a path, run on threads.

Rules:
* A request whose path is the mount path or under it (``/app``, ``/app/...``, never
  ``/apple``) belongs to the gateway: it stops the ``request`` event, so neither the
  Dispatcher nor a later handler answers it too. ``SCRIPT_NAME`` is the mount path,
  ``PATH_INFO`` the rest, both as PEP 3333 "bytes as latin-1" strings.
* The application runs on a :class:`~netcomp.core.Worker` thread, from the call to the
  last chunk and ``close()``: a slow application holds a pool thread, never the loop.
* Bodies stream (see :mod:`._wsgistream`): each chunk the application yields (or gives
  ``write()``) goes to the client as it comes, the head with the first one, chunked
  unless the application set a Content-Length; the worker waits while the connection
  is above its high water mark, so a slow reader costs 32 KiB plus 64 KiB in transit
  (and holds its worker thread). A list or tuple returned (with no ``write()``) is sent
  whole with a Content-Length. ``wsgi.file_wrapper`` files go to the connection as
  files (``os.sendfile`` on plain TCP) and free the worker at once.
* ``start_response`` (PEP 3333 "The start_response() Callable"): once only, unless with
  ``exc_info``; with ``exc_info`` after the first non-empty body bytes were produced it
  re-raises that exception. Status and header fields are checked when given (a CR/LF,
  a non-latin-1 value or a hop-by-hop field raise in the application).
* An application's exception gives 500 and fires ``exception`` once (the gateway's
  handler is its origin); so does a broken contract (no ``start_response``, a ``str``
  chunk, fewer bytes than its own Content-Length). Once a streamed body has begun, the
  status is sent already: the connection is cut instead, so the client sees a
  truncated body, never a complete-looking one.
* A client that leaves while its body streams makes the next chunk's hand-over raise
  inside the worker: the application's iterable is closed, nothing is reported.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any
from urllib.parse import unquote_to_bytes

from ..core import BaseComponent, Event, Loop, Worker, handler, task
from ._headers import Headers, check_field
from ._request import Request
from ._response import Response
from ._server import BaseServer
from ._wsgistream import FileWrapper, Gone, Pipe

__all__ = ["WSGIGateway"]

errors_log = logging.getLogger("netcomp.web.wsgi")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], None]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_STATUS = re.compile(r"([1-9][0-9][0-9])(?: ([^\r\n]*))?\Z")
# RFC 9110 section 7.6.1: connection-specific fields are the server's, not the app's.
_HOP_BY_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    )
)


class _ErrorStream:
    """``wsgi.errors``: text written by the application goes to the ``netcomp.web.wsgi``
    logger, one record per line."""

    def __init__(self) -> None:
        self._pending = ""

    def write(self, text: str) -> int:
        """Log each complete line of ``text`` (the rest waits for its newline or flush)."""
        if not isinstance(text, str):
            raise TypeError(f"wsgi.errors takes str, not {type(text).__name__}")
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            errors_log.error("%s", line)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        """Write each string of ``lines``."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Log what is left of an unfinished line."""
        if self._pending:
            errors_log.error("%s", self._pending)
            self._pending = ""


class _Outcome:
    """What one run of the application gave: a status line, fields and a body (or a file),
    a body already streamed, or an error."""

    __slots__ = ("body", "error", "file", "gone", "headers", "reason", "status", "streamed")

    def __init__(self) -> None:
        self.status = 500
        self.reason = ""
        self.headers: list[tuple[str, str]] = []
        self.body = b""
        self.file: FileWrapper | None = None  # returned by the app: sent as a file
        self.streamed = False  # the body went out as it came (head included)
        self.gone = False  # the client left while it was streamed
        self.error: BaseException | None = None


class _Call:
    """One application call on a worker thread: ``start_response``, ``write`` and the body.

    A list or tuple returned (and no ``write()``) is sent whole, with a Content-Length;
    anything else is streamed as it is produced, through a :class:`Pipe` (chunked unless
    the application gave a Content-Length; never more bytes than that).
    """

    def __init__(self, head_only: bool, loop: Loop, response: Response) -> None:
        self.head_only = head_only
        self.status_line: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.headers_sent = False  # PEP 3333: "sent" once body bytes exist
        self.chunks: list[bytes] = []
        self.pipe = Pipe(loop, response, self._start_head)
        self.declared: int | None = None  # the application's Content-Length, once streaming
        self.sent = 0  # body bytes streamed

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no reference cycle through the traceback
        elif self.status_line is not None:
            raise AssertionError("start_response was already called (without exc_info)")
        self.status_line = _check_status(status)
        self.headers = _check_headers(headers)
        return self.write

    def write(self, data: bytes) -> None:
        if self.status_line is None:
            raise AssertionError("write() before start_response()")
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        if data:
            self._stream(bytes(data))

    def run(self, app: WSGIApp, environ: dict[str, Any]) -> _Outcome:
        outcome = _Outcome()
        try:
            result: Any = app(environ, self.start_response)
            try:
                if isinstance(result, FileWrapper) and not self.headers_sent:
                    outcome.file, result = result, None  # closed by the connection
                elif isinstance(result, (list, tuple)) and not self.headers_sent:
                    self.chunks = [_body_bytes(chunk) for chunk in result]
                else:
                    self._iterate(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            if self.status_line is None:
                raise AssertionError("the application did not call start_response()")
            if self.headers_sent:
                self._check_streamed()
                outcome.streamed = True
            elif outcome.file is not None:  # its length is the file's (or the app's)
                outcome.status, outcome.reason = _status_of(self.status_line)
                outcome.headers = self.headers
            else:
                self._finish(outcome)
        except Gone:
            outcome.gone = True
        except Exception as error:
            outcome.error = error
        finally:
            environ["wsgi.errors"].flush()
        return outcome

    def _iterate(self, result: Iterable[bytes]) -> None:
        for chunk in result:
            data = _body_bytes(chunk)
            if data:
                if self.status_line is None:
                    raise AssertionError("body bytes before start_response()")
                self._stream(data)
                if self.head_only:
                    return  # the head is out: HEAD needs no more of the body

    def _stream(self, data: bytes) -> None:
        """Send ``data`` now (worker thread; the head first): never past the app's
        Content-Length."""
        if not self.headers_sent:
            self.headers_sent = True
            self.declared = self._declared_length()
        if self.declared is not None:
            data = data[: max(0, self.declared - self.sent)]
            if not data and self.sent:
                return
        self.sent += len(data)
        self.pipe.put(data)

    def _start_head(self) -> None:
        """The first bytes go out: the response takes the status and fields (loop thread)."""
        status, reason = _status_of(self.status_line)
        response = self.pipe.response
        response.status = status
        if reason:
            response.reason = reason
        response.headers = Headers(self.headers)

    def _declared_length(self) -> int | None:
        assert self.status_line is not None
        declared = [v for n, v in self.headers if n.lower() == "content-length"]
        if not declared or self.head_only or _status_of(self.status_line)[0] in (204, 304):
            return None
        try:
            return int(declared[0])
        except ValueError:
            raise ValueError(f"bad Content-Length from the application: {declared[0]!r}") from None

    def _check_streamed(self) -> None:
        if self.declared is not None and self.sent < self.declared:
            raise ValueError(
                f"the application sent {self.sent} bytes, its Content-Length says {self.declared}"
            )

    def _finish(self, outcome: _Outcome) -> None:
        assert self.status_line is not None
        outcome.status, outcome.reason = _status_of(self.status_line)
        body = b"".join(self.chunks)
        headers = self.headers
        declared = [v for n, v in headers if n.lower() == "content-length"]
        if declared and not self.head_only and outcome.status not in (204, 304):
            try:
                length = int(declared[0])
            except ValueError:
                raise ValueError(
                    f"bad Content-Length from the application: {declared[0]!r}"
                ) from None
            if len(body) < length:
                raise ValueError(
                    f"the application sent {len(body)} bytes, its Content-Length says {length}"
                )
            body = body[:length]  # never more than announced (PEP 3333)
        outcome.headers = headers
        outcome.body = body


def _body_bytes(chunk: Any) -> bytes:
    if not isinstance(chunk, (bytes, bytearray)):
        raise TypeError(f"a WSGI application must yield bytes, not {type(chunk).__name__}")
    return bytes(chunk)


def _status_of(status_line: str | None) -> tuple[int, str]:
    match = _STATUS.match(status_line or "")
    assert match is not None
    return int(match.group(1)), match.group(2) or ""


def _check_status(status: Any) -> str:
    if not isinstance(status, str):
        raise TypeError(f"status must be a str, not {type(status).__name__}")
    match = _STATUS.match(status)
    if match is None or int(match.group(1)) < 200:
        raise ValueError(f"invalid status {status!r} (want '200 OK': 3 digits >= 200, reason)")
    return status


def _check_headers(headers: Any) -> list[tuple[str, str]]:
    if not isinstance(headers, list):
        raise TypeError(f"response headers must be a list, not {type(headers).__name__}")
    checked: list[tuple[str, str]] = []
    for item in headers:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise TypeError(f"each header must be a (name, value) tuple, not {item!r}")
        name, value = item
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"header name and value must be str: {item!r}")
        check_field(name, value)
        value.encode("latin-1")  # UnicodeEncodeError: not a "native string" (PEP 3333)
        if name.lower() in _HOP_BY_HOP:
            raise ValueError(f"hop-by-hop header {name!r} is the server's to send")
        checked.append((name, value))
    return checked


def _latin1_path(raw_path: str) -> str:
    """The percent-decoded path as PEP 3333 wants it: its bytes, read as latin-1."""
    return unquote_to_bytes(raw_path.encode("latin-1")).decode("latin-1")


class WSGIGateway(BaseComponent):
    """Mounts the WSGI application ``app`` under ``path`` on the server's channel.

    The application runs on a pool of ``workers`` threads (the ``concurrent.futures``
    default when ``None``) owned by the gateway. Response bodies stream with
    backpressure: a worker producing for a slow reader waits for it (and holds its
    thread meanwhile); ``wsgi.file_wrapper`` files are sent by the connection.
    """

    channel: Any = "web"

    def __init__(
        self,
        app: WSGIApp,
        path: str = "/",
        workers: int | None = None,
        channel: Any = "web",
    ) -> None:
        """``path``: the mount point (``"/"`` or ``"/app"``; a trailing ``/`` is ignored)."""
        super().__init__(channel=channel)
        if not callable(app):
            raise TypeError(f"WSGIGateway needs a WSGI application, not {app!r}")
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        self.app = app
        self.path = "/" + path.strip("/") if path.strip("/") else "/"
        # SCRIPT_NAME: "" at the root, else the mount path (as latin-1 of its UTF-8).
        self.script_name = "" if self.path == "/" else self.path.encode().decode("latin-1")
        self._worker_channel = ("netcomp.web.wsgi", id(self))
        self.worker = Worker(workers=workers, channel=self._worker_channel).register(self)
        self._server: Any = None

    @handler("request", priority=1)
    def _on_request(self, event: Event, request: Request, response: Response) -> Any:
        if event.answered:
            return None  # answered by an earlier handler
        raw = request.raw_path
        if not raw.startswith("/"):
            return None
        path = _latin1_path(raw) if ("%" in raw or not raw.isascii()) else raw
        script = self.script_name
        if script and not (path == script or path.startswith(script + "/")):
            return None
        event.stop()  # this request is the application's, even while it runs
        return self._serve(request, response, path[len(script) :])

    async def _serve(self, request: Request, response: Response, path_info: str) -> Any:
        body = request.body
        if request.stream is not None:
            body = await request.stream.read()
        environ = self.environ(request, path_info, body)
        call = _Call(request.method == "HEAD", self.loop, response)
        outcome: _Outcome = await self.call(
            task(call.run, self.app, environ), self._worker_channel
        )
        if outcome.error is not None:
            raise outcome.error  # 500 (or a cut), and ``exception`` fired for this handler
        if outcome.streamed or outcome.gone:
            return None  # the body went out as it came: the server ends it
        answer = Response(
            outcome.file if outcome.file is not None else outcome.body,
            outcome.status,
            outcome.headers,
        )
        if outcome.reason:
            answer.reason = outcome.reason
        return answer

    def environ(self, request: Request, path_info: str, body: bytes) -> dict[str, Any]:
        """The PEP 3333 environ of ``request`` (``path_info`` as latin-1 of its bytes)."""
        server_name, server_port = self._server_address(request)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": self.script_name,
            "PATH_INFO": path_info,
            "QUERY_STRING": request.query_string,
            "SERVER_NAME": server_name,
            "SERVER_PORT": server_port,
            "SERVER_PROTOCOL": f"HTTP/{request.version}",
            "REQUEST_URI": request.target,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": request.scheme,
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": _ErrorStream(),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
        }
        remote = request.remote
        if isinstance(remote, tuple) and len(remote) >= 2:
            environ["REMOTE_ADDR"] = str(remote[0])
            environ["REMOTE_PORT"] = str(remote[1])
        fields: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            key = name.upper()
            if key == "CONTENT-TYPE":
                environ["CONTENT_TYPE"] = value
            elif key == "CONTENT-LENGTH":
                continue  # set from the body actually read (chunked bodies have none)
            elif "_" in key:
                continue  # "X_Foo" would pass for "X-Foo": dropped, as nginx does
            else:
                fields.setdefault("HTTP_" + key.replace("-", "_"), []).append(value)
        for key, values in fields.items():
            environ[key] = ("; " if key == "HTTP_COOKIE" else ", ").join(values)
        if body or "content-length" in request.headers:
            environ["CONTENT_LENGTH"] = str(len(body))
        return environ

    def _server_address(self, request: Request) -> tuple[str, str]:
        """SERVER_NAME and SERVER_PORT: from Host, else the listening address."""
        default = "443" if request.scheme == "https" else "80"
        host = request.host
        if host:
            if host.startswith("["):  # [v6]:port
                name, _, rest = host[1:].partition("]")
                return name, rest[1:] if rest.startswith(":") else default
            name, colon, port = host.rpartition(":")
            return (name, port) if colon and port.isdigit() else (host, default)
        server = self._find_server()
        if server is not None and isinstance(server.port, int):
            return str(server.host), str(server.port)
        return "localhost", default

    def _find_server(self) -> Any:
        if self._server is None:
            for node in self.root.walk():
                if isinstance(node, BaseServer) and node.channel == self.channel:
                    self._server = node
                    break
        return self._server

    def __repr__(self) -> str:
        return f"<WSGIGateway/{self.channel} {self.path} -> {self.app!r}>"
