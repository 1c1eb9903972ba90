"""Access log lines in the Combined Log Format, with control bytes escaped, on the
``netcomp.web.access`` logger (INFO)."""

from __future__ import annotations

import logging
import time
from typing import Any

from ._request import Request

__all__ = ["access_log", "clean", "format_access", "log_access"]

access_log = logging.getLogger("netcomp.web.access")

_ESCAPES = {i: f"\\x{i:02x}" for i in (*range(0x20), *range(0x7F, 0xA0))}  # C0, DEL, C1
_ESCAPES[ord('"')] = '\\"'
_ESCAPES[ord("\\")] = "\\\\"


def clean(text: str) -> str:
    """``text`` with control bytes, quotes and backslashes escaped (no log forging)."""
    return text.translate(_ESCAPES)


def format_access(
    host: str, request_line: str, status: int, size: int, referer: str, agent: str
) -> str:
    """One Combined Log Format line: ``host - - [time] "line" status size "ref" "agent"``."""
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z")
    return (
        f'{host} - - [{stamp}] "{clean(request_line)}" {status} {size or "-"} '
        f'"{clean(referer)}" "{clean(agent)}"'
    )


def log_access(peer: Any, request: Request | None, status: int, size: int) -> None:
    """Log one response (``request`` is None for an error answered without one), and
    call the request's ``done_hooks`` (a :class:`~netcomp.web.Logger`'s)."""
    if request is not None and request.done_hooks is not None:
        for hook in request.done_hooks:
            try:
                hook(peer, request, status, size)
            except Exception:  # a hook's bug never breaks the connection; said once
                logging.getLogger("netcomp.web").exception("access hook %r raised", hook)
    if not access_log.isEnabledFor(logging.INFO):
        return
    if request is not None:
        peer = request.remote  # the client a trusted proxy named, else the socket's peer
    host = peer[0] if isinstance(peer, tuple) else "-"
    if request is None:
        line, referer, agent = "-", "-", "-"
    else:
        line = f"{request.method} {request.target} HTTP/{request.version}"
        referer = request.headers.get("referer", "-")
        agent = request.headers.get("user-agent", "-")
    access_log.info(format_access(host, line, status, size, referer, agent))
