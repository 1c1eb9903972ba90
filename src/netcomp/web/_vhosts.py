"""``VirtualHosts``: route by the ``Host`` field to controller trees mounted under path
prefixes (circuits.web's dispatcher of that name).

Rules:
* ``domains`` maps a host name (without port, any case; ``*.example.org`` matches every
  subdomain, the longest such pattern first) to a path prefix. A matching request's path
  becomes ``prefix + path`` before the Static files and the Dispatcher see it:
  ``www.example.org/about`` with ``{"www.example.org": "/www"}`` is ``/www/about``.
* A host that matches nothing goes to ``default`` (a prefix) when given, else through
  unchanged (circuits' way).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core import BaseComponent, Event, handler
from ._request import Request
from ._response import Response

__all__ = ["VirtualHosts"]


def host_name(field: str) -> str:
    """The host of a ``Host`` field value, lower case, without port or brackets."""
    field = field.strip().lower()
    if field.startswith("["):
        return field[1:].partition("]")[0]
    return field.rpartition(":")[0] if field.count(":") == 1 else field


class VirtualHosts(BaseComponent):
    """Prefixes the path of each request by the one its host is mapped to."""

    channel: Any = "web"

    def __init__(
        self, domains: Mapping[str, str], channel: Any = "web", *, default: str | None = None
    ) -> None:
        """``domains``: host name (or ``*.domain``) to path prefix."""
        super().__init__(channel=channel)
        self.domains: dict[str, str] = {}
        self.wildcards: list[tuple[str, str]] = []
        for name, prefix in domains.items():
            prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
            if name.startswith("*."):
                self.wildcards.append((name[1:].lower(), prefix))
            else:
                self.domains[name.lower()] = prefix
        self.wildcards.sort(key=lambda item: -len(item[0]))
        self.default = None if default is None else "/" + default.strip("/")

    def prefix(self, host: str) -> str | None:
        """The prefix for ``host`` (a ``Host`` field value), or None."""
        name = host_name(host)
        found = self.domains.get(name)
        if found is not None:
            return found
        for suffix, prefix in self.wildcards:
            if name.endswith(suffix) and len(name) > len(suffix):
                return prefix
        return self.default

    @handler("request", priority=3)
    def _on_request(self, event: Event, request: Request, response: Response) -> None:
        prefix = self.prefix(request.host)
        if prefix:
            request.path = prefix + request.path

    def __repr__(self) -> str:
        return f"<VirtualHosts/{self.channel} {len(self.domains) + len(self.wildcards)} hosts>"
