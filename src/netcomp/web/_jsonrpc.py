"""``JSONRPC``: JSON-RPC 2.0 over HTTP POST, and the 1.0 form circuits' clients send.

Rules (https://www.jsonrpc.org/specification, plus :mod:`._rpc`):
* A body that is not JSON is a parse error (-32700), one that is not a request object
  (or a non-empty array of them, at most ``max_batch``) an invalid request (-32600):
  either is answered 400 with the error object and ``id: null``.
* Each call gets its result or its error object, with its ``id``; calls of a batch are
  answered in order, in one array. Notifications (2.0 requests without ``id``) get no
  entry; a request made only of notifications is answered 204.
* A request object without ``"jsonrpc": "2.0"`` is JSON-RPC 1.0 (what circuits.web's
  clients send): it is answered in 1.0's shape, ``{"result", "error", "id"}``.
"""

from __future__ import annotations

import json
from typing import Any

from ._response import Response
from ._rpc import INTERNAL_ERROR, RPCDispatcher, RPCFailure

__all__ = ["INVALID_REQUEST", "JSONRPC", "PARSE_ERROR"]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
_JSON = "application/json"


def _error(code: int, message: str, ident: Any = None, v2: bool = True) -> dict[str, Any]:
    error = {"code": code, "message": message}
    if v2:
        return {"jsonrpc": "2.0", "error": error, "id": ident}
    return {"result": None, "error": error, "id": ident}


class JSONRPC(RPCDispatcher):
    """JSON-RPC calls posted to ``path`` fire events by method name on ``rpc_channel``
    (see :mod:`._rpc` for which names may be called). ``max_batch``: the most calls one
    batch may hold."""

    max_batch = 100

    async def answer(self, body: bytes, response: Response) -> Response:
        """The HTTP answer to one posted body."""
        try:
            message = json.loads(body.decode(self.encoding))
        except (ValueError, UnicodeDecodeError, RecursionError) as error:
            return self._reply(response, _error(PARSE_ERROR, f"parse error: {error}"), 400)
        if isinstance(message, list):
            if not message or len(message) > self.max_batch:
                reason = f"a batch holds 1 to {self.max_batch} requests"
                return self._reply(response, _error(INVALID_REQUEST, reason), 400)
            answers = [await self._one(item) for item in message]
            found = [answer for answer in answers if answer is not None]
            return self._reply(response, found, 200) if found else self._empty(response)
        if not isinstance(message, dict):
            reason = "invalid request: not an object"
            return self._reply(response, _error(INVALID_REQUEST, reason), 400)
        answer = await self._one(message)
        if answer is None:
            return self._empty(response)
        status = 400 if answer.get("error", {}) and _invalid(answer) else 200
        return self._reply(response, answer, status)

    async def _one(self, call: Any) -> dict[str, Any] | None:
        if not isinstance(call, dict):
            return _error(INVALID_REQUEST, "invalid request: not an object")
        v2 = call.get("jsonrpc") == "2.0"
        if "jsonrpc" in call and not v2:
            return _error(INVALID_REQUEST, "invalid request: jsonrpc must be '2.0'")
        ident = call.get("id")
        notification = "id" not in call if v2 else ident is None
        if not isinstance(ident, (str, int, float, type(None))) or isinstance(ident, bool):
            return _error(INVALID_REQUEST, "invalid request: bad id", None, v2)
        method = call.get("method")
        if not isinstance(method, str):
            return _error(INVALID_REQUEST, "invalid request: no method", ident, v2)
        try:
            result = await self.invoke(method, call.get("params", []))
            json.dumps(result)  # what cannot be sent is an internal error, reported here
        except RPCFailure as failure:
            answer = _error(failure.code, failure.message, ident, v2)
        except (TypeError, ValueError):
            answer = _error(INTERNAL_ERROR, "internal error: the result is not JSON", ident, v2)
        else:
            answer = {"jsonrpc": "2.0", "result": result, "id": ident}
            if not v2:
                answer = {"result": result, "error": None, "id": ident}
        return None if notification else answer

    def _reply(self, response: Response, data: Any, status: int) -> Response:
        response.status = status
        response.headers["Content-Type"] = _JSON
        response.body = json.dumps(data, separators=(",", ":")).encode(self.encoding)
        return response

    def _empty(self, response: Response) -> Response:
        response.status = 204
        response.body = b""
        return response


def _invalid(answer: dict[str, Any]) -> bool:
    error = answer.get("error")
    return isinstance(error, dict) and error.get("code") in (PARSE_ERROR, INVALID_REQUEST)
