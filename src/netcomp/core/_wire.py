"""What crosses a Bridge: one JSON object per line, with tags for what JSON lacks.

Rules (docs/architecture.md, "Bridges"):
* Only data crosses, and only these exact types: ``None``, ``bool``, ``int``, ``float``,
  ``str``, ``bytes``, ``list``, ``tuple``, ``dict``, ``set``, ``frozenset``. Subclasses
  (enums, named tuples, ...) and everything else are refused with :class:`NotSendable`
  before a byte is written: nothing is guessed, nothing is pickled.
* JSON has no bytes, tuples, sets or non-string keys, so those travel as one-key objects:
  ``{"$bytes": base64}``, ``{"$tuple": [...]}``, ``{"$set": [...]}``,
  ``{"$frozenset": [...]}`` and ``{"$dict": [[key, value], ...]}`` (a dict whose keys are
  not all strings, or that has a key starting with ``$``). Every other JSON object is a
  plain ``dict``.
* Decoding builds only the types above: it never imports, looks up or calls anything a
  message names. A line that is not such a message raises :class:`MalformedMessage`
  (rebuilding events from their class names is the Bridge's business, and it rebuilds
  known classes only).
* A message is one line: ``ensure_ascii`` JSON has no raw newline.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from ._errors import NetcompError

__all__ = ["MAX_DEPTH", "MalformedMessage", "NotSendable", "dumps", "loads", "to_json"]

#: How deep containers may nest in a message (deeper data is refused, both ways).
MAX_DEPTH = 64

_PLAIN = (type(None), bool, int, float, str)


class NotSendable(NetcompError, TypeError):
    """A value cannot cross a Bridge: it is not plain data (see ``netcomp.core.bridge``).

    Only ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, ``list``, ``tuple``,
    ``dict``, ``set`` and ``frozenset`` (exactly these types) go through, nested at most
    ``MAX_DEPTH`` deep. The message names what was refused and where it was found.
    """


class MalformedMessage(NetcompError, ValueError):
    """A line that came over a Bridge is not a message this side understands."""


def _tagged(tag: str, items: Any) -> dict[str, Any]:
    return {tag: items}


def to_json(obj: Any, where: str = "value", depth: int = 0) -> Any:
    """``obj`` as JSON-ready data, tagging bytes, tuples, sets and odd dicts."""
    if depth > MAX_DEPTH:
        raise NotSendable(f"{where} nests deeper than {MAX_DEPTH} levels")
    kind = type(obj)
    if kind in _PLAIN:
        return obj
    if kind is bytes:
        return _tagged("$bytes", base64.b64encode(obj).decode("ascii"))
    if kind is list:
        return [to_json(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(obj)]
    if kind is tuple:
        items = [to_json(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(obj)]
        return _tagged("$tuple", items)
    if kind is set or kind is frozenset:
        items = [to_json(item, f"{where} item", depth + 1) for item in obj]
        return _tagged("$set" if kind is set else "$frozenset", items)
    if kind is dict:
        if all(type(key) is str and not key.startswith("$") for key in obj):
            return {
                key: to_json(value, f"{where}[{key!r}]", depth + 1) for key, value in obj.items()
            }
        pairs = [
            [
                to_json(key, f"{where} key", depth + 1),
                to_json(value, f"{where}[{key!r}]", depth + 1),
            ]
            for key, value in obj.items()
        ]
        return _tagged("$dict", pairs)
    raise NotSendable(
        f"{where} is a {kind.__module__}.{kind.__qualname__} ({_short(obj)}); only None, bool, "
        "int, float, str, bytes, list, tuple, dict, set and frozenset cross a bridge"
    )


def _short(obj: Any) -> str:
    try:
        text = repr(obj)
    except Exception:  # a repr that fails must not hide the real refusal
        text = "unprintable"
    return text if len(text) <= 60 else text[:57] + "..."


def _bytes(data: Any) -> bytes:
    if not isinstance(data, str):
        raise MalformedMessage("$bytes needs a base64 string")
    try:
        return base64.b64decode(data.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as error:
        raise MalformedMessage(f"$bytes is not base64: {error}") from None


def _items(data: Any, tag: str) -> list[Any]:
    if not isinstance(data, list):
        raise MalformedMessage(f"{tag} needs a list")
    return data


def _pairs(data: Any) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    for pair in _items(data, "$dict"):
        if not isinstance(pair, list) or len(pair) != 2:
            raise MalformedMessage("$dict needs [key, value] pairs")
        result[pair[0]] = pair[1]  # an unhashable key raises TypeError: malformed
    return result


_TAGS: dict[str, Callable[[Any], Any]] = {
    "$bytes": _bytes,
    "$tuple": lambda data: tuple(_items(data, "$tuple")),
    "$set": lambda data: set(_items(data, "$set")),
    "$frozenset": lambda data: frozenset(_items(data, "$frozenset")),
    "$dict": _pairs,
}


def _untag(obj: dict[str, Any]) -> Any:
    """``json.loads``' object hook: a tagged object back to its type (inner ones first)."""
    if len(obj) == 1:
        ((key, data),) = obj.items()
        if key.startswith("$"):
            decode = _TAGS.get(key)
            if decode is None:
                raise MalformedMessage(f"unknown tag {key!r}")
            return decode(data)
    elif any(key.startswith("$") for key in obj):
        raise MalformedMessage("a tag must be the only key of its object")
    return obj


def dumps(message: dict[str, Any]) -> bytes:
    """One message as a line of bytes (``message``'s values already made by
    :func:`to_json`, or plain JSON)."""
    text = json.dumps(message, ensure_ascii=True, separators=(",", ":"), allow_nan=True)
    return text.encode("ascii") + b"\n"


def loads(line: bytes) -> dict[str, Any]:
    """The message on ``line`` (without its newline), tags decoded; raises
    :class:`MalformedMessage` for anything else."""
    try:
        message = json.loads(line, object_hook=_untag)
    except MalformedMessage:
        raise
    except (ValueError, TypeError, RecursionError) as error:
        raise MalformedMessage(f"not a message: {error}") from None
    if not isinstance(message, dict):
        raise MalformedMessage(f"a message is a JSON object, not {type(message).__name__}")
    if _depth(message) > MAX_DEPTH + 4:
        raise MalformedMessage(f"a message nests deeper than {MAX_DEPTH} levels")
    return message


def _depth(obj: Any) -> int:
    """How deep containers nest in decoded data (iteratively: no recursion limit)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (list, tuple, set, frozenset)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item)
        elif isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (*item.keys(), *item.values()))
    return deepest
