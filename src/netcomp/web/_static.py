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
* A file is answered by :func:`~._files.file_response`: validators (304), one range
  (206 with ``Content-Range``), several (206 ``multipart/byteranges``), unsatisfiable or
  overlapping ones (416), a malformed field, another unit, too many ranges or an
  ``If-Range`` that does not match (the whole file, 200). Ranges apply to GET only. The
  body is exactly what the Content-Length says, even if the file changes meanwhile.
"""

from __future__ import annotations

import html
import os
import stat
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from ..core import BaseComponent, Event, handler
from ._errors import BadRequest, Forbidden, MethodNotAllowed, NotFound, Redirect
from ._files import file_response, guess_type, open_regular
from ._request import Request
from ._response import Response

__all__ = ["Static"]

_ALLOWED = ("GET", "HEAD")


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
        docroot: str | os.PathLike[str] | None = None,
        prefix: str | os.PathLike[str] | None = None,
        listing: bool = False,
        channel: Any = "web",
        index: tuple[str, ...] = ("index.html",),
        content_types: dict[str, str] | None = None,
        *,
        path: str | None = None,
        dirlisting: bool | None = None,
        defaults: tuple[str, ...] | list[str] | None = None,
    ) -> None:
        """Check that ``docroot`` is a directory (``NotADirectoryError`` otherwise) and
        not the file system's root (``ValueError``). ``prefix``: ``"/"`` by default.

        circuits' spelling works too: ``path=`` is ``prefix``, ``dirlisting=`` is
        ``listing``, ``defaults=`` is ``index``, and circuits' argument order
        ``Static("/static", docroot)`` is recognised where netcomp's reading cannot be
        meant: the first argument is no directory (or is ``/``), the second is one.
        """
        super().__init__(channel=channel)
        if path is not None:
            prefix = path
        if docroot is not None and prefix is not None and _circuits_order(docroot, prefix):
            docroot, prefix = prefix, docroot  # circuits' order: Static(path, docroot)
        if docroot is None:
            raise TypeError("Static needs a docroot (the directory to serve)")
        if dirlisting is not None:
            listing = dirlisting
        if defaults is not None:
            index = tuple(defaults)
        prefix = "/" if prefix is None else os.fspath(prefix)
        self.docroot = os.fspath(docroot)
        self.root_path = os.path.realpath(self.docroot)
        if not os.path.isdir(self.root_path):
            raise NotADirectoryError(f"Static docroot is not a directory: {self.docroot!r}")
        if self.root_path == os.path.realpath(os.sep):
            raise ValueError("Static refuses to serve the whole file system (docroot '/')")
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
        file, info = open_regular(real)
        return file_response(request, Response(), file, info, self.content_type(real))

    def content_type(self, path: str) -> str:
        """The Content-Type for ``path`` (text types with ``charset=utf-8``)."""
        return guess_type(path, self.content_types)

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


def _circuits_order(first: str | os.PathLike[str], second: str | os.PathLike[str]) -> bool:
    """Whether ``Static(first, second)`` is circuits' ``Static(path, docroot)``: the
    second names a directory (not the root) and the first names none (or the root)."""
    root = os.path.realpath(os.sep)
    if not os.path.isdir(second) or os.path.realpath(second) == root:
        return False
    return not os.path.isdir(first) or os.path.realpath(first) == root


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
