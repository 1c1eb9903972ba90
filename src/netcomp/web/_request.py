"""The request a handler sees: line, fields, body, and what is parsed from them."""

from __future__ import annotations

import json as _json
from collections import deque
from collections.abc import AsyncIterator
from email.parser import BytesParser
from email.policy import HTTP
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from ..core import Future
from ._errors import BadRequest
from ._headers import Headers

__all__ = ["BodyStream", "Request", "RequestBody", "UploadedFile"]

_PATH_SAFE = "/:@!$&'()*+,;=-._~"  # RFC 3986 pchar and "/": kept as they are


def _fold(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``[(k, v), ...]`` to ``{k: v}``, a list where a name repeats (circuits' kwargs)."""
    folded: dict[str, Any] = {}
    for key, value in pairs:
        if key in folded:
            current = folded[key]
            if isinstance(current, list):
                current.append(value)
            else:
                folded[key] = [current, value]
        else:
            folded[key] = value
    return folded


class UploadedFile:
    """A file field of a ``multipart/form-data`` body."""

    __slots__ = ("content_type", "data", "filename", "name")

    def __init__(self, name: str, filename: str, content_type: str, data: bytes) -> None:
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.data = data

    @property
    def value(self) -> bytes:
        """The file's content (circuits' and ``cgi.FieldStorage``'s name for ``data``)."""
        return self.data

    def __repr__(self) -> str:
        return f"<UploadedFile {self.name}={self.filename!r} {len(self.data)} bytes>"


class RequestBody(bytes):
    """A buffered request body: ``bytes`` that can also be read like a file, as
    circuits.web's ``request.body.read()`` does (``read``, ``readline``, ``seek``,
    ``tell``; the position is this object's own)."""

    def _at(self) -> int:
        return self.__dict__.get("position", 0)  # type: ignore[no-any-return]

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when negative) from the position."""
        start = self._at()
        end = len(self) if size is None or size < 0 else min(len(self), start + size)
        self.__dict__["position"] = end
        return bytes(self[start:end])

    def readline(self, size: int = -1) -> bytes:
        """One line (up to and including ``b"\\n"``), at most ``size`` bytes."""
        start = self._at()
        newline = self.find(b"\n", start)
        end = len(self) if newline < 0 else newline + 1
        if size is not None and size >= 0:
            end = min(end, start + size)
        self.__dict__["position"] = end
        return bytes(self[start:end])

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move the position (``whence``: 0 start, 1 current, 2 end), within the body;
        the new position."""
        base = (0, self._at(), len(self))[whence]
        self.__dict__["position"] = max(0, min(len(self), base + offset))
        return self.__dict__["position"]  # type: ignore[no-any-return]

    def tell(self) -> int:
        """The position."""
        return self._at()


_NO_BODY = RequestBody(b"")


class BodyStream:
    """A body larger than ``HTTPLimits.max_buffered_body``, read as it arrives.

    ``async for chunk in request.stream`` or ``await request.stream.read()`` in an
    ``async def`` handler. Reading is paced by the network: the connection is read only
    while the handler keeps up. A response whose head goes out before the body was read
    to its end says ``Connection: close``: the rest is never read, the connection ends.
    """

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self.complete = False
        self.error: BaseException | None = None
        self._waiter: Future | None = None
        self.on_consumed: Any = None  # the server resumes reading through this

    @property
    def buffered(self) -> int:
        """Bytes received and not yet taken by the handler."""
        return self._size

    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        self._wake()

    def _end(self, error: BaseException | None = None) -> None:
        self.complete = True
        self.error = error
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _take(self) -> bytes:
        data = self._chunks.popleft()
        self._size -= len(data)
        if self.on_consumed is not None:
            self.on_consumed()
        return data

    async def read_chunk(self) -> bytes:
        """The next bytes of the body; ``b""`` once it is complete."""
        while not self._chunks:
            if self.complete:
                if self.error is not None:
                    raise self.error
                return b""
            if self._waiter is None:
                self._waiter = Future()
            await self._waiter
        return self._take()

    async def read(self) -> bytes:
        """The rest of the body, whole (bounded by ``HTTPLimits.max_body_size``)."""
        parts: list[bytes] = []
        while True:
            chunk = await self.read_chunk()
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self.read_chunk()
            if not chunk:
                return
            yield chunk


class Request:
    """One HTTP request: ``method``, ``path``, ``query``, ``headers``, ``body``...

    ``body`` is the whole body as bytes when it was at most
    ``HTTPLimits.max_buffered_body``; otherwise it is ``b""`` and ``stream`` delivers it.
    """

    def __init__(
        self,
        method: str,
        target: str,
        version: str,
        fields: list[tuple[str, str]],
        remote: Any = None,
        scheme: str = "http",
        body: bytes = b"",
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self._fields = fields
        self.remote = remote
        self.scheme = scheme
        self._body = body
        path, _, query = target.partition("?")
        if path[:1] != "/" and "://" in path:
            # absolute-form (RFC 9112 section 3.2.2, what proxies are sent): the authority
            # is the host; the path is what follows it.
            after = path.index("://") + 3
            slash = path.find("/", after)
            path = path[slash:] if slash >= 0 else "/"
        self.raw_path = path
        self.query_string = query

    # Parsed on first use (class-level defaults: a new request stores none of them).
    _path: str | None = None
    _headers: Headers | None = None
    _query: dict[str, Any] | None = None
    _form: dict[str, Any] | None = None
    _cookies: dict[str, str] | None = None
    _state: dict[str, Any] | None = None
    #: A body too large to buffer, read as it arrives (else None).
    stream: BodyStream | None = None

    #: The session of this request, set by a :class:`~netcomp.web.Sessions` component.
    session: Any = None
    #: Where the application is mounted (a WSGI ``SCRIPT_NAME``; ``""`` on a server).
    script_name: str = ""
    #: The user name an authentication tool accepted (``check_auth``), else None.
    login: str | None = None
    #: The proxy's address when ``remote``, ``scheme`` or ``host`` come from its trusted
    #: proxy headers (the server's ``proxy_headers=True``), else None.
    forwarded_by: Any = None
    #: The host a trusted proxy reported (``X-Forwarded-Host``, ``Forwarded: host=``).
    forwarded_host: str | None = None
    #: Called as ``hook(peer, request, status, size)`` once this request's response is out
    #: (a :class:`~netcomp.web.Logger` adds itself); None: nobody asked.
    done_hooks: list[Any] | None = None

    @property
    def state(self) -> dict[str, Any]:
        """Free for handlers to share per-request data (a dict, made on first use)."""
        if self._state is None:
            self._state = {}
        return self._state

    @state.setter
    def state(self, state: dict[str, Any]) -> None:
        self._state = state

    @property
    def body(self) -> bytes:
        """The whole body (``b""`` when it is streamed): a :class:`RequestBody`, bytes
        that can also be read like a file (``request.body.read()``)."""
        body = self._body
        if body.__class__ is RequestBody:
            return body
        if not body:
            return _NO_BODY
        self._body = body = RequestBody(body)
        return body

    @body.setter
    def body(self, body: bytes) -> None:
        self._body = body

    # The common case reads none of these: each is parsed on first use.
    @property
    def path(self) -> str:
        """The percent-decoded path (``/a%20b`` -> ``/a b``), UTF-8. A handler may set it
        (a prefix, a rewrite) before the Dispatcher routes the request."""
        if self._path is None:
            self._path = unquote(self.raw_path, errors="surrogateescape")
        return self._path

    @path.setter
    def path(self, path: str) -> None:
        self._path = path
        self.raw_path = quote(path, safe=_PATH_SAFE, errors="surrogateescape")

    @property
    def qs(self) -> str:
        """The query string (circuits' name for ``query_string``)."""
        return self.query_string

    @property
    def protocol(self) -> tuple[int, int]:
        """The HTTP version as a tuple, ``(1, 1)`` (circuits' ``request.protocol``)."""
        major, _, minor = self.version.partition(".")
        return int(major), int(minor or 0)

    @property
    def headers(self) -> Headers:
        """The header fields (case-insensitive, multi-valued)."""
        if self._headers is None:
            self._headers = Headers._trusted(self._fields)
        return self._headers

    @property
    def host(self) -> str:
        """The Host field (empty for an HTTP/1.0 request without one), or the host a
        trusted proxy reported (``forwarded_host``)."""
        return self.forwarded_host or self.headers.get("host", "")

    @property
    def query(self) -> dict[str, Any]:
        """Query parameters: ``{name: value}``, a list of values when a name repeats."""
        if self._query is None:
            self._query = _fold(parse_qsl(self.query_string, keep_blank_values=True))
        return self._query

    @property
    def content_type(self) -> str:
        """The media type of the body, lower case, without parameters."""
        return self.headers.get("content-type", "").partition(";")[0].strip().lower()

    def json(self) -> Any:
        """The body parsed as JSON; :class:`BadRequest` (400) if it is not JSON."""
        try:
            return _json.loads(self._body)
        except ValueError as err:
            raise BadRequest(description=f"the body is not valid JSON: {err}") from err

    @property
    def form(self) -> dict[str, Any]:
        """Form fields of an urlencoded or multipart body (files as :class:`UploadedFile`)."""
        if self._form is None:
            self._form = self._parse_form()
        return self._form

    def _parse_form(self) -> dict[str, Any]:
        kind = self.content_type
        if kind == "application/x-www-form-urlencoded":
            text = self._body.decode("utf-8", "replace")
            return _fold(parse_qsl(text, keep_blank_values=True))
        if kind == "multipart/form-data":
            return self._parse_multipart()
        return {}

    def _parse_multipart(self) -> dict[str, Any]:
        head = f"Content-Type: {self.headers.get('content-type', '')}\r\n\r\n".encode("latin-1")
        message = BytesParser(policy=HTTP).parsebytes(head + self._body)
        if not message.is_multipart():
            raise BadRequest(description="malformed multipart/form-data body")
        pairs: list[tuple[str, Any]] = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            filename = part.get_filename()
            if filename is not None:
                pairs.append((name, UploadedFile(name, filename, part.get_content_type(), data)))
            else:
                charset = part.get_content_charset() or "utf-8"
                pairs.append((name, data.decode(charset, "replace")))
        return _fold(pairs)

    @property
    def cookies(self) -> dict[str, str]:
        """Cookies sent by the client (malformed ones are skipped)."""
        if self._cookies is None:
            jar: dict[str, str] = {}
            for field in self.headers.get_all("cookie"):
                cookie: SimpleCookie = SimpleCookie()
                try:
                    cookie.load(field)
                except CookieError:
                    continue
                jar.update({name: morsel.value for name, morsel in cookie.items()})
            self._cookies = jar
        return self._cookies

    @property
    def cookie(self) -> SimpleCookie:
        """The cookies sent, as morsels (circuits' ``request.cookie``): a copy to read;
        set cookies on the response (``response.set_cookie``)."""
        jar: SimpleCookie = SimpleCookie()
        for name, value in self.cookies.items():
            jar[name] = value
        return jar

    @property
    def keep_alive(self) -> bool:
        """Whether the client asked to keep the connection open after this request."""
        connection = self.headers.get("connection", "").lower()
        if self.version == "1.0":
            return "keep-alive" in connection
        return "close" not in connection

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target} HTTP/{self.version}>"
