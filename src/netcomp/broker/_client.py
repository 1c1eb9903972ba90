"""RedisClient: one Redis connection on netcomp's loop, over a :class:`~netcomp.net.Connex`.

Rules:
* The Connex keeps the link (destinations in turn, backoff, TLS). It is given no byte
  queue of its own (``queue_limit=0``): bytes queued there would be flushed on the next
  link *before* this client logs in (``AUTH``) and selects its database, and would run as
  nobody, or in database 0. Commands wait here instead, as whole commands.
* On every link: ``AUTH`` (when the URL has a password), ``SELECT`` (when the database is
  not 0), ``CLIENT SETNAME``; then the *session* commands the owner gives (``SUBSCRIBE``,
  ``XGROUP CREATE``); then the queue, in order; then ``linked(client)``. An ``AUTH`` or
  ``SELECT`` that fails is an ``error`` and disables the link: a wrong password is not
  retried forever.
* While the link is not ready, commands are queued, at most ``queue_limit`` bytes; one
  that does not fit is refused whole: its callback gets :class:`~netcomp.net.QueueFull`
  and ``error(QueueFull)`` is fired. Nothing is dropped silently.
* Commands are pipelined: each is written at once (everything sent during one dispatch
  batch goes out as one write) and replies are matched in order. When the link breaks,
  the commands still waiting for a reply may or may not have run: those marked ``retry``
  are sent again first on the next link (so a command may run twice: at-least-once); the
  others' callbacks get ``ConnectionError``.
* In subscriber mode (``push=``), ``message``/``pmessage``/``smessage`` arrays are pushes,
  handed to ``push``; everything else is a reply.
* Error replies go to the command's callback; with no callback they are ``error`` events.
"""

from __future__ import annotations

import logging
import ssl
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..core import BaseComponent, Value
from ..net import Connex, QueueFull, disable, enable, write
from ._events import error, linked, unlinked
from ._resp import NOT_ENOUGH, ProtocolError, RedisError, new_reader, pack, require_hiredis
from ._url import RedisAddress, parse_url

__all__ = ["Callback", "RedisClient", "SessionCommand"]

#: Seconds between readiness probes while Redis answers ``-LOADING``.
_LOADING_RETRY = 0.1

log = logging.getLogger("netcomp.broker")

#: Called with the reply: a value, a :class:`RedisError` or a ``ConnectionError``.
Callback = Callable[[Any], None]
#: A session command: its arguments and the callback of its reply (or ``None``).
SessionCommand = tuple[tuple[Any, ...], "Callback | None"]

_PUSHES = frozenset({b"message", b"pmessage", b"smessage"})


class _Command:
    __slots__ = ("callback", "data", "retry")

    def __init__(self, data: bytes, callback: Callback | None, retry: bool) -> None:
        self.data = data
        self.callback = callback
        self.retry = retry


class RedisClient(BaseComponent):
    """A pipelined Redis client on netcomp's loop (RESP by hiredis). See the module's rules.

    ``send(*args, callback=, retry=)`` runs a command; ``linked``/``unlinked``/``error`` come
    out on the client's channel. Call ``send`` on the loop's thread (from handlers).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        destinations: Iterable[tuple[str, int]] = (),
        ssl_context: ssl.SSLContext | None = None,
        name: str | None = None,
        session: Callable[[], Sequence[SessionCommand]] | None = None,
        push: Callable[[list[Any]], None] | None = None,
        queue_limit: int = 1024 * 1024,
        connect_timeout: float | None = 10.0,
        backoff: Callable[[int], float] | None = None,
        channel: Any = "redis",
    ) -> None:
        """``url``: ``redis://[user:password@]host[:port][/db]`` or ``rediss://`` (TLS).

        ``destinations``: more ``(host, port)`` pairs to fail over to (replicas a Sentinel
        promotes). ``ssl_context``: for ``rediss://`` (default: verify as the system does).
        ``name``: ``CLIENT SETNAME``. ``session``: returns the commands to run on every new
        link before the queue. ``push``: subscriber mode, gets each message array.
        ``queue_limit``: bytes of commands kept while the link is down.
        """
        require_hiredis()
        super().__init__(channel=channel)
        self.address: RedisAddress = parse_url(url)
        if isinstance(queue_limit, bool) or not isinstance(queue_limit, int) or queue_limit < 0:
            raise ValueError(f"queue_limit must be a whole number >= 0, got {queue_limit!r}")
        self.queue_limit = queue_limit
        self.name = name
        self._session = session
        self._push = push
        host = self.address.host
        self.link = Connex(
            [(host, self.address.port), *destinations],
            connect_timeout=connect_timeout,
            backoff=backoff,
            queue_limit=0,
            secure=self.address.tls,
            ssl_context=ssl_context,
            server_hostname=host if self.address.tls else None,
            channel=(channel, "link"),
        )
        self.link.register(self)
        link = self.link.channel
        self.add_handler(self._on_connected, "connected", channel=link)
        self.add_handler(self._on_disconnected, "disconnected", channel=link)
        self.add_handler(self._on_read, "read", channel=link)
        self.add_handler(self._on_link_error, "error", channel=link)
        self._ready = False
        self._linked = False
        self._queue: deque[_Command] = deque()
        self._queued = 0
        self._inflight: deque[_Command] = deque()
        self._reader: Any = None
        self._out: bytearray | None = None
        self._out_value: Value | None = None

    # ------------------------------------------------------------ properties
    @property
    def ready(self) -> bool:
        """Whether the link is up and logged in (commands go out at once)."""
        return self._ready

    @property
    def queued(self) -> int:
        """Bytes of commands waiting for a link."""
        return self._queued

    @property
    def waiting(self) -> int:
        """Commands sent and not answered yet."""
        return len(self._inflight)

    # ------------------------------------------------------------------ send
    def send(self, *args: Any, callback: Callback | None = None, retry: bool = True) -> bool:
        """Run the command ``args`` (``send("PUBLISH", channel, data)``).

        ``callback(reply)`` gets the reply, a :class:`RedisError`, or a ``ConnectionError``
        when the link broke before the reply (and ``retry`` is false), or ``QueueFull``.
        ``retry``: send it again on the next link when the reply was lost. Returns False
        when the command was refused (the queue is full).
        """
        data = pack(args)
        command = _Command(data, callback, retry)
        if self._ready:
            self._inflight.append(command)
            self._write(data)
            return True
        size = len(data)
        if self._queued + size > self.queue_limit:
            refused = QueueFull(size, self._queued, self.queue_limit)
            self.fire(error(refused))
            if callback is not None:
                callback(refused)
            return False
        self._queue.append(command)
        self._queued += size
        return True

    def _write(self, data: bytes) -> None:
        # Everything sent before the Connex handles the pending write joins it: one write
        # (and usually one send()) per dispatch batch, in order.
        value = self._out_value
        if value is None or value.result:
            out = self._out = bytearray(data)
            self._out_value = self.fire(write(out), self.link.channel)
        else:
            assert self._out is not None
            self._out += data

    # ------------------------------------------------------------- the link
    def _on_connected(self, host: str, port: int) -> None:
        self._reader = new_reader()
        address = self.address
        steps: list[tuple[tuple[Any, ...], bool]] = []
        if address.password is not None:
            if address.username:
                steps.append((("AUTH", address.username, address.password), True))
            else:
                steps.append((("AUTH", address.password), True))
        if address.db:
            steps.append((("SELECT", address.db), True))
        if self.name:
            steps.append((("CLIENT", "SETNAME", self.name), False))
        if not steps:
            self._probe()
            return
        last = len(steps) - 1
        for index, (args, fatal) in enumerate(steps):
            callback = self._handshake_reply(args[0], fatal, index == last)
            self._inflight.append(_Command(pack(args), callback, False))
            self._write(self._inflight[-1].data)

    def _handshake_reply(self, what: str, fatal: bool, last: bool) -> Callback:
        def reply(value: Any) -> None:
            if isinstance(value, ConnectionError):
                return  # the link broke: the next one logs in again
            if isinstance(value, RedisError):
                if fatal:
                    self.fire(error(RedisError(f"{what} failed on {self.address}: {value}")))
                    self.fire(disable(), self.link.channel)
                    return
                log.info("%s on %s: %s (ignored)", what, self.address, value)
            if last:
                self._probe()

        return reply

    def _probe(self) -> None:
        """Ask Redis a question it refuses while it loads its dataset (after a restart from
        its AOF or RDB it answers ``-LOADING`` to most commands for a while): the link is
        ready, and the queued commands go out, only once it answers."""
        if self._reader is None or self._ready:
            return  # the link broke meanwhile (the next one probes again), or is ready
        self._inflight.append(_Command(pack(("DBSIZE",)), self._probed, False))
        self._write(self._inflight[-1].data)

    def _probed(self, reply: Any) -> None:
        if isinstance(reply, ConnectionError) or self._ready:
            return  # the link broke (the next one probes again), or a later probe won
        if isinstance(reply, RedisError) and reply.code == "LOADING":
            log.debug("%s is loading its dataset: asking again soon", self.address)
            self.loop.call_later(_LOADING_RETRY, self._probe)
            return
        self._logged_in()

    def _logged_in(self) -> None:
        self._ready = True
        commands = list(self._session()) if self._session is not None else []
        for args, callback in commands:
            self.send(*args, callback=callback, retry=False)
        queue, self._queue = self._queue, deque()
        self._queued = 0
        for command in queue:
            self._inflight.append(command)
            self._write(command.data)
        self.send("PING", callback=self._session_done, retry=False)

    def _session_done(self, reply: Any) -> None:
        if not isinstance(reply, Exception) and self._ready:
            self._linked = True
            self.fire(linked(self))

    def _on_disconnected(self) -> None:
        was_linked = self._linked
        self._ready = self._linked = False
        self._reader = None
        inflight, self._inflight = self._inflight, deque()
        again = [command for command in inflight if command.retry]
        lost = ConnectionError(f"the link to {self.address} broke before the reply")
        for command in inflight:
            if not command.retry and command.callback is not None:
                self._call(command.callback, lost)
        self._queue.extendleft(reversed(again))
        self._queued += sum(len(command.data) for command in again)
        if was_linked:
            self.fire(unlinked(self))

    def _on_read(self, data: bytes) -> None:
        reader = self._reader
        if reader is None:
            return
        reader.feed(data)
        inflight = self._inflight
        push = self._push
        callback: Callable[[Any], None] | None
        while True:
            try:
                reply = reader.gets()
            except ProtocolError as err:
                self._broken(f"not RESP: {err}")
                return
            if reply is NOT_ENOUGH:
                return
            if push is not None and type(reply) is list and reply and reply[0] in _PUSHES:
                callback = push
            elif inflight:
                callback = inflight.popleft().callback
                if callback is None:
                    if isinstance(reply, RedisError):
                        self.fire(error(reply))
                    continue
            else:
                self._broken(f"a reply nobody asked for: {reply!r}")
                return
            try:
                callback(reply)
            except Exception as err:  # a bug in a callback must not stop the replies
                self._callback_failed(err)

    def _call(self, callback: Callable[[Any], None], reply: Any) -> None:
        try:
            callback(reply)
        except Exception as err:  # a bug in a callback must not stop the replies
            self._callback_failed(err)

    def _callback_failed(self, err: Exception) -> None:
        log.error("a Redis reply callback failed on %r", self, exc_info=err)
        self.fire(error(err))

    def _broken(self, reason: str) -> None:
        self.fire(error(ProtocolError(f"{self.address}: {reason}")))
        self._reader = None  # never parse the rest of a broken stream: make a new link
        self.fire(disable(), self.link.channel)
        self.fire(enable(), self.link.channel)

    def _on_link_error(self, err: BaseException) -> None:
        if isinstance(err, QueueFull):
            return  # a write that met a link going down: the command is retried here
        self.fire(error(err))

    def loop_ended(self) -> None:
        """The loop is gone: say what was never sent."""
        waiting = len(self._queue) + sum(1 for c in self._inflight if c.retry)
        if waiting:
            log.warning(
                "%r stopped with %d command(s) unsent or unanswered (%d bytes queued)",
                self,
                waiting,
                self._queued,
            )

    def __repr__(self) -> str:
        state = "ready" if self._ready else self.link.state
        return (
            f"<RedisClient/{self.channel!r} {self.address} {state} "
            f"queued={len(self._queue)} waiting={len(self._inflight)}>"
        )
