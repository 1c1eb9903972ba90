"""What JSON-RPC and XML-RPC share: a path on the server, and calls by method name that
fire events, refused unless they name an event a handler takes on purpose.

Rules:
* A dispatcher answers ``POST`` requests to its ``path`` (405 for other methods there)
  and nothing else; the body is read whole, at most ``max_body`` bytes (413).
* A method name fires the event of that name on ``rpc_channel`` with the call's
  parameters (a list: positional arguments; a dict: keyword arguments). The caller's
  answer is the handlers' value.
* A name is callable only if it is an identifier not starting with ``_``, is not one of
  :data:`RESERVED` (the events netcomp's own components take: a client must not stop a
  server by calling ``close``), is in ``methods`` when that is given, and a handler takes
  it by name on ``rpc_channel``. Anything else is "method not found".
* A handler's error is logged (on ``netcomp.web``, with its traceback) and the caller
  gets "internal error" without the details; arguments the handler cannot take are
  "invalid params".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from ..core import BaseComponent, Event, HandlerSignatureError, NotHandled, handler
from ._errors import HTTPError, MethodNotAllowed
from ._request import Request
from ._response import Response

__all__ = ["INTERNAL_ERROR", "INVALID_PARAMS", "METHOD_NOT_FOUND", "RESERVED", "RPCDispatcher"]

log = logging.getLogger("netcomp.web")

METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

#: Event names no RPC call may fire: core lifecycle, net, web and bridge events.
RESERVED = frozenset(
    (
        "registered", "unregistered", "prepare_unregister", "started", "stopped",
        "signal", "exception", "generate_events", "ready", "connect", "connected",
        "disconnect", "disconnected", "read", "write", "close", "closed", "error",
        "unreachable", "starttls", "drained", "broadcast", "enable", "disable", "ipc",
        "request", "response", "closing", "task", "timer",
    )
)  # fmt: skip
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


class RPCFailure(Exception):
    """A call that cannot be answered with a result: ``code`` and ``message``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RPCDispatcher(BaseComponent):
    """Base of :class:`~netcomp.web.JSONRPC` and :class:`~netcomp.web.XMLRPC`."""

    channel: Any = "web"

    def __init__(
        self,
        path: str = "/rpc",
        encoding: str = "utf-8",
        rpc_channel: Any = "*",
        channel: Any = "web",
        *,
        methods: Iterable[str] | None = None,
        max_body: int = 1024 * 1024,
    ) -> None:
        """``path``: where calls are posted. ``rpc_channel``: where their events are
        fired. ``methods``: the only names that may be called (None: any name a handler
        takes, :data:`RESERVED` excepted). ``max_body``: the largest call, in bytes."""
        super().__init__(channel=channel)
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        self.path = "/" + path.strip("/")
        self.encoding = encoding
        self.rpc_channel = rpc_channel
        self.methods = frozenset(methods) if methods is not None else None
        self.max_body = max_body

    @handler("request", priority=2)
    def _on_request(self, event: Event, request: Request, response: Response) -> Any:
        if event.answered or request.path.rstrip("/") != self.path.rstrip("/"):
            return None
        if request.method != "POST":
            raise MethodNotAllowed(["POST"])
        return self._serve(request, response)

    async def _serve(self, request: Request, response: Response) -> Response:
        too_big = HTTPError(413, f"an RPC call is at most {self.max_body} bytes")
        body = bytes(request.body)
        if request.stream is not None:  # read no further than max_body: the rest never is
            parts: list[bytes] = []
            size = 0
            async for chunk in request.stream:
                size += len(chunk)
                if size > self.max_body:
                    raise too_big
                parts.append(chunk)
            body = b"".join(parts)
        if len(body) > self.max_body:
            raise too_big
        return await self.answer(body, response)

    async def answer(self, body: bytes, response: Response) -> Response:
        """Answer one posted ``body`` (the subclass's protocol)."""
        raise NotImplementedError

    def callable(self, name: Any) -> bool:
        """Whether ``name`` may be called (see the module rules)."""
        if not isinstance(name, str) or not _NAME.match(name) or name in RESERVED:
            return False
        if self.methods is not None and name not in self.methods:
            return False
        named = self.loop.registry.lookup(name, (self.rpc_channel,))[2]
        return bool(named)

    async def invoke(self, name: Any, params: Any) -> Any:
        """The value of calling ``name`` with ``params``; :class:`RPCFailure` otherwise."""
        if not self.callable(name):
            raise RPCFailure(METHOD_NOT_FOUND, f"method not found: {str(name)[:100]!r}")
        if isinstance(params, dict):
            event = Event.create(name, **params)
        elif isinstance(params, (list, tuple)):
            event = Event.create(name, *params)
        else:
            raise RPCFailure(INVALID_PARAMS, "params must be a list or an object")
        try:
            return await self.call(event, self.rpc_channel)
        except HandlerSignatureError as error:
            raise RPCFailure(INVALID_PARAMS, f"invalid params for {name}") from error
        except NotHandled as error:
            raise RPCFailure(METHOD_NOT_FOUND, f"method not found: {name!r}") from error
        except Exception as error:
            log.error("RPC %s at %s: a handler raised: %r", name, self.path, error, exc_info=error)
            raise RPCFailure(INTERNAL_ERROR, "internal error") from error

    def __repr__(self) -> str:
        return f"<{type(self).__name__}/{self.channel} {self.path} -> {self.rpc_channel!r}>"
