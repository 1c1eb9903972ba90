"""The wire: what bridged events and replies look like on Redis, and which classes a
process agrees to rebuild from them.

Rules:
* A message is a codec's tag byte and an array (see ``_codec``). Version 2 (written):
  events ``[2, "e", origin, seq, event, event, ...]``, one or more, each event
  ``[name, args, kwargs, corr]``; a reply ``[2, "r", origin, seq, corr, ok, answer]``
  where ``answer`` is the value, or ``[error type, message]`` when ``ok`` is false.
  ``corr`` is 0 when nobody waits for an answer. ``seq`` counts the messages of one origin
  (duplicates are recognised by it). Version 1 (still read): one event
  ``[1, "e", origin, seq, name, args, kwargs, corr]``, replies as in version 2.
* The events of one loop turn on one broadcast channel travel as one message; a work-queue
  entry holds exactly one event.
* Only event classes registered with :meth:`EventTypes.allow` are rebuilt, by calling
  the class with the sender's arguments; anything else is a :class:`WireError` with the
  reason. Error classes too, with their message: builtin exception classes by name,
  others when both ends registered them (by class name), :class:`RemoteError` for the rest.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ..core import Event, NotHandled
from ..core import TimeoutError as NetcompTimeout
from ._codec import Codec, decode
from ._events import RemoteError, WireError

__all__ = [
    "EventBatch",
    "EventTypes",
    "ReplyMessage",
    "Writer",
    "event_bytes",
    "read_message",
    "reply_bytes",
]

VERSION = 2
_new_tuple = tuple.__new__

#: One event as read from the wire: ``[name, args, kwargs, corr]`` (args a list).
EventFields = list[Any]


class EventBatch(NamedTuple):
    """The events of one message, as read from the wire (checked: see :func:`read_message`)."""

    origin: str
    seq: int
    events: list[EventFields]


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

    def build(self, name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> Event:
        """The event ``name`` rebuilt from its arguments; :class:`WireError` if refused."""
        kind = self.events.get(name)
        if kind is None:
            raise WireError(f"event class {name!r} is not registered here (RedisBridge events=)")
        try:
            if kind is Event:
                return Event.create(name, *args, **kwargs)
            return kind(*args, **kwargs)
        except Exception as err:
            raise self.refused(kind, err) from None

    @staticmethod
    def refused(kind: type[Event], err: Exception) -> WireError:
        """The error of a class that refused the arguments it was sent."""
        return WireError(f"{kind.__qualname__} refused its arguments: {err!r}")

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


class Writer:
    """This process's messages, with one codec: events encoded one at a time (so that one
    that cannot cross is refused when it is sent), then put together into one message."""

    def __init__(self, codec: Codec, origin: str) -> None:
        self.codec = codec
        self.origin = origin
        self.seq = 0
        item: Callable[[Any], bytes] | None = getattr(codec, "encode_item", None)
        array: Callable[[list[bytes]], bytes] | None = getattr(codec, "array", None)
        if item is None or array is None:
            item = codec.encode  # a codec without them: decode the items, encode once more
            self._head: list[bytes] = []
        else:
            self._head = [item(VERSION), item("e"), item(origin)]  # the same in every message
        self.item: Callable[[Any], bytes] = item
        self._array = array

    def event(self, event: Event, corr: int) -> bytes:
        """One event, encoded for :meth:`events` (``TypeError`` when it cannot cross)."""
        return self.item([event.name, list(event.args), event.kwargs, corr])

    def one(self, event: Event, corr: int) -> bytes:
        """The message of one event (``TypeError`` when it cannot cross)."""
        fields = [event.name, list(event.args), event.kwargs, corr]
        self.seq += 1
        try:
            return self.codec.encode([VERSION, "e", self.origin, self.seq, fields])
        except TypeError:
            self.seq -= 1
            raise

    def events(self, items: list[bytes]) -> bytes:
        """The message of these encoded events (the next sequence number)."""
        self.seq += 1
        if self._head:
            assert self._array is not None
            return self._array([*self._head, self.item(self.seq), *items])
        codec = self.codec
        decoded = [codec.decode(item[1:]) for item in items]
        return codec.encode([VERSION, "e", self.origin, self.seq, *decoded])

    def reply(self, corr: int, ok: bool, answer: Any) -> bytes:
        """The message answering call ``corr`` (``TypeError`` when the answer cannot cross)."""
        self.seq += 1
        return self.codec.encode([VERSION, "r", self.origin, self.seq, corr, ok, answer])


def event_bytes(codec: Codec, origin: str, seq: int, event: Event, corr: int) -> bytes:
    """The message of one event (``TypeError`` when an argument cannot cross)."""
    writer = Writer(codec, origin)
    writer.seq = seq - 1
    return writer.events([writer.event(event, corr)])


def reply_bytes(codec: Codec, origin: str, seq: int, corr: int, ok: bool, answer: Any) -> bytes:
    """The message answering call ``corr``."""
    return codec.encode([VERSION, "r", origin, seq, corr, ok, answer])


def read_message(payload: Any) -> EventBatch | ReplyMessage:
    """Decode and check one message (version 1 or 2); :class:`WireError` says what is
    wrong with it. Every event of an :class:`EventBatch` is ``[name, args, kwargs, corr]``
    of the right types."""
    if type(payload) is not bytes:
        raise WireError(f"a message is bytes, got {type(payload).__name__}")
    try:
        data = decode(payload)
    except (ValueError, RecursionError) as err:
        raise WireError(f"not a netcomp message: {err}", payload) from None
    if type(data) is not list or len(data) < 4:
        if type(data) is list and len(data) >= 2 and data[0] in (1, 2) and type(data[0]) is int:
            raise WireError("a netcomp message with fields of the wrong kind", payload)
        raise WireError("not a netcomp message of version 1 or 2", payload)
    version, kind, origin, seq = data[0], data[1], data[2], data[3]
    if type(version) is not int or version not in (1, 2):
        raise WireError("not a netcomp message of version 1 or 2", payload)
    if type(origin) is str and type(seq) is int:
        if kind == "e":
            events = data[4:] if version == 2 else [data[4:]]
            for fields in events:
                if type(fields) is not list or len(fields) != 4:
                    break
                name, args, kwargs, corr = fields
                if (
                    type(name) is not str
                    or type(args) is not list
                    or type(kwargs) is not dict
                    or type(corr) is not int
                    or (kwargs and not all(type(key) is str for key in kwargs))
                ):
                    break
            else:
                if events:  # tuple.__new__: a named tuple's own __new__ is Python code
                    return _new_tuple(EventBatch, (origin, seq, events))
        elif kind == "r" and len(data) == 7:
            corr, ok, answer = data[4], data[5], data[6]
            error_shaped = (
                type(answer) is list and len(answer) == 2 and all(type(a) is str for a in answer)
            )
            if type(corr) is int and type(ok) is bool and (ok or error_shaped):
                return ReplyMessage(origin, seq, corr, ok, answer)
    raise WireError("a netcomp message with fields of the wrong kind", payload)
