"""Logging for programs that run netcomp: one call that makes its loggers speak.

Rules: netcomp never configures logging when imported (a library must not); it logs on
``netcomp`` (core), ``netcomp.net``, ``netcomp.web`` and ``netcomp.web.access`` (one line
per response). A program, or the ``netcomp`` command, calls :func:`configure_logging` to
send those to standard error with a format that says when, how bad and where.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

__all__ = ["configure_logging"]

LEVELS = ("debug", "info", "warning", "error")
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
#: With ``pid=True``: which process said it (a supervisor and its workers share stderr).
PID_FORMAT = "%(asctime)s %(levelname)-7s %(name)s[%(process)d]: %(message)s"
_HANDLER_NAME = "netcomp.configure_logging"


def configure_logging(
    level: str | int = "info", stream: TextIO | None = None, *, pid: bool = False
) -> None:
    """Send netcomp's log lines at ``level`` and above to ``stream`` (default stderr).

    ``level``: ``"debug"``, ``"info"`` (access lines included), ``"warning"`` or
    ``"error"``, or a ``logging`` number. ``pid``: each line names the process that
    logged it (``netcomp.web.access[4242]: ...``), for a supervisor and its workers.
    Only the ``netcomp`` loggers are touched (the root logger and other libraries'
    loggers stay as they are); calling it again replaces what an earlier call set up.
    """
    if isinstance(level, str):
        if level.lower() not in LEVELS:
            raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
        number = getattr(logging, level.upper())
    else:
        number = int(level)
    logger = logging.getLogger("netcomp")
    for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter(PID_FORMAT if pid else FORMAT))
    logger.addHandler(handler)
    logger.setLevel(number)
    logger.propagate = False  # printed once, here, even if the root logger prints too
