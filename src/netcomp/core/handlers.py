"""The ``@handler`` decorator, where circuits users import it (``circuits.core.handlers``).
The one implementation is ``netcomp.core``'s; this module only names it again."""

from ._handlers import handler

__all__ = ["handler"]
