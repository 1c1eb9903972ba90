"""Events and their lifecycle kinds, where circuits users import them
(``circuits.core.events``). The one implementation is ``netcomp.core``'s; this module only
names it again."""

from ._events import (
    Event,
    exception,
    prepare_unregister,
    registered,
    signal,
    started,
    stopped,
    unregistered,
)

__all__ = [
    "Event",
    "exception",
    "prepare_unregister",
    "registered",
    "signal",
    "started",
    "stopped",
    "unregistered",
]
