"""Events: named messages with arguments, fired onto channels.

An event's name is its class name (``class read(Event)`` is handled as ``"read"``) unless the
class sets ``name``; :meth:`Event.create` makes one by name without a class. The class
switches ``success``, ``failure`` and ``complete`` ask for feedback events
(``<name>_success``, ``<name>_failure``, ``<name>_complete``) once the event is done.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ._values import Value

__all__ = [
    "Event",
    "exception",
    "prepare_unregister",
    "registered",
    "signal",
    "started",
    "stopped",
    "unregistered",
]


class Event:
    """A message: ``name``, ``args``, ``kwargs``; fired onto ``channels``; answered by ``value``.

    Subclass it to declare an event type (the class name is the event name) or use
    :meth:`create`. Class attributes:

    * ``channels``: default channels when ``fire()`` is given none;
    * ``success`` / ``failure`` / ``complete``: fire feedback events when done;
    * ``success_channels`` / ``failure_channels`` / ``complete_channels``: where to send them
      (default: the event's own channels).
    """

    name: str = "Event"
    channels: tuple[Any, ...] = ()
    success: bool = False
    failure: bool = False
    complete: bool = False
    success_channels: ClassVar[tuple[Any, ...]] = ()
    failure_channels: ClassVar[tuple[Any, ...]] = ()
    complete_channels: ClassVar[tuple[Any, ...]] = ()

    # Dispatch state. Class-level defaults keep creating an event cheap: an instance only
    # stores what differs (the Manager resets these when an event is fired again).
    value: Value | None = None
    stopped: bool = False
    cancelled: bool = False
    _pending: int = 0
    _effects: int = 0
    _cause: Event | None = None
    _tracked: bool = False
    _on_complete: list[Any] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs
        self.stopped = False  # read after every handler: an instance attribute is faster

    @classmethod
    def create(cls, _name: str, *args: Any, **kwargs: Any) -> Event:
        """Make an event named ``_name`` without declaring a class."""
        if not isinstance(_name, str) or not _name:
            raise TypeError(f"Event.create() needs a non-empty event name, got {_name!r}")
        event = cls(*args, **kwargs)
        event.name = _name
        return event

    @property
    def pending(self) -> int:
        """How many of its coroutine, generator or chained handlers are still running."""
        return self._pending

    @property
    def answered(self) -> bool:
        """Whether a handler already answered this event: returned a result, or is still
        working on one (a coroutine, generator or chained handler). A fallback handler (a
        dispatcher, a default page) checks it and leaves an answered event alone."""
        value = self.value
        return bool(self._pending) or (value is not None and value._count > 0)

    def stop(self) -> None:
        """End dispatch of this event after the handler that is running now."""
        self.stopped = True

    def cancel(self) -> None:
        """Drop the event if no handler has run yet; otherwise behave like :meth:`stop`.

        A cancelled event's value completes with :class:`EventCancelled` as its error.
        """
        self.cancelled = True
        self.stopped = True

    def __getitem__(self, key: int | str) -> Any:
        """``event[0]`` is the first argument, ``event["key"]`` a keyword argument."""
        if isinstance(key, int):
            return self.args[key]
        return self.kwargs[key]

    def __repr__(self) -> str:
        channels = ",".join(_channel_name(c) for c in self.channels) or "-"
        parts = [repr(a) for a in self.args]
        parts += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        text = ", ".join(parts)
        if len(text) > 200:
            text = text[:197] + "..."
        return f"<{self.name}[{channels}] ({text})>"


def _channel_name(channel: Any) -> str:
    if isinstance(channel, str):
        return channel
    return f"{type(channel).__name__}@{id(channel):x}"


class registered(Event):
    """``registered(component, manager)``: ``component`` joined the tree under ``manager``."""


class unregistered(Event):
    """``unregistered(component, manager)``: ``component`` left ``manager``'s tree."""


class prepare_unregister(Event):
    """``prepare_unregister(component)``: ``component`` is about to leave; tidy up now."""

    complete = True


class started(Event):
    """``started(manager)``: the loop of ``manager`` has started."""


class stopped(Event):
    """``stopped(manager)``: ``manager`` is stopping; the loop exits once this is handled."""


class signal(Event):
    """``signal(signo, frame)``: a POSIX signal arrived. Stop the event to keep running."""


class exception(Event):
    """``exception(type, value, traceback, handler=, fevent=)``: a handler raised."""
