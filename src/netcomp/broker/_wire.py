"""The wire: what a bridged event and a reply look like on Redis, and which classes a
process agrees to rebuild from it.

Rules:
* A message is a codec's tag byte and an array (see ``_codec``):
  event ``[1, "e", origin, seq, name, args, kwargs, corr]``;
  reply ``[1, "r", origin, seq, corr, ok, answer]`` where ``answer`` is the value, or
  ``[error type, message]`` when ``ok`` is false. ``corr`` is 0 when nobody waits for an
  answer. ``seq`` counts the messages of one origin (duplicates are recognised by it).
* Only event classes registered with :meth:`EventTypes.allow` are rebuilt, by calling
  the class with the sender's arguments; anything else is a :class:`WireError` with the
  reason. Error classes too, with their message: builtin exception classes by name,
  others when both ends registered them (by class name), :class:`RemoteError` for the rest.
"""

from __future__ import annotations

import builtins
from typing import Any, NamedTuple

from ..core import Event, NotHandled
from ..core import TimeoutError as NetcompTimeout
from ._codec import Codec, decode
from ._events import RemoteError, WireError

__all__ = [
    "EventMessage",
    "EventTypes",
    "ReplyMessage",
    "event_bytes",
    "read_message",
    "reply_bytes",
]

VERSION = 1


class EventMessage(NamedTuple):
    """An event as read from the wire."""

    origin: str
    seq: int
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    corr: int


class ReplyMessage(NamedTuple):
    """The answer to a call, as read from the wire."""

    origin: str
    seq: int
    corr: int
    ok: bool
    answer: Any


def _error_name(cls: type[BaseException]) -> str:
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


class EventTypes:
    """The event classes (and error classes) a bridge sends and rebuilds, by name."""

    def __init__(self) -> None:
        self.events: dict[str, type[Event]] = {}
        self.errors: dict[str, type[BaseException]] = {}
        self._error_names: dict[type[BaseException], str] = {}
        for kind in (NotHandled, NetcompTimeout, RemoteError, WireError):
            self.errors[_error_name(kind)] = kind  # by module: never mistaken for a builtin
            self._error_names[kind] = _error_name(kind)

    def allow(self, *types: type[Event] | type[BaseException] | str) -> list[str]:
        """Register event classes (by their event name), names of events made with
        ``Event.create`` (a str), and exception classes; returns the new event names.

        ``ValueError`` when a name is already taken by another class.
        """
        added: list[str] = []
        for item in types:
            kind: type[Event]
            if isinstance(item, str):
                if not item:
                    raise ValueError("an event name is a non-empty str")
                kind, name = Event, item
            elif isinstance(item, type) and issubclass(item, Event):
                kind, name = item, item.name
            elif isinstance(item, type) and issubclass(item, BaseException):
                self._allow_error(item)
                continue
            else:
                raise TypeError(
                    f"allow() takes Event classes, event names and exception classes, got {item!r}"
                )
            known = self.events.get(name)
            if known is not None and known is not kind:
                raise ValueError(f"event name {name!r} is already taken by {known!r}")
            if known is None:
                self.events[name] = kind
                added.append(name)
        return added

    def _allow_error(self, kind: type[BaseException]) -> None:
        # By class name: the module of a class differs between a program run as a script
        # (``__main__``) and one importing it. A builtin's name is taken.
        name = kind.__qualname__
        known = self.errors.get(name)
        builtin = getattr(builtins, name, None)
        if (known is not None and known is not kind) or (
            builtin is not None and builtin is not kind
        ):
            raise ValueError(f"error class name {name!r} is already taken by {known or builtin!r}")
        self.errors[name] = kind
        self._error_names[kind] = name

    def sendable(self, event: Event) -> bool:
        """Whether ``event`` is of the class registered under its name."""
        return self.events.get(event.name) is type(event)

    def build(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Event:
        """The event ``name`` rebuilt from its arguments; :class:`WireError` if refused."""
        kind = self.events.get(name)
        if kind is None:
            raise WireError(f"event class {name!r} is not registered here (RedisBridge events=)")
        try:
            if kind is Event:
                return Event.create(name, *args, **kwargs)
            return kind(*args, **kwargs)
        except Exception as err:
            raise WireError(f"{kind.__qualname__} refused its arguments: {err!r}") from None

    def error_name(self, error: BaseException) -> str:
        """The name an error travels under: a registered class's name, a builtin's, or
        the module and name of any other (rebuilt as :class:`RemoteError`)."""
        kind = type(error)
        return self._error_names.get(kind) or _error_name(kind)

    def build_error(self, name: str, message: str, origin: str) -> BaseException:
        """The error a remote handler raised: its class when known here, else
        :class:`RemoteError`."""
        kind = self.errors.get(name)
        if kind is None and "." not in name:
            found = getattr(builtins, name, None)
            if isinstance(found, type) and issubclass(found, Exception):
                kind = found
        if kind is not None:
            try:
                error = kind(message)
            except Exception:
                error = None
            if error is not None:
                return error
        return RemoteError(name, message, origin)


def event_bytes(codec: Codec, origin: str, seq: int, event: Event, corr: int) -> bytes:
    """The message of ``event`` (``TypeError`` when an argument cannot cross)."""
    args = list(event.args)
    return codec.encode([VERSION, "e", origin, seq, event.name, args, event.kwargs, corr])


def reply_bytes(codec: Codec, origin: str, seq: int, corr: int, ok: bool, answer: Any) -> bytes:
    """The message answering call ``corr``."""
    return codec.encode([VERSION, "r", origin, seq, corr, ok, answer])


def read_message(payload: Any) -> EventMessage | ReplyMessage:
    """Decode and check one message; :class:`WireError` says what is wrong with it."""
    if not isinstance(payload, bytes):
        raise WireError(f"a message is bytes, got {type(payload).__name__}")
    try:
        data = decode(payload)
    except (ValueError, RecursionError) as err:
        raise WireError(f"not a netcomp message: {err}", payload) from None
    if not isinstance(data, list) or len(data) < 2 or data[0] != VERSION:
        raise WireError("not a netcomp message of version 1", payload)
    kind = data[1]
    if kind == "e" and len(data) == 8:
        _, _, origin, seq, name, args, kwargs, corr = data
        if (
            isinstance(origin, str)
            and type(seq) is int
            and isinstance(name, str)
            and isinstance(args, list)
            and isinstance(kwargs, dict)
            and all(isinstance(k, str) for k in kwargs)
            and type(corr) is int
        ):
            return EventMessage(origin, seq, name, tuple(args), kwargs, corr)
    elif kind == "r" and len(data) == 7:
        _, _, origin, seq, corr, ok, answer = data
        error_shaped = (
            isinstance(answer, list) and len(answer) == 2 and all(type(a) is str for a in answer)
        )
        if (
            isinstance(origin, str)
            and type(seq) is int
            and type(corr) is int
            and type(ok) is bool
            and (ok or error_shaped)
        ):
            return ReplyMessage(origin, seq, corr, ok, answer)
    raise WireError("a netcomp message with fields of the wrong kind", payload)
