"""circuits' ``circuits.web.exceptions``: ``HTTPException`` and its family (``NotFound``,
``Forbidden``, ``Redirect``, ...), as :class:`netcomp.web.HTTPError` subclasses with
circuits' constructors (``NotFound(description=None)``, ``Redirect(urls, status=None)``).

Where ``netcomp.web`` has a class of the same meaning, these derive from it, so
``except netcomp.web.NotFound`` catches them too.
"""

from ._compat_errors import (
    BadGateway,
    BadRequest,
    Forbidden,
    Gone,
    HTTPException,
    InternalServerError,
    LengthRequired,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    NotImplemented,
    PreconditionFailed,
    RangeUnsatisfiable,
    Redirect,
    RequestEntityTooLarge,
    RequestTimeout,
    RequestURITooLarge,
    ServiceUnavailable,
    Unauthorized,
    UnicodeError,
    UnsupportedMediaType,
)

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
]
