"""Components: managers whose methods handle events.

Rules: ``BaseComponent`` binds only methods marked ``@handler``; ``Component`` also binds
every public method by its own name (the circuits idiom), except the framework's own API and
methods marked ``@handler(False)``. Handlers are collected once per class, walking the MRO
from the most basic class, so subclasses inherit handlers and a redefinition replaces the
inherited one of the same attribute name; ``override=True`` also hides inherited handlers of
the same event names under other attribute names. ``init()`` is the constructor hook.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar

from ._handlers import HandlerSpec, takes_event
from ._manager import Manager
from ._registry import HandlerEntry

__all__ = ["BaseComponent", "Component"]

_MISSING: Any = object()
# Per-component attributes the loop relies on; a subclass that assigns one breaks the loop,
# so BaseComponent checks init() left them alone.
_LOOP_STATE = (
    "parent",
    "root",
    "components",
    "_entries",
    "_registry",
    "_queue",
    "_ready",
    "_timers",
    "_timer_seq",
    "_waiters",
    "_current",
    "_in_dispatch",
    "_running",
    "_stopping",
    "_sleeping",
    "_thread_id",
    "_exit_code",
    "_wakeup",
    "_selector",
    "_io_count",
    "_thread",
    "_process",
)


def _accepts(func: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _reserved_names() -> frozenset[str]:
    names: set[str] = set()
    for klass in _FRAMEWORK:
        names.update(klass.__dict__)
    return frozenset(names)


_FRAMEWORK: list[type] = [object, Manager]
_RESERVED: frozenset[str] | None = None


def _collect_specs(cls: type) -> tuple[tuple[str, HandlerSpec, bool], ...]:
    global _RESERVED
    implicit = getattr(cls, "_implicit_handlers", False)
    # attribute name -> (defining class, spec, function)
    found: dict[str, tuple[type, HandlerSpec, Any]] = {}
    for klass in reversed(cls.__mro__):
        if klass in _FRAMEWORK:
            continue
        for attr, obj in klass.__dict__.items():
            spec = getattr(obj, "_netcomp_handler", None)
            if isinstance(spec, HandlerSpec):
                if spec.enabled:
                    found[attr] = (klass, spec, obj)
                else:
                    found.pop(attr, None)
                continue
            if implicit and inspect.isfunction(obj) and not attr.startswith("_"):
                if _RESERVED is None:
                    _RESERVED = _reserved_names()
                if attr not in _RESERVED:
                    found[attr] = (klass, HandlerSpec((attr,)), obj)
                    continue
                if attr != "init" and klass is cls:
                    # A Component method named like the framework's API (tick, stop, fire,
                    # ...) would silently replace it: the loop breaks and no handler binds.
                    raise TypeError(
                        f"{cls.__qualname__}.{attr}() would replace the framework's "
                        f"{attr}() method; give the handler another name and bind it with "
                        f"@handler({attr!r}), or mark a deliberate override @handler(False)"
                    )
            found.pop(attr, None)
    for attr, (klass, spec, _obj) in list(found.items()):
        if not spec.override:
            continue
        for other, (oklass, ospec, _o) in list(found.items()):
            if (
                other != attr
                and oklass is not klass
                and issubclass(klass, oklass)
                and set(ospec.names) & set(spec.names)
            ):
                del found[other]
    return tuple(
        (attr, spec, takes_event(obj, False)) for attr, (klass, spec, obj) in found.items()
    )


class BaseComponent(Manager):
    """A component with ``@handler`` methods. Pass ``channel=`` to choose its channel.

    Positional and keyword arguments other than ``channel`` go to :meth:`init` (and
    ``channel`` too, when ``init`` accepts it).
    """

    channel: Any = "*"
    _handler_specs: ClassVar[tuple[tuple[str, HandlerSpec, bool], ...]] = ()
    _implicit_handlers: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__module__ == __name__:
            _FRAMEWORK.append(cls)  # BaseComponent's own subclasses here are API, not handlers
        cls._handler_specs = _collect_specs(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        channel = kwargs.pop("channel", _MISSING)
        Manager.__init__(self)
        if channel is not _MISSING:
            self.channel = channel
        for attr, spec, pass_event in self._handler_specs:
            self._add_entry(
                HandlerEntry(
                    spec.names,
                    getattr(self, attr),
                    self,
                    spec.channel,
                    spec.priority,
                    pass_event,
                )
            )
        init = type(self).init
        if init is not BaseComponent.init:
            if channel is not _MISSING and _accepts(init, "channel"):
                kwargs["channel"] = channel
            snapshot = {name: id(self.__dict__.get(name)) for name in _LOOP_STATE}
            self.init(*args, **kwargs)
            clobbered = [n for n in _LOOP_STATE if id(self.__dict__.get(n)) != snapshot[n]]
            if clobbered:
                raise TypeError(
                    f"{type(self).__name__}.init() assigned {', '.join(clobbered)}, which "
                    "netcomp uses for its own loop state; rename the attribute(s)"
                )
        elif args or kwargs:
            raise TypeError(
                f"{type(self).__name__}() takes no arguments besides channel= "
                f"(define init() to accept them), got {args!r} {kwargs!r}"
            )

    def init(self, *args: Any, **kwargs: Any) -> None:
        """Constructor hook for subclasses: receives the constructor's arguments."""

    def add_handler(
        self,
        func: Callable[..., Any],
        *names: str,
        channel: Any = None,
        priority: float = 0,
    ) -> Callable[..., Any]:
        """Add ``func`` as a handler of ``names`` on this component at run time.

        Without ``names``, a function decorated with ``@handler`` keeps its own settings and
        any other function handles the event of its ``__name__``.
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
        """Remove a handler added with :meth:`add_handler` (or bound at construction)."""
        for entry in list(self._entries):
            if entry.fn == func and (not names or set(names) & set(entry.names)):
                self._remove_entry(entry)


# Before Component exists: the reserved names must include BaseComponent's API (init, ...).
_FRAMEWORK.append(BaseComponent)


class Component(BaseComponent):
    """A component whose every public method handles the event of its name."""

    _implicit_handlers = True
