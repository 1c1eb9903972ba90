"""circuits.web's ``utils``, written for netcomp: query strings, gzip, byte ranges."""

from __future__ import annotations

import os
import re
import stat
from typing import Any
from urllib.parse import parse_qs as _parse_qs

from ._gzip import compress
from ._ranges import get_ranges

__all__ = ["compress", "get_ranges", "is_unix_socket", "parse_qs"]

_IMAGE_MAP = re.compile(r"[0-9]+,[0-9]+\Z")


def parse_qs(query_string: str, keep_blank_values: bool = True) -> dict[str, Any]:
    """A query string as ``{name: first value}``; a server-side image map's ``x,y``
    as ``{"x": x, "y": y}`` (circuits' ``parse_qs``)."""
    if _IMAGE_MAP.match(query_string):
        x, y = query_string.split(",")
        return {"x": int(x), "y": int(y)}
    pairs = _parse_qs(query_string, keep_blank_values)
    return {name: values[0] for name, values in pairs.items() if values}


def is_unix_socket(path: str) -> bool:
    """Whether ``path`` names a UNIX socket."""
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False
