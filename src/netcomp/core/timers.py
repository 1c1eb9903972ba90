"""``Timer``, where circuits users import it (``circuits.core.timers``). The one
implementation is ``netcomp.core``'s; this module only names it again."""

from ._timers import Timer

__all__ = ["Timer"]
