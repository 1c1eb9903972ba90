"""netcomp.core: events, handlers, components, the manager and its loop, values, timers,
workers and the debugger. Standard library only."""

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
from ._manager import Manager, TimerHandle
from ._tasks import Call, Future, Wait, current_manager, sleep
from ._timers import Timer
from ._values import Value
from ._workers import Worker, task

__all__ = [
    "BaseComponent",
    "Call",
    "Component",
    "Debugger",
    "Event",
    "EventCancelled",
    "Future",
    "HandlerSignatureError",
    "Manager",
    "NetcompError",
    "RegistrationError",
    "TimeoutError",
    "Timer",
    "TimerHandle",
    "Value",
    "Wait",
    "Worker",
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
