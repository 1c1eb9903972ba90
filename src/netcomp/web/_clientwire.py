"""The HTTP client's wire: request bytes out, a response parsed by llhttp (httptools).

Rules:
* URLs are absolute ``http`` or ``https`` ones (``ValueError`` otherwise). A method must
  be a token; a target, a header name or value with CR, LF, NUL (or a space in the
  target) is refused before anything is sent.
* A response is complete at its end of message (Content-Length, chunked) or, when it
  has neither, at the connection's end. 1xx responses are skipped. HEAD, 204 and 304
  responses have no body whatever their fields say.
* Anything llhttp refuses, a head over ``max_head`` bytes or ``max_fields`` fields, a
  body over ``max_body``, bytes after the response, or a close before its end raise
  :class:`MalformedResponse`, saying what was wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httptools

from ..core import NetcompError
from ._headers import Headers, check_field

__all__ = ["ClientResponse", "MalformedResponse", "ResponseParser", "encode_request", "parse_url"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")


class MalformedResponse(NetcompError, ValueError):
    """The server's answer is not a valid HTTP/1.1 response (or breaks a limit)."""


def parse_url(url: str) -> tuple[str, int, str, bool]:
    """circuits' ``parse_url``: ``(host, port, path with query, secure)``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"an http:// or https:// URL is needed, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"the URL must be absolute (with a host), got {url!r}")
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.hostname, port, path, secure


def encode_request(
    method: str,
    host: str,
    port: int,
    secure: bool,
    target: str,
    body: bytes | str | None,
    headers: Mapping[str, Any] | Iterable[tuple[str, Any]] | None,
) -> bytes:
    """The bytes of one request (Host, Content-Length and User-Agent added as needed)."""
    if not _TOKEN.match(method):
        raise ValueError(f"invalid HTTP method {method!r}")
    if _BAD_TARGET.search(target):
        raise ValueError(f"invalid request target {target!r}")
    fields = Headers(headers.items() if isinstance(headers, Mapping) else headers or ())
    if "host" not in fields:
        name = f"[{host}]" if ":" in host else host
        default = 443 if secure else 80
        fields["Host"] = name if port == default else f"{name}:{port}"
    if isinstance(body, str):
        body = body.encode("utf-8")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        fields["Content-Length"] = str(len(body or b""))
    fields.setdefault("User-Agent", "netcomp")
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    for name, value in fields.items():
        check_field(name, value)
        lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1") + (body or b"")


class ClientResponse:
    """A response the client received: ``status``, ``reason``, ``version``, ``headers``
    (case-insensitive), ``body`` (bytes); ``read()`` gives the body (circuits' API)."""

    def __init__(self, method: str, url: str) -> None:
        self.method = method
        self.url = url
        self.status = 0
        self.reason = ""
        self.version = "1.1"
        self.headers = Headers(checked=False)
        self.body = b""

    def read(self) -> bytes:
        """The body."""
        return self.body

    @property
    def text(self) -> str:
        """The body decoded (the Content-Type's charset, else UTF-8)."""
        kind = self.headers.get("content-type", "")
        charset = "utf-8"
        for param in kind.split(";")[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset" and value.strip():
                charset = value.strip().strip('"')
        return self.body.decode(charset, "replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<ClientResponse {self.status} {self.reason} {self.method} {self.url}>"


class _Stop(Exception):
    """Raised in a parser callback to stop parsing (the error is kept apart)."""


class ResponseParser:
    """Parses the response to one request: ``feed(data)`` until it returns the response;
    ``eof()`` when the connection ends (see the module rules)."""

    def __init__(
        self,
        method: str,
        url: str,
        max_head: int = 64 * 1024,
        max_fields: int = 100,
        max_body: int = 64 * 1024 * 1024,
    ) -> None:
        self.response = ClientResponse(method, url)
        self.max_head, self.max_fields, self.max_body = max_head, max_fields, max_body
        self.head_only = method == "HEAD"
        self._parser = httptools.HttpResponseParser(self)
        self._head = b""  # HEAD: the head's bytes, until its end is seen
        self._seen = 0  # head bytes so far
        self._in_head = True
        self._parts: list[bytes] = []
        self._size = 0
        self._framed = False  # Content-Length or chunked: the end is in the message
        self.done = False
        self.started = False  # a byte of the response arrived
        self.keep_alive = False
        self._error: MalformedResponse | None = None

    # ------------------------------------------------------------ feeding
    def feed(self, data: bytes) -> ClientResponse | None:
        """Parse ``data``; the response once complete, else None."""
        if not data:
            return None
        self.started = True
        if self.done:
            raise MalformedResponse("the server sent data after the response")
        if self.head_only:
            return self._feed_head_only(data)
        if self._in_head:
            self._seen += len(data)
        self._execute(data)
        if self._in_head and self._seen > self.max_head:
            raise MalformedResponse(f"the response head is over {self.max_head} bytes")
        return self.response if self.done else None

    def _feed_head_only(self, data: bytes) -> ClientResponse | None:
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        while end >= 0 and self._head[9:10] == b"1":  # skip 1xx heads
            self._head = self._head[end + 4 :]
            end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > self.max_head:
                raise MalformedResponse(f"the response head is over {self.max_head} bytes")
            return None
        if len(self._head) > end + 4:
            raise MalformedResponse("the server sent data after the response")
        self._execute(self._head)
        self.done = True
        return self.response

    def _execute(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except _Stop:
            pass
        except httptools.HttpParserError as error:
            if self._error is None:
                raise MalformedResponse(f"malformed response: {error}") from None
        if self._error is not None:
            raise self._error

    def eof(self) -> ClientResponse:
        """The connection ended: the response if this completes it, else raise."""
        if self.done:
            return self.response
        if not self._in_head and not self._framed and not self.head_only:
            self._finish()
            self.keep_alive = False
            return self.response
        where = "head" if self._in_head else "body"
        raise MalformedResponse(f"the connection closed in the middle of the response {where}")

    def _fail(self, reason: str) -> None:
        self._error = MalformedResponse(reason)
        raise _Stop

    # ----------------------------------------------------- llhttp callbacks
    def on_message_begin(self) -> None:
        if self.done:
            self._fail("the server sent data after the response")

    def on_status(self, status: bytes) -> None:
        self.response.reason += status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.response.headers) >= self.max_fields:
            self._fail(f"the response has more than {self.max_fields} header fields")
        self.response.headers._items.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        parser = self._parser
        status = parser.get_status_code()
        if 100 <= status < 200 and status != 101:  # informational: the real one follows
            self.response.reason = ""
            self.response.headers = Headers(checked=False)
            return
        self.response.status = status
        self.response.version = parser.get_http_version()
        self._in_head = False
        headers = self.response.headers
        self._framed = (
            "content-length" in headers
            or "chunked" in headers.get("transfer-encoding", "").lower()
            or status in (204, 304)
        )
        self.keep_alive = parser.should_keep_alive()

    def on_body(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self.max_body:
            self._fail(f"the response body is over {self.max_body} bytes")
        self._parts.append(data)

    def on_message_complete(self) -> None:
        if self._in_head:
            return  # the end of a 1xx response
        self._finish()

    def _finish(self) -> None:
        self.response.body = b"".join(self._parts)
        self._parts = []
        self.done = True
