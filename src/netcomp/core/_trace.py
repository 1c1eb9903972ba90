"""Trace: a recording of what a loop dispatched, in a ring buffer, saved as JSON lines.

Rules (docs/architecture.md, "Observing a loop"):
* A Trace is a loop observer: attached, it records one :class:`TraceRecord` per event
  the loop dispatches: name, channels, arguments (shortened), who fired it (the component
  whose ``fire()`` queued it, and the thread when that was not the loop's), the handler
  that was running then (the causal parent), each handler run with its duration and
  error, the event's result or error, and times (seconds since the trace began).
* Memory is bounded: the last ``capacity`` records are kept (``dropped`` counts the
  others), each holds strings and numbers only (never the events or their arguments),
  and at most ``MAX_HANDLERS`` handler runs per record.
* Records are JSON lines: a header line, then one record per line (:meth:`Trace.save`,
  :meth:`Trace.load`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from typing import IO, Any

from ._events import Event, Value
from ._registry import HandlerEntry

__all__ = ["HandlerRun", "Trace", "TraceRecord"]

FORMAT = "netcomp-trace"
VERSION = 1
#: Handler runs kept per record (an event met by more counts them in ``more_handlers``).
MAX_HANDLERS = 32
_keys = itertools.count(1)


def _shorten(value: Any, width: int = 40) -> str:
    """A short text for ``value``: its ``repr`` cut to ``width`` characters; a socket as
    ``<sock fd=N peer>``, a component as its class name."""
    if isinstance(value, socket.socket):
        try:
            peer = value.getpeername()
        except OSError:
            peer = None
        where = f" {peer[0]}:{peer[1]}" if isinstance(peer, tuple) else ""
        text = f"<sock fd={value.fileno()}{where}>"
    elif hasattr(value, "loop") and hasattr(value, "components"):
        text = f"<{type(value).__name__}>"
    else:
        try:
            text = repr(value)
        except Exception as error:  # a broken __repr__ does not break the trace
            text = f"<{type(value).__name__} (repr failed: {type(error).__name__})>"
    if len(text) > width:
        text = text[: max(width - 3, 1)] + "..."
    return text


def _handler_label(entry: HandlerEntry) -> str:
    fn = entry.fn
    owner = getattr(fn, "__self__", None)
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return f"{type(owner).__name__}.{name}" if owner is not None else str(name)


@dataclasses.dataclass(slots=True)
class HandlerRun:
    """One handler call: ``handler`` (``Class.method``), its ``component`` (a lifeline
    name), how many ``seconds`` it ran, and the ``error`` it raised (``Type: message``)."""

    handler: str
    component: str
    seconds: float
    error: str | None = None


@dataclasses.dataclass(slots=True)
class TraceRecord:
    """One dispatched event.

    ``seq``: its number in the trace; ``name``, ``channels``, ``args`` (shortened);
    ``source``: the component that fired it (a lifeline name; ``"loop"`` for the loop's
    own events); ``thread``: the firing thread when it was not the running loop's; ``parent``:
    ``seq`` of the event whose handler fired it, ``parent_handler`` that handler;
    ``fired``, ``start``, ``end`` (its handlers returned), ``done`` (its value completed,
    coroutine handlers included): seconds since the trace began; ``handlers``: the runs;
    ``result`` or ``error`` (shortened); ``handled``: some handler took it by name (or it
    is a notification, which nobody needs to take).
    """

    seq: int
    name: str
    channels: list[str]
    args: str
    source: str
    start: float
    thread: str | None = None
    parent: int | None = None
    parent_handler: str | None = None
    fired: float | None = None
    end: float | None = None
    done: float | None = None
    handlers: list[HandlerRun] = dataclasses.field(default_factory=list)
    more_handlers: int = 0
    result: str | None = None
    error: str | None = None
    handled: bool = True

    @property
    def seconds(self) -> float | None:
        """From the start of dispatch until the value completed (``None``: not yet)."""
        return None if self.done is None else self.done - self.start

    def line(self) -> str:
        """One line for a person: ``#seq source -> name(args) [handlers] time, outcome``."""
        handlers = ", ".join(run.handler for run in self.handlers) or "nobody"
        took = self.seconds
        outcome = f"ERROR {self.error}" if self.error else (self.result or "")
        timing = f"{took * 1000:.3f} ms" if took is not None else "pending"
        return (
            f"#{self.seq} {self.source} -> {self.name}({self.args}) [{handlers}] "
            f"{timing} {outcome}".rstrip()
        )

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object (what :meth:`Trace.save` writes)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TraceRecord:
        """The record a :meth:`to_json` object describes."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["handlers"] = [HandlerRun(**h) for h in values.get("handlers", ())]
        return cls(**values)


class Trace:
    """Records what a loop dispatches (see the module's rules): ``Trace().attach(app)``,
    or ``with Trace().attach(app) as trace: ...`` (detached on leaving), or
    ``Debugger(record=...)``, or ``netcomp.testing.running(app, trace=True)``.

    ``capacity``: how many records the ring keeps; ``width``: how long a shortened
    argument list (and a result) may be.
    """

    def __init__(self, capacity: int = 10_000, *, width: int = 80) -> None:
        """See the class docstring."""
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        self.capacity = capacity
        self.width = width
        self.dropped = 0
        self._records: deque[TraceRecord] = deque(maxlen=capacity)
        self._key = f"_netcomp_trace_{next(_keys)}"
        self._seq = itertools.count(1)
        self._origin = time.perf_counter()
        self._labels: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        #: The records still in the ring, by seq (a coroutine's fire finds its handler).
        self._by_seq: dict[int, TraceRecord] = {}
        #: Handler labels by entry (entries live as long as their handlers; bounded).
        self._handler_labels: dict[Any, str] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._loop: Any = None
        self._current: TraceRecord | None = None
        self._handler: str | None = None

    # ------------------------------------------------------------ attaching
    def attach(self, target: Any) -> Trace:
        """Record what ``target``'s loop (a component's tree, or a Loop) dispatches from
        now on; a trace attached elsewhere moves. Returns the trace."""
        loop = getattr(target, "loop", target)
        if not hasattr(loop, "observe"):
            raise TypeError(f"attach() takes a component or a Loop, not {target!r}")
        if loop is not self._loop:
            self.detach()
            self._loop = loop
            loop.observe(self)
        return self

    def detach(self) -> None:
        """Stop recording (what was recorded stays)."""
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.unobserve(self)

    @property
    def attached(self) -> bool:
        """Whether the trace records now."""
        return self._loop is not None and self in self._loop.observers

    def __enter__(self) -> Trace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()

    # --------------------------------------------------------------- records
    @property
    def records(self) -> list[TraceRecord]:
        """The records kept, oldest first (a copy)."""
        return list(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[TraceRecord]:
        return iter(self.records)

    def clear(self) -> None:
        """Forget the records (and the count of dropped ones)."""
        self._records.clear()
        self._by_seq.clear()
        self.dropped = 0

    def label(self, component: Any) -> str:
        """The lifeline name of ``component`` in this trace: its class name, then
        ``Name#2``, ``Name#3`` for other instances of the same class."""
        try:
            known = self._labels.get(component)
        except TypeError:  # not weakly referable
            return type(component).__name__
        if known is not None:
            return known
        with self._lock:
            try:
                return self._labels[component]
            except KeyError:
                pass
            except TypeError:  # not weakly referable
                return type(component).__name__
            base = type(component).__name__
            count = self._counts[base] = self._counts.get(base, 0) + 1
            label = self._labels[component] = base if count == 1 else f"{base}#{count}"
            return label

    def _now(self) -> float:
        return time.perf_counter() - self._origin

    def _append(self, record: TraceRecord) -> None:
        records = self._records
        if len(records) == self.capacity:
            self.dropped += 1
            self._by_seq.pop(records[0].seq, None)
        records.append(record)
        self._by_seq[record.seq] = record

    # --------------------------------------------------------------- observer
    def fired(self, source: Any, event: Event) -> None:
        """Observer: ``source`` fires ``event`` (any thread)."""
        loop = self._loop
        seq = next(self._seq)
        thread = None
        parent = handler = None
        if loop is not None and loop.on_loop_thread():
            current = self._current
            if current is not None:
                parent, handler = current.seq, self._handler
            elif loop.current is not None:  # a coroutine handler resumed
                parent = self._seq_of(loop.current)
                handler = self._resumed_handler(parent, self.label(source))
        elif loop is not None and loop.running:  # another thread fires into a running loop
            thread = threading.current_thread().name
        origin = (seq, self.label(source), thread, parent, handler, self._now())
        event.__dict__[self._key] = origin

    def _resumed_handler(self, parent: int | None, component: str) -> str | None:
        record = self._by_seq.get(parent) if parent is not None else None
        if record is None:
            return None
        runs = [run.handler for run in record.handlers if run.component == component]
        return runs[0] if len(runs) == 1 else None

    def _seq_of(self, event: Any) -> int | None:
        origin = getattr(event, "__dict__", {}).get(self._key)
        return None if origin is None else int(origin[0])

    def dispatching(self, event: Event, handlers: tuple[HandlerEntry, ...]) -> None:
        """Observer: ``event`` is taken from the queue."""
        origin = event.__dict__.get(self._key)
        if origin is None:  # the loop's own event (lifecycle, exception, feedback)
            origin = self._own_origin(event)
            event.__dict__[self._key] = origin
        seq, source, thread, parent, handler, fired = origin
        args = self._arguments(event)
        record = TraceRecord(
            seq,
            event.name,
            [c if isinstance(c, str) else _shorten(c, 30) for c in event.channels],
            args,
            source,
            self._now(),
            thread,
            parent,
            handler,
            fired,
        )
        self._current = record
        self._append(record)

    def _arguments(self, event: Event) -> str:
        if event.name == "exception" and len(event.args) >= 2:  # the error, not its traceback
            parts = [_shorten(event.args[1])]
        else:
            parts = [_shorten(a) for a in event.args]
            parts += [f"{k}={_shorten(v)}" for k, v in event.kwargs.items()]
        args = ", ".join(parts)
        width = self.width
        return args if len(args) <= width else args[: width - 3] + "..."

    def _own_origin(self, event: Event) -> tuple[Any, ...]:
        parent = handler = None
        source = "loop"
        if event.name == "exception":
            parent = self._seq_of(event.kwargs.get("fevent"))
            fn = event.kwargs.get("handler")
            owner = getattr(fn, "__self__", None)
            if owner is not None:
                source = self.label(owner)
                handler = f"{type(owner).__name__}.{getattr(fn, '__name__', '?')}"
        elif event.args and isinstance(event.args[0], Event):  # feedback: x_success(x, ...)
            parent = self._seq_of(event.args[0])
        return (next(self._seq), source, None, parent, handler, None)

    def running(self, event: Event, entry: HandlerEntry) -> None:
        """Observer: ``entry`` is called for ``event``."""
        labels = self._handler_labels
        label = labels.get(entry)
        if label is None:
            if len(labels) > 10_000:
                labels.clear()
            label = labels[entry] = _handler_label(entry)
        self._handler = label

    def ran(
        self, event: Event, entry: HandlerEntry, seconds: float, error: BaseException | None
    ) -> None:
        """Observer: ``entry`` returned (or raised ``error``) after ``seconds``."""
        record = self._current
        if record is None:
            return
        if len(record.handlers) >= MAX_HANDLERS:
            record.more_handlers += 1
        else:
            text = None if error is None else _shorten_error(error, self.width)
            label = self.label(entry.component)
            record.handlers.append(HandlerRun(self._handler or "?", label, seconds, text))
        self._handler = None

    def dispatched(self, event: Event) -> None:
        """Observer: ``event``'s handlers have run."""
        record = self._current
        self._current = None
        self._handler = None
        if record is None:
            return
        record.end = self._now()
        value = event.value
        if value is None:
            return
        record.handled = value.handled or event.notification  # nobody needs to take those
        if value.result:
            self._done(record, value)
        else:
            value.add_done_callback(lambda v: self._done(record, v))

    def _done(self, record: TraceRecord, value: Value) -> None:
        record.done = self._now()
        if value.exception is not None:
            record.error = _shorten_error(value.exception, self.width)
        elif value.value is not None:
            record.result = _shorten(value.value, self.width)

    # ------------------------------------------------------------------ files
    def dumps(self) -> str:
        """The trace as JSON lines: a header, then one record per line."""
        header = {
            "format": FORMAT,
            "version": VERSION,
            "capacity": self.capacity,
            "dropped": self.dropped,
        }
        lines = [json.dumps(header)]
        lines += [json.dumps(r.to_json(), ensure_ascii=False) for r in self.records]
        return "\n".join(lines) + "\n"

    def save(self, file: str | os.PathLike[str] | IO[str]) -> None:
        """Write :meth:`dumps` to ``file`` (a path, or a text stream)."""
        if isinstance(file, (str, os.PathLike)):
            with open(file, "w", encoding="utf-8") as out:
                out.write(self.dumps())
        else:
            file.write(self.dumps())

    @classmethod
    def loads(cls, text: str) -> Trace:
        """A detached trace holding the records of JSON lines made by :meth:`dumps`."""
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            raise ValueError("not a netcomp trace: empty")
        header = json.loads(lines[0])
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError(f"not a netcomp trace: first line is {lines[0][:80]!r}")
        if header.get("version") != VERSION:
            raise ValueError(f"netcomp trace version {header.get('version')!r}, not {VERSION}")
        records = [TraceRecord.from_json(json.loads(line)) for line in lines[1:]]
        trace = cls(max(int(header.get("capacity", 1)), len(records), 1))
        trace._records.extend(records)
        trace.dropped = int(header.get("dropped", 0))
        return trace

    @classmethod
    def load(cls, file: str | os.PathLike[str] | IO[str]) -> Trace:
        """The trace saved in ``file`` (a path, or a text stream) by :meth:`save`."""
        if isinstance(file, (str, os.PathLike)):
            with open(file, encoding="utf-8") as source:
                return cls.loads(source.read())
        return cls.loads(file.read())

    def __repr__(self) -> str:
        state = "attached" if self.attached else "detached"
        return f"<Trace {state} records={len(self._records)} dropped={self.dropped}>"


def _shorten_error(error: BaseException, width: int = 80) -> str:
    """``Type: message``, cut to ``width`` characters."""
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= width else text[: width - 3] + "..."
