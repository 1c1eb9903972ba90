"""Finding components in a tree and importing modules safely, where circuits users import
them (``circuits.core.utils``): ``findchannel``, ``findtype`` (``findcmp``), ``findroot``,
``safeimport``. The implementations live in ``netcomp.core``'s private modules; this module
only names them."""

from ._find import findchannel, findcmp, findroot, findtype
from ._loader import safeimport

__all__ = ["findchannel", "findcmp", "findroot", "findtype", "safeimport"]
