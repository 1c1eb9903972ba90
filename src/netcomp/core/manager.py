"""The Manager, where circuits users import it (``circuits.core.manager``), with
``TIMEOUT``, ``TimeoutError`` and ``sleep``. The one implementation is ``netcomp.core``'s;
this module only names it again.

``TIMEOUT`` (0.1) is circuits' idle poll interval in seconds. netcomp never polls (a loop
sleeps until a descriptor, a timer or another thread wakes it): the constant is kept for
programs, and circuits' test helpers, that poll with it from their own threads.
"""

from ._awaitables import sleep
from ._errors import TimeoutError
from ._manager import TIMEOUT, Manager, current_manager

__all__ = ["TIMEOUT", "Manager", "TimeoutError", "current_manager", "sleep"]
