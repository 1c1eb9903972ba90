"""The server's side of the opening handshake (RFC 6455 section 4.2): check the request,
choose a subprotocol and permessage-deflate's parameters, say what the 101 carries.

The request was parsed by the HTTP server; wsproto computes the accept token and
negotiates permessage-deflate (through :class:`~._wsdeflate.BoundedDeflate`). A request
that is not a valid handshake is answered with the status RFC 6455 names: 400, or 426
with ``Sec-WebSocket-Version: 13`` for another version.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from wsproto.utilities import generate_accept_token, split_comma_header

from ._errors import BadRequest, HTTPError
from ._request import Request
from ._wsdeflate import BoundedDeflate

__all__ = ["Agreement", "asks_for_websocket", "negotiate", "tokens"]


def tokens(request: Request, name: str, lower: bool = True) -> list[str]:
    """The comma-separated tokens of every ``name`` field (lower case unless not
    ``lower``: subprotocol names are case-sensitive)."""
    found: list[str] = []
    for value in request.headers.get_all(name):
        items = split_comma_header(value.encode("latin-1"))
        found.extend(t.strip().lower() if lower else t.strip() for t in items)
    return found


def asks_for_websocket(request: Request) -> bool:
    """Whether the request asks to upgrade to WebSocket (valid or not)."""
    return "websocket" in tokens(request, "upgrade")


class Agreement:
    """What the server agreed to: the 101's fields, the subprotocol, the extension."""

    __slots__ = ("deflate", "headers", "subprotocol")

    def __init__(
        self,
        headers: list[tuple[str, str]],
        subprotocol: str | None,
        deflate: BoundedDeflate | None,
    ) -> None:
        self.headers = headers
        self.subprotocol = subprotocol
        self.deflate = deflate


def _key(request: Request) -> bytes:
    if request.method != "GET" or request.version != "1.1":
        raise BadRequest(description="a WebSocket handshake is an HTTP/1.1 GET")
    if request.body or request.stream is not None:
        raise BadRequest(description="a WebSocket handshake has no body")
    if "upgrade" not in tokens(request, "connection"):
        raise BadRequest(description="a WebSocket handshake needs 'Connection: Upgrade'")
    version = request.headers.get_all("sec-websocket-version")
    if version != ["13"]:
        raise HTTPError(
            426 if version else 400,
            "WebSocket version 13 is the one supported",
            [("Sec-WebSocket-Version", "13")],
        )
    keys = request.headers.get_all("sec-websocket-key")
    key = keys[0].strip() if len(keys) == 1 else ""
    try:
        valid = len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        raise BadRequest(description="Sec-WebSocket-Key must be 16 bytes in base64")
    return key.encode("ascii")


def negotiate(
    request: Request, subprotocols: Sequence[str], compression: bool, max_size: int
) -> Agreement:
    """Check the handshake (``HTTPError`` if invalid) and agree on what the 101 says."""
    key = _key(request)
    headers = [
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Accept", generate_accept_token(key).decode("ascii")),
    ]
    offered = tokens(request, "sec-websocket-protocol", lower=False)
    chosen = next((p for p in subprotocols if p in offered), None)
    if chosen is not None:
        headers.append(("Sec-WebSocket-Protocol", chosen))
    deflate = None
    if compression:
        for offer in request.headers.get_all("sec-websocket-extensions"):
            for item in split_comma_header(offer.encode("latin-1")):
                if item.split(";", 1)[0].strip().lower() != "permessage-deflate":
                    continue
                # Our compressor keeps no context between messages: no memory per
                # WebSocket for it, and a broadcast is compressed once for everyone.
                candidate = BoundedDeflate(max_size, server_no_context_takeover=True)
                params = candidate.accept(item)
                if params is not None:
                    deflate = candidate
                    text = "permessage-deflate" + (f"; {params}" if params else "")
                    headers.append(("Sec-WebSocket-Extensions", text))
                    break
            if deflate is not None:
                break
    return Agreement(headers, chosen, deflate)
