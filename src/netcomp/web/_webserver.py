"""``Server``: the HTTP server with its default :class:`Dispatcher`."""

from __future__ import annotations

from typing import Any

from ._dispatcher import Dispatcher
from ._server import BaseServer

__all__ = ["Server"]


class Server(BaseServer):
    """:class:`BaseServer` plus a :class:`Dispatcher` routing to :class:`Controller` s.

    >>> app = Server(("127.0.0.1", 8000)) + Root()   # doctest: +SKIP
    """

    def init(self, bind: Any = None, *args: Any, **kwargs: Any) -> None:
        """Same arguments as :class:`BaseServer`."""
        super().init(bind, *args, **kwargs)
        self.dispatcher = Dispatcher(channel=self.channel).register(self)
