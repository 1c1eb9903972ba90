"""Access log lines in the Combined Log Format, with control bytes escaped."""

from __future__ import annotations

import time

__all__ = ["format_access"]

_ESCAPES = {i: f"\\x{i:02x}" for i in (*range(0x20), *range(0x7F, 0xA0))}  # C0, DEL, C1
_ESCAPES[ord('"')] = '\\"'
_ESCAPES[ord("\\")] = "\\\\"


def _clean(text: str) -> str:
    """``text`` with control bytes, quotes and backslashes escaped (no log forging)."""
    return text.translate(_ESCAPES)


def format_access(
    host: str, request_line: str, status: int, size: int, referer: str, agent: str
) -> str:
    """One Combined Log Format line: ``host - - [time] "line" status size "ref" "agent"``."""
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z")
    return (
        f'{host} - - [{stamp}] "{_clean(request_line)}" {status} {size or "-"} '
        f'"{_clean(referer)}" "{_clean(agent)}"'
    )
