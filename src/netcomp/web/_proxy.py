"""Proxy headers: the client's address, scheme and host as a trusted proxy reports them.

Rules (RFC 7239 ``Forwarded``; the de-facto ``X-Forwarded-For``/``-Proto``/``-Host``):
* Only a connection from a trusted network (``forwarded_allow``: loopback by default) has
  its headers read; from anyone else they are ignored, so a client cannot forge its
  address, scheme or host.
* ``Forwarded`` wins over ``X-Forwarded-*`` when both are present. Its elements (and the
  ``X-Forwarded-For`` entries) list the hops client first; the client is found from the
  right: the first hop that is not itself a trusted proxy (or the leftmost, when all are).
  With ``Forwarded`` the scheme and host are that element's ``proto``/``host``; with
  ``X-Forwarded-Proto``/``-Host`` they are the last value (the nearest proxy's word).
* A value that is not what it should be (a ``for`` that is not an IP address, a scheme
  other than http/https, a host with characters no host has) is ignored, field by field:
  the request keeps what the socket said.
* The request then reports ``remote`` (``(host, port)``, port 0 when not given),
  ``scheme`` and ``host`` from the headers, and ``forwarded_by``: the proxy's address.
  Nothing here runs when ``proxy_headers`` is off.
"""

from __future__ import annotations

import re
from typing import Any

from ..net import Networks
from ._request import Request

__all__ = ["ProxyHeaders", "parse_forwarded", "parse_node"]

_HOST = re.compile(r"[A-Za-z0-9._~\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
_ANY = Networks(["0.0.0.0/0", "::/0"])
_PAIR = re.compile(r'\s*([A-Za-z]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)\s*')


def parse_forwarded(value: str) -> list[dict[str, str]]:
    """The elements of a ``Forwarded`` field, each a dict of lower-cased parameter names
    to (unquoted) values; a malformed part ends the parse (what came before is kept)."""
    elements: list[dict[str, str]] = []
    current: dict[str, str] = {}
    at = 0
    while at < len(value):
        match = _PAIR.match(value, at)
        if match is None:
            break
        name, text = match.group(1).lower(), match.group(2)
        if text.startswith('"'):
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        current.setdefault(name, text)
        at = match.end()
        separator = value[at : at + 1]
        if separator == ",":
            elements.append(current)
            current = {}
        elif separator != ";":
            break
        at += 1
    if current:
        elements.append(current)
    return elements


def parse_node(node: str) -> tuple[str, int] | None:
    """A ``for`` node (``192.0.2.1``, ``192.0.2.1:4711``, ``[2001:db8::1]:80``) as
    ``(host, port)`` (port 0 when not given), or None when it names no IP address."""
    node = node.strip()
    port = "0"
    if node.startswith("["):
        host, _, rest = node[1:].partition("]")
        if rest.startswith(":"):
            port = rest[1:]
        elif rest:
            return None
    elif node.count(":") == 1:
        host, port = node.split(":")
    else:
        host = node
    if not port.isdigit() or int(port) > 65535:
        return None
    if not _is_ip(host):
        return None
    return host, int(port)


def _is_ip(host: str) -> bool:
    return host in _ANY


class ProxyHeaders:
    """Reads the proxy headers of requests whose connection comes from ``trusted``."""

    __slots__ = ("trusted",)

    def __init__(self, trusted: Networks) -> None:
        #: Networks whose proxy headers are believed.
        self.trusted = trusted

    def apply(self, request: Request) -> None:
        """Set ``request``'s ``remote``, ``scheme``, ``host`` from trusted proxy headers."""
        peer = request.remote
        if peer not in self.trusted:
            return
        headers = request.headers
        fields = headers.get_all("forwarded")
        if fields:
            hops = parse_forwarded(", ".join(fields))
            if not hops:
                return
            chosen = self._client(hops)
            proto, host = chosen.get("proto"), chosen.get("host")
            client = parse_node(chosen.get("for", ""))
        else:
            entries = [e for f in headers.get_all("x-forwarded-for") for e in f.split(",")]
            hops = [{"for": e.strip()} for e in entries if e.strip()]
            client = parse_node(self._client(hops)["for"]) if hops else None
            proto = _last(headers.get_all("x-forwarded-proto"))
            host = _last(headers.get_all("x-forwarded-host"))
        self._set(request, peer, client, proto, host)

    def _client(self, hops: list[dict[str, str]]) -> dict[str, str]:
        """From the right, the first hop that is not a trusted proxy (else the leftmost)."""
        for hop in reversed(hops):
            node = parse_node(hop.get("for", ""))
            if node is None or node not in self.trusted:
                return hop
        return hops[0]

    @staticmethod
    def _set(
        request: Request,
        peer: Any,
        client: tuple[str, int] | None,
        proto: str | None,
        host: str | None,
    ) -> None:
        if client is None and proto is None and host is None:
            return
        request.forwarded_by = peer
        if client is not None:
            request.remote = client
        if proto is not None and proto.strip().lower() in ("http", "https"):
            request.scheme = proto.strip().lower()
        if host is not None and _HOST.fullmatch(host.strip()):
            request.forwarded_host = host.strip()

    def __repr__(self) -> str:
        return f"ProxyHeaders(trusted={self.trusted!r})"


def _last(values: list[str]) -> str | None:
    """The last comma-separated entry of a multi-valued field, or None."""
    if not values:
        return None
    entry = values[-1].rsplit(",", 1)[-1].strip()
    return entry or None
