"""Loading components from modules found on a search path (circuits' ``Loader``).

Rules: :func:`safeimport` imports a module, or reloads it when it is imported already;
when that fails it removes the modules the attempt added to ``sys.modules``, logs the
error with its traceback on the ``netcomp`` logger (nothing fails silently) and returns
``None``. A :class:`Loader` answers ``load(name)``: it imports the module and instantiates
the first component class defined in it (in the module's own order), with the Loader's
``init_args``/``init_kwargs``, and registers it under itself unless
``auto_register=False``. The search ``paths`` are put in front of ``sys.path``, as in
circuits, so that the modules it loads can import their neighbours.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

from ._components import BaseComponent
from ._handlers import handler

__all__ = ["Loader", "safeimport"]

log = logging.getLogger("netcomp")


def safeimport(name: str) -> ModuleType | None:
    """Import the module ``name`` (reload it if it is imported already); ``None``, with the
    error logged and ``sys.modules`` as it was, when that fails."""
    before = set(sys.modules)
    importlib.invalidate_caches()  # a module written since the last import is found
    try:
        module = sys.modules.get(name)
        if module is not None:
            return importlib.reload(module)
        return importlib.import_module(name)
    except Exception:
        for added in set(sys.modules) - before:
            del sys.modules[added]
        log.exception("could not import %r", name)
        return None


def _component_classes(module: ModuleType) -> list[type[BaseComponent]]:
    """The component classes defined in ``module`` (not imported into it), in its order."""
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, BaseComponent)
        and obj.__module__ == module.__name__
    ]


class Loader(BaseComponent):
    """Loads components from modules: fire ``load(name)`` at it (channel ``"loader"``) or
    call ``load(name)``; the value is the new component (``None`` if the module could not
    be imported or defines none).

    ``paths``: directories put in front of ``sys.path``; ``init_args`` and
    ``init_kwargs``: what each loaded component is constructed with;
    ``auto_register=False`` leaves it unregistered.
    """

    channel = "loader"

    def __init__(
        self,
        auto_register: bool = True,
        init_args: Iterable[Any] | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
        paths: Iterable[str] | None = None,
        channel: Any = "loader",
    ) -> None:
        """See the class docstring."""
        super().__init__(channel=channel)
        self.auto_register = auto_register
        self.init_args = tuple(init_args or ())
        self.init_kwargs = dict(init_kwargs or {})
        for path in reversed(list(paths or ())):
            if path not in sys.path:
                sys.path.insert(0, path)

    @handler("load")
    def load(self, name: str) -> BaseComponent | None:
        """Import module ``name`` and instantiate (and register) its first component."""
        module = safeimport(name)
        if module is None:
            return None
        classes = _component_classes(module)
        if not classes:
            log.warning("module %r defines no component to load", name)
            return None
        component = classes[0](*self.init_args, **self.init_kwargs)
        if self.auto_register:
            component.register(self)
        return component
