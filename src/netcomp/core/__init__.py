"""netcomp.core: events, handlers, components, the manager and its loop, values, timers,
workers, the debugger, the poller and the loader. Standard library only.

The submodules ``events``, ``handlers``, ``components``, ``manager``, ``values``,
``timers``, ``workers``, ``debugger``, ``utils``, ``loader`` and ``pollers`` name the same
objects where circuits users import them (``circuits.core.<module>``)."""

from ._awaitables import Call, Wait, sleep
from ._bridge import Bridge
from ._clock import Clock, MonotonicClock
from ._components import BaseComponent, Component
from ._debugger import Debugger
from ._errors import (
    EventCancelled,
    HandlerSignatureError,
    NetcompError,
    NotHandled,
    RegistrationError,
    TimeoutError,
)
from ._events import (
    Event,
    Value,
    exception,
    prepare_unregister,
    registered,
    signal,
    started,
    stopped,
    unregistered,
)
from ._future import Future
from ._handlers import handler
from ._io import Watch
from ._loader import Loader
from ._logs import configure_logging
from ._loop import Loop, current_loop
from ._manager import Manager, current_manager
from ._observe import LoopObserver
from ._pipeline import FileReader, Pipeline, pipeline
from ._pollers import Poller, ensure_poller
from ._remote import BridgeError, RemoteError, ipc
from ._scheduling import TimerHandle
from ._timers import Timer
from ._trace import HandlerRun, Trace, TraceRecord
from ._wakeup import Wakeup
from ._wire import NotSendable
from ._workers import Worker, task

__all__ = [
    "BaseComponent",
    "Bridge",
    "BridgeError",
    "Call",
    "Clock",
    "Component",
    "Debugger",
    "Event",
    "EventCancelled",
    "FileReader",
    "Future",
    "HandlerRun",
    "HandlerSignatureError",
    "Loader",
    "Loop",
    "LoopObserver",
    "Manager",
    "MonotonicClock",
    "NetcompError",
    "NotHandled",
    "NotSendable",
    "Pipeline",
    "Poller",
    "RegistrationError",
    "RemoteError",
    "TimeoutError",
    "Timer",
    "TimerHandle",
    "Trace",
    "TraceRecord",
    "Value",
    "Wait",
    "Wakeup",
    "Watch",
    "Worker",
    "configure_logging",
    "current_loop",
    "current_manager",
    "ensure_poller",
    "exception",
    "handler",
    "ipc",
    "pipeline",
    "prepare_unregister",
    "registered",
    "signal",
    "sleep",
    "started",
    "stopped",
    "task",
    "unregistered",
]
