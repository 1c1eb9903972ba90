"""The garbage collector while a tree serves: start-up objects kept out of its way.

Rules (docs/architecture.md, "The loop and the garbage collector"):
* A server allocates while it serves (connections, requests, events), so CPython's collector
  runs often, and every full collection walks every tracked object of the process: modules,
  classes, functions, the tree. Those were made at start-up and live until the end; walking
  them is the whole cost of a full collection (about 5 ms for a small web app here), paid in
  the middle of requests.
* So once the tree has started (``started`` dispatched: its handlers ran, listeners bound), the
  loop collects once and moves everything alive into the collector's permanent generation
  (``gc.freeze()``); when ``run()`` returns it gives them back (``gc.unfreeze()``), so a
  start-up object that became garbage during the run is collected then, not leaked.
* Only ``run()`` on the main thread does it (a program's ``app.run()``, ``netcomp serve``,
  each worker process), never a tree run by ``start()`` in a thread; and only one loop of
  the process at a time. A process that froze objects itself (a non-empty permanent
  generation), or turned the collector off, is left alone.
"""

from __future__ import annotations

import gc
import threading
from typing import Any

__all__ = ["freeze_startup", "thaw_startup"]

_lock = threading.Lock()
_owner: Any = None


def freeze_startup(owner: Any) -> bool:
    """Collect, then move every object alive into the permanent generation, for ``owner``.

    Returns whether it did: ``False`` when another owner holds the freeze, when objects
    are frozen already (the program manages that itself) or the collector is disabled.
    """
    global _owner
    with _lock:
        if _owner is not None or gc.get_freeze_count() or not gc.isenabled():
            return False
        gc.collect()
        gc.freeze()
        _owner = owner
        return True


def thaw_startup(owner: Any) -> None:
    """Give what :func:`freeze_startup` froze for ``owner`` back to the collector."""
    global _owner
    with _lock:
        if _owner is owner:
            gc.unfreeze()
            _owner = None
