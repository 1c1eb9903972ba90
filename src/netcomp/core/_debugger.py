"""The Debugger: logs every event (and every handler error) through ``logging``."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable
from typing import Any

from ._components import BaseComponent
from ._events import Event
from ._handlers import handler

__all__ = ["Debugger"]


class Debugger(BaseComponent):
    """Logs each event as it is dispatched, and each handler error with its traceback.

    ``ignore_events`` and ``ignore_channels`` name events and channels not to log. It runs
    before other handlers (priority 100) and never changes an event's value.
    """

    def init(
        self,
        events: bool = True,
        errors: bool = True,
        logger: logging.Logger | None = None,
        ignore_events: Iterable[str] = (),
        ignore_channels: Iterable[Any] = (),
        channel: Any = "*",
    ) -> None:
        """See the class docstring."""
        self.events = events
        self.errors = errors
        self.logger = logger if logger is not None else logging.getLogger("netcomp.debug")
        self.ignore_events = frozenset(ignore_events)
        self.ignore_channels = frozenset(ignore_channels)
        self.channel = channel
        if not errors:
            # Not listening for errors by name leaves them to netcomp's default logging.
            self.remove_handler(self._on_exception)

    @handler(priority=100, channel="*")
    def _on_event(self, event: Event, *args: Any, **kwargs: Any) -> None:
        if event.name in self.ignore_events:
            return
        if self.ignore_channels and any(c in self.ignore_channels for c in event.channels):
            return
        if event.name == "exception":
            return  # logged by _on_exception
        if self.events:
            self.logger.debug("%r", event)

    @handler("exception", priority=100, channel="*")
    def _on_exception(self, event: Event, *args: Any, **kwargs: Any) -> None:
        if self.ignore_channels and any(c in self.ignore_channels for c in event.channels):
            return
        if "exception" not in self.ignore_events and self.errors:
            etype, error, tb = args[:3]
            lines = "".join(traceback.format_exception(etype, error, tb))
            self.logger.error(
                "ERROR %r in %r for %r\n%s",
                error,
                kwargs.get("handler"),
                kwargs.get("fevent"),
                lines.rstrip(),
            )
