"""Components that add a response filter to the servers on their channel.

Rules: while such a component is in a tree, every :class:`BaseServer` of that tree on
the component's channel has its ``response_filter`` in ``response_filters`` (servers
that join later included), ordered by ``filter_order`` (ties: first come first); once it
leaves, its filter is removed from every server it was added to. Servers without one do
nothing more per request.
"""

from __future__ import annotations

import weakref
from typing import Any

from ..core import BaseComponent, handler, prepare_unregister
from ._response import Response
from ._server import BaseServer

__all__ = ["FilterComponent"]


class FilterComponent(BaseComponent):
    """Base of components that filter the responses of the servers on their channel
    (:class:`~netcomp.web.Gzip`, :class:`~netcomp.web.Sessions`): a subclass defines
    :meth:`response_filter`."""

    channel: Any = "web"
    #: Where the filter runs among the server's filters: lower first (a
    #: :class:`~netcomp.web.Logger` runs last, to see the response as it will go out).
    filter_order = 0

    def __init__(self, channel: Any = "web") -> None:
        """``channel``: the web server's channel."""
        super().__init__(channel=channel)
        self._servers: weakref.WeakSet[BaseServer] = weakref.WeakSet()

    def response_filter(self, response: Response, by_hand: bool) -> Any:
        """Called for each response of the servers on this channel (see
        ``BaseServer.response_filters``)."""
        raise NotImplementedError

    @handler("registered", channel="*")
    def _filter_registered(self, component: Any, manager: Any) -> None:
        if component is self or isinstance(component, BaseServer):
            for node in self.root.walk():
                if isinstance(node, BaseServer) and node.channel == self.channel:
                    if self.response_filter not in node.response_filters:
                        _insert(node.response_filters, self.response_filter, self.filter_order)
                    self._servers.add(node)

    @handler("prepare_unregister", channel="*")
    def _filter_leaving(self, event: prepare_unregister, component: Any) -> None:
        leaving = event.in_subtree(self)
        for server in list(self._servers):
            if leaving != event.in_subtree(server):  # the two part: no more filtering
                if self.response_filter in server.response_filters:
                    server.response_filters.remove(self.response_filter)
                self._servers.discard(server)


def _insert(filters: list[Any], new: Any, order: int) -> None:
    """Put ``new`` after every filter of an order up to ``order``."""
    at = len(filters)
    for index, present in enumerate(filters):
        if getattr(getattr(present, "__self__", None), "filter_order", 0) > order:
            at = index
            break
    filters.insert(at, new)
