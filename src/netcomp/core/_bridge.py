"""Bridges: events handled in another process's tree, and their answers brought back.

Rules (docs/architecture.md, "Bridges"):
* A :class:`Bridge` owns one connected stream socket (an end of a ``socketpair`` under
  ``start(process=True, link=...)``), serviced by the loop's selector through a watch: no
  thread, no polling. Output that the socket does not take at once waits in a buffer
  sent when it is writable; ``stopped`` waits for it (within the stop timeout).
* ``ipc(event, channel=None)``, heard by a Bridge, sends ``event`` to the other end, which
  fires it on ``channel`` (else on the channels the ``ipc`` was fired on). The ``ipc``
  event's value becomes the answer: the results, or the error as a :class:`RemoteError`
  (type name, message, remote traceback). The receiving side takes a handler's error as a
  caller that awaits it does: not logged there, it travels back to be reported once.
* Only data crosses, as JSON lines with tags (``_wire``): no pickle. An event is rebuilt
  from a class known on the receiving side only: the ``events=`` given to the Bridge, or
  by default an ``Event`` subclass already defined in that process, found by module and
  qualified name. Nothing is imported because a message names it, and the class's own
  ``__init__`` does not run: the event gets the sender's ``args`` and ``kwargs`` as they
  were. A refused message fires ``error(err)`` on the bridge's channel (logged when nobody
  handles it), is answered as refused when it was a call, and the loop goes on.
* When the link ends (the other side closed, an I/O error, ``close()``, the loop ended),
  pending calls fail with :class:`BridgeError` and ``disconnected()`` is fired.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import selectors
import socket
import uuid
from collections.abc import Iterable
from typing import Any

from . import _manager
from ._components import BaseComponent
from ._errors import NotHandled
from ._events import Event
from ._future import Future
from ._handlers import handler
from ._manager import Manager
from ._remote import (
    BridgeError,
    RemoteError,
    class_id,
    defined_event,
    error_info,
    field,
    ipc,
    link_disconnected,
    link_error,
    link_ready,
)
from ._wire import MalformedMessage, NotSendable, dumps, loads, to_json

__all__ = ["Bridge"]

log = logging.getLogger("netcomp")

#: The version of the messages; both ends must speak the same.
PROTOCOL = 1
READ_SIZE = 256 * 1024


class Bridge(BaseComponent):
    """One end of a link between two trees in two processes: ``ipc`` events cross it.

    ``start(process=True, link=other)`` makes a pair (one in each process) over a
    ``socketpair``; a Bridge can also own any connected stream socket (``sock``) whose
    other end is a Bridge. ``events``: the Event classes this end rebuilds (default: any
    Event subclass defined in this process). ``max_message``: the longest message
    accepted, in bytes. ``stop_when_closed``: stop this tree when the link ends (the
    child's end under ``start(process=True, link=...)``).

    Fires on its channel: ``ready(bridge)`` once the other end said hello (its loop runs),
    ``disconnected()`` when the link ends, and ``error(err)`` (a :class:`BridgeError`)
    for a message it refused; ``error`` is logged when nobody handles it.
    """

    channel = "bridge"

    def __init__(
        self,
        sock: socket.socket,
        *,
        events: Iterable[type[Event]] | None = None,
        max_message: int = 16 * 1024 * 1024,
        stop_when_closed: bool = False,
        channel: Any = "bridge",
    ) -> None:
        if not isinstance(sock, socket.socket) or sock.type != socket.SOCK_STREAM:
            raise TypeError(f"Bridge() needs a connected stream socket, got {sock!r}")
        if not isinstance(max_message, int) or max_message < 1024:
            raise ValueError(f"max_message is a number of bytes >= 1024, got {max_message!r}")
        known = None
        if events is not None:
            known = {}
            for cls in events:
                if not (isinstance(cls, type) and issubclass(cls, Event)):
                    raise TypeError(f"events= lists Event classes, got {cls!r}")
                known[class_id(cls)] = cls
        super().__init__(channel=channel)
        sock.setblocking(False)
        #: The socket this end owns.
        self.socket = sock
        #: The other process's id, once known (its hello, or the child ``start`` made).
        self.peer_pid: int | None = None
        self.max_message = max_message
        self.stop_when_closed = stop_when_closed
        self._known: dict[str, type[Event]] | None = known
        self._inbox = bytearray()
        self._outbox = bytearray()
        self._calls: dict[int, tuple[Future, Event, Event]] = {}
        self._ids = itertools.count(1)
        self._drained: list[Future] = []
        self._closed = False
        self._watch = self.loop.watch(sock, selectors.EVENT_READ, self._io)
        self.loop.call_soon(self._send, {"op": "hello", "version": PROTOCOL, "pid": os.getpid()})

    @property
    def connected(self) -> bool:
        """Whether the link is up (not yet closed on either side, as far as known)."""
        return not self._closed

    @property
    def pending(self) -> int:
        """How many calls sent from this end still wait for their answer."""
        return len(self._calls)

    # ------------------------------------------------------------ sending
    @handler("ipc")
    def _on_ipc(self, event: Event, remote: Event, channel: Any = None) -> Future:
        future = Future()
        if not isinstance(remote, Event):
            future.set_exception(TypeError(f"ipc() carries an Event, not {remote!r}"))
            return future
        if self._closed:
            future.set_exception(BridgeError(f"{self!r} is closed: {remote!r} was not sent"))
            return future
        channels = (channel,) if channel is not None else event.channels
        call_id = next(self._ids)
        try:
            line = self._encode(
                {
                    "op": "event",
                    "id": call_id,
                    "class": class_id(type(remote)),
                    "name": remote.name,
                    "args": to_json(remote.args, "args"),
                    "kwargs": to_json(remote.kwargs, "kwargs"),
                    "channels": to_json(channels, "channels"),
                }
            )
        except NotSendable as error:
            future.set_exception(NotSendable(f"cannot send {remote!r}: {error}"))
            return future
        self._calls[call_id] = (future, event, remote)
        self._send(line)
        return future

    def _encode(self, message: dict[str, Any]) -> bytes:
        """``message`` as a line, refused if the other end would refuse it (max_message:
        both ends of a pair made by ``start`` use the same)."""
        line = dumps(message)
        if len(line) > self.max_message:
            raise NotSendable(
                f"the message is {len(line)} bytes, more than max_message ({self.max_message})"
            )
        return line

    def _send(self, message: dict[str, Any] | bytes) -> bool:
        """Queue one message (sent at once when the socket takes it); False if closed."""
        if self._closed:
            return False
        line = message if isinstance(message, bytes) else dumps(message)
        if not self._outbox:
            try:
                sent = self.socket.send(line)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as error:
                self._end(f"write failed: {error}")
                return False
            if sent == len(line):
                return True
            line = line[sent:]
            self._watch.modify(selectors.EVENT_READ | selectors.EVENT_WRITE)
        self._outbox += line
        return True

    def _flush(self) -> None:
        try:
            sent = self.socket.send(self._outbox)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._end(f"write failed: {error}")
            return
        del self._outbox[:sent]
        if not self._outbox:
            self._watch.modify(selectors.EVENT_READ)
            drained, self._drained = self._drained, []
            for future in drained:
                future.set_result(None)

    # ---------------------------------------------------------- receiving
    def _io(self, mask: int) -> None:
        if mask & selectors.EVENT_WRITE and not self._closed:
            self._flush()
        if mask & selectors.EVENT_READ and not self._closed:
            self._read()

    def _read(self) -> None:
        try:
            data = self.socket.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._end(f"read failed: {error}")
            return
        if not data:
            self._end("the other end closed the link")
            return
        inbox = self._inbox
        inbox += data
        start = 0
        while not self._closed:
            end = inbox.find(b"\n", start)
            if end < 0:
                break
            line, start = bytes(inbox[start:end]), end + 1
            if len(line) > self.max_message:
                self._report(f"refused a message of {len(line)} bytes (max_message)")
            else:
                self._receive(line)
        if self._closed:
            return
        del inbox[:start]
        if len(inbox) > self.max_message:
            self._report(f"the other end sent more than {self.max_message} bytes in one message")
            self._end("a message too long")

    def _receive(self, line: bytes) -> None:
        try:
            message = loads(line)
            op = message.get("op")
            if op == "event":
                self._take_event(message)
            elif op == "value":
                self._take_value(message)
            elif op == "hello":
                self._take_hello(message)
            else:
                raise MalformedMessage(f"unknown op {op!r}")
        except MalformedMessage as error:
            self._report(f"refused a message from {self._peer()}: {error}")

    def _take_hello(self, message: dict[str, Any]) -> None:
        version = message.get("version")
        if version != PROTOCOL:
            self._report(f"{self._peer()} speaks version {version!r}, this end {PROTOCOL}")
            self._end("another protocol version")
            return
        self.peer_pid = field(message, "pid", int)
        self.fire(link_ready(self), self.channel)

    def _take_event(self, message: dict[str, Any]) -> None:
        call_id = field(message, "id", int)
        try:
            event, channels = self._rebuild(message)
        except MalformedMessage as error:
            self._send({"op": "value", "id": call_id, "refused": str(error)})
            raise
        value = self.fire(event, *channels)
        value.observed = True  # a handler's error is the caller's, at the other end
        value.add_done_callback(lambda done: self._answer(call_id, event, done))

    def _rebuild(self, message: dict[str, Any]) -> tuple[Event, tuple[Any, ...]]:
        name = field(message, "name", str)
        wire_name = field(message, "class", str)
        args = field(message, "args", tuple)
        kwargs = field(message, "kwargs", dict)
        channels = field(message, "channels", tuple)
        if not name or not channels or not all(type(key) is str for key in kwargs):
            raise MalformedMessage("an event needs a name, channels and keyword names")
        try:
            for channel in channels:
                hash(channel)
        except TypeError:
            raise MalformedMessage(f"channels must be hashable, got {channels!r}") from None
        if self._known is not None:
            cls = self._known.get(wire_name)
            if cls is None:
                raise MalformedMessage(f"{wire_name} is not among this bridge's events")
        else:
            cls = defined_event(wire_name)
            if cls is None:
                raise MalformedMessage(
                    f"unknown event class {wire_name}: not defined in process {os.getpid()}"
                )
        if issubclass(cls, ipc):
            raise MalformedMessage("an ipc event does not cross a bridge (send what it carries)")
        event = cls.__new__(cls)
        Event.__init__(event, *args, **kwargs)  # the sender's arguments, as they were
        if event.name != name:
            event.name = name
        return event, channels

    def _answer(self, call_id: int, event: Event, value: Any) -> None:
        error = value.exception
        line = None
        if error is None:
            try:
                result = to_json(value.value, "the result")
                handled = bool(value.handled)
                line = self._encode(
                    {"op": "value", "id": call_id, "value": result, "handled": handled}
                )
            except NotSendable as refusal:
                error = refusal
        if line is None:
            assert error is not None
            line = dumps({"op": "value", "id": call_id, "error": error_info(error)})
        if not self._send(line) and value.exception is not None:
            log.error(
                "%r raised, and its caller in %s is gone", event, self._peer(), exc_info=error
            )

    def _take_value(self, message: dict[str, Any]) -> None:
        call_id = field(message, "id", int)
        entry = self._calls.pop(call_id, None)
        if entry is None:
            raise MalformedMessage(f"an answer to no call (id {call_id})")
        future, ipc_event, remote = entry
        if "refused" in message:
            reason = message["refused"]
            future.set_exception(BridgeError(f"{self._peer()} refused {remote!r}: {reason}"))
        elif "error" in message:
            info = field(message, "error", dict)
            texts = [info.get(key) for key in ("type", "message", "traceback")]
            if not all(isinstance(text, str) for text in texts):
                future.set_exception(BridgeError(f"{self._peer()} sent a malformed error"))
                raise MalformedMessage("an error needs type, message and traceback texts")
            future.set_exception(RemoteError(texts[0], texts[1], self.peer_pid, texts[2]))
        elif message.get("handled") is False and message.get("value") is None:
            value = ipc_event.value
            if value is not None:
                value.handled = False
            if value is not None and value.observed:  # a caller awaits: say so, as call() does
                channels = ", ".join(repr(c) for c in remote.channels) or repr("*")
                future.set_exception(
                    NotHandled(
                        f"no handler in {self._peer()} took {remote!r}: nothing handles "
                        f"{remote.name!r} there (sent on channel(s) {channels})"
                    )
                )
            else:
                future.set_result(None)
        else:
            future.set_result(message.get("value"))

    # ------------------------------------------------------------- ending
    def close(self) -> None:
        """End the link: what is buffered is sent if the socket takes it now, pending
        calls fail with :class:`BridgeError`, ``disconnected()`` is fired. On the loop's
        thread (``loop.call_soon_threadsafe(bridge.close)`` from another)."""
        self._end("closed on this side")

    def _end(self, reason: str, notify: bool = True) -> None:
        if self._closed:
            return
        if self._outbox:
            with contextlib.suppress(OSError):
                self.socket.send(self._outbox)  # a last try, without waiting
        self._closed = True
        self._watch.cancel()
        with contextlib.suppress(OSError):
            self.socket.close()
        self._inbox.clear()
        self._outbox.clear()
        calls, self._calls = self._calls, {}
        for future, _ipc, remote in calls.values():
            future.set_exception(
                BridgeError(
                    f"the link to {self._peer()} ended before {remote!r} was answered: {reason}"
                )
            )
        drained, self._drained = self._drained, []
        for waiting in drained:
            waiting.set_result(None)
        log.info("%r: the link to %s ended: %s", self, self._peer(), reason)
        if notify:
            self.fire(link_disconnected(), self.channel)
            if self.stop_when_closed:
                self.root.stop()

    def _report(self, text: str) -> None:
        self.fire(link_error(BridgeError(text)), self.channel)

    def _peer(self) -> str:
        return "the other process" if self.peer_pid is None else f"process {self.peer_pid}"

    @handler("stopped", channel="*")
    def _on_stopped(self, manager: Any) -> Future | None:
        if self._closed or not self._outbox:
            return None
        future = Future()  # the stop waits until what is buffered has been sent
        self._drained.append(future)
        return future

    @handler("prepare_unregister", channel="*")
    def _on_prepare_unregister(self, component: Any) -> None:
        if component is self:
            self.close()

    def loop_changed(self) -> None:
        """Hook: the watch on the socket follows this bridge to its new loop."""
        if not self._closed:
            self._watch.move(self.loop)

    def loop_ended(self) -> None:
        """Hook: the loop ended; so does the link (pending calls fail)."""
        self._end("its loop ended", notify=False)


def _link_process(manager: Manager, link: Manager) -> Bridge:
    """``manager.start(process=True, link=link)``: run ``manager``'s tree in a forked
    child, with a Bridge in each tree over a ``socketpair``; the parent's is returned,
    registered to ``link``. The child's stops its tree when the link ends."""
    if not isinstance(link, Manager):
        raise TypeError(f"link= takes a Manager or component, not {link!r}")
    if link.root is manager.root:
        raise ValueError(f"link= names another tree than the one started; {link!r} is in it")
    ours, theirs = socket.socketpair()
    channel = f"bridge-{uuid.uuid4().hex[:12]}"

    def in_child() -> None:
        ours.close()
        child = Bridge(theirs, channel=channel, stop_when_closed=True)
        child.peer_pid = os.getppid()  # known now: no need to wait for the parent's hello
        child.register(manager)

    try:
        manager.loop.start(True, before_run=in_child)
    except BaseException:
        ours.close()
        theirs.close()
        raise
    theirs.close()
    bridge = Bridge(ours, channel=channel)
    bridge.peer_pid = manager.loop.process.pid
    bridge.register(link)
    return bridge


_manager.process_linker = _link_process
