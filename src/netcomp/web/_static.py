"""``Static``: files from a directory, with validators, ranges and an optional listing.

Rules:
* Only paths under ``prefix`` are considered; each segment after it is percent-decoded on
  its own and refused (400) when it could name something outside the docroot: ``.`` or
  ``..`` (also as ``%2e``), an encoded ``/`` (``%2f``), a ``\\``, a NUL or another control
  byte. Segments are joined one by one (never a string that could be absolute), and the
  real path (symlinks resolved) must stay inside the real docroot, else 404.
* Nothing there (or not a regular file/directory): return ``None``, so the next
  ``request`` handler (the Dispatcher, hence a controller or 404) answers.
* GET and HEAD only; another method on an existing path is 405 with ``Allow``.
* Validators (RFC 9110 section 8.8, 13): a strong ``ETag`` from size and mtime and
  ``Last-Modified``. ``If-None-Match`` (weak comparison) takes precedence over
  ``If-Modified-Since``; either gives 304 with no body.
* Ranges (RFC 9110 section 14): one ``bytes=`` range (``a-b``, ``a-``, ``-n``) gives 206
  with ``Content-Range``; an unsatisfiable one 416 with ``Content-Range: bytes */size``;
  several ranges, a malformed field, another unit, or an ``If-Range`` that does not match
  give the whole file (200), as the RFC allows. Ranges apply to GET only.
* A file body is a :class:`FileSlice` (:mod:`._bodies`): exactly ``length`` bytes from
  ``offset`` so the body always matches the Content-Length sent, even if the file changes
  meanwhile.
"""

from __future__ import annotations

import html
import mimetypes
import os
import re
import stat
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from ..core import BaseComponent, Event, handler
from ._bodies import FileSlice
from ._errors import BadRequest, Forbidden, MethodNotAllowed, NotFound, Redirect
from ._request import Request
from ._response import Response

__all__ = ["Static"]

_ALLOWED = ("GET", "HEAD")
# Types that are text without being text/*: they get a charset too.
_TEXTUAL = frozenset(
    (
        "application/javascript",
        "application/json",
        "application/xml",
        "application/xhtml+xml",
        "image/svg+xml",
    )
)
# A file that mimetypes calls "compressed" is served as the archive it is, never with
# Content-Encoding (a browser would unpack ``x.tar.gz`` behind the user's back).
_COMPRESSED = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
    "br": "application/x-brotli",
}


class Static(BaseComponent):
    """Serves files under ``docroot`` at the URLs under ``prefix`` on the server's channel.

    ``listing``: answer a directory without ``index.html`` with an HTML list of its
    entries (otherwise 403). ``index``: the file names tried for a directory.
    ``content_types``: extra suffix-to-type mappings (``{".log": "text/plain"}``), tried
    before :mod:`mimetypes`. Paths that are not there fall through to the next
    ``request`` handler (the Dispatcher), so Static can share a prefix with controllers.
    """

    channel: Any = "web"

    def __init__(
        self,
        docroot: str | os.PathLike[str],
        prefix: str = "/",
        listing: bool = False,
        channel: Any = "web",
        index: tuple[str, ...] = ("index.html",),
        content_types: dict[str, str] | None = None,
    ) -> None:
        """Check that ``docroot`` is a directory (``NotADirectoryError`` otherwise)."""
        super().__init__(channel=channel)
        self.docroot = os.fspath(docroot)
        self.root_path = os.path.realpath(self.docroot)
        if not os.path.isdir(self.root_path):
            raise NotADirectoryError(f"Static docroot is not a directory: {self.docroot!r}")
        if not prefix.startswith("/"):
            raise ValueError(f"prefix must start with '/', got {prefix!r}")
        self.prefix = "/" + prefix.strip("/")
        self._prefix_segments = [s for s in self.prefix.split("/") if s]
        # request.path starts with this for every candidate ("/static" matches "/static/x"
        # and "/static", the segment check below drops "/statics").
        self._quick = self.prefix.rstrip("/")
        self.listing = listing
        self.index = index
        self.content_types = {k.lower(): v for k, v in (content_types or {}).items()}

    # ------------------------------------------------------------ request
    @handler("request", priority=1)
    def _on_request(self, event: Event, request: Request, response: Response) -> Any:
        if event.answered:
            return None  # answered by an earlier handler
        if not request.path.startswith(self._quick):
            return None
        segments = self._segments(request.raw_path)
        if segments is None:
            return None
        path = os.path.join(self.root_path, *segments)
        real = os.path.realpath(path)
        if real != self.root_path and not real.startswith(self.root_path + os.sep):
            raise NotFound()  # a symlink out of the docroot: as if it were not there
        try:
            info = os.stat(real)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError:
            return None  # a name too long, a loop...: nothing we can serve here
        if stat.S_ISDIR(info.st_mode):
            return self._directory(request, segments, real)
        if not stat.S_ISREG(info.st_mode) or request.raw_path.endswith("/"):
            return None  # fifos, devices, sockets are never served; "file/" is no file
        if request.method not in _ALLOWED:
            raise MethodNotAllowed(_ALLOWED)
        return self._file(request, real)

    def _segments(self, raw_path: str) -> list[str] | None:
        """The decoded segments under the prefix; None when not under it; 400 when unsafe."""
        if not raw_path.startswith("/"):
            return None
        # The target was decoded as latin-1: back to its bytes, then percent-decoded and
        # read as a file name (UTF-8, undecodable bytes kept by surrogateescape).
        decoded = [
            os.fsdecode(unquote_to_bytes(part.encode("latin-1")))
            if not part.isascii() or "%" in part
            else part
            for part in raw_path.split("/")
            if part
        ]
        count = len(self._prefix_segments)
        if decoded[:count] != self._prefix_segments:
            return None
        rest = decoded[count:]
        for segment in rest:
            if segment in (".", "..") or not _safe_segment(segment):
                raise BadRequest(description="this path is not allowed")
        return rest

    def _directory(self, request: Request, segments: list[str], real: str) -> Any:
        if request.method not in _ALLOWED:
            raise MethodNotAllowed(_ALLOWED)
        if not request.raw_path.endswith("/"):
            # Relative links in the page need the slash. Rebuilt from the checked segments,
            # never from the raw target ("//evil.example" must not become a Location).
            location = _url(self._prefix_segments + segments).rstrip("/") + "/"
            if request.query_string:
                location += "?" + request.query_string
            raise Redirect(location, 301)
        for name in self.index:
            candidate = os.path.realpath(os.path.join(real, name))
            if not self._inside(candidate):
                continue
            try:
                is_file = stat.S_ISREG(os.stat(candidate).st_mode)
            except OSError:
                continue
            if is_file:
                return self._file(request, candidate)
        if not self.listing:
            raise Forbidden(description="directory listing is disabled")
        return self._listing(request, segments, real)

    def _inside(self, real: str) -> bool:
        return real == self.root_path or real.startswith(self.root_path + os.sep)

    # --------------------------------------------------------------- files
    def _file(self, request: Request, real: str) -> Response:
        try:
            # O_NONBLOCK: if the name became a fifo since stat(), open must not hang the loop.
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | _O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound() from None
        except PermissionError:
            raise Forbidden() from None
        file = os.fdopen(fd, "rb")
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise NotFound()
            response = self._answer(request, real, info, file)
        except BaseException:
            file.close()
            raise
        if not isinstance(response.body, FileSlice):
            file.close()
        return response

    def _answer(self, request: Request, real: str, info: os.stat_result, file: Any) -> Response:
        size = info.st_size
        etag = f'"{size:x}-{info.st_mtime_ns:x}"'
        mtime = int(info.st_mtime)
        headers = [
            ("ETag", etag),
            ("Last-Modified", formatdate(mtime, usegmt=True)),
            ("Accept-Ranges", "bytes"),
        ]
        request_headers = request.headers
        if _not_modified(request_headers, etag, mtime):
            return Response(b"", 304, headers)
        headers.append(("Content-Type", self.content_type(real)))
        headers.append(("X-Content-Type-Options", "nosniff"))
        offset, length, status = 0, size, 200
        field = request_headers.get("range")
        if field is not None and request.method == "GET" and _if_range(request, etag, mtime):
            wanted = parse_range(field, size)
            if isinstance(wanted, str):  # "unsatisfiable"
                headers.append(("Content-Range", f"bytes */{size}"))
                return Response(b"", 416, headers)
            if wanted is not None:
                offset, end = wanted
                length = end - offset + 1
                status = 206
                headers.append(("Content-Range", f"bytes {offset}-{end}/{size}"))
        headers.append(("Content-Length", str(length)))
        if request.method == "HEAD" or length == 0:
            return Response(b"", status, headers)
        return Response(FileSlice(file, offset, length), status, headers)

    def content_type(self, path: str) -> str:
        """The Content-Type for ``path`` (text types with ``charset=utf-8``)."""
        name = os.path.basename(path).lower()
        for suffix, configured in self.content_types.items():
            if name.endswith(suffix):
                return configured
        kind, encoding = mimetypes.guess_type(name, strict=False)
        if encoding is not None:
            return _COMPRESSED.get(encoding, "application/octet-stream")
        if kind is None:
            return "application/octet-stream"
        if kind.startswith("text/") or kind in _TEXTUAL:
            return f"{kind}; charset=utf-8"
        return kind

    # ------------------------------------------------------------- listing
    def _listing(self, request: Request, segments: list[str], real: str) -> Response:
        try:
            names = os.listdir(real)
        except OSError:
            raise NotFound() from None
        entries: list[tuple[bool, str]] = []
        for name in names:
            target = os.path.realpath(os.path.join(real, name))
            if not self._inside(target):
                continue  # a symlink out of the docroot is not shown either
            entries.append((os.path.isdir(target), name))
        entries.sort(key=lambda entry: (not entry[0], entry[1]))
        title = html.escape(_display(_url(self._prefix_segments + segments, quoted=False)))
        lines = [
            "<!doctype html>",
            '<html lang="en">',
            f'<head><meta charset="utf-8"><title>Index of {title}/</title></head>',
            f"<body>\n<h1>Index of {title}/</h1>\n<ul>",
        ]
        if segments:
            lines.append('<li><a href="../">../</a></li>')
        for is_dir, name in entries:
            slash = "/" if is_dir else ""
            href = html.escape(quote(name, errors="surrogateescape") + slash, quote=True)
            text = html.escape(_display(name) + slash)
            lines.append(f'<li><a href="./{href}">{text}</a></li>')
        lines.append("</ul>\n</body>\n</html>\n")
        body = "\n".join(lines).encode("utf-8")
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),  # HEAD gets the same length
            ("Cache-Control", "no-cache"),
        ]
        return Response(b"" if request.method == "HEAD" else body, 200, headers)

    def __repr__(self) -> str:
        return f"<Static/{self.channel} {self.prefix} -> {self.docroot}>"


_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_RANGE = re.compile(r"[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*")


def _safe_segment(segment: str) -> bool:
    """No separator, NUL or control character: the segment names one entry, here."""
    if "/" in segment or "\\" in segment:
        return False
    return not any(ord(c) < 32 or ord(c) == 127 for c in segment)


def _url(segments: list[str], quoted: bool = True) -> str:
    if not quoted:
        return "/" + "/".join(segments)
    return "/" + "/".join(quote(s, errors="surrogateescape") for s in segments)


def _display(name: str) -> str:
    """A file name as text (undecodable bytes shown as U+FFFD)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _etags(field: str) -> list[str]:
    return [tag.strip() for tag in field.split(",") if tag.strip()]


def _weak_match(a: str, b: str) -> bool:
    return a.removeprefix("W/") == b.removeprefix("W/")


def _http_date(text: str) -> int | None:
    """Seconds since the epoch of an HTTP date, or None when it is not one."""
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        from datetime import timezone

        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp())


def _not_modified(headers: Any, etag: str, mtime: int) -> bool:
    """RFC 9110 section 13.2.2: If-None-Match first; If-Modified-Since only without it."""
    none_match = headers.get_all("if-none-match")
    if none_match:
        tags = [tag for field in none_match for tag in _etags(field)]
        return "*" in tags or any(_weak_match(tag, etag) for tag in tags)
    since = headers.get("if-modified-since")
    if since is None:
        return False
    when = _http_date(since)
    return when is not None and mtime <= when


def _if_range(request: Request, etag: str, mtime: int) -> bool:
    """Whether the Range field applies (no If-Range, or one that still matches)."""
    field = request.headers.get("if-range")
    if field is None:
        return True
    field = field.strip()
    if field.startswith('"') or field.startswith("W/"):
        return field == etag  # strong comparison: a weak tag never matches
    when = _http_date(field)
    return when is not None and when == mtime


def parse_range(field: str, size: int) -> tuple[int, int] | str | None:
    """One ``bytes=`` range of a ``size``-byte representation, as ``(first, last)``.

    ``"unsatisfiable"`` when it is valid but selects nothing (416); ``None`` to ignore the
    field and send everything (a malformed field, another unit, several ranges).
    """
    unit, _, ranges = field.partition("=")
    if unit.strip().lower() != "bytes" or "," in ranges:
        return None
    match = _RANGE.fullmatch(ranges)
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:  # -n: the last n bytes
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # invalid: ignored (RFC 9110 section 14.1.1)
    if first >= size:
        return "unsatisfiable"
    last = int(last_text) if last_text else size - 1
    return first, min(last, size - 1)
