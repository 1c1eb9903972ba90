"""Components, where circuits users import them (``circuits.core.components``). The one
implementation is ``netcomp.core``'s; this module only names it again."""

from ._components import BaseComponent, Component
from ._events import prepare_unregister

__all__ = ["BaseComponent", "Component", "prepare_unregister"]
