"""``Worker`` and ``task``, where circuits users import them (``circuits.core.workers``).
The one implementation is ``netcomp.core``'s; this module only names it again."""

from ._workers import Worker, task

__all__ = ["Worker", "task"]
