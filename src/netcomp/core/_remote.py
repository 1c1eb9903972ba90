"""What the two ends of a Bridge say about events: the ``ipc`` event, the errors that come
back, the events a bridge fires, and which event classes a side may rebuild.

Rules (docs/architecture.md, "Bridges"): an event class is named on the wire by
``module:qualname`` and found again only among the ``Event`` subclasses already defined in
the receiving process (weakly remembered): nothing is imported because a message names it.
An error crosses as its type name, message and traceback text, and comes back as a
:class:`RemoteError` whose cause shows that traceback.
"""

from __future__ import annotations

import traceback
import weakref
from typing import Any

from ._errors import NetcompError
from ._events import Event
from ._wire import MalformedMessage

__all__ = [
    "BridgeError",
    "RemoteError",
    "class_id",
    "defined_event",
    "error_info",
    "field",
    "ipc",
    "link_disconnected",
    "link_error",
    "link_ready",
]


#: How much of an error's message (its start) and traceback (its end) crosses, in characters.
MAX_TEXT = 64 * 1024


class BridgeError(NetcompError, ConnectionError):
    """A Bridge could not deliver: its link is closed or broke, or the other side refused
    the message. The message says which, and why."""


class RemoteError(NetcompError):
    """A handler raised in the process at the other end of a Bridge.

    ``type_name`` (``"ValueError"``; ``"module.Class"`` outside the builtins) and
    ``message`` describe the original error, ``pid`` is that process. Its traceback, as
    text, is ``remote_traceback``; it shows as this error's cause when it is logged.
    """

    def __init__(
        self, type_name: str, message: str, pid: int | None = None, remote_traceback: str = ""
    ) -> None:
        self.type_name = type_name
        self.message = message
        self.pid = pid
        self.remote_traceback = remote_traceback
        where = f" (in process {pid})" if pid is not None else ""
        super().__init__(f"{type_name}: {message}{where}")
        if remote_traceback:
            self.__cause__ = _RemoteTraceback(remote_traceback)


class _RemoteTraceback(Exception):
    """The other process's traceback, as the cause of a :class:`RemoteError`."""

    def __str__(self) -> str:
        return "traceback in the other process:\n" + str(self.args[0]).rstrip()


class ipc(Event):
    """``ipc(event, channel=None)``: handle ``event`` in the process at the other end of a
    Bridge, and get its answer back as this event's value.

    Fired on ``"*"`` by default, so every Bridge of the tree hears it; fire it on one
    bridge's channel to use that one alone. The other side fires ``event`` on ``channel``,
    else on the channels this ``ipc`` was fired on. ``await self.call(ipc(e))`` returns the
    remote result (or raises :class:`RemoteError`); ``yield self.call(ipc(e))`` sends back
    the Value, as circuits does.
    """

    channels = ("*",)

    def __init__(self, event: Event, channel: Any = None) -> None:
        if not isinstance(event, Event):
            raise TypeError(f"ipc() carries an Event, not {type(event).__name__} {event!r}")
        super().__init__(event, channel=channel)


class link_ready(Event):
    """``ready(bridge)``: the other end said hello (its tree's loop runs)."""

    name = "ready"
    notification = True


class link_disconnected(Event):
    """``disconnected()``: the link ended."""

    name = "disconnected"
    notification = True


class link_error(Event):
    """``error(err)``: the bridge refused a message or lost its link (a BridgeError)."""

    name = "error"
    unhandled_logger = "netcomp"

    def describe(self) -> str:
        """What went wrong, on which bridge."""
        channel = self.channels[0] if self.channels else "-"
        return f"error on the bridge on {channel!r}: {self.args[-1]}"


def class_id(cls: type) -> str:
    """How a class is named on the wire: ``module:qualname``."""
    return f"{cls.__module__}:{cls.__qualname__}"


#: Event classes defined in this process by their ``module:qualname`` (weakly held; filled
#: again when a name is missing, since classes are defined as a program runs).
_DEFINED: weakref.WeakValueDictionary[str, type[Event]] = weakref.WeakValueDictionary()


def defined_event(name: str) -> type[Event] | None:
    """The Event subclass defined in this process under ``name`` (``module:qualname``)."""
    found = _DEFINED.get(name)
    if found is None:
        stack: list[type[Event]] = [Event]
        while stack:
            cls = stack.pop()
            _DEFINED[class_id(cls)] = cls
            stack.extend(cls.__subclasses__())
        found = _DEFINED.get(name)
    return found


def error_info(error: BaseException) -> dict[str, str]:
    """What crosses for an error: its type name, message and traceback text."""
    if isinstance(error, RemoteError):  # passed on from further away: keep the original
        return {
            "type": error.type_name,
            "message": error.message[:MAX_TEXT],
            "traceback": error.remote_traceback[-MAX_TEXT:],
        }
    kind = type(error)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    text = "".join(traceback.format_exception(kind, error, error.__traceback__))
    return {"type": name, "message": str(error)[:MAX_TEXT], "traceback": text[-MAX_TEXT:]}


def field(message: dict[str, Any], key: str, kinds: type | tuple[type, ...]) -> Any:
    """``message[key]`` if it is one of ``kinds`` (a bool is no int); else malformed."""
    value = message.get(key)
    if not isinstance(value, kinds) or (isinstance(value, bool) and kinds is int):
        raise MalformedMessage(f"field {key!r} is missing or has the wrong type")
    return value
