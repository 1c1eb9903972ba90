"""RedisBridge: events of chosen channels cross processes and machines through Redis.

Rules (docs/broker.md):
* An event fired on a bridged channel, of a registered class, goes to Redis: PUBLISH for a
  :class:`Broadcast` channel (local handlers run too), XADD for a :class:`WorkQueue`
  channel (the bridge's handler runs first and stops the event: it is handled where the
  queue hands it, by one worker). Events fired on ``"*"`` only are not bridged.
* The events of one loop turn on one broadcast channel are published together, as one
  message (at most ``BATCH_EVENTS`` events or about ``BATCH_BYTES``), once the turn's
  batch is dispatched; each is encoded when its handler runs, so one that cannot cross
  is refused there (``TypeError`` on its Value).
* What arrives is fired locally on the same channel, as an instance of the registered
  class built with the sender's arguments, marked so that it is not sent back. A process
  never hears its own broadcasts; a broadcast resent after a broken link is recognised by
  its sequence number and heard once.
* ``await self.call(event)`` on a bridged channel waits for the remote answer (its value,
  or its error re-raised: the same class when known here, else :class:`RemoteError`), for
  at most ``call_timeout`` seconds (a shorter ``timeout=`` of the call wins). The first
  answer counts; on a broadcast channel only processes whose handlers took the event
  answer. ``fire()`` alone asks for no answer and costs no reply.
* Links: ``commands`` (publish, add, acknowledge, claim), ``subscriber`` (pub/sub), and
  one blocking link per consumed work queue. ``bridged(bridge)`` is fired whenever all are
  up; failures are ``error(err)`` events on the bridge's channel.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import socket
import ssl
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from ..core import (
    BaseComponent,
    Event,
    Future,
    NotHandled,
    TimeoutError,
    TimerHandle,
    Value,
    handler,
)
from ._client import RedisClient
from ._codec import Codec, default_codec
from ._events import WireError, bridged, error
from ._queue import Consumer
from ._resp import require_hiredis
from ._specs import Broadcast, WorkQueue
from ._wire import EventBatch, EventFields, EventTypes, ReplyMessage, Writer, read_message

__all__ = ["RedisBridge"]

log = logging.getLogger("netcomp.broker")

#: The attribute that marks an event that came from another process (its origin). Set and
#: read as an attribute: touching ``event.__dict__`` would make CPython build a dict for
#: every event (time, and one more object for the garbage collector).
ORIGIN = "_netcomp_bridge_origin"
#: Origins whose last sequence number is remembered (for duplicates), most recent kept.
SEEN_ORIGINS = 10_000
#: A broadcast message carries at most this many events ...
BATCH_EVENTS = 1000
#: ... and is closed once its events take this many bytes.
BATCH_BYTES = 64 * 1024


def _check_options(prefix: Any, call_timeout: Any) -> None:
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, got {prefix!r}")
    if isinstance(call_timeout, bool) or not isinstance(call_timeout, (int, float)):
        raise TypeError(f"call_timeout must be a number of seconds, got {call_timeout!r}")
    if not 0 < call_timeout < float("inf"):
        raise ValueError(f"call_timeout must be > 0 seconds, got {call_timeout!r}")


class _Forward:
    """The handler that sends one channel's events; takes the Event (first parameter).

    Holds the broadcast events of the current turn (encoded) until they are published.
    """

    def __init__(self, bridge: RedisBridge, spec: Broadcast | WorkQueue, key: str) -> None:
        self.bridge = bridge
        self.spec = spec
        self.key = key
        self.queue = isinstance(spec, WorkQueue)
        self.items: list[bytes] = []
        self.size = 0
        self.calls: list[int] = []  # correlation ids of the calls among the items

    def __call__(self, event: Event, *args: Any, **kwargs: Any) -> Future | None:
        if getattr(event, ORIGIN, None) is not None:
            return None  # received from another process: it is not sent back
        return self.bridge.forward(event, self)


class RedisBridge(BaseComponent):
    """Bridges ``channels`` of this tree to every other process on the same Redis.

    ``channels``: channel names (broadcast) or :class:`Broadcast`/:class:`WorkQueue` specs.
    ``events``: the event classes (or ``Event.create`` names) that may cross, and exception
    classes whose instances a call may re-raise here (see :meth:`allow`).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        channels: Iterable[str | Broadcast | WorkQueue] = (),
        *,
        events: Iterable[type[Event] | type[BaseException] | str] = (),
        codec: Codec | None = None,
        prefix: str = "netcomp",
        call_timeout: float = 30.0,
        destinations: Iterable[tuple[str, int]] = (),
        ssl_context: ssl.SSLContext | None = None,
        queue_limit: int = 1024 * 1024,
        connect_timeout: float | None = 10.0,
        backoff: Callable[[int], float] | None = None,
        block: float = 5.0,
        channel: Any = "redis-bridge",
    ) -> None:
        """``url``: ``redis://[user:password@]host[:port][/db]``, ``rediss://`` for TLS.

        ``codec``: :class:`MsgpackCodec` when msgpack is installed, else :class:`JsonCodec`.
        ``prefix``: of the Redis keys (``"<prefix>:<channel>"``). ``call_timeout``: seconds
        a call waits for its answer. ``destinations``, ``ssl_context``, ``queue_limit``
        (bytes of commands kept while Redis is down, per link), ``connect_timeout``,
        ``backoff``: as :class:`RedisClient`. ``block``: seconds a worker's read waits
        before it asks again (a check that the link is alive).
        """
        require_hiredis()
        _check_options(prefix, call_timeout)
        super().__init__(channel=channel)
        self.origin = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"
        self.codec: Codec = codec if codec is not None else default_codec()
        self.prefix = prefix
        self.call_timeout = float(call_timeout)
        self.types = EventTypes()
        self.writer = Writer(self.codec, self.origin)
        self.specs: dict[str, Broadcast | WorkQueue] = {}
        self._forwards: list[_Forward] = []
        self._pending: list[_Forward] = []  # broadcast channels with events to publish
        self._topics: dict[bytes, Broadcast] = {}
        self._corr = itertools.count(1)
        self._calls: dict[int, Future] = {}
        self._seen: OrderedDict[str, int] = OrderedDict()
        self.reply_key = f"{prefix}:reply:{self.origin}"
        self._reply_key = self.reply_key.encode()
        for item in channels:
            self._add_spec(item)
        link: dict[str, Any] = dict(destinations=tuple(destinations), ssl_context=ssl_context)
        link.update(queue_limit=queue_limit, connect_timeout=connect_timeout, backoff=backoff)
        self.commands = self._client(url, "commands", link)
        self.subscriber = self._client(
            url, "subscriber", link, session=self._subscriptions, push=self._on_push
        )
        self.consumers: list[Consumer] = []
        for spec in self.specs.values():
            if isinstance(spec, WorkQueue) and spec.consume:
                self._add_consumer(url, spec, link, block)
        self.allow(*events)

    # ---------------------------------------------------------- set-up
    def _add_spec(self, item: str | Broadcast | WorkQueue) -> None:
        spec = Broadcast(item) if isinstance(item, str) else item
        if not isinstance(spec, (Broadcast, WorkQueue)):
            raise TypeError(f"a bridged channel is a str, Broadcast or WorkQueue, got {item!r}")
        if spec.channel in self.specs:
            raise ValueError(f"channel {spec.channel!r} is bridged twice")
        self.specs[spec.channel] = spec
        key = self.key_of(spec)
        if isinstance(spec, Broadcast):
            self._topics[key.encode()] = spec
        self._forwards.append(_Forward(self, spec, key))

    def key_of(self, spec: Broadcast | WorkQueue) -> str:
        """The Redis channel or stream of a bridged channel."""
        return spec.key if spec.key is not None else f"{self.prefix}:{spec.channel}"

    def _client(self, url: str, role: str, link: dict[str, Any], **more: Any) -> RedisClient:
        client = RedisClient(
            url, name=f"netcomp:{self.origin}:{role}", channel=(self.channel, role), **link, **more
        )
        client.register(self)
        self.add_handler(self._on_linked, "linked", channel=client.channel)
        self.add_handler(self._on_unlinked, "unlinked", channel=client.channel)
        self.add_handler(self._on_client_error, "error", channel=client.channel)
        return client

    def _add_consumer(self, url: str, spec: WorkQueue, link: dict[str, Any], block: float) -> None:
        holder: list[Consumer] = []
        client = self._client(
            url, f"worker:{spec.channel}", link, session=lambda: holder[0].session()
        )
        consumer = Consumer(self, spec, self.key_of(spec), client)
        consumer.block_ms = max(1, int(block * 1000))
        holder.append(consumer)
        self.consumers.append(consumer)

    def allow(self, *types: type[Event] | type[BaseException] | str) -> None:
        """Let these event classes (or ``Event.create`` names) cross, both ways, and let
        calls re-raise these exception classes. Builtin exceptions need no registration."""
        names = self.types.allow(*types)
        if not names:
            return
        for forward in self._forwards:
            self.add_handler(forward, *names, channel=forward.spec.channel, priority=100)

    # ---------------------------------------------------------- state
    @property
    def clients(self) -> list[RedisClient]:
        """Every Redis link of the bridge."""
        return [self.commands, self.subscriber, *(c.client for c in self.consumers)]

    @property
    def up(self) -> bool:
        """Whether every link of the bridge is up."""
        return all(client.ready for client in self.clients)

    def _subscriptions(self) -> list[tuple[tuple[Any, ...], Any]]:
        return [(("SUBSCRIBE", key), None) for key in (self._reply_key, *self._topics)]

    def _on_linked(self, client: RedisClient) -> None:
        for consumer in self.consumers:
            if consumer.client is client:
                consumer.start()
        if self.up:
            self.fire(bridged(self))

    def _on_unlinked(self, client: RedisClient) -> None:
        log.info("%r: link %r is down; it reconnects", self, client)

    def _on_client_error(self, err: BaseException) -> None:
        self.fire(error(err))

    @handler("stopped", channel="*")
    def _on_stopped(self, manager: Any) -> None:
        self._publish_pending()  # what the last turn fired goes out with the rest
        for consumer in self.consumers:
            consumer.stop()

    # ---------------------------------------------------------- sending
    def forward(self, event: Event, forward: _Forward) -> Future | None:
        """Send ``event`` through ``forward``'s channel (the bridge's handler calls this)."""
        if forward.spec.channel not in event.channels or getattr(event, ORIGIN, None) is not None:
            return None  # fired on "*" only, or received from another process
        if not self.types.sendable(event):
            raise TypeError(
                f"{event!r} is a {type(event).__qualname__}, but the bridge registered "
                f"{self.types.events.get(event.name)!r} under the name {event.name!r}"
            )
        value = event.value
        future = None
        corr = 0
        if value is not None and value.observed:
            corr = next(self._corr)
            future = self._expect(corr, event)
        try:
            if forward.queue:
                payload = self.writer.one(event, corr)  # an entry holds one event
            else:
                item = self.writer.event(event, corr)
        except TypeError:
            if future is not None:
                self._calls.pop(corr, None)
                future.set_result(None)
            raise
        if forward.queue:
            event.stop()  # the queue's worker handles it, not this process's handlers
            if not self.commands.send("XADD", forward.key, "*", "d", payload) and corr:
                self._not_sent([corr])
            return future
        if forward.size + len(item) > BATCH_BYTES and forward.items:
            self._publish(forward)
        if not forward.items:
            if not self._pending:
                self.loop.call_soon(self._publish_pending)
            self._pending.append(forward)
        forward.items.append(item)
        forward.size += len(item)
        if corr:
            forward.calls.append(corr)
        if len(forward.items) >= BATCH_EVENTS:
            self._publish(forward)
        return future

    def _publish(self, forward: _Forward) -> None:
        items, calls = forward.items, forward.calls
        if not items:
            return
        forward.items, forward.calls, forward.size = [], [], 0
        if not self.commands.send("PUBLISH", forward.key, self.writer.events(items)) and calls:
            self._not_sent(calls)

    def _publish_pending(self) -> None:
        """The turn's batch is dispatched: publish what each broadcast channel holds."""
        pending, self._pending = self._pending, []
        for forward in pending:
            self._publish(forward)

    def _not_sent(self, calls: list[int]) -> None:
        for corr in calls:
            future = self._calls.pop(corr, None)
            if future is not None and not future.done():
                future.set_exception(ConnectionError("the call was not sent: the queue is full"))

    def _expect(self, corr: int, event: Event) -> Future:
        future = Future()
        self._calls[corr] = future
        timeout = self.call_timeout

        def expired() -> None:  # the message is made only when it is needed
            future.set_exception(
                TimeoutError(f"no answer to {event!r} through Redis within {timeout} s")
            )

        timer: TimerHandle = self.loop.call_later(timeout, expired)

        def forget(_future: Future) -> None:
            timer.cancel()
            self._calls.pop(corr, None)

        future.add_done_callback(forget)
        return future

    # ---------------------------------------------------------- receiving
    def _on_push(self, push: list[Any]) -> None:
        key, payload = (push[2], push[3]) if push[0] == b"pmessage" else (push[1], push[2])
        try:
            message = read_message(payload)
        except WireError as err:
            self.fire(error(err))
            return
        if key == self._reply_key:
            if type(message) is ReplyMessage:
                self._answered(message)
            else:
                self.fire(error(WireError("an event sent to a reply channel", payload)))
            return
        spec = self._topics.get(key)
        if spec is None:
            return
        if type(message) is not EventBatch:
            self.fire(error(WireError("a reply sent to a broadcast channel", payload)))
            return
        origin = message.origin
        if origin == self.origin or self._duplicate(origin, message.seq):
            return
        # deliver() inlined for the common case (a class of its own, no call): this runs
        # for every event received.
        kinds = self.types.events
        fire = self.fire
        channel = spec.channel
        for fields in message.events:
            name, args, kwargs, corr = fields
            kind = kinds.get(name)
            if corr or kind is None or kind is Event:
                self.deliver(spec, origin, fields)
                continue
            try:
                event = kind(*args, **kwargs)
            except Exception as err:
                fire(error(self.types.refused(kind, err)))
                continue
            event._netcomp_bridge_origin = origin  # type: ignore[attr-defined]  # ORIGIN
            fire(event, channel)

    def _duplicate(self, origin: str, seq: int) -> bool:
        seen = self._seen
        last = seen.get(origin)
        if last is not None:
            if seq <= last:
                return True
            seen.move_to_end(origin)
        elif len(seen) >= SEEN_ORIGINS:
            seen.popitem(last=False)
        seen[origin] = seq
        return False

    def _answered(self, reply: ReplyMessage) -> None:
        future = self._calls.pop(reply.corr, None)
        if future is None or future.done():
            return  # timed out, or answered already (a broadcast's second answer)
        if reply.ok:
            future.set_result(reply.answer)
        else:
            name, text = reply.answer
            future.set_exception(self.types.build_error(name, text, reply.origin))

    def deliver(
        self, spec: Broadcast | WorkQueue, origin: str, fields: EventFields
    ) -> Value | None:
        """Fire a received event (``[name, args, kwargs, corr]`` from ``origin``) on its
        channel; ``None`` (and an ``error``) if it cannot be built."""
        name, args, kwargs, corr = fields
        kind = self.types.events.get(name)
        try:
            if kind is None or kind is Event:
                event = self.types.build(name, args, kwargs)  # or says why not
            else:
                event = kind(*args, **kwargs)
        except WireError as err:
            self.fire(error(err))
            return None
        except Exception as err:  # the class refused its arguments
            self.fire(error(self.types.refused(kind, err)))  # type: ignore[arg-type]
            return None
        event._netcomp_bridge_origin = origin  # type: ignore[attr-defined]  # ORIGIN
        value = self.fire(event, spec.channel)
        if corr:
            value.observed = True  # the caller takes the error: it is raised there
            queue = isinstance(spec, WorkQueue)
            value.add_done_callback(lambda v: self._answer(origin, name, corr, v, queue))
        return value

    def _answer(self, origin: str, name: str, corr: int, value: Value, queue: bool) -> None:
        error_ = value.exception
        if error_ is not None:
            answer: Any = [self.types.error_name(error_), str(error_)]
            ok = False
        elif not value.handled and value.value is None:
            if not queue:
                return  # another subscriber may take it
            refusal = NotHandled(f"no worker's handler took {name!r}")
            answer, ok = [self.types.error_name(refusal), str(refusal)], False
        else:
            answer, ok = value.value, True
        try:
            data = self.writer.reply(corr, ok, answer)
        except TypeError as err:
            answer = ["TypeError", f"the answer cannot cross: {err}"]
            data = self.writer.reply(corr, False, answer)
        self.commands.send("PUBLISH", f"{self.prefix}:reply:{origin}", data)

    def loop_ended(self) -> None:
        """The loop is gone: say what was never published."""
        left = sum(len(forward.items) for forward in self._forwards)
        if left:
            log.warning("%r stopped with %d broadcast event(s) never published", self, left)

    def __repr__(self) -> str:
        state = "up" if self.up else "down"
        return f"<RedisBridge/{self.channel!r} {self.commands.address} {state} {self.origin}>"
