"""circuits' ``circuits.web.tools``: caching headers, files and downloads, conditional
requests, Basic and Digest authentication, gzip, written for netcomp. Each takes
``(request, response, ...)`` as circuits' did; a :class:`~netcomp.web.Controller` has
``expires``, ``serve_file`` and ``serve_download`` as methods."""

from ._auth import basic_auth, check_auth, digest_auth
from ._gzip import gzip
from ._tools import expires, serve_download, serve_file, validate_etags, validate_since

__all__ = [
    "basic_auth",
    "check_auth",
    "digest_auth",
    "expires",
    "gzip",
    "serve_download",
    "serve_file",
    "validate_etags",
    "validate_since",
]
