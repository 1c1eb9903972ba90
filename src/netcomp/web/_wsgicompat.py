"""circuits.web's ``wsgi.Gateway``: WSGI applications mounted by path, given as a dict,
and as lenient with ``str`` as circuits was.

Rules:
* ``Gateway({"/": app, "/admin": other})`` mounts each application with a
  :class:`~netcomp.web.WSGIGateway` of its own, the longest path first, so a request
  goes to the application of its longest mount path.
* circuits' gateway took ``str`` where PEP 3333 wants ``bytes`` (a body returned as a
  ``str``, ``str`` chunks, ``write(str)``): this one encodes them as UTF-8, as circuits
  did. (:class:`~netcomp.web.WSGIGateway` itself keeps to PEP 3333.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ..core import BaseComponent
from ._bodies import close_source
from ._wsgi import WSGIApp, WSGIGateway

__all__ = ["Gateway", "lenient"]


def _bytes(data: Any) -> Any:
    return data.encode("utf-8") if isinstance(data, str) else data


class _Encoded:
    """An application's result with its ``str`` chunks as UTF-8; ``close()`` passes on."""

    def __init__(self, result: Iterable[Any]) -> None:
        self.result = result
        self._chunks: Iterator[Any] = iter(result)

    def __iter__(self) -> _Encoded:
        return self

    def __next__(self) -> Any:
        return _bytes(next(self._chunks))

    def close(self) -> None:
        close_source(self.result)


def lenient(app: WSGIApp) -> WSGIApp:
    """``app`` with the ``str`` it gives where PEP 3333 wants ``bytes`` encoded as UTF-8."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            write = start_response(status, headers, exc_info)
            return lambda data: write(_bytes(data))

        result = app(environ, start)
        if isinstance(result, str):
            return [result.encode("utf-8")]
        if isinstance(result, (list, tuple)):
            return [_bytes(chunk) for chunk in result]
        return _Encoded(result)

    return application


class Gateway(BaseComponent):
    """circuits' ``Gateway(apps)``: ``apps`` maps mount paths to WSGI applications (see
    the module rules). ``workers``: threads of each mount's pool."""

    channel: Any = "web"

    def __init__(
        self, apps: Mapping[str, WSGIApp], channel: Any = "web", workers: int | None = None
    ) -> None:
        """Mount every application (``TypeError``/``ValueError`` as ``WSGIGateway``)."""
        super().__init__(channel=channel)
        self.apps = dict(apps)
        self.gateways = [
            WSGIGateway(lenient(self.apps[path]), path, workers, channel).register(self)
            for path in sorted(self.apps, key=lambda p: len(p.rstrip("/")), reverse=True)
        ]

    def __repr__(self) -> str:
        return f"<Gateway/{self.channel} {sorted(self.apps)}>"
