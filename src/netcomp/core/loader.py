"""``Loader``, which loads components from modules on a search path, where circuits users
import it (``circuits.core.loader``). The one implementation is ``netcomp.core``'s; this
module only names it again."""

from ._loader import Loader

__all__ = ["Loader"]
