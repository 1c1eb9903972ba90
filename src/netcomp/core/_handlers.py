"""The ``@handler`` decorator and the handler specs components are built from.

Rules: ``@handler("a", "b")`` handles events named ``a`` and ``b``; ``@handler()`` with no
names handles every event (``"*"``). A handler whose first parameter (after ``self``) is
named ``event`` receives the Event before its arguments. ``channel=`` overrides the
component's channel for this handler; ``priority`` orders handlers (higher first, ties in
registration order); ``override=True`` hides handlers of the same names inherited from base
classes. ``@handler(False)`` marks a public method of a ``Component`` as *not* a handler.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["HandlerSpec", "handler", "takes_event"]

F = TypeVar("F", bound=Callable[..., Any])


class HandlerSpec:
    """What ``@handler`` recorded about a function: names, channel, priority, override."""

    __slots__ = ("channel", "enabled", "names", "override", "priority")

    def __init__(
        self,
        names: tuple[str, ...],
        channel: Any = None,
        priority: float = 0,
        override: bool = False,
        enabled: bool = True,
    ) -> None:
        self.names = names or ("*",)
        self.channel = channel
        self.priority = priority
        self.override = override
        self.enabled = enabled

    def __repr__(self) -> str:
        return (
            f"HandlerSpec(names={self.names!r}, channel={self.channel!r}, "
            f"priority={self.priority!r}, override={self.override!r})"
        )


def handler(
    *names: str | bool, channel: Any = None, priority: float = 0, override: bool = False
) -> Callable[[F], F]:
    """Mark a method (or function) as a handler of the events ``names`` (all events if none).

    ``channel`` overrides the component's channel, ``priority`` orders handlers (higher
    first), ``override`` hides same-named handlers inherited from base classes.
    """
    if names and names[0] is False:
        spec = HandlerSpec((), enabled=False)
    else:
        for name in names:
            if not isinstance(name, str) or not name:
                raise TypeError(f"handler names must be non-empty strings, got {name!r}")
        spec = HandlerSpec(tuple(names), channel, priority, override)  # type: ignore[arg-type]

    def decorate(func: F) -> F:
        if not callable(func):
            raise TypeError(f"@handler decorates callables, not {func!r}")
        func._netcomp_handler = spec  # type: ignore[attr-defined]
        return func

    return decorate


def takes_event(func: Callable[..., Any], bound: bool) -> bool:
    """Whether ``func``'s first parameter (after ``self`` when unbound) is named ``event``."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return False
    if not bound and params and params[0].name == "self":
        params = params[1:]
    return (
        bool(params)
        and params[0].name == "event"
        and params[0].kind
        in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        )
    )
