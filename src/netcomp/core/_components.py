"""Components: managers whose methods handle events.

Rules: ``BaseComponent`` binds only methods marked ``@handler``; ``Component`` also binds
every public method by its own name (the circuits idiom), except the framework's own API,
its hooks (``init``, ``loop_changed``, ``loop_ended``) and methods marked
``@handler(False)`` (a mark that holds for overrides in subclasses too: a base class can
declare hooks of its own). Handlers are collected once per class, walking the MRO
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

#: Names a component method may not take: the framework's own methods that user code calls
#: on components (a handler of that name would replace them) and the tree's attributes.
#: Every other public name is free: ``tick``, ``flush``, ``started``, ``stopped``,
#: ``signal``, ``ready``, ... are ordinary handler names (the loop never calls a method
#: through a component, but for the hooks below).
RESERVED_NAMES = frozenset(
    {
        "fire",
        "call",
        "wait",
        "register",
        "unregister",
        "run",
        "start",
        "stop",
        "join",
        "walk",
        "handlers",
        "add_handler",
        "remove_handler",
        "addHandler",
        "removeHandler",
        "parent",
        "root",
        "components",
        "loop",
        "channel",
        "running",
    }
)


#: Methods a component overrides to hook into the framework; never bound as handlers.
HOOK_NAMES = frozenset({"init", "loop_changed", "loop_ended"})


def _accepts(func: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


_FRAMEWORK: list[type] = [object, Manager]


def _refuse(cls: type, attr: str) -> None:
    raise TypeError(
        f"{cls.__qualname__}.{attr}() would replace the framework's {attr}; give the "
        f"handler another name and bind it with @handler({attr!r}), or mark a deliberate "
        "override @handler(False)"
    )


def _spec_of(
    cls: type, attr: str, obj: Any, implicit: bool, not_handlers: set[str], own: bool
) -> HandlerSpec | None:
    """The handler spec ``cls`` gives attribute ``attr`` (``None``: not a handler)."""
    spec = getattr(obj, "_netcomp_handler", None)
    if isinstance(spec, HandlerSpec):
        if not spec.enabled:
            not_handlers.add(attr)  # and stays so in subclasses that override it
            return None
        if own and (attr in RESERVED_NAMES or attr in HOOK_NAMES):
            _refuse(cls, attr)  # bound as a handler, it would shadow the framework
        return spec
    if not implicit or attr.startswith("_") or not inspect.isfunction(obj):
        return None
    if attr in RESERVED_NAMES:
        if own:
            _refuse(cls, attr)
        return None
    return None if attr in not_handlers else HandlerSpec((attr,))


def _collect_specs(cls: type) -> tuple[tuple[str, HandlerSpec, bool], ...]:
    implicit = getattr(cls, "_implicit_handlers", False)
    # attribute name -> (defining class, spec, function)
    found: dict[str, tuple[type, HandlerSpec, Any]] = {}
    not_handlers = set(HOOK_NAMES)
    for klass in reversed(cls.__mro__):
        if klass in _FRAMEWORK:
            continue
        for attr, obj in klass.__dict__.items():
            found.pop(attr, None)  # a redefinition replaces the inherited handler
            spec = _spec_of(klass, attr, obj, implicit, not_handlers, klass is cls)
            if spec is not None:
                found[attr] = (klass, spec, obj)
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


def _parameters(func: Callable[..., Any]) -> list[inspect.Parameter]:
    return list(inspect.signature(func).parameters.values())


def _constructor_signature(cls: type) -> inspect.Signature:
    """``cls(...)``'s signature: its own ``__init__``'s, else its ``init()``'s plus
    ``channel=`` (which every component takes)."""
    own_init = cls.__init__  # type: ignore[misc]
    if own_init is not BaseComponent.__init__:
        return inspect.Signature(_parameters(own_init)[1:])
    hook = cls.init  # type: ignore[attr-defined]
    params = []
    if hook is not BaseComponent.init:
        params = _parameters(hook)[1:]
    kinds = {p.kind for p in params}
    if "channel" not in {p.name for p in params} and inspect.Parameter.VAR_KEYWORD not in kinds:
        channel = inspect.Parameter(
            "channel",
            inspect.Parameter.KEYWORD_ONLY,
            default=getattr(cls, "channel", "*"),
            annotation="Any",
        )
        params.append(channel)
    return inspect.Signature(params)


def _check_arguments(
    cls: type, init: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Refuse arguments ``init()`` cannot take, naming the class and what it expects."""
    try:
        inspect.signature(init).bind(None, *args, **kwargs)
    except TypeError as error:
        raise TypeError(
            f"{cls.__name__}(): {error}; expected {cls.__name__}{cls.__signature__}"  # type: ignore[attr-defined]
        ) from None
    except ValueError:  # no signature to check against (a builtin): let the call decide
        return


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
        # What IDEs, help() and inspect.signature() show for the constructor: init()'s
        # parameters (plus channel=) for the circuits style, or the class's own __init__.
        cls.__signature__ = _constructor_signature(cls)  # type: ignore[attr-defined]

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
            _check_arguments(type(self), init, args, kwargs)
            self.init(*args, **kwargs)
        elif args or kwargs:
            raise TypeError(
                f"{type(self).__name__}() takes no arguments besides channel= "
                f"(define init() to accept them), got {args!r} {kwargs!r}"
            )

    def init(self, *args: Any, **kwargs: Any) -> None:
        """Constructor hook for subclasses: receives the constructor's arguments."""


_FRAMEWORK.append(BaseComponent)


class Component(BaseComponent):
    """A component whose every public method handles the event of its name."""

    _implicit_handlers = True
