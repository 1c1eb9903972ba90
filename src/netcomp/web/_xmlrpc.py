"""``XMLRPC``: XML-RPC over HTTP POST, marshalled by the standard library's
:mod:`xmlrpc.client`, parsed by expat with entities refused.

Rules (http://xmlrpc.com/spec.md, plus :mod:`._rpc`):
* The call is parsed by :func:`parse_call`: expat driving ``xmlrpc.client``'s
  ``Unmarshaller``. A document type declaration is refused outright (entities can
  only be declared in one), and so is any entity declaration or external entity
  reference: no "billion laughs", no external entity (XXE). Elements nest at most
  :data:`MAX_DEPTH` deep.
* A body that does not parse, or is not a ``methodCall``, is answered 400 with a fault
  (-32700 / -32600). Every call that parses is answered 200: its result, or a fault
  (method not found -32601, invalid params -32602, internal error -32603; a result
  ``xmlrpc.client`` cannot marshal is an internal error).
* Nothing is pickled; ``None`` is sent as ``<nil/>`` (``allow_none``).
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any
from xml.parsers import expat

from ._response import Response
from ._rpc import INTERNAL_ERROR, RPCDispatcher, RPCFailure

__all__ = ["MAX_DEPTH", "XMLRPC", "parse_call"]

#: The deepest an XML-RPC call's elements may nest.
MAX_DEPTH = 64
_XML = "text/xml"


class _Refused(ValueError):
    """A document this parser does not take (a DTD, an entity, too deep)."""


def _refuse(what: str) -> Any:
    def refuse(*_args: Any) -> None:
        raise _Refused(f"{what} is not allowed in an XML-RPC call")

    return refuse


def parse_call(body: bytes) -> tuple[tuple[Any, ...], str]:
    """``(params, method name)`` of an XML-RPC call; ``ValueError`` when ``body`` is not
    one (malformed, a DTD or entity, too deep, another kind of document)."""
    target = xmlrpc.client.Unmarshaller(use_builtin_types=True)
    target.xml(None, None)  # type: ignore[arg-type]  # expat gives text, no bytes to decode
    parser = expat.ParserCreate(None, None)
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse("a document type declaration")
    parser.EntityDeclHandler = _refuse("an entity declaration")
    parser.UnparsedEntityDeclHandler = _refuse("an entity declaration")
    parser.ExternalEntityRefHandler = _refuse("an external entity")
    depth = [0]

    def start(tag: str, attributes: dict[str, str]) -> None:
        depth[0] += 1
        if depth[0] > MAX_DEPTH:
            raise _Refused(f"elements nest more than {MAX_DEPTH} deep")
        target.start(tag, attributes)

    def end(tag: str) -> None:
        depth[0] -= 1
        target.end(tag)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = target.data
    try:
        parser.Parse(body, True)
        params = target.close()
    except _Refused:
        raise
    except Exception as error:  # expat, unmarshalling (bad int, unknown tag, a fault...)
        raise ValueError(f"not an XML-RPC call: {error}") from None
    method = target.getmethodname()
    if not isinstance(method, str):
        raise ValueError("not an XML-RPC call: no methodName")
    return params, method


class XMLRPC(RPCDispatcher):
    """XML-RPC calls posted to ``path`` fire events by method name on ``rpc_channel``
    (see :mod:`._rpc` for which names may be called)."""

    async def answer(self, body: bytes, response: Response) -> Response:
        """The HTTP answer to one posted body."""
        try:
            params, method = parse_call(body)
        except ValueError as error:
            fault = xmlrpc.client.Fault(-32700, str(error)[:200])
            return self._reply(response, xmlrpc.client.dumps(fault, methodresponse=True), 400)
        try:
            result = await self.invoke(method, params)
            text = xmlrpc.client.dumps(
                (result,), methodresponse=True, allow_none=True, encoding=self.encoding
            )
        except RPCFailure as failure:
            text = xmlrpc.client.dumps(xmlrpc.client.Fault(failure.code, failure.message))
        except (TypeError, ValueError, OverflowError):
            fault = xmlrpc.client.Fault(INTERNAL_ERROR, "internal error: cannot marshal result")
            text = xmlrpc.client.dumps(fault, methodresponse=True)
        return self._reply(response, text, 200)

    def _reply(self, response: Response, text: str, status: int) -> Response:
        response.status = status
        response.headers["Content-Type"] = f"{_XML}; charset={self.encoding}"
        response.body = text.encode(self.encoding, "xmlcharrefreplace")
        return response
