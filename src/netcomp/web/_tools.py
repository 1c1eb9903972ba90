"""circuits.web's response tools, written for netcomp: caching headers, files, downloads
and conditional requests. Each takes ``(request, response, ...)`` as circuits' did, and
:class:`~netcomp.web.Controller` has them as methods (``self.expires(60)``).

Rules:
* ``serve_file`` needs an absolute path (``ValueError``); a missing file or a directory
  is 404, an unreadable one 403. It fills ``response`` (headers set before are kept)
  through the same code as :class:`~netcomp.web.Static`: validators, ranges, 304/416.
* ``expires(secs)`` sets ``Expires`` (and ``Cache-Control: max-age``); ``secs == 0``
  forbids caching (``Pragma``, ``Cache-Control``, an ``Expires`` a year ago). Unless
  ``force``, a response that already carries a validator or an expiry is left alone.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from email.utils import formatdate

from ._errors import HTTPError
from ._files import content_disposition, file_response, guess_type, http_date_seconds, open_regular
from ._request import Request
from ._response import Response

__all__ = ["expires", "serve_download", "serve_file", "validate_etags", "validate_since"]

_CACHEABLE = ("etag", "last-modified", "age", "expires")


def expires(
    request: Request, response: Response, secs: float | timedelta = 0, force: bool = False
) -> None:
    """Say how long ``response`` may be cached: ``secs`` seconds (a number or a
    ``timedelta``); ``0``: not at all."""
    headers = response.headers
    if not force and any(name in headers for name in _CACHEABLE):
        return
    if isinstance(secs, timedelta):
        secs = secs.total_seconds()
    if secs == 0:
        if force or "pragma" not in headers:
            headers["Pragma"] = "no-cache"
        if request.protocol >= (1, 1) and (force or "cache-control" not in headers):
            headers["Cache-Control"] = "no-cache, must-revalidate"
        stamp = _a_year_ago()
    else:
        if force or "cache-control" not in headers:
            headers["Cache-Control"] = f"max-age={max(0, int(secs))}"
        stamp = time.time() + secs
    if force or "expires" not in headers:
        headers["Expires"] = formatdate(stamp, usegmt=True)


def _a_year_ago() -> float:
    now = datetime.now(timezone.utc)
    try:
        then = now.replace(year=now.year - 1)
    except ValueError:  # 29 February
        then = now.replace(year=now.year - 1, day=28)
    return then.timestamp()


def serve_file(
    request: Request,
    response: Response,
    path: str | os.PathLike[str],
    type: str | None = None,
    disposition: str | None = None,
    name: str | None = None,
) -> Response:
    """Answer with the file at ``path`` (absolute): Content-Type ``type`` or guessed
    from the name; with ``disposition`` (``"attachment"``), a ``Content-Disposition``
    naming ``name`` (the file's own name by default). Returns ``response``."""
    path = os.fspath(path)
    if not os.path.isabs(path):
        raise ValueError(f"serve_file needs an absolute path, got {path!r}")
    file, info = open_regular(path)
    if disposition is not None:
        try:
            header = content_disposition(disposition, name or os.path.basename(path))
            response.headers["Content-Disposition"] = header
        except ValueError:
            file.close()
            raise
    return file_response(request, response, file, info, type or guess_type(path))


def serve_download(
    request: Request, response: Response, path: str | os.PathLike[str], name: str | None = None
) -> Response:
    """Answer with the file at ``path`` as a download (``application/x-download``,
    ``Content-Disposition: attachment``)."""
    return serve_file(request, response, path, "application/x-download", "attachment", name)


def validate_since(request: Request, response: Response) -> Response | HTTPError | None:
    """Check ``If-Modified-Since``/``If-Unmodified-Since`` against the response's
    ``Last-Modified``: a 304 response or a 412 error to return, or None to go on."""
    modified = http_date_seconds(response.headers.get("last-modified", ""))
    if modified is None or not 200 <= response.status <= 299:
        return None
    unmodified = request.headers.get("if-unmodified-since")
    if unmodified is not None:
        when = http_date_seconds(unmodified)
        if when is not None and modified > when:
            return HTTPError(412)
    since = request.headers.get("if-modified-since")
    if since is not None and request.method in ("GET", "HEAD"):
        when = http_date_seconds(since)
        if when is not None and modified <= when:
            return _not_modified(response)
    return None


def validate_etags(request: Request, response: Response) -> Response | HTTPError | None:
    """Check ``If-Match``/``If-None-Match`` against the response's ``ETag``: a 304
    response or a 412 error to return, or None to go on."""
    etag = response.headers.get("etag")
    if etag is None or not 200 <= response.status <= 299:
        return None
    match = _tags(request.headers.get_all("if-match"))
    if match and "*" not in match and etag not in match:  # strong comparison
        return HTTPError(412)
    none_match = _tags(request.headers.get_all("if-none-match"))
    weak = etag.removeprefix("W/")
    if "*" in none_match or weak in {tag.removeprefix("W/") for tag in none_match}:
        if request.method in ("GET", "HEAD"):
            return _not_modified(response)
        return HTTPError(412)
    return None


def _tags(fields: list[str]) -> list[str]:
    return [tag.strip() for field in fields for tag in field.split(",") if tag.strip()]


def _not_modified(response: Response) -> Response:
    keep = ("etag", "last-modified", "cache-control", "expires", "vary", "date")
    headers = [(n, v) for n, v in response.headers.items() if n.lower() in keep]
    return Response(b"", 304, headers)
