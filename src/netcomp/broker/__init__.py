"""netcomp.broker: events across processes and machines, through Redis (or Valkey).

:class:`RedisBridge` sends the events of chosen channels to Redis and fires what other
processes send there: :class:`Broadcast` channels over pub/sub (every subscriber, at most
once), :class:`WorkQueue` channels over a stream and a consumer group (one worker each, at
least once, with redelivery and a dead-letter stream). ``await self.call(event)`` across
the bridge returns the remote answer. :class:`RedisClient` is the pipelined, reconnecting
Redis link it is built on, on netcomp's own loop; RESP is parsed by hiredis.

Needs the ``redis`` extra (``pip install 'netcomp[redis]'``: hiredis, msgpack); without it
this package imports, and making a bridge or a client says what to install. See
``docs/broker.md``.
"""

from ._bridge import RedisBridge
from ._client import RedisClient
from ._codec import JsonCodec, MsgpackCodec, default_codec
from ._events import RemoteError, WireError, bridged, error, linked, unlinked
from ._queue import Undeliverable
from ._resp import ProtocolError, RedisError
from ._specs import Broadcast, WorkQueue
from ._url import RedisAddress, parse_url

__all__ = [
    "Broadcast",
    "JsonCodec",
    "MsgpackCodec",
    "ProtocolError",
    "RedisAddress",
    "RedisBridge",
    "RedisClient",
    "RedisError",
    "RemoteError",
    "Undeliverable",
    "WireError",
    "WorkQueue",
    "bridged",
    "default_codec",
    "error",
    "linked",
    "parse_url",
    "unlinked",
]
