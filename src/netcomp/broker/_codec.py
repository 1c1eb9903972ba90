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
* JSON carries what it has no type for as one-key objects: ``{"$b": base64}`` (bytes),
  ``{"$t": [...]}`` (tuple), ``{"$d": [[key, value], ...]}`` (a dict whose keys are not all
  strings, or one with a key starting with ``$``). msgpack carries bytes natively and a
  tuple as extension type 1.
"""

from __future__ import annotations

import base64
import binascii
import json
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


class JsonCodec:
    """JSON with tags for bytes, tuples and non-string keys (see the module's rules)."""

    tag = b"J"

    def encode(self, obj: Any) -> bytes:
        """``b"J"`` and the JSON of ``obj``."""
        return b"J" + json.dumps(_to_json(obj), separators=(",", ":")).encode("ascii")

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
    assert _msgpack is not None
    packed: bytes = _msgpack.packb(
        obj, use_bin_type=True, strict_types=True, default=_msgpack_default
    )
    return packed


def _msgpack_ext(code: int, data: bytes) -> Any:
    if code == _TUPLE_EXT:
        return tuple(_unpack_plain(data))
    raise ValueError(f"unknown msgpack extension type {code}")


def _unpack_plain(data: bytes) -> Any:
    assert _msgpack is not None
    return _msgpack.unpackb(
        data, raw=False, strict_map_key=False, ext_hook=_msgpack_ext, use_list=True
    )


class MsgpackCodec:
    """msgpack (needs the ``msgpack`` package): bytes native, tuples as an extension type."""

    tag = b"M"

    def __init__(self) -> None:
        """``ImportError`` when msgpack is not installed."""
        if _msgpack is None:
            raise ImportError("MsgpackCodec needs msgpack: pip install 'netcomp[redis]'")

    def encode(self, obj: Any) -> bytes:
        """``b"M"`` and the msgpack of ``obj``."""
        try:
            return b"M" + _pack_plain(obj)
        except OverflowError as err:
            raise TypeError(f"cannot send over Redis: {err}") from None

    def decode(self, data: bytes) -> Any:
        """The object of ``data`` (without its tag)."""
        assert _msgpack is not None
        try:
            return _unpack_plain(data)
        except Exception as err:  # msgpack raises several kinds for bad input
            raise ValueError(f"bad msgpack payload: {err}") from None

    def __repr__(self) -> str:
        return "MsgpackCodec()"


def default_codec() -> Codec:
    """msgpack when it is installed (smaller, faster), else JSON."""
    return MsgpackCodec() if _msgpack is not None else JsonCodec()


_DECODERS: dict[int, Codec] = {ord("J"): JsonCodec()}
if _msgpack is not None:
    _DECODERS[ord("M")] = MsgpackCodec()


def decode(payload: bytes) -> Any:
    """Decode a message of any known codec by its first byte; ``ValueError`` if unknown."""
    if not payload:
        raise ValueError("empty payload")
    codec = _DECODERS.get(payload[0])
    if codec is None:
        raise ValueError(f"unknown codec tag {payload[:1]!r}")
    return codec.decode(payload[1:])
