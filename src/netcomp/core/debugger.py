"""``Debugger``, where circuits users import it (``circuits.core.debugger``). The one
implementation is ``netcomp.core``'s; this module only names it again."""

from ._debugger import Debugger

__all__ = ["Debugger"]
