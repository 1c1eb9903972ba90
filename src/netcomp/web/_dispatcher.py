"""URL dispatch: the longest matching controller prefix, then the action by name.

Rules:
* ``/a/b/c`` is tried against controller channels ``/a/b/c``, ``/a/b``, ``/a``, ``/``;
  the first that exists wins. The next segment names the action when the controller has
  it; otherwise a method-named action (``GET``...) or ``index`` gets every remaining
  segment as positional arguments. Query and form fields are keyword arguments.
* No controller, or an action that does not take those arguments: 404. A controller with
  method-named actions but not this method: 405 with ``Allow``.
* An earlier ``request`` handler that already answered (``Static``, your own) wins: the
  dispatcher runs last (priority -1) and only when nothing answered. An ``async def``
  (or generator) ``request`` handler counts as answering: it is still running.
* A path with ``.`` or ``..`` segments is redirected (301) to its normal form (RFC 3986
  section 5.2.4: ``..`` never climbs above ``/``), the query kept; the new location is
  always a path on this site (one leading ``/``).
* When this Dispatcher is the only one who could see a ``request`` event (see
  :mod:`._handling`), the server calls :meth:`Dispatcher.answer` without the event.
"""

from __future__ import annotations

import logging
from typing import Any

from ..core import BaseComponent, Event, Value, handler
from ._controllers import Controller
from ._errors import MethodNotAllowed, NotFound, Redirect
from ._events import request
from ._request import Request
from ._response import Response

__all__ = ["Dispatcher"]


class _later(request):
    """A ``request`` already answered by ``result`` (a coroutine, generator or Future an
    action returned; see ``Dispatcher.answer_later``), fired on its Dispatcher alone:
    its handler gives the result to the loop, which runs it as any handler's."""

    name = "request"
    result: Any = None


log = logging.getLogger("netcomp.web")


class Dispatcher(BaseComponent):
    """Routes ``request`` events on its channel to :class:`Controller` actions."""

    channel: Any = "web"

    def __init__(self, channel: Any = "web") -> None:
        """``channel``: the web server's channel."""
        super().__init__(channel=channel)
        self.controllers: dict[str, Controller] = {}
        # path -> (remaining segments, controller): most sites have few distinct paths.
        self._routes: dict[str, tuple[list[str], Controller | None]] = {}
        self._raw_routes: dict[str, tuple[list[str], Controller | None]] = {}  # by raw path

    @handler("registered", channel="*")
    def _on_registered(self, component: Any, manager: Any) -> None:
        if component is self:
            self._scan(self.root)
        elif isinstance(component, Controller) and component.root is self.root:
            self._scan(component)

    @handler("unregistered", channel="*")
    def _on_unregistered(self, component: Any, manager: Any) -> None:
        for prefix, controller in list(self.controllers.items()):
            if controller.root is not self.root:
                del self.controllers[prefix]
        self._routes.clear()
        self._raw_routes.clear()

    def _scan(self, top: Any) -> None:
        stack = [top]
        while stack:
            node = stack.pop()
            if isinstance(node, Controller):
                self.controllers[node.channel.rstrip("/") or "/"] = node
            stack.extend(node.components)
        self._routes.clear()
        self._raw_routes.clear()

    @handler("request", priority=-1)
    def _on_request(self, event: Event, request: Request, response: Response) -> Any:
        if event.__class__ is _later:
            return event.result
        if event.answered:
            return None  # answered already, or an async handler is answering
        return self.answer(request, response)

    def answer(self, request: Request, response: Response) -> Any:
        """The ``request`` handler's work: route, then run the action (or fire it, giving
        its :class:`Value`, if others could see its event); a missing one raises 404/405."""
        if "/." in request.raw_path:
            _dot_segments(request)
        # _route_request's common case (a cached raw path), inline.
        route = self._raw_routes.get(request.raw_path) if request._path is None else None
        segments, controller = route if route is not None else self._route_request(request)
        if controller is None:
            raise NotFound()
        args: tuple[Any, ...] = tuple(segments) if segments else ()
        name = "index"
        if (
            segments
            and segments[0] in controller._actions
            and segments[0] not in (controller.methods)
        ):
            name, args = segments[0], tuple(segments[1:])
        elif controller.methods:
            name = request.method
            if name == "HEAD" and "HEAD" not in controller.methods:
                name = "GET"
            if name not in controller.methods:
                methods = controller.methods
                raise MethodNotAllowed(methods | _HEAD if "GET" in methods else methods)
        kwargs = dict(request.query) if request.query_string else {}
        if request._body and request.content_type in _FORMS:
            kwargs.update(request.form)
        signature = controller._signatures.get(name)
        if signature is None or not (
            signature.min_args <= len(args) <= signature.max_args
            if not kwargs
            else signature.accepts(args, kwargs)
        ):
            raise _wrong_url(request, controller, name, args, kwargs)
        direct = controller._direct.get(name)
        if direct is not None:
            loop = self.loop
            registry = loop.registry
            try:  # (lookup()'s own cache, read inline: no call on the common path)
                handlers = registry.cache[name][controller._channels][0]
            except KeyError:
                handlers = registry.lookup(name, controller._channels)[0]
            if (
                len(handlers) == 1
                and handlers[0].fn is direct[0]
                and loop.observer is None
                and not loop.tracking
                and name not in loop.waiters
            ):
                # Nobody else could see the action's event: run it here, in this
                # request's dispatch (docs/architecture.md, "Web").
                try:
                    return direct[1](request, response, args, kwargs)
                except Exception as error:
                    action = self._action_event(name, args, kwargs, request, response)
                    return self._action_failed(action, controller, handlers[0], error)
        return self.fire(
            self._action_event(name, args, kwargs, request, response), controller.channel
        )

    def answer_later(self, result: Any, request: Request, response: Response) -> Value:
        """The :class:`Value` of ``result`` (a coroutine, generator or :class:`Future` an
        action returned for ``request``) once the loop has run it, as it runs a request
        handler's: for a request answered without its event (see :mod:`._handling`)."""
        event = _later(request, response)
        event.result = result
        return self.fire(event, self)  # (this component as the channel: it alone hears it)

    @staticmethod
    def _action_event(
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        request: Request,
        response: Response,
    ) -> Event:
        action = Event.create(name, *args, **kwargs)
        action.request = request  # type: ignore[attr-defined]
        action.response = response  # type: ignore[attr-defined]
        return action

    def _action_failed(
        self, action: Event, controller: Controller, entry: Any, error: Exception
    ) -> Value:
        """An action run without its event raised: make the event and its Value now and
        fail them as its dispatch would have (``exception`` names the action's handler and
        event; the request gets the error through the returned Value)."""
        action.channels = controller._channels
        value = action.value = Value(action, self.root)
        value.observed = True  # the request's handling reports it (a 500, logged once)
        loop = self.loop
        loop.handler_error(action, entry, error)
        loop.finish(action)
        return value

    def _route_request(self, request: Request) -> tuple[list[str], Controller | None]:
        # Routes by the raw path too (no decoding per request), while nobody has read or
        # set the decoded one (then it is the raw one decoded).
        undecoded = request._path is None
        route = self._raw_routes.get(request.raw_path) if undecoded else None
        if route is None:
            route = self._find(request.path)
            if undecoded:
                self._cache(self._raw_routes, request.raw_path, route)
        return route

    def _find(self, path: str) -> tuple[list[str], Controller | None]:
        route = self._routes.get(path)
        if route is None:
            route = self._route(path)
            self._cache(self._routes, path, route)
        return route

    @staticmethod
    def _cache(
        routes: dict[str, tuple[list[str], Controller | None]],
        path: str,
        route: tuple[list[str], Controller | None],
    ) -> None:
        if len(routes) >= _ROUTE_CACHE:
            routes.clear()
        routes[path] = route

    def _route(self, path: str) -> tuple[list[str], Controller | None]:
        controllers = self.controllers
        parts = [p for p in path.split("/") if p]
        for cut in range(len(parts), -1, -1):
            prefix = "/" + "/".join(parts[:cut])
            controller = controllers.get(prefix)
            if controller is not None:
                return parts[cut:], controller
        return parts, None


_ROUTE_CACHE = 1024
_HEAD = frozenset(("HEAD",))
_FORMS = frozenset(("application/x-www-form-urlencoded", "multipart/form-data"))


def _wrong_url(
    request: Request,
    controller: Controller,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> NotFound:
    """A URL that names an action with the wrong arguments is a wrong URL: 404, and a
    line that says why, for whoever wonders where their request went."""
    why = controller.why_not(name, args, kwargs)
    log.debug("%s %s: 404, %s", request.method, request.target, why)
    return NotFound()


def _dot_segments(request: Request) -> None:
    """Redirect (301) a path with dot segments to its normal form."""
    kept: list[str] = []
    parts = request.raw_path.split("/")[1:]
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "..":
            if kept:
                kept.pop()
            if last:
                kept.append("")
        elif part == ".":
            if last:
                kept.append("")
        else:
            kept.append(part)
    location = "/" + "/".join(kept).lstrip("/")
    if location != request.raw_path:
        query = request.query_string
        raise Redirect(location + ("?" + query if query else ""), 301)
