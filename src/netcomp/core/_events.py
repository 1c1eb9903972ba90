"""Events: named messages with arguments, fired onto channels; and Values, their answers.

An event's name is its class name (``class read(Event)`` is handled as ``"read"``) unless the
class sets ``name``; :meth:`Event.create` makes one by name without a class. The class
switches ``success``, ``failure`` and ``complete`` ask for feedback events
(``<name>_success``, ``<name>_failure``, ``<name>_complete``) once the event is done.

Values: a handler's ``None`` is not a result; one result reads back as a scalar, several as
a list in handler order. A handler that returns another event's :class:`Value` chains it:
the outer value waits for the inner one and takes its result (or error). ``result`` becomes
true exactly once, when the event and its coroutine or generator handlers have all
finished. An event and its value are one concept in two objects; they live here together.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Iterator
from typing import Any, ClassVar
from weakref import ref

from ._future import Future

__all__ = [
    "Event",
    "Value",
    "exception",
    "prepare_unregister",
    "registered",
    "signal",
    "started",
    "stopped",
    "unregistered",
]


class _Switch:
    """A feedback switch of :class:`Event` (``success``, ``failure``, ``complete``): set on
    the class (``success = True`` in its body) or on an instance (before it is fired, or by
    a handler while it is dispatched). Reads give the setting, on the class too. Setting it
    on an instance also sets the event's ``_extras``, the one flag dispatch reads."""

    def __init__(self, name: str, doc: str) -> None:
        self.attr = f"_{name}"
        self.__doc__ = doc

    def __get__(self, event: Event | None, cls: type[Event] | None = None) -> bool:
        owner: Any = cls if event is None else event
        return getattr(owner, self.attr)  # type: ignore[no-any-return]

    def __set__(self, event: Event, on: bool) -> None:
        setattr(event, self.attr, on)
        if on:
            event._extras = True


_SWITCHES = ("success", "failure", "complete")


def _not_an_event(thing: Any) -> str:
    """The message of the TypeError ``fire()`` raises for ``thing``, not an Event."""
    if isinstance(thing, _EventType):
        return (
            f"fire() takes an Event, not the class {thing.__name__} (an _EventType): "
            f"fire an instance, {thing.__name__}(...)"
        )
    return (
        f"fire() takes an Event, not {type(thing).__name__} {thing!r}; "
        "use Event.create(name, ...) to fire by name"
    )


class _EventType(type):
    """Event's metaclass: a feedback switch set on a class after its creation
    (``task.complete = True``, as circuits programs do) is kept where the switch reads it,
    and ``_extras`` (the one flag dispatch reads) is recomputed for that class and every
    subclass of it. A class has no ``value``: setting one is how ``fire()`` finds out it
    was given a class instead of an event (it checks no type itself, see its comments)."""

    def __setattr__(cls, name: str, value: Any) -> None:
        if name == "value":
            raise TypeError(_not_an_event(cls))
        if name in _SWITCHES and not isinstance(value, _Switch):
            type.__setattr__(cls, f"_{name}", value)
            _recompute_extras(cls)
            return
        type.__setattr__(cls, name, value)


def _recompute_extras(cls: type) -> None:
    on = cls._success or cls._failure or cls._complete  # type: ignore[attr-defined]
    type.__setattr__(cls, "_extras", bool(on))
    subclasses: list[type] = cls.__subclasses__()
    for sub in subclasses:
        _recompute_extras(sub)


class Event(metaclass=_EventType):
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
    success_channels: ClassVar[tuple[Any, ...]] = ()
    failure_channels: ClassVar[tuple[Any, ...]] = ()
    complete_channels: ClassVar[tuple[Any, ...]] = ()
    #: A notification tells what happened and asks nothing: ``started``, ``registered``,
    #: feedback events, ... Nobody handling one is normal (a Debugger does not flag it).
    notification: ClassVar[bool] = False
    #: A failure event (net's ``error``, ``unreachable``) names the logger that reports it,
    #: with :meth:`describe`, when no handler takes it by name; at this level (a number of
    #: the ``logging`` module; a failure event may make it depend on its arguments).
    unhandled_logger: ClassVar[str | None] = None
    unhandled_level: int = 30  # logging.WARNING

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
    #: Set only on events fired with ``fire(..., priority=)`` (see ``Manager.fire``).
    _priority: float = 0
    #: A subclass's ``notify = ...`` class setting (see :attr:`notify`).
    _notify_default: ClassVar[bool | str] = False
    # The feedback switches (``success`` etc. below keep them here, class or instance).
    _success: bool = False
    _failure: bool = False
    _complete: bool = False
    #: True once anything beyond plain dispatch may apply: a feedback switch, completion
    #: tracking, ``_on_complete`` hooks, ``cancel()``. Dispatch reads this one attribute per
    #: event instead of five (reads on events of many classes are CPython's slow
    #: attribute path); when it is true, the real settings are read.
    _extras: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__
        channels = cls.__dict__.get("channels")
        if isinstance(channels, list):
            cls.channels = tuple(channels)  # channels are a dispatch key: hashable
        notify = cls.__dict__.get("notify")
        if notify is not None and not isinstance(notify, property):
            _notify_by_default(cls, notify)
        for switch in _SWITCHES:
            setting = cls.__dict__.get(switch)
            if setting is not None and not isinstance(setting, _Switch):
                type.__delattr__(cls, switch)  # Event's switch serves it
                type.__setattr__(cls, f"_{switch}", setting)
        _recompute_extras(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    @classmethod
    def create(cls, _name: str, *args: Any, **kwargs: Any) -> Event:
        """Make an event named ``_name`` without declaring a class."""
        if not isinstance(_name, str) or not _name:
            raise TypeError(f"Event.create() needs a non-empty event name, got {_name!r}")
        event = cls(*args, **kwargs)
        event.name = _name
        return event

    def child(self, suffix: str, *args: Any, **kwargs: Any) -> Event:
        """A new plain event named ``<name>_<suffix>`` (circuits' feedback naming); it
        keeps none of this event's class settings (``success``, ``complete``, ...)."""
        return Event.create(f"{self.name}_{suffix}", *args, **kwargs)

    success = _Switch(
        "success", "Fire ``<name>_success(event, value)`` once the event is done without errors."
    )
    failure = _Switch(
        "failure", "Fire ``<name>_failure(event, error)`` once the event is done with an error."
    )
    complete = _Switch(
        "complete",
        "Fire ``<name>_complete(event, value)`` once the event and every event its handlers "
        "fired (transitively) are done.",
    )

    def _when_complete(self, hook: Callable[[], Any]) -> None:
        """Call ``hook()`` once this event and what its handlers fired are all done
        (internal lifecycle use: unregistering, stopping). Before it is fired."""
        hooks = self._on_complete
        if hooks is None:
            self._on_complete = [hook]
        else:
            hooks.append(hook)
        self._extras = True

    @property
    def pending(self) -> int:
        """How many of its coroutine, generator or chained handlers are still running."""
        return self._pending

    @property
    def waitingHandlers(self) -> int:
        """circuits' name for :attr:`pending`."""
        return self._pending

    @property
    def notify(self) -> bool | str:
        """Fire ``<name>_value_changed(value)`` each time a handler adds a result (a
        string: fire it on that channel). Settable before firing: it is a setting of
        this event's :class:`Value` (``value.notify``), kept when the event is fired
        again."""
        value = self.value
        return False if value is None else value.notify

    @notify.setter
    def notify(self, notify: bool | str) -> None:
        value = self.value
        if value is None:
            # Not fired yet: the setting waits on a Value of its own until fire() hands
            # it to the real one (fire() looks at event.value anyway: this costs an
            # event that never asks for it nothing).
            value = self.value = Value(self)
        value.notify = notify

    @property
    def answered(self) -> bool:
        """Whether a handler already answered this event: returned a result, or is still
        working on one (a coroutine, generator or chained handler). A fallback handler (a
        dispatcher, a default page) checks it and leaves an answered event alone."""
        value = self.value
        return bool(self._pending) or (value is not None and value._count > 0)

    def describe(self) -> str:
        """One line for a log: what happened, where and why (failure events say more)."""
        return f"{self!r} was not handled"

    def stop(self) -> None:
        """End dispatch of this event after the handler that is running now."""
        self.stopped = True

    def cancel(self) -> None:
        """Drop the event if no handler has run yet; otherwise behave like :meth:`stop`.

        A cancelled event's value completes with :class:`EventCancelled` as its error.
        """
        self.cancelled = True
        self.stopped = True
        self._extras = True

    def __getitem__(self, key: int | str) -> Any:
        """``event[0]`` is the first argument, ``event["key"]`` a keyword argument."""
        if isinstance(key, int):
            return self.args[key]
        if isinstance(key, str):
            return self.kwargs[key]
        raise TypeError(f"event[...] takes an int (argument) or a str (keyword), not {key!r}")

    def __setitem__(self, key: int | str, item: Any) -> None:
        """``event[0] = x`` replaces the first argument, ``event["key"] = x`` sets a
        keyword argument (before the event is dispatched, or for the handlers after)."""
        if isinstance(key, int):
            args = list(self.args)
            args[key] = item
            self.args = tuple(args)
        elif isinstance(key, str):
            self.kwargs[key] = item
        else:
            raise TypeError(f"event[...] takes an int (argument) or a str (keyword), not {key!r}")

    def __repr__(self) -> str:
        channels = ",".join(_channel_name(c) for c in self.channels) or "-"
        parts = [repr(a) for a in self.args]
        parts += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        text = ", ".join(parts)
        if len(text) > 200:
            text = text[:197] + "..."
        return f"<{self.name}[{channels}] ({text})>"


def _notify_by_default(cls: type[Event], notify: bool | str) -> None:
    """``class e(Event): notify = True``: every instance asks for ``value_changed``
    (only the classes that say so, and their subclasses, pay for it, at creation)."""
    del cls.notify  # Event's property serves it again
    cls._notify_default = notify
    if any("_notify_default" in vars(base) for base in cls.__mro__[1:] if base is not Event):
        return  # a base class already set its __init__ up
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self: Event, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        notify = type(self)._notify_default
        if notify and self.value is None:
            self.notify = notify

    cls.__init__ = __init__  # type: ignore[method-assign]


def _channel_name(channel: Any) -> str:
    if isinstance(channel, str):
        return channel
    return f"{type(channel).__name__}@{id(channel):x}"


class registered(Event):
    """``registered(component, manager)``: ``component`` joined the tree under ``manager``."""

    notification = True


class unregistered(Event):
    """``unregistered(component, manager)``: ``component`` left ``manager``'s tree."""

    notification = True


class prepare_unregister(Event):
    """``prepare_unregister(component)``: ``component`` is about to leave; tidy up now."""

    notification = True
    complete = True

    def in_subtree(self, component: Any) -> bool:
        """Whether ``component`` is in the subtree that is leaving (the component given
        to this event, or one of its descendants)."""
        leaving = self.args[0]
        while component is not None:
            if component is leaving:
                return True
            component = component.parent
        return False


class started(Event):
    """``started(manager)``: the loop of ``manager`` has started."""

    notification = True


class stopped(Event):
    """``stopped(manager)``: ``manager`` is stopping; the loop exits once this is handled."""

    notification = True


class signal(Event):
    """``signal(signo, frame)``: a POSIX signal arrived. Stop the event to keep running."""

    notification = True


class exception(Event):
    """``exception(type, value, traceback, handler=, fevent=)``: a handler raised."""

    notification = True


_UNSET: Any = object()


class Value:
    """The answer to a fired event: ``value``, ``errors``/``exception``, ``result`` (done).

    Awaitable inside a handler coroutine: ``await value`` waits until every handler is done,
    then returns :attr:`value` or raises the handler's exception. ``event`` is the event
    this value answers.
    """

    # No __slots__: the class-level defaults below make a new Value cost two stores.
    _value: Any = None
    _count = 0
    errors = False
    exception: BaseException | None = None
    result = False
    notify: bool | str = False
    #: False once dispatch found no handler taking the event by name (catch-all
    #: handlers, such as a Debugger's or a Recorder's, do not count).
    handled = True
    #: True while a caller awaits this value (``await self.call(...)``): a handler's
    #: error is then the caller's to handle, and is not logged as unhandled.
    observed = False
    #: ``None``, one callback (the usual case: a connection waiting for its ``read``; no
    #: list per event), or a list of them.
    _callbacks: Callable[[Value], Any] | list[Callable[[Value], Any]] | None = None
    #: Where the event was fired (set with it: dispatch reads it here, not on the event).
    _channels: tuple[Any, ...] = ()

    def __init__(self, event: Event | None = None, manager: Any = None) -> None:
        self._event: Event | ref[Event] | None = event
        #: The root manager of the tree the event was fired in (``manager.loop`` hears
        #: of results when ``notify`` is set).
        self.manager = manager

    @property
    def event(self) -> Event | None:
        """The event this value answers.

        Once the value is done it holds the event weakly, so that the two do not keep each
        other alive (a cycle only the garbage collector frees): keep a reference to the
        event if you need it after that.
        """
        event = self._event
        if isinstance(event, ref):
            return event()
        return event

    @property
    def value(self) -> Any:
        """The handlers' results: ``None`` (none), the result (one) or a list (several)."""
        return self._value

    @value.setter
    def value(self, result: Any) -> None:
        self.add(result)

    @property
    def done(self) -> bool:
        """Same as :attr:`result`: every handler of the event has finished."""
        return self.result

    def add(self, result: Any) -> None:
        """Record one handler's result (``None`` is ignored)."""
        if result is None:
            return
        count = self._count
        if count == 0:
            self._value = result
        elif count == 1:
            self._value = [self._value, result]
        else:
            self._value.append(result)
        self._count = count + 1
        if self.notify and self.manager is not None and self._event is not None:
            self.manager.loop.value_changed(self)

    def set_error(self, error: BaseException) -> None:
        """Record a handler's exception (the first one is kept in :attr:`exception`)."""
        if not self.errors:
            self.errors = True
            self.exception = error

    def add_done_callback(self, callback: Callable[[Value], Any]) -> None:
        """Call ``callback(self)`` once the value is done (at once if it already is)."""
        if self.result:
            callback(self)
            return
        callbacks = self._callbacks
        if callbacks is None:
            self._callbacks = callback
        elif isinstance(callbacks, list):
            callbacks.append(callback)
        else:
            self._callbacks = [callbacks, callback]

    def remove_done_callback(self, callback: Callable[[Value], Any]) -> None:
        """Forget a callback given to :meth:`add_done_callback`."""
        callbacks = self._callbacks
        if isinstance(callbacks, list):
            if callback in callbacks:
                callbacks.remove(callback)
        elif callbacks is not None and callbacks == callback:
            self._callbacks = None

    def _complete(self) -> None:
        self.result = True
        event = self._event
        if event is not None and event.__class__ is not ref:
            self._event = ref(event)  # type: ignore[arg-type]
        callbacks = self._callbacks
        if callbacks is not None:
            self._callbacks = None
            if isinstance(callbacks, list):
                for callback in callbacks:
                    callback(self)
            else:
                callbacks(self)

    def get(self) -> Any:
        """The result, raising the handler's exception if one raised. Only once done."""
        if not self.result:
            raise RuntimeError(f"{self!r} is not done yet")
        if self.exception is not None:
            raise self.exception
        return self._value

    def results(self) -> list[Any]:
        """The handlers' results as a list, one per handler that returned one (``value``
        is the same as a scalar when there is one)."""
        count = self._count
        if count == 0:
            return []
        if count == 1:
            return [self._value]
        return list(self._value)

    def __iter__(self) -> Iterator[Any]:
        """The results (see :meth:`results`); for a failed event, circuits' shape of its
        error: ``etype, evalue, traceback = value``."""
        error = self.exception
        if error is not None:
            return iter((type(error), error, error.__traceback__))
        return iter(self.results())

    def __contains__(self, item: Any) -> bool:
        """Whether a handler returned ``item``."""
        return item in self.results()

    def __getitem__(self, index: int) -> Any:
        """The ``index``-th result (see :meth:`results`)."""
        return self.results()[index]

    def __str__(self) -> str:
        """``str()`` of :attr:`value` (the result, or the list of results)."""
        return str(self._value)

    def __await__(self) -> Generator[Any, Any, Any]:
        if not self.result:
            future = Future()
            self.add_done_callback(lambda _v: future.set_result(None))
            yield future
        return self.get()

    def __repr__(self) -> str:
        state = "done" if self.result else "pending"
        if self.errors:
            state += f", error={self.exception!r}"
        name = self.event.name if self.event is not None else "-"
        return f"<Value {name} {state} value={self._value!r}>"


class _FiredValue(Value):
    """The Value ``fire()`` makes: a :class:`Value` in every way, made by a bare class
    call with its fields stored after. Its ``__init__`` is object's, which CPython calls
    directly (no Python frame, no argument tuple): 240 fewer instructions per ping-pong
    event (of about 12,800, callgrind) than ``object.__new__(Value)``."""

    __init__ = object.__init__
