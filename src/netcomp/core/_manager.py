"""The Manager: a node of a component tree; the tree's root owns the :class:`Loop`.

Rules (docs/architecture.md, "The tree"):
* ``parent``, ``root``, ``components`` and ``loop`` are the only state a node keeps for
  the framework: everything a tree has once (queue, registry, timers, selector, thread)
  lives in its root's :class:`Loop`. A user attribute of any other name is just that.
* Joining a tree (``register``) moves the newcomer's loop into the root's (``absorb``);
  leaving it (``unregister``) gives the subtree a new loop of its own. Each moved member
  then hears ``loop_changed()``; ``registered``/``unregistered`` events follow.
* ``fire()`` is safe from any thread; ``run``, ``stop``, ``tick``, ``flush``, ``start`` and
  ``join`` are thin entry points to the loop.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
import types
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from ._awaitables import Call, Wait
from ._dispatch import reset_event
from ._errors import RegistrationError
from ._events import (
    Event,
    Value,
    _FiredValue,
    _not_an_event,
    prepare_unregister,
    registered,
    unregistered,
)
from ._handlers import HandlerSpec, takes_event
from ._loop import Loop, current_loop
from ._observe import fire_hook
from ._registry import HandlerEntry

__all__ = ["TIMEOUT", "Manager", "current_manager"]

_MISSING: Any = object()
#: ``(channel,)`` tuples for string channels, made once: no tuple per fire(), and the
#: registry's plan cache finds the same tuple by identity. Bounded: names only, 4096 at most.
_one_channel: dict[Any, tuple[Any]] = {}
_ONE_CHANNEL_MAX = 4096


def _channels_of(channel: Any) -> tuple[Any]:
    channels = (channel,)
    if channel.__class__ is str and len(_one_channel) < _ONE_CHANNEL_MAX:
        _one_channel[channel] = channels
    return channels


#: What ``start(process=True, link=...)`` calls: it runs the tree in a forked child bridged
#: to ``link``'s tree and returns the parent's Bridge. ``netcomp.core._bridge`` sets it when
#: imported (the Bridge is a component, above this module, so it cannot be imported here).
process_linker: Callable[[Manager, Manager], Manager] | None = None

#: circuits' idle poll interval, in seconds (``circuits.core.manager.TIMEOUT``). netcomp
#: never polls: a loop sleeps until a descriptor, a timer or another thread wakes it, so
#: nothing in netcomp uses this. It is kept for programs (and circuits' test helpers) that
#: poll with it from their own threads.
TIMEOUT = 0.1


class _ClassOrInstance:
    """A method that works on the class (circuits' classmethod ``App.handles("x")``) and
    on an instance (which also counts handlers added at run time)."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.__doc__ = func.__doc__
        self.__name__ = func.__name__
        self.__wrapped__ = func

    def __get__(self, obj: Any, cls: type | None = None) -> Callable[..., Any]:
        return functools.partial(self.func, cls if obj is None else obj)


def _handler_names(owner: Any) -> list[str]:
    """The event names ``owner`` (a class, or a component) handles by name."""
    if isinstance(owner, type):
        specs = getattr(owner, "_handler_specs", ())
        groups = [spec.names for _attr, spec, _pass in specs]
    else:
        groups = [entry.names for entry in owner._own_entries()]
    names = dict.fromkeys(n for group in groups for n in group)
    return [n for n in names if n != "*" and not n.startswith("_")]


def current_manager() -> Manager | None:
    """The root manager whose loop runs on this thread (``None`` outside a loop)."""
    loop = current_loop()
    return None if loop is None else loop.root  # type: ignore[return-value]


class Manager:
    """A node of a component tree; the root one owns the tree's :class:`Loop`.

    ``channel`` (default ``"*"``) is where ``fire()`` sends events when given no channels.
    """

    channel: Any = "*"
    #: Seconds ``stop()`` waits for ``stopped`` handlers (and what they fire) to finish.
    stop_timeout: float = 5.0
    #: The root a register() from another thread was handed to (it runs on that loop).
    _registering: Manager | None = None

    def __init__(self, *, channel: Any = _MISSING) -> None:
        if channel is not _MISSING:
            self.channel = channel
        self.parent: Manager | None = None
        self.root: Manager = self
        self.components: list[Manager] = []
        self.loop: Loop = Loop()
        self.loop.root = self

    # ------------------------------------------------------------------ tree
    def walk(self) -> Iterator[Manager]:
        """This component and every descendant, parents before children."""
        yield self
        for child in list(self.components):
            yield from child.walk()

    def register(self, parent: Manager) -> Manager:
        """Join ``parent``'s tree; fires ``registered(self, parent)``. Returns ``self``."""
        if not isinstance(parent, Manager):
            raise TypeError(f"register() needs a Manager or component, not {parent!r}")
        if self.parent is parent:
            return self
        if self.parent is not None:
            raise RegistrationError(
                f"{self!r} is already registered to {self.parent!r}; unregister it first"
            )
        if parent is self or any(c is parent for c in self.walk()):
            raise RegistrationError(f"cannot register {self!r} into its own subtree {parent!r}")
        if self.loop.running:
            raise RegistrationError(f"{self!r} is running its own loop; stop it first")
        loop = parent.loop
        if loop._running and not loop.on_loop_thread():
            self._registering = parent.root  # so an unregister() from this side queues behind
            loop.call_soon_threadsafe(self.register, parent)
            return self
        self._attach(parent)
        self._registering = None
        loop.enqueue(registered(self, parent), _lifecycle_channels(self))
        return self

    def unregister(self) -> Manager:
        """Leave the tree: ``prepare_unregister(self)`` first, then ``unregistered``.

        While the loop runs, the component stays in the tree (and hears what is fired) until
        ``prepare_unregister`` and everything its handlers fire are complete. With no loop
        running it leaves at once and both events are queued on the old root's loop.
        """
        pending = self._registering  # read before parent: register() sets parent first
        parent = self.parent
        if parent is None:
            if pending is not None:
                loop = pending.loop
                if loop._running and not loop.on_loop_thread():
                    loop.call_soon_threadsafe(self.unregister)  # after the deferred register
            return self
        loop = self.loop
        if loop._running:
            if not loop.on_loop_thread():
                loop.call_soon_threadsafe(self.unregister)
                return self
            event = prepare_unregister(self)
            event._when_complete(lambda: self._finish_unregister(parent))
            loop.enqueue(event, ("*",))
        else:
            loop.enqueue(prepare_unregister(self), ("*",))
            self._finish_unregister(parent)
        return self

    def _finish_unregister(self, parent: Manager) -> None:
        if self.parent is not parent:
            return
        old_loop = self.loop
        self._detach()
        old_loop.enqueue(unregistered(self, parent), _lifecycle_channels(self))

    def __len__(self) -> int:
        """How many events are queued on this tree's loop (circuits' ``len(manager)``:
        ``while len(app): app.flush()``)."""
        return len(self.loop.queue)

    def __bool__(self) -> bool:
        """Always true: a manager with nothing queued is still there."""
        return True

    def __contains__(self, item: object) -> bool:
        """Whether ``item`` is one of this manager's children, or a class one of them is
        an instance of (``child in manager``, ``App in manager``), as in circuits."""
        if isinstance(item, type):
            return any(isinstance(child, item) for child in self.components)
        return any(child is item for child in self.components)

    def __add__(self, other: Manager) -> Manager:
        other.register(self)
        return self

    __iadd__ = __add__

    def __sub__(self, other: Manager) -> Manager:
        if other.parent is not self:
            raise RegistrationError(f"{other!r} is not a child of {self!r}")
        other.unregister()
        return self

    __isub__ = __sub__

    def _attach(self, parent: Manager) -> None:
        new_root, new_loop = parent.root, parent.loop
        old_loop = self.loop  # a component that is not registered is its own root
        self.parent = parent
        parent.components.append(self)
        members = list(self.walk())
        for member in members:
            member.root = new_root
            member.loop = new_loop
        new_loop.absorb(old_loop)
        for member in members:
            member.loop_changed()

    def _detach(self) -> None:
        parent = self.parent
        assert parent is not None
        old_loop = self.loop
        parent.components.remove(self)
        self.parent = None
        members = list(self.walk())
        ids = {id(member) for member in members}
        new_loop = Loop(old_loop.clock)
        new_loop.root = self
        for member in members:
            member.root = self
            member.loop = new_loop
        for entry in old_loop.registry.entries():
            if id(entry.component) in ids:
                old_loop.registry.remove(entry)
                new_loop.registry.add(entry)
        for member in members:
            member.loop_changed()

    # ----------------------------------------------------------------- hooks
    def loop_changed(self) -> None:
        """Hook: this component moved to another tree's loop (``self.loop``).

        Called on the loop thread for each component of a subtree that joined or left a
        tree. Watches and pending timers follow a tree that *joins* another by themselves;
        a component that owns descriptors or timers re-arms them on ``self.loop`` here
        when its subtree *leaves* one. Not a handler: a ``Component`` may not use the name.
        """

    def loop_ended(self) -> None:
        """Hook: the tree's loop has ended (close what is still open here)."""

    # -------------------------------------------------------------- handlers
    def _add_entry(self, entry: HandlerEntry) -> None:
        self.loop.registry.add(entry)

    def _own_entries(self) -> list[HandlerEntry]:
        return [e for e in self.loop.registry.entries() if e.component is self]

    @_ClassOrInstance
    def handlers(owner: Any, name: str | None = None, *channels: Hashable) -> list[Any]:
        """With an event ``name``: the callables an event of that name fired on
        ``channels`` (default: this component's channel) would run in this tree, in
        order.

        Without: this component's own handlers, in registration order (those added at run
        time too); called on a class, as circuits' ``App.handlers()`` is, the class's
        handler functions.
        """
        if name is None:
            if isinstance(owner, type):
                specs = getattr(owner, "_handler_specs", ())
                return [getattr(owner, attr) for attr, _spec, _pass in specs]
            return [entry.fn for entry in owner._own_entries()]
        if isinstance(owner, type):
            raise TypeError("handlers(name, ...) looks in a tree: call it on a component")
        channels = channels or (owner.channel,)
        return [e.fn for e in owner.loop.registry.lookup(name, tuple(channels))[0]]

    @_ClassOrInstance
    def handles(owner: Any, *names: str) -> bool:
        """Whether this component (or class) handles every one of the event ``names``
        (circuits' ``App.handles("a", "b")``)."""
        handled = set(_handler_names(owner))
        return all(name in handled for name in names)

    def add_handler(
        self,
        func: Callable[..., Any],
        *names: str,
        channel: Any = None,
        priority: float = 0,
    ) -> Callable[..., Any]:
        """Add ``func`` as a handler of ``names`` on this component at run time.

        Without ``names``, a function decorated with ``@handler`` keeps its own settings and
        any other function handles the event of its ``__name__``. Safe from any thread:
        once it returns, events dispatched from then on see the handler.
        """
        spec: HandlerSpec | None = getattr(func, "_netcomp_handler", None)
        if names:
            spec = HandlerSpec(tuple(names), channel, priority)
        elif spec is None:
            spec = HandlerSpec((func.__name__,), channel, priority)
        self._add_entry(
            HandlerEntry(
                spec.names, func, self, spec.channel, spec.priority, takes_event(func, True)
            )
        )
        return func

    def remove_handler(self, func: Callable[..., Any], *names: str) -> None:
        """Remove a handler added with :meth:`add_handler` (or bound at construction);
        with ``names``, only for those events. Safe from any thread."""
        registry = self.loop.registry
        for entry in self._own_entries():
            if entry.fn == func and (not names or set(names) & set(entry.names)):
                registry.remove(entry, names)

    def addHandler(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """circuits' ``addHandler(f)``: add ``f`` (marked with ``@handler(...)``, else
        handling the event of its name) as a handler of this component. A plain function
        is bound to the component first, so it takes ``self``. Returns what was added
        (the bound method), for :meth:`removeHandler`. Safe from any thread."""
        method = types.MethodType(func, self) if inspect.isfunction(func) else func
        return self.add_handler(method)

    def removeHandler(self, method: Callable[..., Any], event: str | None = None) -> None:
        """circuits' ``removeHandler(method, event=None)``: remove a handler that
        :meth:`addHandler` returned, for every event it handles or only for ``event``."""
        if event is None:
            self.remove_handler(method)
        else:
            self.remove_handler(method, event)

    # ------------------------------------------------------------------ fire
    def fire(self, event: Event, *channels: Hashable, priority: float | None = None) -> Value:
        """Queue ``event`` on ``channels`` (default: the event's, else this component's).

        Returns the event's :class:`Value`. Safe to call from any thread.

        ``priority`` (circuits' meaning): before the next batch, queued events are
        sorted by priority, **lowest first**, in firing order among equals (events fired
        without one count as 0). Note that this is the reverse of handler priorities,
        where the highest runs first.
        """
        # No type check up front (two type() calls were 2 % of a ping-pong event): what is
        # not an event fails the reads below (AttributeError), an Event class fails the
        # store of ``value`` (its metaclass refuses it) before anything else is stored,
        # and a look-alike with both attributes is refused by dispatch. A TypeError each.
        loop = self.loop
        try:
            if not channels:
                channels = event.channels
                if not channels:
                    channel = self.channel
                    try:
                        channels = _one_channel[channel]
                    except (KeyError, TypeError):
                        channels = _channels_of(channel)
            if event.value is not None:
                value = event.value = reset_event(event, loop.root)
            else:
                # Value(event, loop.root) without its __init__ frame (see _FiredValue):
                # the same stores, cheaper (every event pays this).
                value = _FiredValue()
                value._event = event
                value.manager = loop.root
                value._callbacks = None  # read once per event: an instance attribute reads faster
                event.value = value
        except AttributeError:
            raise TypeError(_not_an_event(event)) from None
        value._channels = event.channels = channels
        if loop.tracking and threading.get_ident() == loop._thread_id:
            current = loop.current
            assert current is not None
            event._cause = current
            current._effects += 1
            event._tracked = event._extras = True
            event._effects = 1
        # Else a ``complete`` event (or one with completion hooks) starts being tracked
        # when its dispatch begins: reading its switches here would cost every event.
        loop.queue.append(value)
        if loop._sleeping:
            loop._wake()
        if priority is not None:
            loop.prioritize(event, priority)
        return value

    def call(self, event: Event, *channels: Hashable, timeout: float | None = None) -> Call:
        """Awaitable: fire ``event`` and return its result (re-raising a handler's error)."""
        if not isinstance(event, Event):
            raise TypeError(f"call() takes an Event, not {type(event).__name__} {event!r}")
        return Call(self, event, channels, timeout)

    def wait(self, event: str | Event, *channels: Hashable, timeout: float | None = None) -> Wait:
        """Awaitable: until an event of that name (or that Event) is done; returns it."""
        return Wait(self, event, channels, timeout)

    # ------------------------------------------------------------------ loop
    @property
    def running(self) -> bool:
        """Whether this tree's loop is running (in this process, thread or child process)."""
        return self.loop.running

    def tick(self, timeout: float | None = 0) -> None:
        """Run one loop pass; when idle, wait for timers or a wake-up up to ``timeout`` s."""
        self.loop.tick(timeout)

    def flush(self, limit: int = 100_000) -> None:
        """Dispatch queued events and callbacks, and what they fire, until none are left.

        Does not wait for timers. ``limit`` bounds the number of passes (events that fire
        each other forever would otherwise never let it return).
        """
        self.loop.flush(limit)

    def run(self, *, gc_freeze: bool = True) -> Any:
        """Run the loop in this thread until ``stop()``; returns the code given to
        ``stop(code)``, 0 when it was given none.

        Fires ``started(manager)`` first. In the main thread, SIGINT and SIGTERM fire
        ``signal`` and stop the manager gracefully unless a handler stops that event; a
        second signal while it stops (or while a handler blocks the loop) raises
        ``KeyboardInterrupt`` out of ``run()``: a forced exit.

        ``gc_freeze`` (main thread only): once ``started`` is dispatched, the loop collects
        garbage once and moves every object alive then (modules, classes, the tree) into
        the collector's permanent generation, and gives them back when ``run()`` returns;
        full collections while serving then walk only what was made since, instead of
        pausing every connection for milliseconds. ``gc_freeze=False`` leaves the
        collector alone, as does a program that froze objects itself.
        """
        if self.parent is not None:
            raise RuntimeError(f"run() the root of the tree ({self.root!r}), not {self!r}")
        return self.loop.run(gc_freeze=gc_freeze)

    def stop(self, code: Any = None) -> None:
        """Stop the loop gracefully: ``stopped`` is fired and handled, then ``run()`` returns.

        Safe from any thread. ``code`` becomes ``run()``'s return value. For a tree started
        with ``start(process=True)``, the parent's ``stop()`` sends the child SIGTERM (a
        graceful stop); the child's exit status is the code its own ``stop()`` was given.
        """
        self.loop.stop(code)

    def start(
        self, process: bool = False, link: Manager | None = None
    ) -> tuple[Any, Manager | None]:
        """Run the loop in a new thread (or, with ``process=True``, a forked child process).

        Returns ``(thread_or_process, bridge)``, as circuits does. ``link=other`` (with
        ``process=True``) bridges the child's tree to ``other``'s tree: a ``Bridge`` in
        each, so ``ipc`` events cross and their answers come back (``netcomp.core.bridge``).
        The parent's Bridge, registered to ``other``, is the second item (else ``None``).

        ``process=True`` refuses to fork while other threads run (unsafe, and deprecated
        from Python 3.12): start it before any thread.
        """
        if self.parent is not None:
            raise RuntimeError(f"start() the root of the tree ({self.root!r}), not {self!r}")
        if link is not None:
            if not process:
                raise ValueError(
                    "link= bridges a tree running in a child process: "
                    "use start(process=True, link=...)"
                )
            assert process_linker is not None  # set when netcomp.core is imported
            bridge = process_linker(self, link)
            return self.loop.process, bridge
        self.loop.start(process)
        return (self.loop.process if process else self.loop.thread), None

    def join(self, timeout: float | None = None) -> Any:
        """Wait for a loop started with :meth:`start` to end; returns its exit code."""
        return self.loop.join(timeout)

    # ----------------------------------------------------------------- repr
    def __repr__(self) -> str:
        channel = self.channel
        loop = self.loop
        state = "R" if loop.running else "S"
        queued = len(loop.queue)
        thread = loop.thread if loop.running and loop.thread is not None else None
        name = (thread or threading.current_thread()).name  # where it runs, or would
        return (
            f"<{type(self).__name__}/{channel} {os.getpid()}:{name} (queued={queued}) [{state}]>"
        )


def _lifecycle_channels(component: Manager) -> tuple[Any, ...]:
    """Where ``registered``/``unregistered`` of ``component`` are fired: ``"*"`` (every
    handler hears them), and the component's own channel too, as circuits named it there
    (``event.channels`` says whose event it is)."""
    channel = getattr(component, "channel", "*")
    if channel == "*" or channel is None or not isinstance(channel, (str, int, tuple)):
        return ("*",)
    return ("*", channel)


_plain_fire = Manager.fire


def _observed_fire(
    self: Manager, event: Event, *channels: Hashable, priority: float | None = None
) -> Value:
    # Manager.fire while some loop in the process is observed (docs/architecture.md,
    # "Observing a loop"): tell this loop's observers, then fire as usual.
    observer = self.loop.observer
    if observer is not None and isinstance(event, Event):
        observer.fired(self, event)
    return _plain_fire(self, event, *channels, priority=priority)


_observed_fire.__name__ = "fire"
_observed_fire.__qualname__ = "Manager.fire"
_observed_fire.__doc__ = _plain_fire.__doc__
fire_hook.install(Manager, _plain_fire, _observed_fire)
