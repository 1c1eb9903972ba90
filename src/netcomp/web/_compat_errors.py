"""circuits.web's error names, as thin classes over netcomp's :class:`HTTPError` family.

Rules: each class is an :class:`HTTPError` (and, where netcomp has one of the same
meaning, a subclass of it: ``except NotFound`` catches circuits' ``notfound`` too) that
takes circuits' constructor arguments. An ``HTTPError`` answers its status whether a
handler raises it or returns it, so circuits' ``return notfound(request, response)`` and
``raise NotFound()`` both work. ``code`` is the status, under circuits' name. The body
is netcomp's (plain text: status line and description), not circuits' HTML page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import _errors
from ._errors import HTTPError

__all__ = [
    "BadGateway",
    "BadRequest",
    "Forbidden",
    "Gone",
    "HTTPException",
    "InternalServerError",
    "LengthRequired",
    "MethodNotAllowed",
    "NotAcceptable",
    "NotFound",
    "NotImplemented",
    "PreconditionFailed",
    "RangeUnsatisfiable",
    "Redirect",
    "RequestEntityTooLarge",
    "RequestTimeout",
    "RequestURITooLarge",
    "ServiceUnavailable",
    "Unauthorized",
    "UnicodeError",
    "UnsupportedMediaType",
    "forbidden",
    "httperror",
    "notfound",
    "redirect",
    "unauthorized",
]


def _locations(urls: str | Sequence[str]) -> list[str]:
    locations = [urls] if isinstance(urls, str) else list(urls)
    if not locations or not all(isinstance(url, str) and url for url in locations):
        raise ValueError(f"a redirect needs a URL (or a list of them), got {urls!r}")
    return locations


# ------------------------------------------------------- circuits.web.errors
class httperror(HTTPError):
    """circuits.web's ``httperror(request, response, code=None, description=None)``:
    answer ``code`` (500 by default) with ``description``; return it or raise it."""

    def __init__(
        self,
        request: Any = None,
        response: Any = None,
        code: int | None = None,
        *,
        description: str | None = None,
        error: Any = None,
    ) -> None:
        self.request = request
        self.response = response
        self.error = error
        super().__init__(code, description)

    @property
    def code(self) -> int:
        """The status (circuits' name for it)."""
        return self.status


class forbidden(httperror, _errors.Forbidden):
    """circuits.web's ``forbidden(request, response, description=None)``: 403."""


class unauthorized(httperror):
    """circuits.web's ``unauthorized(request, response, description=None)``: 401."""

    status = 401


class notfound(httperror, _errors.NotFound):
    """circuits.web's ``notfound(request, response, description=None)``: 404."""


class redirect(httperror, _errors.Redirect):
    """circuits.web's ``redirect(request, response, urls, code=None)``: 303 (or ``code``)
    to the first of ``urls`` (a URL or a list of them)."""

    def __init__(
        self,
        request: Any = None,
        response: Any = None,
        urls: str | Sequence[str] = (),
        code: int | None = None,
    ) -> None:
        self.request = request
        self.response = response
        self.error = None
        self.urls = _locations(urls)
        _errors.Redirect.__init__(self, self.urls[0], 303 if code is None else code)


# --------------------------------------------------- circuits.web.exceptions
class HTTPException(HTTPError):
    """circuits.web.exceptions' base class: ``HTTPException(description=None,
    traceback=None)`` answers the class's ``code``."""

    def __init__(self, description: str | None = None, traceback: Any = None) -> None:
        self.traceback = traceback
        super().__init__(None, description)

    @property
    def code(self) -> int:
        """The status (circuits' name for it)."""
        return self.status


class BadRequest(HTTPException, _errors.BadRequest):
    """400 (circuits' ``BadRequest(description=None)``)."""


class UnicodeError(HTTPException):
    """400: the request could not be decoded (circuits' ``UnicodeError``)."""

    status = 400


class Unauthorized(HTTPException):
    """401."""

    status = 401


class Forbidden(HTTPException, _errors.Forbidden):
    """403 (circuits' ``Forbidden(description=None)``)."""


class NotFound(HTTPException, _errors.NotFound):
    """404 (circuits' ``NotFound(description=None)``)."""


class MethodNotAllowed(HTTPException, _errors.MethodNotAllowed):
    """405, with ``Allow`` listing ``method`` (a method or a list of the allowed ones)."""

    def __init__(self, method: str | Sequence[str], description: str | None = None) -> None:
        self.traceback = None
        allowed = [method] if isinstance(method, str) else list(method)
        _errors.MethodNotAllowed.__init__(self, allowed, description)


class NotAcceptable(HTTPException):
    """406."""

    status = 406


class RequestTimeout(HTTPException):
    """408."""

    status = 408


class Gone(HTTPException):
    """410."""

    status = 410


class LengthRequired(HTTPException):
    """411."""

    status = 411


class PreconditionFailed(HTTPException):
    """412."""

    status = 412


class RequestEntityTooLarge(HTTPException):
    """413."""

    status = 413


class RequestURITooLarge(HTTPException):
    """414."""

    status = 414


class UnsupportedMediaType(HTTPException):
    """415."""

    status = 415


class RangeUnsatisfiable(HTTPException):
    """416."""

    status = 416


class InternalServerError(HTTPException):
    """500."""

    status = 500


class NotImplemented(HTTPException):
    """501 (circuits' name; it shadows the builtin constant in this module only)."""

    status = 501


class BadGateway(HTTPException):
    """502."""

    status = 502


class ServiceUnavailable(HTTPException):
    """503."""

    status = 503


class Redirect(HTTPException, _errors.Redirect):
    """circuits' ``Redirect(urls, status=None)``: 303 (or ``status``) to the first URL."""

    def __init__(self, urls: str | Sequence[str], status: int | None = None) -> None:
        self.traceback = None
        self.urls = _locations(urls)
        _errors.Redirect.__init__(self, self.urls[0], 303 if status is None else status)
