"""Pipelines: what one component emits goes to the next one as input (Kamaelia's
``Pipeline(producer, consumer)``), with backpressure flowing back.

Rules:
* ``pipeline(a, b, c)`` links each stage to the next by event names only (this module
  knows no sockets): the *output* of a stage is its ``output_event`` (``"read"`` unless
  the component declares another name) fired on its channel; the last positional
  argument is the data (``read(data)``, a server's ``read(sock, data)``). The pipeline
  fires ``write(data)`` on the next stage's channel, in order.
* The *end* of a stage's output is ``eof()`` or ``disconnected()`` on its channel; the
  next stage then gets ``close()`` (after the writes before it: events are FIFO), once.
* Backpressure: after each ``write`` is handled, a stage whose ``congested`` attribute is
  true holds the flow. While any stage is congested the *source* (the first stage) gets
  ``pause()``; once every congested stage has fired ``drained()``, ``resume()``. So what
  is in flight is bounded by what the source makes between the two, whatever the
  lengths of the stages in between. A stage that can say ``congested`` must say
  ``drained`` too (the net clients do).
* Stages need distinct channels (an event fired on a shared channel would reach both).
  Stages that are not in a tree yet are registered under the pipeline.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable
from typing import IO, Any

from ._components import BaseComponent
from ._events import Event
from ._handlers import handler
from ._manager import Manager
from ._scheduling import TimerHandle

__all__ = ["FileReader", "Pipeline", "pipeline"]

#: Events that end a stage's output.
END_EVENTS = ("eof", "disconnected")


class Pipeline(BaseComponent):
    """Stages in a line: each one's output is the next one's ``write`` input.

    ``stages``: two or more components with distinct channels. Read-only diagnostics:
    ``paused`` (the source is held), ``pauses`` (how many times it was), ``congested``
    (indexes of the stages holding the flow).
    """

    channel = "pipeline"

    def __init__(self, *stages: Manager, channel: Any = "pipeline") -> None:
        """Link ``stages`` (see the module's rules); raise if there are fewer than two,
        if one is not a component, or if two share a channel."""
        if len(stages) < 2:
            raise ValueError(f"a pipeline links two or more components, got {len(stages)}")
        seen: dict[Hashable, Manager] = {}
        for stage in stages:
            if not isinstance(stage, Manager):
                raise TypeError(f"a pipeline stage is a component, not {stage!r}")
            name = getattr(stage, "channel", None)
            if name is None or name == "*" or name in seen:
                raise ValueError(
                    f"pipeline stages need distinct channels: {stage!r} has {name!r}"
                    + (f", as {seen[name]!r} has" if name in seen else "")
                )
            seen[name] = stage
        super().__init__(channel=channel)
        self.stages: tuple[Manager, ...] = stages
        self.paused = False
        self.pauses = 0
        self.congested: set[int] = set()
        self._ended: set[int] = set()
        for index, stage in enumerate(stages):
            if index + 1 < len(stages):
                output = getattr(stage, "output_event", "read")
                self.add_handler(self._forwarder(index), output, channel=stage.channel)
                self.add_handler(self._ender(index), *END_EVENTS, channel=stage.channel)
            if index > 0:
                self.add_handler(self._drainer(index), "drained", channel=stage.channel)
        for stage in stages:
            if stage.parent is None and stage is not self:
                stage.register(self)

    # Handlers are closures over the stage index: one per link, added at construction.
    def _forwarder(self, index: int) -> Callable[..., None]:
        target = self.stages[index + 1]

        def forward(*args: Any) -> None:
            if not args:
                return
            value = self.fire(Event.create("write", args[-1]), target.channel)
            value.add_done_callback(lambda _value: self._check(index + 1))

        return forward

    def _ender(self, index: int) -> Callable[..., None]:
        target = self.stages[index + 1]

        def end(*args: Any) -> None:
            if index not in self._ended:
                self._ended.add(index)
                self.fire(Event.create("close"), target.channel)

        return end

    def _drainer(self, index: int) -> Callable[..., None]:
        def drained(*args: Any) -> None:
            self.congested.discard(index)
            if self.paused and not self.congested:
                self.paused = False
                self.fire(Event.create("resume"), self.stages[0].channel)

        return drained

    def _check(self, index: int) -> None:
        """A ``write`` to stage ``index`` is done: hold the source if that stage is full."""
        if not getattr(self.stages[index], "congested", False):
            return
        self.congested.add(index)
        if not self.paused:
            self.paused = True
            self.pauses += 1
            self.fire(Event.create("pause"), self.stages[0].channel)

    def __repr__(self) -> str:
        names = " | ".join(type(stage).__name__ for stage in self.stages)
        state = " paused" if self.paused else ""
        return f"<Pipeline/{self.channel} {names}{state}>"


def pipeline(*stages: Manager, channel: Any = "pipeline") -> Pipeline:
    """``pipeline(a, b, c)``: a :class:`Pipeline` of the stages (register it, or run it)."""
    return Pipeline(*stages, channel=channel)


class FileReader(BaseComponent):
    """A source for pipelines: reads a file in chunks, ``read(data)`` each, then ``eof()``.

    It starts when the loop starts (or when it joins a running tree). ``chunk_size``:
    bytes per ``read``. ``rate``: bytes per second at most (on the loop's clock; None:
    as fast as the loop turns, one chunk per pass). Events in: ``pause()``, ``resume()``
    (a pipeline's backpressure), ``close()``. Out: ``read(data)``, ``eof()``.
    Diagnostics: ``sent`` (bytes read so far), ``paused``, ``pauses``. A regular file is
    read on the loop thread (a chunk at a time); a pipe or socket would block it.
    """

    channel = "filereader"

    def __init__(
        self,
        path: str | os.PathLike[str],
        chunk_size: int = 64 * 1024,
        rate: float | None = None,
        channel: Any = "filereader",
    ) -> None:
        """Check ``path`` can be read now (a missing file raises here); it is opened when
        reading starts."""
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size is a positive number of bytes, got {chunk_size!r}")
        if rate is not None and (isinstance(rate, bool) or not rate > 0):
            raise ValueError(f"rate is bytes per second (> 0) or None, got {rate!r}")
        super().__init__(channel=channel)
        self.path = os.fspath(path)
        self.chunk_size = chunk_size
        self.rate = rate
        self.sent = 0
        self.paused = False
        self.pauses = 0
        with open(self.path, "rb"):
            pass
        self._file: IO[bytes] | None = None
        self._started = False
        self._ended = False
        self._timer: TimerHandle | None = None
        self._scheduled = 0  # the token of the tick due (0: none); older ones are stale
        self._tokens = 0
        self._due = 0.0  # loop time the next chunk may go (with a rate)

    @handler("started", channel="*")
    def _on_loop_started(self, manager: Any) -> None:
        self._start()

    @handler("registered", channel="*")
    def _on_registered(self, component: Any, parent: Any) -> None:
        if component is self and self.loop.running:
            self._start()

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        self._file = open(self.path, "rb")  # noqa: SIM115 (closed at the end: _finish)
        self._due = self.loop.time()
        self._schedule()

    def _schedule(self) -> None:
        if self._scheduled or self.paused or self._file is None:
            return
        self._tokens += 1
        self._scheduled = self._tokens
        if self.rate is None:
            self.loop.call_soon(self._tick, self._tokens)
        else:
            self._timer = self.loop.call_at(self._due, self._tick, self._tokens)

    def _unschedule(self) -> None:
        self._scheduled = 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self, token: int) -> None:
        if token != self._scheduled:
            return  # paused (and maybe resumed) since it was scheduled
        self._scheduled = 0
        self._timer = None
        if self._file is None:
            return
        data = self._file.read(self.chunk_size)
        if not data:
            self._finish()
            return
        self.sent += len(data)
        if self.rate is not None:
            self._due += len(data) / self.rate
        self.fire(Event.create("read", data))
        self._schedule()

    def _finish(self) -> None:
        self._unschedule()
        if self._ended:
            return
        self._ended = self._started = True  # a reader closed before it started never will
        if self._file is not None:
            self._file.close()
            self._file = None
        self.fire(Event.create("eof"))

    @handler("pause")
    def _on_pause(self) -> None:
        if not self.paused:
            self.paused = True
            self.pauses += 1
            self._unschedule()

    @handler("resume")
    def _on_resume(self) -> None:
        if self.paused:
            self.paused = False
            self._due = max(self._due, self.loop.time())  # no burst to catch up
            if self._started:
                self._schedule()

    @handler("close")
    def _on_close(self) -> None:
        self._finish()

    def loop_ended(self) -> None:
        """The loop is gone: close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __repr__(self) -> str:
        state = "done" if self._ended else "paused" if self.paused else "reading"
        return f"<FileReader/{self.channel} {self.path!r} {self.sent} bytes {state}>"
