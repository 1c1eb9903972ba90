"""netcomp.core: events, handlers, components, the manager and its loop, values, timers,
workers and the debugger. Standard library only."""

from ._clock import Clock, MonotonicClock
from ._components import BaseComponent, Component
from ._debugger import Debugger
from ._errors import (
    EventCancelled,
    HandlerSignatureError,
    NetcompError,
    RegistrationError,
    TimeoutError,
)
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
from ._handlers import handler
from ._handles import TimerHandle, Watch
from ._loop import Loop
from ._manager import Manager
from ._tasks import Call, Future, Wait, current_loop, current_manager, sleep
from ._timers import Timer
from ._values import Value
from ._workers import Worker, task

__all__ = [
    "BaseComponent",
    "Call",
    "Clock",
    "Component",
    "Debugger",
    "Event",
    "EventCancelled",
    "Future",
    "HandlerSignatureError",
    "Loop",
    "Manager",
    "MonotonicClock",
    "NetcompError",
    "RegistrationError",
    "TimeoutError",
    "Timer",
    "TimerHandle",
    "Value",
    "Wait",
    "Watch",
    "Worker",
    "current_loop",
    "current_manager",
    "exception",
    "handler",
    "prepare_unregister",
    "registered",
    "signal",
    "sleep",
    "started",
    "stopped",
    "task",
    "unregistered",
]
