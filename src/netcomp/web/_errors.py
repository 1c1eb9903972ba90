"""HTTP errors a handler raises to answer with a status (an answer, not a failure)."""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus

from ..core import NetcompError

__all__ = [
    "BadRequest",
    "Forbidden",
    "HTTPError",
    "MethodNotAllowed",
    "NotFound",
    "ProtocolError",
    "Redirect",
]


_PHRASES = {int(status): status.phrase for status in HTTPStatus}


def reason_phrase(status: int) -> str:
    """The standard reason phrase for ``status`` (empty for unknown codes)."""
    return _PHRASES.get(status, "")


class HTTPError(NetcompError):
    """Raise in a handler to answer with ``status`` (and optional ``description``/``headers``).

    ``report = False``: the loop records it as the event's error but does not fire
    ``exception`` nor log it, since it is the handler's answer, not a failure.
    """

    report = False
    status = 500

    def __init__(
        self,
        status: int | None = None,
        description: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        if status is not None:
            self.status = status
        if not 400 <= self.status <= 599 and not 300 <= self.status <= 399:
            raise ValueError(f"HTTPError needs a 3xx, 4xx or 5xx status, got {self.status}")
        self.reason = reason_phrase(self.status)
        self.description = description if description is not None else self.reason
        self.headers = list(headers)
        super().__init__(f"{self.status} {self.reason}: {self.description}")


class BadRequest(HTTPError):
    """400: the request is malformed."""

    status = 400


class Forbidden(HTTPError):
    """403: the request is understood and refused."""

    status = 403


class NotFound(HTTPError):
    """404: nothing is here."""

    status = 404


class MethodNotAllowed(HTTPError):
    """405, with the ``Allow`` header listing the methods that are."""

    status = 405

    def __init__(self, allowed: Iterable[str], description: str | None = None) -> None:
        self.allowed = sorted(set(allowed))
        super().__init__(405, description, [("Allow", ", ".join(self.allowed))])


class Redirect(HTTPError):
    """A redirect (303 by default) to ``location``."""

    status = 303

    def __init__(self, location: str, status: int = 303) -> None:
        if not 300 <= status <= 399:
            raise ValueError(f"a redirect needs a 3xx status, got {status}")
        self.location = location
        super().__init__(status, f"see {location}", [("Location", location)])


class ProtocolError(NetcompError):
    """The peer broke HTTP framing or a limit: answer ``status`` and close (peer's fault)."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"{status}: {reason}")
