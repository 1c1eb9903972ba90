"""Case-insensitive, multi-valued HTTP header fields that refuse CR, LF and NUL."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Mapping
from email.utils import formatdate
from typing import overload

__all__ = ["Headers", "check_field", "date_field", "http_date"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE = re.compile(r"[\x00\r\n]")


def check_field(name: str, value: str) -> None:
    """Raise ValueError unless ``name`` is a token and ``value`` holds no CR, LF or NUL.

    A CR or LF in a response field would let whoever controls the value write headers or
    a whole response of their own (response splitting, RFC 9110 section 5.5).
    """
    if not _TOKEN.match(name):
        raise ValueError(f"invalid header field name {name!r}")
    if _BAD_VALUE.search(value):
        raise ValueError(f"header field {name!r} has CR, LF or NUL in its value: {value!r}")


#: Fields that passed check_field (most responses set the same few): a bounded cache.
_CHECKED: set[tuple[str, str]] = set()
_CHECKED_MAX = 1024

_date_second = 0
_date_text = ""
_date_field = ""


def http_date() -> str:
    """The current time as an IMF-fixdate, for the ``Date`` field (cached for the second)."""
    global _date_second, _date_text, _date_field
    now = int(time.time())
    if now != _date_second:
        _date_second = now
        _date_text = formatdate(now, usegmt=True)
        _date_field = f"Date: {_date_text}\r\n"
    return _date_text


def date_field() -> str:
    """The whole ``Date: ...\\r\\n`` line of a response head (cached for the second)."""
    if int(time.time()) != _date_second:
        http_date()
    return _date_field


class Headers:
    """Header fields in order; lookups ignore case; a name may repeat.

    ``headers["Name"]`` is the first value (KeyError if absent), ``get_all(name)`` every
    value, ``add`` appends, ``headers[name] = v`` replaces every value.
    """

    __slots__ = ("_items", "checked")

    def __init__(
        self,
        items: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        checked: bool = True,
    ) -> None:
        self.checked = checked
        self._items: list[tuple[str, str]] = []
        pairs = items.items() if isinstance(items, Mapping) else items
        for name, value in pairs:
            self.add(name, value)

    @classmethod
    def _trusted(cls, items: list[tuple[str, str]]) -> Headers:
        """Wrap fields the parser already validated (no copy, no checks)."""
        headers = cls.__new__(cls)
        headers.checked = False
        headers._items = items
        return headers

    @classmethod
    def _checked_empty(cls) -> Headers:
        """A new empty, checking Headers (the fast path of every Response)."""
        headers = cls.__new__(cls)
        headers.checked = True
        headers._items = []
        return headers

    def add(self, name: str, value: str) -> None:
        """Append a field (``value`` converted with ``str``)."""
        if value.__class__ is not str:
            value = str(value)
        if self.checked and (name, value) not in _CHECKED:
            check_field(name, value)
            if len(_CHECKED) < _CHECKED_MAX and len(value) <= 256:
                _CHECKED.add((name, value))
        self._items.append((name, value))

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in order (empty list if absent)."""
        key = name.lower()
        return [v for n, v in self._items if n.lower() == key]

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        key = name.lower()
        for n, v in self._items:
            if n.lower() == key:
                return v
        return default

    def setdefault(self, name: str, value: str) -> str:
        """The first value of ``name``; adds ``value`` first if absent."""
        current = self.get(name)
        if current is None:
            self.add(name, value)
            return str(value)
        return current

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        if self._items:
            self.remove(name)
        if value.__class__ is not str:
            value = str(value)
        if self.checked and (name, value) not in _CHECKED:
            self.add(name, value)  # checks it (and remembers it)
        else:
            self._items.append((name, value))

    def __delitem__(self, name: str) -> None:
        if not self.remove(name):
            raise KeyError(name)

    def remove(self, name: str) -> int:
        """Drop every field called ``name``; how many there were."""
        key = name.lower()
        before = len(self._items)
        self._items = [(n, v) for n, v in self._items if n.lower() != key]
        return before - len(self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.lower()
        for n, _ in self._items:  # noqa: SIM110 (a loop: any() costs a generator frame)
            if n.lower() == key:
                return True
        return False

    def __iter__(self) -> Iterator[str]:
        return iter([n for n, _ in self._items])

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, str]]:
        """The fields as ``(name, value)`` pairs in order (a copy)."""
        return list(self._items)

    def keys(self) -> list[str]:
        """The field names in order (repeats included)."""
        return [n for n, _ in self._items]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(n.lower(), v) for n, v in self._items] == [
            (n.lower(), v) for n, v in other._items
        ]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"
