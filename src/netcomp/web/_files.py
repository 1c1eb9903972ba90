"""Answering with a file: opening it safely, validators, ranges, its Content-Type.

What :class:`~netcomp.web.Static` and the tools ``serve_file``/``serve_download`` share.

Rules:
* A file is opened with ``O_NONBLOCK`` (a name that became a fifo cannot hang the loop)
  and must be a regular file once open; missing is 404, unreadable 403.
* Validators (RFC 9110 sections 8.8, 13): a strong ``ETag`` from size and mtime and
  ``Last-Modified``. ``If-None-Match`` (weak comparison) takes precedence over
  ``If-Modified-Since``; either gives 304 with no body.
* Ranges apply to GET only, and only while ``If-Range`` (if any) still matches: one
  range is a 206 with ``Content-Range``, several a 206 ``multipart/byteranges``, none
  satisfiable (or overlapping ones) 416 (:mod:`._ranges`).
* The body is exactly what the Content-Length says (a :class:`FileSlice` or a
  :class:`MultiRange`), even if the file changes meanwhile.
"""

from __future__ import annotations

import mimetypes
import os
import stat
from datetime import timezone
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from ._bodies import FileSlice
from ._errors import Forbidden, NotFound
from ._ranges import MultiRange, parse_ranges
from ._request import Request
from ._response import Response

__all__ = ["content_disposition", "file_response", "guess_type", "open_regular"]

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
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


def guess_type(path: str, extra: dict[str, str] | None = None) -> str:
    """The Content-Type for ``path``: ``extra`` suffixes first, then :mod:`mimetypes`;
    text types with ``charset=utf-8``; ``application/octet-stream`` when unknown."""
    name = os.path.basename(path).lower()
    for suffix, configured in (extra or {}).items():
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


def open_regular(path: str) -> tuple[Any, os.stat_result]:
    """Open ``path`` for reading without blocking the loop: ``(file, stat)``; 404 when it
    is missing or no regular file, 403 when it may not be read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | _O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise NotFound() from None
    except PermissionError:
        raise Forbidden() from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise NotFound()
    return os.fdopen(fd, "rb"), info


def content_disposition(disposition: str, name: str) -> str:
    """``attachment; filename="..."`` (RFC 6266): an ASCII fallback with quotes and
    backslashes escaped and control characters dropped, plus ``filename*`` (UTF-8) when
    the name is not plain ASCII."""
    fallback = "".join(
        c if 32 <= ord(c) < 127 else "_" for c in name if ord(c) >= 32 and ord(c) != 127
    )
    fallback = fallback.replace("\\", "\\\\").replace('"', '\\"')
    value = f'{disposition}; filename="{fallback}"'
    if not name.isascii() or fallback != name:
        value += "; filename*=UTF-8''" + quote(name, safe="")
    return value


def file_response(
    request: Request, response: Response, file: Any, info: os.stat_result, kind: str
) -> Response:
    """Fill ``response`` with ``file`` (open, ``info`` its stat) for ``request``: a 200,
    206, 304 or 416 with validators (see the module rules). ``file`` is closed unless the
    body reads it. Returns ``response``."""
    try:
        _fill(request, response, file, info, kind)
    except BaseException:
        file.close()
        raise
    if response.body is None or isinstance(response.body, bytes):
        file.close()
    return response


def _fill(
    request: Request, response: Response, file: Any, info: os.stat_result, kind: str
) -> None:
    size = info.st_size
    etag = f'"{size:x}-{info.st_mtime_ns:x}"'
    mtime = int(info.st_mtime)
    headers = response.headers
    headers["ETag"] = etag
    headers["Last-Modified"] = formatdate(mtime, usegmt=True)
    headers["Accept-Ranges"] = "bytes"
    if _not_modified(request.headers, etag, mtime):
        response.status, response.body = 304, b""
        return
    headers["Content-Type"] = kind
    headers["X-Content-Type-Options"] = "nosniff"
    wanted: Any = None
    field = request.headers.get("range")
    if field is not None and request.method == "GET" and _if_range(request, etag, mtime):
        wanted = parse_ranges(field, size)
    if isinstance(wanted, str):  # "unsatisfiable"
        headers["Content-Range"] = f"bytes */{size}"
        response.status, response.body = 416, b""
        return
    if wanted is not None and len(wanted) > 1:
        body = MultiRange(file, wanted, size, kind)
        headers["Content-Type"] = body.content_type
        headers["Content-Length"] = str(body.length)
        response.status, response.body = 206, body if request.method != "HEAD" else b""
        return
    offset, length = 0, size
    if wanted is not None:
        offset, end = wanted[0]
        length = end - offset + 1
        response.status = 206
        headers["Content-Range"] = f"bytes {offset}-{end}/{size}"
    headers["Content-Length"] = str(length)
    if request.method == "HEAD" or length == 0:
        response.body = b""
    else:
        response.body = FileSlice(file, offset, length)


def _etags(field: str) -> list[str]:
    return [tag.strip() for tag in field.split(",") if tag.strip()]


def _weak_match(a: str, b: str) -> bool:
    return a.removeprefix("W/") == b.removeprefix("W/")


def http_date_seconds(text: str) -> int | None:
    """Seconds since the epoch of an HTTP date, or None when it is not one."""
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
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
    when = http_date_seconds(since)
    return when is not None and mtime <= when


def _if_range(request: Request, etag: str, mtime: int) -> bool:
    """Whether the Range field applies (no If-Range, or one that still matches)."""
    field = request.headers.get("if-range")
    if field is None:
        return True
    field = field.strip()
    if field.startswith('"') or field.startswith("W/"):
        return field == etag  # strong comparison: a weak tag never matches
    when = http_date_seconds(field)
    return when is not None and when == mtime
