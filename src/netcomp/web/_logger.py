"""``Logger``: circuits.web's access-log component, a line per response in the Combined
Log Format, to a file or to a logger.

Rules:
* A response is logged once it is complete: when its handlers answered with a body of
  known size, as it starts to go out (the last response filter, after any
  :class:`~netcomp.web.Gzip`: status and size as sent); otherwise (a stream, a body
  written by hand, an error answer) once it is out or its connection gone, with the
  body bytes actually sent (``request.done_hooks``). Requests answered before a request
  existed (a malformed head) are not logged here (``netcomp.web.access`` has them).
* Every field is escaped (control bytes, quotes, backslashes): a client cannot forge
  lines. The host is the peer's address; ``X-Forwarded-For`` is used only with
  ``trust_forwarded=True`` (behind a proxy you trust), as circuits always did.
* ``file``: a path (opened for appending when the first line is written, closed when the
  Logger leaves its tree or the loop ends) or an open text file; ``logger``: anything
  with ``info(line)`` (a ``logging.Logger``); neither: standard output.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from ..core import Event, handler, prepare_unregister
from ._accesslog import clean
from ._attach import FilterComponent
from ._bodies import plain_body
from ._request import Request
from ._response import Response

__all__ = ["Logger"]


class Logger(FilterComponent):
    """Logs each response of the servers on its channel (see the module rules).

    ``format`` uses circuits' atoms: ``h`` host, ``l`` ident (``-``), ``u`` user
    (``request.login``), ``t`` time, ``r`` request line, ``s`` status, ``b`` bytes,
    ``f`` referer, ``a`` user agent.
    """

    filter_order = 100
    format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

    def __init__(
        self,
        file: Any = None,
        logger: Any = None,
        channel: Any = "web",
        *,
        format: str | None = None,
        trust_forwarded: bool = False,
    ) -> None:
        """``file`` and ``logger`` as in the module rules (not both)."""
        super().__init__(channel=channel)
        if file is not None and logger is not None:
            raise TypeError("Logger takes a file or a logger, not both")
        if logger is not None and not callable(getattr(logger, "info", None)):
            raise TypeError(f"logger must have an info(line) method: {logger!r}")
        self.path = os.path.abspath(os.path.expanduser(file)) if isinstance(file, str) else None
        if file is not None and self.path is None and not callable(getattr(file, "write", None)):
            raise TypeError(f"file must be a path or have a write method: {file!r}")
        self.file = None if self.path is not None else file
        self.logger = logger
        if format is not None:
            self.format = format
        self.trust_forwarded = trust_forwarded

    @handler("request", priority=100)
    def _on_request(self, event: Event, request: Request, response: Response) -> None:
        hooks = request.done_hooks
        if hooks is None:
            request.done_hooks = [self.log_response]
        elif self.log_response not in hooks:
            hooks.append(self.log_response)

    def response_filter(self, response: Response, by_hand: bool) -> None:
        """Log a response whose size is known now (see the module rules)."""
        request = response.request
        hooks = request.done_hooks if request is not None else None
        if by_hand or hooks is None or self.log_response not in hooks:
            return
        body = response.body = plain_body(response.body, response.headers)
        if not isinstance(body, bytes):
            return  # a stream: logged once it is out
        no_body = request.method == "HEAD" or response.status in (204, 304)
        declared = response.headers.get("content-length")
        size = 0 if no_body else int(declared) if declared and declared.isdigit() else len(body)
        hooks.remove(self.log_response)
        peer = request.remote
        self.log_response(peer, request, response.status, size)

    def atoms(self, peer: Any, request: Request, status: int, size: int) -> dict[str, str]:
        """The fields of one line, escaped."""
        host = peer[0] if isinstance(peer, tuple) else "-"
        forwarded = request.headers.get("x-forwarded-for")
        if self.trust_forwarded and forwarded:
            host = forwarded.split(",")[-1].strip()
        login = request.login
        return {
            "h": clean(str(host)),
            "l": "-",
            "u": clean(login) if login else "-",
            "t": time.strftime("[%d/%b/%Y:%H:%M:%S %z]"),
            "r": clean(f"{request.method} {request.target} HTTP/{request.version}"),
            "s": str(status),
            "b": str(size) if size else "-",
            "f": clean(request.headers.get("referer", "")),
            "a": clean(request.headers.get("user-agent", "")),
        }

    def log_response(self, peer: Any, request: Request, status: int, size: int) -> None:
        """Write the line for one response."""
        line = self.format % self.atoms(peer, request, status, size)
        if self.logger is not None:
            self.logger.info(line)
            return
        out = self.file
        if out is None and self.path is not None:
            out = self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        if out is None:
            out = sys.stdout
        out.write(line + "\n")
        out.flush()

    def close(self) -> None:
        """Close the file this Logger opened (it reopens it for the next line)."""
        if self.path is not None and self.file is not None:
            self.file.close()
            self.file = None

    @handler("prepare_unregister", channel="*")
    def _leaving(self, event: prepare_unregister, component: Any) -> None:
        if event.in_subtree(self):
            self.close()

    def loop_ended(self) -> None:
        """The loop is gone: close the file."""
        self.close()
