"""The Debugger: shows every event as it is dispatched, warns about the ones nothing
handled, and shows every handler error with its traceback.

Rules: by default it writes to standard error (as circuits' debugger does), one line per
event, ``repr(event)`` (circuits' trace, line for line), so it works before any logging is
configured; ``file=`` names another stream or a file, ``logger=`` sends the same lines to a
logger instead (events with ``debug``, errors with ``error``: a ``logging.Logger`` or
anything with those methods). An event that no handler takes by name is also reported as
a warning (``unhandled: ...``), on that logger when it has a ``warning`` method, else on
the ``netcomp`` logger: it reaches standard error even when the trace goes to a file. An
error is written after its ``exception`` event as a block that starts with ``ERROR``,
names the handler as circuits does (``<handler[channel][names] (Class.method)>``) and ends
with the traceback. It runs before other handlers and never changes an event's value.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
import weakref
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from ._components import BaseComponent
from ._events import Event
from ._handlers import handler
from ._registry import HandlerEntry
from ._trace import Trace

__all__ = ["Debugger"]

_log = logging.getLogger("netcomp")


def _describe_handler(entry: HandlerEntry | None, fn: Any) -> str:
    """circuits' way to name a handler: ``<handler[channel][names][priority] (Cls.meth)>``."""
    if entry is None:
        return repr(fn)
    channel = entry.effective_channel()
    if not isinstance(channel, str):
        channel = f"<instance of {type(channel).__name__}>"
    owner = getattr(fn, "__self__", None)
    owner_name = type(owner).__name__ if owner is not None else "-"
    method = getattr(fn, "__name__", repr(fn))
    priority = f"[{entry.priority:0.2f}]" if entry.priority else ""
    return f"<handler[{channel}][{','.join(entry.names)}]{priority} ({owner_name}.{method})>"


class Debugger(BaseComponent):
    """Shows each event as it is dispatched, warns about the unhandled ones, and shows
    each handler error with its traceback.

    ``file``: a stream, or the path of a file to append to (opened by the debugger and
    closed when the loop ends or the debugger goes away; default ``sys.stderr``, read
    when a line is written); ``logger``: where to send the lines instead (a
    ``logging.Logger``, or any object with ``debug`` and ``error`` methods, and
    ``warning`` for the unhandled events).
    ``events=False`` shows errors only; ``errors=False`` leaves errors to netcomp's default
    logging. ``ignore_events`` and ``ignore_channels`` name events and channels not to show
    (an event is hidden when every channel it was fired on is ignored); ``prefix`` (a
    string, or a callable returning one) starts each event line; ``trim`` cuts event lines
    to that many characters.

    ``record``: also record a :class:`Trace` of the tree it is in (``True``: a trace of
    the default capacity, an int: that capacity, or a Trace of your own), kept as
    :attr:`trace`: it follows the debugger into whatever tree it joins.
    """

    def __init__(
        self,
        errors: bool = True,
        events: bool = True,
        file: TextIO | str | os.PathLike[str] | None = None,
        logger: Any = None,
        prefix: str | Callable[[], str] | None = None,
        trim: int | None = None,
        ignore_events: Iterable[str] = (),
        ignore_channels: Iterable[Any] = (),
        channel: Any = "*",
        record: Trace | int | bool | None = None,
    ) -> None:
        """See the class docstring."""
        super().__init__(channel=channel)
        if record is None or record is False:
            trace = None
        elif record is True:
            trace = Trace()
        elif isinstance(record, Trace):
            trace = record
        elif isinstance(record, int):
            trace = Trace(record)
        else:
            raise TypeError(f"record must be a Trace, a capacity or a bool, not {record!r}")
        #: The trace it records (``record=``), or ``None``.
        self.trace: Trace | None = trace
        if trace is not None:
            trace.attach(self.loop)
        self._events = bool(events)
        self._errors = True
        self._path: str | None = None
        self._owned: TextIO | None = None
        if isinstance(file, (str, os.PathLike)):
            self._path = os.path.abspath(os.path.expanduser(os.fspath(file)))
            file = self._open()
        self.file: TextIO | None = file
        self.logger = logger
        self.prefix = prefix
        self.trim = trim
        #: Event names not to show (a list: ``IgnoreEvents.extend([...])`` works, as in
        #: circuits, but for this debugger only).
        self.ignore_events: list[str] = list(ignore_events)
        #: Channels not to show.
        self.ignore_channels: list[Any] = list(ignore_channels)
        self.errors = errors

    # ---------------------------------------------------------------- switches
    @property
    def events(self) -> bool:
        """Whether events are shown (settable at any time)."""
        return self._events

    @events.setter
    def events(self, show: bool) -> None:
        self._events = bool(show)

    @property
    def errors(self) -> bool:
        """Whether handler errors are shown (settable at any time). While they are not,
        the debugger does not listen for ``exception`` events, so netcomp's default
        logging reports errors: none goes unseen."""
        return self._errors

    @errors.setter
    def errors(self, show: bool) -> None:
        show = bool(show)
        if show == self._errors:
            return
        self._errors = show
        if show:
            self.add_handler(self._on_exception)
        else:
            self.remove_handler(self._on_exception)

    @property
    def IgnoreEvents(self) -> list[str]:
        """circuits' name for :attr:`ignore_events`."""
        return self.ignore_events

    @property
    def IgnoreChannels(self) -> list[Any]:
        """circuits' name for :attr:`ignore_channels`."""
        return self.ignore_channels

    # ------------------------------------------------------------------ output
    def _open(self) -> TextIO:
        assert self._path is not None
        owned = self._owned = open(self._path, "a", encoding="utf-8")  # noqa: SIM115
        weakref.finalize(self, owned.close)  # closed with the debugger at the latest
        return owned

    def loop_changed(self) -> None:
        """The debugger moved to another tree: its trace follows it."""
        if self.trace is not None:
            self.trace.attach(self.loop)

    def loop_ended(self) -> None:
        """Close the file the debugger opened (it is opened again if events follow)."""
        if self._owned is not None:
            self._owned.close()

    def _ignored(self, event: Event) -> bool:
        if event.name in self.ignore_events:
            return True
        ignored = self.ignore_channels
        return bool(ignored) and all(c in ignored for c in event.channels)

    def _emit(self, level: int, line: str) -> None:
        logger = self.logger
        if logger is not None:
            name = "error" if level >= logging.ERROR else "debug"
            getattr(logger, name)(line)
            return
        out = self.file if self.file is not None else sys.stderr
        if self._owned is not None and out is self._owned and out.closed:
            out = self.file = self._open()
        out.write(line + "\n")
        out.flush()

    def _warn_unhandled(self, event: Event) -> None:
        channels = ", ".join(repr(c) for c in event.channels)
        line = f"unhandled: no handler for {event.name!r} on {channels}: {event!r}"
        warning = getattr(self.logger, "warning", None)
        if warning is not None:
            warning(line)
        else:
            _log.warning("%s", line)

    def _line(self, event: Event) -> str:
        line = repr(event)
        prefix = self.prefix
        if prefix is not None:
            line = f"{prefix() if callable(prefix) else prefix}: {line}"
        if self.trim:
            line = f"{line[: self.trim]} ...>"
        return line

    @handler(priority=101, channel="*")
    def _on_event(self, event: Event, *args: Any, **kwargs: Any) -> None:
        if not self._events or self._ignored(event):
            return
        self._emit(logging.DEBUG, self._line(event))
        if not (
            event.notification
            or event.name == "exception"
            or self.loop.registry.lookup(event.name, event.channels)[2]
        ):
            self._warn_unhandled(event)

    @handler("exception", priority=100, channel="*")
    def _on_exception(self, event: Event, *args: Any, **kwargs: Any) -> None:
        etype, error, tb = args[:3]
        fn = kwargs.get("handler")
        if not self._errors or self._ignored(event):
            # Not shown here (ignored, or switched off behind the property's back): the
            # debugger took the error by name, so it reports it the default way.
            _log.error(
                "unhandled error in %r while handling %r",
                fn,
                kwargs.get("fevent"),
                exc_info=(etype, error, tb),
            )
            return
        entry = next((e for e in self.loop.registry.entries() if e.fn == fn), None)
        lines = "".join(traceback.format_exception(etype, error, tb)).rstrip()
        self._emit(
            logging.ERROR,
            f"ERROR {_describe_handler(entry, fn)} ({kwargs.get('fevent')!r}) "
            f"({etype!r}): {error!r}\n{lines}",
        )
