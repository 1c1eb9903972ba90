"""The broker's pieces that need no server: codecs, the wire format, registered types,
URLs and channel specs (what is refused, and why)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcomp import Event, NotHandled
from netcomp.broker import (
    Broadcast,
    JsonCodec,
    MsgpackCodec,
    RedisAddress,
    RemoteError,
    WireError,
    WorkQueue,
    default_codec,
    parse_url,
)
from netcomp.broker._wire import (
    EventBatch,
    EventTypes,
    Writer,
    event_bytes,
    read_message,
    reply_bytes,
)

pytest.importorskip("msgpack", reason="the redis extra brings msgpack")

CODECS = [JsonCodec(), MsgpackCodec()]

ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # msgpack's range
plain = st.recursive(
    st.none() | st.booleans() | ints | st.floats(allow_nan=False) | st.text() | st.binary(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text() | ints | st.binary(), inner, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.parametrize("codec", CODECS, ids=repr)
@given(value=plain)
def test_codecs_are_lossless_for_plain_data(codec: Any, value: Any) -> None:
    data = codec.encode(value)
    assert data[:1] == codec.tag
    back = codec.decode(data[1:])
    assert back == value
    assert _types(back) == _types(value)


def _types(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return (type(value), [_types(v) for v in value])
    if isinstance(value, dict):
        return (dict, sorted((repr(k), _types(v)) for k, v in value.items()))
    return type(value)


@pytest.mark.parametrize("codec", CODECS, ids=repr)
def test_codecs_keep_special_shapes(codec: Any) -> None:
    value = {"$t": 1, "$b": b"\x00", (1, "a"): {b"k": (b"v",)}, "nan": math.inf}
    assert codec.decode(codec.encode(value)[1:]) == value


class Thing:
    pass


@pytest.mark.parametrize("codec", CODECS, ids=repr)
@pytest.mark.parametrize("value", [Thing(), {1, 2}, [object()], {"k": Thing()}])
def test_codecs_refuse_anything_but_plain_data(codec: Any, value: Any) -> None:
    with pytest.raises(TypeError, match=r"cannot send a .* over Redis"):
        codec.encode(value)


def test_msgpack_says_when_an_integer_is_too_large() -> None:
    with pytest.raises(TypeError, match="64 bits at most"):
        MsgpackCodec().encode([2**64])
    assert JsonCodec().decode(JsonCodec().encode([2**64])[1:]) == [2**64]


def test_the_default_codec_is_msgpack_when_installed() -> None:
    assert isinstance(default_codec(), MsgpackCodec)


class ping(Event):
    """A test event."""


def test_event_messages_round_trip_through_either_codec() -> None:
    event = ping(1, (2, b"3"), key={"a": None})
    for codec in CODECS:
        message = read_message(event_bytes(codec, "me", 7, event, 3))
        assert message == ("me", 7, [["ping", [1, (2, b"3")], {"key": {"a": None}}, 3]])
        reply = read_message(reply_bytes(codec, "you", 8, 3, False, ["ValueError", "no"]))
        assert reply == ("you", 8, 3, False, ["ValueError", "no"])


class Plain:
    """A codec of someone else's: no ``encode_item``/``join`` (the wire works without)."""

    tag = b"J"

    def encode(self, obj: Any) -> bytes:
        return JsonCodec().encode(obj)

    def decode(self, data: bytes) -> Any:
        return JsonCodec().decode(data)

    def __repr__(self) -> str:  # the test's id: the same in every xdist worker
        return "Plain()"


@pytest.mark.parametrize("codec", [*CODECS, Plain()], ids=repr)
@pytest.mark.parametrize("count", [1, 15, 16, 17, 70_000])
def test_events_of_one_message_are_joined_in_order(codec: Any, count: int) -> None:
    writer = Writer(codec, "me")
    items = [writer.event(ping(i, (i,), k=b"x" * (i % 3)), i % 2) for i in range(count)]
    message = read_message(writer.events(items))
    assert isinstance(message, EventBatch) and message[:2] == ("me", 1)
    assert message.events == [
        ["ping", [i, (i,)], {"k": b"x" * (i % 3)}, i % 2] for i in range(count)
    ]
    assert read_message(writer.events(items[:1])).seq == 2


@pytest.mark.parametrize("codec", CODECS, ids=repr)
def test_version_1_messages_are_still_read(codec: Any) -> None:
    one = codec.encode([1, "e", "old", 4, "ping", [1, (2,)], {"k": 3}, 0])
    assert read_message(one) == ("old", 4, [["ping", [1, (2,)], {"k": 3}, 0]])
    reply = codec.encode([1, "r", "old", 5, 9, True, {"v": 1}])
    assert read_message(reply) == ("old", 5, 9, True, {"v": 1})


@pytest.mark.parametrize("codec", CODECS, ids=repr)
def test_an_event_that_cannot_cross_is_refused_when_it_is_encoded(codec: Any) -> None:
    writer = Writer(codec, "me")
    with pytest.raises(TypeError, match="cannot send"):
        writer.event(ping(Thing()), 0)
    ok = writer.event(ping(1), 0)  # nothing of the refused one is left behind
    assert read_message(writer.events([ok])).events == [["ping", [1], {}, 0]]


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"", "empty payload"),
        (b"Xabc", "unknown codec tag"),
        (b"J{", "not a netcomp message"),
        (b'J{"$b": "!!"}', "not a netcomp message"),
        (b'J[3,"e","o",1,["ping",[],{},0]]', "version 1 or 2"),
        (b'J[2,"e"]', "wrong kind"),
        (b'J[true,"e","o",1,["ping",[],{},0]]', "version 1 or 2"),
        (b'J[1,"e","o",1,"ping",[],{},"x"]', "wrong kind"),
        (b'J[2,"e","o",1]', "wrong kind"),
        (b'J[2,"e","o",1,["ping",[],{},0],["pong",[],{"k":1}]]', "wrong kind"),
        (b'J[2,"e","o",1,["ping",[],{"$d":[[1,2]]},0]]', "wrong kind"),
        (b'J[1,"r","o",1,2,false,"not a pair"]', "wrong kind"),
        (b'J[1,"q"]', "wrong kind"),
    ],
)
def test_malformed_messages_are_wire_errors_with_the_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(WireError, match=reason):
        read_message(payload)


def test_only_registered_event_classes_are_rebuilt() -> None:
    types = EventTypes()
    assert types.allow(ping, "made") == ["ping", "made"]
    rebuilt = types.build("ping", (1,), {"k": 2})
    assert type(rebuilt) is ping and rebuilt.args == (1,) and rebuilt.kwargs == {"k": 2}
    made = types.build("made", (), {})
    assert type(made) is Event and made.name == "made"
    with pytest.raises(WireError, match="'other' is not registered"):
        types.build("other", (), {})
    other = type("ping", (Event,), {})
    with pytest.raises(ValueError, match="already taken"):
        types.allow(other)
    assert types.sendable(ping()) and not types.sendable(other())
    with pytest.raises(TypeError, match="allow\\(\\) takes"):
        types.allow(42)  # type: ignore[arg-type]


class Strict(Event):
    def __init__(self, only: int) -> None:
        super().__init__(only)


def test_a_class_refusing_its_arguments_is_a_wire_error() -> None:
    types = EventTypes()
    types.allow(Strict)
    with pytest.raises(WireError, match="Strict refused its arguments"):
        types.build("Strict", (1, 2), {})


class Custom(Exception):
    pass


def test_errors_come_back_as_their_class_when_known() -> None:
    types = EventTypes()
    types.allow(Custom)
    assert type(types.build_error("ValueError", "bad", "o")) is ValueError
    assert type(types.build_error("Custom", "c", "o")) is Custom
    name = types.error_name(NotHandled("x"))
    assert type(types.build_error(name, "x", "o")) is NotHandled
    remote = types.build_error("somewhere.Else", "why", "them")
    assert isinstance(remote, RemoteError) and remote.type_name == "somewhere.Else"
    assert str(remote) == "somewhere.Else: why" and remote.origin == "them"
    assert isinstance(types.build_error("SystemExit", "no", "o"), RemoteError)  # not Exception
    clash = type("KeyError", (Exception,), {})
    with pytest.raises(ValueError, match="already taken"):
        types.allow(clash)


@pytest.mark.parametrize(
    "url, address",
    [
        ("redis://localhost", RedisAddress("localhost")),
        ("redis://h:7000/5", RedisAddress("h", 7000, db=5)),
        (
            "rediss://u:p%40ss@h/2",
            RedisAddress("h", tls=True, username="u", password="p@ss", db=2),
        ),
        ("redis://:secret@[::1]:6380?db=1", RedisAddress("::1", 6380, password="secret", db=1)),
    ],
)
def test_urls(url: str, address: RedisAddress) -> None:
    assert parse_url(url) == address


@pytest.mark.parametrize(
    "url, message",
    [
        ("http://h", "redis:// or rediss://"),
        ("redis://", "no host"),
        ("redis://h:99999", "bad port"),
        ("redis://h/x", "is a number"),
        ("redis://h/1?db=2", "twice"),
        ("redis://h?timeout=3", "unknown options"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_url(url)


def test_passwords_stay_out_of_reprs() -> None:
    address = parse_url("redis://u:hunter2@h/0")
    assert "hunter2" not in repr(address) and "hunter2" not in str(address)


@pytest.mark.parametrize(
    "make, error",
    [
        (lambda: Broadcast(""), TypeError),
        (lambda: Broadcast("c", key=""), TypeError),
        (lambda: WorkQueue("c", idle_timeout=0), ValueError),
        (lambda: WorkQueue("c", claim_interval=-1), ValueError),
        (lambda: WorkQueue("c", max_deliveries=0), ValueError),
        (lambda: WorkQueue("c", prefetch=True), ValueError),
        (lambda: WorkQueue("c", group=""), TypeError),
    ],
)
def test_channel_specs_check_their_options(make: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        make()


def test_claims_run_at_half_the_idle_timeout_by_default() -> None:
    assert WorkQueue("c", idle_timeout=10).every == 5
    assert WorkQueue("c", idle_timeout=10, claim_interval=1).every == 1
