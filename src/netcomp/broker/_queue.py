"""The worker side of a :class:`WorkQueue`: read a stream as one member of its consumer
group, hand each entry to the bridge, acknowledge it once handled, claim what others left.

Rules:
* Reads are ``XREADGROUP ... BLOCK`` on a link of their own (a blocked link can do nothing
  else); at most ``prefetch`` entries are being handled or asked for here at any time.
  Two reads are kept in flight, each for half of that room (one when the room is one):
  Redis answers a blocked read as soon as the first of a sender's pipelined ``XADD`` runs,
  with that one entry, and the second read, already waiting behind it on the link, takes
  the rest at once instead of one more round trip later.
* An entry is acknowledged (``XACK``, then ``XDEL``: the stream keeps only work not yet
  done) when its handlers finished without error and one of them took it by name. Acks of
  one loop turn go out as one command.
* A read Redis refuses (``LOADING`` while it restarts) is an ``error`` event, and the
  worker reads again ``READ_AGAIN`` seconds later (a refused read used to stop it).
* A failed entry stays pending in the group. Every ``claim_interval`` seconds
  ``XAUTOCLAIM`` takes entries idle for ``idle_timeout`` (a dead worker's, a failed one, or
  one whose reply the link lost) and they are handled again, here; ``XPENDING`` gives how
  often each was delivered, and one delivered more than ``max_deliveries`` times goes to
  the dead-letter stream (with the reason) and is acknowledged. So is an entry that
  cannot become an event (a malformed payload, an unknown class): at once.
* Entries handled here for longer than half ``idle_timeout`` are claimed again by this
  worker (``XCLAIM ... JUSTID``, which resets their idle time), so that a slow handler is
  not taken for a dead worker's.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Protocol

from ..core import Event, NetcompError, TimerHandle, Value
from ._client import RedisClient
from ._events import WireError, error
from ._resp import RedisError
from ._specs import WorkQueue
from ._wire import EventBatch, EventFields, read_message

__all__ = ["Consumer", "Undeliverable"]

#: XREADGROUP commands a worker keeps in flight (see the module's rules).
READS = 2
#: Seconds before reading again after Redis refused a read (``LOADING`` after a restart).
READ_AGAIN = 0.5

log = logging.getLogger("netcomp.broker")


class Undeliverable(NetcompError, RuntimeError):
    """A work-queue entry went to the dead-letter stream ``dead_letter``: why, and where."""

    def __init__(self, stream: str, entry: str, reason: str, dead_letter: str) -> None:
        super().__init__(f"entry {entry} of {stream} moved to {dead_letter}: {reason}")
        self.stream = stream
        self.entry = entry
        self.reason = reason
        self.dead_letter = dead_letter


class Bridge(Protocol):
    """What a consumer needs of its bridge."""

    origin: str
    commands: RedisClient
    loop: Any

    def fire(self, event: Event, *channels: Any) -> Value: ...

    def deliver(self, spec: WorkQueue, origin: str, fields: EventFields) -> Value | None: ...


def _payload(fields: Any) -> bytes:
    """The ``d`` field of an entry's field/value list (``b""`` when there is none)."""
    if len(fields) == 2 and fields[0] == b"d" and type(fields[1]) is bytes:
        return fields[1]  # what a bridge adds
    for index in range(0, len(fields or ()) - 1, 2):
        if fields[index] == b"d":
            value = fields[index + 1]
            return value if isinstance(value, bytes) else b""
    return b""


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class Consumer:
    """One process's membership of one work queue's consumer group."""

    def __init__(self, bridge: Bridge, spec: WorkQueue, key: str, client: RedisClient) -> None:
        self.bridge = bridge
        self.spec = spec
        self.key = key
        self.dead_letter = spec.dead_letter or f"{key}:dead"
        self.client = client
        self.name = bridge.origin
        self.block_ms = 5000
        self.active: dict[bytes, float] = {}  # entry id -> loop time it began
        self._reads = 0  # XREADGROUP commands in flight (at most READS)
        self._asked = 0  # the entries they asked for
        self._stopped = False
        self._acks: list[bytes] = []
        self._cursor: bytes | str = "0-0"
        self._timer: TimerHandle | None = None
        self._again: TimerHandle | None = None  # a read refused: the next one

    # ----------------------------------------------------------- the group
    def session(self) -> list[tuple[tuple[Any, ...], Any]]:
        """Commands for every new link: create the group (reading the stream from its
        start, so that work sent before any worker existed is done)."""
        args = ("XGROUP", "CREATE", self.key, self.spec.group, "0", "MKSTREAM")
        return [(args, self._created)]

    def _created(self, reply: Any) -> None:
        if isinstance(reply, RedisError) and reply.code != "BUSYGROUP":
            self.bridge.fire(error(reply))

    # ------------------------------------------------------------ reading
    def start(self) -> None:
        """The link is up: read, and claim on a timer."""
        if self._stopped:
            return
        if self._timer is None:
            self._timer = self.bridge.loop.call_later(self.spec.every, self.claim)
        self.read()

    def stop(self) -> None:
        """Take nothing more (the loop stops)."""
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._again is not None:
            self._again.cancel()
            self._again = None

    def read(self) -> None:
        """Ask for as many entries as there is room for, in at most ``READS`` reads."""
        prefetch = self.spec.prefetch
        while self._reads < READS and not self._stopped and self.client.ready:
            room = prefetch - len(self.active) - self._asked
            if room <= 0:
                return
            count = min(room, max(1, prefetch // READS))
            self._reads += 1
            self._asked += count
            self.client.send(
                "XREADGROUP", "GROUP", self.spec.group, self.name, "COUNT", count,
                "BLOCK", self.block_ms, "STREAMS", self.key, ">",
                callback=functools.partial(self._got, count), retry=False,
            )  # fmt: skip

    def _read_again(self) -> None:
        self._again = None
        self.read()

    def _got(self, count: int, reply: Any) -> None:
        self._reads -= 1
        self._asked -= count
        if isinstance(reply, ConnectionError):
            return  # read again when the link is back (its lost entries are claimed later)
        if isinstance(reply, RedisError):
            if reply.code == "NOGROUP":  # the stream was deleted: make it anew
                for args, callback in self.session():
                    self.client.send(*args, callback=callback, retry=False)
                self.read()
            else:  # LOADING after a restart, or another refusal: say it, read again soon
                self.bridge.fire(error(reply))
                if self._again is None:
                    delay = min(READ_AGAIN, self.spec.every)
                    self._again = self.bridge.loop.call_later(delay, self._read_again)
            return
        fired: list[tuple[bytes, Value]] = []
        now = self.bridge.loop.time()
        for _key, entries in reply or ():
            for entry_id, fields in entries:
                value = self._entry(entry_id, fields, 1, now)
                if value is not None:
                    fired.append((entry_id, value))
        if fired:
            self.bridge.loop.call_soon(self._settle, fired, True)
        self.read()

    def _entry(
        self, entry_id: bytes, fields: list[Any] | None, deliveries: int, now: float
    ) -> Value | None:
        """Fire the entry's event; its Value, or None (done with, or buried, already)."""
        if entry_id in self.active or self._stopped:
            return None
        if not fields:
            self.ack(entry_id)  # deleted from the stream: nothing left to do
            return None
        payload = fields[1] if len(fields) == 2 and fields[0] == b"d" else _payload(fields)
        try:
            message = read_message(payload)
            if type(message) is not EventBatch:
                raise WireError("a reply sent to a work queue", payload)
            if len(message.events) != 1:
                raise WireError("a work-queue entry holds one event", payload)
        except WireError as err:
            self.bridge.fire(error(err))
            self.bury(entry_id, payload, deliveries, err.reason)
            return None
        fields_ = message.events[0]
        value = self.bridge.deliver(self.spec, message.origin, fields_)
        if value is None:
            self.bury(entry_id, payload, deliveries, f"event {fields_[0]!r} cannot be built")
            return None
        self.active[entry_id] = now
        return value

    def _settle(self, fired: list[tuple[bytes, Value]], early: bool) -> None:
        # Called once the events fired from one read are dispatched: those whose handlers
        # are done are acknowledged together; the others (coroutines, futures) when they
        # are. No callback per entry when handlers finish at once. ``early``: this runs
        # right after the read, before the events' batch: look again after it.
        if early and not fired[-1][1].result:
            self.bridge.loop.call_soon(self._settle, fired, False)
            return
        for entry_id, value in fired:
            if value.result:
                self._finished(entry_id, value)
            else:
                value.add_done_callback(functools.partial(self._done, entry_id))
        self.read()

    def _done(self, entry_id: bytes, value: Value) -> None:
        self._finished(entry_id, value)
        self.read()

    def _finished(self, entry_id: bytes, value: Value) -> None:
        self.active.pop(entry_id, None)
        if value.exception is None and value.handled:
            self.ack(entry_id)
        elif value.exception is None:
            event = value.event
            log.warning(
                "no handler here took %r from %s (entry %s): left for another worker",
                event,
                self.key,
                _text(entry_id),
            )

    # ---------------------------------------------------------------- acks
    def ack(self, entry_id: bytes) -> None:
        """Acknowledge (and delete) the entry; acks of one loop turn go out together."""
        if not self._acks:
            self.bridge.loop.call_soon(self._flush_acks)
        self._acks.append(entry_id)

    def _flush_acks(self) -> None:
        ids, self._acks = self._acks, []
        if ids:
            commands = self.bridge.commands
            commands.send("XACK", self.key, self.spec.group, *ids)
            commands.send("XDEL", self.key, *ids)

    def bury(self, entry_id: bytes, payload: bytes, deliveries: int, reason: str) -> None:
        """Move an entry to the dead-letter stream, with why, and acknowledge it."""
        self.bridge.commands.send(
            "XADD", self.dead_letter, "MAXLEN", "~", 10000, "*",
            "d", payload, "id", entry_id, "stream", self.key, "group", self.spec.group,
            "deliveries", deliveries, "reason", reason, "consumer", self.name,
        )  # fmt: skip
        self.ack(entry_id)
        self.bridge.fire(error(Undeliverable(self.key, _text(entry_id), reason, self.dead_letter)))

    # -------------------------------------------------------------- claims
    def claim(self) -> None:
        """Take entries idle for ``idle_timeout`` (and keep our slow ones); re-arms."""
        self._timer = None
        if self._stopped:
            return
        self._timer = self.bridge.loop.call_later(self.spec.every, self.claim)
        commands = self.bridge.commands
        if not commands.ready:
            return
        idle_ms = int(self.spec.idle_timeout * 1000)
        now = self.bridge.loop.time()
        slow = [i for i, began in self.active.items() if now - began >= self.spec.idle_timeout / 2]
        if slow:
            commands.send(
                "XCLAIM", self.key, self.spec.group, self.name, 0, *slow, "JUSTID", retry=False
            )
        commands.send(
            "XAUTOCLAIM", self.key, self.spec.group, self.name, idle_ms, self._cursor,
            "COUNT", self.spec.prefetch, callback=self._claimed, retry=False,
        )  # fmt: skip

    def _claimed(self, reply: Any) -> None:
        if isinstance(reply, Exception):
            if not isinstance(reply, ConnectionError):
                self.bridge.fire(error(reply))
            return
        self._cursor = reply[0]
        for entry_id in reply[2] if len(reply) > 2 else ():
            self.ack(entry_id)  # claimed, but deleted from the stream meanwhile
        commands = self.bridge.commands
        for entry_id, fields in reply[1]:
            if entry_id in self.active:
                continue

            def counted(answer: Any, entry_id: bytes = entry_id, fields: Any = fields) -> None:
                self._counted(entry_id, fields, answer)

            commands.send(
                "XPENDING", self.key, self.spec.group, entry_id, entry_id, 1,
                callback=counted, retry=False,
            )  # fmt: skip
        if reply[0] not in (b"0-0", "0-0") and len(reply[1]) >= self.spec.prefetch:
            self.bridge.loop.call_soon(self._claim_more)

    def _claim_more(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.claim()

    def _counted(self, entry_id: bytes, fields: Any, answer: Any) -> None:
        if isinstance(answer, Exception):
            return  # claimed to us: the next claim sees it again
        deliveries = int(answer[0][3]) if answer else 1
        if deliveries > self.spec.max_deliveries:
            payload = _payload(fields)
            reason = f"delivered {deliveries - 1} times without success"
            self.bury(entry_id, payload, deliveries - 1, reason)
            return
        value = self._entry(entry_id, fields, deliveries, self.bridge.loop.time())
        if value is not None:
            value.add_done_callback(lambda v: self._done(entry_id, v))
