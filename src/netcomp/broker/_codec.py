"""Codecs: how an event's arguments become bytes on Redis and back, losslessly and safely.

Rules:
* Only plain data crosses: ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``,
  ``list``, ``tuple`` and ``dict`` (any of these as keys), nested. Exact types: a
  subclass (an enum, a named tuple) is refused on the sending side with ``TypeError``
  naming it, so a receiver never rebuilds an object it did not ask for. Never pickle.
* Lossless: a tuple comes back a tuple, bytes come back bytes (a ``bytearray`` comes back
  as ``bytes``), a dict keeps keys of any type.
* Every message starts with one byte naming its codec (``J``: JSON, ``M``: msgpack), so a
  receiver reads both whatever it sends itself.
* Optional, for speed (the built-in codecs have them; the wire works without): a codec's
  ``encode_item(obj)`` gives ``obj`` encoded without the tag, and ``array(items)`` the
  message (with its tag) of the array of those items, so that values encoded one at a
  time (each checked when it is made, or once for all messages) become one message
  without being encoded again.
* JSON carries what it has no type for as one-key objects: ``{"$b": base64}`` (bytes),
  ``{"$t": [...]}`` (tuple), ``{"$d": [[key, value], ...]}`` (a dict whose keys are not all
  strings, or one with a key starting with ``$``). msgpack carries bytes natively and a
  tuple as extension type 1.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from typing import Any, Protocol

_msgpack: Any
try:
    import msgpack as _msgpack  # type: ignore[import-untyped,no-redef,unused-ignore]
except ImportError:  # pragma: no cover - installed with the redis extra
    _msgpack = None

__all__ = ["Codec", "JsonCodec", "MsgpackCodec", "decode", "default_codec"]

_SCALARS = (str, int, float, bool, type(None))
_TUPLE_EXT = 1


class Codec(Protocol):
    """What a codec gives: a one-byte ``tag`` and ``encode``/``decode`` of plain data."""

    tag: bytes

    def encode(self, obj: Any) -> bytes:
        """``tag`` followed by the encoding of ``obj``; ``TypeError`` if it is not plain data."""
        ...

    def decode(self, data: bytes) -> Any:
        """The object of ``data`` without its tag byte; ``ValueError`` if it is not ours."""
        ...


def _refuse(obj: Any) -> TypeError:
    return TypeError(
        f"cannot send a {type(obj).__module__}.{type(obj).__qualname__} over Redis: only "
        "None, bool, int, float, str, bytes, list, tuple and dict (of these) cross"
    )


def _to_json(obj: Any) -> Any:
    kind = type(obj)
    if kind in _SCALARS:
        return obj
    if kind is list:
        return [_to_json(item) for item in obj]
    if kind is tuple:
        return {"$t": [_to_json(item) for item in obj]}
    if kind is bytes or kind is bytearray:
        return {"$b": base64.b64encode(obj).decode("ascii")}
    if kind is dict:
        if all(type(key) is str and not key.startswith("$") for key in obj):
            return {key: _to_json(value) for key, value in obj.items()}
        return {"$d": [[_to_json(key), _to_json(value)] for key, value in obj.items()]}
    raise _refuse(obj)


def _from_json(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        key, value = next(iter(obj.items()))
        if key == "$t":
            return tuple(value)
        if key == "$b":
            return base64.b64decode(value, validate=True)
        if key == "$d":
            return {_hashable(k): v for k, v in value}
    return obj


def _hashable(key: Any) -> Any:
    if isinstance(key, (list, dict)):
        raise ValueError(f"a dict key cannot be a {type(key).__name__}")
    return key


_JSON = json.JSONEncoder(separators=(",", ":"))  # stateless: shared by every thread


class JsonCodec:
    """JSON with tags for bytes, tuples and non-string keys (see the module's rules)."""

    tag = b"J"

    def encode(self, obj: Any) -> bytes:
        """``b"J"`` and the JSON of ``obj``."""
        return b"J" + self.encode_item(obj)

    def encode_item(self, obj: Any) -> bytes:
        """The JSON of ``obj`` (no tag): an item for :meth:`join`."""
        return _JSON.encode(_to_json(obj)).encode("ascii")

    def array(self, items: list[bytes]) -> bytes:
        """``b"J"`` and the array of ``items`` (JSON texts from :meth:`encode_item`)."""
        return b"".join((b"J[", b",".join(items), b"]"))

    def decode(self, data: bytes) -> Any:
        """The object of ``data`` (without its tag)."""
        try:
            return json.loads(data, object_hook=_from_json)
        except (binascii.Error, TypeError, RecursionError) as err:
            raise ValueError(f"bad JSON payload: {err}") from None

    def __repr__(self) -> str:
        return "JsonCodec()"


def _msgpack_default(obj: Any) -> Any:
    assert _msgpack is not None
    kind = type(obj)
    if kind is tuple:
        return _msgpack.ExtType(_TUPLE_EXT, _pack_plain(list(obj)))
    if kind is bytearray:
        return bytes(obj)
    if kind is int:
        raise TypeError(f"cannot send {obj} with msgpack (64 bits at most): use JsonCodec")
    raise _refuse(obj)


def _pack_plain(obj: Any) -> bytes:
    # A packer of its own: this runs inside another packing (a tuple's ``default``).
    assert _msgpack is not None
    packed: bytes = _msgpack.packb(
        obj, use_bin_type=True, strict_types=True, default=_msgpack_default
    )
    return packed


_packers = threading.local()


def _pack_top(obj: Any) -> bytes:
    # One reused Packer per thread (making one per call is most of packb's cost); msgpack
    # empties its buffer when packing fails, so a refused value leaves nothing behind.
    try:
        packer = _packers.packer
    except AttributeError:
        assert _msgpack is not None
        packer = _packers.packer = _msgpack.Packer(
            use_bin_type=True, strict_types=True, default=_msgpack_default
        )
    packed: bytes = packer.pack(obj)
    return packed


def _array_header(count: int) -> bytes:
    """msgpack's header of an array of ``count`` items."""
    if count < 16:
        return bytes((0x90 | count,))
    if count < 0x10000:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")


def _msgpack_ext(code: int, data: bytes) -> Any:
    if code == _TUPLE_EXT:
        return tuple(_unpack_plain(data))
    raise ValueError(f"unknown msgpack extension type {code}")


def _unpack_plain(data: bytes) -> Any:
    assert _msgpack is not None
    return _msgpack.unpackb(
        data, raw=False, strict_map_key=False, ext_hook=_msgpack_ext, use_list=True
    )


_unpack: Any = _msgpack.unpackb if _msgpack is not None else None


class MsgpackCodec:
    """msgpack (needs the ``msgpack`` package): bytes native, tuples as an extension type."""

    tag = b"M"

    def __init__(self) -> None:
        """``ImportError`` when msgpack is not installed."""
        if _msgpack is None:
            raise ImportError("MsgpackCodec needs msgpack: pip install 'netcomp[redis]'")

    def encode(self, obj: Any) -> bytes:
        """``b"M"`` and the msgpack of ``obj``."""
        return b"M" + self.encode_item(obj)

    def encode_item(self, obj: Any) -> bytes:
        """The msgpack of ``obj`` (no tag): an item for :meth:`join`."""
        try:
            return _pack_top(obj)
        except OverflowError as err:
            raise TypeError(f"cannot send over Redis: {err}") from None

    def array(self, items: list[bytes]) -> bytes:
        """``b"M"`` and the array of ``items`` (msgpack from :meth:`encode_item`)."""
        return b"".join((b"M", _array_header(len(items)), *items))

    def decode(self, data: bytes) -> Any:
        """The object of ``data`` (without its tag)."""
        try:
            return _unpack(data, raw=False, strict_map_key=False, ext_hook=_msgpack_ext)
        except Exception as err:  # msgpack raises several kinds for bad input
            raise ValueError(f"bad msgpack payload: {err}") from None

    def __repr__(self) -> str:
        return "MsgpackCodec()"


def default_codec() -> Codec:
    """msgpack when it is installed (smaller, faster), else JSON."""
    return MsgpackCodec() if _msgpack is not None else JsonCodec()


_DECODERS: dict[int, Any] = {ord("J"): JsonCodec().decode}
if _msgpack is not None:
    _DECODERS[ord("M")] = MsgpackCodec().decode


def decode(payload: bytes) -> Any:
    """Decode a message of any known codec by its first byte; ``ValueError`` if unknown."""
    if not payload:
        raise ValueError("empty payload")
    decoder = _DECODERS.get(payload[0])
    if decoder is None:
        raise ValueError(f"unknown codec tag {payload[:1]!r}")
    return decoder(payload[1:])
