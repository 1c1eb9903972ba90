"""netcomp's exception tree.

Rules: every error netcomp raises on purpose derives from :class:`NetcompError`, and also from
the builtin that best describes it (so ``except TimeoutError`` and ``except TypeError`` keep
working). Whose fault it is shows in the name: the caller's (``RegistrationError``,
``HandlerSignatureError``) or the circumstances' (``TimeoutError``, ``EventCancelled``).
"""

from __future__ import annotations

import builtins

__all__ = [
    "EventCancelled",
    "HandlerSignatureError",
    "NetcompError",
    "NotHandled",
    "RegistrationError",
    "TimeoutError",
]


class NetcompError(Exception):
    """Base class of every error netcomp raises on purpose."""


class TimeoutError(NetcompError, builtins.TimeoutError):
    """A wait (``call``, ``wait``, a connect, ...) ran past its timeout in seconds."""


class HandlerSignatureError(NetcompError, TypeError):
    """A handler cannot accept the arguments of the event it was given (the caller's bug)."""


class RegistrationError(NetcompError, ValueError):
    """A component was registered where it cannot be (already in another tree, into itself)."""


class EventCancelled(NetcompError):
    """The event was cancelled before its handlers ran; awaiting its result raises this."""


class NotHandled(NetcompError, LookupError):
    """``await self.call(event)`` found no handler for the event (by its name, on its
    channels): a misspelt handler or channel, most often. The message names both."""
