"""The Debugger: shows every event as it is dispatched, which ones nothing handled, and
every handler error with its traceback.

Rules: by default it writes to standard error (as circuits' debugger does), one line per
event, so it works before any logging is configured; ``logger=`` sends the same lines to a
``logging.Logger`` instead (events at DEBUG, unhandled events at WARNING, errors at
ERROR). An event that no handler takes by name is marked ``(unhandled: ...)``; errors start
with ``ERROR``. It runs before other handlers and never changes an event's value.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterable
from typing import Any, TextIO

from ._components import BaseComponent
from ._events import Event
from ._handlers import handler

__all__ = ["Debugger"]


class Debugger(BaseComponent):
    """Shows each event as it is dispatched, flags the unhandled ones, and shows each
    handler error with its traceback.

    ``file``: where lines go (default ``sys.stderr``, read when a line is written);
    ``logger``: a ``logging.Logger`` to use instead. ``events=False`` shows errors only,
    ``errors=False`` leaves errors to netcomp's default logging. ``ignore_events`` and
    ``ignore_channels`` name events and channels not to show.
    """

    def __init__(
        self,
        events: bool = True,
        errors: bool = True,
        file: TextIO | None = None,
        logger: logging.Logger | None = None,
        ignore_events: Iterable[str] = (),
        ignore_channels: Iterable[Any] = (),
        channel: Any = "*",
    ) -> None:
        """See the class docstring."""
        super().__init__(channel=channel)
        self.events = events
        self.errors = errors
        self.file = file
        self.logger = logger
        self.ignore_events = frozenset(ignore_events)
        self.ignore_channels = frozenset(ignore_channels)
        if not errors:
            # Not listening for errors by name leaves them to netcomp's default logging.
            self.remove_handler(self._on_exception)

    def _ignored(self, event: Event) -> bool:
        if event.name in self.ignore_events:
            return True
        return bool(self.ignore_channels) and any(
            c in self.ignore_channels for c in event.channels
        )

    def _emit(self, level: int, line: str) -> None:
        if self.logger is not None:
            self.logger.log(level, "%s", line)
            return
        out = self.file if self.file is not None else sys.stderr
        out.write(line + "\n")
        out.flush()

    @handler(priority=100, channel="*")
    def _on_event(self, event: Event, *args: Any, **kwargs: Any) -> None:
        if not self.events or event.name == "exception" or self._ignored(event):
            return  # errors are shown by _on_exception
        if event.notification or self.loop.registry.lookup(event.name, event.channels)[2]:
            self._emit(logging.DEBUG, repr(event))
        else:
            channels = ", ".join(repr(c) for c in event.channels)
            self._emit(
                logging.WARNING,
                f"{event!r} (unhandled: no handler for {event.name!r} on {channels})",
            )

    @handler("exception", priority=100, channel="*")
    def _on_exception(self, event: Event, *args: Any, **kwargs: Any) -> None:
        if self._ignored(event) and "exception" in self.ignore_events:
            return
        if self.ignore_channels and any(c in self.ignore_channels for c in event.channels):
            return
        etype, error, tb = args[:3]
        lines = "".join(traceback.format_exception(etype, error, tb)).rstrip()
        self._emit(
            logging.ERROR,
            f"ERROR {error!r} in {kwargs.get('handler')!r} for {kwargs.get('fevent')!r}\n{lines}",
        )
