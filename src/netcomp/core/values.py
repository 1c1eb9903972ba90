"""``Value``, an event's answer, where circuits users import it (``circuits.core.values``).
The one implementation is ``netcomp.core``'s; this module only names it again."""

from ._events import Value

__all__ = ["Value"]
